package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/config"
)

// commonFlags are the flags every engine command shares; a set flag wins
// over the environment, which wins over the file.
type commonFlags struct {
	configPath string
	brokers    string
	clickhouse string
	rulesDir   string
	listen     string
	logLevel   string
	// overrides are a command's own flags, applied after the common ones.
	overrides []func(*config.Config)
}

// The common flags a command can take; a command registers only those it
// uses, so its help lists nothing that does not apply.
const (
	flagConfig = 1 << iota
	flagBrokers
	flagClickHouse
	flagRules
	flagListen
	flagLogLevel

	flagsAll = flagConfig | flagBrokers | flagClickHouse | flagRules | flagListen | flagLogLevel
)

func (c *commonFlags) register(fs *cmdFlags, which int) {
	if which&flagConfig != 0 {
		fs.StringVar(&c.configPath, "config", "", "configuration file (YAML); defaults apply without one")
	}
	if which&flagBrokers != 0 {
		fs.StringVar(&c.brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated (overrides kafka.brokers)")
	}
	if which&flagClickHouse != 0 {
		fs.StringVar(&c.clickhouse, "clickhouse", "", "ClickHouse native address host:port (overrides clickhouse.addr)")
	}
	if which&flagRules != 0 {
		fs.StringVar(&c.rulesDir, "rules", "", "rule directory (overrides rules.dir)")
	}
	if which&flagListen != 0 {
		fs.StringVar(&c.listen, "listen", "", "HTTP listen address (overrides api.listen)")
	}
	if which&flagLogLevel != 0 {
		fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	}
}

// load reads the configuration and applies the flags, then validates.
func (c *commonFlags) load() (config.Config, error) {
	cfg, err := config.Load(c.configPath, os.Getenv)
	if err != nil {
		return cfg, err
	}
	if c.brokers != "" {
		cfg.Kafka.Brokers = splitList(c.brokers)
	}
	if c.clickhouse != "" {
		cfg.ClickHouse.Addr = splitList(c.clickhouse)
	}
	if c.rulesDir != "" {
		cfg.Rules.Dir = c.rulesDir
	}
	if c.listen != "" {
		cfg.API.Listen = c.listen
	}
	if c.logLevel != "" {
		cfg.Log.Level = c.logLevel
	}
	for _, o := range c.overrides {
		o(&cfg)
	}
	return cfg, cfg.Validate()
}

// serveFlags are the flags of serve that config check takes too, so that
// check validates exactly what serve would load.
type serveFlags struct {
	role  string
	pprof bool
}

func (s *serveFlags) register(fs *cmdFlags, roleHelp string) {
	fs.StringVar(&s.role, "role", "", roleHelp)
	fs.BoolVar(&s.pprof, "pprof", false, "serve Go's runtime profiles at /debug/pprof/ on the API listener (overrides api.pprof)")
}

// apply adds the flags that were set to cf's overrides.
func (s *serveFlags) apply(cf *commonFlags) {
	if role := s.role; role != "" {
		cf.overrides = append(cf.overrides, func(c *config.Config) { c.Role = role })
	}
	if s.pprof {
		cf.overrides = append(cf.overrides, func(c *config.Config) { c.API.Pprof = true })
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// cmdFlags is a command's flag set. Help asked for (-h, -help, `musubi
// help CMD`) goes to stdout with exit 0; a usage error prints the problem
// and the help to stderr with exit 2.
type cmdFlags struct {
	*flag.FlagSet
	stdout, stderr io.Writer
}

// newFlagSet returns a flag set whose help starts with a synopsis.
func newFlagSet(name, synopsis string, stdout, stderr io.Writer) *cmdFlags {
	fs := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: musubi %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args. stop is true when the command must return code at
// once: 0 after printing the help that -h asked for, 2 after a usage error.
func (fs *cmdFlags) parse(args []string) (code int, stop bool) {
	var errs strings.Builder
	fs.SetOutput(&errs)
	err := fs.Parse(args)
	fs.SetOutput(fs.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.help()
		return 0, true
	case err != nil:
		fmt.Fprintf(fs.stderr, "musubi %s: %v\n", fs.Name(), err)
		fs.Usage()
		return 2, true
	}
	return 0, false
}

// help prints the command's help to stdout.
func (fs *cmdFlags) help() {
	fs.SetOutput(fs.stdout)
	fs.Usage()
	fs.SetOutput(fs.stderr)
}

// usageError prints the help to stderr and returns the exit code of a
// usage error.
func (fs *cmdFlags) usageError() int {
	fs.Usage()
	return 2
}

// wantsHelp reports whether args ask for help before any flag set could
// parse them (a command that dispatches on its first argument).
func wantsHelp(args []string) bool {
	return len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0])
}

const configUsage = `Usage: musubi config check [flags] [FILE]

Validates the configuration (file, environment and defaults) as serve would
load it and reports every problem.
`

func configCommand(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, configUsage)
		return 0
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	var cf commonFlags
	var sf serveFlags
	fs := newFlagSet("config check", "config check [flags] [FILE]\n\nValidates the configuration (file, environment and defaults) as serve would\nload it and reports every problem.", stdout, stderr)
	cf.register(fs, flagsAll)
	sf.register(fs, "the role serve would run (overrides role, MUSUBI_ROLE)")
	if code, stop := fs.parse(args[1:]); stop {
		return code
	}
	sf.apply(&cf)
	if fs.NArg() == 1 && cf.configPath == "" {
		cf.configPath = fs.Arg(0)
	}
	if _, err := cf.load(); err != nil {
		fmt.Fprintf(stderr, "configuration is invalid:\n")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  - %s\n", line)
		}
		return 1
	}
	fmt.Fprintln(stdout, "configuration is valid")
	return 0
}
