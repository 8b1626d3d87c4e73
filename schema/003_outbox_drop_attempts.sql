-- 003_outbox_drop_attempts: outbox.attempts counted hand-overs to a pipe,
-- but nothing ever read it, and nothing could: delivery is at most once (a
-- row is handed to a pipe, deleted once the kernel has it, and rows a
-- crash left 'sending' are dropped at start, never re-sent), so the count
-- was 0 or 1 and said no more than `state`.  Retries of a queued row are
-- redials of its contact, bounded by outbox_ttl, not by a per-row count.
ALTER TABLE outbox DROP COLUMN attempts;
