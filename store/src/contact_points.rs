//! Contact points: the ways to reach one patient, each with its provenance (who told us, who
//! verified it and when), an optional expiry, and a status that learns — an acknowledgement
//! through it confirms it, a bounce or a returned letter marks it failed.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result, Violations};
use crate::id::Id;
use crate::organisations::{self, OrganisationKind};
use crate::phone;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The columns of a [`ContactPoint`], for `concat!` into each query: sqlx takes only static SQL.
macro_rules! contact_point_columns {
    () => {
        "id, patient_id, kind, phone, address, organisation_id, contact_name, relation, \
         consent_recorded, provenance, verified_by, verified_at, expires_at, status, \
         failure_reason, note, created_at, created_by, retired_at, retired_reason, \
         consent_given_by, consent_given_at, consent_scope"
    };
}
pub(crate) use contact_point_columns;

text_enum! {
    pub enum ContactKind {
        /// A mobile phone the patient gave (not from the national contact register).
        Sms = "sms",
        /// A verified postal address, often c/o a shelter or drop-in centre.
        Postal = "postal",
        /// Via a low-threshold service or home services that pass the message on.
        Relay = "relay",
        /// An outreach team that goes to find the person.
        Outreach = "outreach",
        /// A next of kin's phone, only with the patient's recorded consent.
        NextOfKin = "next_of_kin",
    }
}

text_enum! {
    pub enum Provenance {
        StatedByPatient = "stated_by_patient",
        VerifiedInPerson = "verified_in_person",
        PopulationRegister = "population_register",
        FromNextOfKin = "from_next_of_kin",
    }
}

text_enum! {
    pub enum ContactStatus {
        /// Usable, not yet proven.
        Active = "active",
        /// An acknowledgement came through it.
        Confirmed = "confirmed",
        /// It bounced (undeliverable SMS, returned letter, "not seen").
        Failed = "failed",
        /// Staff took it out of use.
        Retired = "retired",
        /// The patient asked us to stop (an SMS "STOPP"): not used until a person decides.
        Paused = "paused",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostalAddress {
    /// Recipient and street lines as they go in the envelope window, c/o lines included.
    pub lines: Vec<String>,
    pub postal_code: String,
    pub place: String,
    /// ISO 3166 alpha-2; `NO` unless the address is abroad.
    pub country: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ContactPoint {
    pub id: Id,
    pub patient_id: Id,
    pub kind: ContactKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(flatten)]
    #[sqlx(json(nullable))]
    pub address: Option<PostalAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<Id>,
    /// The next of kin's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    pub consent_recorded: bool,
    pub provenance: Provenance,
    pub verified_by: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: ContactStatus,
    pub failure_reason: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub retired_at: Option<DateTime<Utc>>,
    pub retired_reason: Option<String>,
    /// Next of kin: who gave consent (usually the patient), when, and for what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_given_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_given_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_scope: Option<String>,
}

/// What a next of kin may be asked, and nothing more: no appointment details ever.
pub const NEXT_OF_KIN_SCOPE: &str = "ask the patient to call us";

impl ContactPoint {
    /// Whether a contact plan may use it now: not failed or retired, and not expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.status,
            ContactStatus::Active | ContactStatus::Confirmed
        ) && self.expires_at.is_none_or(|e| e > now)
    }
}

/// The body of "add a contact point": `kind` decides which of the other fields are needed.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactPoint {
    pub kind: ContactKind,
    pub provenance: Provenance,
    /// sms, next_of_kin; relay (optional): a line to call the patient through the service.
    pub phone: Option<String>,
    /// postal
    pub lines: Option<Vec<String>>,
    pub postal_code: Option<String>,
    pub place: Option<String>,
    pub country: Option<String>,
    /// relay, outreach
    pub organisation_id: Option<Id>,
    /// next_of_kin
    pub contact_name: Option<String>,
    pub relation: Option<String>,
    #[serde(default)]
    pub consent_recorded: bool,
    /// next_of_kin: who gave consent, e.g. "the patient, to nurse Kari Nordmann".
    pub consent_given_by: Option<String>,
    /// next_of_kin: when consent was given; defaults to now.
    pub consent_given_at: Option<DateTime<Utc>>,
    /// Who verified it; defaults to the caller for `verified_in_person`.
    pub verified_by: Option<String>,
    /// When it was verified; defaults to now for `verified_in_person` and `population_register`.
    pub verified_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

