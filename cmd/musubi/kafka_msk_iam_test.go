package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/musubi-xdr/musubi/config"
)

// mskIAMBroker makes a kfake broker check the AWS_MSK_IAM handshake as
// MSK does: the mechanism must be AWS_MSK_IAM, and the payload a
// kafka-cluster:Connect request presigned (SigV4) for the broker's host by
// the key whose secret the broker knows. It returns the payloads it
// accepted.
func mskIAMBroker(t *testing.T, accessKey, secretKey, region string) (*kfake.Cluster, func() []map[string]string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "musubi.raw.cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var mu sync.Mutex
	var accepted []map[string]string
	c.ControlKey(int16(kmsg.SASLHandshake), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLHandshakeRequest)
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"AWS_MSK_IAM"}
		if req.Mechanism != "AWS_MSK_IAM" {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLAuthenticateRequest)
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		var p map[string]string
		if err := json.Unmarshal(req.SASLAuthBytes, &p); err != nil {
			resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, kmsg.StringPtr("payload is not JSON")
			return resp, nil, true
		}
		if reason := verifyMSKIAM(p, accessKey, secretKey, region); reason != "" {
			resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, kmsg.StringPtr(reason)
			return resp, nil, true
		}
		mu.Lock()
		accepted = append(accepted, p)
		mu.Unlock()
		return resp, nil, true
	})
	return c, func() []map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]string(nil), accepted...)
	}
}

// verifyMSKIAM checks a payload's fields and recomputes its signature; it
// returns why the payload is refused, or "".
func verifyMSKIAM(p map[string]string, accessKey, secretKey, region string) string {
	if p["version"] != "2020_10_22" || p["action"] != "kafka-cluster:Connect" || p["x-amz-algorithm"] != "AWS4-HMAC-SHA256" {
		return "wrong version, action or algorithm"
	}
	signed, err := time.Parse("20060102T150405Z", p["x-amz-date"])
	if err != nil {
		return "bad x-amz-date"
	}
	wantCred := accessKey + "/" + signed.Format("20060102") + "/" + region + "/kafka-cluster/aws4_request"
	if p["x-amz-credential"] != wantCred {
		return "credential scope " + p["x-amz-credential"] + ", want " + wantCred
	}
	// Presign the same request with the secret the broker knows.
	q := url.Values{"Action": {"kafka-cluster:Connect"}, "X-Amz-Expires": {p["x-amz-expires"]}}
	req, err := http.NewRequest(http.MethodGet, (&url.URL{Scheme: "kafka", Host: p["host"], Path: "/", RawQuery: q.Encode()}).String(), nil)
	if err != nil {
		return err.Error()
	}
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, SessionToken: p["x-amz-security-token"]}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "kafka-cluster", region, signed)
	if err != nil {
		return err.Error()
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return err.Error()
	}
	if want := parsed.Query().Get("X-Amz-Signature"); p["x-amz-signature"] != want {
		return "signature does not match"
	}
	return ""
}

// TestKafkaSASLAWSMSKIAM connects with kafka.sasl.mechanism AWS_MSK_IAM to
// a broker that verifies the SigV4 signature of the handshake: credentials
// come from the AWS default chain (here the environment, as IRSA or Pod
// Identity would supply them), the region from the setting or AWS_REGION; a
// wrong secret is refused.
func TestKafkaSASLAWSMSKIAM(t *testing.T) {
	const accessKey, secretKey, region = "AKIDMUSUBITEST", "musubi-secret-key", "eu-west-1"
	// Only the environment: no shared files, no instance metadata.
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	t.Setenv("AWS_REGION", "")
	cluster, accepted := mskIAMBroker(t, accessKey, secretKey, region)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	metadata := func(c config.SASL) error {
		mech, err := saslMechanism(ctx, c)
		if err != nil {
			return err
		}
		tr := &kafka.Transport{SASL: mech}
		defer tr.CloseIdleConnections()
		client := &kafka.Client{Addr: kafka.TCP(cluster.ListenAddrs()...), Timeout: 10 * time.Second, Transport: tr}
		_, err = client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"musubi.raw.cloudtrail"}})
		return err
	}

	if _, err := saslMechanism(ctx, config.SASL{Mechanism: "AWS_MSK_IAM"}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region anywhere: got %v, want an error naming the region", err)
	}
	if err := metadata(config.SASL{Mechanism: "AWS_MSK_IAM", Region: region}); err != nil {
		t.Fatalf("signed handshake refused: %v", err)
	}
	got := accepted()
	if len(got) == 0 {
		t.Fatal("the broker saw no AWS_MSK_IAM handshake")
	}
	host, _, _ := net.SplitHostPort(cluster.ListenAddrs()[0])
	if p := got[0]; !strings.HasPrefix(p["host"], host) || p["x-amz-security-token"] != "session-token" || p["x-amz-signedheaders"] != "host" {
		t.Errorf("payload %v: want host %s, the session token and host as the signed header", p, host)
	}

	t.Setenv("AWS_REGION", region)
	if err := metadata(config.SASL{Mechanism: "AWS_MSK_IAM"}); err != nil {
		t.Errorf("region from AWS_REGION: %v", err)
	}
	n := len(accepted())
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	if err := metadata(config.SASL{Mechanism: "AWS_MSK_IAM", Region: region}); err == nil {
		t.Error("a handshake signed with the wrong secret was accepted")
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	if err := metadata(config.SASL{Mechanism: "AWS_MSK_IAM", Region: "us-east-1"}); err == nil {
		t.Error("a handshake signed for another region was accepted")
	}
	if len(accepted()) != n {
		t.Errorf("accepted %d handshakes after the refused ones, want %d", len(accepted()), n)
	}
}
