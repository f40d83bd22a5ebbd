package exposure

import (
	"encoding/json"
	"testing"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
)

func doc(t *testing.T, js string) []Policy {
	t.Helper()
	d, err := awsconfig.ParsePolicyDocument(json.RawMessage(js))
	if err != nil {
		t.Fatal(err)
	}
	return []Policy{{Name: "p", Document: d}}
}

func TestEvaluate(t *testing.T) {
	const obj = "arn:aws:s3:::release/app/bundle.zip"
	for _, c := range []struct {
		name, policy string
		allowed      bool
		condition    bool
	}{
		{"exact", `{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::release/app/bundle.zip"}]}`, true, false},
		{"action wildcard, any case", `{"Statement":[{"Effect":"Allow","Action":"S3:put*","Resource":"arn:aws:s3:::release/*"}]}`, true, false},
		{"service wildcard", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, true, false},
		{"resource is the bucket, not its objects", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::release"}]}`, false, false},
		{"resource is case-sensitive", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::Release/*"}]}`, false, false},
		{"other action", `{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}`, false, false},
		{"NotAction that leaves PutObject", `{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`, true, false},
		{"NotAction that names PutObject", `{"Statement":[{"Effect":"Allow","NotAction":["s3:Put*"],"Resource":"*"}]}`, false, false},
		{"NotResource elsewhere", `{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","NotResource":"arn:aws:s3:::secrets/*"}]}`, true, false},
		{"NotResource here", `{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","NotResource":"arn:aws:s3:::release/*"}]}`, false, false},
		{"deny overrides allow", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::release/*"}]}`, false, false},
		{"deny with NotAction", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","NotAction":"s3:Get*","Resource":"*"}]}`, false, false},
		{"conditional allow: assumed to apply, marked", `{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`, true, true},
		{"conditional deny: assumed not to apply", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]}`, true, false},
		{"no statements", `{"Statement":[]}`, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Evaluate(doc(t, c.policy), "s3:PutObject", obj)
			if d.Allowed != c.allowed {
				t.Errorf("got allowed %v, want %v (%+v)", d.Allowed, c.allowed, d)
			}
			if c.condition && (len(d.Allows) == 0 || !d.Allows[0].ConditionNotEvaluated) {
				t.Errorf("want the allow marked condition not evaluated: %+v", d.Allows)
			}
		})
	}
}
