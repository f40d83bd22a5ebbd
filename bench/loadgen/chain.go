package loadgen

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// chain returns the records of injected chain number n (1-based), starting
// at t0 and spread over cfg.ChainSpan in the order of PRODUCT.md's table.
// Every identifier is fresh: its own account, instances, hosts, addresses,
// role, access key, bucket, release key and deployment, so two chains share
// nothing a correlator could join on.
func chain(cfg Config, n int, t0 time.Time) []Record {
	rng := chainRand(cfg, n)
	at := func(frac float64) time.Time { return t0.Add(time.Duration(frac * float64(cfg.ChainSpan))) }
	c := chainIDs(rng, n)
	var out []Record
	ct := func(frac float64, rec m) {
		out = append(out, Record{Source: SourceCloudTrail, Time: at(frac), Key: []byte(c.account), Value: mustJSON(rec), Chain: n})
	}
	ag := func(frac float64, h host, class, activity int, extra m) string {
		uid := uuid(rng)
		ev := agentEvent(uid, at(frac), class, activity, c.account, c.region, device(h, c.region), extra)
		out = append(out, Record{Source: SourceAgent, Time: at(frac), Key: []byte(h.instance), Value: mustJSON(ev), Chain: n, EventUID: uid})
		return uid
	}
	flow := func(frac float64, h host, src, dst string, sport, dport, packets, bytes int) {
		out = append(out, Record{Source: SourceVPCFlow, Time: at(frac), Key: []byte(h.eni), Chain: n,
			Value: flowLine(c.account, h.eni, src, dst, sport, dport, 6, packets, bytes, at(frac), "ACCEPT")})
	}

	// 1 initial access: inbound from the attacker, php-fpm spawns a shell
	// and writes a web shell under the web root.
	const php = "/usr/sbin/php-fpm8.2"
	webLin := []string{"/usr/lib/systemd/systemd", php, "/bin/sh"}
	flow(0, c.web, c.attacker, c.web.ip, 51515, 443, 18, 6800)
	ag(0.01, c.web, 1007, 1, m{"process": m{"pid": 24811, "name": "sh", "cmd_line": "sh -c id;uname -a", "file": m{"path": "/bin/sh", "name": "sh"},
		"user": m{"name": "www-data"}, "parent_process": m{"pid": 1377, "name": "php-fpm8.2", "file": m{"path": php}}, "lineage": []string{"/usr/lib/systemd/systemd", php}}})
	ag(0.02, c.web, 1001, 1, m{"file": m{"path": "/var/www/html/uploads/.cache-" + c.tag + ".php", "name": ".cache-" + c.tag + ".php", "size": 1436},
		"process": m{"pid": 1377, "name": "php-fpm8.2", "file": m{"path": php}, "user": m{"name": "www-data"}}})
	// 2 discovery and 3 credential access through IMDS.
	imds := func(frac float64, pid int, path string) {
		ag(frac, c.web, 1007, 1, m{"process": m{"pid": pid, "name": "curl", "cmd_line": "curl -s http://169.254.169.254/latest/meta-data/" + path,
			"file": m{"path": "/usr/bin/curl"}, "user": m{"name": "www-data"}, "parent_process": m{"pid": 24866, "name": "sh", "file": m{"path": "/bin/sh"}}, "lineage": webLin}})
	}
	imds(0.06, 24870, "placement/region")
	imds(0.07, 24871, "iam/info")
	imds(0.08, 24880, "iam/security-credentials/"+c.role)
	ag(0.08, c.web, 4001, 1, m{"src_endpoint": m{"ip": c.web.ip, "port": 48122}, "dst_endpoint": m{"ip": "169.254.169.254", "port": 80},
		"connection_info": m{"direction_id": 2, "protocol_num": 6}, "process": m{"pid": 24880, "name": "curl", "file": m{"path": "/usr/bin/curl"}, "lineage": webLin}})

	// 4 the instance's keys used from the attacker's machine; 5 the
	// artifact bucket listed and read.
	att := instanceIdentity(host{account: c.account, role: c.role, roleID: c.roleID, instance: c.web.instance, key: c.key}, at(0))
	const cli = "[aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.kali.2024 prompt/off command/s3.cp]"
	s3 := func(frac float64, name, key string, readOnly bool, extraReq m) {
		req := m{"bucketName": c.bucket, "Host": c.bucket + ".s3." + c.region + ".amazonaws.com"}
		if key != "" {
			req["key"] = key
		}
		for k, v := range extraReq {
			req[k] = v
		}
		var resp any
		if !readOnly {
			resp = m{"x-amz-server-side-encryption": "AES256"}
		}
		ct(frac, c.record(rng, at(frac), "s3.amazonaws.com", name, c.attacker, cli, att, req, resp, s3Resources(c.account, c.bucket, key), true, readOnly))
	}
	ct(0.50, c.record(rng, at(0.50), "sts.amazonaws.com", "GetCallerIdentity", c.attacker, cli, att, nil, nil, nil, false, true))
	ct(0.51, c.record(rng, at(0.51), "s3.amazonaws.com", "ListBuckets", c.attacker, cli, att, m{"Host": "s3." + c.region + ".amazonaws.com"}, nil, nil, false, true))
	s3(0.52, "ListObjects", "", true, m{"prefix": ""})
	out = append(out, Record{Source: SourceGuardDuty, Time: at(0.53), Key: []byte(c.account), Chain: n, Value: mustJSON(c.finding(rng, at(0.53)))})
	s3(0.55, "GetObject", "webapp/appspec.yml", true, nil)
	s3(0.56, "GetObject", "webapp/release-ci.zip", true, nil)
	// 6 tampering and 7 malware placement.
	s3(0.70, "PutObject", "webapp/appspec.yml", false, nil)
	s3(0.78, "PutObject", c.bundle, false, nil)
	// 8 distribution: the upload starts the pipeline, which deploys it.
	ct(0.80, c.record(rng, at(0.80), "codepipeline.amazonaws.com", "StartPipelineExecution", "events.amazonaws.com", "events.amazonaws.com",
		c.service(rng, "events-start-pipeline", hexN(rng, 8), "events.amazonaws.com", at(0.8)), m{"name": "webapp-release"}, m{"pipelineExecutionId": uuid(rng)}, nil, false, false))
	ct(0.83, c.record(rng, at(0.83), "codedeploy.amazonaws.com", "CreateDeployment", "codepipeline.amazonaws.com", "codepipeline.amazonaws.com",
		c.service(rng, "codepipeline-service-role", fmt.Sprint(1763629980000+rng.IntN(1e6)), "codepipeline.amazonaws.com", at(0.83)),
		m{"applicationName": "webapp", "deploymentGroupName": "webapp-prod",
			"revision":             m{"revisionType": "S3", "s3Location": m{"bucket": c.bucket, "key": c.bundle, "bundleType": "zip", "eTag": hexN(rng, 6)}},
			"deploymentConfigName": "CodeDeployDefault.AllAtOnce", "description": "Deployed by CodePipeline webapp-release"},
		m{"deploymentId": c.deployment}, nil, false, false))

	// 9 impact: the tampered hook drops and runs the payload on both
	// targets: C2, mass renames, a ransom note. The last record of the
	// chain is the ransom note on the second target.
	const agentBin = "/opt/codedeploy-agent/bin/codedeploy-agent"
	hook := "/opt/codedeploy-agent/deployment-root/" + c.groupDir + "/" + c.deployment + "/deployment-archive/scripts/install.sh"
	lin := []string{"/usr/lib/systemd/systemd", agentBin, "/usr/bin/bash " + hook}
	var lastUID string
	for i, h := range []host{c.tgt1, c.tgt2} {
		off := float64(i) * 0.04
		ag(0.88+off, h, 1001, 1, m{"file": m{"path": "/tmp/x", "name": "x", "size": 2284120},
			"process": m{"pid": 6200, "name": "bash", "cmd_line": "bash " + hook, "file": m{"path": "/usr/bin/bash"}, "user": m{"name": "root"},
				"lineage": []string{"/usr/lib/systemd/systemd", agentBin}}})
		ag(0.89+off, h, 1007, 1, m{"process": m{"pid": 6210, "name": "x", "cmd_line": "/tmp/x -c " + c.c2 + ":8443", "file": m{"path": "/tmp/x", "name": "x",
			"hashes": []m{{"algorithm": "SHA-256", "algorithm_id": 3, "value": c.payloadHash}}},
			"user": m{"name": "root"}, "cwd": "/tmp", "parent_process": m{"pid": 6200, "name": "bash", "cmd_line": "bash " + hook, "file": m{"path": "/usr/bin/bash"}},
			"lineage": lin}})
		ag(0.90+off, h, 4001, 1, m{"src_endpoint": m{"ip": h.ip, "port": 40112}, "dst_endpoint": m{"ip": c.c2, "port": 8443},
			"connection_info": m{"direction_id": 2, "protocol_num": 6}, "process": m{"pid": 6210, "name": "x", "file": m{"path": "/tmp/x"}, "lineage": lin}})
		flow(0.90+off, h, h.ip, c.c2, 40112, 8443, 24, 3120)
		for j, fn := range []string{"orders.db", "invoices-2026.csv", "customers.json", "app.env", "backup.tar"} {
			ag(0.93+off+float64(j)*0.002, h, 1001, 5, m{"file": m{"path": "/srv/data/" + fn, "name": fn},
				"file_result": m{"path": "/srv/data/" + fn + ".locked", "name": fn + ".locked"},
				"process":     m{"pid": 6210, "name": "x", "file": m{"path": "/tmp/x"}, "user": m{"name": "root"}, "lineage": lin}})
		}
		out = append(out, Record{Source: SourceFalco, Time: at(0.95 + off), Key: []byte(h.name), Chain: n, Value: mustJSON(m{
			"uuid": uuid(rng), "priority": "Critical", "rule": "Mass rename to encrypted extension",
			"time":   at(0.95 + off).UTC().Format("2006-01-02T15:04:05.000000000Z"),
			"output": "File renamed to a ransomware extension (proc=x file=/srv/data/orders.db.locked host=" + h.name + ")",
			"output_fields": m{"proc.name": "x", "proc.pid": 6210, "proc.exepath": "/tmp/x", "proc.cmdline": "x -c " + c.c2 + ":8443",
				"proc.pname": "bash", "fd.name": "/srv/data/orders.db.locked", "user.name": "root", "evt.type": "renameat2", "container.id": "host"},
			"hostname": h.name, "source": "syscall", "tags": []string{"host", "mitre_impact", "T1486"}})})
		lastUID = ag(0.96+off, h, 1001, 1, m{"file": m{"path": "/srv/data/README_FOR_DECRYPT.txt", "name": "README_FOR_DECRYPT.txt", "size": 1880},
			"process": m{"pid": 6210, "name": "x", "file": m{"path": "/tmp/x"}, "user": m{"name": "root"}, "lineage": lin}})
	}
	out[len(out)-1].Last = true
	if out[len(out)-1].EventUID != lastUID {
		panic("loadgen: the chain must end with the ransom note")
	}
	return out
}

