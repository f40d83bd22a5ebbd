// Package layers holds no code: its test checks the direction of the
// module's dependencies (see docs/design.md): the data packages import
// nothing heavy, and storage, api and notify reach neither the rule engine,
// the correlator nor CEL.
package layers
