package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/musubi-xdr/musubi/ingest"
)

func normalizeCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("normalize", "normalize [-source auto|cloudtrail|vpcflow|guardduty|agent|falco|awsconfig|inspector|malwarescan] [FILE|-]...\n\nPrints one normalized OCSF event per line as JSON. Problems go to stderr\nwith the file and record position; the exit code is 1 when any record failed.", stdout, stderr)
	source := fs.String("source", "auto", "source format of the input; auto recognizes it per file")
	maxBytes := fs.Int("max-record-bytes", ingest.DefaultLimits().MaxRecordBytes, "largest record accepted")
	if code, stop := fs.parse(args); stop {
		return code
	}
	src, err := ingest.ParseSource(*source)
	if err != nil {
		fmt.Fprintf(stderr, "musubi normalize: %v\n", err)
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	limits := ingest.DefaultLimits()
	limits.MaxRecordBytes = *maxBytes
	dec := ingest.NewDecoder(limits)
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	enc := json.NewEncoder(out)
	failed := 0
	for _, name := range files {
		data, err := readInput(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			failed++
			continue
		}
		s := src
		if s == ingest.SourceAuto {
			s = ingest.Detect(data)
		}
		events, errs := dec.Decode(s, data)
		for i := range events {
			if err := enc.Encode(&events[i]); err != nil {
				fmt.Fprintf(stderr, "%s: encode: %v\n", name, err)
				failed++
			}
		}
		for _, de := range errs {
			fmt.Fprintf(stderr, "%s: %v\n", name, de)
			failed++
		}
	}
	if failed > 0 {
		out.Flush()
		fmt.Fprintf(stderr, "musubi normalize: %d record(s) failed\n", failed)
		return 1
	}
	return 0
}

// readInput reads a file, or stdin for "-", up to 1 GiB.
func readInput(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<30+1))
	if err != nil {
		return nil, err
	}
	if len(data) > 1<<30 {
		return nil, fmt.Errorf("input larger than 1 GiB")
	}
	return data, nil
}
