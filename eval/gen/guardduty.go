package gen

import (
	"fmt"
	"time"
)

// finding records a GuardDuty finding as EventBridge delivers it.
func (d *day) finding(t time.Time, acct, typ string, severity float64, title, desc string, resource, service obj) {
	w, r := d.w, d.r
	id := r.hex(32)
	svc := obj{"serviceName": "guardduty", "detectorId": w.detector, "archived": false, "count": r.between(1, 6),
		"eventFirstSeen": iso(t.Add(-time.Duration(r.between(1, 20)) * time.Minute)), "eventLastSeen": iso(t),
		"resourceRole": "TARGET"}
	for k, v := range service {
		svc[k] = v
	}
	f := obj{"schemaVersion": "2.0", "accountId": acct, "region": w.region, "partition": "aws", "id": id,
		"arn":  fmt.Sprintf("arn:aws:guardduty:%s:%s:detector/%s/finding/%s", w.region, acct, w.detector, id),
		"type": typ, "resource": resource, "service": svc, "severity": severity,
		"createdAt": iso(t), "updatedAt": iso(t), "title": title, "description": desc}
	env := obj{"version": "0", "id": r.uuid(), "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
		"account": acct, "time": iso(t), "region": w.region, "resources": []any{}, "detail": f}
	d.add(record{src: srcGuardDuty, t: t, account: acct, body: env})
}

// instanceResource is a finding's resource for an EC2 instance.
func (w *world) instanceResource(h host) obj {
	ni := obj{"privateIpAddress": h.privateIP, "privateDnsName": "ip-" + dashed(h.privateIP) + "." + w.region + ".compute.internal",
		"subnetId": h.subnet, "vpcId": h.vpc, "networkInterfaceId": h.eni}
	if h.publicIP != "" {
		ni["publicIp"] = h.publicIP
	}
	return obj{"resourceType": "Instance", "instanceDetails": obj{
		"instanceId": h.instance, "instanceType": "t3.large", "availabilityZone": w.region + "a", "imageId": "ami-0" + hash16(h.name)[:16],
		"iamInstanceProfile": obj{"arn": fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", h.account, h.role), "id": "AIPA" + hash16(h.role)},
		"networkInterfaces":  []any{ni}, "platform": "Linux", "instanceState": "running"}}
}

func dashed(ip string) string {
	b := []byte(ip)
	for i, c := range b {
		if c == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}

// remoteIP is GuardDuty's remoteIpDetails.
func remoteIP(ip, org, country, city string) obj {
	return obj{"ipAddressV4": ip, "organization": obj{"asn": "64500", "asnOrg": org, "isp": org, "org": org},
		"country": obj{"countryName": country}, "city": obj{"cityName": city}}
}

// runtimeProcess is the runtimeDetails.process of a Runtime Monitoring
// finding: p and its lineage.
func runtimeProcess(t time.Time, p *proc) obj {
	var lineage []any
	for q := p.parent; q != nil; q = q.parent {
		lineage = append(lineage, obj{"name": q.name(), "pid": q.pid, "uuid": q.uid, "executablePath": q.path,
			"startTime": iso(t.Add(-time.Hour)), "userId": 0, "namespacePid": q.pid})
	}
	o := obj{"name": p.name(), "executablePath": p.path, "pid": p.pid, "namespacePid": p.pid, "uuid": p.uid,
		"pwd": p.cwd, "user": p.user, "userId": 0, "euid": 0, "startTime": iso(t), "lineage": lineage}
	if p.parent != nil {
		o["parentUuid"] = p.parent.uid
	}
	if p.sha256 != "" {
		o["executableSha256"] = p.sha256
	}
	return o
}
