-- The coordinator page lists a staff member's patients on every visit.
CREATE INDEX patients_by_coordinator ON patients (coordinator_id);
