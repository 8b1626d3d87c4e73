-- 005_outbox_extra: between two gateways a message carries more than a
-- body (receipt requests, corrections, reactions, replies, retractions,
-- markers; docs/design.md "Gateway peers").  `extra` holds those child
-- elements, allow-listed by namespace and serialized, beside the body they
-- travel with, so they share its durability and its place in the order.
-- NULL for every message to a Barev peer, and for those the bytes sent are
-- still built from `body` alone.
ALTER TABLE outbox ADD COLUMN extra TEXT;
