// Package gen generates evaluation scenarios: seeded, deterministic days of
// a realistic multi-source AWS estate (a web tier, an app tier behind
// CodeDeploy, a bastion, a batch host, CI/CD, admins behind a shared NAT
// address and AWS service principals), written in every raw format Musubi
// reads — CloudTrail delivery files, VPC flow logs (the default version 2
// format and a custom format with its header), GuardDuty findings in
// EventBridge envelopes, OCSF agent events in the standard shape and Falco
// alerts — with the attack chain of the product brief inside in one of
// several variants, unrelated attacks that must be found on their own, and
// the hard negatives real accounts have.
//
// Each scenario is a directory of raw files under one folder per source and
// an expected.json (see eval.Truth) that names the attack's entities, the
// metadata.uid of every event the attack caused (computed by decoding the
// generated files with ingest.Decoder), the unrelated attacks and the
// benign entities that must stay out of high incidents.
//
// The same seed gives the same bytes: one math/rand/v2 PCG source per
// scenario drives every choice, maps are only ever marshalled (sorted keys),
// and gzip streams carry no time or name.
package gen
