// Package rulesets builds detection rule directories of a given size for
// benchmarks, from the shipped pack.
//
// A set of n rules holds shipped rules first — for n below the pack's size,
// the rules the attack chain of PRODUCT.md needs come first, so small sets
// still detect it — and, past the pack's size, variants of shipped rules.
// Variant k of a rule keeps its sources (so the rule index hands it the same
// candidate events) and its whole condition, and adds a clause scoping it to
// an AWS account of its own, as a managed security provider tunes a rule per
// customer:
//
//	(<shipped condition>) && event.cloud.account.uid == "<account of variant k>"
//
// The clause is evaluated last, so a variant costs its original's full
// evaluation on every candidate event (the pessimistic case for the index),
// yet raises no duplicate alerts: no benchmark stream uses those accounts.
package rulesets

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// chainRules are the shipped rules the PRODUCT.md chain relies on, by id
// prefix, most important first.
var chainRules = []string{
	"host.webshell_written_under_webroot", "host.imds_credentials_from_webserver", "aws.instance_credentials_used_outside",
	"aws.guardduty_instance_credential_exfiltration_outside", "aws.s3_bundle_written_by_instance_session", "aws.s3_appspec_written_by_instance_session",
	"host.codedeploy_", "host.ransomware_file_renamed_encrypted", "host.ransom_note_written", "aws.codedeploy_deployment_from_s3",
	"host.imds_", "host.webserver_spawns_shell", "aws.s3_enumeration", "aws.codepipeline", "aws.guardduty_",
}

// rule is one shipped rule file.
type rule struct {
	path, id string
	doc      yaml.Node
}

// Write writes a set of n detection rules built from the pack in packDir
// into dir (created if missing), plus every correlation rule found in
// packDir and in extraCorrelation (when not empty; files whose id the pack
// already has are skipped). It returns the number of detection rules
// written.
func Write(dir, packDir, extraCorrelation string, n int) (int, error) {
	rules, corr, err := read(packDir)
	if err != nil {
		return 0, err
	}
	if len(rules) == 0 {
		return 0, fmt.Errorf("rulesets: no detection rules in %s", packDir)
	}
	if extraCorrelation != "" {
		_, extra, err := read(extraCorrelation)
		if err != nil {
			return 0, err
		}
		have := map[string]bool{}
		for _, c := range corr {
			have[c.id] = true
		}
		for _, c := range extra {
			if !have[c.id] {
				corr = append(corr, c)
			}
		}
	}
	sort.SliceStable(rules, func(i, j int) bool { return rank(rules[i].id) < rank(rules[j].id) })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	for i, c := range corr {
		if err := writeNode(filepath.Join(dir, fmt.Sprintf("correlation_%02d.yaml", i)), &c.doc); err != nil {
			return 0, err
		}
	}
	for i := range n {
		r := rules[i%len(rules)]
		variant := i / len(rules)
		doc := r.doc
		if variant > 0 {
			var err error
			if doc, err = makeVariant(r, variant, i); err != nil {
				return 0, err
			}
		}
		if err := writeNode(filepath.Join(dir, fmt.Sprintf("rule_%04d.yaml", i)), &doc); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// rank orders chain rules first, in chainRules order, then the rest.
func rank(id string) int {
	for i, p := range chainRules {
		if strings.HasPrefix(id, p) {
			return i
		}
	}
	return len(chainRules)
}

func read(dir string) (rules, corr []rule, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := filepath.Ext(path)
		if d.IsDir() || (ext != ".yaml" && ext != ".yml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return nil
		}
		top := doc.Content[0]
		r := rule{path: path, id: field(top, "id").Value, doc: doc}
		if r.id == "" {
			return nil
		}
		if field(top, "kind").Value == "correlation" {
			corr = append(corr, r)
		} else {
			rules = append(rules, r)
		}
		return nil
	})
	return rules, corr, err
}

var missing = &yaml.Node{}

func field(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return missing
}

// makeVariant returns a deep copy of r's document with a new id and title,
// the account clause appended to the condition, and no inline tests.
func makeVariant(r rule, variant, i int) (yaml.Node, error) {
	var doc yaml.Node
	data, err := yaml.Marshal(&r.doc)
	if err != nil {
		return doc, err
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return doc, err
	}
	top := doc.Content[0]
	cond := field(top, "condition")
	if cond == missing {
		return doc, errors.New("rulesets: " + r.path + ": no condition")
	}
	cond.Value = fmt.Sprintf("(%s) && event.cloud.account.uid == %q", strings.TrimSpace(cond.Value), fmt.Sprintf("7%011d", i))
	cond.Style = yaml.LiteralStyle
	field(top, "id").Value = fmt.Sprintf("%s.variant_%04d", r.id, variant)
	if t := field(top, "title"); t != missing {
		t.Value = fmt.Sprintf("%s (account variant %d)", t.Value, variant)
	}
	var kept []*yaml.Node
	for j := 0; j+1 < len(top.Content); j += 2 {
		if top.Content[j].Value != "tests" {
			kept = append(kept, top.Content[j], top.Content[j+1])
		}
	}
	top.Content = kept
	return doc, nil
}

func writeNode(path string, doc *yaml.Node) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
