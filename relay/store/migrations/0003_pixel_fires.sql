-- Pixel fire log: append-only, one row per delivery attempt (never rewritten).
CREATE TABLE IF NOT EXISTS pixel_fires (
    fire_id String,
    conversion_id String,
    campaign_id String,
    pixel_id String,
    platform LowCardinality(String),
    pixel_name String,
    event_name String,
    event_id String,
    attempt UInt32,
    request_url String,
    request_body String,
    http_status UInt16,
    response_body String,
    response_truncated UInt8,
    verdict LowCardinality(String),
    success UInt8,
    error String,
    duration_ms UInt32,
    fired_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(fired_at)
ORDER BY (conversion_id, fired_at);
