package correlate

import (
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// The attack chain of PRODUCT.md, already normalized and detected, with a
// legitimate CI deployment five hours earlier and unrelated noise behind a
// shared NAT address. The scenario test under testdata/scenarios runs the
// same story from raw source files.

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

const (
	tenantA    = "acme"
	account    = "111122223333"
	attackerIP = "203.0.113.9"
	natIP      = "198.51.100.7"
	c2IP       = "198.18.0.66"
	bucket     = "acme-artifacts"
	badObject  = "acme-artifacts/releases/app-1.4.2.zip"
	ciObject   = "acme-artifacts/releases/app-1.4.1.zip"
	webSession = "arn:aws:sts::111122223333:assumed-role/web-app-role/i-0web1"
	asiaKey    = "ASIAXYZATTACK0001"
)

func at(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

func ob(kind ocsf.Entity, value string) ocsf.Observable {
	return ocsf.NewObservable(kind, "test."+string(kind), value)
}

func mkEvent(uid, src string, d time.Duration, obs ...ocsf.Observable) ocsf.Event {
	ev := ocsf.Event{Time: at(d), Observables: obs}
	ev.Metadata.UID, ev.Metadata.LogName, ev.Metadata.TenantUID = uid, src, tenantA
	return ev
}

func mkAlert(id, rule, stage string, sev int, ev ocsf.Event, tactics ...string) alert.Alert {
	return alert.Alert{
		ID: id, TenantUID: ev.Metadata.TenantUID, RuleID: rule, RuleVersion: "1", Title: "alert " + rule,
		Severity: sev, Stage: stage, Tactics: tactics, Time: ev.Time, AccountUID: account,
		Source: ev.Metadata.LogName, Entities: ev.Observables, EventIDs: []string{ev.Metadata.UID},
	}
}

type story struct {
	events []ocsf.Event
	alerts []alert.Alert
}

func (s *story) ev(uid, src string, d time.Duration, obs ...ocsf.Observable) ocsf.Event {
	e := mkEvent(uid, src, d, obs...)
	s.events = append(s.events, e)
	return e
}

// op sets the API operation of the last event.
func (s *story) op(operation string) ocsf.Event {
	s.events[len(s.events)-1].API.Operation = operation
	return s.events[len(s.events)-1]
}

func (s *story) alert(id, rule, stage string, sev int, ev ocsf.Event, tactics ...string) {
	s.alerts = append(s.alerts, mkAlert(id, rule, stage, sev, ev, tactics...))
}

// sessionInstance is the instance id found as a role session's name.
func sessionInstance(id string) ocsf.Observable {
	return ocsf.NewObservable(ocsf.EntityInstance, "actor.session.name", id)
}

func webObs(extra ...ocsf.Observable) []ocsf.Observable {
	return append([]ocsf.Observable{ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0web1"), ob(ocsf.EntityIP, "10.0.1.10")}, extra...)
}

func attackerObs(extra ...ocsf.Observable) []ocsf.Observable {
	return append([]ocsf.Observable{
		ob(ocsf.EntitySession, webSession), ob(ocsf.EntityPrincipal, webSession),
		ob(ocsf.EntityAccessKey, asiaKey), sessionInstance("i-0web1"), ob(ocsf.EntityIP, attackerIP),
		ob(ocsf.EntityRole, "arn:aws:iam::111122223333:role/web-app-role"),
		ob(ocsf.EntityAccount, account), ob(ocsf.EntityRegion, "eu-west-1"),
	}, extra...)
}

func targetObs(n string, extra ...ocsf.Observable) []ocsf.Observable {
	return append([]ocsf.Observable{ob(ocsf.EntityHost, "tgt-"+n), ob(ocsf.EntityInstance, "i-0tgt"+n), ob(ocsf.EntityIP, "10.0.2.2"+n)}, extra...)
}

func pipelineObs(session string, object, deployment string) []ocsf.Observable {
	return []ocsf.Observable{
		ob(ocsf.EntitySession, session), ob(ocsf.EntityPrincipal, session),
		ob(ocsf.EntityAccessKey, "ASIAPIPELINE"+session[len(session)-4:]),
		ob(ocsf.EntityIP, "codepipeline.amazonaws.com"),
		ob(ocsf.EntityBucket, bucket), ob(ocsf.EntityObject, object), ob(ocsf.EntityDeployment, deployment),
		ob(ocsf.EntityApplication, "acme-web"), ob(ocsf.EntityDeploymentGroup, "acme-web-prod"),
		ob(ocsf.EntityAccount, account),
	}
}

// attackStory builds the chain. Stages follow PRODUCT.md.
func attackStory() story {
	var s story
	const (
		ci   = -5 * time.Hour
		agnt = "agent"
		ct   = "cloudtrail"
	)
	// Legitimate CI deployment, five hours earlier, to the same targets.
	s.ev("ci-put", ct, ci, ob(ocsf.EntityPrincipal, "arn:aws:iam::111122223333:user/ci-deployer"),
		ob(ocsf.EntityUser, "ci-deployer"), ob(ocsf.EntityAccessKey, "AKIACIDEPLOYER001"), ob(ocsf.EntityIP, "192.0.2.50"),
		ob(ocsf.EntityBucket, bucket), ob(ocsf.EntityObject, ciObject), ob(ocsf.EntityAccount, account))
	e := s.op("PutObject")
	s.alert("a-ci-put", "aws.s3.release_bundle_upload", "execution", ocsf.SeverityMedium, e, "TA0002")
	s.ev("ci-deploy", ct, ci+2*time.Minute, pipelineObs("arn:aws:sts::111122223333:assumed-role/codepipeline-role/1111", ciObject, "d-CI0000001")...)
	s.op("CreateDeployment")
	for _, n := range []string{"1", "2"} {
		e = s.ev("ci-hook-"+n, agnt, ci+4*time.Minute, targetObs(n, ob(ocsf.EntityDeployment, "d-CI0000001"),
			ob(ocsf.EntityProcess, "tgt-"+n+":1200"))...)
		s.alert("a-ci-hook-"+n, "agent.codedeploy.hook", "execution", ocsf.SeverityLow, e, "TA0002")
	}

	// 1 initial access.
	s.ev("flow-in", "vpcflow", 0, ob(ocsf.EntityIP, attackerIP), ob(ocsf.EntityIP, "10.0.1.10"))
	e = s.ev("web-sh", agnt, time.Minute, webObs(ob(ocsf.EntityProcess, "web-1:4242"), ob(ocsf.EntityUser, "www-data"))...)
	s.alert("a-web-sh", "agent.webserver.shell", "initial_access", ocsf.SeverityHigh, e, "TA0001", "TA0002")
	e = s.ev("web-file", agnt, 90*time.Second, webObs(ob(ocsf.EntityFile, "/var/www/html/uploads/s.php"))...)
	s.alert("a-web-file", "agent.webshell.write", "persistence", ocsf.SeverityHigh, e, "TA0003")
	// 2–3 discovery and credential access through IMDS.
	e = s.ev("web-imds", agnt, 5*time.Minute, webObs(ob(ocsf.EntityIP, "169.254.169.254"), ob(ocsf.EntityProcess, "web-1:4300"))...)
	s.alert("a-web-imds", "agent.imds.credentials", "credential_access", ocsf.SeverityHigh, e, "TA0006", "TA0007")
	// 4 key use from outside.
	e = s.ev("gd-exfil", "guardduty", 30*time.Minute, ob(ocsf.EntityAccessKey, asiaKey), sessionInstance("i-0web1"),
		ob(ocsf.EntityIP, attackerIP), ob(ocsf.EntityFinding, "gd-0001"), ob(ocsf.EntityAccount, account))
	s.alert("a-gd-exfil", "guardduty.instance_credential_exfiltration", "credential_access", ocsf.SeverityHigh, e, "TA0006")
	// 5 bucket reference.
	e = s.ev("ct-list", ct, 32*time.Minute, attackerObs(ob(ocsf.EntityBucket, bucket))...)
	s.alert("a-ct-list", "aws.s3.enum_with_instance_creds", "discovery", ocsf.SeverityMedium, e, "TA0007")
	s.ev("ct-get", ct, 35*time.Minute, attackerObs(ob(ocsf.EntityBucket, bucket), ob(ocsf.EntityObject, "acme-artifacts/appspec.yml"))...)
	// 6 tampering, 7 malware placement.
	s.ev("ct-appspec", ct, 45*time.Minute, attackerObs(ob(ocsf.EntityBucket, bucket), ob(ocsf.EntityObject, "acme-artifacts/appspec.yml"))...)
	e = s.op("PutObject")
	s.alert("a-ct-appspec", "aws.s3.appspec_tamper", "defense_evasion", ocsf.SeverityHigh, e, "TA0005")
	s.ev("ct-bundle", ct, 50*time.Minute, attackerObs(ob(ocsf.EntityBucket, bucket), ob(ocsf.EntityObject, badObject))...)
	e = s.op("PutObject")
	s.alert("a-ct-bundle", "aws.s3.release_bundle_upload", "execution", ocsf.SeverityMedium, e, "TA0002")
	// 8 distribution.
	s.ev("ct-deploy", ct, 53*time.Minute, pipelineObs("arn:aws:sts::111122223333:assumed-role/codepipeline-role/2222", badObject, "d-ATTACK0001")...)
	s.op("CreateDeployment")
	// 9 impact on both targets.
	for i, n := range []string{"1", "2"} {
		off := time.Duration(i) * 20 * time.Second
		e = s.ev("tgt-drop-"+n, agnt, 56*time.Minute+off, targetObs(n, ob(ocsf.EntityDeployment, "d-ATTACK0001"),
			ob(ocsf.EntityProcess, "tgt-"+n+":2000"), ob(ocsf.EntityFile, "/tmp/x"))...)
		s.alert("a-tgt-drop-"+n, "agent.codedeploy.tmp_exec", "execution", ocsf.SeverityHigh, e, "TA0002")
		e = s.ev("tgt-c2-"+n, agnt, 57*time.Minute+off, targetObs(n, ob(ocsf.EntityIP, c2IP), ob(ocsf.EntityProcess, "tgt-"+n+":2001"))...)
		s.alert("a-tgt-c2-"+n, "agent.c2.beacon", "command_and_control", ocsf.SeverityHigh, e, "TA0011")
		s.ev("flow-c2-"+n, "vpcflow", 57*time.Minute+off, ob(ocsf.EntityIP, "10.0.2.2"+n), ob(ocsf.EntityIP, c2IP))
		e = s.ev("tgt-lock-"+n, agnt, 60*time.Minute+off, targetObs(n, ob(ocsf.EntityProcess, "tgt-"+n+":2001"))...)
		s.alert("a-tgt-lock-"+n, "agent.ransomware.mass_rename", "impact", ocsf.SeverityCritical, e, "TA0040")
	}

	// Noise: other users behind the shared NAT address.
	for i, u := range []string{"alice", "bob", "carol"} {
		e = s.ev("noise-"+u, ct, 40*time.Minute+time.Duration(i)*time.Minute,
			ob(ocsf.EntityPrincipal, "arn:aws:iam::111122223333:user/"+u), ob(ocsf.EntityUser, u),
			ob(ocsf.EntityAccessKey, "AKIANOISE0000"+u), ob(ocsf.EntityIP, natIP), ob(ocsf.EntityBucket, bucket),
			ob(ocsf.EntityAccount, account))
		if u != "carol" {
			s.alert("a-noise-"+u, "aws.s3.list_all_buckets", "discovery", ocsf.SeverityLow, e, "TA0007")
		}
	}
	return s
}

// testConfig turns folding off, so the tests can follow each alert by the
// id they gave it; fold_test.go tests folding.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.HubIPs = append(cfg.HubIPs, natIP+"/32")
	cfg.FoldWindow = 0
	return cfg
}
