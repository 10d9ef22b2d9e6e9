//! Organisations: clinics (poliklinikk, LAR, DPS), low-threshold services (lavterskeltilbud),
//! outreach teams (FACT/ACT, oppsøkende team) and municipal home services (hjemmetjenesten),
//! with their time zone, weekly opening hours and staff e-mail.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result, Violations};
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

text_enum! {
    pub enum OrganisationKind {
        Clinic = "clinic",
        LowThresholdService = "low_threshold_service",
        OutreachTeam = "outreach_team",
        HomeServices = "home_services",
    }
}

/// One opening interval within a day, local time of the organisation, `"HH:MM"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[schema(example = "08:00")]
    pub opens: String,
    #[schema(example = "15:30")]
    pub closes: String,
}

/// Weekly opening hours; a day that is missing or empty is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mon: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tue: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wed: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thu: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fri: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sat: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sun: Vec<Interval>,
}

impl OpeningHours {
    fn days(&self) -> [(&'static str, &Vec<Interval>); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }

    /// Each interval must be `HH:MM`–`HH:MM` with opening before closing, and a day's intervals
    /// must not overlap.
    fn validate(&self, field: &str, v: &mut Violations) {
        for (day, intervals) in self.days() {
            let mut parsed = Vec::new();
            for (i, interval) in intervals.iter().enumerate() {
                let at = format!("{field}.{day}[{i}]");
                let opens = NaiveTime::parse_from_str(&interval.opens, "%H:%M");
                let closes = NaiveTime::parse_from_str(&interval.closes, "%H:%M");
                match (opens, closes) {
                    (Ok(o), Ok(c)) if o < c => parsed.push((o, c)),
                    (Ok(_), Ok(_)) => v.add(at, "opens must be earlier than closes"),
                    _ => v.add(at, "times must be written HH:MM, e.g. 08:00"),
                }
            }
            parsed.sort();
            if parsed.windows(2).any(|w| w[1].0 < w[0].1) {
                v.add(format!("{field}.{day}"), "opening intervals overlap");
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Organisation {
    pub id: Id,
    pub name: String,
    pub kind: OrganisationKind,
    /// IANA time zone, e.g. `Europe/Oslo`.
    pub time_zone: String,
    #[sqlx(json)]
    pub opening_hours: OpeningHours,
    pub staff_email: Option<String>,
    /// The SMS sender: alphanumeric (at most 11 characters; phones cannot answer it) or a number
    /// (patients can answer with their code). `None`: the provider's default.
    pub sms_sender: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub name: String,
    pub kind: OrganisationKind,
    pub time_zone: String,
    pub staff_email: Option<String>,
}

/// A partial update: fields left out stay as they are; `staff_email: null` clears it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationUpdate {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub opening_hours: Option<OpeningHours>,
    #[serde(default, deserialize_with = "crate::patients::double_option")]
    #[schema(value_type = Option<String>)]
    pub staff_email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::patients::double_option")]
    #[schema(value_type = Option<String>)]
    pub sms_sender: Option<Option<String>>,
}

fn validate_name(name: &str, v: &mut Violations) {
    let len = name.trim().chars().count();
    if len == 0 || len > 200 {
        v.add("name", "give the organisation's name (1–200 characters)");
    }
}

fn validate_time_zone(tz: &str, v: &mut Violations) {
    if tz.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "time_zone",
            format!("{tz:?} is not an IANA time zone; use e.g. Europe/Oslo"),
        );
    }
}

/// Operators accept an alphanumeric sender of 1–11 letters and digits (with at least one
/// letter), or a numeric one (a short code or a full number, up to 15 digits).
fn validate_sms_sender(sender: &str, v: &mut Violations) {
    let digits = sender.strip_prefix('+').unwrap_or(sender);
    let numeric =
        !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&sender.len())
        && sender.bytes().all(|b| b.is_ascii_alphanumeric())
        && sender.bytes().any(|b| b.is_ascii_alphabetic());
    if !numeric && !alphanumeric {
        v.add(
            "sms_sender",
            "use up to 11 letters and digits (e.g. Timebok; phones cannot reply to it) or a number such as 2270 that patients can answer",
        );
    }
}

/// A deliberately light check that a staff e-mail looks like `local@domain.tld`; delivery
/// failures are what really tell.
pub fn validate_email(field: &str, email: &str, v: &mut Violations) {
    let ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(char::is_whitespace)
    });
    if !ok {
        v.add(field, "not an e-mail address; write it as name@example.no");
    }
}

