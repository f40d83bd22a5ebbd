package gen

import (
	"fmt"
	"time"
)

// The hard negatives of real accounts. Each writes benign activity that
// shares entities, shapes or detections with the attack, and notes the
// entities that must stay out of high incidents.

// s3Benign records a benign GetObject.
func (d *day) s3Benign(t time.Time, ident obj, ip, ua, bucket, key string) {
	d.as(labelBenign, func() { d.s3(t, "GetObject", ident, ip, ua, bucket, key) })
}

// legitDeploy: the CI user uploads a bundle and appspec.yml to the release
// bucket, the pipeline deploys it to the same deployment group and hosts,
// and the agent shows the normal hook under the deployment root.
func (d *day) legitDeploy(t time.Time) {
	w, r := d.w, d.r
	bundle := fmt.Sprintf("%srelease-%s-%s.zip", w.releasePrefix, t.Format("20060102T1504"), r.hex(7))
	ci := w.iamUser(w.ciAcct, w.ci)
	d.s3(t, "PutObject", ci, w.ciIP, uaCLI, w.bucket, w.appspecKey)
	d.s3(t.Add(15*time.Second), "PutObject", ci, w.ciIP, uaCLI, w.bucket, bundle)
	dep := d.pipelineRun(t.Add(15*time.Second), bundle, false)
	version := t.Format("2006-01-02-1504")
	for i, h := range w.apps {
		ht := t.Add(time.Duration(3+i) * time.Minute)
		hook := d.hook(ht, h, dep, true)
		d.fileOp(ht.Add(4*time.Second), h, hook, 1, "/srv/app/releases/"+version+"/app.jar", "", r.between(30_000_000, 60_000_000))
		d.fileOp(ht.Add(5*time.Second), h, hook, 1, "/srv/app/releases/"+version+"/config/application.yml", "", r.between(800, 4000))
		ln := d.spawn(h, hook, "/usr/bin/ln", "ln -sfn /srv/app/releases/"+version+" /srv/app/current", "")
		d.launch(ht.Add(6*time.Second), h, ln)
		rs := d.spawn(h, hook, "/usr/bin/systemctl", "systemctl restart "+w.app, "")
		d.launch(ht.Add(8*time.Second), h, rs)
		d.flow(ht, h, w.hostNAT, 443, r.between(32768, 60999), false, "ACCEPT", r.between(40, 400), r.between(50_000, 900_000))
	}
	d.benignEntity("deployment", dep)
	d.benignEntity("object", w.bucket+"/"+bundle)
	d.benignEntity("principal", arnUser(w.ciAcct, w.ci.name))
	d.benignEntity("access_key", w.ci.key)
}

// instanceRoles: hosts use their own instance roles all day, the public
// ones from their own public address.
func (d *day) instanceRoles(from, to time.Time) {
	w, r := d.w, d.r
	for _, h := range []host{w.bastion, w.batch, w.api, w.db} {
		key := r.accessKey("ASIA")
		created := from.Add(-time.Duration(r.between(1, 300)) * time.Minute)
		ip := h.publicIP
		if ip == "" {
			ip = w.hostNAT
		}
		for t := r.within(from, time.Hour); t.Before(to); t = t.Add(time.Duration(r.between(20, 70)) * time.Minute) {
			if t.Sub(created) > 6*time.Hour {
				key, created = r.accessKey("ASIA"), t
			}
			id := w.instanceRole(h, key, created)
			d.mgmt(t, w.acct, "ssm", "UpdateInstanceInformation", id, ip, uaSSMAgent, obj{"instanceId": h.instance, "agentVersion": "3.3.40.0", "platformType": "Linux"}, nil)
			if r.chance(0.4) {
				d.mgmt(t.Add(time.Second), w.acct, "ec2", "DescribeTags", id, ip, uaBoto, obj{"filterSet": obj{"items": []any{obj{"name": "resource-id", "valueSet": obj{"items": []any{obj{"value": h.instance}}}}}}}, nil)
			}
			if r.chance(0.3) {
				d.s3(t.Add(2*time.Second), "GetObject", id, ip, uaSDKGo, w.configBucket, h.name+"/settings.json")
			}
		}
	}
	d.benignEntity("instance", w.bastion.instance)
	d.benignEntity("host", w.bastion.name)
}

