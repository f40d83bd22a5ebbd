package gen

import (
	"fmt"
	"time"
)

// background writes the ordinary traffic of the estate between from and
// to: web clients, tier-to-tier flows, service roles, processes.
func (d *day) background(from, to time.Time, scale int) {
	w, r := d.w, d.r
	span := to.Sub(from)
	clients := make([]string, 30)
	for i := range clients {
		if i%3 == 0 {
			clients[i] = w.residentialIP()
		} else {
			clients[i] = w.externalIP()
		}
	}
	endpoints := []string{w.externalIP(), w.externalIP(), w.externalIP()}
	// Flows.
	for range 120 * scale {
		t := r.within(from, span)
		switch r.IntN(6) {
		case 0, 1:
			d.flow(t, w.web, pick(r, clients), r.between(1024, 65000), 443, true, "ACCEPT", r.between(5, 80), r.between(800, 120_000))
		case 2:
			a := pick(r, w.apps)
			d.flow(t, a, w.web.privateIP, r.between(32768, 60999), 8080, true, "ACCEPT", r.between(5, 50), r.between(800, 60_000))
		case 3:
			a := pick(r, w.apps)
			d.flow(t, w.db, a.privateIP, r.between(32768, 60999), 5432, true, "ACCEPT", r.between(5, 200), r.between(800, 300_000))
		case 4:
			h := pick(r, w.hosts())
			d.flow(t, h, pick(r, endpoints), 443, r.between(32768, 60999), false, "ACCEPT", r.between(5, 60), r.between(800, 90_000))
		default:
			h := pick(r, []host{w.web, w.api, w.bastion})
			d.flow(t, h, w.externalIP(), r.between(1024, 65000), pick(r, []int{23, 3389, 445, 8080, 5900}), true, "REJECT", 1, 40)
		}
	}
	// Service roles and their routine calls.
	lambdaRole := w.app + "-thumbnailer"
	for range 25 * scale {
		t := r.within(from, span)
		switch r.IntN(4) {
		case 0:
			d.mgmt(t, w.acct, "sts", "AssumeRole", awsService("lambda.amazonaws.com"), "lambda.amazonaws.com", "lambda.amazonaws.com",
				obj{"roleArn": arnRole(w.acct, lambdaRole), "roleSessionName": lambdaRole}, obj{"assumedRoleUser": obj{"arn": arnSession(w.acct, lambdaRole, lambdaRole)}})
		case 1:
			d.mgmt(t, w.acct, "kms", "Decrypt", w.assumedRole(w.acct, lambdaRole, lambdaRole, r.accessKey("ASIA"), "", t), "lambda.amazonaws.com", uaBoto, obj{"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil)
		case 2:
			d.s3(t, "PutObject", w.assumedRole(w.acct, "AWSServiceRoleForLogDelivery", "logs-delivery", r.accessKey("ASIA"), "delivery.logs.amazonaws.com", t), "delivery.logs.amazonaws.com", "delivery.logs.amazonaws.com",
				w.logBucket, fmt.Sprintf("AWSLogs/%s/elasticloadbalancing/%s/%s", w.acct, w.region, t.Format("2006/01/02/150405")))
		default:
			a := pick(r, w.apps)
			d.mgmt(t, w.acct, "secretsmanager", "GetSecretValue", w.instanceRole(a, r.accessKey("ASIA"), t.Add(-time.Hour)), w.hostNAT, uaSDKGo, obj{"secretId": w.app + "/db"}, nil)
		}
	}
	// Processes and connections on the hosts.
	for range 60 * scale {
		t := r.within(from, span)
		h := pick(r, w.hosts())
		switch r.IntN(5) {
		case 0:
			p := d.sysproc(h, "/usr/sbin/nginx", "nginx: worker process", "www-data")
			d.launch(t, h, p)
		case 1:
			timer := d.sysproc(h, "/usr/lib/systemd/systemd", "/usr/lib/systemd/systemd --system", "root")
			d.launch(t, h, d.spawn(h, timer, "/usr/bin/find", "find /tmp -type f -atime +10 -delete", ""))
		case 2:
			if h.name != w.db.name {
				j := d.sysproc(h, "/usr/bin/java", "java -Xmx2g -jar /srv/app/current/app.jar", "app")
				d.connect(t, h, j, w.db.privateIP, 5432)
			}
		case 3:
			p := d.sysproc(h, "/usr/bin/amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", "root")
			d.connect(t, h, p, pick(r, endpoints), 443)
		default:
			p := d.sysproc(h, "/usr/sbin/rsyslogd", "/usr/sbin/rsyslogd -n -iNONE", "root")
			d.fileOp(t, h, p, 3, "/var/log/syslog", "", 0)
		}
	}
}
