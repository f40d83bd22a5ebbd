package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/musubi-xdr/musubi/ingest"
)

// Default segmentation of large files (see Stream.SegmentBytes).
const (
	defaultSegmentBytes   = 16 << 20
	defaultSegmentRecords = 1024
)

// stream opens the input's content as a stream, gunzipped when it is gzip
// (recognized by its magic bytes, as Read does).
func (in Input) stream() (io.ReadCloser, error) {
	rc, err := in.open()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 256<<10)
	magic, _ := br.Peek(2)
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return readCloser{br, rc}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	return readCloser{gzipErr{zr, in.Name}, rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// gzipErr names the file in a decompression error, as Read does.
type gzipErr struct {
	r    io.Reader
	name string
}

func (g gzipErr) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: gzip: %w", g.name, err)
	}
	return n, err
}

// A segment is a run of whole records of a large file, as one message the
// decoder reads: a slice of a JSON array (a CloudTrail delivery file's
// Records, a findings array) wrapped back in its envelope, or a run of
// lines (JSON lines, a flow log's lines after the file's header line).
type segment struct {
	data []byte
	// first is the file's index of the segment's first record (its line
	// after the header, for line files); records counts them.
	first, records int
	// elems are the offsets in data of the records of an array segment,
	// and the end of the last: each record decodes alone if the segment
	// as a whole cannot (see decodeSegment).
	elems []int
	// dead are records the segmenter itself rejects: one larger than
	// the message limit (kept truncated) or cut short by the end of the
	// file.
	dead []*ingest.DecodeError
	// size is how many bytes of the (decompressed) file the segment took.
	size int64
}

const (
	modeLines = iota
	modeArray
)

// segmenter cuts a file's decompressed content into segments of at most
// maxBytes (or one record, if larger) and maxRecords records, at record
// boundaries, reading it once from start to end in bounded memory.
type segmenter struct {
	br         *bufio.Reader
	src        ingest.Source
	mode       int
	open, shut []byte // an array segment's envelope around its records
	header     []byte // a flow log's header line, with its newline
	maxBytes   int
	maxRecords int
	// maxRecord is the largest record kept whole (the message limit):
	// a larger one is a dead letter of its first keep bytes.
	maxRecord, keep int
	n               int // records so far
	skipped         int // bytes skipBlank consumed
	lastLen         int // the last segment's length
	started, done   bool
	pending         []byte // a line read past the end of the previous segment
}

// envelopeHead matches the start of a file that is an envelope of a record
// array, as AWS writes them: its first member is the array.
var envelopeHead = regexp.MustCompile(`^\s*\{\s*"(Records|Findings|configurationItems)"\s*:\s*\[`)

func newSegmenter(r io.Reader, src ingest.Source, lim ingest.Limits, maxBytes, maxRecords int) *segmenter {
	return &segmenter{br: bufio.NewReaderSize(r, 1<<20), src: src, maxBytes: maxBytes, maxRecords: maxRecords,
		maxRecord: lim.MaxMessageBytes, keep: lim.MaxRecordBytes}
}

// start reads how the file is laid out from its head.
func (g *segmenter) start() error {
	g.started = true
	head, err := g.br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return err
	}
	t := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case envelopeHead.Match(head):
		m := envelopeHead.FindSubmatch(head)
		g.mode = modeArray
		g.open, g.shut = []byte(`{"`+string(m[1])+`":[`), []byte("]}")
		_, err = g.br.Discard(len(m[0]))
	case len(t) > 0 && t[0] == '[':
		g.mode = modeArray
		g.open, g.shut = []byte("["), []byte("]")
		_, err = g.br.Discard(len(head) - len(t) + 1)
	default:
		g.mode = modeLines
		if g.src == ingest.SourceVPCFlow {
			// The header, as SplitMessages finds it: the first line with
			// text, unless it starts with a digit (a headerless file).
			for {
				l, err := g.line()
				if len(l) == 0 && err != nil {
					return ignoreEOF(err)
				}
				if l = bytes.TrimSpace(l); len(l) == 0 {
					continue
				}
				if !startsWithDigit(string(l[:1])) {
					g.header = append(append([]byte(nil), l...), '\n')
				} else {
					g.pending = append([]byte(nil), l...)
				}
				break
			}
		}
	}
	return err
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// next returns the next segment, or nil at the end of the file.
func (g *segmenter) next() (*segment, error) {
	if !g.started {
		if err := g.start(); err != nil {
			return nil, err
		}
	}
	if g.done {
		return nil, nil
	}
	// Sized as the last segment, plus room: appending from nothing
	// would copy a segment's bytes several times over.
	seg := &segment{first: g.n, data: make([]byte, 0, min(g.lastLen+g.lastLen/8+4096, g.maxBytes+g.maxBytes/8))}
	var err error
	if g.mode == modeArray {
		err = g.array(seg)
	} else {
		err = g.lines(seg)
	}
	if err != nil {
		return nil, err
	}
	g.lastLen = len(seg.data)
	if seg.records == 0 && len(seg.dead) == 0 && seg.size == 0 {
		return nil, nil
	}
	return seg, nil
}

