-- Print batches and the letters in them.

CREATE TABLE print_batches (
    id              UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisations(id),
    created_at      TIMESTAMPTZ NOT NULL,
    letters         INTEGER NOT NULL,
    pages           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    printed_at      TIMESTAMPTZ,
    posted_on       DATE,
    created_by      TEXT NOT NULL
);
CREATE INDEX print_batches_by_organisation ON print_batches (organisation_id, created_at);

CREATE TABLE letters (
    id              UUID PRIMARY KEY,
    step_id         UUID NOT NULL UNIQUE REFERENCES steps(id),
    notice_id       UUID NOT NULL REFERENCES notices(id),
    batch_id        UUID NOT NULL REFERENCES print_batches(id),
    reference       TEXT NOT NULL UNIQUE,
    postal_code     TEXT NOT NULL,
    position        INTEGER NOT NULL,
    pages           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    expected_from   DATE,
    expected_to     DATE,
    returned_at     TIMESTAMPTZ,
    return_reason   TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX letters_by_batch ON letters (batch_id, position);
