-- 002_outbox_queued: the outbox is read as "the queued rows of a contact,
-- in order" on every message; rows already handed to a pipe ('sending')
-- made that scan grow with every message of a burst (bench/e2e).  A
-- partial index holds just the queued rows.
CREATE INDEX outbox_queued ON outbox (contact_id, id) WHERE state = 'queued';
