package deployments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// dashboard is the part of a Grafana dashboard JSON the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int           `json:"id"`
	Type        string        `json:"type"`
	Title       string        `json:"title"`
	Datasource  datasourceRef `json:"datasource"`
	Targets     []target      `json:"targets"`
	FieldConfig struct {
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

type target struct {
	RefID      string        `json:"refId"`
	Datasource datasourceRef `json:"datasource"`
	EditorType string        `json:"editorType"`
	QueryType  string        `json:"queryType"`
	Format     *int          `json:"format"`
	RawSQL     string        `json:"rawSql"`
	Expr       string        `json:"expr"`
}

type variable struct {
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	Datasource datasourceRef `json:"datasource"`
	Query      string        `json:"query"`
	IncludeAll bool          `json:"includeAll"`
}

const (
	clickhouseUID  = "musubi-clickhouse"
	prometheusUID  = "musubi-prometheus"
	clickhouseType = "grafana-clickhouse-datasource"
)

// dsVariables are the datasource variables every panel and query variable
// selects its datasource with, by type: no dashboard hard-codes a
// datasource uid, so they load into any Grafana whatever its datasources
// are called.
var dsVariables = map[string]string{clickhouseType: "${ds_clickhouse}", "prometheus": "${ds_prometheus}"}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in grafana/dashboards (%v)", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(data)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || len(d.Panels) == 0 {
			t.Fatalf("%s: dashboard without uid or panels", f)
		}
		if _, dup := out[d.UID]; dup {
			t.Fatalf("%s: duplicate dashboard uid %s", f, d.UID)
		}
		out[d.UID] = d
	}
	return out
}

// TestDashboardsStructure checks what Grafana needs to load the dashboards
// with the provisioned datasources: unique panel ids, every target on a
// provisioned datasource, SQL targets in the ClickHouse plugin's SQL editor
// with a query type, and the four views the SOC relies on.
func TestDashboardsStructure(t *testing.T) {
	dashes := loadDashboards(t)
	for _, uid := range []string{"musubi-soc-overview", "musubi-incident", "musubi-detections", "musubi-pipeline"} {
		if _, ok := dashes[uid]; !ok {
			t.Errorf("dashboard %s is missing", uid)
		}
	}
	ds := provisionedDatasources(t)
	types := map[string]bool{}
	for _, typ := range ds {
		types[typ] = true
	}
	for uid, d := range dashes {
		dsVars := map[string]string{} // "${name}" → plugin type
		for _, v := range d.Templating.List {
			if v.Type == "datasource" {
				dsVars["${"+v.Name+"}"] = v.Query
				if !types[v.Query] {
					t.Errorf("%s: datasource variable %s selects type %q, which is not provisioned", uid, v.Name, v.Query)
				}
			} else if v.Datasource.Type != "" && dsVars[v.Datasource.UID] != v.Datasource.Type {
				t.Errorf("%s: variable %s uses datasource %+v, want a datasource variable declared before it", uid, v.Name, v.Datasource)
			}
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: duplicate panel id %d", uid, p.ID)
			}
			ids[p.ID] = true
			if len(p.Targets) == 0 {
				t.Errorf("%s/%s: no targets", uid, p.Title)
			}
			if p.Datasource.UID != "" && dsVars[p.Datasource.UID] != p.Datasource.Type {
				t.Errorf("%s/%s: panel datasource %+v, want %s", uid, p.Title, p.Datasource, dsVariables[p.Datasource.Type])
			}
			for _, tg := range p.Targets {
				if typ, ok := dsVars[tg.Datasource.UID]; !ok || typ != tg.Datasource.Type || tg.Datasource.UID != dsVariables[typ] {
					t.Errorf("%s/%s/%s: datasource %+v, want the %s variable %s", uid, p.Title, tg.RefID, tg.Datasource, tg.Datasource.Type, dsVariables[tg.Datasource.Type])
				}
				if tg.Datasource.Type == clickhouseType {
					checkClusterSafe(t, uid+"/"+p.Title+"/"+tg.RefID, tg.RawSQL)
				}
				switch tg.Datasource.Type {
				case clickhouseType:
					if tg.EditorType != "sql" || tg.RawSQL == "" || tg.Format == nil {
						t.Errorf("%s/%s/%s: a ClickHouse target needs editorType sql, rawSql and format", uid, p.Title, tg.RefID)
					}
					want := "table"
					if p.Type == "timeseries" {
						want = "timeSeries"
					}
					if tg.QueryType != want {
						t.Errorf("%s/%s/%s: queryType %q, want %q", uid, p.Title, tg.RefID, tg.QueryType, want)
					}
				case "prometheus":
					if tg.Expr == "" {
						t.Errorf("%s/%s/%s: empty PromQL expression", uid, p.Title, tg.RefID)
					}
				}
			}
		}
	}
}

