//! Administrasjon (`/staff/admin…`): the admin's pages. The organisation's own details, its
//! staff and their logins, the contact policy and the message texts — everything the admin
//! routes of the API do, as forms. Each page calls the same store, engine and catalogue
//! functions as the API handler it mirrors, so the two cannot disagree: the policy is checked
//! by [`Policy::problems`], a text by [`Catalog::validate`](kontaktvei_templates::Catalog),
//! an organisation and a staff member by the store. Those checks speak English to API
//! clients; here each field's problem is said again in bokmål, next to the field, with how to
//! fix it. A form with a mistake is shown again as typed (a password excepted) with status
//! 422, and nothing of it is stored; a saved form redirects (303). Every change is audited in
//! its own transaction, with the session's staff member as the actor.

use super::start::staff_context;
use super::{CsrfForm, Page, StaffSession, WebError, role_label};
use crate::api::roles;
use crate::context::AppContext;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveTime;
use kontaktvei_channels::ChannelKind;
use kontaktvei_scheduler::Policy;
use kontaktvei_store::accounts;
use kontaktvei_store::organisations::{
    self, Interval, OpeningHours, Organisation, OrganisationKind, OrganisationUpdate,
};
use kontaktvei_store::staff::{self, EmailDigest, NewStaff, Role, Staff};
use kontaktvei_store::template_overrides::{self, TemplateOverride};
use kontaktvei_store::{FieldError, Id, Tx};
use kontaktvei_templates::variables::Presence;
use kontaktvei_templates::{
    Channel, Kind, Lang, Problem, ProblemKind, Rendered, TemplateKey, TemplateVersion,
};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// This module's page templates (name, source), compiled with the others in [`super::layout`].
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin/_summary.html",
        include_str!("templates/admin/_summary.html"),
    ),
    (
        "admin/index.html",
        include_str!("templates/admin/index.html"),
    ),
    (
        "admin/organisations.html",
        include_str!("templates/admin/organisations.html"),
    ),
    (
        "admin/staff.html",
        include_str!("templates/admin/staff.html"),
    ),
    (
        "admin/policy.html",
        include_str!("templates/admin/policy.html"),
    ),
    (
        "admin/templates.html",
        include_str!("templates/admin/templates.html"),
    ),
    (
        "admin/template.html",
        include_str!("templates/admin/template.html"),
    ),
];

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/staff/admin", get(index))
        .route(
            "/staff/admin/organisasjoner",
            get(organisations_page).post(save_organisation),
        )
        .route("/staff/admin/ansatte", get(staff_page).post(add_staff))
        .route("/staff/admin/ansatte/{id}/innlogging", post(set_login))
        .route("/staff/admin/regler", get(policy_page).post(save_policy))
        .route("/staff/admin/maler", get(template_list))
        .route(
            "/staff/admin/maler/{key}/{lang}",
            get(template_page).post(template_action),
        )
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/// Only admins (as the API's admin routes).
fn require_admin(session: &StaffSession) -> Result<(), WebError> {
    if roles::ADMIN.roles.contains(&session.role) {
        Ok(())
    } else {
        Err(WebError::Refused(
            "Administrasjonssidene er bare for administratorer. Spør en administrator i virksomheten din hvis noe skal endres."
                .into(),
        ))
    }
}

/// Writes an allowed audit row for a change, in the change's transaction.
async fn record(
    ctx: &AppContext,
    tx: &mut Tx,
    session: &StaffSession,
    action: &str,
    subject: Option<Id>,
) -> Result<(), WebError> {
    session.audit(ctx, tx, action, None, subject).await
}

/// Problems with a form, by field id, each in bokmål; the first one for a field wins.
#[derive(Debug, Default)]
struct Errors(Vec<(String, String)>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if !self.0.iter().any(|(f, _)| *f == field) {
            self.0.push((field, message.into()));
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }

    /// Every field of the form with its message or none (the templates test each one, and a
    /// missing name would be an error), and the list for the summary at the top, in form order.
    /// `fields` are (id, label) in form order; `suffix` is added to each id in the summary's
    /// links (the login forms repeat per person).
    fn context(&self, fields: &[(&str, &str)], suffix: &str) -> (Value, Vec<Value>) {
        let by_field: BTreeMap<&str, Option<&str>> = fields
            .iter()
            .map(|(f, _)| {
                let message = self.0.iter().find(|(g, _)| g == f).map(|(_, m)| m.as_str());
                (*f, message)
            })
            .collect();
        let mut summary: Vec<Value> = Vec::new();
        for (f, label) in fields {
            if let Some((_, m)) = self.0.iter().find(|(g, _)| g == f) {
                summary.push(context! {
                    field => format!("{f}{suffix}"),
                    message => format!("{label}: {m}"),
                });
            }
        }
        // A problem on a field the form does not show (should not happen) still reaches the top.
        for (f, m) in &self.0 {
            if !fields.iter().any(|(g, _)| g == f) {
                summary.push(context! { field => Value::from(()), message => m });
            }
        }
        (Value::from(Serde(&by_field)), summary)
    }
}

/// "Finnes ikke" for a page under /staff/admin.
fn not_found(text: &str, back: (&str, &str)) -> Response {
    Page::message(StatusCode::NOT_FOUND, "Finnes ikke", text, back).into_response()
}

/// What a redirect after a save says on the page it lands on.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Done {
    lagret: Option<String>,
    ny: Option<String>,
    innlogging: Option<String>,
    tilbakestilt: Option<String>,
}

pub async fn index(session: StaffSession) -> Result<Page, WebError> {
    require_admin(&session)?;
    let links = [
        (
            "/staff/admin/organisasjoner",
            "Organisasjoner",
            "Alle virksomhetene i kontaktvei, og navn, tidssone, åpningstider, e-post og SMS-avsender for deres egen.",
        ),
        (
            "/staff/admin/ansatte",
            "Ansatte og innlogging",
            "Legg til ansatte, og gi dem brukernavn og passord til disse sidene.",
        ),
        (
            "/staff/admin/regler",
            "Kontaktregler",
            "Rekkefølgen på kanalene, hvor lenge hvert steg venter, stilletid, utskriftsfrist og ord som ikke skal stå i meldingene.",
        ),
        (
            "/staff/admin/maler",
            "Meldingsmaler",
            "Tekstene i SMS, brev og beskjeder: se, endre, forhåndsvis og gå tilbake til standardteksten.",
        ),
    ]
    .map(|(href, label, about)| context! { href, label, about });
    Ok(Page::new(
        "admin/index.html",
        context! { title => "Administrasjon", links => links.to_vec(), ..staff_context(&session) },
    ))
}

// ---------------------------------------------------------------------------------------------
// Organisations

fn kind_label(kind: OrganisationKind) -> &'static str {
    match kind {
        OrganisationKind::Clinic => "klinikk / poliklinikk",
        OrganisationKind::LowThresholdService => "lavterskeltilbud",
        OrganisationKind::OutreachTeam => "oppsøkende team",
        OrganisationKind::HomeServices => "hjemmetjenesten",
    }
}

