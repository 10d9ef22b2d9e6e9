-- Foundation schema (SQLite). Ids are UUIDv7 stored as 16-byte BLOBs, timestamps RFC 3339 TEXT
-- in UTC (sqlx writes them in a form that sorts as text), JSON as TEXT.

CREATE TABLE organisations (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('clinic', 'low_threshold_service', 'outreach_team', 'home_services')),
    time_zone     TEXT NOT NULL DEFAULT 'Europe/Oslo',
    opening_hours TEXT NOT NULL DEFAULT '{}',
    staff_email   TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE staff (
    id              BLOB PRIMARY KEY,
    organisation_id BLOB NOT NULL REFERENCES organisations(id),
    name            TEXT NOT NULL,
    email           TEXT,
    role            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX staff_by_organisation ON staff (organisation_id);

CREATE TABLE api_keys (
    id              BLOB PRIMARY KEY,
    organisation_id BLOB NOT NULL REFERENCES organisations(id),
    role            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    label           TEXT,
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);

CREATE TABLE patients (
    id                         BLOB PRIMARY KEY,
    name                       TEXT NOT NULL,
    name_search                TEXT NOT NULL,
    birth_date                 TEXT,
    birth_year                 INTEGER NOT NULL,
    language                   TEXT NOT NULL,
    contact_notes              TEXT NOT NULL DEFAULT '',
    national_id                TEXT,
    coordinator_id             BLOB REFERENCES staff(id),
    created_by_organisation_id BLOB NOT NULL REFERENCES organisations(id),
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL
);
CREATE INDEX patients_by_national_id ON patients (national_id);

-- Which organisations may see a patient (the clinic that registered them, the low-threshold
-- service and outreach team that help reach them).
CREATE TABLE patient_shares (
    patient_id      BLOB NOT NULL REFERENCES patients(id),
    organisation_id BLOB NOT NULL REFERENCES organisations(id),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (patient_id, organisation_id)
);
CREATE INDEX patient_shares_by_organisation ON patient_shares (organisation_id, patient_id);

CREATE TABLE contact_points (
    id               BLOB PRIMARY KEY,
    patient_id       BLOB NOT NULL REFERENCES patients(id),
    kind             TEXT NOT NULL CHECK (kind IN ('sms', 'postal', 'relay', 'outreach', 'next_of_kin')),
    phone            TEXT,
    address          TEXT,
    postal_code      TEXT,
    organisation_id  BLOB REFERENCES organisations(id),
    contact_name     TEXT,
    relation         TEXT,
    consent_recorded INTEGER NOT NULL DEFAULT 0,
    provenance       TEXT NOT NULL,
    verified_by      TEXT,
    verified_at      TEXT,
    expires_at       TEXT,
    status           TEXT NOT NULL,
    failure_reason   TEXT,
    note             TEXT,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    retired_at       TEXT,
    retired_reason   TEXT
);
CREATE INDEX contact_points_by_patient ON contact_points (patient_id);
CREATE INDEX contact_points_by_phone ON contact_points (phone);

CREATE TABLE appointments (
    id               BLOB PRIMARY KEY,
    organisation_id  BLOB NOT NULL REFERENCES organisations(id),
    patient_id       BLOB NOT NULL REFERENCES patients(id),
    starts_at        TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    place            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at);

-- Every state an appointment has been in: booked, each reschedule, cancel, attendance.
CREATE TABLE appointment_events (
    id               BLOB PRIMARY KEY,
    appointment_id   BLOB NOT NULL REFERENCES appointments(id),
    at               TEXT NOT NULL,
    status           TEXT NOT NULL,
    starts_at        TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    place            TEXT NOT NULL,
    reason           TEXT,
    actor            TEXT NOT NULL
);
CREATE INDEX appointment_events_by_appointment ON appointment_events (appointment_id, at);

CREATE TABLE notices (
    id              BLOB PRIMARY KEY,
    organisation_id BLOB NOT NULL REFERENCES organisations(id),
    patient_id      BLOB NOT NULL REFERENCES patients(id),
    appointment_id  BLOB REFERENCES appointments(id),
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    deadline        TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX notices_by_patient ON notices (patient_id, created_at);
CREATE INDEX notices_by_appointment ON notices (appointment_id);

-- Append-only: who read or changed what about which patient. Never the data itself.
CREATE TABLE audit_events (
    id              BLOB PRIMARY KEY,
    at              TEXT NOT NULL,
    organisation_id BLOB,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    patient_id      BLOB,
    subject         TEXT,
    outcome         TEXT NOT NULL,
    request_id      TEXT
);
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, at);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

-- Saved responses for POST requests that carried an Idempotency-Key.
CREATE TABLE idempotency_keys (
    organisation_id BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER,
    content_type    TEXT,
    response_body   TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (organisation_id, idempotency_key)
);