var inSubqueryRe = regexp.MustCompile(`(?i)(\bGLOBAL\s+)?\bIN\s*\(\s*SELECT\b`)

// checkClusterSafe checks that every IN over a subquery is GLOBAL IN: on a
// cluster (Distributed tables) a plain IN subquery runs on every shard
// against its local part only, and ClickHouse refuses it by default
// (distributed_product_mode = deny). The API uses GLOBAL IN for the same
// reason.
func checkClusterSafe(t *testing.T, where, sql string) {
	t.Helper()
	for _, m := range inSubqueryRe.FindAllStringSubmatch(sql, -1) {
		if m[1] == "" {
			t.Errorf("%s: %q over a subquery, want GLOBAL IN (a cluster refuses it)", where, strings.Join(strings.Fields(m[0]), " "))
		}
	}
}

// provisionedDatasources returns uid → type of the provisioned datasources,
// and checks the ClickHouse one selects Musubi's database by default (the
// panels use unqualified table names).
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("grafana/provisioning/datasources/musubi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name     string         `yaml:"name"`
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Datasources {
		out[d.UID] = d.Type
		if d.Type == clickhouseType {
			if d.JSONData["defaultDatabase"] == nil || d.JSONData["protocol"] != "native" {
				t.Errorf("ClickHouse datasource %s: want protocol native and a defaultDatabase, got %v", d.UID, d.JSONData)
			}
		}
	}
	if out[clickhouseUID] != clickhouseType || out[prometheusUID] != "prometheus" {
		t.Fatalf("provisioned datasources %v, want %s and %s", out, clickhouseUID, prometheusUID)
	}
	return out
}

// macros expands Grafana's variables and the ClickHouse plugin's macros the
// way Grafana and the plugin (pkg/macros) do, for one time range.
type macros struct {
	from, to time.Time
	interval time.Duration
	vars     map[string][]string
}

var (
	varRe   = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)
	macroRe = regexp.MustCompile(`\$__(\w+)(?:\(([^()]*)\))?`)
)

