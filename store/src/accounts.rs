//! Logins to the staff web pages: a staff member's username and password hash (with the
//! lockout after repeated wrong passwords), and the sessions of logged-in browsers.
//!
//! The store never sees a password: the gateway hashes it (Argon2id) and hands over the PHC
//! string. Session tokens are 256 random bits, so, as with API keys, only their SHA-256 is
//! stored; the CSRF token of a session is stored as is (it is worthless without the cookie).
//! A session says nothing about how the person proved who they are beyond its `provider`
//! (`password` today, an OpenID Connect provider such as HelseID later).

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::staff::Role;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// Wrong passwords in a row that lock a login.
pub const MAX_FAILED_ATTEMPTS: i32 = 5;
/// How long a locked login stays locked.
pub const LOCKOUT: TimeDelta = TimeDelta::minutes(15);
/// A session ends this long after the login, however busy.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(8);
/// A session ends after this long without a request.
pub const SESSION_IDLE: TimeDelta = TimeDelta::hours(1);
/// `last_seen_at` is written at most this often, so reading pages does not write on every request.
const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);

/// The username as stored: trimmed and lower-case. `None` unless it is 3–64 letters, digits or
/// `.`, `-`, `_`, `@` (an e-mail address works as a username).
pub fn normalise_username(raw: &str) -> Option<String> {
    let name = raw.trim().to_lowercase();
    let length = name.chars().count();
    let allowed = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    ((3..=64).contains(&length) && allowed).then_some(name)
}

/// A staff member's login, as the login step needs it.
#[derive(Clone, sqlx::FromRow)]
pub struct Credential {
    pub staff_id: Id,
    pub username: String,
    /// An Argon2id PHC string.
    pub password_hash: String,
    pub failed_attempts: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Credential {
    pub fn locked_at(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

// By hand, so the hash never lands in a log line through `{:?}`.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("staff_id", &self.staff_id)
            .field("username", &self.username)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked_until", &self.locked_until)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// What the API shows of a login: never the hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffLogin {
    pub staff_id: Id,
    pub username: String,
    pub updated_at: DateTime<Utc>,
}

/// Gives a staff member a login, or a new username and password: the lockout is lifted and
/// every session they had ends. `username` must already be normalised
/// ([`normalise_username`]); another person's username is refused on the `username` field.
pub async fn set_login(
    tx: &mut Tx,
    staff_id: Id,
    username: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<StaffLogin> {
    let holder: Option<Id> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT staff_id FROM staff_credentials WHERE username = $1")
            .bind(username)
            .fetch_optional(c)
            .await?
    });
    if holder.is_some_and(|holder| holder != staff_id) {
        return Err(Error::invalid(
            "username",
            "another person already logs in with this username; choose another",
        ));
    }
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO staff_credentials (staff_id, username, password_hash, failed_attempts, locked_until, updated_at)
             VALUES ($1, $2, $3, 0, NULL, $4)
             ON CONFLICT (staff_id) DO UPDATE SET username = excluded.username,
                 password_hash = excluded.password_hash, failed_attempts = 0, locked_until = NULL,
                 updated_at = excluded.updated_at",
        )
        .bind(staff_id)
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    revoke_all_sessions(tx, staff_id, now).await?;
    Ok(StaffLogin {
        staff_id,
        username: username.to_owned(),
        updated_at: now,
    })
}

/// The login with this (normalised) username, if any.
pub async fn credential_by_username(tx: &mut Tx, username: &str) -> Result<Option<Credential>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT staff_id, username, password_hash, failed_attempts, locked_until, updated_at
             FROM staff_credentials WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(c)
        .await?
    }))
}

/// Counts a wrong password. The fifth in a row locks the login for [`LOCKOUT`] and starts the
/// count again; a login that is locked already stays as it is. True when the login is locked.
pub async fn login_failed(tx: &mut Tx, staff_id: Id, now: DateTime<Utc>) -> Result<bool> {
    // One statement, so concurrent wrong passwords are all counted (the row is locked on
    // PostgreSQL, the database on SQLite).
    let locked_until: Option<Option<DateTime<Utc>>> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "UPDATE staff_credentials SET
                 failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END,
                 locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_until END
             WHERE staff_id = $1 AND (locked_until IS NULL OR locked_until <= $4)
             RETURNING locked_until",
        )
        .bind(staff_id)
        .bind(MAX_FAILED_ATTEMPTS)
        .bind(now + LOCKOUT)
        .bind(now)
        .fetch_optional(c)
        .await?
    });
    Ok(match locked_until {
        // Not updated: locked already (or the login is gone).
        None => true,
        Some(until) => until.is_some_and(|until| until > now),
    })
}

/// Clears the count of wrong passwords after a right one. False when the login was locked in
/// the meantime (or is gone): then the login must be refused.
pub async fn login_succeeded(tx: &mut Tx, staff_id: Id, now: DateTime<Utc>) -> Result<bool> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_credentials SET failed_attempts = 0, locked_until = NULL
             WHERE staff_id = $1 AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(changed > 0)
}

/// A new session's secrets, for the browser: the token goes in the cookie, the CSRF token in
/// the forms. Neither is ever logged.
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The stored form of a session token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Starts a session for a staff member whom `provider` (e.g. `password`) has identified.
pub async fn create_session(
    tx: &mut Tx,
    staff_id: Id,
    provider: &str,
    now: DateTime<Utc>,
) -> Result<NewSession> {
    let session = NewSession {
        token: random_token(),
        csrf_token: random_token(),
        expires_at: now + SESSION_LIFETIME,
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO staff_sessions (id, staff_id, provider, csrf_token, created_at, expires_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $5)",
        )
        .bind(hash_token(&session.token))
        .bind(staff_id)
        .bind(provider)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(session)
}

/// A live session and the person it is for.
#[derive(Clone, sqlx::FromRow)]
pub struct Session {
    /// The hash of the token (the row's id).
    pub id: String,
    pub staff_id: Id,
    pub organisation_id: Id,
    pub role: Role,
    pub name: String,
    pub provider: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("staff_id", &self.staff_id)
            .field("organisation_id", &self.organisation_id)
            .field("role", &self.role)
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether [`touch_session`] is due, so a page view only writes once a minute.
    pub fn needs_touch(&self, now: DateTime<Utc>) -> bool {
        now - self.last_seen_at >= TOUCH_EVERY
    }
}

/// The live session with this token: not revoked, not past its lifetime, not idle too long.
pub async fn session(tx: &mut Tx, token: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT s.id, s.staff_id, st.organisation_id, st.role, st.name, s.provider, s.csrf_token,
                    s.expires_at, s.last_seen_at
             FROM staff_sessions s JOIN staff st ON st.id = s.staff_id
             WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.last_seen_at > $3",
        )
        .bind(hash_token(token))
        .bind(now)
        .bind(now - SESSION_IDLE)
        .fetch_optional(c)
        .await?
    }))
}

/// Notes that the session was used now (it stays alive for another [`SESSION_IDLE`]).
pub async fn touch_session(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2",
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Ends one session (logout). Ending an ended session is harmless.
pub async fn revoke_session(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Ends every session of a staff member (a new password, a person who left).
pub async fn revoke_all_sessions(tx: &mut Tx, staff_id: Id, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_sessions SET revoked_at = $2 WHERE staff_id = $1 AND revoked_at IS NULL",
        )
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}
