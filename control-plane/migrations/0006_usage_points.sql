-- Per-minute usage of each cluster for the Metrics API (src/usage/), written by the usage
-- collector and pruned after its retention (7 days by default). `metric` is the short name
-- (`received_bytes`, ...); `topic` is '' for per-cluster metrics (request_count,
-- active_connection_count); `minute` is Unix milliseconds, a multiple of 60,000.
-- Counters (received_bytes, sent_bytes, request_count) hold the sum of the deltas collected
-- in the minute; gauges (retained_bytes, active_connection_count, partition_count) the
-- last sample taken in it.
CREATE TABLE usage_points (
    cluster_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    minute BIGINT NOT NULL,
    topic TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, metric, minute, topic)
);
-- Retention deletes by age.
CREATE INDEX usage_points_minute ON usage_points (minute);
