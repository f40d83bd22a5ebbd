package gen

import (
	"fmt"
	"time"
)

// unrelatedAttack is an attack with nothing to do with the main one, which
// must be found in an incident of its own.
type unrelatedAttack struct {
	name        string
	minSeverity int
	entities    []string
}

// consoleBruteForce: a burst of failed console sign-ins against one IAM
// user from one address.
func (d *day) consoleBruteForce(t time.Time) unrelatedAttack {
	w, r := d.w, d.r
	u := pick(r, w.readers)
	ip := w.externalIP()
	n := r.between(15, 40)
	for i := range n {
		at := t.Add(time.Duration(i) * time.Duration(r.between(5, 40)) * time.Second)
		d.ct(ctCall{t: at, account: w.acct, service: "signin", name: "ConsoleLogin",
			ident: obj{"type": "IAMUser", "principalId": u.principalID, "accountId": w.acct, "accessKeyId": "", "userName": u.name},
			ip:    ip, ua: uaConsole, resp: obj{"ConsoleLogin": "Failure"}, errMsg: "Failed authentication",
			extra: obj{"additionalEventData": obj{"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "No"}}})
	}
	return unrelatedAttack{name: "console-brute-force", minSeverity: 3, entities: []string{"ip:" + ip, "user:" + u.name}}
}

// portScan: an internet address probes many ports of a public host (flow
// REJECTs), and GuardDuty may report the probes of an open port.
func (d *day) portScan(t time.Time) unrelatedAttack {
	w, r := d.w, d.r
	h := w.api
	ip := w.externalIP()
	ports := r.Perm(1024)[:r.between(40, 120)]
	for i, p := range ports {
		d.flow(t.Add(time.Duration(i)*time.Second), h, ip, r.between(40000, 65000), p+1, true, "REJECT", 1, 44)
	}
	ents := []string{"ip:" + ip}
	if r.chance(0.6) {
		d.finding(t.Add(time.Duration(r.between(5, 30))*time.Minute), w.acct, "Recon:EC2/PortProbeUnprotectedPort", 2,
			"Unprotected port on EC2 instance "+h.instance+" is being probed.",
			fmt.Sprintf("EC2 instance has an unprotected port which is being probed by a known malicious host %s.", ip),
			w.instanceResource(h),
			obj{"action": obj{"actionType": "PORT_PROBE", "portProbeAction": obj{"blocked": false, "portProbeDetails": []any{
				obj{"localPortDetails": obj{"port": 22, "portName": "SSH"}, "remoteIpDetails": remoteIP(ip, "Example Hosting B.V.", "Russia", "Moscow")}}}}})
		ents = append(ents, "instance:"+h.instance)
	}
	return unrelatedAttack{name: "port-scan", minSeverity: 3, entities: ents}
}

// reconCaller: a leaked long-term key of a user is used for
// reconnaissance from a malicious address, which GuardDuty reports.
func (d *day) reconCaller(t time.Time) unrelatedAttack {
	w, r := d.w, d.r
	u := w.readers[len(w.readers)-1]
	ip := w.externalIP()
	id := w.iamUser(w.acct, u)
	for i, api := range []string{"GetCallerIdentity", "ListUsers", "ListRoles", "DescribeInstances", "DescribeSecurityGroups", "ListBuckets", "GetAccountAuthorizationDetails"} {
		svc := map[string]string{"GetCallerIdentity": "sts", "DescribeInstances": "ec2", "DescribeSecurityGroups": "ec2", "ListBuckets": "s3"}[api]
		if svc == "" {
			svc = "iam"
		}
		d.mgmt(t.Add(time.Duration(i*r.between(5, 40))*time.Second), w.acct, svc, api, id, ip, uaPacu, nil, nil)
	}
	d.finding(t.Add(time.Duration(r.between(5, 20))*time.Minute), w.acct, "Recon:IAMUser/MaliciousIPCaller", 5,
		"Reconnaissance APIs were invoked from a known malicious IP address.",
		"APIs commonly used in reconnaissance were invoked by "+u.name+" from a known malicious IP address "+ip+".",
		obj{"resourceType": "AccessKey", "accessKeyDetails": obj{"accessKeyId": u.key, "principalId": u.principalID, "userName": u.name, "userType": "IAMUser"}},
		obj{"action": obj{"actionType": "AWS_API_CALL", "awsApiCallAction": obj{"api": "ListRoles", "serviceName": "iam.amazonaws.com", "callerType": "Remote IP",
			"remoteIpDetails": remoteIP(ip, "Example Bulletproof Hosting", "Seychelles", "Victoria")}}})
	return unrelatedAttack{name: "recon-malicious-caller", minSeverity: 3, entities: []string{"ip:" + ip, "access_key:" + u.key}}
}
