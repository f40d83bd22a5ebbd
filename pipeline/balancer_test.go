package pipeline

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestScopeBalancerKeepsPartitionIndexesTogether checks that, however the
// broker lists the partitions, every member gets the same partition
// indexes of every raw topic, so one account's records meet in one engine.
func TestScopeBalancerKeepsPartitionIndexesTogether(t *testing.T) {
	topics := []string{"musubi.raw.cloudtrail", "musubi.raw.agent", "musubi.raw.vpcflow"}
	var parts []kafka.Partition
	for _, tp := range topics {
		for id := range 6 {
			parts = append(parts, kafka.Partition{Topic: tp, ID: id})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for members := 1; members <= 4; members++ {
		var ms []kafka.GroupMember
		for i := range members {
			ms = append(ms, kafka.GroupMember{ID: string(rune('a' + i)), Topics: topics})
		}
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		got := scopeBalancer{}.AssignGroups(ms, parts)
		owner := map[int]string{}
		total := 0
		for member, byTopic := range got {
			for _, tp := range topics {
				for _, id := range byTopic[tp] {
					total++
					if o, ok := owner[id]; ok && o != member {
						t.Errorf("%d members: partition %d of %s went to %s, of another topic to %s", members, id, tp, member, o)
					}
					owner[id] = member
				}
			}
		}
		if total != len(parts) {
			t.Errorf("%d members: %d partitions assigned, want %d", members, total, len(parts))
		}
	}
	if (scopeBalancer{}).ProtocolName() != "range" {
		t.Errorf("protocol %q, want range (compatible with kafka-go's range members)", scopeBalancer{}.ProtocolName())
	}
}

// TestReassignedSkipsTheFirstGeneration checks when the consumer rebuilds
// correlation state: not for the first assignment (restored at start)
// unless AssignFirst, on every later one, and never without a hook.
func TestReassignedSkipsTheFirstGeneration(t *testing.T) {
	c := &Consumer{cfg: ConsumerConfig{OnAssign: func(context.Context, Assignment) error { return nil }}}
	var got []bool
	for _, n := range []int64{1, 0, 1, 0, 2} {
		got = append(got, c.reassigned(n))
	}
	if want := []bool{false, false, true, false, true}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if (&Consumer{}).reassigned(2) {
		t.Error("reassigned without an OnAssign hook")
	}
	// A correlate process restores its tenants on its first assignment.
	first := &Consumer{cfg: ConsumerConfig{OnAssign: func(context.Context, Assignment) error { return nil }, AssignFirst: true}}
	got = got[:0]
	for _, n := range []int64{0, 1, 0, 1} {
		got = append(got, first.reassigned(n))
	}
	if want := []bool{false, true, false, true}; !slices.Equal(got, want) {
		t.Errorf("with AssignFirst: got %v, want %v", got, want)
	}
}
