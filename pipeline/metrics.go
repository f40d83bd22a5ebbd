package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events       *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	alerts       prometheus.Counter
	records      *prometheus.CounterVec
	batches      prometheus.Histogram
	writeRetries prometheus.Counter
	// writeRejected counts batches storage rejected permanently.
	writeRejected prometheus.Counter
	commits       prometheus.Counter
	fetchErrors   prometheus.Counter
	lag           *prometheus.GaugeVec
	lagErrors     prometheus.Counter
	// buffered is what the consumer holds in memory: prefetched messages,
	// the batch being processed and the batch being written.
	buffered prometheus.Gauge
	// detectionLatency is event time → incident durable.
	detectionLatency prometheus.Histogram
	// reassignments counts new partition assignments after the first,
	// each of which rebuilt the correlation state.
	reassignments prometheus.Counter
	// signalItems and signalBytes count the signals a detect process
	// published; signalsRead those a correlate process read.
	signalItems  prometheus.Counter
	signalBytes  prometheus.Counter
	signalErrors prometheus.Counter
	signalsRead  prometheus.Counter
	signalMsgs   prometheus.Counter
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
			Help: "Alerts raised by detection rules: every match, before the correlator folds repeats into one stored alert.",
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
			Help: "Consumer-side operations retried: correlation-state rebuilds after a rebalance and dead-letter topic publishes (storage retries its own writes: musubi_storage_insert_errors_total{kind=\"transient\"}).",
		}),
		writeRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_pipeline_batches_rejected_total",
			Help: "Batches storage rejected permanently; their records were stored as dead letters (reason write_rejected).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_pipeline_commits_total",
			Help: "Kafka offset commits after a durable write.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_kafka_fetch_errors_total",
			Help: "Fetches that failed with a broker or group error; the consumer backs off and retries.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "musubi_kafka_consumer_lag",
			Help: "Messages of a partition this consumer holds that are not yet committed: the broker's high-water mark minus the group's committed offset, read from the brokers every kafka.lag_interval.",
		}, []string{"topic", "partition"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "musubi_kafka_consumer_buffered_messages",
			Help: "Messages this consumer holds in memory, not yet committed: those its Kafka client prefetched (at most kafka.queue_capacity, kafka.signals_queue_capacity for -role correlate) plus the batch being processed and the one before it, being written and committed (at most pipeline.batch_size each). Sampled at every fetch and every kafka.lag_interval; when processing or writing is slow it stays at that bound and the consumer lag grows instead.",
		}),
		lagErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_kafka_lag_errors_total",
			Help: "Failed reads of the consumer lag from the brokers; musubi_kafka_consumer_lag keeps its last values meanwhile.",
		}),
		detectionLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "musubi_pipeline_detection_latency_seconds",
			Help:    "Time from the event time of an incident's newest alert to the incident update being durable in ClickHouse; includes the sources' own delivery delay.",
			Buckets: []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400},
		}),
		reassignments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_kafka_reassignments_total",
			Help: "New partition assignments after the first (rebalances); each rebuilds the correlation state from storage.",
		}),
		signalItems: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_signals_published_total",
			Help: "Signals (alerts, link facts, whole events, source times) a detect process published to the signals topic.",
		}),
		signalBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_signals_published_bytes_total",
			Help: "Bytes of the signal messages a detect process published.",
		}),
		signalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_signals_encode_errors_total",
			Help: "Signals a detect process left out because they could not be encoded or one item exceeded a signal message's 512 KiB (logged; the event is stored).",
		}),
		signalsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_signals_read_total",
			Help: "Signals a correlate process read from the signals topic (malformed ones count as dead letters instead).",
		}),
		signalMsgs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_signals_published_messages_total",
			Help: "Signal messages a detect process published (acknowledged by every in-sync replica).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.signalItems, m.signalBytes, m.signalErrors, m.signalsRead, m.signalMsgs)
		reg.MustRegister(m.events, m.deadLetters, m.alerts, m.records, m.batches, m.writeRetries, m.writeRejected, m.commits, m.fetchErrors, m.lag, m.buffered, m.lagErrors, m.detectionLatency, m.reassignments)
	}
	return m
}
