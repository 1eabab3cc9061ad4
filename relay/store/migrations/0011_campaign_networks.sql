-- A campaign may name the networks allowed to post conversions for its clicks (issue 18
-- #8); empty, the default and every campaign's value before this migration, allows any.
-- A postback from another network is refused with 403 when its click's campaign is known at
-- accept time; otherwise the conversion's first step records it with `refusal` set
-- ('network not allowed for campaign'): kept and shown, never counted for its click, never
-- sent. Rows recorded before this migration read ''.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS allowed_networks Array(String) DEFAULT [];
ALTER TABLE conversions ADD COLUMN IF NOT EXISTS refusal String DEFAULT '';
