-- Foundation schema (PostgreSQL). The same tables as the SQLite migration, in native types.

CREATE TABLE organisations (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('clinic', 'low_threshold_service', 'outreach_team', 'home_services')),
    time_zone     TEXT NOT NULL DEFAULT 'Europe/Oslo',
    opening_hours JSONB NOT NULL DEFAULT '{}',
    staff_email   TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE staff (
    id              UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    name            TEXT NOT NULL,
    email           TEXT,
    role            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_by_organisation ON staff (organisation_id);

CREATE TABLE api_keys (
    id              UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    role            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    label           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);

CREATE TABLE patients (
    id                         UUID PRIMARY KEY,
    name                       TEXT NOT NULL,
    name_search                TEXT NOT NULL,
    birth_date                 DATE,
    birth_year                 INTEGER NOT NULL,
    language                   TEXT NOT NULL,
    contact_notes              TEXT NOT NULL DEFAULT '',
    national_id                TEXT,
    coordinator_id             UUID REFERENCES staff(id),
    created_by_organisation_id UUID NOT NULL REFERENCES organisations(id),
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);
CREATE INDEX patients_by_national_id ON patients (national_id);

-- Which organisations may see a patient (the clinic that registered them, the low-threshold
-- service and outreach team that help reach them).
CREATE TABLE patient_shares (
    patient_id      UUID NOT NULL REFERENCES patients(id),
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (patient_id, organisation_id)
);
CREATE INDEX patient_shares_by_organisation ON patient_shares (organisation_id, patient_id);

CREATE TABLE contact_points (
    id               UUID PRIMARY KEY,
    patient_id       UUID NOT NULL REFERENCES patients(id),
    kind             TEXT NOT NULL CHECK (kind IN ('sms', 'postal', 'relay', 'outreach', 'next_of_kin')),
    phone            TEXT,
    address          JSONB,
    postal_code      TEXT,
    organisation_id  UUID REFERENCES organisations(id),
    contact_name     TEXT,
    relation         TEXT,
    consent_recorded BOOLEAN NOT NULL DEFAULT FALSE,
    provenance       TEXT NOT NULL,
    verified_by      TEXT,
    verified_at      TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ,
    status           TEXT NOT NULL,
    failure_reason   TEXT,
    note             TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    created_by       TEXT NOT NULL,
    retired_at       TIMESTAMPTZ,
    retired_reason   TEXT
);
CREATE INDEX contact_points_by_patient ON contact_points (patient_id);
CREATE INDEX contact_points_by_phone ON contact_points (phone);

CREATE TABLE appointments (
    id               UUID PRIMARY KEY,
    organisation_id  UUID NOT NULL REFERENCES organisations(id),
    patient_id       UUID NOT NULL REFERENCES patients(id),
    starts_at        TIMESTAMPTZ NOT NULL,
    duration_minutes INTEGER NOT NULL,
    place            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at);

-- Every state an appointment has been in: booked, each reschedule, cancel, attendance.
CREATE TABLE appointment_events (
    id               UUID PRIMARY KEY,
    appointment_id   UUID NOT NULL REFERENCES appointments(id),
    at               TIMESTAMPTZ NOT NULL,
    status           TEXT NOT NULL,
    starts_at        TIMESTAMPTZ NOT NULL,
    duration_minutes INTEGER NOT NULL,
    place            TEXT NOT NULL,
    reason           TEXT,
    actor            TEXT NOT NULL
);
CREATE INDEX appointment_events_by_appointment ON appointment_events (appointment_id, at);

CREATE TABLE notices (
    id              UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    patient_id      UUID NOT NULL REFERENCES patients(id),
    appointment_id  UUID REFERENCES appointments(id),
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    deadline        TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX notices_by_patient ON notices (patient_id, created_at);
CREATE INDEX notices_by_appointment ON notices (appointment_id);

-- Append-only: who read or changed what about which patient. Never the data itself.
CREATE TABLE audit_events (
    id              UUID PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL,
    organisation_id UUID,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    patient_id      UUID,
    subject         TEXT,
    outcome         TEXT NOT NULL,
    request_id      TEXT
);
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, at);
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Saved responses for POST requests that carried an Idempotency-Key.
CREATE TABLE idempotency_keys (
    organisation_id UUID NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER,
    content_type    TEXT,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organisation_id, idempotency_key)
);