pub async fn create(tx: &mut Tx, new: NewOrganisation, now: DateTime<Utc>) -> Result<Organisation> {
    let mut v = Violations::default();
    validate_name(&new.name, &mut v);
    validate_time_zone(&new.time_zone, &mut v);
    if let Some(email) = &new.staff_email {
        validate_email("staff_email", email, &mut v);
    }
    v.finish()?;
    let org = Organisation {
        id: Id::new(now),
        name: new.name.trim().to_owned(),
        kind: new.kind,
        time_zone: new.time_zone,
        opening_hours: OpeningHours::default(),
        staff_email: new.staff_email,
        sms_sender: None,
        created_at: now,
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO organisations (id, name, kind, time_zone, opening_hours, staff_email, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(org.id)
        .bind(&org.name)
        .bind(org.kind)
        .bind(&org.time_zone)
        .bind(sqlx::types::Json(&org.opening_hours))
        .bind(&org.staff_email)
        .bind(org.created_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(org)
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<Organisation> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, name, kind, time_zone, opening_hours, staff_email, sms_sender, created_at FROM organisations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("organisation"))
}

pub async fn list(tx: &mut Tx) -> Result<Vec<Organisation>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, name, kind, time_zone, opening_hours, staff_email, sms_sender, created_at FROM organisations ORDER BY name, id",
        )
        .fetch_all(c)
        .await?
    }))
}

pub async fn update(tx: &mut Tx, id: Id, update: OrganisationUpdate) -> Result<Organisation> {
    let mut org = get(tx, id).await?;
    let mut v = Violations::default();
    if let Some(name) = update.name {
        validate_name(&name, &mut v);
        org.name = name.trim().to_owned();
    }
    if let Some(tz) = update.time_zone {
        validate_time_zone(&tz, &mut v);
        org.time_zone = tz;
    }
    if let Some(hours) = update.opening_hours {
        hours.validate("opening_hours", &mut v);
        org.opening_hours = hours;
    }
    if let Some(email) = update.staff_email {
        if let Some(e) = &email {
            validate_email("staff_email", e, &mut v);
        }
        org.staff_email = email;
    }
    if let Some(sender) = update.sms_sender {
        if let Some(s) = &sender {
            validate_sms_sender(s, &mut v);
        }
        org.sms_sender = sender;
    }
    v.finish()?;
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE organisations SET name = $2, time_zone = $3, opening_hours = $4, staff_email = $5, sms_sender = $6 WHERE id = $1",
        )
        .bind(org.id)
        .bind(&org.name)
        .bind(&org.time_zone)
        .bind(sqlx::types::Json(&org.opening_hours))
        .bind(&org.staff_email)
        .bind(&org.sms_sender)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(org)
}

/// The organisation's contact policy as stored (JSON), or `None` for the defaults.
pub async fn policy(tx: &mut Tx, id: Id) -> Result<Option<serde_json::Value>> {
    let row: Option<Option<sqlx::types::Json<serde_json::Value>>> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT policy FROM organisations WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?
    });
    Ok(row.flatten().map(|j| j.0))
}

pub async fn set_policy(tx: &mut Tx, id: Id, policy: &serde_json::Value) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE organisations SET policy = $2 WHERE id = $1")
            .bind(id)
            .bind(sqlx::types::Json(policy))
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(json: &str) -> Vec<crate::FieldError> {
        let h: OpeningHours = serde_json::from_str(json).unwrap();
        let mut v = Violations::default();
        h.validate("opening_hours", &mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(Error::Invalid(e)) => e,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn opening_hours_must_be_ordered_and_not_overlap() {
        assert!(
            hours(
                r#"{"mon":[{"opens":"08:00","closes":"11:00"},{"opens":"12:00","closes":"15:30"}]}"#
            )
            .is_empty()
        );
        assert_eq!(
            hours(r#"{"tue":[{"opens":"16:00","closes":"08:00"}]}"#)[0].field,
            "opening_hours.tue[0]"
        );
        assert_eq!(
            hours(r#"{"wed":[{"opens":"8","closes":"16:00"}]}"#)[0].field,
            "opening_hours.wed[0]"
        );
        assert_eq!(
            hours(
                r#"{"fri":[{"opens":"08:00","closes":"12:00"},{"opens":"11:00","closes":"14:00"}]}"#
            )[0]
            .field,
            "opening_hours.fri"
        );
    }

    #[test]
    fn e_mail_addresses_are_checked_lightly() {
        for (email, ok) in [
            ("post@klinikk.no", true),
            ("post@klinikk", false),
            ("a b@x.no", false),
            ("@x.no", false),
        ] {
            let mut v = Violations::default();
            validate_email("staff_email", email, &mut v);
            assert_eq!(v.finish().is_ok(), ok, "{email}");
        }
    }
}