func (m macros) expand(sql string) (string, error) {
	var errs []string
	// Grafana interpolates dashboard variables first (the $__ names are
	// left to the datasource).
	sql = varRe.ReplaceAllStringFunc(sql, func(s string) string {
		g := varRe.FindStringSubmatch(s)
		name, format := g[1], g[2]
		if name == "" {
			name = g[3]
		}
		if strings.HasPrefix(name, "__") {
			return s
		}
		vals, ok := m.vars[name]
		if !ok {
			errs = append(errs, "unknown variable "+s)
			return s
		}
		switch format {
		case "":
			return strings.Join(vals, ",")
		case "singlequote":
			q := make([]string, len(vals))
			for i, v := range vals {
				q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
			}
			return strings.Join(q, ",")
		default:
			errs = append(errs, "unsupported variable format "+s)
			return s
		}
	})
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	sql = macroRe.ReplaceAllStringFunc(sql, func(s string) string {
		g := macroRe.FindStringSubmatch(s)
		name, arg := g[1], strings.TrimSpace(g[2])
		secs := max(int(m.interval.Seconds()), 1)
		switch name {
		case "timeFilter":
			return fmt.Sprintf("%s >= %s AND %s <= %s", arg, dt(m.from), arg, dt(m.to))
		case "dateFilter":
			return fmt.Sprintf("%s >= toDate('%s') AND %s <= toDate('%s')", arg, m.from.UTC().Format(time.DateOnly), arg, m.to.UTC().Format(time.DateOnly))
		case "fromTime":
			return dt(m.from)
		case "toTime":
			return dt(m.to)
		case "interval_s":
			return fmt.Sprint(secs)
		case "timeInterval":
			// Expanded as the plugin does; toStartOfInterval does not exist
			// on ClickHouse 18.16, so a panel using it fails here.
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", arg, secs)
		}
		errs = append(errs, "unsupported macro "+s)
		return s
	})
	if strings.Contains(sql, "$") {
		errs = append(errs, "unexpanded $ left in the query")
	}
	if len(errs) > 0 {
		return sql, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return sql, nil
}

// result is what a query returned: column names and database types, and
// the rows as Go values.
type result struct {
	names []string
	types []string
	rows  [][]any
}

func (r result) col(name string) int { return slices.Index(r.names, name) }

func (r result) strings(name string) []string {
	i := r.col(name)
	var out []string
	for _, row := range r.rows {
		out = append(out, fmt.Sprint(row[i]))
	}
	return out
}

func runQuery(ctx context.Context, s seeded, sql string) (result, error) {
	rows, err := s.conn.Query(ctx, sql)
	if err != nil {
		return result{}, err
	}
	defer rows.Close()
	var r result
	r.names = rows.Columns()
	for _, ct := range rows.ColumnTypes() {
		r.types = append(r.types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		ptrs := make([]any, len(r.names))
		for i, ct := range rows.ColumnTypes() {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return r, err
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		r.rows = append(r.rows, row)
	}
	return r, rows.Err()
}

func isNumeric(typ string) bool {
	typ = strings.TrimPrefix(strings.TrimSuffix(typ, ")"), "Nullable(")
	return strings.HasPrefix(typ, "UInt") || strings.HasPrefix(typ, "Int") || strings.HasPrefix(typ, "Float") || strings.HasPrefix(typ, "Decimal")
}

var fieldRefRe = regexp.MustCompile(`\$\{__data\.fields\.(\w+)\}`)

// TestDashboardQueries runs every ClickHouse query of every dashboard —
// panels and template variables, with Grafana's variables and the plugin's
// macros expanded — against a database seeded by replaying the attack
// scenario through the real pipeline, and checks each returns rows of the
// shape its panel reads.
func TestDashboardQueries(t *testing.T) {
	dashes := loadDashboards(t)
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := macros{
		from: s.from, to: time.Now().Add(time.Hour), interval: 5 * time.Minute,
		vars: map[string][]string{"tenant": {s.tenant}, "incident": {s.incident}},
	}

	checks := valueChecks(ctx, t, s)
	seen := map[string]bool{}
	defer func() {
		for k := range checks {
			if !seen[k] {
				t.Errorf("value check %q names no panel query", k)
			}
		}
	}()
	for _, uid := range slices.Sorted(func(yield func(string) bool) {
		for k := range dashes {
			if !yield(k) {
				return
			}
		}
	}) {
		d := dashes[uid]
		for _, v := range d.Templating.List {
			if v.Datasource.Type != clickhouseType {
				continue
			}
			t.Run(uid+"/var/"+v.Name, func(t *testing.T) {
				sql, err := m.expand(v.Query)
				if err != nil {
					t.Fatalf("%v\n%s", err, sql)
				}
				r, err := runQuery(ctx, s, sql)
				if err != nil {
					t.Fatalf("%v\n%s", err, sql)
				}
				if len(r.names) != 1 {
					t.Errorf("variable query returns %d columns, want 1", len(r.names))
				}
				want := m.vars[v.Name][0]
				if !slices.Contains(r.strings(r.names[0]), want) {
					t.Errorf("variable %s offers %v, want it to include %q", v.Name, r.strings(r.names[0]), want)
				}
			})
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Datasource.Type != clickhouseType {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/%s", uid, p.Title, tg.RefID), func(t *testing.T) {
					sql, err := m.expand(tg.RawSQL)
					if err != nil {
						t.Fatalf("%v\n%s", err, sql)
					}
					r, err := runQuery(ctx, s, sql)
					if err != nil {
						t.Fatalf("%v\n%s", err, sql)
					}
					if len(r.rows) == 0 {
						t.Fatalf("no rows on the seeded scenario\n%s", sql)
					}
					checkShape(t, p, tg, r)
					if check, ok := checks[uid+"/"+p.Title+"/"+tg.RefID]; ok {
						check(t, s, r)
					}
					seen[uid+"/"+p.Title+"/"+tg.RefID] = true
				})
			}
		}
	}
}

// checkShape checks a result against what its panel type reads, and that
// every column the panel's overrides and links name is there.
func checkShape(t *testing.T, p panel, tg target, r result) {
	t.Helper()
	has := func(cols ...string) {
		t.Helper()
		for _, c := range cols {
			if r.col(c) < 0 {
				t.Errorf("column %q missing (got %v)", c, r.names)
			}
		}
	}
	numeric := func() {
		t.Helper()
		for _, typ := range r.types {
			if isNumeric(typ) {
				return
			}
		}
		t.Errorf("no numeric column among %v %v", r.names, r.types)
	}
	switch p.Type {
	case "nodeGraph":
		// Grafana's Node Graph takes a frame with a source field as edges,
		// any other as nodes.
		if r.col("source") >= 0 {
			has("id", "source", "target", "mainstat")
		} else {
			has("id", "title", "subtitle", "mainstat", "secondarystat", "color")
		}
		for i, n := range r.names {
			if !slices.Contains([]string{"id", "title", "subtitle", "mainstat", "secondarystat", "color", "source", "target"}, n) && !strings.HasPrefix(n, "detail__") && !strings.HasPrefix(n, "arc__") {
				t.Errorf("column %q (%s) is not a Node Graph field", n, r.types[i])
			}
		}
	case "timeseries":
		if !strings.HasPrefix(r.types[0], "DateTime") {
			t.Errorf("first column %s is %s, want a DateTime time column", r.names[0], r.types[0])
		}
		numeric()
	case "stat", "bargauge", "piechart", "gauge":
		numeric()
	}
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID == "byName" {
			has(o.Matcher.Options)
		}
		for _, prop := range o.Properties {
			for _, ref := range fieldRefRe.FindAllStringSubmatch(string(prop.Value), -1) {
				has(ref[1])
			}
		}
	}
}

