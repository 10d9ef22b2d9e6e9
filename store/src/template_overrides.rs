//! An organisation's own message texts: for one template (`booking.sms`, `staff_email`, …) in
//! one language, numbered versions, every one kept. A version without a source goes back to the
//! shipped default. Checking a text before it is saved is the templates crate's job.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TemplateOverride {
    pub template_key: String,
    pub lang: String,
    pub version: i64,
    /// `None`: this version went back to the default text.
    pub source: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The newest version of each of the organisation's overridden templates.
pub async fn current(tx: &mut Tx, organisation_id: Id) -> Result<Vec<TemplateOverride>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT t.template_key, t.lang, t.version, t.source, t.created_by, t.created_at
             FROM template_overrides t
             WHERE t.organisation_id = $1
               AND t.version = (SELECT MAX(u.version) FROM template_overrides u
                                WHERE u.organisation_id = t.organisation_id
                                  AND u.template_key = t.template_key AND u.lang = t.lang)
             ORDER BY t.template_key, t.lang",
        )
        .bind(organisation_id)
        .fetch_all(c)
        .await?
    }))
}

/// Every version of one template in one language, newest first.
pub async fn versions(
    tx: &mut Tx,
    organisation_id: Id,
    key: &str,
    lang: &str,
) -> Result<Vec<TemplateOverride>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT template_key, lang, version, source, created_by, created_at FROM template_overrides
             WHERE organisation_id = $1 AND template_key = $2 AND lang = $3 ORDER BY version DESC",
        )
        .bind(organisation_id)
        .bind(key)
        .bind(lang)
        .fetch_all(c)
        .await?
    }))
}

/// Saves a new version (or, with `None`, a return to the default) and returns its number.
pub async fn save(
    tx: &mut Tx,
    organisation_id: Id,
    key: &str,
    lang: &str,
    source: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let latest: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT MAX(version) FROM template_overrides
             WHERE organisation_id = $1 AND template_key = $2 AND lang = $3",
        )
        .bind(organisation_id)
        .bind(key)
        .bind(lang)
        .fetch_one(c)
        .await?
    });
    let version = latest.unwrap_or(0) + 1;
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO template_overrides (id, organisation_id, template_key, lang, version, source, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Id::new(now))
        .bind(organisation_id)
        .bind(key)
        .bind(lang)
        .bind(version)
        .bind(source)
        .bind(actor)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(version)
}
