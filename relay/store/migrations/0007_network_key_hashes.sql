-- Network postback keys are stored as keyed hashes (HMAC-SHA256 under a key of the ring,
-- `v1.{key_id}.{mac}`), never in clear. At start Relay hashes the keys of rows written
-- before this migration and empties `postback_key` in every stored row version
-- (relay/store/network_keys.py): the hash needs the key ring, which SQL does not have.
-- `previous_key_hash` is the key a rotation replaced, accepted until its time passes.
ALTER TABLE networks ADD COLUMN IF NOT EXISTS postback_key_hash String DEFAULT '';
ALTER TABLE networks ADD COLUMN IF NOT EXISTS previous_key_hash String DEFAULT '';
ALTER TABLE networks ADD COLUMN IF NOT EXISTS previous_key_valid_until Nullable(DateTime64(3, 'UTC'));
