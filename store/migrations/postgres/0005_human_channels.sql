-- Human channels: who holds a task, what they tried, hand-overs between people and
-- organisations, what staff are told, and the e-mails that tell them (no patient data in those).

-- A personal key acts for one staff member: claims and closures are made by a named person.
ALTER TABLE api_keys ADD COLUMN staff_id UUID REFERENCES staff(id);
-- The team lead hears about unclaimed and overdue tasks; e-mail comes at once, daily, or never.
ALTER TABLE staff ADD COLUMN team_lead BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE staff ADD COLUMN email_digest TEXT NOT NULL DEFAULT 'immediate'
    CHECK (email_digest IN ('immediate', 'daily', 'off'));

ALTER TABLE tasks ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
-- in_person or phone (a relay request the service answers by calling).
ALTER TABLE tasks ADD COLUMN channel TEXT NOT NULL DEFAULT 'in_person';
-- What to tell the patient: the neutral text with the ack code.
ALTER TABLE tasks ADD COLUMN message TEXT;
-- An outreach task no one has claimed by then goes to the team lead and the coordinator.
ALTER TABLE tasks ADD COLUMN claim_by TIMESTAMPTZ;
ALTER TABLE tasks ADD COLUMN claimed_at TIMESTAMPTZ;
ALTER TABLE tasks ADD COLUMN closed_by UUID REFERENCES staff(id);
ALTER TABLE tasks ADD COLUMN outcome_note TEXT;
ALTER TABLE tasks ADD COLUMN unclaimed_escalated_at TIMESTAMPTZ;
ALTER TABLE tasks ADD COLUMN owner_reminded_at TIMESTAMPTZ;
ALTER TABLE tasks ADD COLUMN lead_reminded_at TIMESTAMPTZ;
-- Cancellations kept their reason in `outcome`; outcomes are now a closed list.
UPDATE tasks SET outcome_note = outcome, outcome = NULL WHERE status = 'cancelled';
CREATE INDEX tasks_by_assignee ON tasks (assignee_id, status);
CREATE INDEX tasks_by_notice ON tasks (notice_id);
-- The reach report reads an organisation's notices by creation time.
CREATE INDEX notices_by_organisation ON notices (organisation_id, created_at);

-- Everything that happened to a task: claimed, unclaimed (why), each attempt (where, when,
-- result), reminders, escalations, closed (outcome).
CREATE TABLE task_events (
    id           UUID PRIMARY KEY,
    task_id      UUID NOT NULL REFERENCES tasks(id),
    at           TIMESTAMPTZ NOT NULL,
    kind         TEXT NOT NULL,
    staff_id     UUID REFERENCES staff(id),
    actor        TEXT NOT NULL,
    place        TEXT,
    attempted_at TIMESTAMPTZ,
    result       TEXT,
    note         TEXT
);
CREATE INDEX task_events_by_task ON task_events (task_id, at);

-- Hand-over of a patient (their coordinator), a task or a notice: offered, then accepted or
-- declined. Until accepted the one who offered keeps it.
CREATE TABLE handovers (
    id                   UUID PRIMARY KEY,
    subject_kind         TEXT NOT NULL CHECK (subject_kind IN ('patient', 'task', 'notice')),
    subject_id           UUID NOT NULL,
    patient_id           UUID NOT NULL REFERENCES patients(id),
    from_staff_id        UUID NOT NULL REFERENCES staff(id),
    from_organisation_id UUID NOT NULL REFERENCES organisations(id),
    to_staff_id          UUID REFERENCES staff(id),
    to_organisation_id   UUID NOT NULL REFERENCES organisations(id),
    status               TEXT NOT NULL CHECK (status IN ('offered', 'accepted', 'declined', 'withdrawn')),
    note                 TEXT,
    offered_at           TIMESTAMPTZ NOT NULL,
    decided_at           TIMESTAMPTZ,
    decided_by           UUID REFERENCES staff(id),
    decision_note        TEXT,
    reminded_at          TIMESTAMPTZ
);
CREATE UNIQUE INDEX handovers_one_offer_per_subject ON handovers (subject_kind, subject_id) WHERE status = 'offered';
CREATE INDEX handovers_by_patient ON handovers (patient_id, offered_at);
CREATE INDEX handovers_open ON handovers (status, offered_at);

-- The named person who took a notice over (status handed_over).
ALTER TABLE notices ADD COLUMN holder_staff_id UUID REFERENCES staff(id);

-- What a staff member is told: a new task for their team, an escalation to them, a hand-over
-- offered, a chain that failed. Shown in the API and pages; summarised in e-mails.
CREATE TABLE staff_notifications (
    id              UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    staff_id        UUID REFERENCES staff(id),
    kind            TEXT NOT NULL,
    patient_id      UUID REFERENCES patients(id),
    task_id         UUID REFERENCES tasks(id),
    notice_id       UUID REFERENCES notices(id),
    handover_id     UUID REFERENCES handovers(id),
    created_at      TIMESTAMPTZ NOT NULL,
    read_at         TIMESTAMPTZ,
    emailed_at      TIMESTAMPTZ
);
CREATE INDEX staff_notifications_by_staff ON staff_notifications (staff_id, created_at);
CREATE INDEX staff_notifications_unmailed ON staff_notifications (emailed_at, staff_id);

-- E-mails to staff: counts and a link, never patient data. Retried until sent or given up.
CREATE TABLE staff_emails (
    id              UUID PRIMARY KEY,
    staff_id        UUID NOT NULL REFERENCES staff(id),
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'outbox', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    transport       TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX staff_emails_due ON staff_emails (status, next_attempt_at);

-- Next of kin: who gave consent, when, and for what.
ALTER TABLE contact_points ADD COLUMN consent_given_by TEXT;
ALTER TABLE contact_points ADD COLUMN consent_given_at TIMESTAMPTZ;
ALTER TABLE contact_points ADD COLUMN consent_scope TEXT;
