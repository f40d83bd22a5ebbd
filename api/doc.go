// Package api is Musubi's HTTP API: the SOC incident queue, the incident
// graph, rules and health.
//
// Every /v1 endpoint needs a bearer token. A token has a role (viewer,
// analyst, admin) and a tenant scope; every query is filtered to the token's
// tenants, and an id from another tenant answers 404 exactly like an id that
// does not exist. Errors are RFC 9457 problem documents; every response
// carries an X-Request-Id.
//
// The package does not import storage: it declares the small Store interface
// it needs, and cmd/musubi adapts the ClickHouse store to it.
package api
