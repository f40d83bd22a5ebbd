package loadgen

import (
	"fmt"
	"time"
)

// ---------------------------------------------------------------- CloudTrail

const (
	uaJava  = "[aws-sdk-java/1.12.600 Linux/5.10.205-195.807.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS java/17.0.9 vendor/Amazon.com_Inc. cfg/retry-mode/standard]"
	uaBoto  = "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10.205-195.807.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.20"
	uaCLI   = "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/macos#23.3.0 md/arch#arm64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off"
	uaConso = "AWS Internal"
)

func instanceIdentity(h host, creation time.Time) m {
	return m{
		"type": "AssumedRole", "principalId": h.roleID + ":" + h.instance,
		"arn":       "arn:aws:sts::" + h.account + ":assumed-role/" + h.role + "/" + h.instance,
		"accountId": h.account, "accessKeyId": h.key,
		"sessionContext": m{
			"sessionIssuer":   m{"type": "Role", "principalId": h.roleID, "arn": "arn:aws:iam::" + h.account + ":role/" + h.role, "accountId": h.account, "userName": h.role},
			"attributes":      m{"creationDate": isoTime(creation), "mfaAuthenticated": "false"},
			"ec2RoleDelivery": "2.0",
		},
	}
}

func userIdentity(u user) m {
	return m{"type": "IAMUser", "principalId": u.id, "arn": "arn:aws:iam::" + u.account + ":user/" + u.name,
		"accountId": u.account, "accessKeyId": u.key, "userName": u.name,
		"sessionContext": m{"attributes": m{"creationDate": "2026-11-20T07:12:44Z", "mfaAuthenticated": "true"}}}
}