const DAYS: [(&str, &str); 7] = [
    ("mon", "Mandag"),
    ("tue", "Tirsdag"),
    ("wed", "Onsdag"),
    ("thu", "Torsdag"),
    ("fri", "Fredag"),
    ("sat", "Lørdag"),
    ("sun", "Søndag"),
];

fn day_mut<'a>(hours: &'a mut OpeningHours, day: &str) -> &'a mut Vec<Interval> {
    match day {
        "mon" => &mut hours.mon,
        "tue" => &mut hours.tue,
        "wed" => &mut hours.wed,
        "thu" => &mut hours.thu,
        "fri" => &mut hours.fri,
        "sat" => &mut hours.sat,
        _ => &mut hours.sun,
    }
}

fn day_ref<'a>(hours: &'a OpeningHours, day: &str) -> &'a Vec<Interval> {
    match day {
        "mon" => &hours.mon,
        "tue" => &hours.tue,
        "wed" => &hours.wed,
        "thu" => &hours.thu,
        "fri" => &hours.fri,
        "sat" => &hours.sat,
        _ => &hours.sun,
    }
}

/// The organisation form as typed. Opening hours: one field a day, "08:00–15:30, 17:00–19:00".
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct OrgForm {
    name: String,
    time_zone: String,
    staff_email: String,
    sms_sender: String,
    hours_mon: String,
    hours_tue: String,
    hours_wed: String,
    hours_thu: String,
    hours_fri: String,
    hours_sat: String,
    hours_sun: String,
}

impl OrgForm {
    fn of(org: &Organisation) -> OrgForm {
        let day = |d: &str| {
            day_ref(&org.opening_hours, d)
                .iter()
                .map(|i| format!("{}–{}", i.opens, i.closes))
                .collect::<Vec<_>>()
                .join(", ")
        };
        OrgForm {
            name: org.name.clone(),
            time_zone: org.time_zone.clone(),
            staff_email: org.staff_email.clone().unwrap_or_default(),
            sms_sender: org.sms_sender.clone().unwrap_or_default(),
            hours_mon: day("mon"),
            hours_tue: day("tue"),
            hours_wed: day("wed"),
            hours_thu: day("thu"),
            hours_fri: day("fri"),
            hours_sat: day("sat"),
            hours_sun: day("sun"),
        }
    }

    fn hours_text(&self, day: &str) -> &str {
        match day {
            "mon" => &self.hours_mon,
            "tue" => &self.hours_tue,
            "wed" => &self.hours_wed,
            "thu" => &self.hours_thu,
            "fri" => &self.hours_fri,
            "sat" => &self.hours_sat,
            _ => &self.hours_sun,
        }
    }
}

const HOURS_FORMAT: &str = "Skriv tidsrommet som 08:00–15:30, og skill flere tidsrom med komma. La feltet stå tomt de dagene dere har stengt.";

/// The week's hours as typed; days that could not be read get an error and stay as they were.
fn parse_hours(form: &OrgForm, errors: &mut Errors) -> Option<OpeningHours> {
    let mut hours = OpeningHours::default();
    for (day, _) in DAYS {
        for part in form
            .hours_text(day)
            .split([',', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part.split_once(['–', '-', '—']) {
                Some((opens, closes)) => day_mut(&mut hours, day).push(Interval {
                    opens: opens.trim().replace('.', ":"),
                    closes: closes.trim().replace('.', ":"),
                }),
                None => errors.add(format!("hours_{day}"), HOURS_FORMAT),
            }
        }
    }
    errors.is_empty().then_some(hours)
}

/// The store's (English) field errors about an organisation, said in bokmål on the form's fields.
fn org_errors(found: Vec<FieldError>, hours: Option<&OpeningHours>, errors: &mut Errors) {
    for e in found {
        match e.field.as_str() {
            "name" => errors.add("name", "Skriv navnet på virksomheten (1–200 tegn)."),
            "time_zone" => errors.add(
                "time_zone",
                "Dette er ikke en tidssone vi kjenner. Skriv den som Europe/Oslo.",
            ),
            "staff_email" => errors.add(
                "staff_email",
                "Dette er ikke en e-postadresse. Skriv den som navn@eksempel.no, eller la feltet stå tomt.",
            ),
            "sms_sender" => errors.add(
                "sms_sender",
                "Bruk opptil 11 bokstaver og sifre (f.eks. Timebok – da kan ingen svare på SMS-en) eller et nummer som 2270, som pasientene kan svare til. La feltet stå tomt for å bruke standardavsenderen.",
            ),
            other => {
                let Some(rest) = other.strip_prefix("opening_hours.") else {
                    errors.add(other, e.message);
                    continue;
                };
                let day = rest.split('[').next().unwrap_or(rest);
                let field = format!("hours_{day}");
                let index = rest
                    .split_once('[')
                    .and_then(|(_, i)| i.trim_end_matches(']').parse::<usize>().ok());
                let message = match index {
                    None => "Tidsrommene overlapper. Rett dem så de ikke går inn i hverandre, f.eks. 08:00–11:00, 12:00–15:30.",
                    Some(i) => {
                        let interval = hours.and_then(|h| day_ref(h, day).get(i));
                        let readable = interval.is_some_and(|i| {
                            NaiveTime::parse_from_str(&i.opens, "%H:%M").is_ok()
                                && NaiveTime::parse_from_str(&i.closes, "%H:%M").is_ok()
                        });
                        if readable {
                            "Åpningstiden må være før stengetiden, f.eks. 08:00–15:30."
                        } else {
                            "Skriv klokkeslettene som TT:MM, f.eks. 08:00–15:30."
                        }
                    }
                };
                errors.add(field, message);
            }
        }
    }
}

const ORG_FIELDS: &[(&str, &str)] = &[
    ("name", "Navn"),
    ("time_zone", "Tidssone"),
    ("staff_email", "E-post til de ansatte"),
    ("sms_sender", "SMS-avsender"),
    ("hours_mon", "Åpningstid mandag"),
    ("hours_tue", "Åpningstid tirsdag"),
    ("hours_wed", "Åpningstid onsdag"),
    ("hours_thu", "Åpningstid torsdag"),
    ("hours_fri", "Åpningstid fredag"),
    ("hours_sat", "Åpningstid lørdag"),
    ("hours_sun", "Åpningstid søndag"),
];

fn org_page(
    session: &StaffSession,
    all: &[Organisation],
    own: &Organisation,
    form: &OrgForm,
    errors: &Errors,
    saved: bool,
) -> Page {
    let (field_errors, summary) = errors.context(ORG_FIELDS, "");
    let rows: Vec<Value> = all
        .iter()
        .map(|o| {
            context! {
                name => o.name.clone(),
                kind => kind_label(o.kind),
                time_zone => o.time_zone.clone(),
                own => o.id == own.id,
            }
        })
        .collect();
    let days: Vec<Value> = DAYS
        .iter()
        .map(|(day, label)| {
            context! {
                id => format!("hours_{day}"),
                label => *label,
                value => form.hours_text(day),
            }
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let kind = own.kind;
    Page::new(
        "admin/organisations.html",
        context! {
            title => "Organisasjoner",
            rows,
            own_name => own.name.clone(),
            own_kind => kind_label(kind),
            relay_hours => matches!(kind, OrganisationKind::LowThresholdService | OrganisationKind::HomeServices),
            sends_sms => kind == OrganisationKind::Clinic,
            form => Value::from(Serde(form)),
            days,
            errors => field_errors,
            summary,
            saved,
            ..staff_context(session)
        },
    )
    .with_status(status)
}

async fn all_organisations(
    ctx: &AppContext,
    session: &StaffSession,
) -> Result<(Vec<Organisation>, Organisation), WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let all = organisations::list(&mut tx).await?;
    tx.commit().await?;
    let own = all
        .iter()
        .find(|o| o.id == session.organisation_id)
        .cloned()
        .ok_or(kontaktvei_store::Error::NotFound("organisation"))?;
    Ok((all, own))
}

pub async fn organisations_page(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Query(done): Query<Done>,
) -> Result<Page, WebError> {
    require_admin(&session)?;
    let (all, own) = all_organisations(&ctx, &session).await?;
    Ok(org_page(
        &session,
        &all,
        &own,
        &OrgForm::of(&own),
        &Errors::default(),
        done.lagret.is_some(),
    ))
}

/// Saves the admin's own organisation, as `PATCH /organisations/{id}` with every field.
pub async fn save_organisation(
    State(ctx): State<AppContext>,
    CsrfForm { session, form }: CsrfForm<OrgForm>,
) -> Result<Response, WebError> {
    require_admin(&session)?;
    let mut errors = Errors::default();
    let hours = parse_hours(&form, &mut errors);
    let optional = |s: &str| Some(Some(s.trim().to_owned()).filter(|s| !s.is_empty()));
    let update = OrganisationUpdate {
        name: Some(form.name.clone()),
        time_zone: Some(form.time_zone.trim().to_owned()),
        // Hours that could not be read are left out, so the store still checks the rest.
        opening_hours: hours.clone(),
        staff_email: optional(&form.staff_email),
        sms_sender: optional(&form.sms_sender),
    };
    let mut tx = ctx.store.begin().await?;
    match organisations::update(&mut tx, session.organisation_id, update).await {
        Ok(org) if errors.is_empty() => {
            record(&ctx, &mut tx, &session, "organisation.update", Some(org.id)).await?;
            tx.commit().await?;
            tracing::info!(organisation_id = %org.id, "organisation changed on the staff pages");
            return Ok(Redirect::to("/staff/admin/organisasjoner?lagret=1").into_response());
        }
        // Not stored: the transaction ends unfinished.
        Ok(_) => drop(tx),
        Err(kontaktvei_store::Error::Invalid(found)) => {
            drop(tx);
            org_errors(found, hours.as_ref(), &mut errors);
        }
        Err(e) => return Err(e.into()),
    }
    let (all, own) = all_organisations(&ctx, &session).await?;
    Ok(org_page(&session, &all, &own, &form, &errors, false).into_response())
}

// ---------------------------------------------------------------------------------------------
// Staff and logins

fn digest_label(d: EmailDigest) -> &'static str {
    match d {
        EmailDigest::Immediate => "straks",
        EmailDigest::Daily => "daglig oppsummering kl. 07.00",
        EmailDigest::Off => "av",
    }
}

/// The add-a-person form as typed.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct StaffForm {
    name: String,
    role: String,
    team_lead: Option<String>,
    email: String,
    email_digest: String,
}

