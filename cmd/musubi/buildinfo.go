package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/rules"
)

// Set at build time by the Makefile and the Dockerfile:
//
//	-ldflags "-X main.version=0.2.0 -X main.commit=$(git rev-parse HEAD) -X main.date=2026-05-01T12:00:00Z"
//
// Without them the commit and date come from the Go toolchain's own VCS
// stamp when the binary was built in a git checkout.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo is what `musubi version` prints and musubi_build_info carries.
type buildInfo struct {
	Version, Commit, Date, GoVersion string
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			}
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func (b buildInfo) print(w io.Writer) {
	fmt.Fprintf(w, "musubi %s\n  commit: %s\n  built:  %s\n  go:     %s\n", b.Version, b.Commit, b.Date, b.GoVersion)
}

// newBuildInfoGauge returns musubi_build_info: always 1, the build in its
// labels, so dashboards and alerts can join on the running version.
func newBuildInfoGauge(b buildInfo) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "musubi_build_info",
		Help: "Always 1; the labels name the running build: version, commit, build date and Go version.",
	}, []string{"version", "commit", "date", "goversion"})
	g.WithLabelValues(b.Version, b.Commit, b.Date, b.GoVersion).Set(1)
	return g
}

// ruleSetCollector exports the running detection rule set as
// musubi_rules_set_info{hash, commit} 1, read at scrape time so a reload
// shows at once. hash is the set's content hash (the version alerts name
// per rule is the rule's own hash), commit the git commit of the rule
// directory when it is a checkout.
type ruleSetCollector struct {
	engine *rules.Engine
	desc   *prometheus.Desc
}

func newRuleSetCollector(e *rules.Engine) *ruleSetCollector {
	return &ruleSetCollector{engine: e, desc: prometheus.NewDesc("musubi_rules_set_info",
		"Always 1; the labels name the running detection rule set: its content hash and the git commit of the rule directory (empty when it is not a checkout).",
		[]string{"hash", "commit"}, nil)}
}

func (c *ruleSetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *ruleSetCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.engine.Set()
	if s == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, s.Hash, s.Commit)
}
