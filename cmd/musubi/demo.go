package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/replay"
	"github.com/musubi-xdr/musubi/ui"
)

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	fs := newFlagSet("demo", "demo [flags]\n\nRuns the whole product on embedded defaults: the local ClickHouse (start it\nwith 'make clickhouse-start' or use 'make demo'), an in-process Kafka broker\nunless -brokers or MUSUBI_KAFKA_BROKERS names one, the engine and the API.\nIt publishes the demo account's AWS Config snapshot, prints the attack\npath Musubi predicts from it, then publishes the bundled attack scenario\nand its benign background to the raw topics, prints the incidents Musubi found and how to open them through\nthe API, then keeps serving until Ctrl-C.", stdout, stderr)
	cf.register(fs, flagsAll)
	data := fs.String("data", "testdata/scenarios", "directory of telemetry files to publish")
	inventory := fs.String("inventory", "testdata/demo", "directory of AWS Config files published before the telemetry (the demo account's assets; empty: none)")
	exitAfter := fs.Bool("exit", false, "exit after printing the incidents instead of serving")
	wait := fs.Duration("wait", 90*time.Second, "how long to wait for the incidents")
	if code, stop := fs.parse(args); stop {
		return code
	}
	brokersSet := cf.brokers != "" || os.Getenv("MUSUBI_KAFKA_BROKERS") != ""
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "musubi demo: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := newLogger(cfg.Log, stderr)

	if !brokersSet {
		topics := make([]string, 0, len(cfg.Kafka.Topics))
		for _, t := range cfg.Kafka.Topics {
			topics = append(topics, t)
		}
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
		if err != nil {
			fmt.Fprintf(stderr, "musubi demo: embedded Kafka: %v\n", err)
			return 1
		}
		defer cluster.Close()
		cfg.Kafka.Brokers = cluster.ListenAddrs()
		fmt.Fprintf(stdout, "▸ embedded Kafka broker on %s\n", strings.Join(cfg.Kafka.Brokers, ","))
	}

	secret := randomSecret()
	cfg.API.Tokens = append(cfg.API.Tokens, config.Token{Name: "demo-admin", Secret: secret, Role: "admin", Tenants: []string{"*"}})
	e, err := newEngine(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "musubi demo: %v\n", err)
		if strings.Contains(err.Error(), "clickhouse") {
			fmt.Fprintln(stderr, "musubi demo: is ClickHouse running? 'make demo' starts it (deployments/local/clickhouse.sh start).")
		}
		return 1
	}
	fmt.Fprintf(stdout, "▸ ClickHouse %s, database %s (schema applied)\n", strings.Join(cfg.ClickHouse.Addr, ","), cfg.ClickHouse.Database)
	fmt.Fprintf(stdout, "▸ %d detection rules loaded from %s\n", len(e.rules.Set().Rules()), cfg.Rules.Dir)
	base := "http://" + e.addr()
	fmt.Fprintf(stdout, "▸ API on %s\n", base)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.run(ctx) }()

	if *inventory != "" {
		// The inventory first: the path is predicted before anyone walks it.
		n, err := publishDir(ctx, cfg, *inventory, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "musubi demo: publish: %v\n", err)
			cancel()
			<-done
			return 1
		}
		fmt.Fprintf(stdout, "▸ published %d AWS Config message(s) of the demo account from %s\n\n", n, *inventory)
		paths, err := waitForExposures(ctx, base, secret, *wait)
		if err != nil {
			fmt.Fprintf(stderr, "musubi demo: %v\n", err)
			cancel()
			<-done
			return 1
		}
		printDemoPaths(stdout, paths)
	}

	n, err := publishDir(ctx, cfg, *data, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "musubi demo: publish: %v\n", err)
		cancel()
		<-done
		return 1
	}
	fmt.Fprintf(stdout, "▸ published %d records from %s to the raw topics\n\n", n, *data)

	incidents, err := waitForIncidents(ctx, base, secret, *wait)
	if err != nil {
		fmt.Fprintf(stderr, "musubi demo: %v\n", err)
		cancel()
		<-done
		return 1
	}
	for i := range incidents {
		// The queue lists incidents without their graphs; fetch each one.
		var d casework.IncidentDetail
		if err := getAPI(ctx, base+"/v1/incidents/"+incidents[i].ID, secret, &d); err == nil {
			incidents[i].Nodes, incidents[i].Edges = d.Nodes, d.Edges
		}
	}
	printDemoIncidents(stdout, incidents)
	if *inventory != "" && len(incidents) > 0 {
		printDemoLink(ctx, stdout, base, secret, incidents)
	}
	fmt.Fprintf(stdout, "\nOpen them through the API (demo admin token below):\n")
	fmt.Fprintf(stdout, "  export MUSUBI_TOKEN=%s\n", secret)
	fmt.Fprintf(stdout, "  curl -s -H \"Authorization: Bearer $MUSUBI_TOKEN\" '%s/v1/incidents?min_severity=4'\n", base)
	if len(incidents) > 0 {
		fmt.Fprintf(stdout, "  curl -s -H \"Authorization: Bearer $MUSUBI_TOKEN\" '%s/v1/incidents/%s'\n", base, incidents[0].ID)
	}
	fmt.Fprintf(stdout, "  curl -s %s/metrics | grep musubi_\n", base)
	if !*exitAfter {
		fmt.Fprintf(stdout, "\nServing until Ctrl-C.\n")
	}
	// The last line: where to work the incidents in a browser.
	fmt.Fprintf(stdout, "\nConsole: %s%s (sign in with the token above)\n", base, ui.Prefix)
	if *exitAfter {
		cancel()
		<-done
		return 0
	}
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "musubi demo: %v\n", err)
		return 1
	}
	return 0
}

