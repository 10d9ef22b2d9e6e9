-- Print batches and the letters in them.

CREATE TABLE print_batches (
    id              BLOB PRIMARY KEY,
    organisation_id BLOB NOT NULL REFERENCES organisations(id),
    created_at      TEXT NOT NULL,
    letters         INTEGER NOT NULL,
    pages           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    printed_at      TEXT,
    posted_on       TEXT,
    created_by      TEXT NOT NULL
);
CREATE INDEX print_batches_by_organisation ON print_batches (organisation_id, created_at);

CREATE TABLE letters (
    id              BLOB PRIMARY KEY,
    step_id         BLOB NOT NULL UNIQUE REFERENCES steps(id),
    notice_id       BLOB NOT NULL REFERENCES notices(id),
    batch_id        BLOB NOT NULL REFERENCES print_batches(id),
    reference       TEXT NOT NULL UNIQUE,
    postal_code     TEXT NOT NULL,
    position        INTEGER NOT NULL,
    pages           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    expected_from   TEXT,
    expected_to     TEXT,
    returned_at     TEXT,
    return_reason   TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX letters_by_batch ON letters (batch_id, position);
