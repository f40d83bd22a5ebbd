package storage

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func invRow(tenant, account, typ, id string, at time.Duration, status, item string) InventoryRow {
	return InventoryRow{TenantUID: tenant, AccountUID: account, ResourceType: typ, ResourceID: id, CaptureMs: ms(at),
		Region: "us-east-1", Status: status, Deleted: status == "ResourceDeleted", ItemUID: id + "@" + at.String(), Item: json.RawMessage(item)}
}

// TestInventoryAsOf writes a resource's history (IMDS optional, then
// required), a resource deleted later, another account and another tenant,
// and reads the state as of several times.
func TestInventoryAsOf(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	const inst = "AWS::EC2::Instance"
	rows := []InventoryRow{
		invRow("t1", "111122223333", inst, "i-web", 0, "ResourceDiscovered", `{"http_tokens":"optional"}`),
		invRow("t1", "111122223333", inst, "i-web", 2*time.Hour, "OK", `{"http_tokens":"required"}`),
		invRow("t1", "111122223333", "AWS::S3::Bucket", "release", time.Hour, "OK", `{"versioning":"Off"}`),
		invRow("t1", "111122223333", inst, "i-old", 0, "OK", `{}`),
		invRow("t1", "111122223333", inst, "i-old", 3*time.Hour, "ResourceDeleted", ``),
		invRow("t1", "444455556666", inst, "i-other", 0, "OK", `{}`),
		invRow("t2", "777788889999", inst, "i-foreign", 0, "OK", `{}`),
	}
	if err := s.WriteInventory(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// A redelivery of the same items folds.
	if err := s.WriteInventory(ctx, rows[:2]); err != nil {
		t.Fatal(err)
	}
	ids := func(rs []InventoryRow) (out []string) {
		for _, r := range rs {
			out = append(out, r.AccountUID+"/"+r.ResourceID+"="+string(r.Item))
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    InventoryQuery
		want []string
	}{
		{"before anything", InventoryQuery{TenantUID: "t1", AsOf: t0.Add(-time.Minute)}, nil},
		{"at the first capture", InventoryQuery{TenantUID: "t1", AsOf: t0}, []string{
			`111122223333/i-old={}`, `111122223333/i-web={"http_tokens":"optional"}`, `444455556666/i-other={}`}},
		{"between the captures", InventoryQuery{TenantUID: "t1", AsOf: t0.Add(90 * time.Minute)}, []string{
			`111122223333/i-old={}`, `111122223333/i-web={"http_tokens":"optional"}`, `111122223333/release={"versioning":"Off"}`, `444455556666/i-other={}`}},
		{"after the change and the deletion", InventoryQuery{TenantUID: "t1", AsOf: t0.Add(4 * time.Hour)}, []string{
			`111122223333/i-web={"http_tokens":"required"}`, `111122223333/release={"versioning":"Off"}`, `444455556666/i-other={}`}},
		{"one account", InventoryQuery{TenantUID: "t1", AsOf: t0.Add(4 * time.Hour), Accounts: []string{"444455556666"}}, []string{`444455556666/i-other={}`}},
		{"one type", InventoryQuery{TenantUID: "t1", AsOf: t0.Add(4 * time.Hour), ResourceTypes: []string{"AWS::S3::Bucket"}}, []string{`111122223333/release={"versioning":"Off"}`}},
		{"another tenant", InventoryQuery{TenantUID: "t2", AsOf: t0.Add(4 * time.Hour)}, []string{`777788889999/i-foreign={}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.InventoryAsOf(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			g := ids(got)
			if len(g) != len(c.want) {
				t.Fatalf("got %q, want %q", g, c.want)
			}
			for i := range g {
				if g[i] != c.want[i] {
					t.Errorf("row %d: got %s, want %s", i, g[i], c.want[i])
				}
			}
		})
	}
	got, err := s.InventoryAsOf(ctx, InventoryQuery{TenantUID: "t1", AsOf: t0.Add(4 * time.Hour), Limit: 2})
	if !errors.Is(err, ErrInventoryTruncated) || len(got) != 2 {
		t.Errorf("limit 2: got %d rows, error %v; want 2 and ErrInventoryTruncated", len(got), err)
	}
	hist, err := s.ResourceHistory(ctx, "t1", "111122223333", inst, "i-web")
	if err != nil || len(hist) != 2 || hist[0].CaptureMs != ms(0) || hist[1].CaptureMs != ms(2*time.Hour) || hist[1].Status != "OK" {
		t.Errorf("history: got %+v, error %v; want the two captures, oldest first", hist, err)
	}
	if _, err := s.InventoryAsOf(ctx, InventoryQuery{}); err == nil {
		t.Error("a query without a tenant: got no error")
	}
	if err := s.WriteInventory(ctx, []InventoryRow{{TenantUID: "t1"}}); !errors.Is(err, ErrPermanent) {
		t.Errorf("a row without identity: got %v, want ErrPermanent", err)
	}
}
