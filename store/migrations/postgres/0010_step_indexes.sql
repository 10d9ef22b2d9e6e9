-- No query reads steps by lease time: leasing and the auditor find steps through their status
-- (`steps_due`), and only a step in `sending` holds a lease. The index was only kept up to date,
-- on every lease and every move of a step.
DROP INDEX steps_lease;

-- Most steps are never sent (planned, then skipped or cancelled): only a sent step has a
-- provider reference or an idempotency key to be found by. Lookups by either compare with a
-- value, which implies NOT NULL, so they use these partial indexes.
DROP INDEX steps_by_provider_ref;
CREATE INDEX steps_by_provider_ref ON steps (provider_ref) WHERE provider_ref IS NOT NULL;
DROP INDEX steps_by_idempotency_key;
CREATE INDEX steps_by_idempotency_key ON steps (idempotency_key) WHERE idempotency_key IS NOT NULL;