// ChainIdentifiers returns the identifiers that only chain number n
// (1-based) of a stream generated with cfg uses: its account, instances,
// host names, private, attacker and C2 addresses, role, role ID, access
// key, bucket, release object, deployment and payload hash. No background
// record and no other chain holds any of them, so an incident holding one
// is that chain's.
func ChainIdentifiers(cfg Config, n int) []string {
	cfg = cfg.withDefaults()
	c := chainIDs(chainRand(cfg, n), n)
	out := []string{c.account, c.role, c.roleID, c.key, c.bucket, c.bundle, c.bucket + "/" + c.bundle, c.deployment,
		c.attacker, c.c2, c.payloadHash}
	for _, h := range []host{c.web, c.tgt1, c.tgt2} {
		out = append(out, h.name, h.instance, h.ip)
	}
	return out
}

// chainRand is the random source of chain n: its identifiers are the
// first values drawn.
func chainRand(cfg Config, n int) *rand.Rand {
	return rand.New(rand.NewPCG(cfg.Seed^0x636861696e, uint64(n)))
}

// ids are one chain's fresh identifiers.
type ids struct {
	tag, account, region, role, roleID, key, bucket, bundle, deployment, groupDir string
	attacker, c2, payloadHash                                                     string
	web, tgt1, tgt2                                                               host
}

