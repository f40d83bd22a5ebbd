package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events       *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	alerts       prometheus.Counter
	records      *prometheus.CounterVec
	batches      prometheus.Histogram
	writeRetries prometheus.Counter
	commits      prometheus.Counter
	fetchErrors  prometheus.Counter
	lag          prometheus.Gauge
	// reassignments counts new partition assignments after the first,
	// each of which rebuilt the correlation state.
	reassignments prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_pipeline_events_total",
			Help: "Normalized events produced, by source.",
		}, []string{"source"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_pipeline_dead_letters_total",
			Help: "Records that could not be processed and went to the dead letters, by source and reason.",
		}, []string{"source", "reason"}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_pipeline_alerts_total",
			Help: "Alerts raised by detection rules.",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_pipeline_records_total",
			Help: "Raw records consumed, by topic.",
		}, []string{"topic"}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "musubi_pipeline_batch_seconds",
			Help:    "Time from the first fetched record of a batch to its offset commit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		writeRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_pipeline_write_retries_total",
			Help: "Batch writes retried after a transient storage error.",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_pipeline_commits_total",
			Help: "Kafka offset commits after a durable write.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_kafka_fetch_errors_total",
			Help: "Fetches that failed with a broker or group error; the consumer backs off and retries.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "musubi_kafka_consumer_lag",
			Help: "Messages behind the end of the assigned partitions, as last reported by the consumer.",
		}),
		reassignments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_kafka_reassignments_total",
			Help: "New partition assignments after the first (rebalances); each rebuilds the correlation state from storage.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.deadLetters, m.alerts, m.records, m.batches, m.writeRetries, m.commits, m.fetchErrors, m.lag, m.reassignments)
	}
	return m
}
