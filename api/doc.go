// Package api is Musubi's HTTP API: the SOC incident queue (list, filter,
// page), the incident graph with its evidence, the analyst workflow
// (status, assignee, severity override, tags, verdicts) with optimistic
// concurrency on ETag/If-Match, comments, merges, moving alerts between
// incidents, saved views of the queue per user, the entity pivot, rules
// and reload, token and tenant administration, the audit log, health and
// metrics. docs/api.md describes it for users; openapi.json is the contract,
// served at /v1/openapi.json and checked against Routes() by a test.
//
// Every /v1 endpoint needs a bearer token. A token has a role (viewer,
// analyst, admin) and a tenant scope; every query is filtered to the token's
// tenants, and an id from another tenant answers 404 exactly like an id that
// does not exist. Errors are RFC 9457 problem documents that list every
// invalid input at once; every response carries an X-Request-Id. Every
// state-changing request, including refused ones, is written to the audit
// log with the request id.
//
// The package does not import storage, the rule engine or the correlator: it
// declares the small Store interface it needs in the data types of package
// casework, which storage.Store implements as it is, and the RuleSource
// interface that cmd/musubi serves from the rule engine.
package api