func chainIDs(rng *rand.Rand, n int) ids {
	c := ids{
		tag: hexN(rng, 8), account: fmt.Sprintf("9%011d", n), region: "eu-west-1",
		roleID: "AROA" + upperN(rng, 17), key: "ASIA" + upperN(rng, 16),
		deployment: "d-" + upperN(rng, 9), groupDir: uuid(rng), payloadHash: hexN(rng, 64),
		// Public addresses no background record uses: 185/8 for the
		// attackers, 91/8 for the C2 servers.
		attacker: fmt.Sprintf("185.%d.%d.%d", n>>16&255, n>>8&255, 1+n&255%254),
		c2:       fmt.Sprintf("91.%d.%d.%d", n>>16&255, n>>8&255, 1+n&255%254),
	}
	c.role = "web-app-role-" + c.tag
	c.bucket = "release-artifacts-" + c.tag
	c.bundle = "webapp/release-" + c.tag + ".zip"
	mk := func(k int, name string) host {
		i := 3*n + k
		return host{
			name: name, instance: "i-0" + hexN(rng, 16), eni: "eni-0" + hexN(rng, 16), account: c.account,
			ip: fmt.Sprintf("172.%d.%d.%d", 16+i>>16&15, i>>8&255, 1+i&255%254),
		}
	}
	c.web = mk(0, "web-"+c.tag)
	c.tgt1 = mk(1, "app-"+c.tag+"-1")
	c.tgt2 = mk(2, "app-"+c.tag+"-2")
	return c
}

