// Command ctgen writes large CloudTrail files {"Records":[…]} of the
// bench/loadgen CloudTrail records (1–2 KB each, one a line, in event-time
// order, an attack chain every hour), for measuring `musubi replay` on large
// and overlapping files by hand. The files are not part of the repository:
// write them under .local/.
//
//	go run ./replay/testdata/ctgen -out .local/ct6 -files 6 -seed 11 -bytes 209715200
//
// Each file has its own seed (seed, seed+1, …) and the same start, so the
// files cover the same event time: -files 6 gives six overlapping files.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/bench/loadgen"
)

func main() {
	out := flag.String("out", ".local/ctgen", "directory to write the files into")
	files := flag.Int("files", 1, "number of files, each with its own seed and the same event time")
	seed := flag.Uint64("seed", 11, "seed of the first file")
	size := flag.Int64("bytes", 200<<20, "size of each file")
	rate := flag.Float64("rate", 1.6, "records per second of event time")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ctgen:", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	errs := make([]error, *files)
	for i := range *files {
		wg.Go(func() {
			s := *seed + uint64(i)
			errs[i] = write(filepath.Join(*out, fmt.Sprintf("cloudtrail-%d.json", s)), s, *rate, *size)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "ctgen:", err)
			os.Exit(1)
		}
	}
}

// write writes one file of about size bytes: CloudTrail records only (the
// chains' records of other sources are left out).
func write(path string, seed uint64, rate float64, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	g := loadgen.New(loadgen.Config{Seed: seed, Rate: rate, Mix: loadgen.Mix{CloudTrail: 1}, ChainEvery: time.Hour})
	w.WriteString(`{"Records":[` + "\n")
	n, records := int64(0), 0
	for n < size {
		r := g.Next()
		if r.Source != loadgen.SourceCloudTrail {
			continue
		}
		if records > 0 {
			w.WriteString(",\n")
		}
		w.Write(r.Value)
		n += int64(len(r.Value)) + 2
		records++
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d records until %s\n", path, records, g.Now().UTC().Format(time.RFC3339))
	return f.Close()
}
