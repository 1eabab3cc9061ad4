-- Funnels: custom conversions, outbound postbacks to traffic sources, and their attempt log.
CREATE TABLE IF NOT EXISTS custom_conversions (
    id String,
    campaign_id String,
    inbound_event String,
    pixel_id String,
    event_name String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted UInt8 DEFAULT 0,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY id;

CREATE TABLE IF NOT EXISTS outbound_postbacks (
    id String,
    campaign_id String,
    url_template String,
    method LowCardinality(String),
    events Array(String),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted UInt8 DEFAULT 0,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY id;

-- Postback log: append-only, one row per attempt, like pixel_fires.
CREATE TABLE IF NOT EXISTS postback_attempts (
    attempt_id String,
    conversion_id String,
    campaign_id String,
    postback_id String,
    event_type String,
    attempt UInt32,
    method LowCardinality(String),
    url String,
    request_body String,
    http_status UInt16,
    response_body String,
    response_truncated UInt8,
    verdict LowCardinality(String),
    success UInt8,
    error String,
    duration_ms UInt32,
    sent_at DateTime64(3, 'UTC'),
    scheduled_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(sent_at)
ORDER BY (conversion_id, sent_at);
