package rules_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

const packDir = "../detections"

// TestShippedPack checks that every shipped rule loads, passes lint, and
// passes its inline tests, and that the pack covers what the product needs.
func TestShippedPack(t *testing.T) {
	lint := rules.Lint(packDir)
	for _, p := range lint.Problems {
		t.Errorf("lint: %v", p)
	}
	if lint.Rules < 60 {
		t.Errorf("got %d rules, want at least 60", lint.Rules)
	}
	rep := rules.Test(packDir)
	for _, p := range rep.Problems {
		t.Errorf("load: %v", p)
	}
	for _, r := range rep.Rules {
		t.Run(r.RuleID, func(t *testing.T) {
			for _, tr := range r.Tests {
				if !tr.Pass {
					t.Errorf("%s:%d %q: got match %v, want %v %s", r.File, tr.Line, tr.Name, tr.Got, tr.Want, tr.Error)
				}
			}
		})
	}
	s, err := rules.Load(packDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Rules() {
		if len(r.Techniques) == 0 {
			t.Errorf("rule %s: got no ATT&CK technique, want one", r.ID)
		}
	}
}

// TestShippedPackWithTuning lints and tests the shipped pack together with
// the example tuning exception of testdata/tuning, as a user's rule
// directory would hold them: the exception's inline tests (raw records and
// OCSF events) run against the pack's rule and pass, and the pack's own
// tests still pass with the exception loaded.
func TestShippedPackWithTuning(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(packDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "exceptions"), os.DirFS("testdata/tuning")); err != nil {
		t.Fatal(err)
	}
	lint := rules.Lint(dir)
	for _, p := range lint.Problems {
		t.Errorf("lint: %v", p)
	}
	for _, w := range lint.Warnings {
		t.Errorf("lint warning: %v", w)
	}
	rep := rules.Test(dir)
	if len(rep.Problems) > 0 || !rep.OK {
		t.Errorf("got problems %v, %d failed, want the pack and the exception passing", rep.Problems, rep.Failed)
	}
	if len(rep.Exceptions) != 1 || len(rep.Exceptions[0].Tests) != 3 {
		t.Fatalf("got exception reports %+v, want the 3 tests of artifact-sync-release-copies", rep.Exceptions)
	}
	for _, tr := range rep.Exceptions[0].Tests {
		if !tr.Pass {
			t.Errorf("%q (rule %s): got suppressed=%v, want %v %s", tr.Name, tr.Rule, tr.Got, tr.Want, tr.Error)
		}
	}
}

