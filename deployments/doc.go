// Package deployments holds no code: it is the home of Musubi's deployment
// artifacts — the Dockerfile's compose stack (compose/), the Helm chart
// (kubernetes/musubi/), Grafana provisioning and dashboards (grafana/) and
// Prometheus scrape configuration and alert rules (prometheus/) — and of the
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
//   - the Prometheus alert rules and dashboards only name metrics that the
//     code registers.
//
// See docs/deploy.md.
package deployments