// valueChecks are what an analyst would notice per panel on the seeded
// scenario: the attack incident (acknowledged, then resolved) leaves the
// open queue, its graph is complete and consistent, its timeline holds all
// of its alerts.
func valueChecks(ctx context.Context, t *testing.T, s seeded) map[string]func(*testing.T, seeded, result) {
	var incidents, nodes, edges, alerts uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(incident_id) FROM incidents").Scan(&incidents); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.QueryRow(ctx, "SELECT toUInt64(node_count), toUInt64(edge_count), toUInt64(length(alert_ids)) FROM incidents WHERE incident_id = ? ORDER BY version DESC LIMIT 1", s.incident).Scan(&nodes, &edges, &alerts); err != nil {
		t.Fatal(err)
	}
	if incidents < 2 || nodes == 0 || edges == 0 || alerts == 0 {
		t.Fatalf("seeded %d incidents; attack incident %d nodes, %d edges, %d alerts", incidents, nodes, edges, alerts)
	}
	rowsWant := func(want uint64) func(*testing.T, seeded, result) {
		return func(t *testing.T, _ seeded, r result) {
			if uint64(len(r.rows)) != want {
				t.Errorf("%d rows, want %d", len(r.rows), want)
			}
		}
	}
	var shadowRules, shadowAlerts uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(rule_id), uniqExact(alert_id) FROM alerts WHERE shadow = 1").Scan(&shadowRules, &shadowAlerts); err != nil {
		t.Fatal(err)
	}
	experimental := map[string]bool{}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT rule_id FROM alerts WHERE shadow = 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		experimental[id] = true
	}
	rows.Close()
	return map[string]func(*testing.T, seeded, result){
		"musubi-detections/Shadow rules: would have fired/A": func(t *testing.T, _ seeded, r result) {
			var total uint64
			for i, row := range r.rows {
				total += reflect.ValueOf(row[r.col("would_have_fired")]).Uint()
				if id := r.strings("rule_id")[i]; !experimental[id] {
					t.Errorf("rule %s is in the shadow panel but raised no shadow alert", id)
				}
			}
			if shadowAlerts == 0 || uint64(len(r.rows)) != shadowRules || total != shadowAlerts {
				t.Errorf("%d rules and %d alerts in the panel, want the %d rules and %d shadow alerts stored (at least one)", len(r.rows), total, shadowRules, shadowAlerts)
			}
		},
		"musubi-soc-overview/Open incidents/A": func(t *testing.T, _ seeded, r result) {
			if got := fmt.Sprint(r.rows[0][0]); got != fmt.Sprint(incidents-1) {
				t.Errorf("open incidents %s, want %d (all but the resolved one)", got, incidents-1)
			}
		},
		"musubi-soc-overview/Incident queue/A": func(t *testing.T, s seeded, r result) {
			if slices.Contains(r.strings("incident_id"), s.incident) {
				t.Errorf("the resolved incident %s is still in the queue", s.incident)
			}
			if uint64(len(r.rows)) != incidents-1 {
				t.Errorf("queue has %d incidents, want %d", len(r.rows), incidents-1)
			}
		},
		"musubi-soc-overview/Time to acknowledge and to resolve, by severity/A": func(t *testing.T, _ seeded, r result) {
			var acked, resolved uint64
			for _, row := range r.rows {
				acked += reflect.ValueOf(row[r.col("acknowledged")]).Uint()
				resolved += reflect.ValueOf(row[r.col("resolved")]).Uint()
			}
			if acked != 1 || resolved != 1 {
				t.Errorf("%d acknowledged and %d resolved, want 1 and 1", acked, resolved)
			}
		},
		"musubi-incident/Incident graph/nodes": func(t *testing.T, s seeded, r result) {
			rowsWant(nodes)(t, s, r)
			// The Node Graph draws the color field as a CSS colour.
			for _, c := range r.strings("color") {
				if !cssColor.MatchString(c) {
					t.Errorf("node colour %q is not a CSS colour", c)
				}
			}
		},
		"musubi-incident/Evidence events/A": func(t *testing.T, s seeded, r result) {
			// Every evidence event of the incident's alerts, each once.
			want, err := runQuery(ctx, s, "SELECT DISTINCT arrayJoin(event_ids) AS id FROM alerts WHERE alert_id GLOBAL IN (SELECT alert_id FROM incident_alerts WHERE incident_id = '"+s.incident+"')")
			if err != nil {
				t.Fatal(err)
			}
			got := r.strings("event_uid")
			wantIDs := want.strings("id")
			slices.Sort(got)
			slices.Sort(wantIDs)
			if len(got) == 0 || !slices.Equal(got, slices.Compact(wantIDs)) {
				t.Errorf("evidence events %v, want the incident's %v", got, wantIDs)
			}
		},
		"musubi-incident/Incident graph/edges": func(t *testing.T, s seeded, r result) {
			rowsWant(edges)(t, s, r)
			ids := map[string]bool{}
			res, err := runQuery(ctx, s, "SELECT id FROM incident_nodes WHERE incident_id = '"+s.incident+"'")
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range res.strings("id") {
				ids[id] = true
			}
			for i, src := range r.strings("source") {
				if dst := r.strings("target")[i]; !ids[src] || !ids[dst] {
					t.Errorf("edge %s → %s has an end that is not a node", src, dst)
				}
			}
		},
		"musubi-soc-overview/Incidents on predicted attack paths/A": func(t *testing.T, s seeded, r result) {
			// The attack walked the demo account's predicted path; the
			// row names the path and the asset factors of its score.
			i := slices.Index(r.strings("incident_id"), s.incident)
			if i < 0 {
				t.Fatalf("the attack incident %s is not on the panel (got %v)", s.incident, r.strings("incident_id"))
			}
			if p := r.strings("predicted_path")[i]; !strings.HasPrefix(p, "xp-") {
				t.Errorf("predicted_path %q, want a path id", p)
			}
			if f := r.strings("asset_factors")[i]; !strings.Contains(f, "on_predicted_path") || !strings.Contains(f, "imdsv1_allowed") {
				t.Errorf("asset_factors %q, want on_predicted_path and imdsv1_allowed", f)
			}
		},
		"musubi-incident/Timeline/A":      rowsWant(alerts),
		"musubi-incident/Links and why/A": rowsWant(edges),
	}
}