func tls(hostHeader string) m {
	return m{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": hostHeader}
}

func (g *Generator) ctRecord(t time.Time, account, region, source, name, ip, ua string, ident m, req, resp any, resources []m, data, readOnly bool) m {
	r := m{
		"eventVersion": "1.09", "userIdentity": ident, "eventTime": isoTime(t), "eventSource": source,
		"eventName": name, "awsRegion": region, "sourceIPAddress": ip, "userAgent": ua,
		"requestParameters": req, "responseElements": resp,
		"requestID": upperN(g.rng, 16), "eventID": uuid(g.rng), "readOnly": readOnly,
		"eventType": "AwsApiCall", "managementEvent": !data, "recipientAccountId": account,
		"eventCategory": map[bool]string{true: "Data", false: "Management"}[data],
		"tlsDetails":    tls(source[:len(source)-len(".amazonaws.com")] + "." + region + ".amazonaws.com"),
	}
	if resources != nil {
		r["resources"] = resources
	}
	if data {
		r["additionalEventData"] = m{"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0,
			"AuthenticationMethod": "AuthHeader", "x-amz-id-2": upperN(g.rng, 48) + "=", "bytesTransferredOut": g.rng.IntN(1 << 20)}
	}
	return r
}

func s3Resources(account, bucket, key string) []m {
	var out []m
	if key != "" {
		out = append(out, m{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::" + bucket + "/" + key})
	}
	return append(out, m{"accountId": account, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + bucket})
}

// cloudTrail returns one background CloudTrail record (1–2 KB): instance
// roles reading and writing their buckets, KMS, DynamoDB, SSM and STS
// calls, people describing and listing from the office.
func (g *Generator) cloudTrail(t time.Time) Record {
	e := &g.ents
	h := e.hosts[pick(g.rng, len(e.hosts))]
	u := e.users[pick(g.rng, len(e.users))]
	bucket := e.buckets[pick(g.rng, len(e.buckets))]
	region := regions[g.rng.IntN(len(regions))]
	office := e.public[g.rng.IntN(min(len(e.public), 16))] // a few office egress addresses
	creation := t.Add(-time.Duration(g.rng.IntN(6*3600)) * time.Second)
	var r m
	switch x := g.rng.IntN(100); {
	case x < 30:
		key := fmt.Sprintf("%s/%04d/%02d/part-%05d.parquet", services[g.rng.IntN(len(services))], 2026, 1+g.rng.IntN(12), g.rng.IntN(100000))
		r = g.ctRecord(t, h.account, region, "s3.amazonaws.com", "GetObject", h.ip, uaJava, instanceIdentity(h, creation),
			m{"bucketName": bucket, "key": key, "Host": bucket + ".s3." + region + ".amazonaws.com"}, nil, s3Resources(h.account, bucket, key), true, true)
	case x < 45:
		key := fmt.Sprintf("logs/%s/%s/%d.json.gz", h.name, t.Format("2006/01/02/15"), g.rng.IntN(1000000))
		r = g.ctRecord(t, h.account, region, "s3.amazonaws.com", "PutObject", h.ip, uaJava, instanceIdentity(h, creation),
			m{"bucketName": bucket, "key": key, "Host": bucket + ".s3." + region + ".amazonaws.com", "x-amz-server-side-encryption": "aws:kms"},
			m{"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:" + region + ":" + h.account + ":key/" + uuid(g.rng)},
			s3Resources(h.account, bucket, key), true, false)
	case x < 57:
		keyID := "arn:aws:kms:" + region + ":" + h.account + ":key/" + uuid(g.rng)
		r = g.ctRecord(t, h.account, region, "kms.amazonaws.com", "Decrypt", h.ip, uaJava, instanceIdentity(h, creation),
			m{"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": m{"aws:s3:arn": "arn:aws:s3:::" + bucket}}, nil,
			[]m{{"accountId": h.account, "type": "AWS::KMS::Key", "ARN": keyID}}, false, true)
	case x < 67:
		table := services[g.rng.IntN(len(services))] + "-state"
		r = g.ctRecord(t, h.account, region, "dynamodb.amazonaws.com", "GetItem", h.ip, uaBoto, instanceIdentity(h, creation),
			m{"tableName": table, "key": m{"pk": "HIDDEN_DUE_TO_SECURITY_REASONS"}, "consistentRead": false}, nil,
			[]m{{"accountId": h.account, "type": "AWS::DynamoDB::Table", "ARN": "arn:aws:dynamodb:" + region + ":" + h.account + ":table/" + table}}, true, true)
	case x < 74:
		name := "/" + services[g.rng.IntN(len(services))] + "/config/" + []string{"endpoint", "feature-flags", "pool-size", "timeout"}[g.rng.IntN(4)]
		r = g.ctRecord(t, h.account, region, "ssm.amazonaws.com", "GetParameter", h.ip, uaBoto, instanceIdentity(h, creation),
			m{"name": name, "withDecryption": false}, nil, nil, false, true)
	case x < 80:
		r = g.ctRecord(t, h.account, region, "monitoring.amazonaws.com", "PutMetricData", h.ip, uaJava, instanceIdentity(h, creation),
			m{"namespace": "App/" + services[g.rng.IntN(len(services))], "metricData": []m{{"metricName": "Latency", "value": g.rng.Float64() * 100, "unit": "Milliseconds"}}}, nil, nil, false, false)
	case x < 87:
		r = g.ctRecord(t, u.account, region, "ec2.amazonaws.com", "DescribeInstances", office, uaCLI, userIdentity(u),
			m{"instancesSet": m{"items": []m{{"instanceId": e.hosts[g.rng.IntN(len(e.hosts))].instance}}}, "filterSet": m{}}, nil, nil, false, true)
	case x < 92:
		r = g.ctRecord(t, u.account, region, "s3.amazonaws.com", "ListObjects", office, uaCLI, userIdentity(u),
			m{"bucketName": bucket, "prefix": "reports/", "list-type": "2", "Host": bucket + ".s3." + region + ".amazonaws.com"}, nil,
			s3Resources(u.account, bucket, ""), true, true)
	case x < 96:
		role := services[g.rng.IntN(len(services))] + "-readonly"
		r = g.ctRecord(t, u.account, region, "sts.amazonaws.com", "AssumeRole", office, uaCLI, userIdentity(u),
			m{"roleArn": "arn:aws:iam::" + u.account + ":role/" + role, "roleSessionName": u.name, "durationSeconds": 3600},
			m{"credentials": m{"accessKeyId": "ASIA" + upperN(g.rng, 16), "sessionToken": upperN(g.rng, 64), "expiration": t.Add(time.Hour).UTC().Format("Jan 2, 2006, 3:04:05 PM")},
				"assumedRoleUser": m{"assumedRoleId": "AROA" + upperN(g.rng, 17) + ":" + u.name, "arn": "arn:aws:sts::" + u.account + ":assumed-role/" + role + "/" + u.name}},
			[]m{{"accountId": u.account, "type": "AWS::IAM::Role", "ARN": "arn:aws:iam::" + u.account + ":role/" + role}}, false, false)
	default:
		r = g.ctRecord(t, u.account, region, "iam.amazonaws.com", "ListRoles", office, uaConso, userIdentity(u),
			m{"maxItems": 100}, nil, nil, false, true)
	}
	return Record{Source: SourceCloudTrail, Time: t, Key: []byte(r["recipientAccountId"].(string)), Value: mustJSON(r)}
}

// ---------------------------------------------------------------- VPC flow

// flowLine is a v2 default-format flow log line.
func flowLine(account, eni, src, dst string, sport, dport, proto, packets, bytes int, t time.Time, action string) []byte {
	s := t.Unix()
	return fmt.Appendf(nil, "2 %s %s %s %s %d %d %d %d %d %d %d %s OK", account, eni, src, dst, sport, dport, proto, packets, bytes, s-60, s, action)
}

func (g *Generator) vpcFlow(t time.Time) Record {
	e := &g.ents
	h := e.hosts[pick(g.rng, len(e.hosts))]
	var line []byte
	switch x := g.rng.IntN(100); {
	case x < 45: // east-west: app to database, cache, other services
		peer := e.hosts[g.rng.IntN(len(e.hosts))]
		port := []int{5432, 6379, 443, 8080, 9092}[g.rng.IntN(5)]
		line = flowLine(h.account, h.eni, h.ip, peer.ip, 32768+g.rng.IntN(28000), port, 6, 1+g.rng.IntN(200), 60+g.rng.IntN(200000), t, "ACCEPT")
	case x < 80: // egress to AWS and SaaS endpoints
		dst := e.public[pick(g.rng, len(e.public))]
		line = flowLine(h.account, h.eni, h.ip, dst, 32768+g.rng.IntN(28000), 443, 6, 1+g.rng.IntN(500), 60+g.rng.IntN(500000), t, "ACCEPT")
	case x < 92: // load balancer to the service
		line = flowLine(h.account, h.eni, "10.0.0."+fmt.Sprint(2+g.rng.IntN(8)), h.ip, 32768+g.rng.IntN(28000), 8080, 6, 1+g.rng.IntN(100), 60+g.rng.IntN(90000), t, "ACCEPT")
	default: // scanners knocking on closed ports
		src := fmt.Sprintf("%d.%d.%d.%d", 45+g.rng.IntN(3), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
		line = flowLine(h.account, h.eni, src, h.ip, 1024+g.rng.IntN(60000), []int{22, 23, 3389, 445, 6379}[g.rng.IntN(5)], 6, 1, 44, t, "REJECT")
	}
	return Record{Source: SourceVPCFlow, Time: t, Key: []byte(h.eni), Value: line}
}

// ---------------------------------------------------------------- GuardDuty

func (g *Generator) guardDuty(t time.Time) Record {
	e := &g.ents
	h := e.hosts[g.rng.IntN(len(e.hosts))]
	region := regions[g.rng.IntN(len(regions))]
	remote := fmt.Sprintf("%d.%d.%d.%d", 45+g.rng.IntN(3), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	port := []int{22, 3389, 6379, 445}[g.rng.IntN(4)]
	id := hexN(g.rng, 32)
	finding := m{
		"schemaVersion": "2.0", "accountId": h.account, "region": region, "partition": "aws", "id": id,
		"arn":  "arn:aws:guardduty:" + region + ":" + h.account + ":detector/12abc34d567e8fa901bc2d34e56789f0/finding/" + id,
		"type": "Recon:EC2/PortProbeUnprotectedPort",
		"resource": m{"resourceType": "Instance", "instanceDetails": m{"instanceId": h.instance, "instanceType": "m6i.large", "availabilityZone": region + "a",
			"networkInterfaces": []m{{"privateIpAddress": h.ip, "subnetId": "subnet-0a1b2c3d", "vpcId": "vpc-0a1b2c3d"}}}},
		"service": m{"serviceName": "guardduty", "detectorId": "12abc34d567e8fa901bc2d34e56789f0",
			"action": m{"actionType": "PORT_PROBE", "portProbeAction": m{"blocked": false, "portProbeDetails": []m{{
				"localPortDetails":  m{"port": port, "portName": "Unknown"},
				"remoteIpDetails":   m{"ipAddressV4": remote, "organization": m{"asn": "64501", "asnOrg": "Example Transit", "isp": "Example Transit"}, "country": m{"countryName": "Unknown"}},
				"localIpDetails":    m{"ipAddressV4": h.ip},
				"remoteAccountInfo": nil}}}},
			"eventFirstSeen": isoTime(t.Add(-10 * time.Minute)), "eventLastSeen": isoTime(t), "archived": false, "count": 1 + g.rng.IntN(20)},
		"severity": 2, "createdAt": isoTime(t), "updatedAt": isoTime(t),
		"title":       fmt.Sprintf("Unprotected port on EC2 instance %s is being probed.", h.instance),
		"description": fmt.Sprintf("EC2 instance has an unprotected port %d which is being probed by a known malicious host.", port),
	}
	env := m{"version": "0", "id": uuid(g.rng), "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
		"account": h.account, "time": isoTime(t), "region": region, "resources": []any{}, "detail": finding}
	return Record{Source: SourceGuardDuty, Time: t, Key: []byte(h.account), Value: mustJSON(env)}
}

// ---------------------------------------------------------------- agent

func device(h host, region string) m {
	return m{"hostname": h.name, "uid": h.instance, "instance_uid": h.instance, "ip": h.ip, "region": region,
		"type": "Server", "type_id": 1, "os": m{"name": "Amazon Linux 2023", "type": "Linux"}}
}

func agentEvent(uid string, t time.Time, class, activity int, account, region string, dev m, extra m) m {
	e := m{"class_uid": class, "activity_id": activity, "time": t.UnixMilli(), "severity_id": 1,
		"metadata": m{"uid": uid, "product": m{"name": "musubi-sensor", "vendor_name": "Musubi"}, "version": "1.1.0"},
		"cloud":    m{"provider": "AWS", "region": region, "account": m{"uid": account}}, "device": dev}
	for k, v := range extra {
		e[k] = v
	}
	// OCSF places processes per class: in Process Activity `process` is the
	// launched process and actor.process its parent; elsewhere the acting
	// process is actor.process.
	if p, ok := e["process"].(m); ok {
		if class == 1007 {
			if parent, ok := p["parent_process"].(m); ok {
				e["actor"] = m{"process": parent}
			}
		} else {
			delete(e, "process")
			e["actor"] = m{"process": p}
		}
	}
	return e
}

var benignProcesses = []struct{ name, path, cmd, user, parent string }{
	{"java", "/usr/bin/java", "java -Xmx2g -jar /srv/app/current/app.jar --spring.profiles.active=prod", "app", "systemd"},
	{"python3", "/usr/bin/python3", "python3 /opt/worker/worker.py --queue jobs", "worker", "systemd"},
	{"logrotate", "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "root", "systemd"},
	{"node", "/usr/bin/node", "node /srv/web/server.js", "www", "systemd"},
	{"amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", "root", "systemd"},
	{"sshd", "/usr/sbin/sshd", "sshd: ec2-user [priv]", "root", "sshd"},
	{"man-db", "/usr/bin/mandb", "/usr/bin/mandb --quiet", "root", "cron"},
	{"ps", "/usr/bin/ps", "ps -eo pid,comm,rss", "app", "bash"},
	{"gzip", "/usr/bin/gzip", "gzip -9 /var/log/app/app.log.1", "root", "logrotate"},
	{"psql", "/usr/bin/psql", "psql -h db.internal -U report -c select 1", "report", "bash"},
}

func (g *Generator) agent(t time.Time) Record {
	e := &g.ents
	h := e.hosts[pick(g.rng, len(e.hosts))]
	region := regions[int(h.ip[3])%len(regions)]
	p := benignProcesses[g.rng.IntN(len(benignProcesses))]
	pid := 1000 + g.rng.IntN(60000)
	proc := m{"pid": pid, "name": p.name, "cmd_line": p.cmd, "file": m{"path": p.path, "name": p.name}, "user": m{"name": p.user},
		"parent_process": m{"pid": 1 + g.rng.IntN(999), "name": p.parent}, "lineage": []string{"/usr/lib/systemd/systemd", "/usr/sbin/" + p.parent}}
	var ev m
	switch x := g.rng.IntN(100); {
	case x < 45:
		ev = agentEvent(uuid(g.rng), t, 1007, 1, h.account, region, device(h, region), m{"process": proc})
	case x < 75:
		path := fmt.Sprintf("/var/log/%s/%s-%d.log", p.name, p.name, g.rng.IntN(10))
		if x >= 65 {
			path = fmt.Sprintf("/srv/app/cache/%s.bin", hexN(g.rng, 12))
		}
		ev = agentEvent(uuid(g.rng), t, 1001, 2+g.rng.IntN(2), h.account, region, device(h, region),
			m{"file": m{"path": path, "name": path[len(path)-12:], "size": g.rng.IntN(1 << 20)}, "process": proc})
	default:
		dst, port := e.hosts[g.rng.IntN(len(e.hosts))].ip, []int{5432, 6379, 443}[g.rng.IntN(3)]
		if x >= 90 {
			dst, port = e.public[pick(g.rng, len(e.public))], 443
		}
		ev = agentEvent(uuid(g.rng), t, 4001, 1, h.account, region, device(h, region), m{
			"src_endpoint": m{"ip": h.ip, "port": 32768 + g.rng.IntN(28000)}, "dst_endpoint": m{"ip": dst, "port": port},
			"connection_info": m{"direction_id": 2, "protocol_num": 6}, "process": proc})
	}
	return Record{Source: SourceAgent, Time: t, Key: []byte(h.instance), Value: mustJSON(ev)}
}

// ---------------------------------------------------------------- Falco

func (g *Generator) falco(t time.Time) Record {
	e := &g.ents
	h := e.hosts[pick(g.rng, len(e.hosts))]
	f := m{"uuid": uuid(g.rng), "priority": "Notice", "rule": "Redirect STDOUT/STDIN to Network Connection in Container",
		"time": t.UTC().Format("2006-01-02T15:04:05.000000000Z"), "hostname": h.name, "source": "syscall",
		"output": fmt.Sprintf("Redirect stdout/stdin to network connection (proc=nc host=%s)", h.name),
		"output_fields": m{"proc.name": "java", "proc.pid": 1000 + g.rng.IntN(60000), "proc.exepath": "/usr/bin/java", "proc.cmdline": "java -jar /srv/app/current/app.jar",
			"proc.pname": "systemd", "fd.name": h.ip + ":8080->10.0.0.5:41822", "user.name": "app", "evt.type": "dup2", "container.id": "host"},
		"tags": []string{"host", "network", "mitre_execution"}}
	return Record{Source: SourceFalco, Time: t, Key: []byte(h.name), Value: mustJSON(f)}
}