// bastionSSH: admins come in through the bastion from the office NAT and
// hop to the app hosts.
func (d *day) bastionSSH(t time.Time) {
	w, r := d.w, d.r
	admin := pick(r, w.admins)
	d.flow(t, w.bastion, w.natIP, r.between(40000, 65000), 22, true, "ACCEPT", r.between(100, 900), r.between(20_000, 400_000))
	d.sshLogon(t.Add(time.Second), w.bastion, admin.name, w.natIP)
	sshd := d.sysproc(w.bastion, "/usr/sbin/sshd", "sshd: "+admin.name+" [priv]", "root")
	sh := d.spawn(w.bastion, sshd, "/usr/bin/bash", "-bash", admin.name)
	d.launch(t.Add(2*time.Second), w.bastion, sh)
	for i, h := range w.apps {
		if i > 0 && r.chance(0.5) {
			continue
		}
		ht := t.Add(time.Duration(1+i) * time.Minute)
		ssh := d.spawn(w.bastion, sh, "/usr/bin/ssh", "ssh "+h.name, "")
		d.launch(ht, w.bastion, ssh)
		d.connect(ht, w.bastion, ssh, h.privateIP, 22)
		d.flow(ht, h, w.bastion.privateIP, r.between(40000, 65000), 22, true, "ACCEPT", r.between(50, 300), r.between(8_000, 90_000))
		d.sshLogon(ht.Add(time.Second), h, admin.name, w.bastion.privateIP)
		hs := d.sysproc(h, "/usr/sbin/sshd", "sshd: "+admin.name+" [priv]", "root")
		b := d.spawn(h, hs, "/usr/bin/bash", "-bash", admin.name)
		d.launch(ht.Add(2*time.Second), h, b)
		for _, c := range []string{"sudo journalctl -u " + w.app + " --since -1h", "df -h", "sudo systemctl status " + w.app, "tail -n 200 /var/log/" + w.app + "/app.log"} {
			if r.chance(0.6) {
				d.launch(ht.Add(time.Duration(r.between(5, 120))*time.Second), h, d.spawn(h, b, "/usr/bin/"+firstWord(c), c, ""))
			}
		}
	}
	d.benignEntity("host", w.bastion.name)
	d.benignEntity("user", admin.name)
}

func firstWord(s string) string {
	for i := range len(s) {
		if s[i] == ' ' {
			return s[:i]
		}
	}
	return s
}

// imdsJobs: cloud-init at boot and cron jobs read IMDS with curl and the
// AWS CLI.
func (d *day) imdsJobs(from, to time.Time) {
	w, r := d.w, d.r
	h := w.batch
	boot := from.Add(time.Duration(r.between(5, 60)) * time.Minute)
	ci := d.sysproc(h, "/usr/bin/python3", "/usr/bin/python3 /usr/bin/cloud-init modules --mode=final", "root")
	part := d.spawn(h, ci, "/bin/sh", "/bin/sh /var/lib/cloud/instance/scripts/part-001", "")
	d.launch(boot, h, part)
	for _, path := range []string{"meta-data/instance-id", "meta-data/placement/region", "meta-data/iam/security-credentials/" + h.role} {
		c := d.spawn(h, part, "/usr/bin/curl", "curl -s http://169.254.169.254/latest/"+path, "")
		d.launch(boot.Add(time.Second), h, c)
		d.connect(boot.Add(time.Second), h, c, "169.254.169.254", 80)
	}
	cron := d.sysproc(h, "/usr/sbin/cron", "/usr/sbin/cron -f", "root")
	key, created := r.accessKey("ASIA"), from
	every := time.Duration(pick(r, []int{10, 15, 30})) * time.Minute
	for t := from.Add(every); t.Before(to); t = t.Add(every) {
		sh := d.spawn(h, cron, "/bin/sh", "/bin/sh -c /opt/jobs/sync-reports.sh", "reports")
		d.launch(t, h, sh)
		aws := d.spawn(h, sh, "/usr/local/aws-cli/v2/current/dist/aws", "aws s3 sync /var/reports s3://"+w.logBucket+"/reports/ --only-show-errors", "")
		d.launch(t.Add(time.Second), h, aws)
		d.connect(t.Add(time.Second), h, aws, "169.254.169.254", 80)
		if t.Sub(created) > 6*time.Hour {
			key, created = r.accessKey("ASIA"), t
		}
		d.s3(t.Add(3*time.Second), "PutObject", w.instanceRole(h, key, created), w.hostNAT, uaCLI, w.logBucket, fmt.Sprintf("reports/%s.csv", t.Format("20060102-1504")))
	}
	d.benignEntity("host", h.name)
	d.benignEntity("instance", h.instance)
}