impl Default for StaffForm {
    fn default() -> StaffForm {
        StaffForm {
            name: String::new(),
            role: Role::Clinic.as_str().to_owned(),
            team_lead: None,
            email: String::new(),
            email_digest: EmailDigest::Immediate.as_str().to_owned(),
        }
    }
}

const STAFF_FIELDS: &[(&str, &str)] = &[
    ("name", "Navn"),
    ("role", "Rolle"),
    ("email", "E-post"),
    ("email_digest", "E-post om nytt arbeid"),
];

/// A new login as typed. The password is never shown again, nor logged.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    username: String,
    password: String,
}

impl fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A login form shown again for one person, with what was wrong.
struct LoginAgain {
    staff_id: Id,
    username: String,
    errors: Errors,
}

async fn staff_list_page(
    ctx: &AppContext,
    session: &StaffSession,
    add: &StaffForm,
    add_errors: &Errors,
    login: Option<&LoginAgain>,
    done: &Done,
) -> Result<Page, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let people = staff::list_staff(&mut tx, session.organisation_id).await?;
    tx.commit().await?;
    let name_of = |id: Option<&String>| {
        id.and_then(|id| people.iter().find(|p| p.id.to_string() == *id))
            .map(|p| p.name.clone())
    };
    let notice = if let Some(name) = name_of(done.ny.as_ref()) {
        Some(format!(
            "{name} er lagt til. Gi personen brukernavn og passord under, så kan hen logge inn."
        ))
    } else {
        name_of(done.innlogging.as_ref()).map(|name| {
            format!(
                "Innloggingen til {name} er lagret. Gi personen brukernavnet og passordet på en trygg måte; passordet vises ikke igjen."
            )
        })
    };
    let rows: Vec<Value> = people
        .iter()
        .map(|p: &Staff| {
            let again = login.filter(|l| l.staff_id == p.id);
            let (login_errors, _) = again
                .map(|l| &l.errors)
                .unwrap_or(&Errors::default())
                .context(&[("username", "Brukernavn"), ("password", "Passord")], "");
            context! {
                id => p.id.to_string(),
                name => p.name.clone(),
                role => role_label(p.role),
                team_lead => p.team_lead,
                email => p.email.clone(),
                digest => digest_label(p.email_digest),
                open => again.is_some() || done.ny.as_deref() == Some(&p.id.to_string()),
                username => again.map(|l| l.username.clone()).unwrap_or_default(),
                errors => login_errors,
            }
        })
        .collect();
    let (errors, mut summary) = add_errors.context(STAFF_FIELDS, "");
    if let Some(l) = login {
        let name = people
            .iter()
            .find(|p| p.id == l.staff_id)
            .map_or_else(String::new, |p| p.name.clone());
        let username = format!("Brukernavn for {name}");
        let password = format!("Passord for {name}");
        let (_, more) = l.errors.context(
            &[("username", &username), ("password", &password)],
            &format!("-{}", l.staff_id),
        );
        summary.extend(more);
    }
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| context! { value => r.as_str(), label => role_label(*r) })
        .collect();
    let digests: Vec<Value> = EmailDigest::ALL
        .iter()
        .map(|d| context! { value => d.as_str(), label => digest_label(*d) })
        .collect();
    let invalid = !add_errors.is_empty() || login.is_some();
    Ok(Page::new(
        "admin/staff.html",
        context! {
            title => "Ansatte og innlogging",
            rows,
            form => Value::from(Serde(add)),
            team_lead => add.team_lead.is_some(),
            roles,
            digests,
            errors,
            summary,
            notice,
            min_password => super::password::MIN_PASSWORD_CHARS,
            ..staff_context(session)
        },
    )
    .with_status(if invalid {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }))
}

