package entity

import "testing"

func TestDeployments(t *testing.T) {
	for in, want := range map[string]string{
		"/opt/codedeploy-agent/deployment-root/8d3b5c1e-2f4a-4b6c-9d8e-7f6a5b4c3d2e/d-7KQ2X9ABC/deployment-archive/bin/payload": "d-7KQ2X9ABC",
		"bash /opt/codedeploy-agent/deployment-root/8d3b/d-ABCDEFGH1/deployment-archive/scripts/start.sh --x":                   "d-ABCDEFGH1",
		"/opt/codedeploy-agent/deployment-root/8d3b/d-ABCDEFGH1":                                                                "d-ABCDEFGH1",
		"cd '/opt/codedeploy-agent/deployment-root/g/d-ABCDEFGH1'":                                                              "d-ABCDEFGH1",
		"/opt/codedeploy-agent/deployment-root/deployment-instructions/x":                                                       "",
		"/opt/codedeploy-agent/deployment-root/g/d-short/x":                                                                     "",
		"/var/www/d-ABCDEFGH1/x": "",
		"":                       "",
	} {
		if got := DeploymentIn(in); got != want {
			t.Errorf("DeploymentIn(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestIsInstanceID(t *testing.T) {
	for in, want := range map[string]bool{
		"i-0a1b2c3d4e5f60718": true, "i-786a3A8B5C0d92eF4": true, "i-0abc1234": true,
		"i-0a1b2c3d4e5f6071": false, "i-xyz": false, "aws-go-sdk-1722511821294449000": false, "": false,
	} {
		if got := IsInstanceID(in); got != want {
			t.Errorf("IsInstanceID(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestIsIP(t *testing.T) {
	for in, want := range map[string]bool{
		"10.0.0.1": true, "06.237.252.245": true, "2001:db8::1": true, "ec2.amazonaws.com": false,
		"AWS Internal": false, "1.2.3": false, "256.1.1.1": false, "": false,
	} {
		if got := IsIP(in); got != want {
			t.Errorf("IsIP(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestSessionName(t *testing.T) {
	role, sess, ok := SessionName("arn:aws:sts::111122223333:assumed-role/web-server-role/i-0a1b2c3d4e5f60718")
	if !ok || role != "web-server-role" || sess != "i-0a1b2c3d4e5f60718" {
		t.Errorf("got %q %q %v", role, sess, ok)
	}
	if got := RoleARNFromSession("arn:aws:sts::111122223333:assumed-role/web-server-role/x"); got != "arn:aws:iam::111122223333:role/web-server-role" {
		t.Errorf("RoleARNFromSession: got %q", got)
	}
}