// servicePrincipals: AWS Config, CloudFormation and CodePipeline touch the
// release bucket and the pipeline.
func (d *day) servicePrincipals(from, to time.Time) {
	w, r := d.w, d.r
	cfg := w.assumedRole(w.ciAcct, "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig", "AWSConfig-Describe", r.accessKey("ASIA"), "config.amazonaws.com", from)
	cfn := w.assumedRole(w.ciAcct, "cfn-exec-"+w.app, fmt.Sprint(from.UnixMilli()), r.accessKey("ASIA"), "cloudformation.amazonaws.com", from)
	for t := r.within(from, 2*time.Hour); t.Before(to); t = t.Add(time.Duration(r.between(60, 240)) * time.Minute) {
		for _, n := range []string{"GetBucketAcl", "GetBucketPolicy", "GetBucketVersioning", "GetBucketEncryption"} {
			d.mgmt(t, w.ciAcct, "s3", n, cfg, "config.amazonaws.com", "config.amazonaws.com", obj{"bucketName": w.bucket, n[3:]: ""}, nil)
		}
		d.mgmt(t.Add(time.Minute), w.ciAcct, "codepipeline", "GetPipeline", cfg, "config.amazonaws.com", "config.amazonaws.com", obj{"name": w.pipeline}, nil)
	}
	t := r.within(from, to.Sub(from))
	d.mgmt(t, w.ciAcct, "s3", "PutBucketTagging", cfn, "cloudformation.amazonaws.com", "cloudformation.amazonaws.com", obj{"bucketName": w.bucket}, nil)
	d.mgmt(t.Add(time.Second), w.ciAcct, "s3", "GetBucketPolicy", cfn, "cloudformation.amazonaws.com", "cloudformation.amazonaws.com", obj{"bucketName": w.bucket}, nil)
	d.benignEntity("session", arnSession(w.ciAcct, "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig", "AWSConfig-Describe"))
	d.benignEntity("role", arnRole(w.ciAcct, "cfn-exec-"+w.app))
}

// webrootUpload: a deploy user writes a new release of the site under the
// web root (PHP files included) with rsync over SSH.
func (d *day) webrootUpload(t time.Time) {
	w, r := d.w, d.r
	h := w.web
	if d.noAgent[h.name] {
		return
	}
	sshd := d.sysproc(h, "/usr/sbin/sshd", "sshd: deploy [priv]", "root")
	rsync := d.spawn(h, sshd, "/usr/bin/rsync", "rsync --server -logDtpre.iLsfxCIvu --delete . "+w.webRoot+"/", "deploy")
	d.flow(t, h, w.bastion.privateIP, r.between(40000, 65000), 22, true, "ACCEPT", r.between(100, 900), r.between(200_000, 4_000_000))
	d.launch(t, h, rsync)
	for i, f := range []string{"index.php", "wp-login.php", "assets/app." + r.hex(8) + ".js", "assets/app." + r.hex(8) + ".css", "includes/functions.php", "uploads/.htaccess"} {
		d.fileOp(t.Add(time.Duration(i+1)*time.Second), h, rsync, 1, w.webRoot+"/"+f, "", r.between(500, 90_000))
		if i == 0 {
			d.benignEntity("file", w.webRoot+"/"+f)
		}
	}
}