pub async fn staff_page(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Query(done): Query<Done>,
) -> Result<Page, WebError> {
    require_admin(&session)?;
    staff_list_page(
        &ctx,
        &session,
        &StaffForm::default(),
        &Errors::default(),
        None,
        &done,
    )
    .await
}

/// Adds a staff member, as `POST /staff`.
pub async fn add_staff(
    State(ctx): State<AppContext>,
    CsrfForm { session, form }: CsrfForm<StaffForm>,
) -> Result<Response, WebError> {
    require_admin(&session)?;
    let mut errors = Errors::default();
    let role = form.role.parse::<Role>().unwrap_or_else(|_| {
        errors.add("role", "Velg en rolle fra lista.");
        Role::Clinic
    });
    let email_digest = form
        .email_digest
        .parse::<EmailDigest>()
        .unwrap_or_else(|_| {
            errors.add(
                "email_digest",
                "Velg når personen skal få e-post, fra lista.",
            );
            EmailDigest::Immediate
        });
    let email = Some(form.email.trim().to_owned()).filter(|e| !e.is_empty());
    let new = NewStaff {
        name: form.name.clone(),
        email,
        role,
        team_lead: form.team_lead.is_some(),
        email_digest: Some(email_digest),
    };
    let mut tx = ctx.store.begin().await?;
    match staff::create_staff(&mut tx, session.organisation_id, new, ctx.clock.now()).await {
        Ok(person) if errors.is_empty() => {
            record(&ctx, &mut tx, &session, "staff.create", Some(person.id)).await?;
            tx.commit().await?;
            tracing::info!(staff_id = %person.id, "staff member added on the staff pages");
            return Ok(Redirect::to(&format!(
                "/staff/admin/ansatte?ny={}#innlogging-{}",
                person.id, person.id
            ))
            .into_response());
        }
        Ok(_) => drop(tx),
        Err(kontaktvei_store::Error::Invalid(found)) => {
            drop(tx);
            for e in found {
                match e.field.as_str() {
                    "name" => errors.add("name", "Skriv navnet til personen (1–200 tegn)."),
                    "email" => errors.add(
                        "email",
                        "Dette er ikke en e-postadresse. Skriv den som navn@eksempel.no, eller la feltet stå tomt.",
                    ),
                    other => errors.add(other, e.message),
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(
        staff_list_page(&ctx, &session, &form, &errors, None, &Done::default())
            .await?
            .into_response(),
    )
}

/// Gives a staff member a username and password, as `PUT /staff/{id}/login`: the lockout is
/// lifted and the person's open sessions end.
pub async fn set_login(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, form }: CsrfForm<LoginForm>,
) -> Result<Response, WebError> {
    require_admin(&session)?;
    let person = async {
        let mut tx = ctx.store.begin_read().await?;
        let person = staff::get_staff(&mut tx, id).await;
        tx.commit().await?;
        person
    }
    .await;
    match person {
        Ok(p) if p.organisation_id == session.organisation_id => {}
        Ok(_) | Err(kontaktvei_store::Error::NotFound(_)) => {
            return Ok(not_found(
                "Den ansatte finnes ikke, eller hører til en annen virksomhet.",
                ("/staff/admin/ansatte", "Tilbake til de ansatte"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let mut errors = Errors::default();
    let password_message = || {
        if form.password.chars().count() < super::password::MIN_PASSWORD_CHARS {
            format!(
                "Passordet er for kort: skriv minst {} tegn, på nytt.",
                super::password::MIN_PASSWORD_CHARS
            )
        } else {
            format!(
                "Passordet kan ha høyst {} tegn. Skriv et kortere passord.",
                super::password::MAX_PASSWORD_CHARS
            )
        }
    };
    let username_message = "Brukernavnet må ha 3–64 tegn: bokstaver, sifre eller . - _ @ (en e-postadresse går fint), uten mellomrom.";
    match super::password::check_new_login(&form.username, &form.password) {
        Ok(username) => {
            // Hashed before the transaction: SQLite has one writer, and a hash takes a while.
            let hash = super::password::hash(form.password.clone()).await?;
            let mut tx = ctx.store.begin().await?;
            match accounts::set_login(&mut tx, id, &username, &hash, ctx.clock.now()).await {
                Ok(_) => {
                    record(&ctx, &mut tx, &session, "staff.login.set", Some(id)).await?;
                    tx.commit().await?;
                    tracing::info!(staff_id = %id, "staff login set on the staff pages");
                    return Ok(
                        Redirect::to(&format!("/staff/admin/ansatte?innlogging={id}"))
                            .into_response(),
                    );
                }
                Err(kontaktvei_store::Error::Invalid(found)) => {
                    drop(tx);
                    for e in found {
                        if e.field == "username" {
                            errors.add(
                                "username",
                                "Noen andre logger allerede inn med dette brukernavnet. Velg et annet, f.eks. med etternavnet eller et tall.",
                            );
                        } else {
                            errors.add(e.field, e.message);
                        }
                    }
                    errors.add(
                        "password",
                        "Skriv passordet på nytt (det vises ikke igjen).",
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(kontaktvei_store::Error::Invalid(found)) => {
            for e in found {
                match e.field.as_str() {
                    "username" => errors.add("username", username_message),
                    "password" => errors.add("password", password_message()),
                    other => errors.add(other, e.message),
                }
            }
            if !errors.has("password") {
                errors.add(
                    "password",
                    "Skriv passordet på nytt (det vises ikke igjen).",
                );
            }
        }
        Err(e) => return Err(e.into()),
    }
    let again = LoginAgain {
        staff_id: id,
        username: form.username.clone(),
        errors,
    };
    Ok(staff_list_page(
        &ctx,
        &session,
        &StaffForm::default(),
        &Errors::default(),
        Some(&again),
        &Done::default(),
    )
    .await?
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Policy

/// The chain's places on the form: one select per step.
const STEPS: usize = 5;
/// The channels a chain may name (the coordinator is added by the engine).
const CHAIN_CHOICES: [ChannelKind; 5] = [
    ChannelKind::Sms,
    ChannelKind::Letter,
    ChannelKind::Relay,
    ChannelKind::Outreach,
    ChannelKind::NextOfKin,
];

fn channel_label(c: ChannelKind) -> &'static str {
    match c {
        ChannelKind::Sms => "SMS",
        ChannelKind::Letter => "Brev",
        ChannelKind::Relay => "Lavterskeltilbud (beskjed)",
        ChannelKind::Outreach => "Oppsøkende team",
        ChannelKind::Coordinator => "Koordinator",
        ChannelKind::NextOfKin => "SMS til pårørende (med samtykke)",
    }
}

/// The policy form as typed: every field of [`Policy`] an admin may set.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct PolicyForm {
    step1: String,
    step2: String,
    step3: String,
    step4: String,
    step5: String,
    sms_ack_hours: String,
    letter_ack_working_days: String,
    relay_ack_hours: String,
    outreach_claim_hours: String,
    quiet_from: String,
    quiet_until: String,
    print_cutoff: String,
    revealing_words: String,
    allow_revealing: Option<String>,
    max_sms_segments: String,
    letter_sender_line: String,
    letter_contact_text: String,
    print_batch_max_letters: String,
    print_retention_days: String,
    replies_from_confirmed_number_count: Option<String>,
}

const POLICY_FIELDS: &[(&str, &str)] = &[
    ("chain", "Rekkefølgen på kanalene"),
    ("sms_ack_hours", "SMS: timer"),
    ("letter_ack_working_days", "Brev: virkedager"),
    ("relay_ack_hours", "Lavterskeltilbud: timer"),
    ("outreach_claim_hours", "Oppsøkende team: timer"),
    ("quiet_from", "Stilletid fra"),
    ("quiet_until", "Stilletid til"),
    ("print_cutoff", "Frist for utskrift"),
    ("revealing_words", "Ord som ikke skal stå i tekstene"),
    ("allow_revealing", "Tekstene kan si hvem vi er"),
    ("max_sms_segments", "Flest SMS-deler"),
    ("letter_sender_line", "Avsenderlinje på brev"),
    ("letter_contact_text", "Kontakttekst i brev"),
    ("print_batch_max_letters", "Flest brev i en bunke"),
    ("print_retention_days", "Dager en bunke kan lastes ned"),
    ("replies_from_confirmed_number_count", "Svar uten kode"),
];

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

impl PolicyForm {
    fn of(p: &Policy) -> PolicyForm {
        let step = |i: usize| {
            p.chain
                .get(i)
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default()
        };
        PolicyForm {
            step1: step(0),
            step2: step(1),
            step3: step(2),
            step4: step(3),
            step5: step(4),
            sms_ack_hours: p.sms_ack_hours.to_string(),
            letter_ack_working_days: p.letter_ack_working_days.to_string(),
            relay_ack_hours: p.relay_ack_hours.to_string(),
            outreach_claim_hours: p.outreach_claim_hours.to_string(),
            quiet_from: hhmm(p.quiet_from),
            quiet_until: hhmm(p.quiet_until),
            print_cutoff: hhmm(p.print_cutoff),
            revealing_words: p.revealing_words.join("\n"),
            allow_revealing: p.allow_revealing.then(|| "ja".to_owned()),
            max_sms_segments: p.max_sms_segments.to_string(),
            letter_sender_line: p.letter_sender_line.clone(),
            letter_contact_text: p.letter_contact_text.clone(),
            print_batch_max_letters: p.print_batch_max_letters.to_string(),
            print_retention_days: p.print_retention_days.to_string(),
            replies_from_confirmed_number_count: p
                .replies_from_confirmed_number_count
                .then(|| "ja".to_owned()),
        }
    }

    fn steps(&self) -> [&str; STEPS] {
        [
            &self.step1,
            &self.step2,
            &self.step3,
            &self.step4,
            &self.step5,
        ]
    }

    /// `base` with what was typed; a value that cannot be read keeps the stored one and is
    /// named in `errors`. The rules themselves are [`Policy::problems`]'s.
    fn apply(&self, base: &Policy, errors: &mut Errors) -> Policy {
        let mut p = base.clone();
        let mut chain = Vec::new();
        let mut readable = true;
        for step in self
            .steps()
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            match step.parse::<ChannelKind>() {
                Ok(c) => chain.push(c),
                Err(_) => readable = false,
            }
        }
        if readable {
            p.chain = chain;
        } else {
            errors.add("chain", "Velg kanalene fra listene.");
        }
        fn number<T: std::str::FromStr>(
            text: &str,
            field: &str,
            range: &str,
            errors: &mut Errors,
        ) -> Option<T> {
            let parsed = text.trim().parse::<T>().ok();
            if parsed.is_none() {
                errors.add(field, format!("Skriv et helt tall {range}."));
            }
            parsed
        }
        fn time(text: &str, field: &str, errors: &mut Errors) -> Option<NaiveTime> {
            let parsed = NaiveTime::parse_from_str(&text.trim().replace('.', ":"), "%H:%M").ok();
            if parsed.is_none() {
                errors.add(field, "Skriv klokkeslettet som TT:MM, f.eks. 21:00.");
            }
            parsed
        }
        let hours = "mellom 1 og 720 (timer), f.eks. 24";
        if let Some(v) = number(&self.sms_ack_hours, "sms_ack_hours", hours, errors) {
            p.sms_ack_hours = v;
        }
        if let Some(v) = number(&self.relay_ack_hours, "relay_ack_hours", hours, errors) {
            p.relay_ack_hours = v;
        }
        if let Some(v) = number(
            &self.outreach_claim_hours,
            "outreach_claim_hours",
            hours,
            errors,
        ) {
            p.outreach_claim_hours = v;
        }
        if let Some(v) = number(
            &self.letter_ack_working_days,
            "letter_ack_working_days",
            "mellom 1 og 20 (virkedager), f.eks. 2",
            errors,
        ) {
            p.letter_ack_working_days = v;
        }
        if let Some(v) = number(
            &self.max_sms_segments,
            "max_sms_segments",
            "mellom 1 og 10, f.eks. 4",
            errors,
        ) {
            p.max_sms_segments = v;
        }
        if let Some(v) = number(
            &self.print_batch_max_letters,
            "print_batch_max_letters",
            "mellom 1 og 5000, f.eks. 1000",
            errors,
        ) {
            p.print_batch_max_letters = v;
        }
        if let Some(v) = number(
            &self.print_retention_days,
            "print_retention_days",
            "mellom 1 og 365 (dager), f.eks. 30",
            errors,
        ) {
            p.print_retention_days = v;
        }
        if let Some(t) = time(&self.quiet_from, "quiet_from", errors) {
            p.quiet_from = t;
        }
        if let Some(t) = time(&self.quiet_until, "quiet_until", errors) {
            p.quiet_until = t;
        }
        if let Some(t) = time(&self.print_cutoff, "print_cutoff", errors) {
            p.print_cutoff = t;
        }
        p.revealing_words = self
            .revealing_words
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        p.allow_revealing = self.allow_revealing.is_some();
        p.replies_from_confirmed_number_count = self.replies_from_confirmed_number_count.is_some();
        p.letter_sender_line = self.letter_sender_line.trim().to_owned();
        p.letter_contact_text = self.letter_contact_text.trim().to_owned();
        p
    }
}

/// [`Policy::problems`] said in bokmål on the form's fields.
fn policy_errors(policy: &Policy, errors: &mut Errors) {
    for (field, english) in policy.problems() {
        let message = match field {
            "chain" => {
                let mut seen = Vec::new();
                let twice = policy.chain.iter().find(|c| {
                    let again = seen.contains(*c);
                    seen.push(**c);
                    again
                });
                if policy.chain.is_empty() {
                    "Velg minst én kanal i steg 1.".to_owned()
                } else if let Some(c) = twice {
                    format!(
                        "«{}» er valgt mer enn én gang. Velg hver kanal bare én gang, og sett resten av stegene til «Ingen».",
                        channel_label(*c)
                    )
                } else if policy.chain.contains(&ChannelKind::Coordinator) {
                    "Koordinatoren legges til av seg selv når kjeden ikke har en person i seg; ta den ut.".to_owned()
                } else {
                    english
                }
            }
            "sms_ack_hours" | "relay_ack_hours" | "outreach_claim_hours" => {
                "Skriv et antall timer mellom 1 og 720 (30 dager).".to_owned()
            }
            "letter_ack_working_days" => "Skriv et antall virkedager mellom 1 og 20.".to_owned(),
            "max_sms_segments" => "Skriv et antall SMS-deler mellom 1 og 10.".to_owned(),
            "print_batch_max_letters" => "Skriv et antall brev mellom 1 og 5000.".to_owned(),
            "print_retention_days" => "Skriv et antall dager mellom 1 og 365.".to_owned(),
            "revealing_words" => {
                "Hvert ord eller uttrykk kan ha høyst 100 tegn. Skriv ett per linje.".to_owned()
            }
            _ => english,
        };
        errors.add(field, message);
    }
}

async fn stored_policy(ctx: &AppContext, session: &StaffSession) -> Result<Policy, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let stored = organisations::policy(&mut tx, session.organisation_id).await?;
    tx.commit().await?;
    Policy::from_stored(stored).map_err(|e| {
        WebError::Store(kontaktvei_store::Error::Corrupt(format!(
            "the organisation's policy: {e}"
        )))
    })
}

fn policy_page_of(session: &StaffSession, form: &PolicyForm, errors: &Errors, saved: bool) -> Page {
    let (field_errors, summary) = errors.context(POLICY_FIELDS, "");
    let steps: Vec<Value> = form
        .steps()
        .iter()
        .enumerate()
        .map(|(i, chosen)| {
            let options: Vec<Value> = CHAIN_CHOICES
                .iter()
                .map(|c| {
                    context! {
                        value => c.as_str(),
                        label => channel_label(*c),
                        selected => chosen.trim() == c.as_str(),
                    }
                })
                .collect();
            context! { id => format!("step{}", i + 1), number => i + 1, options, empty => chosen.trim().is_empty() }
        })
        .collect();
    Page::new(
        "admin/policy.html",
        context! {
            title => "Kontaktregler",
            form => Value::from(Serde(form)),
            allow_revealing => form.allow_revealing.is_some(),
            replies_count => form.replies_from_confirmed_number_count.is_some(),
            steps,
            shipped_words => kontaktvei_templates::validate::DEFAULT_REVEALING_WORDS.join(", "),
            errors => field_errors,
            summary,
            saved,
            ..staff_context(session)
        },
    )
    .with_status(if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    })
}

pub async fn policy_page(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Query(done): Query<Done>,
) -> Result<Page, WebError> {
    require_admin(&session)?;
    let policy = stored_policy(&ctx, &session).await?;
    Ok(policy_page_of(
        &session,
        &PolicyForm::of(&policy),
        &Errors::default(),
        done.lagret.is_some(),
    ))
}

/// Replaces the policy, as `PUT /organisations/{id}/policy`: notices already planned keep theirs.
pub async fn save_policy(
    State(ctx): State<AppContext>,
    CsrfForm { session, form }: CsrfForm<PolicyForm>,
) -> Result<Response, WebError> {
    require_admin(&session)?;
    let stored = stored_policy(&ctx, &session).await?;
    let mut errors = Errors::default();
    let policy = form.apply(&stored, &mut errors);
    policy_errors(&policy, &mut errors);
    if !errors.is_empty() {
        return Ok(policy_page_of(&session, &form, &errors, false).into_response());
    }
    let json = serde_json::to_value(&policy).map_err(|e| {
        WebError::Store(kontaktvei_store::Error::Corrupt(format!(
            "the policy as JSON: {e}"
        )))
    })?;
    let mut tx = ctx.store.begin().await?;
    organisations::set_policy(&mut tx, session.organisation_id, &json).await?;
    record(
        &ctx,
        &mut tx,
        &session,
        "organisation.policy.set",
        Some(session.organisation_id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(organisation_id = %session.organisation_id, "contact policy changed on the staff pages");
    Ok(Redirect::to("/staff/admin/regler?lagret=1").into_response())
}

// ---------------------------------------------------------------------------------------------
// Templates

fn notice_kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Booking => "Ny time",
        Kind::Reschedule => "Endret time",
        Kind::Cancellation => "Avlyst time",
        Kind::Reminder => "Påminnelse",
        Kind::NoShowFollowUp => "Etter uteblitt time",
        Kind::Free => "Fri beskjed",
    }
}

fn template_channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "SMS",
        Channel::Letter => "Brev",
        Channel::Relay => "Beskjed via lavterskeltilbud",
        Channel::Outreach => "Oppsøkende team",
    }
}

fn key_label(key: TemplateKey) -> String {
    match key {
        TemplateKey::Notice(kind, channel) => format!(
            "{} – {}",
            notice_kind_label(kind),
            template_channel_label(channel)
        ),
        TemplateKey::StaffEmail => "E-post til ansatte".to_owned(),
    }
}

fn lang_label(lang: &str) -> String {
    match lang {
        "nb" => "bokmål".to_owned(),
        "nn" => "nynorsk".to_owned(),
        "en" => "engelsk".to_owned(),
        "se" => "nordsamisk".to_owned(),
        other => format!("språkkode {other}"),
    }
}

fn variable_about(name: &str) -> &'static str {
    match name {
        "when" => "når timen er, skrevet på malens språk",
        "when_nb" => "det samme på bokmål, for de ansattes del av teksten",
        "place" => "hvor timen er (adresse, rom), aldri klinikkens navn",
        "code" => "koden pasienten svarer med eller sier (6 tegn)",
        "link" => "lenken pasienten kan bekrefte med, uten BankID (ca. 45 tegn)",
        "patient_name" => "hvem beskjeden skal gis til",
        "patient_birth_year" => "pasientens fødselsår, for å skille folk med samme navn",
        "staff_name" => "navnet til den ansatte",
        "count" => "hvor mange nye ting som venter (et tall)",
        "lines" => "en liste med oppsummeringslinjer uten pasientopplysninger",
        _ => "",
    }
}

/// A problem with a text, in bokmål, with its line when it has one.
fn problem_nb(p: &Problem) -> String {
    let what = match &p.kind {
        ProblemKind::Syntax { message } => format!(
            "Malen kan ikke leses ({message}). Sjekk at hver {{% if %}} har sin {{% endif %}}, og at hver {{{{ har sin }}}}."
        ),
        ProblemKind::UnknownVariable { name, provided } => {
            if provided.is_empty() {
                format!("«{name}» finnes ikke: denne malen får ingen verdier. Ta den ut.")
            } else {
                format!(
                    "«{name}» finnes ikke i denne malen. Du kan bruke: {}.",
                    provided.join(", ")
                )
            }
        }
        ProblemKind::MissingBlock { name } => format!(
            "Mangler {{% block {name} %}}…{{% endblock %}}. Legg den til; se standardteksten."
        ),
        ProblemKind::Render { message } => format!(
            "Malen kan ikke vises med eksempeldata ({message}). Verdier som kan mangle, må stå inne i {{% if navn %}}…{{% endif %}}."
        ),
        ProblemKind::TooManySegments {
            segments,
            max,
            encoding,
            units,
        } => format!(
            "SMS-en blir {segments} deler ({units} tegn i {encoding} med eksempeldata), men kontaktreglene tillater {max}. Gjør teksten kortere{}.",
            if encoding.to_string() == "UCS-2" {
                ", eller bytt ut tegn som ikke finnes i GSM-7 (da får hver del plass til flere tegn)"
            } else {
                ""
            }
        ),
        ProblemKind::Revealing { word } => format!(
            "«{word}» kan avsløre klinikken eller en diagnose for andre som ser teksten. Bruk et nøytralt ord."
        ),
    };
    match p.line {
        Some(line) => format!("Linje {line}: {what}"),
        None => what,
    }
}

fn parse_key(key: &str, lang: &str) -> Option<(TemplateKey, Lang)> {
    Some((TemplateKey::parse(key)?, Lang::parse(lang)?))
}

pub async fn template_list(
    State(ctx): State<AppContext>,
    session: StaffSession,
) -> Result<Page, WebError> {
    require_admin(&session)?;
    let mut tx = ctx.store.begin_read().await?;
    let own = template_overrides::current(&mut tx, session.organisation_id).await?;
    tx.commit().await?;
    let catalog = ctx.engine.catalog();
    let mut languages = Vec::new();
    let mut langs = catalog.languages();
    // Bokmål first, then nynorsk and Northern Sami, then the rest by code.
    langs.sort_by_key(|l| {
        let rank = ["nb", "nn", "se"]
            .iter()
            .position(|c| *c == l.as_str())
            .unwrap_or(3);
        (rank, l.as_str().to_owned())
    });
    for lang in langs {
        let rows: Vec<Value> = TemplateKey::all()
            .map(|key| {
                let mine = own.iter().find(|o| {
                    o.template_key == key.to_string()
                        && o.lang == lang.as_str()
                        && o.source.is_some()
                });
                context! {
                    href => format!("/staff/admin/maler/{key}/{}", lang.as_str()),
                    label => key_label(key),
                    key => key.to_string(),
                    version => mine.map_or("standardtekst".to_owned(), |o| format!("egen versjon {}", o.version)),
                    own => mine.is_some(),
                }
            })
            .collect();
        let label = lang_label(lang.as_str());
        let mut heading = label.clone();
        if let Some(first) = heading.get(..1) {
            heading = first.to_uppercase() + &heading[1..];
        }
        languages.push(context! {
            code => lang.as_str(),
            heading,
            label,
            rows,
        });
    }
    Ok(Page::new(
        "admin/templates.html",
        context! { title => "Meldingsmaler", languages, ..staff_context(&session) },
    ))
}

fn preview_value(r: &Rendered) -> Value {
    let segments = r.segments.map(|s| {
        let gsm = s.encoding.to_string() == "GSM-7";
        context! {
            count_text => if s.segments == 1 { "1 SMS-del".to_owned() } else { format!("{} SMS-deler", s.segments) },
            encoding => s.encoding.to_string(),
            units => s.units,
            about => if gsm {
                "vanlige tegn: 160 i én SMS, 153 per del når den er lengre"
            } else {
                "teksten har tegn utenfor GSM-7 (f.eks. samiske bokstaver): 70 i én SMS, 67 per del"
            },
        }
    });
    context! {
        title => r.title.clone(),
        text => r.text.clone(),
        lang_used => lang_label(r.lang_used.as_str()),
        version => match r.version {
            TemplateVersion::Default => "standardteksten".to_owned(),
            TemplateVersion::Override(0) => "teksten i skjemaet (ikke lagret)".to_owned(),
            TemplateVersion::Override(v) => format!("egen versjon {v}"),
        },
        segments,
        warnings => r.warnings.clone(),
    }
}

/// What the template page shows besides the form.
struct TemplateView {
    key: TemplateKey,
    lang: Lang,
    versions: Vec<TemplateOverride>,
    default_source: Option<String>,
    /// The organisation's own text in use (newest version), if any.
    current: Option<(i64, String)>,
    names: BTreeMap<String, String>,
}

async fn template_view(
    ctx: &AppContext,
    session: &StaffSession,
    key: TemplateKey,
    lang: Lang,
) -> Result<TemplateView, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let versions = template_overrides::versions(
        &mut tx,
        session.organisation_id,
        &key.to_string(),
        lang.as_str(),
    )
    .await?;
    let people = staff::list_staff(&mut tx, session.organisation_id).await?;
    tx.commit().await?;
    let default_source = ctx.engine.catalog().source(key, &lang).map(str::to_owned);
    let current = versions
        .first()
        .and_then(|v| v.source.clone().map(|s| (v.version, s)));
    let names = people
        .into_iter()
        .map(|p| (format!("staff:{}", p.id), p.name))
        .collect();
    Ok(TemplateView {
        key,
        lang,
        versions,
        default_source,
        current,
        names,
    })
}

fn template_page_of(
    session: &StaffSession,
    view: &TemplateView,
    source: &str,
    problems: &[Problem],
    preview: Option<(&Rendered, bool)>,
    done: &Done,
) -> Page {
    let key = view.key;
    let variables: Vec<Value> = key
        .variables()
        .iter()
        .map(|v| {
            let about = variable_about(v.name);
            context! {
                code => format!("{{{{ {} }}}}", v.name),
                if_code => format!("{{% if {} %}}…{{% endif %}}", v.name),
                about => if about.is_empty() { v.about } else { about },
                optional => v.presence == Presence::Optional,
            }
        })
        .collect();
    let versions: Vec<Value> = view
        .versions
        .iter()
        .map(|v| {
            context! {
                version => v.version,
                at => kontaktvei_templates::when_nb(v.created_at),
                by => view.names.get(&v.created_by).cloned().unwrap_or_else(|| {
                    if v.created_by.starts_with("api_key:") { "API-nøkkel".to_owned() } else { v.created_by.clone() }
                }),
                own_text => v.source.is_some(),
            }
        })
        .collect();
    let problems: Vec<Value> = problems
        .iter()
        .map(|p| {
            let text = p
                .line
                .and_then(|l| source.lines().nth(l.saturating_sub(1)))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            context! { message => problem_nb(p), text }
        })
        .collect();
    let notice = if let Some(v) = &done.lagret {
        Some(format!(
            "Teksten er lagret som egen versjon {v}. Nye meldinger bruker den fra nå; meldinger som alt er på vei, beholder sin tekst."
        ))
    } else {
        done.tilbakestilt.as_ref().map(|_| {
            "Malen bruker standardteksten igjen. Den gamle teksten er tatt vare på i historikken."
                .to_owned()
        })
    };
    let href = format!("/staff/admin/maler/{key}/{}", view.lang.as_str());
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    // Room for the text as it wraps on a phone (about 30 characters a line), and a line more.
    let lines: usize = source
        .lines()
        .map(|l| l.chars().count().div_ceil(30).max(1))
        .sum();
    let lines = lines.clamp(5, 30);
    Page::new(
        "admin/template.html",
        context! {
            title => format!("{} ({})", key_label(key), lang_label(view.lang.as_str())),
            heading => key_label(key),
            lang => lang_label(view.lang.as_str()),
            key => key.to_string(),
            href,
            source,
            rows => lines + 1,
            default_source => view.default_source.clone(),
            in_use => view.current.as_ref().map_or("standardteksten".to_owned(), |(v, _)| format!("egen versjon {v}")),
            own => view.current.is_some(),
            one_line => key.is_one_line(),
            title_label => if key == TemplateKey::StaffEmail { "Emne" } else { "Tittel" },
            blocks => (!key.blocks().is_empty()).then(|| key.blocks().iter().map(|b| format!("{{% block {b} %}}…{{% endblock %}}")).collect::<Vec<_>>().join(" og ")),
            exposed => key.channel().is_some_and(Channel::is_exposed),
            variables,
            versions,
            problems,
            preview => preview.map(|(r, _)| preview_value(r)),
            unsaved => preview.is_some_and(|(_, unsaved)| unsaved),
            notice,
            ..staff_context(session)
        },
    )
    .with_status(status)
}

/// The organisation's rules for its own texts, from its policy (as the API's preview and save).
async fn template_rules(
    ctx: &AppContext,
    session: &StaffSession,
) -> Result<kontaktvei_templates::Rules, WebError> {
    Ok(stored_policy(ctx, session).await?.template_rules())
}

/// The text in use rendered with sample data, with `source` in its place when given (checked
/// first, as the API's preview does).
async fn preview(
    ctx: &AppContext,
    session: &StaffSession,
    key: TemplateKey,
    lang: &Lang,
    source: Option<&str>,
) -> Result<Result<Rendered, Vec<Problem>>, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let mut overrides = ctx
        .engine
        .overrides(&mut tx, session.organisation_id)
        .await
        .map_err(|e| match e {
            kontaktvei_scheduler::engine::Error::Store(e) => WebError::Store(e),
            other => WebError::Store(kontaktvei_store::Error::Corrupt(other.to_string())),
        })?;
    tx.commit().await?;
    if let Some(source) = source {
        let rules = template_rules(ctx, session).await?;
        if let Err(problems) = ctx.engine.catalog().validate(key, lang, source, &rules) {
            return Ok(Err(problems));
        }
        overrides.insert(key, lang.clone(), 0, source.to_owned());
    }
    match ctx.engine.catalog().preview(key, lang, &overrides) {
        Ok(r) => Ok(Ok(r)),
        Err(e) => Ok(Err(vec![Problem {
            line: None,
            kind: ProblemKind::Render {
                message: e.to_string(),
            },
        }])),
    }
}

fn no_such_template() -> Response {
    not_found(
        "Det finnes ingen mal med det navnet. Velg en mal fra lista.",
        ("/staff/admin/maler", "Til meldingsmalene"),
    )
}

pub async fn template_page(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Path((key, lang)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    require_admin(&session)?;
    let Some((key, lang)) = parse_key(&key, &lang) else {
        return Ok(no_such_template());
    };
    let view = template_view(&ctx, &session, key, lang.clone()).await?;
    let source = view
        .current
        .as_ref()
        .map(|(_, s)| s.clone())
        .or_else(|| view.default_source.clone())
        .unwrap_or_default();
    let rendered = preview(&ctx, &session, key, &lang, None).await?;
    let (rendered, problems) = match rendered {
        Ok(r) => (Some(r), Vec::new()),
        Err(p) => (None, p),
    };
    let mut page = template_page_of(
        &session,
        &view,
        &source,
        &problems,
        rendered.as_ref().map(|r| (r, false)),
        &done,
    );
    // The text in use is what it is: showing it is not a failed form.
    page.status = StatusCode::OK;
    Ok(page.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TemplateForm {
    action: String,
    source: String,
}

/// `forhandsvis`: checks and renders the typed text, storing nothing; `lagre`: checks and
/// saves it as a new version (as `PUT /templates/{key}/{lang}`); `tilbakestill`: back to the
/// default, kept as a version (as `DELETE`).
pub async fn template_action(
    State(ctx): State<AppContext>,
    Path((key, lang)): Path<(String, String)>,
    CsrfForm { session, form }: CsrfForm<TemplateForm>,
) -> Result<Response, WebError> {
    require_admin(&session)?;
    let Some((key, lang)) = parse_key(&key, &lang) else {
        return Ok(no_such_template());
    };
    // Browsers send line breaks as CR LF; the text is stored as it will be edited next time.
    let source = form.source.replace("\r\n", "\n");
    let href = format!("/staff/admin/maler/{key}/{}", lang.as_str());
    match form.action.as_str() {
        "forhandsvis" => {
            let view = template_view(&ctx, &session, key, lang.clone()).await?;
            let page = match preview(&ctx, &session, key, &lang, Some(&source)).await? {
                Ok(r) => template_page_of(
                    &session,
                    &view,
                    &source,
                    &[],
                    Some((&r, true)),
                    &Done::default(),
                ),
                Err(problems) => {
                    template_page_of(&session, &view, &source, &problems, None, &Done::default())
                }
            };
            Ok(page.into_response())
        }
        "lagre" => {
            let rules = template_rules(&ctx, &session).await?;
            if let Err(problems) = ctx.engine.catalog().validate(key, &lang, &source, &rules) {
                let view = template_view(&ctx, &session, key, lang).await?;
                return Ok(template_page_of(
                    &session,
                    &view,
                    &source,
                    &problems,
                    None,
                    &Done::default(),
                )
                .into_response());
            }
            let version = new_version(&ctx, &session, key, &lang, Some(&source)).await?;
            Ok(Redirect::to(&format!("{href}?lagret={version}")).into_response())
        }
        "tilbakestill" => {
            new_version(&ctx, &session, key, &lang, None).await?;
            Ok(Redirect::to(&format!("{href}?tilbakestilt=1")).into_response())
        }
        _ => Err(WebError::BadForm),
    }
}

/// Stores a new version (`None`: back to the default), audited.
async fn new_version(
    ctx: &AppContext,
    session: &StaffSession,
    key: TemplateKey,
    lang: &Lang,
    source: Option<&str>,
) -> Result<i64, WebError> {
    let mut tx = ctx.store.begin().await?;
    let version = template_overrides::save(
        &mut tx,
        session.organisation_id,
        &key.to_string(),
        lang.as_str(),
        source,
        &session.label(),
        ctx.clock.now(),
    )
    .await?;
    let action = if source.is_some() {
        "template.save"
    } else {
        "template.reset"
    };
    record(ctx, &mut tx, session, action, None).await?;
    tx.commit().await?;
    tracing::info!(template = %key, lang = %lang, version, action, "template changed on the staff pages");
    Ok(version)
}
