package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/incident"
)

// Generic is the generic JSON payload, shaped as the Standard Webhooks
// recommend: a type, a timestamp and the data.
type Generic struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      GenericData `json:"data"`
}

// GenericData describes the incident.
type GenericData struct {
	ID               string   `json:"id"`
	Version          uint64   `json:"version"`
	TenantUID        string   `json:"tenant_uid"`
	Title            string   `json:"title"`
	Severity         int      `json:"severity_id"`
	SeverityName     string   `json:"severity"`
	PreviousSeverity int      `json:"previous_severity_id,omitempty"`
	RiskScore        int      `json:"risk_score"`
	Status           string   `json:"status"`
	FirstSeen        int64    `json:"first_seen"`
	LastSeen         int64    `json:"last_seen"`
	Stages           []string `json:"stages"`
	Tactics          []string `json:"tactics"`
	Techniques       []string `json:"techniques"`
	Accounts         []string `json:"accounts"`
	RuleIDs          []string `json:"rule_ids"`
	AlertCount       int      `json:"alert_count"`
	URL              string   `json:"url,omitempty"`
}

// severityNames are the OCSF severity names by id.
var severityNames = []string{"Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal"}

func severityName(id int) string {
	if id >= 0 && id < len(severityNames) {
		return severityNames[id]
	}
	return "Other"
}

func (n *Notifier) payload(e *endpoint, event string, in *incident.Incident, prev int) ([]byte, error) {
	f := e.Format
	link := ""
	if n.cfg.IncidentURL != "" {
		link = fmt.Sprintf(n.cfg.IncidentURL, in.ID)
	}
	switch f {
	case FormatSlack:
		return json.Marshal(slackPayload(event, in, prev, link))
	case FormatPagerDuty, FormatOpsgenie, FormatTeams, FormatAlertmanager:
		return n.receiverPayload(e, event, in, prev, link)
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return json.Marshal(Generic{Type: event, Timestamp: n.now().UTC(), Data: GenericData{
		ID: in.ID, Version: in.Version, TenantUID: in.TenantUID, Title: in.Title, Severity: in.Severity,
		SeverityName: severityName(in.Severity), PreviousSeverity: prev, RiskScore: in.RiskScore, Status: in.Status,
		FirstSeen: in.FirstSeen, LastSeen: in.LastSeen, Stages: nonNil(in.Stages), Tactics: nonNil(in.Tactics),
		Techniques: nonNil(in.Techniques), Accounts: nonNil(in.Accounts), RuleIDs: nonNil(in.RuleIDs),
		AlertCount: len(in.AlertIDs), URL: link,
	}})
}

// Slack is a Slack-compatible message: text for notifications, blocks for
// the layout.
type Slack struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit block.
type SlackBlock struct {
	Type      string       `json:"type"`
	Text      *SlackText   `json:"text,omitempty"`
	Fields    []SlackText  `json:"fields,omitempty"`
	Elements  []SlackText  `json:"elements,omitempty"`
	Accessory *SlackButton `json:"accessory,omitempty"`
}

// SlackText is a text object.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// SlackButton is a link button.
type SlackButton struct {
	Type string    `json:"type"`
	Text SlackText `json:"text"`
	URL  string    `json:"url"`
}

// mrkdwn escapes text for Slack's mrkdwn: &, < and > are control characters.
var mrkdwn = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func slackPayload(event string, in *incident.Incident, prev int, link string) Slack {
	sev := severityName(in.Severity)
	head := fmt.Sprintf("New %s incident: %s", sev, in.Title)
	if event == EventEscalated {
		head = fmt.Sprintf("Incident escalated %s → %s: %s", severityName(prev), sev, in.Title)
	}
	stages := "—"
	if len(in.Stages) > 0 {
		stages = strings.Join(in.Stages, " → ")
	}
	accounts := "—"
	if len(in.Accounts) > 0 {
		accounts = strings.Join(in.Accounts, ", ")
	}
	field := func(name, value string) SlackText {
		return SlackText{Type: "mrkdwn", Text: "*" + name + "*\n" + truncate(mrkdwn.Replace(value), 500)}
	}
	section := SlackBlock{Type: "section", Fields: []SlackText{
		field("Severity", sev), field("Risk", fmt.Sprint(in.RiskScore)),
		field("Stages", stages), field("Accounts", accounts),
		field("Tenant", in.TenantUID), field("Alerts", fmt.Sprint(len(in.AlertIDs))),
	}}
	if link != "" {
		section.Accessory = &SlackButton{Type: "button", Text: SlackText{Type: "plain_text", Text: "Open incident"}, URL: link}
	}
	return Slack{
		Text: mrkdwn.Replace(truncate(head, 300)),
		Blocks: []SlackBlock{
			{Type: "header", Text: &SlackText{Type: "plain_text", Text: truncate(head, 150)}},
			section,
			{Type: "context", Elements: []SlackText{{Type: "mrkdwn", Text: mrkdwn.Replace("incident " + in.ID + " · version " + fmt.Sprint(in.Version))}}},
		},
	}
}
