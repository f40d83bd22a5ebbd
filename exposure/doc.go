// Package exposure predicts attack paths and scores incidents by their
// assets, from the asset inventory (AWS Config configuration items, package
// ingest/awsconfig) and the vulnerabilities Inspector reports.
//
// # Predicted attack paths
//
// Find looks for the seed's path before anyone walks it:
//
//	internet ─exposes→ instance ─runs_as→ role ─can_write→ object ─source_of→ pipeline ─deploys_to→ deployment group
//
// an internet-facing instance (public address and a security group open to
// 0.0.0.0/0 or ::/0) whose credentials can be taken (a high or critical
// Inspector vulnerability with a known exploit, or IMDSv1 allowed), running
// as a role whose policies allow s3:PutObject on the source bundle of a
// CodePipeline S3 source, in a bucket without versioning or Object Lock,
// that reaches a CodeDeploy deploy to a production deployment group with no
// manual approval stage in between. The shorter variant starts at any role
// of the pipeline's account that can write that bundle. Every hop carries
// its evidence (the security group rule, the metadata options and CVE, the
// instance profile, the allowing policy statements, the pipeline stages and
// the deployment group's targets).
//
// Each path lists the seed's countermeasures that alone would break it or
// shorten it to its role variant: IMDSv2 required, patching the exploitable
// vulnerabilities, taking the instance off the internet, a least-privilege
// role, S3 versioning, S3 Object Lock and a manual approval stage. They are
// found by applying each to a copy of the inventory and searching again, so
// the list is exactly what the finder would conclude on the changed
// account.
//
// # Risk from assets
//
// AssetRisk scores the entities of an incident (as the correlator names
// them) by what they resolve to: internet-facing, IMDSv1 allowed, a known
// exploitable vulnerability, a role that can write a deployment source,
// production targets, configured crown-jewel tags and membership of a
// predicted path. Each factor names its asset and evidence, so the score
// explains itself.
//
// # Paths an incident walked
//
// Walked matches an incident's entities to the paths they lie on, through
// what they resolve to (as AssetRisk resolves them), and dates each path
// by the newest capture among its assets (Match.Since): "this path was
// predicted since …". GET /v1/incidents/{id}/exposures serves it.
//
// # What is approximated
//
//   - IAM: identity policies of the role (inline, customer managed from
//     their Config items, a few AWS managed policies built in) and the
//     bucket policy's explicit Deny are evaluated; permissions boundaries,
//     service control policies, session policies, resource policies that
//     grant cross-account access, and ACLs are not. Conditions are not
//     evaluated: an Allow with a Condition is assumed to apply, a Deny with
//     one is assumed not to, and the path lists them under NotEvaluated.
//     Policy variables are matched as literal text.
//   - Only roles of the pipeline's own account are considered as writers.
//   - An instance's role comes from the role items' instance profile lists,
//     else from a role named like the instance profile.
//   - Internet exposure is a public address plus an open security group;
//     network ACLs, routes and load balancers are not followed (Inspector's
//     network reachability findings are read by the detection rule, not
//     here). Groups missing from the inventory count as open.
//   - A deployment group is production by its tags or its target tag
//     filters (awsconfig.ProductionTagKeys/Values); its actual instances
//     are not enumerated.
//   - Versioning or Object Lock on the source bucket is taken to break the
//     tampering hop, as the seed does; a versioned bucket still accepts new
//     versions, so this is the seed's model rather than a guarantee.
//   - With an exploitable vulnerability, IMDSv2 alone does not close the
//     way in (code execution reads IMDSv2 tokens too); the finder then
//     lists neither IMDSv2 nor patching as breaking the path alone.
//   - Find reruns the search once per distinct countermeasure, on the
//     path's account only (50 copies of the seed's account, 100 paths:
//     about 45 ms and 5 MiB, BenchmarkFind); it runs on inventory
//     snapshots, not per event.
package exposure
