// Package rules is Musubi's detection-as-code engine: single-event detection
// rules written in YAML with a CEL condition over the normalized OCSF event,
// loaded from a directory, indexed, evaluated under hard limits, and turned
// into deterministic alerts.
//
// # Rule files
//
// A rule directory holds *.yaml / *.yml files, in any sub-folders; hidden
// entries (".git", a ConfigMap's "..data") and "testdata" folders are
// skipped, symbolic links are followed. A file holds one or more YAML
// documents, one rule each. Files with "kind: correlation" belong to the
// correlation engine and are skipped; "kind: detection" is the default.
// Unknown keys are errors.
//
//	kind: detection                 # optional
//	id: aws.imds.credentials_from_web_server   # stable, [a-z0-9_.-]
//	title: Instance role credentials read by a web server child
//	description: |
//	  A process descended from a web server fetched the instance role's
//	  credentials from the instance metadata service.
//	status: stable                  # stable | test | experimental (shadow mode) | deprecated (loaded, not evaluated)
//	severity: high                  # informational | low | medium | high | critical
//	stage: credential_access        # a kill-chain stage, see Stages
//	attack:
//	  tactics: [TA0006]             # ATT&CK tactic ids
//	  techniques: [T1552.005]       # ATT&CK technique ids
//	sources:                        # what the rule can match; feeds the index
//	  log_names: [agent]            # metadata.log_name
//	  classes: [1007]               # class_uid
//	  operations: []                # api.operation
//	condition: |                    # CEL, must be bool
//	  event.process.cmd_line.icontains(["169.254.169.254", "fd00:ec2::254"]) &&
//	  event.process.cmd_line.contains("security-credentials") &&
//	  event.process.lineage.exists(p, basename(p) in ["nginx", "httpd", "php-fpm"])
//	entities: [host, instance, process]   # observables the alert carries (ocsf.Entity)
//	suppression:                    # optional: one alert per key value and window
//	  key: event.device.instance_uid  # CEL, must be string
//	  window: 1h                    # Go duration or days ("1d")
//	falsepositives: [Provisioning scripts run by the web server user]
//	references: [https://attack.mitre.org/techniques/T1552/005/]
//	tests:                          # at least one match and one no-match
//	  - name: curl from a php-fpm child
//	    match: true
//	    event:                      # an OCSF event, as its JSON shape
//	      class_uid: 1007
//	      metadata: {log_name: agent, uid: t1}
//	      process:
//	        cmd_line: curl http://169.254.169.254/latest/meta-data/iam/security-credentials/web
//	        lineage: [/usr/sbin/php-fpm, /bin/sh]
//	  - name: the agent itself
//	    match: false
//	    event: {class_uid: 1007, metadata: {log_name: agent}, process: {cmd_line: /usr/bin/amazon-ssm-agent}}
//
// Each non-empty list under sources must contain the event's value; rules
// are indexed by operation, else class, else log name, so an event meets
// only its candidate rules and the cost per event stays nearly flat as the
// rule count grows. Before a candidate's condition runs, the engine checks
// its literal prerequisites (Prefilter: the top-level conjuncts that compare
// an event field with literals, such as event.status_id != 2 or
// event.cloud.account.uid == "…", and the literal prefix of an anchored
// regular expression, such as "i-" of
// event.actor.session.name.matches('^i-[0-9a-f]{8,17}$')); an event that
// fails one is never shown to the CEL program, and an event that reaches no
// program costs no activation.
//
// # Exceptions and shadow mode
//
// A document with "kind: exception" is a tuning exception: rules (ids or
// globs, "*" for all), owner, reason, expires (a date) and either a CEL
// condition compiled like a rule's (CompileCondition) or fields, OCSF
// attribute paths with the values they must equal. A match of a named rule
// that an active exception's condition accepts raises no alert and is
// counted in musubi_rules_excepted_total{rule,exception}. An exception
// applies through its expiry date (UTC); an expired one loads, is warned
// about (Set.Warnings, Lint) and suppresses nothing. An inline test may say
// "excepted: true" (with match: false) to assert that an exception covers
// its event; Test honours exceptions. An exception carries its own tests
// (ExceptionTest): events a named rule matches that the exception must
// suppress (suppressed: true) or must leave alerting (suppressed: false),
// run by Set.RunExceptionTests and Test with that exception alone.
//
// A rule with status experimental runs in shadow mode (Rule.Shadow): its
// alerts carry alert.Alert.Shadow and are counted in
// musubi_rules_shadow_matches_total{rule}; the correlator stores them but
// never puts them in incidents, so they reach no webhook. Correlation rules
// (package correlate) shadow the same way: an experimental one's correlated
// alert is stored and counted, never put in an incident.
//
// # CEL
//
// Conditions see three variables, in one environment (NewEnv) compiled once:
//
//   - event: the ocsf.Event, typed: field names are the `cel` struct tags
//     (the OCSF attribute names), so a misspelled field is a load error at
//     file:line:col. An absent sub-object reads as its zero value.
//   - request, response: api.request.data and api.response.data, JSON
//     objects of type map(string, dyn), decoded only when a candidate rule
//     of the event reads them, once per event.
//
// Absent keys in request/response: a lookup of a missing key, at any depth,
// yields an absent value that equals nothing. So request.x == "a" is false,
// request.x != "a" and !(request.x == "a") are true, request.x in [...] is
// false, and a negated condition is never broken by a missing field. Calling
// a function on an absent value (request.x.startsWith("a")) is an evaluation
// error, counted and treated as no match: guard it with has(request.x) or
// request.?x.orValue("").
//
// Functions: the CEL standard library, the strings extension
// (lowerAscii, split, ...), optional values, and Musubi's Library:
// cidr_match, is_public_ip, is_private_ip, is_ip, iequals, icontains,
// istartsWith, iendsWith, glob, iglob (each taking a string or a list of
// strings meaning "any of"), base64_decode and basename. matches() takes an
// RE2 pattern that must be a constant; it is compiled once at load, with
// the literals every match must contain (".aws/" of
// `\b(cat|curl)\b.*\.aws/`), which are looked for first: a text without
// one is not matched without running the regular expression.
//
// # Limits
//
// At load a condition is rejected when it is longer than MaxExpressionSize,
// has more than MaxExpressionNodes nodes, nests deeper than MaxRecursion,
// nests comprehensions deeper than MaxComprehensionNesting, has a regular
// expression larger than MaxRegexProgramSize, is not boolean, or has a
// worst-case cost estimate (over strings of 16 KiB and lists of 256 items)
// above MaxEstimatedCost. At evaluation each rule runs under CostLimit and,
// when it iterates, a deadline (Engine.EvalTimeout); a rule that exceeds
// either is stopped, counted in musubi_rules_errors_total, and the other
// rules of the event still run. Cost tracking is skipped only where it
// cannot matter: a rule whose worst-case cost, estimated with every string
// at most 16 KiB and every list and map at most 256 entries, is within
// CostLimit runs without it on an event whose strings, lists and JSON
// bodies are within those sizes (checked once per event); a rule whose
// estimate is within it only over strings of 2 KiB and lists of 64
// entries runs without it on events within those; on any other event,
// and always for a rule whose estimate is above the limit over both or
// unbounded, it runs tracked. The deadline applies to tracked evaluations
// only: an untracked one is bounded by its estimate before it runs (see
// untracked.go). `musubi rules lint -cost` lists each rule's estimates,
// its path and its prefilter.
//
// # Lifecycle
//
// Load compiles a directory into an immutable Set, listing every problem of
// every file at once (errors.Join of *Problem). Engine.Swap installs a set
// atomically; Manager polls the directory's content hash and reloads it,
// and Manager.Reload is what SIGHUP and POST /-/reload call. A broken set is
// rejected whole; the running set stays.
//
// # Alerts
//
// An alert names the rule id and its version: a hash of the rule's content
// and, when the directory is a git checkout, "@" and the commit. Its id is
// deterministic: a hash of the rule id and the evidence event's
// metadata.uid, or, with suppression, of the rule id, the suppression key
// value and the window the event time falls in. Within a window the engine
// returns the alert once; replays reproduce the same id. When the event is a
// finding that names ATT&CK tactics or techniques (GuardDuty, Falco), the
// alert carries them in addition to the rule's own.
//
// # Metrics
//
// NewEngine registers, on the Registerer it is given:
//
//	musubi_rules_evaluations_total{rule}       condition evaluations
//	musubi_rules_matches_total{rule}           matches, before suppression
//	musubi_rules_suppressed_total{rule}        matches folded into an earlier alert
//	musubi_rules_excepted_total{rule,exception} matches a tuning exception covered
//	musubi_rules_shadow_matches_total{rule}    matches of experimental rules (shadow mode)
//	musubi_rules_errors_total{rule,reason}     cost_limit, timeout, eval, not_bool, panic, bad_json
//	musubi_rules_cost_total{rule}              CEL cost units spent by tracked evaluations
//	musubi_rules_untracked_evaluations_total{rule} evaluations run without cost tracking
//	musubi_rules_loaded                        rules in the running set
//	musubi_rules_reloads_total{outcome}        success, failure
//
// Evaluation errors are never logged per event: at most one line a second.
//
// # Tooling
//
// Lint, Test and Coverage return reports (with JSON tags) for
// `musubi rules lint|test|coverage`; Coverage includes an ATT&CK Navigator
// layer.
//
// # Fields per class
//
// Rules read each OCSF class in its own shape: Process Activity (1007) has
// `process` (the process acted on) and `actor.process` (the one that acted);
// Network, DNS and File System Activity and findings have only
// `actor.process`. Load records every top-level event attribute a condition
// or suppression key selects (and request/response as api), and every
// top-level key of a test event, with its position; Lint rejects those that
// none of the rule's classes defines (ocsf.Defines: the OCSF 1.x table and
// Musubi's documented extensions), or, for a rule without classes, that no
// class defines.
package rules
