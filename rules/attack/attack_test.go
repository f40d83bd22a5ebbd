package attack

import (
	"strings"
	"testing"
)

func TestEmbeddedMatrix(t *testing.T) {
	if _, err := load(); err != nil {
		t.Fatal(err)
	}
	if got := len(Tactics()); got != 14 {
		t.Errorf("got %d tactics, want 14", got)
	}
	// ATT&CK v18 has 216 techniques and 475 sub-techniques that are
	// neither revoked nor deprecated.
	if got := Len(); got < 650 || got > 720 {
		t.Errorf("got %d techniques, want about 690", got)
	}
}

func TestLookups(t *testing.T) {
	tests := []struct {
		tech, tactic string
		exists, in   bool
	}{
		{"T1552.005", "TA0006", true, true},   // Cloud Instance Metadata API: credential access
		{"T1552.005", "TA0005", true, false},  // not defense evasion
		{"T1078.004", "TA0001", true, true},   // Cloud Accounts: initial access (inherited)
		{"T1078.004", "TA0004", true, true},   // and privilege escalation
		{"T1562.008", "TA0005", true, true},   // Disable or Modify Cloud Logs
		{"T1562.005", "TA0005", false, false}, // never existed
		{"T1073", "TA0005", false, false},     // DLL Side-Loading, revoked
		{"T9999", "TA0001", false, false},
	}
	for _, tt := range tests {
		_, ok := LookupTechnique(tt.tech)
		if ok != tt.exists {
			t.Errorf("LookupTechnique(%s): got %v, want %v", tt.tech, ok, tt.exists)
		}
		if got := InTactic(tt.tech, tt.tactic); got != tt.in {
			t.Errorf("InTactic(%s, %s): got %v, want %v", tt.tech, tt.tactic, got, tt.in)
		}
	}
	if ta, ok := TacticByShortName("credential_access"); !ok || ta.ID != "TA0006" {
		t.Errorf("TacticByShortName(credential_access): got %v %v, want TA0006", ta, ok)
	}
}

func TestParseRejectsBrokenData(t *testing.T) {
	for _, bad := range []string{
		"T1001\tcommand-and-control",                                   // two fields
		"TA0011\tcommand-and-control\tC2\nT1001.001\t\tJunk Data",      // orphan sub-technique
		"TA0011\tcommand-and-control\tC2\nT1001\tno-such-tactic\tData", // unknown tactic
		"X1\ta\tb",
	} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q): got no error", strings.ReplaceAll(bad, "\n", `\n`))
		}
	}
}
