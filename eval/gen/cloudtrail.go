package gen

import (
	"strings"
	"time"
)

// Identities of CloudTrail's userIdentity.

func (w *world) iamUser(acct string, u user) obj {
	return obj{"type": "IAMUser", "principalId": u.principalID, "arn": arnUser(acct, u.name),
		"accountId": acct, "accessKeyId": u.key, "userName": u.name}
}

// assumedRole is a role session; invokedBy names the AWS service that made
// the call on the session's behalf ("" for none).
func (w *world) assumedRole(acct, role, session, key, invokedBy string, created time.Time) obj {
	rid := "AROA" + strings.ToUpper(hash16(acct+role))
	id := obj{"type": "AssumedRole", "principalId": rid + ":" + session,
		"arn": arnSession(acct, role, session), "accountId": acct, "accessKeyId": key,
		"sessionContext": obj{
			"sessionIssuer": obj{"type": "Role", "principalId": rid, "arn": arnRole(acct, role), "accountId": acct, "userName": role},
			"attributes":    obj{"creationDate": iso(created), "mfaAuthenticated": "false"},
		}}
	if invokedBy != "" {
		id["invokedBy"] = invokedBy
	}
	return id
}

// instanceRole is the session of a host's instance profile: the session
// name is the instance id, delivered by IMDS.
func (w *world) instanceRole(h host, key string, created time.Time) obj {
	id := w.assumedRole(h.account, h.role, h.instance, key, "", created)
	id["sessionContext"].(obj)["ec2RoleDelivery"] = "2.0"
	return id
}

// awsService is the identity of an AWS service principal acting itself.
func awsService(svc string) obj { return obj{"type": "AWSService", "invokedBy": svc} }

// hash16 is a stable 16-character tag of s (FNV-1a), for ids that must be
// the same wherever a name appears.
func hash16(s string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b [16]byte
	for i := range b {
		b[i] = a[h%32]
		h = h/32 ^ h<<7
	}
	return string(b[:])
}

// ctCall describes one API call.
type ctCall struct {
	t         time.Time
	account   string // recipient account (whose trail records it)
	service   string // e.g. "s3"
	name      string
	ident     obj
	ip, ua    string
	req, resp obj
	resources []any
	data      bool // an S3 data event
	readOnly  bool
	errCode   string
	errMsg    string
	extra     obj
}

func (d *day) ct(c ctCall) {
	r := d.r
	rec := obj{
		"eventVersion": "1.09", "userIdentity": c.ident, "eventTime": iso(c.t),
		"eventSource": c.service + ".amazonaws.com", "eventName": c.name, "awsRegion": d.w.region,
		"sourceIPAddress": c.ip, "userAgent": c.ua, "requestParameters": c.req, "responseElements": c.resp,
		"requestID": r.chars(16, upperAlnum), "eventID": r.uuid(), "readOnly": c.readOnly,
		"eventType": "AwsApiCall", "managementEvent": !c.data, "recipientAccountId": c.account,
		"eventCategory": "Management",
	}
	if c.data {
		rec["eventCategory"] = "Data"
	}
	if c.resources != nil {
		rec["resources"] = c.resources
	}
	if c.errCode != "" {
		rec["errorCode"], rec["errorMessage"] = c.errCode, c.errMsg
	}
	if c.service == "signin" {
		rec["eventType"] = "AwsConsoleSignIn"
	}
	for k, v := range c.extra {
		rec[k] = v
	}
	d.add(record{src: srcCloudTrail, t: c.t, account: c.account, body: rec, lag: time.Duration(r.Int64N(int64(9 * time.Minute)))})
}

func s3Resources(acct, bucket, key string) []any {
	var out []any
	if key != "" {
		out = append(out, obj{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::" + bucket + "/" + key})
	}
	return append(out, obj{"accountId": acct, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + bucket})
}

// s3 records an S3 data event on bucket/key (key "" for bucket calls).
func (d *day) s3(t time.Time, name string, ident obj, ip, ua, bucket, key string) {
	acct := d.w.bucketAccount(bucket)
	req := obj{"bucketName": bucket, "Host": bucket + ".s3." + d.w.region + ".amazonaws.com"}
	switch {
	case name == "ListObjects" || name == "ListObjectsV2":
		req["prefix"] = key
		key = ""
	case key != "":
		req["key"] = key
	}
	var resp obj
	if name == "PutObject" {
		resp = obj{"x-amz-server-side-encryption": "AES256"}
	}
	ro := strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Head")
	d.ct(ctCall{t: t, account: acct, service: "s3", name: name, ident: ident, ip: ip, ua: ua, req: req, resp: resp,
		resources: s3Resources(acct, bucket, key), data: true, readOnly: ro,
		extra: obj{"additionalEventData": obj{"SignatureVersion": "SigV4", "AuthenticationMethod": "AuthHeader", "bytesTransferredIn": 0}}})
}

// bucketAccount is the account owning a bucket of the estate.
func (w *world) bucketAccount(bucket string) string {
	if bucket == w.bucket {
		return w.ciAcct
	}
	return w.acct
}

// mgmt records a management call in acct.
func (d *day) mgmt(t time.Time, acct, service, name string, ident obj, ip, ua string, req, resp obj) {
	ro := strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List")
	d.ct(ctCall{t: t, account: acct, service: service, name: name, ident: ident, ip: ip, ua: ua, req: req, resp: resp, readOnly: ro})
}

// User agents.
const (
	uaCLI      = "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-cloud-amd64 exe/x86_64.debian.12 prompt/off command/s3.cp"
	uaKali     = "aws-cli/2.13.25 Python/3.11.5 Linux/6.5.0-kali3-amd64 exe/x86_64.kali.2023 prompt/off command/s3.cp"
	uaPacu     = "aws-cli/1.29.60 Python/3.11.6 Linux/6.5.0 botocore/1.31.60"
	uaBoto     = "Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.51"
	uaSDKGo    = "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.51.1"
	uaConsole  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
	uaSSMAgent = "aws-sdk-go/1.44.325 (go1.21.6; linux; amd64) amazon-ssm-agent/3.3.40.0"
)