// logRotation: logrotate renames many files at once on every host.
func (d *day) logRotation(t time.Time) {
	r := d.r
	for _, h := range d.w.hosts() {
		lr := d.sysproc(h, "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "root")
		d.launch(t, h, lr)
		for k, base := range []string{"/var/log/syslog", "/var/log/auth.log", "/var/log/nginx/access.log", "/var/log/nginx/error.log", "/var/log/" + d.w.app + "/app.log", "/var/log/dpkg.log"} {
			for n := r.between(3, 6); n >= 1; n-- {
				at := t.Add(time.Duration(k*10+n) * 150 * time.Millisecond)
				d.fileOp(at, h, lr, 5, fmt.Sprintf("%s.%d.gz", base, n), fmt.Sprintf("%s.%d.gz", base, n+1), 0)
			}
			d.fileOp(t.Add(time.Duration(k*10)*150*time.Millisecond), h, lr, 5, base, base+".1", 0)
		}
		t = t.Add(time.Duration(r.between(0, 3)) * time.Second)
	}
	d.benignEntity("file", "/var/log/syslog.1")
}

// falcoNoise: package managers and agents trip noisy Falco rules.
func (d *day) falcoNoise(t time.Time) {
	w, r := d.w, d.r
	for _, h := range []host{w.db, w.batch, w.apps[0]} {
		apt := d.sysproc(h, "/usr/bin/apt-get", "apt-get -qy upgrade", "root")
		dpkg := d.spawn(h, apt, "/usr/bin/dpkg", "/usr/bin/dpkg --status-fd 35 --configure --pending", "")
		at := t.Add(time.Duration(r.between(0, 600)) * time.Second)
		d.launch(at, h, apt)
		d.falco(at.Add(2*time.Second), h, "Read sensitive file untrusted", "Warning",
			"Sensitive file opened for reading by non-trusted program (file=/etc/shadow proc="+dpkg.name()+")",
			mergeObj(procFields(dpkg), obj{"fd.name": "/etc/shadow", "evt.type": "openat"}), "filesystem", "mitre_credential_access", "T1555")
		d.falco(at.Add(3*time.Second), h, "Write below etc", "Error",
			"File below /etc opened for writing (file=/etc/ld.so.cache proc="+dpkg.name()+")",
			mergeObj(procFields(dpkg), obj{"fd.name": "/etc/ld.so.cache", "evt.type": "openat"}), "filesystem", "mitre_persistence")
		if r.chance(0.5) {
			ssm := d.sysproc(h, "/usr/bin/amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", "root")
			d.falco(at.Add(time.Minute), h, "Read sensitive file untrusted", "Warning",
				"Sensitive file opened for reading by non-trusted program (file=/etc/sudoers proc=amazon-ssm-agent)",
				mergeObj(procFields(ssm), obj{"fd.name": "/etc/sudoers", "evt.type": "openat"}), "filesystem", "mitre_credential_access")
		}
	}
	d.benignEntity("host", w.db.name)
	d.benignEntity("instance", w.db.instance)
}

// sharedNAT: people in the office come from one NAT address (a hub the
// operator declares): console sign-ins, reads of the release bucket,
// Describe calls.
func (d *day) sharedNAT(from, to time.Time) {
	w, r := d.w, d.r
	for i, u := range append(append([]user{}, w.readers...), w.admins...) {
		t := r.within(from, to.Sub(from))
		d.ct(ctCall{t: t, account: w.acct, service: "signin", name: "ConsoleLogin", ident: obj{"type": "IAMUser", "principalId": u.principalID, "arn": arnUser(w.acct, u.name), "accountId": w.acct, "userName": u.name},
			ip: w.natIP, ua: uaConsole, resp: obj{"ConsoleLogin": "Success"},
			extra: obj{"additionalEventData": obj{"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "Yes"}}})
		id := w.iamUser(w.acct, u)
		for k := range r.between(4, 14) {
			at := t.Add(time.Duration(k*r.between(1, 9)) * time.Minute)
			switch r.IntN(5) {
			case 0:
				d.mgmt(at, w.acct, "ec2", "DescribeInstances", id, w.natIP, uaConsole, obj{"instancesSet": obj{}}, nil)
			case 1:
				d.mgmt(at, w.acct, "s3", "ListBuckets", id, w.natIP, uaCLI, obj{"Host": "s3." + w.region + ".amazonaws.com"}, nil)
			case 2:
				d.s3(at, "GetObject", id, w.natIP, uaCLI, w.bucket, w.appspecKey)
			case 3:
				d.mgmt(at, w.acct, "codedeploy", "ListDeployments", id, w.natIP, uaConsole, obj{"applicationName": w.app, "deploymentGroupName": w.group}, nil)
			default:
				d.mgmt(at, w.acct, "cloudwatch", "GetMetricData", id, w.natIP, uaConsole, obj{"startTime": iso(at.Add(-3 * time.Hour)), "endTime": iso(at)}, nil)
			}
		}
		if i != len(w.readers)-1 { // the last reader's key leaks in reconCaller
			d.benignEntity("principal", arnUser(w.acct, u.name))
		}
	}
}
