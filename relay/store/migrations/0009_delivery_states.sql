-- How each conversion's delivery ended: written by its workflow once every send is over,
-- one row per conversion (a later run, such as a redelivery, replaces it). The attempt logs
-- say how each attempt went; this says which sends failed for good. A conversion with no
-- row is pending (or was delivered before this table existed).
CREATE TABLE IF NOT EXISTS delivery_states (
    conversion_id String,
    state LowCardinality(String),
    send_kinds Array(LowCardinality(String)),
    send_targets Array(String),
    send_states Array(LowCardinality(String)),
    send_reasons Array(String),
    finished_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(finished_at) ORDER BY conversion_id;
