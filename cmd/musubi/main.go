// Command musubi is Musubi's single binary: the streaming engine, the offline
// replay, the rule tooling and the demo.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `musubi — XDR event correlation for AWS

Usage:
  musubi <command> [flags] [arguments]

Commands:
  serve         run the engine: consume Kafka, detect, correlate, store, serve the API
  replay        run normalize → rules → correlate offline on files; print incidents
  eval          score detection quality on scenarios with ground truth (-generate writes them)
  normalize     print the normalized OCSF events of files, one JSON object per line
  rules         lint, test and report ATT&CK coverage of a rule directory
  migrate       apply or show the ClickHouse schema migrations (up | status)
  demo          the whole product on embedded defaults with a sample attack
  config check  validate a configuration file and report every problem
  version       print the version

Run 'musubi <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
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
	case "version", "-version", "--version":
		currentBuild().print(stdout)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "musubi: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
