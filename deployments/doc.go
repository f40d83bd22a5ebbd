// Package deployments holds no code: it is the home of Musubi's deployment
// artifacts — the Dockerfile's compose stack (compose/), the Helm chart
// (kubernetes/musubi/), Grafana provisioning and dashboards (grafana/),
// Prometheus scrape configuration and alert rules (prometheus/) and the
// recipes that ship AWS logs into Kafka (ingest/: Vector, Kafka Connect) —
// and of the
// tests that keep them honest without a container engine or a cluster:
//
//   - every ClickHouse panel of every dashboard runs, with the Grafana
//     ClickHouse plugin's macros expanded, against the real ClickHouse on a
//     database seeded by replaying the attack scenario through the real
//     pipeline, and must return rows of the shape its panel reads;
//   - the compose file is checked structurally (images, dependencies,
//     ports, mounts, publishers);
//   - the chart is rendered with the Helm SDK for its default values and
//     for split roles, its values are validated against values.schema.json,
//     and the rendered configuration decodes with Musubi's strict decoder;
//     each source of rules (image, ConfigMap, git-sync, OCI artifact) renders
//     alone, and the OCI pull script runs against a stand-in oras;
//   - the ingest recipes key every record by account: Vector's regular
//     expression and Kafka Connect's transform chain run on real object
//     keys, and Musubi decodes what the connector writes;
//   - the Prometheus alert rules and dashboards only name metrics that the
//     code registers.
//
// See docs/deploy.md.
package deployments
