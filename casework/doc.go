// Package casework holds the analyst's view of incidents as one set of data
// types: the incident as the queue shows it (the correlator's latest
// version with the analyst's workflow), its detail with alerts and
// evidence, comments, the audit log, the entity pivot, the queries that
// select them and the changes that update them, and the errors a store
// answers with.
//
// storage reads and writes these types and api serves them as they are:
// api declares the small interface it needs (api.Store) in these types, so
// it imports neither storage nor the rule engine, and nothing converts
// between a storage and an API copy of the same record. The package imports
// only the standard library and the data packages ocsf, alert and incident.
package casework
