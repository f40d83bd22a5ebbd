package correlate

import (
	"github.com/musubi-xdr/musubi/rules"
)

// SetRules hands the correlator a new set of sequence rules. It is safe to
// call from any goroutine: the correlator puts the set into service at the
// start of its next Process or Advance, on its own goroutine. A rule whose
// document is unchanged keeps its partial chains and timers; a changed or
// new rule starts empty; a removed rule's state is dropped.
func (c *Correlator) SetRules(seq []*SequenceRule) { c.latest.Store(&seq) }

// SequenceRules returns the sequence rules most recently set (by New or
// SetRules). It is safe to call from any goroutine.
func (c *Correlator) SequenceRules() []*SequenceRule { return *c.latest.Load() }

// applyRules puts rules handed over by SetRules into service.
func (c *Correlator) applyRules() {
	p := c.latest.Load()
	if p == c.seqRules {
		return
	}
	c.seqRules = p
	c.seq.replace(*p)
	c.logger.Info("correlation rules reloaded", "rules", len(*p))
}

// Reloader returns a rules.Companion that compiles the correlation rules of
// a rule directory and hands them to c, so that a rules.Manager reloads them
// with the detection rules: a broken correlation file rejects the whole
// reload and every running set stays.
func (c *Correlator) Reloader() rules.Companion { return reloader{c} }

type reloader struct{ c *Correlator }

func (r reloader) Prepare(files []rules.File) (func(), error) {
	seq, err := LoadFiles(files)
	if err != nil {
		return nil, err
	}
	return func() { r.c.SetRules(seq) }, nil
}

// Checker returns a rules.Companion that only compiles the correlation rules
// of a reload, for a process that serves the API without correlating: a
// broken correlation file is rejected there too.
func Checker() rules.Companion { return checker{} }

type checker struct{}

func (checker) Prepare(files []rules.File) (func(), error) {
	if _, err := LoadFiles(files); err != nil {
		return nil, err
	}
	return func() {}, nil
}
