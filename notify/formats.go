package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/incident"
)

// PagerDutyEvent is a PagerDuty Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string           `json:"routing_key"`
	EventAction string           `json:"event_action"`
	DedupKey    string           `json:"dedup_key"`
	Payload     PagerDutyPayload `json:"payload"`
	Client      string           `json:"client,omitempty"`
	ClientURL   string           `json:"client_url,omitempty"`
	Links       []PagerDutyLink  `json:"links,omitempty"`
}

// PagerDutyPayload is the event's payload.
type PagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// PagerDutyLink is a link shown with the alert.
type PagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// OpsgenieAlert is an Opsgenie Create Alert request.
type OpsgenieAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description"`
	Tags        []string          `json:"tags"`
	Details     map[string]string `json:"details"`
	Entity      string            `json:"entity"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
}

// TeamsMessage is a Microsoft Teams message carrying one Adaptive Card.
type TeamsMessage struct {
	Type        string            `json:"type"`
	Attachments []TeamsAttachment `json:"attachments"`
}

// TeamsAttachment is the card attachment.
type TeamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     AdaptiveCard `json:"content"`
}

// AdaptiveCard is the subset of an Adaptive Card (1.4) the message uses.
type AdaptiveCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []CardElement  `json:"body"`
	Actions []CardAction   `json:"actions,omitempty"`
	MSTeams map[string]any `json:"msteams,omitempty"`
}

// CardElement is a TextBlock or a FactSet.
type CardElement struct {
	Type   string     `json:"type"`
	Text   string     `json:"text,omitempty"`
	Size   string     `json:"size,omitempty"`
	Weight string     `json:"weight,omitempty"`
	Color  string     `json:"color,omitempty"`
	Wrap   bool       `json:"wrap,omitempty"`
	Facts  []CardFact `json:"facts,omitempty"`
}

// CardFact is one title/value pair of a FactSet.
type CardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// CardAction is an Action.OpenUrl.
type CardAction struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// AlertmanagerAlert is one alert as Alertmanager's API v2 takes it
// (postableAlert).
type AlertmanagerAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// pagerDutySeverity maps an OCSF severity id onto PagerDuty's four.
func pagerDutySeverity(id int) string {
	switch {
	case id >= 5:
		return "critical"
	case id == 4:
		return "error"
	case id >= 2:
		return "warning"
	}
	return "info"
}

// opsgeniePriority maps an OCSF severity id onto P1 (highest) … P5.
func opsgeniePriority(id int) string {
	switch {
	case id >= 5:
		return "P1"
	case id == 4:
		return "P2"
	case id == 3:
		return "P3"
	case id == 2:
		return "P4"
	}
	return "P5"
}

// teamsColor is the Adaptive Card colour of a severity.
func teamsColor(id int) string {
	switch {
	case id >= 4:
		return "attention"
	case id == 3:
		return "warning"
	}
	return "default"
}

// headline is the one-line summary of an incident event.
func headline(event string, in *incident.Incident, prev int) string {
	if event == EventEscalated {
		return fmt.Sprintf("Incident escalated %s → %s: %s", severityName(prev), severityName(in.Severity), in.Title)
	}
	return fmt.Sprintf("New %s incident: %s", severityName(in.Severity), in.Title)
}

// dedupKey identifies an incident across its events, so a receiver that
// de-duplicates (PagerDuty, Opsgenie) keeps one alert per incident.
func dedupKey(in *incident.Incident) string { return "musubi/" + in.TenantUID + "/" + in.ID }

func orDash(s []string, sep string) string {
	if len(s) == 0 {
		return "—"
	}
	return strings.Join(s, sep)
}

// receiverPayload renders the formats of incident-management receivers.
func (n *Notifier) receiverPayload(e *endpoint, event string, in *incident.Incident, prev int, link string) ([]byte, error) {
	head := headline(event, in, prev)
	first, last := time.UnixMilli(in.FirstSeen).UTC(), time.UnixMilli(in.LastSeen).UTC()
	switch e.Format {
	case FormatPagerDuty:
		ev := PagerDutyEvent{
			RoutingKey: e.Key, EventAction: "trigger", DedupKey: dedupKey(in), Client: "Musubi", ClientURL: link,
			Payload: PagerDutyPayload{
				Summary: truncate(head, 1024), Source: "musubi/" + in.TenantUID, Severity: pagerDutySeverity(in.Severity),
				Timestamp: last.Format(time.RFC3339), Component: orDash(in.Accounts, ","), Group: in.TenantUID, Class: event,
				CustomDetails: map[string]any{
					"incident_id": in.ID, "version": in.Version, "severity": severityName(in.Severity), "risk_score": in.RiskScore,
					"stages": in.Stages, "tactics": in.Tactics, "techniques": in.Techniques, "accounts": in.Accounts,
					"rule_ids": in.RuleIDs, "alert_count": len(in.AlertIDs), "first_seen": first, "last_seen": last,
				},
			},
		}
		if link != "" {
			ev.Links = []PagerDutyLink{{Href: link, Text: "Open incident in Musubi"}}
		}
		return json.Marshal(ev)
	case FormatOpsgenie:
		desc := fmt.Sprintf("%s\n\nSeverity: %s (risk %d)\nStages: %s\nAccounts: %s\nTechniques: %s\nAlerts: %d\nIncident: %s (version %d)",
			head, severityName(in.Severity), in.RiskScore, orDash(in.Stages, " → "), orDash(in.Accounts, ", "),
			orDash(in.Techniques, ", "), len(in.AlertIDs), in.ID, in.Version)
		if link != "" {
			desc += "\n" + link
		}
		details := map[string]string{
			"incident_id": in.ID, "tenant": in.TenantUID, "severity": severityName(in.Severity),
			"risk_score": fmt.Sprint(in.RiskScore), "stages": orDash(in.Stages, ","), "accounts": orDash(in.Accounts, ","),
		}
		if link != "" {
			details["url"] = link
		}
		return json.Marshal(OpsgenieAlert{
			Message: truncate(head, 130), Alias: truncate(dedupKey(in), 512), Description: truncate(desc, 15000),
			Tags: append([]string{"musubi", "tenant:" + in.TenantUID}, in.Tactics...), Details: details,
			Entity: truncate(orDash(in.Accounts, ","), 512), Source: "musubi", Priority: opsgeniePriority(in.Severity),
		})
	case FormatTeams:
		card := AdaptiveCard{
			Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
			Body: []CardElement{
				{Type: "TextBlock", Text: truncate(head, 300), Size: "Large", Weight: "Bolder", Color: teamsColor(in.Severity), Wrap: true},
				{Type: "FactSet", Facts: []CardFact{
					{Title: "Severity", Value: severityName(in.Severity)}, {Title: "Risk", Value: fmt.Sprint(in.RiskScore)},
					{Title: "Stages", Value: orDash(in.Stages, " → ")}, {Title: "Accounts", Value: orDash(in.Accounts, ", ")},
					{Title: "Tenant", Value: in.TenantUID}, {Title: "Alerts", Value: fmt.Sprint(len(in.AlertIDs))},
				}},
				{Type: "TextBlock", Text: fmt.Sprintf("incident %s · version %d", in.ID, in.Version), Size: "Small", Wrap: true},
			},
			MSTeams: map[string]any{"width": "Full"},
		}
		if link != "" {
			card.Actions = []CardAction{{Type: "Action.OpenUrl", Title: "Open incident", URL: link}}
		}
		return json.Marshal(TeamsMessage{Type: "message", Attachments: []TeamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive", Content: card,
		}}})
	case FormatAlertmanager:
		ann := map[string]string{
			"summary": head, "description": fmt.Sprintf("Stages %s in %s; %d alerts, risk %d.", orDash(in.Stages, " → "), orDash(in.Accounts, ", "), len(in.AlertIDs), in.RiskScore),
			"incident_version": fmt.Sprint(in.Version), "techniques": strings.Join(in.Techniques, ","),
		}
		if link != "" {
			ann["url"] = link
		}
		return json.Marshal([]AlertmanagerAlert{{
			Labels: map[string]string{
				"alertname": "MusubiIncident", "severity": strings.ToLower(severityName(in.Severity)),
				"tenant": in.TenantUID, "incident_id": in.ID, "source": "musubi",
			},
			Annotations: ann, StartsAt: first, GeneratorURL: link,
		}})
	}
	return nil, fmt.Errorf("notify: no payload for format %q", e.Format)
}
