-- Dedup lookups go by click and by txid, not by the conversions' sort key: skip indexes
-- keep them from reading every part as the table grows.
ALTER TABLE conversions ADD INDEX IF NOT EXISTS idx_click_id click_id TYPE bloom_filter GRANULARITY 4;
ALTER TABLE conversions ADD INDEX IF NOT EXISTS idx_txid txid TYPE bloom_filter GRANULARITY 4;
ALTER TABLE clicks ADD INDEX IF NOT EXISTS idx_campaign campaign_id TYPE bloom_filter GRANULARITY 4;
