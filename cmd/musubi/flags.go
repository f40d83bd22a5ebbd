package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
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

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "config", "", "configuration file (YAML); defaults apply without one")
	fs.StringVar(&c.brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated (overrides kafka.brokers)")
	fs.StringVar(&c.clickhouse, "clickhouse", "", "ClickHouse native address host:port (overrides clickhouse.addr)")
	fs.StringVar(&c.rulesDir, "rules", "", "rule directory (overrides rules.dir)")
	fs.StringVar(&c.listen, "listen", "", "HTTP listen address (overrides api.listen)")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
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

// newFlagSet returns a flag set that prints its usage with a synopsis.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: musubi %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func configCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, "Usage: musubi config check [-config FILE]\n\nValidates the configuration (file, environment and defaults) and reports every problem.\n")
		return 2
	}
	var cf commonFlags
	fs := newFlagSet("config check", "config check [-config FILE] [flags]", stderr)
	cf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
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
