// Package kafkatest gives each test a kafka-go transport of its own for
// the writers and clients it points at its kfake cluster.
//
// kafka-go's default transport is shared by the whole process and caches
// each address's metadata. Tests start many kfake clusters on ports the
// system hands out, and a port comes back: a cluster of an earlier test
// on the same address then lends a later test its partitions (a topic of
// four partitions where the new cluster has one), and a write to a
// partition the new cluster does not have fails with Unknown Topic Or
// Partition.
package kafkatest

import (
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"
)

var transports sync.Map // testing.TB → *kafka.Transport

// Transport returns tb's own transport, made on first use and closed when
// tb ends.
func Transport(tb testing.TB) *kafka.Transport {
	if tr, ok := transports.Load(tb); ok {
		return tr.(*kafka.Transport)
	}
	tr := &kafka.Transport{}
	transports.Store(tb, tr)
	tb.Cleanup(func() {
		transports.Delete(tb)
		tr.CloseIdleConnections()
	})
	return tr
}