// TestDetonations runs the real CloudTrail logs that stratus-red-team
// recorded while detonating each technique through the CloudTrail
// normalizer and the shipped pack, and checks that the technique's rule
// fires.
func TestDetonations(t *testing.T) {
	s, err := rules.Load(packDir)
	if err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine(nil, nil)
	e.Swap(s)
	tests := []struct {
		technique string
		want      []string
	}{
		{"aws.credential-access.ec2-get-password-data", []string{"aws.ec2_password_data_read"}},
		{"aws.credential-access.ec2-steal-instance-credentials", []string{"aws.ssm_send_command"}},
		{"aws.credential-access.secretsmanager-batch-retrieve-secrets", []string{"aws.secretsmanager_batch_read"}},
		{"aws.credential-access.secretsmanager-retrieve-secrets", []string{"aws.secretsmanager_secret_read"}},
		{"aws.credential-access.ssm-retrieve-securestring-parameters", []string{"aws.ssm_parameters_decrypted"}},
		{"aws.defense-evasion.cloudtrail-delete", []string{"aws.cloudtrail_trail_deleted"}},
		{"aws.defense-evasion.cloudtrail-event-selectors", []string{"aws.cloudtrail_event_selectors_changed"}},
		{"aws.defense-evasion.cloudtrail-stop", []string{"aws.cloudtrail_logging_stopped"}},
		{"aws.defense-evasion.dns-delete-logs", []string{"aws.dns_query_logging_deleted"}},
		{"aws.defense-evasion.organizations-leave", []string{"aws.organizations_leave"}},
		{"aws.defense-evasion.vpc-remove-flow-logs", []string{"aws.vpc_flow_logs_deleted"}},
		{"aws.discovery.ec2-download-user-data", []string{"aws.ec2_user_data_read"}},
		{"aws.execution.ec2-launch-unusual-instances", []string{"aws.ec2_gpu_instances_launched"}},
		{"aws.execution.ec2-user-data", []string{"aws.ec2_user_data_modified"}},
		{"aws.execution.ssm-send-command", []string{"aws.ssm_send_command"}},
		{"aws.execution.ssm-start-session", []string{"aws.ssm_start_session"}},
		{"aws.exfiltration.ec2-security-group-open-port-22-ingress", []string{"aws.security_group_opened_to_world"}},
		{"aws.exfiltration.ec2-share-ami", []string{"aws.ami_shared"}},
		{"aws.exfiltration.ec2-share-ebs-snapshot", []string{"aws.ebs_snapshot_shared"}},
		{"aws.exfiltration.rds-share-snapshot", []string{"aws.rds_snapshot_shared"}},
		{"aws.impact.bedrock-invoke-model", []string{"aws.bedrock_model_access_enabled"}},
		{"aws.initial-access.console-login-without-mfa", []string{"aws.console_login_without_mfa"}},
		{"aws.lateral-movement.ec2-instance-connect", []string{"aws.ec2_instance_connect_key_pushed"}},
		{"aws.lateral-movement.ec2-serial-console-send-ssh-public-key", []string{"aws.ec2_serial_console_access"}},
		{"aws.persistence.iam-backdoor-role", []string{"aws.iam_role_trusts_external_principal", "aws.iam_assume_role_policy_updated"}},
		{"aws.persistence.iam-backdoor-user", []string{"aws.iam_access_key_created_for_other_user"}},
		{"aws.persistence.iam-create-admin-user", []string{"aws.iam_user_created", "aws.iam_admin_policy_attached", "aws.iam_access_key_created_for_other_user"}},
		{"aws.persistence.iam-create-backdoor-role", []string{"aws.iam_role_trusts_external_principal"}},
		{"aws.persistence.iam-create-user-login-profile", []string{"aws.iam_login_profile_created"}},
		{"aws.persistence.lambda-backdoor-function", []string{"aws.lambda_invocable_by_anyone"}},
		{"aws.persistence.lambda-layer-extension", []string{"aws.lambda_layer_added"}},
		{"aws.persistence.lambda-overwrite-code", []string{"aws.lambda_code_updated"}},
		{"aws.persistence.rolesanywhere-create-trust-anchor", []string{"aws.rolesanywhere_trust_anchor_created"}},
		{"aws.persistence.sts-federation-token", []string{"aws.sts_federation_token", "aws.iam_inline_policy_full_admin"}},
		{"aws.privilege-escalation.iam-update-user-login-profile", []string{"aws.iam_login_profile_updated"}},
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for _, tt := range tests {
		t.Run(tt.technique, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "stratus-red-team", tt.technique+".json"))
			if err != nil {
				t.Fatal(err)
			}
			events, errs := dec.Decode(ingest.SourceCloudTrail, data)
			if len(errs) > 0 {
				t.Fatalf("decode: %v", errs[0])
			}
			fired := map[string]bool{}
			for i := range events {
				for _, a := range e.Evaluate(&events[i]) {
					fired[a.RuleID] = true
				}
			}
			for _, id := range tt.want {
				if !fired[id] {
					t.Errorf("rule %s did not fire on %d events; fired: %v", id, len(events), keys(fired))
				}
			}
		})
	}
}

