package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/incident"
)

// Incident numbers.
//
// An incident's short number (MSB-1042) is claimed by the writer that
// first stores the incident, in Write, before the incident rows: a
// ClickHouse 18.16 without transactions cannot hand out a counter
// atomically, so the design avoids needing one.
//
//   - One writer per residue class. With incident_numbers.allocators = N,
//     the writer with allocator k hands out only numbers ≡ k (mod N), so
//     two engine replicas never claim the same number, whichever tenant
//     or account they correlate. Within a process, claims are serialized
//     by a mutex, and a tenant's next number is read once (the highest
//     stored number of the class) and then counted in memory.
//   - Assigned once. Before claiming, the writer asks which of the batch's
//     incidents already hold a number, so a rewrite of an incident by the
//     correlator, a replayed batch or another engine's restore never
//     renumbers it. The claim table is a ReplacingMergeTree on (tenant,
//     incident) whose version is 2^32 minus the number: should a crash
//     between a claim and its bookkeeping make an incident claim twice,
//     the lowest (first) number is the one kept and read.
//   - Deterministic order. The new incidents of a batch are numbered in
//     order of first alert time, then id, so a replayed batch claims in
//     the same order.
type numberer struct {
	mu sync.Mutex
	// next is the next number to hand out per tenant.
	next map[string]uint32
	// known holds incidents known to have a number (bounded: cleared
	// when it grows past maxKnownNumbers; a cleared incident costs one
	// lookup in its next batch).
	known map[string]struct{}
}

const maxKnownNumbers = 200_000

// assignNumbers claims a number for every incident of ins that has none.
func (s *Store) assignNumbers(ctx context.Context, ins []incident.Incident) error {
	n := &s.numbers
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.known == nil || len(n.known) > maxKnownNumbers {
		n.known = map[string]struct{}{}
	}
	if n.next == nil {
		n.next = map[string]uint32{}
	}
	var fresh []incident.Incident
	seen := map[string]bool{}
	for _, in := range ins {
		k := numberKey(in.TenantUID, in.ID)
		if _, ok := n.known[k]; ok || seen[k] {
			continue
		}
		seen[k] = true
		fresh = append(fresh, in)
	}
	if len(fresh) == 0 {
		return nil
	}
	var tenants []string
	for _, in := range fresh {
		if !slices.Contains(tenants, in.TenantUID) {
			tenants = append(tenants, in.TenantUID)
		}
	}
	// The lookup is a write step of its own, retried through an outage
	// like the inserts: a batch never fails because a read did.
	err := s.retry(ctx, TableNumbers, "look up incident numbers", func(ctx context.Context) error {
		return s.lookupNumbers(ctx, fresh, tenants)
	})
	if err != nil {
		return err
	}
	fresh = slices.DeleteFunc(fresh, func(in incident.Incident) bool {
		_, ok := n.known[numberKey(in.TenantUID, in.ID)]
		return ok
	})
	if len(fresh) == 0 {
		return nil
	}
	slices.SortFunc(fresh, func(a, b incident.Incident) int {
		return cmp.Or(cmp.Compare(a.FirstSeen, b.FirstSeen), strings.Compare(a.TenantUID, b.TenantUID), strings.Compare(a.ID, b.ID))
	})
	cfg := s.cfg.IncidentNumbers
	stride := uint32(max(cfg.Allocators, 1))
	now := time.Now().UnixMilli()
	c := &columns{table: TableNumbers, rows: len(fresh), names: []string{"tenant_uid", "incident_id", "number", "rank", "assigned_ms"}}
	tcol, icol, ncol, rcol, acol := mk[string](len(fresh)), mk[string](len(fresh)), mk[uint32](len(fresh)), mk[uint64](len(fresh)), mk[int64](len(fresh))
	next := map[string]uint32{}
	for i, in := range fresh {
		num, ok := next[in.TenantUID]
		if !ok {
			num = n.next[in.TenantUID]
		}
		tcol[i], icol[i], ncol[i], rcol[i], acol[i] = in.TenantUID, in.ID, num, 1<<32-uint64(num), now
		next[in.TenantUID] = num + stride
	}
	c.values = []any{tcol, icol, ncol, rcol, acol}
	if err := s.insert(ctx, c); err != nil {
		return err
	}
	for t, v := range next {
		n.next[t] = v
	}
	for _, in := range fresh {
		n.known[numberKey(in.TenantUID, in.ID)] = struct{}{}
	}
	return nil
}

// numberKey is the numberer's key of a tenant's incident.
func numberKey(tenant, id string) string { return tenant + "\x00" + id }

// lookupNumbers records which incidents of fresh already hold a number
// and, for a tenant seen for the first time, the next number of this
// writer's class. It changes the numberer only once both reads are
// complete, so a failed attempt can be repeated as is. The caller holds
// the numberer's lock.
func (s *Store) lookupNumbers(ctx context.Context, fresh []incident.Incident, tenants []string) error {
	n := &s.numbers
	ids := make([]string, len(fresh))
	for i, in := range fresh {
		ids[i] = in.ID
	}
	var known [][2]string
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT DISTINCT tenant_uid, incident_id FROM "+s.t(TableNumbers)+
		" WHERE tenant_uid IN "+placeholders(len(tenants))+" AND incident_id IN "+placeholders(len(ids)),
		append(anySlice(tenants), anySlice(ids)...)...)
	if err != nil {
		return fmt.Errorf("read incident numbers: %w", err)
	}
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			rows.Close()
			return fmt.Errorf("read incident numbers: %w", err)
		}
		known = append(known, [2]string{t, id})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read incident numbers: %w", err)
	}
	cfg := s.cfg.IncidentNumbers
	stride, class := uint32(max(cfg.Allocators, 1)), uint32(cfg.Allocator)
	var unread []string
	for _, t := range tenants {
		if _, ok := n.next[t]; !ok {
			unread = append(unread, t)
		}
	}
	top := map[string]uint32{}
	if len(unread) > 0 {
		// The highest number of this writer's class, per tenant.
		rows, err := s.conn.Query(s.readCtx(ctx), fmt.Sprintf("SELECT tenant_uid, max(number) FROM %s WHERE tenant_uid IN %s AND number %% %d = %d GROUP BY tenant_uid",
			s.t(TableNumbers), placeholders(len(unread)), stride, class), anySlice(unread)...)
		if err != nil {
			return fmt.Errorf("read incident numbers: %w", err)
		}
		for rows.Next() {
			var t string
			var m uint32
			if err := rows.Scan(&t, &m); err != nil {
				rows.Close()
				return fmt.Errorf("read incident numbers: %w", err)
			}
			top[t] = m
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read incident numbers: %w", err)
		}
	}
	for _, k := range known {
		n.known[numberKey(k[0], k[1])] = struct{}{}
	}
	for _, t := range unread {
		next := top[t] + stride
		if _, ok := top[t]; !ok {
			next = class
			if next == 0 {
				next = stride
			}
		}
		n.next[t] = next
	}
	return nil
}
