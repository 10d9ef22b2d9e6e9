-- SMS providers: replies and delivery reports, per-organisation sender ids.

-- Alphanumeric (at most 11 characters; cannot receive replies) or a numeric sender.
ALTER TABLE organisations ADD COLUMN sms_sender TEXT;

CREATE INDEX steps_by_idempotency_key ON steps (idempotency_key);

-- Every SMS that came in: an ack with a code, a reply for staff, a STOP.
CREATE TABLE inbound_messages (
    id          UUID PRIMARY KEY,
    provider    TEXT NOT NULL,
    from_phone  TEXT NOT NULL,
    to_phone    TEXT,
    body        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    notice_id   UUID REFERENCES notices(id),
    patient_id  UUID REFERENCES patients(id),
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inbound_messages_by_notice ON inbound_messages (notice_id);
CREATE INDEX inbound_messages_by_patient ON inbound_messages (patient_id, received_at);

-- A confirmation reply to an acknowledgement belongs to a notice but to no step.
ALTER TABLE outbox_messages ALTER COLUMN step_id DROP NOT NULL;
