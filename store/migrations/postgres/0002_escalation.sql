-- The escalation engine: policies, contact plans as durable step rows, acknowledgements,
-- the SMS outbox, human tasks, ack-attempt rate limiting and once-only cron occurrences.

-- An organisation's contact policy (JSON); NULL means the defaults.
ALTER TABLE organisations ADD COLUMN policy JSONB;

-- The policy the notice was planned with, its ack code and link token (hashed), and how it ended.
ALTER TABLE notices ADD COLUMN policy JSONB;
ALTER TABLE notices ADD COLUMN ack_code_hash TEXT;
ALTER TABLE notices ADD COLUMN link_token_hash TEXT;
ALTER TABLE notices ADD COLUMN closed_at TIMESTAMPTZ;
CREATE UNIQUE INDEX notices_live_ack_code ON notices (ack_code_hash) WHERE closed_at IS NULL AND ack_code_hash IS NOT NULL;
CREATE INDEX notices_by_link_token ON notices (link_token_hash);

-- One row per step of a notice's contact plan. lease_until is Unix milliseconds, 0 when free.
CREATE TABLE steps (
    id               UUID PRIMARY KEY,
    notice_id        UUID NOT NULL REFERENCES notices(id),
    position         INTEGER NOT NULL,
    channel          TEXT NOT NULL,
    contact_point_id UUID REFERENCES contact_points(id),
    status           TEXT NOT NULL,
    reason           TEXT,
    due_at           TIMESTAMPTZ,
    window_ends_at   TIMESTAMPTZ,
    body             TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    provider_ref     TEXT,
    sent_at          TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (notice_id, position)
);
CREATE INDEX steps_due ON steps (status, due_at);
CREATE INDEX steps_window ON steps (status, window_ends_at);
CREATE INDEX steps_lease ON steps (lease_until, id);
CREATE INDEX steps_by_provider_ref ON steps (provider_ref);

-- What happened to each step, in order (the notice timeline shows it).
CREATE TABLE step_events (
    id      UUID PRIMARY KEY,
    step_id UUID NOT NULL REFERENCES steps(id),
    at      TIMESTAMPTZ NOT NULL,
    status  TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX step_events_by_step ON step_events (step_id, at);

CREATE TABLE acks (
    id               UUID PRIMARY KEY,
    notice_id        UUID NOT NULL REFERENCES notices(id),
    step_id          UUID REFERENCES steps(id),
    method           TEXT NOT NULL,
    actor            TEXT NOT NULL,
    contact_point_id UUID REFERENCES contact_points(id),
    note             TEXT,
    at               TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX acks_one_per_notice ON acks (notice_id);

-- The built-in SMS provider: messages stay here, nothing leaves the machine.
CREATE TABLE outbox_messages (
    id              UUID PRIMARY KEY,
    notice_id       UUID NOT NULL REFERENCES notices(id),
    step_id         UUID NOT NULL REFERENCES steps(id),
    to_phone        TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL
);

-- Work for people: relay requests, outreach tasks, the coordinator's follow-ups.
CREATE TABLE tasks (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    patient_id      UUID NOT NULL REFERENCES patients(id),
    notice_id       UUID REFERENCES notices(id),
    step_id         UUID REFERENCES steps(id),
    assignee_id     UUID REFERENCES staff(id),
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,
    outcome         TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    closed_at       TIMESTAMPTZ
);
CREATE INDEX tasks_by_organisation ON tasks (organisation_id, status);
CREATE INDEX tasks_by_patient ON tasks (patient_id);
CREATE UNIQUE INDEX tasks_one_per_step ON tasks (step_id);

-- Failed and successful ack attempts, for rate limiting code guessing. No codes are stored.
CREATE TABLE ack_attempts (
    id        UUID PRIMARY KEY,
    source    TEXT NOT NULL,
    code_hash TEXT,
    success   BOOLEAN NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX ack_attempts_by_source ON ack_attempts (source, at);
CREATE INDEX ack_attempts_by_code ON ack_attempts (code_hash, at);

-- A cron occurrence is claimed by inserting its row: it fires once across all instances.
CREATE TABLE cron_runs (
    job        TEXT NOT NULL,
    occurrence TIMESTAMPTZ NOT NULL,
    instance   TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job, occurrence)
);
