package gen

import (
	"fmt"
	"time"
)

// Variant names a kind of generated scenario.
type Variant string

// The variants of the product brief's attack chain, and the benign day.
const (
	VariantFullChain    Variant = "full-chain"
	VariantStoppedAtS3  Variant = "stopped-at-s3"
	VariantIMDSv2       Variant = "imdsv2"
	VariantKeysFromVPS  Variant = "keys-from-vps"
	VariantResidential  Variant = "keys-from-residential"
	VariantSlowTwoDays  Variant = "slow-two-days"
	VariantGDRuntime    Variant = "guardduty-runtime"
	VariantCrossAccount Variant = "cross-account-pipeline"
	VariantBenignDay    Variant = "benign-day"
)

// Variants is the order Generate cycles through.
var Variants = []Variant{
	VariantFullChain, VariantStoppedAtS3, VariantIMDSv2, VariantKeysFromVPS, VariantResidential,
	VariantSlowTwoDays, VariantGDRuntime, VariantCrossAccount, VariantBenignDay,
}

// chain is what the attack generator leaves for the ground truth.
type chain struct {
	start     time.Time
	entities  []string
	firstUse  time.Time // first use of the stolen key
	deployAt  time.Time // the malicious deployment (zero when none)
	attackIPs []string
}

// attack writes the chain of the product brief in variant v, starting at
// start, and returns its ground truth entities.
func (d *day) attack(v Variant, start time.Time) chain {
	w, r := d.w, d.r
	ch := chain{start: start}
	ent := func(kind, value string) { ch.entities = append(ch.entities, kind+":"+value) }
	agent := v != VariantGDRuntime
	web := w.web

	// Where the attacker works from.
	exploitIP := w.externalIP()
	keyIP, org, country, city := exploitIP, "Example Hosting B.V.", "Netherlands", "Amsterdam"
	ua := uaKali
	switch v {
	case VariantKeysFromVPS:
		keyIP, org, country, city = w.externalIP(), "Example Cloud VPS LLC", "United States", "Ashburn"
		ua = uaPacu
	case VariantResidential:
		keyIP, org, country, city = w.residentialIP(), "Example Broadband", "Brazil", "Sao Paulo"
		ua = uaCLI
	}
	c2 := w.externalIP()
	c2Port := pick(r, []int{8443, 4444, 443, 8080, 9001})
	ch.attackIPs = []string{exploitIP, keyIP, c2}
	if agent {
		ent("host", web.name)
	}
	ent("instance", web.instance)

	// 1 initial access: the exploit's requests, a shell from the PHP
	// workers, a web shell under the web root.
	t := start
	for i := range r.between(3, 8) {
		d.flow(t.Add(time.Duration(i)*20*time.Second), web, exploitIP, r.between(40000, 65000), 443, true, "ACCEPT", r.between(8, 40), r.between(2000, 30000))
	}
	fpm := d.sysproc(web, w.phpFPM, "php-fpm: pool www", "www-data")
	shell := d.spawn(web, fpm, "/bin/sh", "sh -c id;uname -a;cd /tmp", "")
	shellName := fmt.Sprintf("%s/%s/%s.php", w.webRoot, pick(r, []string{"uploads", "wp-content/uploads", "images", "assets/tmp"}), pick(r, []string{".cache", "thumb", "class-wp-widget", "x", "config.bak"}))
	t = t.Add(time.Duration(r.between(20, 90)) * time.Second)
	if agent {
		d.launch(t, web, shell)
		d.fileOp(t.Add(20*time.Second), web, fpm, 1, shellName, "", r.between(900, 4000))
	} else {
		d.runtimeFinding(t, web, "Execution:Runtime/SuspiciousShellCreated", 5, shell, "A suspicious shell was created on "+web.instance+".")
	}

	// 2–3 discovery and credential access through IMDS, with IMDSv2
	// tokens in that variant.
	imds := func(at time.Time, path string) {
		cmd := "curl -s http://169.254.169.254/latest/" + path
		if v == VariantIMDSv2 {
			token := "AQAEA" + r.chars(51, upperAlnum+lowerAlnum)
			put := d.spawn(web, shell, "/usr/bin/curl", `curl -s -X PUT http://169.254.169.254/latest/api/token -H X-aws-ec2-metadata-token-ttl-seconds: 21600`, "")
			if agent {
				d.launch(at.Add(-2*time.Second), web, put)
				d.connect(at.Add(-2*time.Second), web, put, "169.254.169.254", 80)
			}
			cmd = "curl -s -H X-aws-ec2-metadata-token: " + token + " http://169.254.169.254/latest/" + path
		}
		p := d.spawn(web, shell, "/usr/bin/curl", cmd, "")
		if agent {
			d.launch(at, web, p)
			d.connect(at, web, p, "169.254.169.254", 80)
		} else if path != "meta-data/placement/region" {
			d.runtimeFinding(at, web, "Discovery:Runtime/SuspiciousCommand", 5, p, "A suspicious command was run on "+web.instance+" to read instance metadata.")
		}
	}
	t = t.Add(time.Duration(r.between(2, 15)) * time.Minute)
	imds(t, "meta-data/placement/region")
	imds(t.Add(30*time.Second), "meta-data/iam/info")
	imds(t.Add(70*time.Second), "meta-data/iam/security-credentials/"+web.role)
	key := r.accessKey("ASIA")
	ent("access_key", key)
	ent("ip", keyIP)
	created := t.Add(-time.Duration(r.between(5, 300)) * time.Minute)
	// The instance itself keeps using the very same key from its own
	// address: a hard negative for joins on the key.
	for range r.between(3, 8) {
		d.s3Benign(r.within(created, 6*time.Hour), w.instanceRole(web, key, created), web.publicIP, uaSDKGo, w.configBucket, w.app+"/settings.json")
	}

	// 4–5 key use and bucket reference.
	t = t.Add(time.Duration(r.between(5, 40)) * time.Minute)
	if v == VariantSlowTwoDays {
		t = t.Add(time.Duration(r.between(2, 6)) * time.Hour)
	}
	ch.firstUse = t
	id := w.instanceRole(web, key, created)
	d.mgmt(t, w.acct, "sts", "GetCallerIdentity", id, keyIP, ua, nil, nil)
	d.mgmt(t.Add(20*time.Second), w.acct, "s3", "ListBuckets", id, keyIP, ua, obj{"Host": "s3." + w.region + ".amazonaws.com"}, nil)
	if r.chance(0.5) {
		d.mgmt(t.Add(40*time.Second), w.acct, "ec2", "DescribeInstances", id, keyIP, ua, obj{"instancesSet": obj{}, "filterSet": obj{}}, nil)
	}
	d.s3(t.Add(time.Minute), "ListObjectsV2", id, keyIP, ua, w.bucket, w.releasePrefix)
	d.s3(t.Add(90*time.Second), "GetObject", id, keyIP, ua, w.bucket, w.appspecKey)
	lastGood := fmt.Sprintf("%srelease-%s.zip", w.releasePrefix, start.Add(-24*time.Hour).Format("2006-01-02"))
	d.s3(t.Add(2*time.Minute), "GetObject", id, keyIP, ua, w.bucket, lastGood)
	ent("bucket", w.bucket)
	d.finding(t.Add(time.Duration(r.between(3, 20))*time.Minute), w.acct, "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8,
		"Credentials for instance role "+web.role+" used from external IP address.",
		"Credentials created exclusively for an EC2 instance using instance role "+web.role+" have been used from external IP address "+keyIP+".",
		obj{"resourceType": "AccessKey", "accessKeyDetails": obj{"accessKeyId": key, "principalId": "AROA" + hash16(web.account+web.role) + ":" + web.instance, "userName": web.role, "userType": "AssumedRole"},
			"instanceDetails": w.instanceResource(web)["instanceDetails"]},
		obj{"action": obj{"actionType": "AWS_API_CALL", "awsApiCallAction": obj{"api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP",
			"remoteIpDetails": remoteIP(keyIP, org, country, city)}}})
	if v == VariantStoppedAtS3 {
		d.s3(t.Add(4*time.Minute), "GetObject", id, keyIP, ua, w.bucket, w.releasePrefix+"scripts/install.sh")
		ent("object", w.bucket+"/"+lastGood)
		return ch
	}

	// A slow chain comes back the next day: the shell reads fresh
	// credentials (the first ones expired) and the attacker goes on.
	if v == VariantSlowTwoDays {
		t = start.Add(24*time.Hour + time.Duration(r.between(0, 240))*time.Minute)
		imds(t, "meta-data/iam/security-credentials/"+web.role)
		key = r.accessKey("ASIA")
		ent("access_key", key)
		created = t
		id = w.instanceRole(web, key, created)
		t = t.Add(time.Duration(r.between(3, 30)) * time.Minute)
		d.s3(t, "ListObjectsV2", id, keyIP, ua, w.bucket, w.releasePrefix)
	}

	// 6–7 tampering and malware placement.
	t = t.Add(time.Duration(r.between(4, 25)) * time.Minute)
	d.s3(t, "PutObject", id, keyIP, ua, w.bucket, w.appspecKey)
	bad := fmt.Sprintf("%srelease-%s.zip", w.releasePrefix, t.Format("2006-01-02"))
	if r.chance(0.5) {
		bad = fmt.Sprintf("%srelease-%s-hotfix.zip", w.releasePrefix, t.Format("2006-01-02"))
	}
	t = t.Add(time.Duration(r.between(1, 8)) * time.Minute)
	d.s3(t, "PutObject", id, keyIP, ua, w.bucket, bad)
	ent("object", w.bucket+"/"+bad)

	// 8 distribution: the upload starts the pipeline, which deploys the
	// bundle to the deployment group.
	dep := d.pipelineRun(t, bad, true)
	ent("deployment", dep)
	ch.deployAt = t

	// 9 impact on every target: the hook drops and runs the payload, which
	// calls home and encrypts.
	payload := pick(r, []string{"/tmp/x", "/tmp/.kworker", "/var/tmp/updater", "/dev/shm/.s"})
	sha := r.hex(64)
	for i, h := range w.apps {
		ht := t.Add(time.Duration(3+i) * time.Minute).Add(time.Duration(r.between(0, 50)) * time.Second)
		if agent {
			ent("host", h.name)
		} else {
			ent("instance", h.instance)
		}
		hook := d.hook(ht, h, dep, agent)
		x := d.spawn(h, hook, payload, payload+" -c "+c2+fmt.Sprintf(":%d", c2Port), "root")
		x.sha256 = sha
		if agent {
			d.fileOp(ht.Add(5*time.Second), h, hook, 1, payload, "", r.between(900000, 3000000))
			d.launch(ht.Add(8*time.Second), h, x)
		} else {
			d.runtimeFinding(ht.Add(8*time.Second), h, "Execution:Runtime/NewBinaryExecuted", 5, x, "A newly created or recently modified file was executed on "+h.instance+".")
		}
		// C2: every connection of the malware.
		for k := range r.between(15, 45) {
			ct := ht.Add(10*time.Second + time.Duration(k)*time.Duration(r.between(20, 90))*time.Second)
			if agent {
				d.connect(ct, h, x, c2, c2Port)
			}
			if k%3 == 0 {
				d.flow(ct, h, c2, c2Port, r.between(32768, 60999), false, "ACCEPT", r.between(5, 30), r.between(400, 9000))
			}
		}
		if !agent {
			d.runtimeFinding(ht.Add(2*time.Minute), h, "Backdoor:Runtime/C&CActivity.B", 8, x, "A process on "+h.instance+" is querying an IP address associated with command and control.")
			d.runtimeFinding(ht.Add(3*time.Minute), h, "Impact:Runtime/MaliciousDomainRequest.Reputation", 8, x, "A process on "+h.instance+" is querying a domain known to be malicious.")
			continue
		}
		// Ransomware: mass renames, a note, Falco on top.
		rt := ht.Add(time.Duration(r.between(2, 6)) * time.Minute)
		for k := range r.between(25, 70) {
			name := fmt.Sprintf("/srv/data/%s-%04d.%s", pick(r, []string{"orders", "invoices", "customers", "reports", "backup"}), k, pick(r, []string{"db", "csv", "json", "pdf", "tar"}))
			at := rt.Add(time.Duration(k) * 700 * time.Millisecond)
			d.fileOp(at, h, x, 5, name, name+".locked", 0)
			if k%6 == 0 {
				d.falco(at.Add(100*time.Millisecond), h, "Mass rename to encrypted extension", "Critical",
					"File renamed to a ransomware extension (proc="+x.name()+" file="+name+".locked host="+h.name+")",
					mergeObj(procFields(x), obj{"fd.name": name + ".locked", "evt.type": "renameat2"}), "mitre_impact", "T1486")
			}
		}
		d.fileOp(rt.Add(time.Minute), h, x, 1, "/srv/data/README_FOR_DECRYPT.txt", "", 1880)
	}
	return ch
}

