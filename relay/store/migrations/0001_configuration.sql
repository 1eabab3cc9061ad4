-- Configuration: networks, campaigns, pixels, workspace settings.
-- ReplacingMergeTree keyed by the natural ID: an update is a new row with a higher version,
-- a delete is a row with deleted = 1; reads use FINAL.
CREATE TABLE IF NOT EXISTS networks (
    id String,
    name String,
    postback_key String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted UInt8 DEFAULT 0,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY id;

CREATE TABLE IF NOT EXISTS campaigns (
    id String,
    name String,
    offer_url String,
    currency LowCardinality(String),
    repeatable_events Array(String),
    attribution_window_days UInt16,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted UInt8 DEFAULT 0,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY id;

CREATE TABLE IF NOT EXISTS pixels (
    id String,
    campaign_id String,
    platform LowCardinality(String),
    platform_pixel_id String,
    name String,
    token_ciphertext String,
    is_primary UInt8,
    event_name String,
    test_event_code String,
    tiktok_api LowCardinality(String),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted UInt8 DEFAULT 0,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY id;

CREATE TABLE IF NOT EXISTS workspace_settings (
    key String,
    value String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY key;
