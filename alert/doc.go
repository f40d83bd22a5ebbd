// Package alert holds the alert: what a detection or correlation rule
// raises. It is a data type shared by the rule engine that makes alerts,
// the correlator that folds and joins them, storage that writes and reads
// them and the API that serves them, and so imports nothing but the event
// model: a package that only needs the shape of an alert does not link the
// CEL runtime.
package alert