// line reads one line with its newline; a line longer than maxRecord is
// returned truncated to keep bytes with its full length in the error
// errLongLine.
func (g *segmenter) line() ([]byte, error) {
	var out []byte
	total := 0
	for {
		chunk, err := g.br.ReadSlice('\n')
		total += len(chunk)
		if total <= g.maxRecord {
			out = append(out, chunk...)
		} else if len(out) < g.keep {
			out = append(out, chunk[:min(len(chunk), g.keep-len(out))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if total > g.maxRecord {
			if len(out) > g.keep {
				out = out[:g.keep]
			}
			return out, &longRecord{total}
		}
		return out, err
	}
}

type longRecord struct{ size int }

func (e *longRecord) Error() string { return fmt.Sprintf("record of %d bytes", e.size) }

// lines fills seg with whole lines: a flow log's with its header first.
func (g *segmenter) lines(seg *segment) error {
	seg.data = append(seg.data, g.header...)
	for seg.records < g.maxRecords && len(seg.data) < g.maxBytes {
		var l []byte
		var err error
		if g.pending != nil {
			l, g.pending = g.pending, nil
		} else {
			l, err = g.line()
			seg.size += int64(len(l))
		}
		var long *longRecord
		if errors.As(err, &long) {
			seg.size += int64(long.size - len(l))
			seg.dead = append(seg.dead, g.tooLarge(l, long.size))
			continue
		}
		if len(bytes.TrimSpace(l)) > 0 {
			seg.data = append(seg.data, bytes.TrimRight(l, "\r\n")...)
			seg.data = append(seg.data, '\n')
			seg.records++
			g.n++
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				g.done = true
				return nil
			}
			return err
		}
	}
	return nil
}

func (g *segmenter) tooLarge(raw []byte, size int) *ingest.DecodeError {
	idx := g.n
	g.n++
	return &ingest.DecodeError{Source: g.src, Reason: ingest.ReasonTooLarge, Record: idx, Offset: -1, Raw: raw,
		Err: fmt.Errorf("record of %d bytes exceeds the message limit of %d; its first %d bytes are kept", size, g.maxRecord, len(raw))}
}

// array fills seg with the next elements of the file's array. An element
// is everything up to the next comma or closing bracket outside strings
// and nesting, so a malformed element stays one record.
func (g *segmenter) array(seg *segment) error {
	seg.data = append(seg.data, g.open...)
	for seg.records < g.maxRecords && len(seg.data) < g.maxBytes {
		// Skip the separator and blanks before the element.
		c, err := g.skipBlank()
		seg.size += int64(g.skipped)
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The file ends inside its array: nothing more to read,
				// and no record lost (the last one was complete).
				g.done = true
				break
			}
			return err
		}
		if c == ']' || c == ',' {
			_, _ = g.br.ReadByte()
			seg.size++
		}
		if c == ']' {
			if err := g.trailer(seg); err != nil {
				return err
			}
			g.done = true
			break
		}
		if c == ',' {
			continue
		}
		start := len(seg.data)
		if seg.records > 0 {
			seg.data = append(seg.data, ',')
			start++
		}
		size, end, truncated, err := g.element(seg)
		seg.size += int64(size)
		if err != nil {
			return err
		}
		switch {
		case size > g.maxRecord:
			raw := append([]byte(nil), seg.data[start:]...)
			seg.data = seg.data[:start-min(start, boolInt(seg.records > 0))]
			seg.dead = append(seg.dead, g.tooLarge(raw, size))
		case truncated:
			raw := append([]byte(nil), seg.data[start:]...)
			seg.data = seg.data[:start-min(start, boolInt(seg.records > 0))]
			idx := g.n
			g.n++
			seg.dead = append(seg.dead, &ingest.DecodeError{Source: g.src, Reason: ingest.ReasonInvalidJSON, Record: idx, Offset: -1, Raw: raw,
				Err: errors.New("the file ends inside this record")})
		default:
			seg.elems = append(seg.elems, start)
			seg.records++
			g.n++
		}
		if truncated {
			g.done = true
			break
		}
		if end {
			seg.size++
			if err := g.trailer(seg); err != nil {
				return err
			}
			g.done = true
			break
		}
	}
	seg.elems = append(seg.elems, len(seg.data))
	seg.data = append(seg.data, g.shut...)
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// skipBlank returns the next byte that is not blank without consuming it;
// skipped counts the blanks it consumed.
func (g *segmenter) skipBlank() (byte, error) {
	g.skipped = 0
	for {
		c, err := g.br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			g.skipped++
			continue
		}
		return c, g.br.UnreadByte()
	}
}