// TestGuardDutyFindings runs the GuardDuty severity rules over normalized
// findings of every level.
func TestGuardDutyFindings(t *testing.T) {
	s, err := rules.Load(packDir)
	if err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine(nil, nil)
	e.Swap(s)
	for sev, want := range map[int]string{2: "aws.guardduty_finding_low", 3: "aws.guardduty_finding_medium", 4: "aws.guardduty_finding_high", 5: "aws.guardduty_finding_critical"} {
		ev := ocsf.Event{ClassUID: ocsf.ClassDetectionFinding, SeverityID: sev}
		ev.Metadata.LogName, ev.Metadata.UID = "guardduty", "f"
		ev.FindingInfo.Types = []string{"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"}
		var ids []string
		for _, a := range e.Evaluate(&ev) {
			ids = append(ids, a.RuleID)
		}
		if !slices.Contains(ids, want) || !slices.Contains(ids, "aws.guardduty_instance_credential_exfiltration_outside_aws") {
			t.Errorf("severity %d: got %v, want %s and the exfiltration rule", sev, ids, want)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestCoverageLayer checks the Navigator layer of the shipped pack.
func TestCoverageLayer(t *testing.T) {
	rep := rules.Coverage(packDir)
	if !rep.OK {
		t.Fatalf("coverage: %v", rep.Problems)
	}
	if rep.Layer.Versions["layer"] != "4.5" || rep.Layer.Domain != "enterprise-attack" {
		t.Errorf("got layer versions %v domain %q", rep.Layer.Versions, rep.Layer.Domain)
	}
	var found bool
	for _, tech := range rep.Layer.Techniques {
		if tech.TechniqueID == "T1552.005" && tech.Tactic == "credential-access" && strings.Contains(tech.Comment, "host.imds_credentials_from_webserver") {
			found = true
		}
	}
	if !found {
		t.Errorf("layer lacks T1552.005 under credential-access with the IMDS rule")
	}
}

// TestGuardDutyPantherFindings runs the real GuardDuty findings of
// panther-analysis's rule tests through the GuardDuty normalizer and checks
// that each becomes exactly one severity alert of the right level, and that
// attack sequences get their own.
func TestGuardDutyPantherFindings(t *testing.T) {
	s, err := rules.Load(packDir)
	if err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine(nil, nil)
	e.Swap(s)
	data, err := os.ReadFile("testdata/panther-guardduty/AWS_GuardDuty.tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec struct {
			TestName string          `json:"test_name"`
			Log      json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%d %s", i, rec.TestName), func(t *testing.T) {
			events, errs := dec.Decode(ingest.SourceGuardDuty, rec.Log)
			if len(errs) > 0 || len(events) != 1 {
				t.Fatalf("decode: got %d events, errors %v", len(events), errs)
			}
			ev := &events[0]
			var sev []string
			var seq bool
			for _, a := range e.Evaluate(ev) {
				if strings.HasPrefix(a.RuleID, "aws.guardduty_finding_") {
					sev = append(sev, a.RuleID)
				}
				seq = seq || a.RuleID == "aws.guardduty_attack_sequence"
			}
			want := map[int]string{2: "aws.guardduty_finding_low", 3: "aws.guardduty_finding_medium", 4: "aws.guardduty_finding_high", 5: "aws.guardduty_finding_critical"}[ev.SeverityID]
			if len(sev) != 1 || sev[0] != want {
				t.Errorf("severity_id %d: got %v, want [%s]", ev.SeverityID, sev, want)
			}
			isSeq := len(ev.FindingInfo.Types) > 0 && strings.HasPrefix(ev.FindingInfo.Types[0], "AttackSequence:")
			if seq != isSeq {
				t.Errorf("types %v: got attack-sequence alert %v, want %v", ev.FindingInfo.Types, seq, isSeq)
			}
		})
	}
}

// TestChainFixtures runs events of the attack chain in their source formats
// (agent OCSF, Falco, CloudTrail, GuardDuty; fixtures of the ingest
// package) through the normalizers and the pack, and checks which rules
// fire on each.
func TestChainFixtures(t *testing.T) {
	s, err := rules.Load(packDir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file string
		want []string
	}{
		{"process_imds_curl.json", []string{"host.imds_credentials_from_webserver", "host.imds_credentials_by_download_tool"}},
		{"falco_imds.json", []string{"host.imds_credentials_from_webserver"}},
		{"network_imds.json", []string{"host.imds_connection_by_download_tool"}},
		{"file_webshell_create.json", []string{"host.webshell_written_under_webroot"}},
		{"ct_s3_putobject_instance_role.json", []string{"aws.s3_appspec_written_by_instance_session"}},
		{"ct_codedeploy_create_deployment.json", []string{"aws.codedeploy_deployment_from_s3"}},
		{"gd_eventbridge_credential_exfiltration.json", []string{"aws.guardduty_instance_credential_exfiltration_outside_aws"}},
		{"process_codedeploy_payload.json", []string{"host.codedeploy_archive_binary_executed", "host.bulk_encryption_command"}},
		{"file_rename_ransomware.json", []string{"host.ransomware_file_renamed_encrypted"}},
		{"falco_write_below_binary_dir.json", []string{"host.falco_high_priority_alert"}},
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "chain", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			events, errs := dec.Decode(ingest.SourceAuto, data)
			if len(errs) > 0 || len(events) == 0 {
				t.Fatalf("decode: got %d events, errors %v", len(events), errs)
			}
			e := rules.NewEngine(nil, nil) // fresh: no suppression carried over
			e.Swap(s)
			fired := map[string]bool{}
			for i := range events {
				for _, a := range e.Evaluate(&events[i]) {
					fired[a.RuleID] = true
				}
			}
			for _, id := range tt.want {
				if !fired[id] {
					t.Errorf("rule %s did not fire; fired: %v", id, keys(fired))
				}
			}
		})
	}
}

