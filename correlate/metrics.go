package correlate

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	trackedEntities prometheus.Gauge
	openIncidents   prometheus.Gauge
	lateEvents      prometheus.Counter
	merges          prometheus.Counter
	sequenceMatches *prometheus.CounterVec
	shadowMatches   *prometheus.CounterVec
	sequenceInputs  prometheus.Gauge
	dropped         *prometheus.CounterVec
	foldReplays     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		trackedEntities: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "musubi_correlate_tracked_entities",
			Help: "Entities held in the correlator's entity-link graph.",
		}),
		openIncidents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "musubi_correlate_open_incidents",
			Help: "Incidents whose windows are still open in the correlator.",
		}),
		lateEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_correlate_late_events_total",
			Help: "Events that arrived later than the allowed lateness behind their source's watermark (still attached where possible).",
		}),
		merges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_correlate_merges_total",
			Help: "Incidents merged into another because an alert or a link bridged them.",
		}),
		sequenceMatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_correlate_sequence_matches_total",
			Help: "Correlated alerts raised by sequence rules.",
		}, []string{"rule"}),
		shadowMatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_correlate_shadow_matches_total",
			Help: "Correlated alerts of experimental sequence rules, which run in shadow mode (stored, never in incidents or webhooks), by rule.",
		}, []string{"rule"}),
		sequenceInputs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "musubi_correlate_sequence_inputs",
			Help: "Stage inputs (alerts, events, thresholds) held by sequence rules, waiting for the rest of their chains.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_correlate_dropped_total",
			Help: "State the correlator declined to keep, by reason (caps, hubs, evictions; shadow for alerts of experimental rules, stored but never correlated; sequence_cost_limit, sequence_timeout and sequence_eval for stage conditions that failed to evaluate).",
		}, []string{"reason"}),
		foldReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_correlate_fold_replays_total",
			Help: "Detection matches read again after a crash or a rebalance that their stored folded alert had already counted (not counted again).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.trackedEntities, m.openIncidents, m.lateEvents, m.merges, m.sequenceMatches, m.shadowMatches, m.sequenceInputs, m.dropped, m.foldReplays)
	}
	return m
}
