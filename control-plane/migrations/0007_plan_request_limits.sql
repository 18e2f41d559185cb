-- Two plan limits added after the first plans were recorded: request time (percent of one
-- second per second across the cell, Kafka's request_percentage) and the largest request.
-- Plan versions recorded before carry 0 (no limit), so no running cluster's limits change.
ALTER TABLE plans ADD COLUMN request_time_percent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN max_request_bytes BIGINT NOT NULL DEFAULT 0;