func randomSecret() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return "msb_" + hex.EncodeToString(b[:])
}

// publishDir publishes every file under dir to the topic of its source:
// line-oriented files (flow logs, agent and Falco JSON lines) one message per
// line, JSON documents one message per file, in name order.
func publishDir(ctx context.Context, cfg config.Config, dir string, stdout io.Writer) (int, error) {
	recs, err := replay.ReadFiles([]string{dir})
	if err != nil {
		return 0, err
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Kafka.Brokers...),
		Balancer:               &kafka.Hash{},
		BatchTimeout:           20 * time.Millisecond,
		AllowAutoTopicCreation: true,
		RequiredAcks:           kafka.RequireAll,
	}
	defer w.Close()
	var msgs []kafka.Message
	for _, r := range recs {
		src := ingest.Detect(r.Value)
		topic, ok := cfg.Kafka.Topics[string(src)]
		if !ok {
			fmt.Fprintf(stdout, "  (skipping %s: not telemetry of a known source)\n", r.Topic)
			continue
		}
		for _, part := range replay.SplitMessages(src, r.Value) {
			msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(r.Topic), Value: part})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return 0, err
	}
	return len(msgs), nil
}

// waitForIncidents polls the API until the incidents stop changing for a
// few seconds after the first high-severity one appears, or until timeout.
func waitForIncidents(ctx context.Context, base, token string, timeout time.Duration) ([]casework.Incident, error) {
	deadline := time.Now().Add(timeout)
	var last []casework.Incident
	var stableSince time.Time
	lastKey := ""
	for time.Now().Before(deadline) {
		page, err := getIncidents(ctx, base, token)
		if err == nil {
			key := ""
			high := false
			for _, in := range page {
				key += fmt.Sprintf("%s/%d;", in.ID, in.Version)
				high = high || in.Severity >= ocsf.SeverityHigh
			}
			if key != lastKey {
				lastKey, stableSince, last = key, time.Now(), page
			} else if high && time.Since(stableSince) > 3*time.Second {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if len(last) > 0 {
		return last, nil
	}
	return nil, fmt.Errorf("no incident within %s; check the log above for errors", timeout)
}

func getIncidents(ctx context.Context, base, token string) ([]casework.Incident, error) {
	var page casework.IncidentPage
	err := getAPI(ctx, base+"/v1/incidents?limit=100&sort=severity", token, &page)
	return page.Items, err
}

// getAPI GETs url with the bearer token and decodes the JSON answer into v.
func getAPI(ctx context.Context, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitForExposures polls GET /v1/exposures until the published inventory
// gives a predicted path, or until timeout.
func waitForExposures(ctx context.Context, base, token string, timeout time.Duration) ([]api.Exposure, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var page api.ExposurePage
		if err := getAPI(ctx, base+"/v1/exposures", token, &page); err == nil && len(page.Items) > 0 {
			return page.Items, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no predicted attack path from the demo inventory within %s; check the log above for errors", timeout)
}

// printDemoPaths prints the predicted paths with their hops and the
// countermeasures that would break them.
func printDemoPaths(w io.Writer, paths []api.Exposure) {
	fmt.Fprintf(w, "Before the attack, Musubi predicts %d attack path(s) from the inventory alone:\n\n", len(paths))
	for _, p := range paths {
		fmt.Fprintf(w, "  [risk %d] %s in account %s (%s)\n", p.Risk, p.Kind, p.Account, p.ID)
		for i, n := range p.Nodes() {
			arrow := "      "
			if i > 0 {
				arrow = "    → "
			}
			fmt.Fprintf(w, "  %s%s %s\n", arrow, n.Entity, n.Value)
		}
		var breaks []string
		for _, c := range p.Countermeasures {
			if c.Effect == "breaks" {
				breaks = append(breaks, c.ID)
			}
		}
		if len(breaks) > 0 {
			fmt.Fprintf(w, "      broken by any of: %s\n", strings.Join(breaks, ", "))
		}
	}
	fmt.Fprintln(w)
}

// printDemoLink prints how the most severe incident's risk is made and the
// predicted paths it walked (GET /v1/incidents/{id}/exposures).
func printDemoLink(ctx context.Context, w io.Writer, base, token string, incidents []casework.Incident) {
	top := incidents[0] // printDemoIncidents sorted them by severity
	var d casework.IncidentDetail
	if err := getAPI(ctx, base+"/v1/incidents/"+top.ID, token, &d); err == nil && d.Risk != nil {
		parts := []string{fmt.Sprintf("correlation %d", d.Risk.Correlation)}
		for _, f := range d.Risk.Factors {
			parts = append(parts, fmt.Sprintf("%s +%d (weight %d)", f.Name, f.Points, f.Weight))
		}
		fmt.Fprintf(w, "\nRisk %d of %s = %s\n", d.RiskScore, top.ID, strings.Join(parts, ", "))
	}
	var ex api.IncidentExposures
	if err := getAPI(ctx, base+"/v1/incidents/"+top.ID+"/exposures", token, &ex); err != nil {
		fmt.Fprintf(w, "\n(could not read the incident's predicted paths: %v)\n", err)
		return
	}
	if len(ex.Items) == 0 {
		fmt.Fprintf(w, "\nThe incident lies on no predicted path.\n")
		return
	}
	for _, m := range ex.Items {
		var shared []string
		for _, n := range m.Shared {
			shared = append(shared, string(n.Node.Entity)+" "+n.Node.Value)
		}
		fmt.Fprintf(w, "\nThe incident walked predicted path %s (predicted since %s): %s\n", m.Path.ID,
			time.UnixMilli(m.Since).UTC().Format("2006-01-02 15:04 UTC"), strings.Join(shared, ", "))
	}
}

// demoEntityOrder is the order the demo lists an incident's entities in:
// the identifiers that tie the attack chain together first.
var demoEntityOrder = []ocsf.Entity{
	ocsf.EntityInstance, ocsf.EntityHost, ocsf.EntityIP, ocsf.EntityAccessKey, ocsf.EntitySession,
	ocsf.EntityBucket, ocsf.EntityObject, ocsf.EntityDeployment, ocsf.EntityPipeline, ocsf.EntityFinding,
}

func printDemoIncidents(w io.Writer, incidents []casework.Incident) {
	sort.SliceStable(incidents, func(i, j int) bool { return incidents[i].Severity > incidents[j].Severity })
	fmt.Fprintf(w, "Musubi found %d incident(s):\n\n", len(incidents))
	for _, in := range incidents {
		fmt.Fprintf(w, "  [%s] %s  risk %d\n", strings.ToUpper(ocsf.SeverityName(in.Severity)), in.Title, in.RiskScore)
		fmt.Fprintf(w, "      id %s · %d alerts · %d nodes · %d edges · %s → %s\n", in.ID, len(in.AlertIDs), len(in.Nodes), len(in.Edges),
			time.UnixMilli(in.FirstSeen).UTC().Format(time.TimeOnly), time.UnixMilli(in.LastSeen).UTC().Format(time.TimeOnly))
		if len(in.Stages) > 0 {
			fmt.Fprintf(w, "      stages: %s\n", strings.Join(in.Stages, " → "))
		}
		var ents []string
		for _, kind := range demoEntityOrder {
			for _, n := range in.Nodes {
				if n.Kind == "entity" && n.Entity == kind {
					ents = append(ents, string(n.Entity)+"="+n.Value)
				}
			}
		}
		if len(ents) > 12 {
			ents = append(ents[:12], fmt.Sprintf("… %d more", len(ents)-12))
		}
		if len(ents) > 0 {
			fmt.Fprintf(w, "      entities: %s\n", strings.Join(ents, ", "))
		}
	}
}
