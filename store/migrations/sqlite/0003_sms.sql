-- SMS providers: replies and delivery reports, per-organisation sender ids.

-- Alphanumeric (at most 11 characters; cannot receive replies) or a numeric sender.
ALTER TABLE organisations ADD COLUMN sms_sender TEXT;

CREATE INDEX steps_by_idempotency_key ON steps (idempotency_key);

-- Every SMS that came in: an ack with a code, a reply for staff, a STOP.
CREATE TABLE inbound_messages (
    id          BLOB PRIMARY KEY,
    provider    TEXT NOT NULL,
    from_phone  TEXT NOT NULL,
    to_phone    TEXT,
    body        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    notice_id   BLOB REFERENCES notices(id),
    patient_id  BLOB REFERENCES patients(id),
    received_at TEXT NOT NULL
);
CREATE INDEX inbound_messages_by_notice ON inbound_messages (notice_id);
CREATE INDEX inbound_messages_by_patient ON inbound_messages (patient_id, received_at);

-- A confirmation reply to an acknowledgement belongs to a notice but to no step.
CREATE TABLE outbox_messages_new (
    id              BLOB PRIMARY KEY,
    notice_id       BLOB NOT NULL REFERENCES notices(id),
    step_id         BLOB REFERENCES steps(id),
    to_phone        TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL
);
INSERT INTO outbox_messages_new SELECT id, notice_id, step_id, to_phone, body, idempotency_key, created_at FROM outbox_messages;
DROP TABLE outbox_messages;
ALTER TABLE outbox_messages_new RENAME TO outbox_messages;
