package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/musubi-xdr/musubi/storage"
)

func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	fs := newFlagSet("migrate", "migrate up|status [flags]\n\nup applies every pending ClickHouse schema migration (safe to run twice);\nstatus lists the migrations and whether each is applied.", stdout, stderr)
	cf.register(fs, flagConfig|flagClickHouse|flagLogLevel)
	if wantsHelp(args) {
		fs.help()
		return 0
	}
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		return fs.usageError()
	}
	action := args[0]
	if code, stop := fs.parse(args[1:]); stop {
		return code
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "musubi migrate: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := newLogger(cfg.Log, stderr)
	store, err := storage.Open(ctx, cfg.StorageConfig(), logger, nil)
	if err != nil {
		fmt.Fprintf(stderr, "musubi migrate: %v\n", err)
		return 1
	}
	defer store.Close()
	if action == "up" {
		if err := store.Migrate(ctx); err != nil {
			fmt.Fprintf(stderr, "musubi migrate up: %v\n", err)
			return 1
		}
	}
	st, err := store.MigrationStatus(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "musubi migrate status: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, m := range st {
		applied := "pending"
		if m.Applied {
			applied = m.AppliedAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, applied)
	}
	tw.Flush()
	return 0
}
