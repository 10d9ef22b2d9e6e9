//! Acknowledgements and ack codes. An ack ends a notice's escalation at once. It never needs
//! BankID: a reply SMS with the code, the code said at a desk or on the phone, a one-click link,
//! or a staff member's word that they told the patient in person.
//!
//! Codes are 6 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U/V): 29^6 ≈ 5.9·10^8
//! possibilities, drawn from a CSPRNG, unique among open notices. Only their SHA-256 is
//! stored for lookup; the rendered messages that carry them are kept as sent. Guessing is
//! rate-limited per source and per code through `ack_attempts`.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// No 0/O, 1/I/L, and no U or V (read aloud they are confused in Norwegian).
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";
pub const CODE_LENGTH: usize = 6;

text_enum! {
    pub enum AckMethod {
        SmsReply = "sms_reply",
        CodeAtDesk = "code_at_desk",
        CodeByPhone = "code_by_phone",
        Link = "link",
        RelayAttested = "relay_attested",
        OutreachMet = "outreach_met",
        /// A staff member who met or spoke to the patient says so.
        StaffAttested = "staff_attested",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Ack {
    pub id: Id,
    pub notice_id: Id,
    pub step_id: Option<Id>,
    pub method: AckMethod,
    pub actor: String,
    pub contact_point_id: Option<Id>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// A new random code, e.g. `K7MX3Q`, from rand's thread-local CSPRNG (ChaCha, seeded by the OS).
pub fn new_code() -> String {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % CODE_ALPHABET.len();
    let mut code = String::with_capacity(CODE_LENGTH);
    while code.len() < CODE_LENGTH {
        let b = usize::from(rand::random::<u8>());
        if b < limit {
            code.push(char::from(CODE_ALPHABET[b % CODE_ALPHABET.len()]));
        }
    }
    code
}

/// A new link token (the `/k/{token}` page), 128 random bits in hex.
pub fn new_link_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Upper case, spaces and dashes dropped, so "k7m x3q" and "K7M-X3Q" are the same code.
pub fn normalise_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// An acknowledgement to record: which notice, through which step and contact point, how, by whom.
#[derive(Debug, Clone)]
pub struct NewAck<'a> {
    pub notice_id: Id,
    pub step_id: Option<Id>,
    pub method: AckMethod,
    pub actor: &'a str,
    pub contact_point_id: Option<Id>,
    pub note: Option<&'a str>,
}

pub async fn record(tx: &mut Tx, new: NewAck<'_>, now: DateTime<Utc>) -> Result<Ack> {
    let ack = Ack {
        id: Id::new(now),
        notice_id: new.notice_id,
        step_id: new.step_id,
        method: new.method,
        actor: new.actor.to_owned(),
        contact_point_id: new.contact_point_id,
        note: new.note.map(str::to_owned),
        at: now,
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO acks (id, notice_id, step_id, method, actor, contact_point_id, note, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ack.id)
        .bind(ack.notice_id)
        .bind(ack.step_id)
        .bind(ack.method)
        .bind(&ack.actor)
        .bind(ack.contact_point_id)
        .bind(&ack.note)
        .bind(ack.at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(ack)
}

pub async fn for_notice(tx: &mut Tx, notice_id: Id) -> Result<Option<Ack>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, notice_id, step_id, method, actor, contact_point_id, note, at FROM acks WHERE notice_id = $1",
        )
        .bind(notice_id)
        .fetch_optional(c)
        .await?
    }))
}

/// Whether any notice about the appointment was acknowledged before `before` (was the patient
/// told in time?), in one statement.
pub async fn any_for_appointment_before(
    tx: &mut Tx,
    appointment_id: Id,
    before: DateTime<Utc>,
) -> Result<bool> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM acks a JOIN notices n ON n.id = a.notice_id
                            WHERE n.appointment_id = $1 AND a.at < $2)",
        )
        .bind(appointment_id)
        .bind(before)
        .fetch_one(c)
        .await?
    }))
}

/// Notes an attempt to use a code (the code itself is not stored, only its hash).
pub async fn record_attempt(
    tx: &mut Tx,
    source: &str,
    code_hash: Option<&str>,
    success: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("INSERT INTO ack_attempts (id, source, code_hash, success, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(Id::new(now))
            .bind(source)
            .bind(code_hash)
            .bind(success)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Failed attempts from `source`, and against `code_hash`, within `window` before `now`.
pub async fn recent_failures(
    tx: &mut Tx,
    source: &str,
    code_hash: &str,
    window: TimeDelta,
    now: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let since = now - window;
    // Both counts in one statement: this runs for every code a patient sends or types.
    let (by_source, by_code): (i64, i64) = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM ack_attempts WHERE source = $1 AND at > $3 AND NOT success),
                    (SELECT COUNT(*) FROM ack_attempts WHERE code_hash = $2 AND at > $3 AND NOT success)",
        )
        .bind(source)
        .bind(code_hash)
        .bind(since)
        .fetch_one(c)
        .await?
    });
    Ok((by_source, by_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_only_unambiguous_characters() {
        for _ in 0..500 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LENGTH);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        }
        assert!(CODE_ALPHABET.len().pow(CODE_LENGTH as u32) >= 1_000_000);
    }

    #[test]
    fn codes_are_read_back_however_they_are_typed() {
        assert_eq!(normalise_code(" k7m-x3q "), "K7MX3Q");
        assert_eq!(hash(&normalise_code("k7m x3q")), hash("K7MX3Q"));
    }
}