// inert marks the bytes that change no state of the element scanner
// outside strings (inStr: inside them).
var inert, inertStr [256]bool

func init() {
	for c := range 256 {
		inert[c] = !bytes.ContainsRune([]byte(`"{}[],`), rune(c))
		inertStr[c] = c != '"' && c != '\\'
	}
}

// element appends the element at the reader (not blank) to seg.data (up
// to maxRecord bytes, then only its first keep bytes) and consumes the
// comma or bracket that ends it. It reports the element's size, whether
// the bracket closed the array, and whether the file ended inside it.
// It scans the reader's buffer in place, a buffer at a time.
func (g *segmenter) element(seg *segment) (size int, end, truncated bool, err error) {
	start := len(seg.data)
	depth := 0
	inStr, esc := false, false
	keep := func(b []byte) {
		if room := g.maxRecord - (len(seg.data) - start); size <= g.maxRecord && room >= 0 {
			seg.data = append(seg.data, b[:min(len(b), room)]...)
		}
		size += len(b)
		if size > g.maxRecord && len(seg.data)-start > g.keep {
			seg.data = seg.data[:start+g.keep]
		}
	}
	for {
		buf, err := g.br.Peek(max(1, g.br.Buffered()))
		if len(buf) == 0 {
			if errors.Is(err, io.EOF) {
				return size, true, true, nil
			}
			return size, false, false, err
		}
		i := 0
		for i < len(buf) {
			if inStr {
				for i < len(buf) && inertStr[buf[i]] && !esc {
					i++
				}
				if i == len(buf) {
					break
				}
				switch c := buf[i]; {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
				}
				i++
				continue
			}
			for i < len(buf) && inert[buf[i]] {
				i++
			}
			if i == len(buf) {
				break
			}
			c := buf[i]
			if depth == 0 && (c == ',' || c == ']') {
				keep(buf[:i])
				// Trailing blanks are not part of the element.
				if size <= g.maxRecord {
					seg.data = seg.data[:start+len(bytes.TrimRight(seg.data[start:], " \t\r\n"))]
				}
				_, err := g.br.Discard(i + 1)
				return size, c == ']', false, err
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth > 0 {
					depth--
				}
			}
			i++
		}
		keep(buf)
		if _, err := g.br.Discard(len(buf)); err != nil {
			return size, false, false, err
		}
	}
}

// trailer reads what follows the array: the rest of an envelope, which
// must close it ("}", or further members, which the decoder ignores too).
// Anything else is a dead letter of its own (its first keep bytes).
func (g *segmenter) trailer(seg *segment) error {
	rest, err := io.ReadAll(io.LimitReader(g.br, int64(g.keep)))
	if err != nil {
		return err
	}
	n, _ := io.Copy(io.Discard, g.br)
	seg.size += int64(len(rest)) + n
	t := bytes.TrimSpace(rest)
	ok := len(g.shut) == 1 && len(t) == 0 || // a bare array
		len(g.shut) == 2 && len(t) > 0 && (t[0] == '}' && len(t) == 1 || t[0] == ',' && n == 0 && t[len(t)-1] == '}')
	if !ok {
		idx := g.n
		g.n++
		seg.dead = append(seg.dead, &ingest.DecodeError{Source: g.src, Reason: ingest.ReasonInvalidJSON, Record: idx, Offset: -1, Raw: rest,
			Err: errors.New("unexpected data after the records array")})
	}
	return nil
}
