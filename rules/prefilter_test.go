package rules

import (
	"fmt"
	"testing"

	"cel.dev/cel-go/cel"

	"github.com/musubi-xdr/musubi/ocsf"
)

// prefilterEvents are events that differ in every field a prefilter reads.
func prefilterEvents() []*ocsf.Event {
	var out []*ocsf.Event
	for _, class := range []int{ocsf.ClassAPIActivity, 4001, 1007} {
		for _, op := range []string{"", "PutObject", "ConsoleLogin"} {
			for _, action := range []int{0, 1, 2} {
				for _, user := range []string{"", "AssumedRole", "IAMUser"} {
					ev := &ocsf.Event{ClassUID: class, ActionID: action, StatusID: action, ActivityID: action + 1}
					ev.API.Operation = op
					ev.Actor.User.Type = user
					ev.Metadata.LogName = map[int]string{ocsf.ClassAPIActivity: "cloudtrail", 4001: "vpcflow", 1007: "agent"}[class]
					ev.DstEndpoint.Port = 443 * action
					ev.SrcEndpoint.IP = []string{"10.0.0.1", "203.0.113.9", "198.51.100.7"}[action]
					ev.Actor.Session.Name = []string{"i-0a1b2c3d4e5f6", "alice", ""}[action]
					if user == "" {
						ev.Process.Name, ev.Process.CmdLine = "sh", "sh"
					}
					out = append(out, ev)
				}
			}
		}
	}
	return out
}

// TestPrefilterNeverRejectsAMatch checks the prefilter against the program
// it stands in front of: an event it rejects must be one the condition is
// false for, and conjuncts it cannot read must be left to the program.
func TestPrefilterNeverRejectsAMatch(t *testing.T) {
	env, err := Env()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cond   string
		checks int
	}{
		{`event.class_uid == 4001 && event.action_id == 2`, 2},
		{`2 == event.action_id && is_public_ip(event.src_endpoint.ip)`, 1},
		{`event.api.operation in ["PutObject", "CopyObject"] && event.actor.user.type == "AssumedRole"`, 2},
		{`(event.class_uid == 6003 && event.api.operation == "ConsoleLogin") && event.status_id == 2`, 3},
		{`event.class_uid == 4001 || event.action_id == 2`, 0},              // a disjunction constrains nothing alone
		{`!(event.action_id == 2)`, 0},                                      // a negation neither
		{`event.action_id == dyn(2.0)`, 0},                                  // heterogeneous equality is the program's
		{`event.api.operation in ["PutObject", event.api.service.name]`, 0}, // not all literals
		{`has(event.api.operation) && event.dst_endpoint.port == 443`, 1},
		{`event.metadata.log_name == "cloudtrail" && event.process.name == "sh"`, 2},
		{`event.metadata.log_name == "cloudtrail" && event.process.cmd_line == "sh"`, 1}, // process.cmd_line has no accessor
		{`event.status_id != 2 && event.actor.user.type != "AssumedRole"`, 2},
		{`"" != event.actor.user.type && event.api.operation != "PutObject"`, 2},
		{`event.status_id != 2 || event.action_id != 1`, 0},
		{`!(event.status_id != 2) && event.action_id != dyn(1.0)`, 0},
		{`event.actor.user.type == "IAMUser" && event.class_uid in [6003, 3002]`, 2},
		{`event.actor.session.name.matches('^i-[0-9a-f]{8,17}$') && event.class_uid == 6003`, 2},
		{`matches(event.actor.session.name, "^i-[0-9a-f]+")`, 1},
		{`event.actor.session.name.matches('(?i)^I-[0-9A-F]+')`, 0},             // a case-folded literal is the program's
		{`event.actor.session.name.matches('i-[0-9a-f]+')`, 0},                  // unanchored: the literal may start anywhere
		{`event.actor.session.name.matches('(?m)^i-[0-9a-f]+')`, 0},             // ^ of any line
		{`event.actor.session.name.matches('^(i-|alice)')`, 0},                  // no single literal
		{`!event.actor.session.name.matches('^i-') && event.status_id == 2`, 1}, // a negation constrains nothing
		{`event.process.cmd_line.matches('^sh') && event.status_id == 2`, 1},    // cmd_line has no accessor
	}
	events := prefilterEvents()
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			ast, iss := env.Compile(tt.cond)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			prg, err := env.Program(ast)
			if err != nil {
				t.Fatal(err)
			}
			pre := NewPrefilter(ast.NativeRep())
			if pre.Len() != tt.checks {
				t.Errorf("got %d checks, want %d", pre.Len(), tt.checks)
			}
			admitted, matched := 0, 0
			for _, ev := range events {
				got := eval(t, prg, ev)
				if got {
					matched++
				}
				if pre.Admits(ev) {
					admitted++
				} else if got {
					t.Errorf("prefilter rejected an event the condition matches: %+v", ev)
				}
			}
			if matched == 0 {
				t.Errorf("no event matches %q: the test events do not exercise it", tt.cond)
			}
			if tt.checks > 0 && admitted == len(events) {
				t.Errorf("the prefilter admitted all %d events", len(events))
			}
		})
	}
}

func eval(t *testing.T, prg cel.Program, ev *ocsf.Event) bool {
	t.Helper()
	out, _, err := prg.Eval(map[string]any{"event": ev, "request": map[string]any{}, "response": map[string]any{}})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

func ExamplePrefilter() {
	env, _ := Env()
	ast, _ := env.Compile(`event.class_uid == 4001 && event.action_id == 2 && is_public_ip(event.src_endpoint.ip)`)
	pre := NewPrefilter(ast.NativeRep())
	allowed := &ocsf.Event{ClassUID: 4001, ActionID: 1}
	denied := &ocsf.Event{ClassUID: 4001, ActionID: 2}
	fmt.Println(pre.Len(), pre.Admits(allowed), pre.Admits(denied))
	// Output: 2 false true
}

// TestPackPrefilterIsSound runs every shipped rule's condition on every
// inline test event of the pack that passes the rule's sources: the
// prefilter the engine checks first must admit each event the condition
// matches. It also checks that the prefilter rules out events at all.
func TestPackPrefilterIsSound(t *testing.T) {
	set, err := Load("../detections")
	if err != nil {
		t.Fatal(err)
	}
	env, err := Env()
	if err != nil {
		t.Fatal(err)
	}
	var events []*ocsf.Event
	for _, r := range set.Rules() {
		for i := range r.Tests {
			events = append(events, &r.Tests[i].Event)
		}
	}
	e := NewEngine(nil, nil)
	prefiltered, rejected, matched := 0, 0, 0
	for _, r := range set.Rules() {
		if r.pre.Len() > 0 {
			prefiltered++
		}
		for _, ev := range events {
			if !r.accepts(ev) {
				continue
			}
			got, _, _ := e.eval(r, newActivation(ev, env.CELTypeAdapter()), nil)
			admits := r.pre.Admits(ev)
			if got {
				matched++
				if !admits {
					t.Errorf("rule %s: the prefilter rejects an event the condition matches (%s)", r.ID, ev.Metadata.UID)
				}
			}
			if !admits {
				rejected++
			}
		}
	}
	if matched == 0 || prefiltered == 0 || rejected == 0 {
		t.Errorf("got %d matches, %d prefiltered rules, %d rejected events: want each above 0", matched, prefiltered, rejected)
	}
	t.Logf("%d of %d rules prefiltered; %d rejections, %d matches", prefiltered, set.Len(), rejected, matched)
}
