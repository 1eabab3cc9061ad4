-- Click IDs of platforms without a column of their own (`gclid`, `ScCid`, ...), captured by
-- the landing click from the parameters each destination lists in `click_ids`
-- (relay/destinations/), as a JSON object; '' for none. Personal data like fbclid, with the
-- same retention (relay/store/retention.py re-states it from the settings at start) and
-- blanked by erasure. Clicks recorded before this migration read ''.
ALTER TABLE clicks ADD COLUMN IF NOT EXISTS click_ids String DEFAULT '';
ALTER TABLE clicks
    MODIFY COLUMN click_ids COMMENT 'personal data, kept 90 days after clicked_at'
        TTL toDateTime(clicked_at) + INTERVAL 90 DAY;
