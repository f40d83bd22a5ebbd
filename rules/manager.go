package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultPollInterval is how often a Manager hashes its directory.
const DefaultPollInterval = 3 * time.Second

// Manager keeps an Engine's rule set, and the rules of every Companion
// (correlation rules), in step with a directory. It polls a content hash of
// the rule files (which also catches a Kubernetes ConfigMap swapping its
// ..data symbolic link) and reloads on change; Reload forces a reload (the
// caller wires SIGHUP and POST /-/reload to it). The directory is read once
// per reload and every kind is compiled from the same files; if any kind
// fails, the reload is rejected whole and every running set stays.
type Manager struct {
	dir        string
	engine     *Engine
	logger     *slog.Logger
	companions []Companion
	// Interval is the polling period; set it before Run.
	Interval time.Duration

	mu       sync.Mutex // serialises reloads
	lastHash string
	lastErr  error
}

// Companion compiles the rules of another kind (correlation rules) from the
// files of the same directory, so that they reload with the detection rules.
type Companion interface {
	// Prepare compiles files and returns a commit function that puts the
	// result into service; the manager calls commit only when every kind
	// compiled. Problems should be *Problem values.
	Prepare(files []File) (commit func(), err error)
}

// AddCompanion makes c reload with the detection rules; call it before Run.
func (m *Manager) AddCompanion(c Companion) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.companions = append(m.companions, c)
}

// NewManager returns a manager of dir for e; logger may be nil. A set e
// already runs is taken to be dir's content (the caller loaded it from
// dir): polls reload only when the directory differs from it, not once
// more at the first poll.
func NewManager(dir string, e *Engine, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{dir: dir, engine: e, logger: logger.With("component", "rules", "dir", dir), Interval: DefaultPollInterval}
	if s := e.Set(); s != nil {
		m.lastHash = s.Hash
	}
	return m
}

// Reload loads the directory and swaps the new set in. On error the running
// set stays and the error lists every problem.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reload()
}

func (m *Manager) reload() error {
	files, err := ReadDir(m.dir)
	var s *Set
	var commits []func()
	if err == nil {
		var errs []error
		if s, err = LoadDirFiles(m.dir, files); err != nil {
			errs = append(errs, err)
		}
		for _, c := range m.companions {
			commit, cerr := c.Prepare(files)
			if cerr != nil {
				errs = append(errs, cerr)
				continue
			}
			commits = append(commits, commit)
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		m.engine.metrics.reloads.WithLabelValues("failure").Inc()
		m.lastErr = err
		if files != nil {
			m.lastHash = hashFiles(files) // do not retry the same broken content every poll
		}
		m.logger.Error("rule set rejected; the running set stays", "problems", len(Problems(err)), "err", err)
		return fmt.Errorf("rules: reload rejected: %w", err)
	}
	m.engine.Swap(s)
	for _, commit := range commits {
		commit()
	}
	m.engine.metrics.reloads.WithLabelValues("success").Inc()
	m.lastHash, m.lastErr = s.Hash, nil
	m.logger.Info("rule set loaded", "rules", s.Len(), "exceptions", len(s.Exceptions()), "hash", s.Hash[:12], "commit", s.Commit, "skipped", len(s.Skipped))
	for _, w := range s.Warnings() {
		m.logger.Warn("rule set warning", "warning", w.Error())
	}
	return nil
}

// LastError returns the error of the last reload, or nil if it succeeded.
func (m *Manager) LastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Run loads the directory if no set is loaded yet, then polls it until ctx
// is done. It returns the error of the initial load (the engine cannot run
// without rules) or nil when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if m.engine.Set() == nil {
		if err := m.Reload(); err != nil {
			return err
		}
	}
	interval := m.Interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.poll()
		}
	}
}

// poll reloads when the content hash of the directory changed.
func (m *Manager) poll() {
	files, err := ReadDir(m.dir)
	if err != nil {
		m.logger.Warn("cannot read rule directory", "err", err)
		return
	}
	h := hashFiles(files)
	m.mu.Lock()
	defer m.mu.Unlock()
	if h == m.lastHash {
		return
	}
	_ = m.reload() // logged and counted
}
