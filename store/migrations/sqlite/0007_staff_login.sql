-- Logging in to the staff web pages. How a person proves who they are is the identity
-- provider's business (a username and password here; HelseID later); either way the result is
-- a session in staff_sessions, and the pages only ever see that.

-- A username and password for one staff member. The username is stored lower-case, so it is
-- unique without regard to case. password_hash is an Argon2id PHC string ($argon2id$v=19$…).
-- Five wrong passwords in a row lock the login until locked_until (15 minutes).
CREATE TABLE staff_credentials (
    staff_id        BLOB PRIMARY KEY REFERENCES staff(id),
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    updated_at      TEXT NOT NULL
);

-- One browser's login. id is the hex SHA-256 of the random token in the browser's cookie (the
-- token itself is never stored); csrf_token goes in a hidden field of every form the session
-- submits. A session ends at expires_at (8 hours after login), after an hour without a request
-- (last_seen_at), or when revoked (logout, or a new password).
CREATE TABLE staff_sessions (
    id           TEXT PRIMARY KEY,
    staff_id     BLOB NOT NULL REFERENCES staff(id),
    provider     TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id);