// TestLegitimateDeploymentStaysLow replays a normal release — CI uploads the
// bundle and appspec, the pipeline deploys it, the hooks install and start
// the application — and checks that no alert above low severity is raised:
// stages 7–9 of the attack without the rest must not look like one.
func TestLegitimateDeploymentStaysLow(t *testing.T) {
	s, err := rules.Load(packDir)
	if err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine(nil, nil)
	e.Swap(s)
	ct := func(uid, op string, req string, user ocsf.User, invokedBy string) ocsf.Event {
		ev := ocsf.Event{ClassUID: ocsf.ClassAPIActivity, Time: 1741080000000}
		ev.Metadata.LogName, ev.Metadata.UID = "cloudtrail", uid
		ev.API.Operation = op
		ev.API.Request.Data = json.RawMessage(req)
		ev.Actor.User, ev.Actor.InvokedBy = user, invokedBy
		ev.SrcEndpoint.IP = "10.0.0.12"
		return ev
	}
	ci := ocsf.User{Type: "IAMUser", Name: "ci-deployer"}
	pipelineRole := ocsf.User{Type: "AssumedRole", Name: "codepipeline-web-role"}
	put := func(uid, key string) ocsf.Event {
		ev := ct(uid, "PutObject", `{"bucketName":"artifacts-prod","key":"`+key+`"}`, ci, "")
		ev.Resources = []ocsf.Resource{{Type: "AWS::S3::Object", UID: "artifacts-prod/" + key}}
		return ev
	}
	agent := func(uid string, class int, p ocsf.Process) ocsf.Event {
		ev := ocsf.Event{ClassUID: class, ActivityID: 1, Time: 1741080100000, Process: p}
		ev.Metadata.LogName, ev.Metadata.UID = "agent", uid
		ev.Device.UID, ev.Device.Hostname = "host-7", "app-7"
		return ev
	}
	hook := "/opt/codedeploy-agent/deployment-root/g-1/d-ABC123XYZ/deployment-archive/scripts/install.sh"
	events := []ocsf.Event{
		put("l-1", "releases/web/release.zip"),
		put("l-2", "releases/web/appspec.yml"),
		ct("l-3", "StartPipelineExecution", `{"name":"web"}`, pipelineRole, "events.amazonaws.com"),
		ct("l-4", "CreateDeployment", `{"applicationName":"web","deploymentGroupName":"prod","revision":{"revisionType":"S3","s3Location":{"bucket":"artifacts-prod","key":"releases/web/release.zip","bundleType":"zip"}}}`, pipelineRole, "codepipeline.amazonaws.com"),
		agent("l-5", ocsf.ClassProcessActivity, ocsf.Process{Name: "bash", CmdLine: "bash " + hook, File: ocsf.File{Path: "/usr/bin/bash"},
			Parent: ocsf.ParentProcess{Name: "ruby", CmdLine: "codedeploy-agent: InstanceAgent::Plugins::CodeDeployPlugin::CommandPoller"}}),
		agent("l-6", ocsf.ClassProcessActivity, ocsf.Process{Name: "server", CmdLine: "/srv/web/bin/server --port 8080", File: ocsf.File{Path: "/srv/web/bin/server"},
			Parent: ocsf.ParentProcess{Name: "bash", CmdLine: "bash " + hook}, Lineage: []string{"/opt/codedeploy-agent/bin/codedeploy-agent", "/usr/bin/bash"}}),
	}
	fileEv := agent("l-7", ocsf.ClassFileSystemActivity, ocsf.Process{Name: "cp", CmdLine: "cp -r /opt/codedeploy-agent/deployment-root/g-1/d-ABC123XYZ/deployment-archive/web /srv/web"})
	fileEv.File.Path = "/srv/web/bin/server"
	netEv := agent("l-8", ocsf.ClassNetworkActivity, ocsf.Process{Name: "server", File: ocsf.File{Path: "/srv/web/bin/server"}})
	netEv.ConnectionInfo.DirectionID = 2
	netEv.DstEndpoint.IP, netEv.DstEndpoint.Port = "10.0.3.4", 5432
	events = append(events, fileEv, netEv)
	for i := range events {
		for _, a := range e.Evaluate(&events[i]) {
			if a.Severity > ocsf.SeverityLow {
				t.Errorf("event %s: got %s alert %s, want nothing above low", events[i].Metadata.UID, ocsf.SeverityName(a.Severity), a.RuleID)
			}
		}
	}
}
