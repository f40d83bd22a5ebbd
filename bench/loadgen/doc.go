// Package loadgen generates a realistic, mixed stream of Musubi's raw inputs
// for benchmarks: CloudTrail records of 1–2 KB, VPC flow log lines, GuardDuty
// findings in EventBridge envelopes, agent OCSF events and Falco alerts, over
// a configurable number of distinct entities (principals, instances, hosts,
// addresses, buckets, access keys).
//
// Into that background it injects the attack chain of PRODUCT.md — web
// shell, IMDS credential theft, the instance's keys used from outside, the
// artifact bucket listed and tampered with, a CodePipeline/CodeDeploy
// release of the malware, C2 and ransomware on the target hosts — at known
// event times, each time with fresh identifiers (instance, hosts, addresses,
// access key, role, bucket, deployment), so every injected chain should
// become exactly one high or critical incident and never merge with another.
//
// The stream is a pure function of the Config: the same seed and start time
// give the same bytes. Event time advances by 1/Rate per background record;
// the generator never sleeps — pacing to wall-clock time is the caller's
// job (see bench/cmd/musubi-loadgen).
package loadgen