fn require<'a>(
    v: &mut Violations,
    value: &'a Option<String>,
    field: &str,
    kind: ContactKind,
    what: &str,
) -> Option<&'a str> {
    match value.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Some(s),
        _ => {
            v.add(field, format!("a {kind} contact point needs {what}"));
            None
        }
    }
}

fn forbid<T>(v: &mut Violations, value: &Option<T>, field: &str, kind: ContactKind) {
    if value.is_some() {
        v.add(
            field,
            format!("does not belong on a {kind} contact point; leave it out"),
        );
    }
}

fn validate_address(new: &NewContactPoint, v: &mut Violations) -> Option<PostalAddress> {
    let kind = ContactKind::Postal;
    let country = new.country.as_deref().unwrap_or("NO").trim().to_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        v.add("country", "use a two-letter ISO country code, e.g. NO");
    }
    let lines: Vec<String> = new
        .lines
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|l| l.trim().to_owned())
        .collect();
    if lines.is_empty() || lines.len() > 5 {
        v.add(
            "lines",
            "give 1–5 address lines: recipient, c/o if any, street",
        );
    }
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() || line.chars().count() > 60 {
            v.add(
                format!("lines[{i}]"),
                "each line needs 1–60 characters (what fits the envelope window)",
            );
        }
    }
    let postal_code =
        require(v, &new.postal_code, "postal_code", kind, "a postal_code").map(str::to_owned);
    if let Some(code) = &postal_code
        && country == "NO"
        && !(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()))
    {
        v.add(
            "postal_code",
            "a Norwegian postal code has exactly 4 digits, e.g. 0155",
        );
    }
    let place = require(v, &new.place, "place", kind, "a place (poststed)").map(str::to_uppercase);
    Some(PostalAddress {
        lines,
        postal_code: postal_code?,
        place: place?,
        country,
    })
}

/// Adds a contact point after checking it against its kind's rules. A relay or outreach contact
/// point also shares the patient with that organisation, so its staff can act on it.
pub async fn add(
    tx: &mut Tx,
    patient_id: Id,
    new: NewContactPoint,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<ContactPoint> {
    let mut v = Violations::default();
    let kind = new.kind;
    let mut cp = ContactPoint {
        id: Id::new(now),
        patient_id,
        kind,
        phone: None,
        address: None,
        organisation_id: None,
        contact_name: None,
        relation: None,
        consent_recorded: new.consent_recorded,
        provenance: new.provenance,
        verified_by: new
            .verified_by
            .clone()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        verified_at: new.verified_at,
        expires_at: new.expires_at,
        status: ContactStatus::Active,
        failure_reason: None,
        note: new
            .note
            .clone()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        created_at: now,
        created_by: created_by.to_owned(),
        retired_at: None,
        retired_reason: None,
        consent_given_by: None,
        consent_given_at: None,
        consent_scope: None,
    };
    let phone_use = match kind {
        ContactKind::Sms => Some(phone::Use::Sms),
        ContactKind::NextOfKin => Some(phone::Use::Call),
        _ => None,
    };
    if let Some(usage) = phone_use {
        if let Some(raw) = require(&mut v, &new.phone, "phone", kind, "a phone number") {
            match phone::normalise(raw, usage) {
                Ok(e164) => cp.phone = Some(e164),
                Err(why) => v.add("phone", why),
            }
        }
    } else if kind == ContactKind::Relay {
        // Optional: the line where the service can reach the patient (its own, or one it
        // passes calls through); with it, the relay request is done by phone.
        if let Some(raw) = new
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match phone::normalise(raw, phone::Use::Call) {
                Ok(e164) => cp.phone = Some(e164),
                Err(why) => v.add("phone", why),
            }
        }
    } else {
        forbid(&mut v, &new.phone, "phone", kind);
    }
    if kind == ContactKind::Postal {
        cp.address = validate_address(&new, &mut v);
    } else {
        forbid(&mut v, &new.lines, "lines", kind);
        forbid(&mut v, &new.postal_code, "postal_code", kind);
        forbid(&mut v, &new.place, "place", kind);
        forbid(&mut v, &new.country, "country", kind);
    }
    if matches!(kind, ContactKind::Relay | ContactKind::Outreach) {
        match new.organisation_id {
            None => v.add("organisation_id", format!("a {kind} contact point needs the organisation_id of the service that reaches the patient")),
            Some(org_id) => match organisations::get(tx, org_id).await {
                Ok(org) => {
                    let fits = match kind {
                        ContactKind::Relay => matches!(org.kind, OrganisationKind::LowThresholdService | OrganisationKind::HomeServices),
                        _ => matches!(org.kind, OrganisationKind::OutreachTeam | OrganisationKind::HomeServices),
                    };
                    if fits {
                        cp.organisation_id = Some(org_id);
                    } else {
                        let wanted = if kind == ContactKind::Relay { "a low_threshold_service or home_services" } else { "an outreach_team or home_services" };
                        v.add("organisation_id", format!("this organisation is a {}; a {kind} contact point needs {wanted}", org.kind));
                    }
                }
                Err(Error::NotFound(_)) => v.add("organisation_id", "no organisation has this id; see GET /api/v1/organisations"),
                Err(e) => return Err(e),
            },
        }
    } else {
        forbid(&mut v, &new.organisation_id, "organisation_id", kind);
    }
    if kind == ContactKind::NextOfKin {
        cp.contact_name = require(
            &mut v,
            &new.contact_name,
            "contact_name",
            kind,
            "the next of kin's name",
        )
        .map(str::to_owned);
        cp.relation = new
            .relation
            .clone()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if !new.consent_recorded {
            v.add("consent_recorded", "a next of kin may only be contacted with the patient's consent; record it and set consent_recorded to true");
        }
        cp.consent_given_by = require(
            &mut v,
            &new.consent_given_by,
            "consent_given_by",
            kind,
            "who gave consent (e.g. \"the patient, to nurse Kari Nordmann\")",
        )
        .map(str::to_owned);
        let at = new.consent_given_at.unwrap_or(now);
        if at > now {
            v.add("consent_given_at", "cannot be in the future");
        }
        cp.consent_given_at = Some(at);
        cp.consent_scope = Some(NEXT_OF_KIN_SCOPE.to_owned());
    } else {
        forbid(&mut v, &new.contact_name, "contact_name", kind);
        forbid(&mut v, &new.relation, "relation", kind);
        forbid(&mut v, &new.consent_given_by, "consent_given_by", kind);
        forbid(&mut v, &new.consent_given_at, "consent_given_at", kind);
    }
    match new.provenance {
        Provenance::VerifiedInPerson => {
            cp.verified_by.get_or_insert_with(|| created_by.to_owned());
            cp.verified_at.get_or_insert(now);
        }
        Provenance::PopulationRegister => {
            cp.verified_at.get_or_insert(now);
        }
        Provenance::StatedByPatient | Provenance::FromNextOfKin => {}
    }
    if cp.verified_at.is_some_and(|t| t > now) {
        v.add("verified_at", "cannot be in the future");
    }
    if cp.expires_at.is_some_and(|t| t <= now) {
        v.add(
            "expires_at",
            "is already past; leave it out or give a future time",
        );
    }
    v.finish()?;

    if let Some(existing) = find_same(tx, &cp).await? {
        return Err(Error::Conflict(format!(
            "the patient already has this {kind} contact point in use: {existing}; retire it first to replace it"
        )));
    }
    let address_json = cp.address.as_ref().map(sqlx::types::Json);
    let postal_code = cp.address.as_ref().map(|a| a.postal_code.clone());
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO contact_points (id, patient_id, kind, phone, address, postal_code, organisation_id,
                 contact_name, relation, consent_recorded, provenance, verified_by, verified_at, expires_at,
                 status, note, created_at, created_by, consent_given_by, consent_given_at, consent_scope)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(cp.id)
        .bind(cp.patient_id)
        .bind(cp.kind)
        .bind(&cp.phone)
        .bind(address_json)
        .bind(&postal_code)
        .bind(cp.organisation_id)
        .bind(&cp.contact_name)
        .bind(&cp.relation)
        .bind(cp.consent_recorded)
        .bind(cp.provenance)
        .bind(&cp.verified_by)
        .bind(cp.verified_at)
        .bind(cp.expires_at)
        .bind(cp.status)
        .bind(&cp.note)
        .bind(cp.created_at)
        .bind(&cp.created_by)
        .bind(&cp.consent_given_by)
        .bind(cp.consent_given_at)
        .bind(&cp.consent_scope)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(cp)
}

/// An active or confirmed contact point of the same patient that reaches the same place.
async fn find_same(tx: &mut Tx, cp: &ContactPoint) -> Result<Option<Id>> {
    let existing = list(tx, cp.patient_id).await?;
    Ok(existing
        .into_iter()
        .find(|e| {
            matches!(e.status, ContactStatus::Active | ContactStatus::Confirmed)
                && e.kind == cp.kind
                && e.phone == cp.phone
                && e.address == cp.address
                && e.organisation_id == cp.organisation_id
        })
        .map(|e| e.id))
}

/// All of a patient's contact points, retired ones included, oldest first.
pub async fn list(tx: &mut Tx, patient_id: Id) -> Result<Vec<ContactPoint>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            contact_point_columns!(),
            " FROM contact_points WHERE patient_id = $1 ORDER BY id"
        ))
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// The patient withdrew consent to contact a next of kin: the contact point is retired at once.
pub async fn withdraw_consent(
    tx: &mut Tx,
    patient_id: Id,
    id: Id,
    now: DateTime<Utc>,
) -> Result<ContactPoint> {
    let cp = get(tx, id).await?;
    if cp.patient_id != patient_id {
        return Err(Error::NotFound("contact point"));
    }
    if cp.kind != ContactKind::NextOfKin {
        return Err(Error::Conflict(format!(
            "consent belongs to next-of-kin contact points; this one is {}: retire it instead",
            cp.kind
        )));
    }
    retire(
        tx,
        patient_id,
        id,
        "the patient withdrew consent to contact this next of kin",
        now,
    )
    .await
}

/// Takes a contact point out of use, keeping it (and why) for the record.
pub async fn retire(
    tx: &mut Tx,
    patient_id: Id,
    id: Id,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<ContactPoint> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid(
            "reason",
            "say why the contact point is retired (1–500 characters), e.g. \"patient moved out of the shelter\"",
        ));
    }
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE contact_points SET status = 'retired', retired_at = $3, retired_reason = $4
             WHERE id = $1 AND patient_id = $2 AND status <> 'retired'",
        )
        .bind(id)
        .bind(patient_id)
        .bind(now)
        .bind(reason)
        .execute(c)
        .await?
        .rows_affected()
    });
    let all = list(tx, patient_id).await?;
    let cp = all
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound("contact point"))?;
    if changed == 0 {
        return Err(Error::Conflict(
            "this contact point is already retired".into(),
        ));
    }
    Ok(cp)
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<ContactPoint> {
    on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            contact_point_columns!(),
            " FROM contact_points WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("contact point"))
}

/// An acknowledgement came through it: it works. A failed one is confirmed again too — the
/// patient evidently has the phone back.
pub async fn confirm(tx: &mut Tx, id: Id) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE contact_points SET status = 'confirmed', failure_reason = NULL
             WHERE id = $1 AND status IN ('active', 'failed', 'confirmed')",
        )
        .bind(id)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// It bounced (an undeliverable SMS, a returned letter, "not seen"): plans skip it from now on.
pub async fn mark_failed(tx: &mut Tx, id: Id, reason: &str) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE contact_points SET status = 'failed', failure_reason = $2 WHERE id = $1 AND status IN ('active', 'confirmed')",
        )
        .bind(id)
        .bind(reason)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// The live SMS contact points with this number (a patient may share a phone with others).
pub async fn by_phone(tx: &mut Tx, phone: &str) -> Result<Vec<ContactPoint>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            concat!("SELECT ", contact_point_columns!(), " FROM contact_points WHERE phone = $1 AND kind = 'sms' AND status <> 'retired' ORDER BY id"),
        )
        .bind(phone)
        .fetch_all(c)
        .await?
    }))
}

/// The patient asked us to stop sending SMS to this number.
pub async fn pause(tx: &mut Tx, id: Id, reason: &str) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE contact_points SET status = 'paused', failure_reason = $2 WHERE id = $1 AND status IN ('active', 'confirmed', 'failed')",
        )
        .bind(id)
        .bind(reason)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}
