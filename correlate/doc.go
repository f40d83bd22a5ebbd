// Package correlate stitches alerts into multi-stage incident graphs, in
// event time.
//
// # Model
//
// Two mechanisms run side by side.
//
// Entity-graph grouping. Every event's observables feed an entity-link
// graph: entities of kinds that Config.Lineage pairs up and that appear in
// the same event are linked (identity lineage: instance ↔ role session ↔
// access key ↔ the IP an API caller acted from ↔ agent host and its own
// addresses; deployment lineage: the identity that wrote an S3 object
// (write operations only, not its readers) → object → CodeDeploy
// deployment → target instance or host); an entity is interned for an
// event only when a rule links it with another of the event's entities,
// and otherwise only when an alert carries it. Rules can be narrowed by
// operation, class and attribute name, so the peers a host talks to and
// shared principals such as an instance profile do not link. Each link
// keeps the event-time range it was seen in and the id of its earliest
// evidence event. An alert joins the open incident that holds one of its joinable
// entities (Config.JoinKinds) within that kind's window, or that it reaches
// through at most Config.MaxDepth usable links (a link is usable within the
// shorter window of its two kinds); otherwise it opens an incident. An
// alert, or a new link from a plain event, that reaches two incidents
// merges them: the loser is emitted once more with MergedInto set. A new
// link only finds the incidents it may connect; each of their alerts that
// carries an entity the link's walk met fewer than MaxDepth links from it
// then looks for incidents again by the rules an arriving alert joins by
// (the others cannot reach through the link), so a
// link joins what it would have joined had it been known when the alerts
// were placed, and how the input was cut into batches does not matter.
//
// Hubs never glue: addresses in Config.HubIPs (NAT, VPC endpoints,
// link-local IMDS), values with Config.HubSuffixes (AWS service principals),
// values in Config.HubValues, any account or region on its own, anything
// that is not an address where an address is expected, and every entity
// that gains more than Config.HubPartnerLimit link partners within its
// window (counted by the links' event times, not by what the watermark has
// evicted so far, which depends on the batches). Kinds outside
// JoinKinds (account, region, role, bucket, file, user, ...) appear in the
// graph as context nodes but are not joined on.
//
// Sequence rules (kind: correlation files, see LoadRules and the format in
// sequence.go) match ordered stages over alerts or events with key hand-off
// between stages on different fields, per-stage gaps and a total span,
// thresholds and distinct counts, and absence ("A not followed by B within
// T") fired by event-time timers. Stage inputs are kept for the rule's span,
// indexed by their hand-off values; every input walks back to the first-
// stage inputs (anchors) it may follow and each anchor's smallest complete
// chain by (time, id) is raised, or re-raised under the same id when a late
// input makes it smaller. A match raises a correlated alert (Correlated set,
// id from rule, version and anchor) that joins its stages' incident with
// "sequence" edges and raises its severity; its stages count after those of
// the detections it stands on.
//
// # Incidents
//
// An incident is rendered from its set of alerts and the link graph, sorted
// by (event time, alert id), so the same input in any arrival order gives
// the same incident: its id is IncidentID(tenant, earliest alert id) (when
// an earlier alert arrives late, the incident is re-keyed and the old id
// is emitted as merged into the new one); nodes are the alerts, the
// entities they carry and the entities on the lineage paths that joined
// them; every edge carries its relation, rule and version, join key, time
// gap and evidence events. Severity and risk come from kill-chain stage
// coverage, tactic and source diversity and join confidence (see score),
// not from one alert: a lone alert makes an incident at most one step
// below its own severity. Every emitted change has a higher Version.
//
// # Time and state
//
// Each source (metadata.log_name) has a high-water mark; an event more
// than Config.AllowedLateness behind its source's mark is counted late
// (musubi_correlate_late_events_total) and still attached as far as the
// state allows. The global watermark is the slowest active source's mark
// minus the allowed lateness (Advance moves it when input is idle); it
// fires sequence timers and evicts entities, links and incidents whose
// windows have closed. Tracked entities are capped (Config.MaxEntities,
// oldest evicted first), as are alerts and nodes per incident. Restore
// rebuilds the open incidents and in-flight sequence state from storage
// after a restart.
//
// # Determinism and its limits
//
// Within the allowed lateness (and with nothing evicted) any arrival order
// gives the same incidents: the tests replay the attack-chain scenario in
// hundreds of shuffled orders and compare the graphs. An entity that
// becomes a hub by partner count after it glued incidents lets go of them:
// the incidents it was part of are re-checked and alerts that only it held
// together go back to incidents of their own (the earliest group keeps the
// id; the others come back under their own ids). One approximation remains:
// an entity's membership in an incident is kept as one time range, so a
// sighting inside a gap of that range joins where, in another order, it
// might not have.
//
// # Cost
//
// Measured with go test -bench . -benchtime=1x ./correlate/ (2 vCPU):
// about 325 bytes of heap per tracked entity with its links (1M entities
// in ~325 MB; an entity is 72 bytes and a link half 24, see graph.go;
// target ≤ 512 bytes), about 5 µs per plain event, and ~2 ms
// for the Process call that puts the last alert of a chain into its
// incident while 300k entities are tracked (target ≤ 1 s). A lineage walk
// visits at most 512 entities; an entity remembers at most 8 incidents.
//
// # Ownership and locking
//
// A Correlator is a synchronous, single-owner state machine: it is not
// safe for concurrent use and takes no locks. The pipeline runner owns it
// and calls Process, Advance and Restore from one goroutine; correlation
// is scaled out by keying signals by tenant, so one owner holds a scope.
package correlate
