// Command musubi is Musubi's single binary: the streaming engine, the offline
// replay, the rule tooling and the demo.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

type command struct {
	name, summary string
	subcommands   []string
}

// commands lists the subcommands: the top-level help, `musubi help` and the
// shell completions are built from it. subcommands are the words a command
// takes first (migrate up, rules lint, …).
var commands = []command{
	{"serve", "run the engine: consume Kafka, detect, correlate, store, serve the API", nil},
	{"replay", "run normalize → rules → correlate offline on files; print incidents", nil},
	{"eval", "score detection quality on scenarios with ground truth (-generate writes them)", nil},
	{"normalize", "print the normalized OCSF events of files, one JSON object per line", nil},
	{"rules", "lint, test and report ATT&CK coverage of a rule directory", []string{"lint", "test", "coverage"}},
	{"migrate", "apply or show the ClickHouse schema migrations", []string{"up", "status"}},
	{"demo", "the whole product on embedded defaults with a sample attack", nil},
	{"config", "validate a configuration file and report every problem", []string{"check"}},
	{"healthcheck", "probe a running engine's /readyz (the container healthcheck)", nil},
	{"completion", "print a shell completion script (bash, zsh or fish)", []string{"bash", "zsh", "fish"}},
	{"version", "print the version, commit, build date and Go version", nil},
	{"help", "show the help of a command", nil},
}

func usage() string {
	var b strings.Builder
	b.WriteString("musubi — XDR event correlation for AWS\n\nUsage:\n  musubi <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands {
		name := c.name
		if len(c.subcommands) > 0 {
			name += " " + strings.Join(c.subcommands, "|")
		}
		fmt.Fprintf(&b, "  %-26s %s\n", name, c.summary)
	}
	b.WriteString("\nRun 'musubi help <command>' or 'musubi <command> -h' for the flags of a command.\n")
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCommand(ctx, rest, stdout, stderr)
	case "replay":
		return replayCommand(ctx, rest, stdout, stderr)
	case "eval":
		return evalCommand(rest, stdout, stderr)
	case "normalize":
		return normalizeCommand(rest, stdin, stdout, stderr)
	case "rules":
		return rulesCommand(rest, stdout, stderr)
	case "migrate":
		return migrateCommand(ctx, rest, stdout, stderr)
	case "demo":
		return demoCommand(ctx, rest, stdout, stderr)
	case "config":
		return configCommand(rest, stdout, stderr)
	case "completion":
		return completionCommand(rest, stdout, stderr)
	case "healthcheck":
		return healthcheckCommand(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fs := newFlagSet("version", "version\n\nPrints the version, the commit and date it was built from, and the Go version.", stdout, stderr)
		if code, stop := fs.parse(rest); stop {
			return code
		}
		currentBuild().print(stdout)
		return 0
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 || cmd != "help" {
			fmt.Fprint(stdout, usage())
			return 0
		}
		if !slices.ContainsFunc(commands, func(c command) bool { return c.name == rest[0] }) || rest[0] == "help" {
			fmt.Fprintf(stderr, "musubi help: unknown command %q\n\n%s", rest[0], usage())
			return 2
		}
		// `musubi help rules lint` is `musubi rules lint -h`.
		return run(ctx, append(slices.Clone(rest), "-h"), stdin, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "musubi: unknown command %q\n\n%s", cmd, usage())
		return 2
	}
}
