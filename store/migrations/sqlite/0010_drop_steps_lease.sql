-- No query reads steps by lease time: leasing and the auditor find steps through their status
-- (`steps_due`), and only a step in `sending` holds a lease. The index was only kept up to date,
-- on every lease and every move of a step.
DROP INDEX steps_lease;
