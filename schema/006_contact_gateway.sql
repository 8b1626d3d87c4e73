-- 006_contact_gateway: whether the peer at this contact's address was a
-- barev-gateway on the last pipe that answered (docs/design.md "Gateway
-- peers").  Kept across restarts so that what was queued for a gateway
-- peer with its extras (receipts, corrections, reactions...) waits for the
-- next pipe's answer instead of going in the Barev form before it.  0 for
-- every Barev peer; the answer on each new pipe sets it again.
ALTER TABLE contacts ADD COLUMN was_gateway INTEGER NOT NULL DEFAULT 0;
