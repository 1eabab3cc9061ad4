-- A destination's own settings that have no column of their own (an ad account ID, a
-- conversion action): the names its package lists in `fields` (relay/destinations/), as
-- a JSON object of strings, so a new platform needs no migration. Pixels saved before this
-- migration read '{}'.
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS options String DEFAULT '{}';
