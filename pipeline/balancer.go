package pipeline

import (
	"cmp"
	"slices"

	"github.com/segmentio/kafka-go"
)

// scopeBalancer is kafka-go's range assignment over the partitions sorted
// by topic and id, so that partition i of every raw topic goes to the same
// member. Producers key raw records by AWS account, and topics with equal
// partition counts put one account on the same partition index in each:
// every record of a correlation scope then meets in one engine, whichever
// source carries it. It keeps the "range" protocol name, so engines of
// earlier versions (plain kafka-go range) assign alike in one group.
type scopeBalancer struct{ kafka.RangeGroupBalancer }

// AssignGroups implements kafka.GroupBalancer.
func (b scopeBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	sorted := slices.Clone(partitions)
	slices.SortFunc(sorted, func(x, y kafka.Partition) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.ID, y.ID))
	})
	return b.RangeGroupBalancer.AssignGroups(members, sorted)
}
