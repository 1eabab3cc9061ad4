-- Personal data has a retention: column TTLs blank it when it ends and keep the rows, so
-- dedup, attribution and the delivery history stay (relay/personal_data.py says what counts).
-- These are the defaults; at every start relay/store/retention.py re-states a table's TTLs
-- from RELAY_CLICK_PII_RETENTION_DAYS and RELAY_DELIVERY_PII_RETENTION_DAYS when a column's
-- comment shows other days. ClickHouse blanks expired values in background merges.
--
-- A logged request body or postback URL becomes its `_erased` copy, written with the row with
-- the visitor's data replaced; rows logged before this migration have an empty copy. The
-- copies are materialized before a TTL reads them: a TTL default over a column that an old
-- part lacks fails the merge.
ALTER TABLE pixel_fires ADD COLUMN IF NOT EXISTS request_body_erased String DEFAULT '';
ALTER TABLE pixel_fires MATERIALIZE COLUMN request_body_erased SETTINGS mutations_sync = 2;
ALTER TABLE postback_attempts ADD COLUMN IF NOT EXISTS request_body_erased String DEFAULT '';
ALTER TABLE postback_attempts ADD COLUMN IF NOT EXISTS url_erased String DEFAULT '';
ALTER TABLE postback_attempts MATERIALIZE COLUMN request_body_erased SETTINGS mutations_sync = 2;
ALTER TABLE postback_attempts MATERIALIZE COLUMN url_erased SETTINGS mutations_sync = 2;

ALTER TABLE clicks
    MODIFY COLUMN ip COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN user_agent COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN landing_url COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN referrer COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN fbclid COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN ttclid COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN fbc COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN fbp COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN ttp COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN region COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN city COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN zip_code COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY,
    MODIFY COLUMN external_id COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY;

ALTER TABLE conversions
    MODIFY COLUMN email_sha256 COMMENT 'personal data, kept 30 days after received_at'
        TTL toDateTime(received_at) + INTERVAL 30 DAY,
    MODIFY COLUMN phone_meta_sha256 COMMENT 'personal data, kept 30 days after received_at'
        TTL toDateTime(received_at) + INTERVAL 30 DAY,
    MODIFY COLUMN phone_tiktok_sha256 COMMENT 'personal data, kept 30 days after received_at'
        TTL toDateTime(received_at) + INTERVAL 30 DAY,
    MODIFY COLUMN external_id_sha256 COMMENT 'personal data, kept 30 days after received_at'
        TTL toDateTime(received_at) + INTERVAL 30 DAY;

ALTER TABLE pixel_fires
    MODIFY COLUMN request_body DEFAULT request_body_erased COMMENT 'personal data, kept 30 days after fired_at'
        TTL toDateTime(fired_at) + INTERVAL 30 DAY;

ALTER TABLE postback_attempts
    MODIFY COLUMN url DEFAULT url_erased COMMENT 'personal data, kept 30 days after sent_at'
        TTL toDateTime(sent_at) + INTERVAL 30 DAY,
    MODIFY COLUMN request_body DEFAULT request_body_erased COMMENT 'personal data, kept 30 days after sent_at'
        TTL toDateTime(sent_at) + INTERVAL 30 DAY;
