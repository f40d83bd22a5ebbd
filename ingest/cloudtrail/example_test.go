package cloudtrail_test

import (
	"fmt"

	"github.com/musubi-xdr/musubi/ingest/cloudtrail"
	"github.com/musubi-xdr/musubi/ocsf"
)

// A call made with an instance profile's keys names the instance: the role
// session name is the instance id.
func ExampleNormalize() {
	rec := []byte(`{"eventVersion":"1.09","eventTime":"2025-03-04T10:21:33Z","eventSource":"s3.amazonaws.com",
	"eventName":"PutObject","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.77","recipientAccountId":"111122223333",
	"eventID":"6f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
	"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/web-server-role/i-0a1b2c3d4e5f60718",
	"accessKeyId":"ASIA2EXAMPLEKEY00001","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/web-server-role"}}},
	"requestParameters":{"bucketName":"acme-release-artifacts","key":"webapp/appspec.yml"}}`)
	ev, err := cloudtrail.Normalize(rec, 64)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.TypeName, ev.API.Operation, ev.Actor.Session.Name)
	for _, k := range []ocsf.Entity{ocsf.EntityInstance, ocsf.EntityRole, ocsf.EntityAccessKey, ocsf.EntityObject} {
		fmt.Println(k, ev.EntityValues(k))
	}
	// Output:
	// API Activity: Update PutObject i-0a1b2c3d4e5f60718
	// instance [i-0a1b2c3d4e5f60718]
	// role [arn:aws:iam::111122223333:role/web-server-role]
	// access_key [ASIA2EXAMPLEKEY00001]
	// object [acme-release-artifacts/webapp/appspec.yml]
}
