-- When Temporal scheduled each attempt (server time): the gap between two attempts is the
-- retry backoff actually applied, Retry-After included.
ALTER TABLE pixel_fires ADD COLUMN IF NOT EXISTS scheduled_at DateTime64(3, 'UTC') DEFAULT fired_at;