// cssColor matches the colours a browser draws: a hex triplet or a CSS
// named colour (letters only; Grafana's "dark-red" is not one).
var cssColor = regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|(red|darkred|orange|yellow|blue|green|purple|gray|grey|black|white))$`)

// TestDashboardsBeforeFirstIncident runs every ClickHouse query of every
// dashboard on an installation that has stored events but no alert or
// incident yet, with $tenant at "All": Grafana expands All to the values
// of the tenant variable, which must therefore not be empty (an empty
// list renders as IN (), which ClickHouse rejects).
func TestDashboardsBeforeFirstIncident(t *testing.T) {
	dashes := loadDashboards(t)
	s := seedEventsOnly(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := macros{from: s.from, to: s.to, interval: 5 * time.Minute, vars: map[string][]string{}}
	for uid, d := range dashes {
		m.vars = map[string][]string{}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			sql, err := m.expand(v.Query)
			if err != nil {
				t.Fatalf("%s/var/%s: %v", uid, v.Name, err)
			}
			r, err := runQuery(ctx, s, sql)
			if err != nil {
				t.Fatalf("%s/var/%s: %v\n%s", uid, v.Name, err, sql)
			}
			vals := r.strings(r.names[0])
			if v.Name == "tenant" && !slices.Contains(vals, s.tenant) {
				t.Errorf("%s: tenant variable offers %v before the first incident, want %q (from its events)", uid, vals, s.tenant)
			}
			if len(vals) == 0 && !v.IncludeAll {
				vals = []string{""} // nothing to pick: Grafana leaves it empty
			}
			// With "All" and no values Grafana expands to nothing: IN ().
			m.vars[v.Name] = vals
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Datasource.Type != clickhouseType {
					continue
				}
				sql, err := m.expand(tg.RawSQL)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", uid, p.Title, tg.RefID, err)
				}
				if _, err := runQuery(ctx, s, sql); err != nil {
					t.Errorf("%s/%s/%s before the first incident: %v\n%s", uid, p.Title, tg.RefID, err, sql)
				}
			}
		}
	}
}

// TestDashboardsFilterTenant runs the ClickHouse panels for a tenant that
// has no data: every panel that lists or plots rows must come back empty,
// so the $tenant variable really scopes what an analyst sees. (Dead letters
// belong to the pipeline, not to a tenant, and are shown unfiltered.)
func TestDashboardsFilterTenant(t *testing.T) {
	dashes := loadDashboards(t)
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := macros{
		from: s.from, to: time.Now().Add(time.Hour), interval: 5 * time.Minute,
		vars: map[string][]string{"tenant": {"someone-else"}, "incident": {s.incident}},
	}
	unscoped := map[string]bool{"musubi-pipeline/Dead letters by source and reason": true}
	n := 0
	for uid, d := range dashes {
		for _, p := range d.Panels {
			if unscoped[uid+"/"+p.Title] || p.Type == "stat" { // a count is one row, 0
				continue
			}
			for _, tg := range p.Targets {
				if tg.Datasource.Type != clickhouseType {
					continue
				}
				if !strings.Contains(tg.RawSQL, "${tenant:singlequote}") {
					t.Errorf("%s/%s/%s does not filter on $tenant", uid, p.Title, tg.RefID)
					continue
				}
				sql, err := m.expand(tg.RawSQL)
				if err != nil {
					t.Fatal(err)
				}
				r, err := runQuery(ctx, s, sql)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", uid, p.Title, tg.RefID, err)
				}
				if len(r.rows) > 0 {
					t.Errorf("%s/%s/%s: %d rows for a tenant without data", uid, p.Title, tg.RefID, len(r.rows))
				}
				n++
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d panel queries checked", n)
	}
}
