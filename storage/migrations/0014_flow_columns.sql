-- VPC flow records as typed columns (vpcflow.Row) instead of an OCSF
-- document: a row of a record that a Row holds keeps event_json empty and
-- these columns filled, and the reader builds its document back. Every
-- other row keeps them at their defaults. src_ip, dst_ip, account_uid,
-- region, time_ms, status and product hold the rest. One column a
-- statement, so that Migrate can tolerate a column an interrupted run
-- already added.
{{range tables "events"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_version LowCardinality(String) DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_log_status LowCardinality(String) DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_action UInt8 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_direction UInt8 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_zone LowCardinality(String) DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_interface String DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_instance String DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_vpc String DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_subnet String DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_src_port UInt16 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_dst_port UInt16 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_protocol Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_tcp_flags Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_ip_version UInt8 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_packets Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_bytes Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN flow_end_ms Int64 DEFAULT 0;
{{end}}
