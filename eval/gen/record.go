package gen

import (
	"fmt"
	"time"
)

// source is a raw format the generator writes.
type source int

const (
	srcCloudTrail source = iota
	srcFlow
	srcGuardDuty
	srcAgent
	srcFalco
)

// Labels say who caused a record: the main attack, an unrelated attack
// ("unrelated:" and its name) or nobody in particular (benign).
const (
	labelBenign = ""
	labelAttack = "attack"
)

func unrelatedLabel(name string) string { return "unrelated:" + name }

// obj is a JSON object; encoding/json writes its keys sorted, so the bytes
// are deterministic.
type obj = map[string]any

// record is one raw record before it is packed into delivery files.
type record struct {
	src   source
	t     time.Time
	label string
	// account is the account whose trail or flow log delivers it; host the
	// host whose agent or Falco writes it.
	account string
	host    string
	custom  bool // flow record of the custom format
	body    obj  // JSON sources
	flow    flowRecord
	// lag delays the record's delivery file (CloudTrail delivers within
	// minutes, not in order).
	lag time.Duration
}

// flowRecord is one VPC flow log record.
type flowRecord struct {
	eni, instance, subnet, vpc string
	src, dst                   string
	sport, dport, proto        int
	packets, bytes             int
	action                     string
	tcpFlags                   int
}

// day collects a scenario's records.
type day struct {
	w    *world
	r    *rng
	recs []record
	// label is stamped on every record added while it is set.
	label string
	// noAgent names hosts without an agent: their host records are not
	// written.
	noAgent map[string]bool
	// benign collects the entities of benign activity for the truth.
	benign []string
}

func (d *day) add(rec record) {
	if (rec.src == srcAgent || rec.src == srcFalco) && d.noAgent[rec.host] {
		return
	}
	rec.label = d.label
	d.recs = append(d.recs, rec)
}

// as runs fn with every record it adds labelled l.
func (d *day) as(l string, fn func()) {
	prev := d.label
	d.label = l
	fn()
	d.label = prev
}

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func ms(t time.Time) int64 { return t.UnixMilli() }

func arnUser(acct, name string) string { return fmt.Sprintf("arn:aws:iam::%s:user/%s", acct, name) }
func arnRole(acct, name string) string { return fmt.Sprintf("arn:aws:iam::%s:role/%s", acct, name) }
func arnSession(acct, role, session string) string {
	return fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", acct, role, session)
}

// benignEntity notes an entity of benign activity that must stay out of
// high incidents.
func (d *day) benignEntity(kind, value string) {
	id := kind + ":" + value
	for _, e := range d.benign {
		if e == id {
			return
		}
	}
	d.benign = append(d.benign, id)
}
