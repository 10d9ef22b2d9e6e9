//! Staff accounts and API keys. Every key belongs to one organisation and carries one role;
//! the role decides what the key may do, the organisation which patients it may see.
//!
//! Keys are 256 random bits, so a plain SHA-256 of the key is what we store: a slow password
//! hash (argon2) protects low-entropy secrets and would only cost time on every request here.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result, Violations};
use crate::id::Id;
use crate::organisations::validate_email;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

text_enum! {
    pub enum Role {
        /// Manages the organisation: staff, keys, policy, audit log.
        Admin = "admin",
        /// Clinic staff: patients, contact points, appointments, notices.
        Clinic = "clinic",
        /// Print room: letter batches (no patient records).
        Print = "print",
        /// Low-threshold service staff: relay requests for patients shared with them.
        Relay = "relay",
        /// Outreach team members: outreach tasks for patients shared with them.
        Outreach = "outreach",
        /// Koordinator: owns patients' pathways.
        Coordinator = "coordinator",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Id,
    pub organisation_id: Id,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// A personal key acts for this staff member: claims and closures carry their name.
    pub staff_id: Option<Id>,
}

const KEY_PREFIX: &str = "kv_";

fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key and returns it with its secret, which is shown once and never stored.
pub async fn create_api_key(
    tx: &mut Tx,
    organisation_id: Id,
    role: Role,
    label: Option<String>,
    staff_id: Option<Id>,
    now: DateTime<Utc>,
) -> Result<(ApiKey, String)> {
    if let Some(id) = staff_id {
        let person = get_staff(tx, id).await?;
        if person.organisation_id != organisation_id {
            return Err(Error::invalid(
                "staff_id",
                "that staff member belongs to another organisation; a key acts for someone in its own",
            ));
        }
    }
    let secret = format!("{KEY_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
    let key = ApiKey {
        id: Id::new(now),
        organisation_id,
        role,
        label,
        created_at: now,
        revoked_at: None,
        staff_id,
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO api_keys (id, organisation_id, role, key_hash, label, created_at, staff_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id)
        .bind(key.organisation_id)
        .bind(key.role)
        .bind(hash_key(&secret))
        .bind(&key.label)
        .bind(key.created_at)
        .bind(key.staff_id)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok((key, secret))
}

/// The live key with this secret, if any. Secrets without our prefix are not looked up.
pub async fn authenticate(tx: &mut Tx, secret: &str) -> Result<Option<ApiKey>> {
    if !secret.starts_with(KEY_PREFIX) {
        return Ok(None);
    }
    let hash = hash_key(secret);
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, role, label, created_at, revoked_at, staff_id FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(c)
        .await?
    }))
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Staff {
    pub id: Id,
    pub organisation_id: Id,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Hears about unclaimed and overdue tasks of the team.
    pub team_lead: bool,
    /// E-mail about new work: `immediate`, `daily` (a digest at 07:00) or `off`.
    pub email_digest: EmailDigest,
}

text_enum! {
    pub enum EmailDigest {
        Immediate = "immediate",
        Daily = "daily",
        Off = "off",
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub team_lead: bool,
    pub email_digest: Option<EmailDigest>,
}

pub async fn create_staff(
    tx: &mut Tx,
    organisation_id: Id,
    new: NewStaff,
    now: DateTime<Utc>,
) -> Result<Staff> {
    let mut v = Violations::default();
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        v.add("name", "give the person's name (1–200 characters)");
    }
    if let Some(email) = &new.email {
        validate_email("email", email, &mut v);
    }
    v.finish()?;
    let staff = Staff {
        id: Id::new(now),
        organisation_id,
        name,
        email: new.email,
        role: new.role,
        created_at: now,
        team_lead: new.team_lead,
        email_digest: new.email_digest.unwrap_or(EmailDigest::Immediate),
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO staff (id, organisation_id, name, email, role, created_at, team_lead, email_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(staff.id)
        .bind(staff.organisation_id)
        .bind(&staff.name)
        .bind(&staff.email)
        .bind(staff.role)
        .bind(staff.created_at)
        .bind(staff.team_lead)
        .bind(staff.email_digest)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(staff)
}

pub async fn get_staff(tx: &mut Tx, id: Id) -> Result<Staff> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, name, email, role, created_at, team_lead, email_digest FROM staff WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("staff member"))
}

pub async fn list_staff(tx: &mut Tx, organisation_id: Id) -> Result<Vec<Staff>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, name, email, role, created_at, team_lead, email_digest FROM staff
             WHERE organisation_id = $1 ORDER BY name, id",
        )
        .bind(organisation_id)
        .fetch_all(c)
        .await?
    }))
}
