-- Indexes for what the engine asks every round and every reply, found by profiling the reach
-- simulation (each of these was a scan of the whole table, so the cost grew with its size).

-- The chase: open tasks past their claim time, and the earliest claim time to wake for.
CREATE INDEX tasks_open_by_claim_by ON tasks (claim_by)
    WHERE status = 'open' AND unclaimed_escalated_at IS NULL;

-- The chase: claimed tasks past due (owner, then lead reminders).
CREATE INDEX tasks_claimed_by_due ON tasks (due_at) WHERE status = 'claimed';

-- A reply with a code finds its notice, open or closed (the unique index on live codes only
-- covers open notices, so a lookup that also wants closed ones could not use it).
CREATE INDEX notices_by_ack_code ON notices (ack_code_hash);
