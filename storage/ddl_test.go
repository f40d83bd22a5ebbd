package storage

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var distributedRE = regexp.MustCompile(`CREATE TABLE IF NOT EXISTS musubi\.(\w+) .*\nENGINE = Distributed\(`)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRenderDDLGolden pins the DDL of both deployment shapes. The cluster
// variant runs against a real cluster in `make test-cluster`
// (deployments/cluster_test.go); here its text is reviewed through the
// golden file.
func TestRenderDDLGolden(t *testing.T) {
	for _, tc := range []struct{ name, cluster string }{{"single", ""}, {"cluster", "musubi_cluster"}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.Cluster = tc.cluster
			stmts, err := RenderDDL(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(stmts, ";\n\n") + ";\n"
			path := filepath.Join("testdata", "ddl_"+tc.name+".sql")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("DDL differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
			for _, s := range stmts {
				if tc.cluster == "" && (strings.Contains(s, "ON CLUSTER") || strings.Contains(s, "Replicated") || strings.Contains(s, "Distributed")) {
					t.Errorf("single-node DDL has cluster syntax: %s", s)
				}
				// ALTERs run once per shard (execPerShard), a backfill
				// once, through the Distributed tables, everything else ON
				// CLUSTER.
				alter := strings.HasPrefix(s, "ALTER TABLE ")
				if strings.HasPrefix(s, "INSERT INTO ") {
					if tc.cluster != "" && (strings.Contains(s, "ON CLUSTER") || strings.Contains(s, "_local")) {
						t.Errorf("cluster DDL: a backfill runs once through the Distributed tables: %s", s)
					}
					continue
				}
				if tc.cluster != "" && alter == strings.Contains(s, "ON CLUSTER "+tc.cluster) {
					t.Errorf("cluster DDL: ALTERs run once per shard, everything else ON CLUSTER: %s", s)
				}
			}
			if tc.cluster != "" {
				// One Distributed table per data table (a column change
				// recreates it), and no ALTER of one: 18.16 refuses ALTER
				// ON CLUSTER of a table that is not replicated.
				dist := map[string]bool{}
				for _, m := range distributedRE.FindAllStringSubmatch(got, -1) {
					dist[m[1]] = true
				}
				if len(dist) != len(Tables()) {
					t.Errorf("got %d Distributed tables, want %d", len(dist), len(Tables()))
				}
				for _, s := range stmts {
					for tbl := range dist {
						if strings.HasPrefix(s, "ALTER TABLE musubi."+tbl+" ") {
							t.Errorf("ALTER of the Distributed table %s: %s", tbl, s)
						}
					}
				}
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- c\nCREATE a;\n\n-- only a comment\n;\nCREATE b (x String);\n")
	if len(got) != 2 || got[0] != "CREATE a" || got[1] != "CREATE b (x String)" {
		t.Errorf("got %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c := Default()
	c.Addr = nil
	c.Database = "musubi; DROP"
	c.Cluster = "a b"
	c.MaxExecutionTime = 0
	c.Retention = map[string]time.Duration{"nope": 48 * time.Hour, TableEvents: time.Hour, TableNodes: 48 * time.Hour}
	c.RetryMin = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("got nil, want errors")
	}
	for _, want := range []string{"addr", "database", "cluster", "max_execution_time", `unknown table "nope"`, "shorter than one daily partition", "incident_nodes (48h0m0s) differs", "retry_min"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if !errors.Is(err, errConfig) {
		t.Errorf("got %v, want errConfig", err)
	}
	c = Default()
	c.Addr = []string{"ch", "ch:native"}
	c.DialTimeout = time.Millisecond
	err = c.Validate()
	for _, want := range []string{`addr[0]: "ch" is not host:port`, `addr[1]: port "native" is not a number`, "dial_timeout: 1ms is shorter than 100ms"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestPartitionEnd(t *testing.T) {
	for _, tc := range []struct {
		p       string
		monthly bool
		want    string
		ok      bool
	}{
		{"20261130", false, "2026-12-01", true},
		{"202612", true, "2027-01-01", true},
		{"202612", false, "", false},
		{"2026-12", true, "", false},
		{"tuple()", false, "", false},
	} {
		end, ok := partitionEnd(tc.p, tc.monthly)
		if ok != tc.ok || (ok && end.Format(time.DateOnly) != tc.want) {
			t.Errorf("partitionEnd(%q, %v) = %v, %v; want %s, %v", tc.p, tc.monthly, end, ok, tc.want, tc.ok)
		}
	}
}
