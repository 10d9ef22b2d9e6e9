//! The password identity provider: Argon2id hashes (the `argon2` crate's default parameters,
//! PHC strings), the rules for a new username and password, and the login check with its
//! lockout. It answers one question — which staff member is this? — and nothing else: starting
//! the session is [`super::session::start`]'s job, the same for every provider.
//!
//! An unknown username costs the same Argon2 work as a known one (it is checked against a
//! dummy hash), and every refusal reads the same, so the login form does not tell whether a
//! username exists, whether its password was right while it is locked, or whether it is locked.

use super::WebError;
use crate::context::AppContext;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use kontaktvei_store::accounts;
use kontaktvei_store::{FieldError, Id};

/// The shortest password we accept: a few words are easier to remember than symbols.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// A bound on the work one login may ask for.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The provider's name in `staff_sessions.provider`.
pub const PROVIDER: &str = "password";

/// An Argon2id hash (default parameters) of a password nobody has: what an unknown username
/// is checked against, so it takes as long as a known one.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$hvYcHN4GyrcDn2BZ+uDXRg$0XzJSGFFVIy6iRhzlBmOJvgmV+ynzqYVfqydK3nF3nE";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("the password hashing task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Checks a new login's username and password; the normalised username, or an error naming
/// each field at fault (`username`, `password`).
pub fn check_new_login(username: &str, password: &str) -> Result<String, kontaktvei_store::Error> {
    let mut errors = Vec::new();
    let normalised = accounts::normalise_username(username);
    if normalised.is_none() {
        errors.push(FieldError::new(
            "username",
            "give 3–64 letters, digits or . - _ @ (an e-mail address works)",
        ));
    }
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            format!(
                "give at least {MIN_PASSWORD_CHARS} characters; a few words in a row are easy to remember and hard to guess"
            ),
        ));
    } else if length > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            format!("give at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    match normalised {
        Some(name) if errors.is_empty() => Ok(name),
        _ => Err(kontaktvei_store::Error::Invalid(errors)),
    }
}

/// The Argon2id PHC string of a password, with a fresh random salt. Runs off the async
/// threads: a hash takes tens of milliseconds on purpose.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await?
}

/// Whether `password` matches `hash`; without a hash, the dummy is checked (and false returned)
/// so the answer takes as long.
async fn verify(password: String, hash: Option<String>) -> Result<bool, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        match Argon2::default().verify_password(password.as_bytes(), hash.as_str()) {
            Ok(()) => known,
            Err(argon2::password_hash::Error::PasswordInvalid) => false,
            Err(e) => {
                // A stored hash we cannot read: refuse, and tell the operator (not the hash).
                tracing::error!(error = %e, "a stored password hash cannot be checked");
                false
            }
        }
    })
    .await?)
}

/// The password login: the staff member these credentials identify, or `None` (wrong
/// username or password, or a locked login: the caller cannot tell which). Wrong passwords are
/// counted towards the lockout.
pub async fn identify(
    ctx: &AppContext,
    username: &str,
    password: &str,
) -> Result<Option<Id>, WebError> {
    let found = match accounts::normalise_username(username) {
        Some(name) => {
            let mut tx = ctx.store.begin_read().await?;
            let found = accounts::credential_by_username(&mut tx, &name).await?;
            tx.commit().await?;
            found
        }
        None => None,
    };
    // (The form's body limit bounds the password's length, and so this work.)
    let right = verify(
        password.to_owned(),
        found.as_ref().map(|c| c.password_hash.clone()),
    )
    .await?;
    let Some(credential) = found else {
        tracing::info!("staff login refused");
        return Ok(None);
    };
    let staff_id = credential.staff_id;
    // The check took a while: decide on the row as it is now, in one write transaction.
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let admitted = if right {
        accounts::login_succeeded(&mut tx, staff_id, now).await?
    } else {
        if accounts::login_failed(&mut tx, staff_id, now).await? && !credential.locked_at(now) {
            tracing::warn!(%staff_id, "staff login locked after repeated wrong passwords");
        }
        false
    };
    tx.commit().await?;
    if admitted {
        Ok(Some(staff_id))
    } else {
        tracing::info!(%staff_id, "staff login refused");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_default_parameters_and_verify() {
        let hash = hash("korrekt hest batteri stift".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify("korrekt hest batteri stift".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("korrekt hest batteri".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_dummy_hash_has_the_default_parameters_and_admits_nobody() {
        // If the crate's defaults change, a known username would cost more than an unknown one.
        argon2::PasswordHash::new(DUMMY_HASH).unwrap();
        let fresh = hash("x".repeat(12)).await.unwrap();
        let params = |h: &str| h.split('$').nth(3).unwrap().to_owned();
        assert_eq!(params(DUMMY_HASH), params(&fresh));
        assert!(!verify(String::new(), None).await.unwrap());
    }

    #[test]
    fn new_logins_name_each_field_at_fault() {
        assert_eq!(
            check_new_login("  Kari.Nordmann ", "tolv tegn her").unwrap(),
            "kari.nordmann"
        );
        let kontaktvei_store::Error::Invalid(errors) = check_new_login("k", "kort").unwrap_err()
        else {
            panic!("not a field error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["username", "password"]);
    }
}