func mergeObj(a, b obj) obj {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// runtimeFinding records a GuardDuty Runtime Monitoring finding about p on h.
func (d *day) runtimeFinding(t time.Time, h host, typ string, severity float64, p *proc, desc string) {
	ctx := obj{"commandLineExample": p.cmd}
	d.finding(t, h.account, typ, severity, desc, desc, d.w.instanceResource(h),
		obj{"featureName": "RuntimeMonitoring", "action": obj{"actionType": "PROCESS_ACTIVITY"},
			"runtimeDetails": obj{"process": runtimeProcess(t, p), "context": ctx}})
}

// pipelineRun records an upload-triggered pipeline execution deploying
// bundle to the deployment group, and returns the deployment id. The
// targets' hooks are written by the caller (malicious) or here (benign).
func (d *day) pipelineRun(t time.Time, bundle string, malicious bool) string {
	w, r := d.w, d.r
	evSession := r.hex(8)
	d.mgmt(t.Add(time.Duration(r.between(20, 70))*time.Second), w.ciAcct, "codepipeline", "StartPipelineExecution",
		w.assumedRole(w.ciAcct, w.eventsRole, evSession, r.accessKey("ASIA"), "events.amazonaws.com", t),
		"events.amazonaws.com", "events.amazonaws.com", obj{"name": w.pipeline}, obj{"pipelineExecutionId": r.uuid()})
	cpSession := fmt.Sprint(t.UnixMilli() + int64(r.between(1000, 99999)))
	cp := w.assumedRole(w.ciAcct, w.pipelineRole, cpSession, r.accessKey("ASIA"), "codepipeline.amazonaws.com", t)
	d.s3(t.Add(90*time.Second), "GetObject", cp, "codepipeline.amazonaws.com", "codepipeline.amazonaws.com", w.bucket, bundle)
	deployer := cp
	if w.ciAcct != w.acct {
		deployer = w.assumedRole(w.acct, w.deployRole, cpSession, r.accessKey("ASIA"), "codepipeline.amazonaws.com", t)
	}
	dep := r.deploymentID()
	d.mgmt(t.Add(2*time.Minute), w.acct, "codedeploy", "CreateDeployment", deployer, "codepipeline.amazonaws.com", "codepipeline.amazonaws.com",
		obj{"applicationName": w.app, "deploymentGroupName": w.group,
			"revision":             obj{"revisionType": "S3", "s3Location": obj{"bucket": w.bucket, "key": bundle, "bundleType": "zip", "eTag": r.hex(32)}},
			"deploymentConfigName": pick(r, []string{"CodeDeployDefault.OneAtATime", "CodeDeployDefault.AllAtOnce", "CodeDeployDefault.HalfAtATime"}),
			"description":          "Deployed by CodePipeline " + w.pipeline},
		obj{"deploymentId": dep})
	return dep
}

// hook records the CodeDeploy agent running a deployment's install hook
// on h and returns the hook's shell.
func (d *day) hook(t time.Time, h host, dep string, agent bool) *proc {
	w := d.w
	root := fmt.Sprintf("/opt/codedeploy-agent/deployment-root/%s/%s/deployment-archive", w.groupID, dep)
	cda := d.sysproc(h, "/usr/bin/ruby", "codedeploy-agent: InstanceAgent::Plugins::CodeDeployPlugin::CommandPoller of master 871", "root")
	cda.lineage = append(cda.lineage, "/opt/codedeploy-agent/bin/codedeploy-agent")
	sh := d.spawn(h, cda, "/usr/bin/bash", "bash "+root+"/scripts/install.sh", "root")
	sh.cwd = root
	if agent {
		d.launch(t, h, sh)
	}
	return sh
}