func (c ids) record(rng *rand.Rand, t time.Time, source, name, ip, ua string, ident m, req, resp any, resources []m, data, readOnly bool) m {
	r := m{
		"eventVersion": "1.09", "userIdentity": ident, "eventTime": isoTime(t), "eventSource": source,
		"eventName": name, "awsRegion": c.region, "sourceIPAddress": ip, "userAgent": ua,
		"requestParameters": req, "responseElements": resp,
		"requestID": upperN(rng, 16), "eventID": uuid(rng), "readOnly": readOnly,
		"eventType": "AwsApiCall", "managementEvent": !data, "recipientAccountId": c.account,
		"eventCategory": map[bool]string{true: "Data", false: "Management"}[data],
	}
	if resources != nil {
		r["resources"] = resources
	}
	return r
}

func (c ids) service(rng *rand.Rand, role, session, invokedBy string, t time.Time) m {
	roleID := "AROA" + upperN(rng, 17)
	return m{"type": "AssumedRole", "principalId": roleID + ":" + session,
		"arn": "arn:aws:sts::" + c.account + ":assumed-role/" + role + "/" + session, "accountId": c.account, "accessKeyId": "ASIA" + upperN(rng, 16),
		"sessionContext": m{"sessionIssuer": m{"type": "Role", "principalId": roleID, "arn": "arn:aws:iam::" + c.account + ":role/" + role, "accountId": c.account, "userName": role},
			"attributes": m{"creationDate": isoTime(t.Add(-time.Hour)), "mfaAuthenticated": "false"}},
		"invokedBy": invokedBy}
}

func (c ids) finding(rng *rand.Rand, t time.Time) m {
	id := hexN(rng, 32)
	f := m{
		"schemaVersion": "2.0", "accountId": c.account, "region": c.region, "partition": "aws", "id": id,
		"arn":  "arn:aws:guardduty:" + c.region + ":" + c.account + ":detector/12abc34d567e8fa901bc2d34e56789f0/finding/" + id,
		"type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
		"resource": m{"resourceType": "AccessKey",
			"accessKeyDetails": m{"accessKeyId": c.key, "principalId": c.roleID + ":" + c.web.instance, "userName": c.role, "userType": "AssumedRole"},
			"instanceDetails": m{"instanceId": c.web.instance, "instanceType": "t3.medium", "availabilityZone": c.region + "a",
				"iamInstanceProfile": m{"arn": "arn:aws:iam::" + c.account + ":instance-profile/" + c.role, "id": "AIPA" + upperN(rng, 16)},
				"networkInterfaces":  []m{{"privateIpAddress": c.web.ip, "subnetId": "subnet-0a1b2c3d", "vpcId": "vpc-0a1b2c3d"}}}},
		"service": m{"serviceName": "guardduty", "detectorId": "12abc34d567e8fa901bc2d34e56789f0",
			"action": m{"actionType": "AWS_API_CALL", "awsApiCallAction": m{"api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP",
				"remoteIpDetails": m{"ipAddressV4": c.attacker, "organization": m{"asn": "64500", "asnOrg": "Example Hosting", "isp": "Example Hosting"},
					"country": m{"countryName": "Netherlands"}, "city": m{"cityName": "Amsterdam"}}}},
			"eventFirstSeen": isoTime(t.Add(-2 * time.Second)), "eventLastSeen": isoTime(t), "archived": false, "count": 3},
		"severity": 8, "createdAt": isoTime(t), "updatedAt": isoTime(t),
		"title":       "Credentials for instance role " + c.role + " used from external IP address.",
		"description": "Credentials created exclusively for an EC2 instance using instance role " + c.role + " have been used from external IP address " + c.attacker + ".",
	}
	return m{"version": "0", "id": uuid(rng), "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
		"account": c.account, "time": isoTime(t), "region": c.region, "resources": []any{}, "detail": f}
}
