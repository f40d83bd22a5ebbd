package replay

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/pipeline"
)

// Input is one telemetry file of a replay: a plain or gzip file, a member
// of a zip archive, or standard input.
type Input struct {
	// Name is the file's path; a zip member's is archive.zip/member.
	Name string
	// Size is the stored size in bytes (compressed, for gzip files).
	Size int64
	open func() (io.ReadCloser, error)
}

// Read returns the file's content, gunzipped when it is gzip (recognized by
// its magic bytes, whatever its name).
func (in Input) Read() ([]byte, error) {
	rc, err := in.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// One buffer of the stored size (plus room to see EOF) instead of
	// io.ReadAll's doubling: replays read tens of thousands of small files.
	data, err := readAll(rc, in.Size+1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	// The trailer's ISIZE (the inflated size modulo 4 GiB) sizes the buffer
	// of a one-member file exactly; an implausible one (more than deflate
	// can produce) falls back to a guess, and readAll grows past either.
	hint := 8 * int64(len(data))
	if len(data) >= 18 {
		if n := int64(binary.LittleEndian.Uint32(data[len(data)-4:])); n <= 1032*int64(len(data)) {
			hint = n + 1
		}
	}
	out, err := readAll(zr, hint)
	if err != nil {
		return nil, fmt.Errorf("%s: gzip: %w", in.Name, err)
	}
	return out, nil
}

// readAll is io.ReadAll starting with a buffer of size hint.
func readAll(r io.Reader, hint int64) ([]byte, error) {
	b := make([]byte, 0, max(min(hint, 64<<20), 512))
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// Inputs lists the telemetry files of paths: files as named, directories
// walked recursively in name order (as `aws s3 sync` writes them), tar
// archives (.tar, .tar.gz, .tgz) extracted to a temporary directory and
// walked, zip archives read in place, "-" for standard input. Files that
// are not telemetry are skipped (see Skip). The caller must call cleanup,
// which removes the temporary directories and closes the archives.
func Inputs(paths []string) (inputs []Input, cleanup func(), err error) {
	var closers []func()
	cleanup = func() {
		for _, c := range closers {
			c()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
			cleanup = func() {}
		}
	}()
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(os.Stdin)
			if err != nil {
				return nil, cleanup, err
			}
			inputs = append(inputs, bytesInput("stdin", data))
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, cleanup, err
		}
		switch {
		case st.IsDir():
			found, err := walk(p)
			if err != nil {
				return nil, cleanup, err
			}
			inputs = append(inputs, found...)
		case isTar(p):
			dir, err := os.MkdirTemp("", "musubi-replay-")
			if err != nil {
				return nil, cleanup, err
			}
			closers = append(closers, func() { os.RemoveAll(dir) })
			if err := extractTar(p, dir); err != nil {
				return nil, cleanup, err
			}
			found, err := walk(dir)
			if err != nil {
				return nil, cleanup, err
			}
			for i := range found {
				rel, _ := filepath.Rel(dir, found[i].Name)
				found[i].Name = p + "/" + filepath.ToSlash(rel)
			}
			inputs = append(inputs, found...)
		case strings.HasSuffix(strings.ToLower(p), ".zip"):
			zr, err := zip.OpenReader(p)
			if err != nil {
				return nil, cleanup, fmt.Errorf("%s: %w", p, err)
			}
			closers = append(closers, func() { zr.Close() })
			var found []Input
			for _, f := range zr.File {
				if f.FileInfo().IsDir() || Skip(path.Base(f.Name)) || skipDir(f.Name) {
					continue
				}
				found = append(found, Input{Name: p + "/" + f.Name, Size: int64(f.CompressedSize64), open: f.Open})
			}
			sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
			inputs = append(inputs, found...)
		default:
			inputs = append(inputs, fileInput(p, st.Size()))
		}
	}
	return inputs, cleanup, nil
}

func bytesInput(name string, data []byte) Input {
	return Input{Name: name, Size: int64(len(data)), open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func fileInput(name string, size int64) Input {
	return Input{Name: name, Size: size, open: func() (io.ReadCloser, error) { return os.Open(name) }}
}

// Skip reports whether a file found in a walked directory or archive is
// not telemetry: hidden files, documentation, rule files (YAML), scenario
// expectations (expected*.json) and S3 sync's digest files.
func Skip(name string) bool {
	ext := filepath.Ext(name)
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "expected") || strings.Contains(name, "CloudTrail-Digest") ||
		ext == ".md" || ext == ".yaml" || ext == ".yml"
}

// skipDir reports whether an archive member lies under a hidden directory
// (macOS archives carry __MACOSX/ and ._ files).
func skipDir(name string) bool {
	for _, part := range strings.Split(path.Dir(name), "/") {
		if strings.HasPrefix(part, ".") && part != "." || part == "__MACOSX" {
			return true
		}
	}
	return false
}

func walk(root string) ([]Input, error) {
	// A root that is a symbolic link (an export mounted elsewhere) is
	// walked where it points, its files still named under root.
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	var out []Input
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := root + strings.TrimPrefix(p, real)
		if d.IsDir() {
			if p != real && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if Skip(d.Name()) {
			return nil
		}
		// A symbolic link to a file is read as the file; links to
		// directories are not followed (they could loop).
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		out = append(out, fileInput(name, info.Size()))
		return nil
	})
	return out, err
}

func isTar(p string) bool {
	l := strings.ToLower(p)
	return strings.HasSuffix(l, ".tar") || strings.HasSuffix(l, ".tar.gz") || strings.HasSuffix(l, ".tgz")
}

// extractTar writes the regular files of a tar (optionally gzip) archive
// under dir. Member names that would leave dir are an error.
func extractTar(name, dir string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	var magic [2]byte
	if n, _ := io.ReadFull(f, magic[:]); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r = zr
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		clean := path.Clean("/" + h.Name)[1:]
		if clean == "" || !filepath.IsLocal(clean) {
			return fmt.Errorf("%s: member %q leaves the archive", name, h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, h.Name, err)
		}
	}
}

// ReadFiles reads every telemetry file of paths (see Inputs) into one
// record each, whose source is recognized from its content: the input of
// the batch pipeline.
func ReadFiles(paths []string) ([]pipeline.Record, error) {
	inputs, cleanup, err := Inputs(paths)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	recs := make([]pipeline.Record, 0, len(inputs))
	for _, in := range inputs {
		data, err := in.Read()
		if err != nil {
			return nil, err
		}
		recs = append(recs, pipeline.Record{Source: ingest.SourceAuto, Topic: in.Name, Value: data, Time: time.Now()})
	}
	return recs, nil
}

// SplitMessages splits line-oriented inputs into one message per line, as
// they arrive on Kafka; a VPC flow log keeps its header line on every
// message. A JSON document stays one message.
func SplitMessages(src ingest.Source, data []byte) [][]byte {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") || (strings.HasPrefix(trimmed, "{") && !strings.Contains(trimmed, "}\n{")) {
		return [][]byte{data}
	}
	lines := strings.Split(trimmed, "\n")
	var header string
	if src == ingest.SourceVPCFlow && len(lines) > 0 && !startsWithDigit(lines[0]) {
		header, lines = lines[0]+"\n", lines[1:]
	}
	var out [][]byte
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, []byte(header+l))
		}
	}
	return out
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }
