//! Patients and the organisations they are shared with.
//!
//! A patient is visible to an organisation only through a share: the clinic that registered
//! them, and the low-threshold services and outreach teams that help reach them. Everything else
//! answers "not found", so an organisation cannot learn that a person is a patient elsewhere.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result, Violations};
use crate::id::Id;
use crate::national_id;
use crate::staff;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Patient {
    pub id: Id,
    pub name: String,
    pub birth_date: Option<NaiveDate>,
    pub birth_year: i32,
    /// ISO 639 language code: nb, nn, en, se (Northern Sami), …
    pub language: String,
    /// What helps reach the person, as they agreed to it ("usually at the day centre on Tuesdays").
    pub contact_notes: String,
    /// Fødselsnummer or D-number, when known.
    pub national_id: Option<String>,
    /// The staff member who is the patient's koordinator.
    pub coordinator_id: Option<Id>,
    pub created_by_organisation_id: Id,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    pub name: String,
    /// Either the birth year or the full birth date (`YYYY-MM-DD`) must be given.
    pub birth_year: Option<i32>,
    pub birth_date: Option<NaiveDate>,
    /// Defaults to `nb` (bokmål).
    pub language: Option<String>,
    #[serde(default)]
    pub contact_notes: String,
    pub national_id: Option<String>,
    pub coordinator_id: Option<Id>,
}

/// A partial update: fields left out stay as they are; `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientUpdate {
    pub name: Option<String>,
    pub birth_year: Option<i32>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birth_date: Option<Option<NaiveDate>>,
    pub language: Option<String>,
    pub contact_notes: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub national_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Id>)]
    pub coordinator_id: Option<Option<Id>>,
}

/// Tells "field left out" (`None`) from "field set to null" (`Some(None)`) in a partial update.
pub fn double_option<'de, T, D>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Search and paging for [`list`]. Ids grow with creation time, so the cursor is the last id
/// of the previous page.
#[derive(Debug, Clone, Default)]
pub struct PatientFilter {
    pub name_contains: Option<String>,
    pub birth_year: Option<i32>,
    pub after: Option<Id>,
    pub limit: u32,
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn validate_language(lang: &str, v: &mut Violations) {
    let ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
    if !ok {
        v.add(
            "language",
            "use a two- or three-letter ISO 639 code in lower case: nb, nn, en, se, …",
        );
    }
}

/// The rules shared by create and update, on the state the patient would end up in.
async fn validate(tx: &mut Tx, p: &Patient, now: DateTime<Utc>, v: &mut Violations) -> Result<()> {
    let chars = p.name.chars().count();
    if chars == 0 || chars > 200 {
        v.add("name", "give the patient's name (1–200 characters)");
    }
    if p.birth_year < 1900 || p.birth_year > now.year() {
        v.add(
            "birth_year",
            format!("must be between 1900 and {}", now.year()),
        );
    }
    if let Some(date) = p.birth_date {
        if date > now.date_naive() {
            v.add("birth_date", "cannot be in the future");
        } else if date.year() != p.birth_year {
            v.add("birth_date", "does not match birth_year");
        }
    }
    validate_language(&p.language, v);
    if p.contact_notes.chars().count() > 2000 {
        v.add("contact_notes", "keep contact notes under 2000 characters");
    }
    if let Some(nid) = &p.national_id
        && let Err(why) = national_id::validate(nid)
    {
        v.add("national_id", why);
    }
    if let Some(coordinator) = p.coordinator_id {
        match staff::get_staff(tx, coordinator).await {
            Ok(_) => {}
            Err(Error::NotFound(_)) => v.add("coordinator_id", "no staff member has this id"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub async fn create(
    tx: &mut Tx,
    organisation_id: Id,
    new: NewPatient,
    now: DateTime<Utc>,
) -> Result<Patient> {
    let mut v = Violations::default();
    let birth_year = match (new.birth_year, new.birth_date) {
        (Some(y), _) => y,
        (None, Some(d)) => d.year(),
        (None, None) => {
            v.add(
                "birth_year",
                "give birth_year (or birth_date) so staff can tell people with the same name apart",
            );
            0
        }
    };
    let patient = Patient {
        id: Id::new(now),
        name: new.name.trim().to_owned(),
        birth_date: new.birth_date,
        birth_year,
        language: new.language.unwrap_or_else(|| "nb".into()),
        contact_notes: new.contact_notes.trim().to_owned(),
        national_id: new.national_id.map(|n| n.trim().to_owned()),
        coordinator_id: new.coordinator_id,
        created_by_organisation_id: organisation_id,
        created_at: now,
        updated_at: now,
    };
    let mut rules = Violations::default();
    validate(tx, &patient, now, &mut rules).await?;
    // Without a birth year the range rule would report the same field twice.
    v.extend(
        rules
            .into_vec()
            .into_iter()
            .filter(|e| birth_year != 0 || e.field != "birth_year")
            .collect(),
    );
    v.finish()?;
    if let Some(nid) = &patient.national_id
        && let Some(existing) = find_by_national_id(tx, organisation_id, nid).await?
    {
        return Err(Error::Conflict(format!(
            "a patient with this national id is already registered here: {existing}"
        )));
    }
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO patients (id, name, name_search, birth_date, birth_year, language, contact_notes,
                                   national_id, coordinator_id, created_by_organisation_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(patient.id)
        .bind(&patient.name)
        .bind(name_key(&patient.name))
        .bind(patient.birth_date)
        .bind(patient.birth_year)
        .bind(&patient.language)
        .bind(&patient.contact_notes)
        .bind(&patient.national_id)
        .bind(patient.coordinator_id)
        .bind(patient.created_by_organisation_id)
        .bind(patient.created_at)
        .bind(patient.updated_at)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    share(tx, patient.id, organisation_id, now).await?;
    Ok(patient)
}

async fn find_by_national_id(
    tx: &mut Tx,
    organisation_id: Id,
    national_id: &str,
) -> Result<Option<Id>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT p.id FROM patients p JOIN patient_shares s ON s.patient_id = p.id
             WHERE s.organisation_id = $1 AND p.national_id = $2 LIMIT 1",
        )
        .bind(organisation_id)
        .bind(national_id)
        .fetch_optional(c)
        .await?
    }))
}

/// The patient, whoever may see them (for the engine; requests use [`get_visible`]).
pub async fn get(tx: &mut Tx, id: Id) -> Result<Patient> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, name, birth_date, birth_year, language, contact_notes, national_id, coordinator_id,
                    created_by_organisation_id, created_at, updated_at
             FROM patients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("patient"))
}

/// The patient, if it is shared with `organisation_id`; otherwise "not found".
pub async fn get_visible(tx: &mut Tx, organisation_id: Id, id: Id) -> Result<Patient> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT p.id, p.name, p.birth_date, p.birth_year, p.language, p.contact_notes, p.national_id,
                    p.coordinator_id, p.created_by_organisation_id, p.created_at, p.updated_at
             FROM patients p JOIN patient_shares s ON s.patient_id = p.id
             WHERE p.id = $1 AND s.organisation_id = $2",
        )
        .bind(id)
        .bind(organisation_id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("patient"))
}

/// One page of the patients shared with `organisation_id`, oldest first, and whether more follow.
pub async fn list(
    tx: &mut Tx,
    organisation_id: Id,
    filter: &PatientFilter,
) -> Result<(Vec<Patient>, bool)> {
    let pattern = match &filter.name_contains {
        Some(q) => {
            let escaped = name_key(q)
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        }
        None => "%".to_owned(),
    };
    let after = filter.after.unwrap_or(Id(Uuid::nil()));
    let limit = i64::from(filter.limit.clamp(1, 200));
    let mut rows: Vec<Patient> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT p.id, p.name, p.birth_date, p.birth_year, p.language, p.contact_notes, p.national_id,
                    p.coordinator_id, p.created_by_organisation_id, p.created_at, p.updated_at
             FROM patients p JOIN patient_shares s ON s.patient_id = p.id
             WHERE s.organisation_id = $1 AND p.id > $2 AND p.name_search LIKE $3 ESCAPE '\\'
               AND ($4 IS NULL OR p.birth_year = $4)
             ORDER BY p.id LIMIT $5",
        )
        .bind(organisation_id)
        .bind(after)
        .bind(&pattern)
        .bind(filter.birth_year)
        .bind(limit + 1)
        .fetch_all(c)
        .await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// The patients this staff member is koordinator for, by name.
pub async fn coordinated_by(tx: &mut Tx, staff_id: Id, limit: i64) -> Result<Vec<Patient>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, name, birth_date, birth_year, language, contact_notes, national_id, coordinator_id,
                    created_by_organisation_id, created_at, updated_at
             FROM patients WHERE coordinator_id = $1 ORDER BY name_search, id LIMIT $2",
        )
        .bind(staff_id)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

pub async fn update(
    tx: &mut Tx,
    organisation_id: Id,
    id: Id,
    update: PatientUpdate,
    now: DateTime<Utc>,
) -> Result<Patient> {
    let mut p = get_visible(tx, organisation_id, id).await?;
    if let Some(name) = update.name {
        p.name = name.trim().to_owned();
    }
    if let Some(date) = update.birth_date {
        p.birth_date = date;
        if let (Some(d), None) = (date, update.birth_year) {
            p.birth_year = d.year();
        }
    }
    if let Some(year) = update.birth_year {
        p.birth_year = year;
    }
    if let Some(lang) = update.language {
        p.language = lang;
    }
    if let Some(notes) = update.contact_notes {
        p.contact_notes = notes.trim().to_owned();
    }
    if let Some(nid) = update.national_id {
        p.national_id = nid.map(|n| n.trim().to_owned());
    }
    if let Some(coordinator) = update.coordinator_id {
        p.coordinator_id = coordinator;
    }
    p.updated_at = now;
    let mut v = Violations::default();
    validate(tx, &p, now, &mut v).await?;
    v.finish()?;
    if let Some(nid) = &p.national_id
        && let Some(existing) = find_by_national_id(tx, organisation_id, nid).await?
        && existing != p.id
    {
        return Err(Error::Conflict(format!(
            "another patient registered here has this national id: {existing}"
        )));
    }
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE patients SET name = $2, name_search = $3, birth_date = $4, birth_year = $5, language = $6,
                    contact_notes = $7, national_id = $8, coordinator_id = $9, updated_at = $10
             WHERE id = $1",
        )
        .bind(p.id)
        .bind(&p.name)
        .bind(name_key(&p.name))
        .bind(p.birth_date)
        .bind(p.birth_year)
        .bind(&p.language)
        .bind(&p.contact_notes)
        .bind(&p.national_id)
        .bind(p.coordinator_id)
        .bind(p.updated_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(p)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Share {
    pub organisation_id: Id,
    pub created_at: DateTime<Utc>,
}

/// Shares the patient with an organisation; sharing twice is harmless. Returns true when the
/// share is new.
pub async fn share(
    tx: &mut Tx,
    patient_id: Id,
    organisation_id: Id,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO patient_shares (patient_id, organisation_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (patient_id, organisation_id) DO NOTHING",
        )
        .bind(patient_id)
        .bind(organisation_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

pub async fn shares(tx: &mut Tx, patient_id: Id) -> Result<Vec<Share>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT organisation_id, created_at FROM patient_shares WHERE patient_id = $1 ORDER BY created_at",
        )
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// Makes a staff member the patient's coordinator (a hand-over accepted).
pub async fn set_coordinator(tx: &mut Tx, id: Id, staff_id: Id, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE patients SET coordinator_id = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(staff_id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(())
}
