//! Pasienter (`/staff/pasienter…`): the clinic's pages. A secretary finds or registers a
//! patient, adds and retires contact points (with where each came from), books, moves and
//! cancels appointments, records attendance, and follows every notice step by step: which
//! channel, through which contact point, what happened and why a step was skipped.
//!
//! The pages do what the API does, through the same store and engine calls, with the same
//! roles (`roles::READ_PATIENT`, `WRITE_CONTACT_POINT`, `READ_APPOINTMENT`, …): a section the
//! person's role may not see is left out, a change it may not make is refused. A low-threshold
//! service is refused these pages altogether: it sees a patient only in its relay requests
//! (Oppgaver), with what it needs to pass the message on. Every read of
//! patient data and every change is audited as `staff:{id}`, a refusal too. A form with
//! mistakes comes back (422) with what was typed and a message in bokmål by each wrong field;
//! nothing is stored until all of it is right.

use super::start::staff_context;
use super::{CsrfForm, Page, StaffSession, WebError, role_label};
use crate::api::roles;
use crate::auth::Access;
use crate::context::AppContext;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc};
use kontaktvei_scheduler::calendar::{OSLO, oslo_instant};
use kontaktvei_store::acks::{self, AckMethod};
use kontaktvei_store::appointments::{
    self, Appointment, AppointmentKind, AppointmentStatus, NewAppointment, Reschedule,
};
use kontaktvei_store::audit;
use kontaktvei_store::contact_points::{
    self, ContactKind, ContactPoint, ContactStatus, NewContactPoint, Provenance,
};
use kontaktvei_store::notices::{self, NoticeKind, NoticeStatus};
use kontaktvei_store::organisations::{self, Organisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient, Patient, PatientFilter};
use kontaktvei_store::staff::{self, Role};
use kontaktvei_store::steps::{self, ChannelKind, Step, StepStatus};
use kontaktvei_store::{Error as StoreError, FieldError, Id, Tx, timeline};
use kontaktvei_templates::when_nb;
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// This module's page templates (name, source), compiled with the others in [`super::layout`].
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "clinic/patients.html",
        include_str!("templates/clinic/patients.html"),
    ),
    (
        "clinic/patient.html",
        include_str!("templates/clinic/patient.html"),
    ),
    (
        "clinic/form.html",
        include_str!("templates/clinic/form.html"),
    ),
];

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/staff/pasienter", get(search).post(register))
        .route("/staff/pasienter/{id}", get(show))
        .route(
            "/staff/pasienter/{id}/kontaktpunkter",
            post(add_contact_point),
        )
        .route(
            "/staff/pasienter/{id}/kontaktpunkter/{cp}/trekk-tilbake",
            post(retire_contact_point),
        )
        .route("/staff/pasienter/{id}/timer", post(book))
        .route("/staff/timer/{id}/flytt", post(reschedule))
        .route("/staff/timer/{id}/avlys", post(cancel))
        .route("/staff/timer/{id}/oppmote", post(attendance))
}

// ---------------------------------------------------------------------------------------------
// Who may do what, and the audit log.

/// The person's role and their organisation's kind: what [`Access`] is checked against, as
/// `Caller::require` does for the API.
#[derive(Debug, Clone, Copy)]
struct Rights {
    role: Role,
    kind: OrganisationKind,
}

impl Rights {
    fn may(self, access: Access) -> bool {
        access.allows(self.role, self.kind)
    }
}

async fn rights(tx: &mut Tx, session: &StaffSession) -> Result<Rights, WebError> {
    let org = organisations::get(tx, session.organisation_id).await?;
    Ok(Rights {
        role: session.role,
        kind: org.kind,
    })
}

/// Writes an allowed audit row in the page's transaction.
async fn record(
    ctx: &AppContext,
    tx: &mut Tx,
    session: &StaffSession,
    action: &str,
    patient_id: Id,
    subject: Option<Id>,
) -> Result<(), WebError> {
    session
        .audit(ctx, tx, action, Some(patient_id), subject)
        .await
}

/// Records a refused access in a transaction of its own, as the API does.
async fn denied(ctx: &AppContext, session: &StaffSession, action: &str, patient_id: Option<Id>) {
    let result = audit::record_denied(
        &ctx.store,
        &session.actor(),
        action,
        patient_id,
        ctx.clock.now(),
    )
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not write the audit row for a refused staff page");
    }
}

/// Why the person may not: a low-threshold service sees patients only in its relay requests;
/// otherwise their role, and who may.
fn refusal(session: &StaffSession, rights: Rights, access: Access, doing: &str) -> WebError {
    if access.refuses_kind(rights.kind) {
        return WebError::Refused(format!(
            "Et lavterskeltilbud kan ikke {doing}. Dere ser pasienten bare i beskjedene som skal gis videre, under Oppgaver: navn, fødselsår, beskrivelsen og hva dere skal si."
        ));
    }
    WebError::Refused(format!(
        "Rollen din ({}) kan ikke {doing}. Det kan {}.",
        role_label(session.role),
        who(access)
    ))
}

fn not_found() -> Response {
    Page::message(
        StatusCode::NOT_FOUND,
        "Finnes ikke",
        "Pasienten eller timen finnes ikke, eller den er ikke delt med organisasjonen din.",
        ("/staff/pasienter", "Til pasientsøket"),
    )
    .into_response()
}

fn engine_error(e: kontaktvei_scheduler::engine::Error) -> WebError {
    match e {
        kontaktvei_scheduler::engine::Error::Store(e) => WebError::Store(e),
        other => WebError::Store(StoreError::Corrupt(other.to_string())),
    }
}

/// The patient named by the path, if the person's role may `access` it and it is shared with
/// their organisation. A refusal is audited in its own transaction (as the API does), before
/// the page's transaction is opened: SQLite has one writer at a time.
async fn open_patient(
    ctx: &AppContext,
    session: &StaffSession,
    id: &str,
    access: Access,
    action: &str,
    doing: &str,
) -> Result<Option<(Patient, Rights)>, WebError> {
    let id = id.parse::<Id>().ok();
    let mut tx = ctx.store.begin_read().await?;
    let rights = rights(&mut tx, session).await?;
    let found = match id {
        Some(id) if rights.may(access) => {
            Some(patients::get_visible(&mut tx, session.organisation_id, id).await)
        }
        _ => None,
    };
    tx.commit().await?;
    if !rights.may(access) {
        denied(ctx, session, action, id).await;
        return Err(refusal(session, rights, access, doing));
    }
    match found {
        Some(Ok(p)) => Ok(Some((p, rights))),
        Some(Err(StoreError::NotFound(_))) | None => {
            denied(ctx, session, action, id).await;
            Ok(None)
        }
        Some(Err(e)) => Err(e.into()),
    }
}

/// Who may, in words: "poliklinikk, koordinator eller administrator".
fn who(access: Access) -> String {
    let mut names: Vec<&str> = access.roles.iter().map(|r| role_label(*r)).collect();
    let last = names.pop().unwrap_or_default();
    if names.is_empty() {
        last.to_owned()
    } else {
        format!("{} eller {last}", names.join(", "))
    }
}

// ---------------------------------------------------------------------------------------------
// Forms: described here, drawn by `clinic/form.html`. A form that came back with mistakes is a
// `Draft`: what was typed and a message by each wrong field.

type Fields = BTreeMap<String, String>;

#[derive(Debug, Clone, Default)]
struct Draft {
    key: String,
    values: Fields,
    errors: BTreeMap<String, String>,
    general: Vec<String>,
}

impl Draft {
    fn new(key: impl Into<String>, values: &Fields) -> Draft {
        let mut values = values.clone();
        values.remove("csrf");
        Draft {
            key: key.into(),
            values,
            ..Draft::default()
        }
    }

    fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", |v| v.trim())
    }

    /// The trimmed value, `None` when empty.
    fn opt(&self, name: &str) -> Option<String> {
        Some(self.value(name).to_owned()).filter(|v| !v.is_empty())
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    fn is_wrong(&self) -> bool {
        !self.errors.is_empty() || !self.general.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Text,
    Area,
    Select,
    Checkbox,
}

struct Spec {
    name: &'static str,
    label: String,
    hint: Option<String>,
    input: Input,
    options: Vec<(String, String)>,
    default: String,
    required: bool,
    inputmode: Option<&'static str>,
    autocomplete: &'static str,
}

fn text(name: &'static str, label: &str) -> Spec {
    Spec {
        name,
        label: label.to_owned(),
        hint: None,
        input: Input::Text,
        options: Vec::new(),
        default: String::new(),
        required: false,
        inputmode: None,
        autocomplete: "off",
    }
}

impl Spec {
    fn hint(mut self, hint: &str) -> Spec {
        self.hint = Some(hint.to_owned());
        self
    }
    fn default(mut self, value: impl Into<String>) -> Spec {
        self.default = value.into();
        self
    }
    fn required(mut self) -> Spec {
        self.required = true;
        self
    }
    fn numeric(mut self) -> Spec {
        self.inputmode = Some("numeric");
        self
    }
    fn area(mut self) -> Spec {
        self.input = Input::Area;
        self
    }
    fn checkbox(mut self) -> Spec {
        self.input = Input::Checkbox;
        self
    }
    fn select<S: Into<String>, L: Into<String>>(
        mut self,
        options: impl IntoIterator<Item = (S, L)>,
    ) -> Spec {
        self.input = Input::Select;
        self.options = options
            .into_iter()
            .map(|(v, l)| (v.into(), l.into()))
            .collect();
        self
    }
}

#[derive(Debug, Serialize)]
struct FieldView {
    id: String,
    name: &'static str,
    label: String,
    hint: Option<String>,
    hint_id: String,
    error: Option<String>,
    error_id: String,
    describedby: Option<String>,
    input: &'static str,
    value: String,
    checked: bool,
    options: Vec<OptionView>,
    required: bool,
    inputmode: Option<&'static str>,
    autocomplete: &'static str,
}

#[derive(Debug, Serialize)]
struct OptionView {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Debug, Serialize)]
struct GroupView {
    legend: Option<String>,
    hint: Option<String>,
    fields: Vec<FieldView>,
}

#[derive(Debug, Serialize)]
struct FormView {
    key: String,
    action: String,
    post: bool,
    submit: String,
    groups: Vec<GroupView>,
    hidden: Vec<(String, String)>,
    general: Vec<String>,
    /// Came back with mistakes: shown open, named in the page's error summary.
    wrong: bool,
}

struct Group {
    legend: Option<&'static str>,
    hint: Option<&'static str>,
    fields: Vec<Spec>,
}

fn plain(fields: Vec<Spec>) -> Group {
    Group {
        legend: None,
        hint: None,
        fields,
    }
}

fn fieldset(legend: &'static str, hint: Option<&'static str>, fields: Vec<Spec>) -> Group {
    Group {
        legend: Some(legend),
        hint,
        fields,
    }
}

fn form(
    key: &str,
    action: String,
    submit: &str,
    draft: Option<&Draft>,
    groups: Vec<Group>,
) -> FormView {
    let draft = draft.filter(|d| d.key == key);
    let groups = groups
        .into_iter()
        .map(|g| GroupView {
            legend: g.legend.map(str::to_owned),
            hint: g.hint.map(str::to_owned),
            fields: g
                .fields
                .into_iter()
                .map(|s| {
                    let id = format!("{key}-{}", s.name);
                    let value = match draft {
                        Some(d) => d.values.get(s.name).cloned().unwrap_or_default(),
                        None => s.default.clone(),
                    };
                    let error = draft.and_then(|d| d.errors.get(s.name).cloned());
                    let hint_id = format!("{id}-hint");
                    let error_id = format!("{id}-error");
                    let describedby = [
                        s.hint.as_ref().map(|_| hint_id.clone()),
                        error.as_ref().map(|_| error_id.clone()),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                    FieldView {
                        options: s
                            .options
                            .iter()
                            .map(|(v, l)| OptionView {
                                value: v.clone(),
                                label: l.clone(),
                                selected: *v == value,
                            })
                            .collect(),
                        checked: s.input == Input::Checkbox && value == "ja",
                        input: match s.input {
                            Input::Text => "text",
                            Input::Area => "textarea",
                            Input::Select => "select",
                            Input::Checkbox => "checkbox",
                        },
                        id,
                        name: s.name,
                        label: s.label,
                        hint: s.hint,
                        hint_id,
                        error,
                        error_id,
                        describedby: Some(describedby).filter(|d| !d.is_empty()),
                        value,
                        required: s.required,
                        inputmode: s.inputmode,
                        autocomplete: s.autocomplete,
                    }
                })
                .collect(),
        })
        .collect();
    FormView {
        key: key.to_owned(),
        action,
        post: true,
        submit: submit.to_owned(),
        groups,
        hidden: Vec::new(),
        general: draft.map(|d| d.general.clone()).unwrap_or_default(),
        wrong: draft.is_some_and(Draft::is_wrong),
    }
}

/// The error summary at the top of a page: each message, linking to its field.
fn summary(forms: &[&FormView]) -> Vec<Value> {
    let mut out = Vec::new();
    for f in forms.iter().filter(|f| f.wrong) {
        for g in &f.general {
            out.push(context! { href => format!("#{}", f.key), label => "", message => g });
        }
        for field in f.groups.iter().flat_map(|g| &g.fields) {
            if let Some(e) = &field.error {
                out.push(context! { href => format!("#{}", field.id), label => field.label.clone(), message => e });
            }
        }
    }
    out
}

// Dates and times as people type them, in Europe/Oslo.

const DATE_HINT: &str = "Skriv datoen som 24.12.2026.";

fn parse_date(input: &str) -> Option<NaiveDate> {
    let s = input.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    let parts: Vec<&str> = s.split(['.', '/']).collect();
    if let [d, m, y] = parts[..]
        && y.len() == 4
        && !d.is_empty()
        && d.len() <= 2
        && !m.is_empty()
        && m.len() <= 2
    {
        return NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    }
    None
}

fn parse_time(input: &str) -> Option<NaiveTime> {
    let s = input.trim();
    let (h, m) = s.split_once([':', '.'])?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

fn date_nb(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// Reads `date` and `time` into an instant; a message on the field that is wrong.
fn read_start(draft: &mut Draft) -> Option<DateTime<Utc>> {
    let date = match draft.opt("date") {
        None => {
            draft.error("date", "Skriv datoen for timen, f.eks. 24.12.2026.");
            None
        }
        Some(d) => {
            let parsed = parse_date(&d);
            if parsed.is_none() {
                draft.error(
                    "date",
                    format!("«{d}» er ikke en dato vi forstår. {DATE_HINT}"),
                );
            }
            parsed
        }
    };
    let time = match draft.opt("time") {
        None => {
            draft.error("time", "Skriv klokkeslettet, f.eks. 10:30.");
            None
        }
        Some(t) => {
            let parsed = parse_time(&t);
            if parsed.is_none() {
                draft.error(
                    "time",
                    format!("«{t}» er ikke et klokkeslett vi forstår. Skriv det som 10:30."),
                );
            }
            parsed
        }
    };
    Some(oslo_instant(date?, time?))
}

fn read_minutes(draft: &mut Draft, name: &str) -> Option<i32> {
    let raw = draft.opt(name)?;
    match raw.parse::<i32>() {
        Ok(m) => Some(m),
        Err(_) => {
            draft.error(
                name,
                "Skriv varigheten i hele minutter, mellom 5 og 720, f.eks. 30.",
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Words for the pages.

fn language_options() -> Vec<(&'static str, &'static str)> {
    vec![
        ("nb", "Norsk bokmål"),
        ("nn", "Norsk nynorsk"),
        ("en", "Engelsk"),
        ("se", "Nordsamisk"),
    ]
}

fn language_label(code: &str) -> String {
    language_options()
        .into_iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_owned(), |(_, l)| l.to_owned())
}

fn contact_kind_label(k: ContactKind) -> &'static str {
    match k {
        ContactKind::Sms => "SMS til mobil",
        ContactKind::Postal => "Postadresse (brev)",
        ContactKind::Relay => "Lavterskeltilbud som gir beskjed",
        ContactKind::Outreach => "Oppsøkende team",
        ContactKind::NextOfKin => "Pårørende (med samtykke)",
    }
}

fn provenance_label(p: Provenance) -> &'static str {
    match p {
        Provenance::StatedByPatient => "Oppgitt av pasienten",
        Provenance::VerifiedInPerson => "Bekreftet ansikt til ansikt",
        Provenance::PopulationRegister => "Fra Folkeregisteret",
        Provenance::FromNextOfKin => "Oppgitt av pårørende",
    }
}

fn contact_status_label(s: ContactStatus) -> &'static str {
    match s {
        ContactStatus::Active => "i bruk",
        ContactStatus::Confirmed => "i bruk, bekreftet (pasienten har svart gjennom det)",
        ContactStatus::Failed => "feilet",
        ContactStatus::Retired => "trukket tilbake",
        ContactStatus::Paused => "på pause (pasienten ba om stopp)",
    }
}

fn org_kind_label(k: OrganisationKind) -> &'static str {
    match k {
        OrganisationKind::Clinic => "poliklinikk",
        OrganisationKind::LowThresholdService => "lavterskeltilbud",
        OrganisationKind::OutreachTeam => "oppsøkende team",
        OrganisationKind::HomeServices => "hjemmetjeneste",
    }
}

fn appointment_status_label(s: AppointmentStatus) -> &'static str {
    match s {
        AppointmentStatus::Booked => "booket",
        AppointmentStatus::Rescheduled => "flyttet",
        AppointmentStatus::Cancelled => "avlyst",
        AppointmentStatus::Attended => "møtte",
        AppointmentStatus::NoShow => "møtte ikke",
    }
}

fn appointment_kind_label(k: AppointmentKind) -> &'static str {
    match k {
        AppointmentKind::InPerson => "oppmøte",
        AppointmentKind::Phone => "telefon",
        AppointmentKind::Video => "video",
        AppointmentKind::HomeVisit => "hjemmebesøk",
    }
}

fn notice_kind_label(k: NoticeKind) -> &'static str {
    match k {
        NoticeKind::Booking => "Innkalling til time",
        NoticeKind::Reschedule => "Timen er flyttet",
        NoticeKind::Cancellation => "Timen er avlyst",
        NoticeKind::Reminder => "Påminnelse om time",
        NoticeKind::NoShowFollowUp => "Oppfølging etter uteblitt time",
        NoticeKind::Free => "Beskjed",
    }
}

fn notice_status_label(s: NoticeStatus) -> &'static str {
    match s {
        NoticeStatus::Pending => "venter på plan",
        NoticeStatus::Active => "pågår: venter på at pasienten bekrefter",
        NoticeStatus::Acknowledged => "bekreftet av pasienten",
        NoticeStatus::HandedOver => "tatt over av en person",
        NoticeStatus::Superseded => "erstattet av en nyere beskjed",
    }
}

fn channel_label(c: ChannelKind) -> &'static str {
    match c {
        ChannelKind::Sms => "SMS",
        ChannelKind::Letter => "Brev",
        ChannelKind::Relay => "Lavterskeltilbud",
        ChannelKind::Outreach => "Oppsøkende team",
        ChannelKind::Coordinator => "Koordinator",
        ChannelKind::NextOfKin => "SMS til pårørende",
    }
}

fn step_status_label(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Planned => "planlagt",
        StepStatus::Queued => "venter på å bli sendt",
        StepStatus::Sending => "sendes nå",
        StepStatus::Sent => "sendt",
        StepStatus::Delivered => "levert",
        StepStatus::Failed => "feilet",
        StepStatus::Acknowledged => "bekreftet av pasienten",
        StepStatus::Expired => "ikke svar i tide",
        StepStatus::Skipped => "hoppet over",
        StepStatus::Cancelled => "ikke nødvendig lenger",
    }
}

/// Why a step was skipped or failed, in words; `None` for details that only say what happened.
fn reason_nb(reason: &str) -> Option<String> {
    let text = match reason {
        "no_contact_point" => "pasienten har ikke noe kontaktpunkt for denne kanalen",
        "contact_point_failed" => "kontaktpunktet har feilet tidligere",
        "contact_point_expired" => "kontaktpunktet har gått ut på dato",
        "contact_point_paused" => "pasienten har bedt om stopp på dette nummeret",
        "too_late" => "rekker ikke fram før timen",
        "service_not_open_before_deadline" => "tjenesten har ikke åpent før timen",
        "chain_exhausted" => "ingen av de andre stegene ble bekreftet",
        "no_phone" => "mangler telefonnummer",
        "no_organisation" => "mangler tjeneste",
        "gave_up_retrying" => "leverandøren svarte ikke, selv etter flere forsøk",
        "returned_letter" => "brevet kom i retur",
        "undeliverable" => "kunne ikke leveres til telefonen",
        "expired" => "ikke svar i tide",
        _ => return None,
    };
    Some(text.to_owned())
}

fn ack_method_label(m: AckMethod) -> &'static str {
    match m {
        AckMethod::SmsReply => "svarte på SMS",
        AckMethod::CodeAtDesk => "oppga koden i skranken",
        AckMethod::CodeByPhone => "oppga koden på telefon",
        AckMethod::Link => "trykket på lenken",
        AckMethod::RelayAttested => "lavterskeltilbudet ga beskjeden",
        AckMethod::OutreachMet => "oppsøkende team traff pasienten",
        AckMethod::StaffAttested => "en ansatt snakket med pasienten",
    }
}

/// A timeline entry's event, in words.
fn event_label(event: &str) -> String {
    let fixed = match event {
        "contact_point.added" => "Kontaktpunkt lagt til",
        "contact_point.retired" => "Kontaktpunkt trukket tilbake",
        "appointment.booked" => "Time booket",
        "appointment.rescheduled" => "Time flyttet",
        "appointment.cancelled" => "Time avlyst",
        "appointment.attended" => "Møtte til timen",
        "appointment.no_show" => "Møtte ikke til timen",
        "notice.created" => "Beskjed laget",
        "notice.acknowledged" => "Beskjed bekreftet",
        "notice.handed_over" => "Beskjed tatt over av en person",
        "task.created" => "Oppgave laget",
        "sms.ack" => "SMS fra pasienten: bekreftelse",
        "sms.reply" => "SMS fra pasienten: svar til de ansatte",
        "sms.stop" => "SMS fra pasienten: STOPP",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_owned();
    }
    if let Some(status) = event.strip_prefix("step.")
        && let Ok(s) = status.parse::<StepStatus>()
    {
        return format!("Steg {}", step_status_label(s));
    }
    if let Some(kind) = event.strip_prefix("task.") {
        return format!("Oppgave: {}", kind.replace('_', " "));
    }
    if let Some(status) = event.strip_prefix("handover.") {
        let s = match status {
            "offered" => "tilbudt",
            "accepted" => "godtatt",
            "declined" => "avslått",
            "withdrawn" => "trukket tilbake",
            other => other,
        };
        return format!("Overlevering {s}");
    }
    event.to_owned()
}

/// A Norwegian mobile as people read it: `+47 912 34 567`.
fn phone_nb(e164: &str) -> String {
    match e164.strip_prefix("+47") {
        Some(n) if n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("+47 {} {} {}", &n[..3], &n[3..5], &n[5..])
        }
        _ => e164.to_owned(),
    }
}

/// Names for the labels records carry (`staff:{id}`, `api_key:{id}`, …).
struct Names {
    staff: HashMap<Id, String>,
    orgs: HashMap<Id, Organisation>,
}

impl Names {
    async fn load(tx: &mut Tx, organisation_id: Id) -> Result<Names, WebError> {
        let staff = staff::list_staff(tx, organisation_id)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let orgs = organisations::list(tx)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        Ok(Names { staff, orgs })
    }

    /// Also learns the staff of other organisations named in the records.
    async fn learn(&mut self, tx: &mut Tx, labels: &[&str]) -> Result<(), WebError> {
        for l in labels {
            if let Some(id) = l.strip_prefix("staff:").and_then(|s| s.parse::<Id>().ok())
                && !self.staff.contains_key(&id)
            {
                match staff::get_staff(tx, id).await {
                    Ok(s) => {
                        let org = self
                            .orgs
                            .get(&s.organisation_id)
                            .map(|o| format!(" ({})", o.name))
                            .unwrap_or_default();
                        self.staff.insert(id, format!("{}{org}", s.name));
                    }
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    fn who(&self, label: &str) -> String {
        if let Some(id) = label
            .strip_prefix("staff:")
            .and_then(|s| s.parse::<Id>().ok())
        {
            return self
                .staff
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "en ansatt".into());
        }
        if label.starts_with("api_key:") {
            return "et fagsystem (API-nøkkel)".into();
        }
        match label {
            "system" => "kontaktvei".into(),
            "operator" => "driftsansvarlig".into(),
            other => other.to_owned(),
        }
    }

    fn org(&self, id: Option<Id>) -> String {
        id.and_then(|id| self.orgs.get(&id))
            .map_or_else(|| "ukjent tjeneste".into(), |o| o.name.clone())
    }
}

fn contact_point_value(cp: &ContactPoint, names: &Names) -> String {
    match cp.kind {
        ContactKind::Sms => cp.phone.as_deref().map(phone_nb).unwrap_or_default(),
        ContactKind::Postal => cp.address.as_ref().map_or_else(String::new, |a| {
            let mut s = format!("{}, {} {}", a.lines.join(", "), a.postal_code, a.place);
            if a.country != "NO" {
                s.push_str(&format!(", {}", a.country));
            }
            s
        }),
        ContactKind::Relay | ContactKind::Outreach => {
            let mut s = names.org(cp.organisation_id);
            if let Some(p) = &cp.phone {
                s.push_str(&format!(", tlf. {}", phone_nb(p)));
            }
            s
        }
        ContactKind::NextOfKin => {
            let mut s = cp.contact_name.clone().unwrap_or_default();
            if let Some(r) = &cp.relation {
                s.push_str(&format!(" ({r})"));
            }
            if let Some(p) = &cp.phone {
                s.push_str(&format!(", {}", phone_nb(p)));
            }
            s
        }
    }
}

/// A contact point in a few words, for the notice steps: "SMS +47 912 34 567".
fn contact_point_short(cp: &ContactPoint, names: &Names) -> String {
    let kind = match cp.kind {
        ContactKind::Sms => "SMS",
        ContactKind::Postal => "Adresse",
        ContactKind::Relay => "Lavterskeltilbud",
        ContactKind::Outreach => "Team",
        ContactKind::NextOfKin => "Pårørende",
    };
    format!("{kind}: {}", contact_point_value(cp, names))
}

// ---------------------------------------------------------------------------------------------
// The search page and registering a patient.

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    navn: Option<String>,
    fodt: Option<String>,
}

const SEARCH_LIMIT: u32 = 50;

pub async fn search(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Query(q): Query<SearchQuery>,
) -> Result<Page, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let rights = rights(&mut tx, &session).await?;
    tx.commit().await?;
    if !rights.may(roles::READ_PATIENT) {
        denied(&ctx, &session, "patient.list", None).await;
        return Err(refusal(
            &session,
            rights,
            roles::READ_PATIENT,
            "slå opp pasienter",
        ));
    }
    search_page(&ctx, &session, rights, &q, None).await
}

async fn search_page(
    ctx: &AppContext,
    session: &StaffSession,
    rights: Rights,
    q: &SearchQuery,
    draft: Option<&Draft>,
) -> Result<Page, WebError> {
    let name = q.navn.as_deref().map(str::trim).unwrap_or_default();
    let born = q.fodt.as_deref().map(str::trim).unwrap_or_default();
    let mut search = Draft::new("sok", &Fields::new());
    search
        .values
        .insert("navn".into(), q.navn.clone().unwrap_or_default());
    search
        .values
        .insert("fodt".into(), q.fodt.clone().unwrap_or_default());
    let birth_year = if born.is_empty() {
        None
    } else {
        match born.parse::<i32>() {
            Ok(y) if (1900..=2100).contains(&y) => Some(y),
            _ => {
                search.error("fodt", "Skriv fødselsåret med fire sifre, f.eks. 1979.");
                None
            }
        }
    };
    let searched = (!name.is_empty() || birth_year.is_some()) && !search.is_wrong();
    let mut results = Vec::new();
    let mut more = false;
    let mut tx = ctx.store.begin().await?;
    if searched {
        let filter = PatientFilter {
            name_contains: Some(name.to_owned()).filter(|n| !n.is_empty()),
            birth_year,
            after: None,
            limit: SEARCH_LIMIT,
        };
        let (found, m) = patients::list(&mut tx, session.organisation_id, &filter).await?;
        more = m;
        for p in &found {
            record(ctx, &mut tx, session, "patient.list", p.id, None).await?;
            results.push(context! {
                href => format!("/staff/pasienter/{}", p.id),
                name => p.name.clone(),
                born => p.birth_date.map_or_else(|| p.birth_year.to_string(), date_nb),
                language => language_label(&p.language),
            });
        }
    }
    let coordinators: Vec<(String, String)> = if rights.may(roles::WRITE_PATIENT) {
        staff::list_staff(&mut tx, session.organisation_id)
            .await?
            .into_iter()
            .filter(|s| s.role == Role::Coordinator)
            .map(|s| (s.id.to_string(), s.name))
            .collect()
    } else {
        Vec::new()
    };
    tx.commit().await?;

    let mut search_form = form(
        "sok",
        "/staff/pasienter".into(),
        "Søk",
        Some(&search),
        vec![plain(vec![
            text("navn", "Navn").hint("Hele eller deler av navnet."),
            text("fodt", "Fødselsår")
                .hint("Fire sifre, f.eks. 1979. Valgfritt.")
                .numeric(),
        ])],
    );
    search_form.post = false;
    search_form.wrong = search.is_wrong();
    let register = rights.may(roles::WRITE_PATIENT).then(|| {
        let mut coordinator_options = vec![(String::new(), "Ingen ennå".to_owned())];
        coordinator_options.extend(coordinators);
        form(
            "ny",
            "/staff/pasienter".into(),
            "Registrer pasienten",
            draft,
            vec![plain(vec![
                text("name", "Navn")
                    .required()
                    .hint("Fornavn og etternavn."),
                text("birth_date", "Fødselsdato")
                    .hint("Skriv datoen som 24.12.1979. Vet dere bare året, bruk feltet under.")
                    .numeric(),
                text("birth_year", "Fødselsår (hvis dere ikke vet datoen)")
                    .hint("Fire sifre, f.eks. 1979.")
                    .numeric(),
                text("national_id", "Fødselsnummer eller D-nummer (valgfritt)")
                    .hint("11 siffer uten mellomrom.")
                    .numeric(),
                text("language", "Språk for beskjeder")
                    .select(language_options())
                    .default("nb"),
                text(
                    "contact_notes",
                    "Hva hjelper for å nå pasienten? (valgfritt)",
                )
                .hint("Slik pasienten har sagt ja til, f.eks. «er ofte på dagsenteret tirsdager».")
                .area(),
                text("coordinator_id", "Koordinator (valgfritt)").select(coordinator_options),
            ])],
        )
    });
    let mut wrong: Vec<&FormView> = vec![&search_form];
    if let Some(r) = &register {
        wrong.push(r);
    }
    let errors = summary(&wrong);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(Page::new(
        "clinic/patients.html",
        context! {
            title => if errors.is_empty() { "Pasienter" } else { "Feil i skjemaet – Pasienter" },
            search => Value::from(Serde(&search_form)),
            register => Value::from(Serde(&register)),
            searched,
            count => results.len(),
            results,
            more,
            limit => SEARCH_LIMIT,
            errors,
            ..staff_context(session)
        },
    )
    .with_status(status))
}

fn patient_error(draft: &mut Draft, e: &FieldError) {
    let m = e.message.as_str();
    let (field, text) = match e.field.as_str() {
        "name" => ("name", "Skriv pasientens navn (1–200 tegn).".to_owned()),
        "birth_year" if m.contains("give birth_year") => (
            "birth_date",
            "Skriv fødselsdatoen, eller fødselsåret hvis dere ikke vet datoen, så dere kan skille personer med samme navn.".to_owned(),
        ),
        "birth_year" => (
            "birth_year",
            format!(
                "Fødselsåret må være mellom 1900 og {}. Skriv det med fire sifre, f.eks. 1979.",
                Utc::now().year()
            ),
        ),
        "birth_date" if m.contains("future") => (
            "birth_date",
            "Fødselsdatoen kan ikke være fram i tid. Skriv datoen som 24.12.1979.".to_owned(),
        ),
        "birth_date" => (
            "birth_year",
            "Fødselsåret stemmer ikke med fødselsdatoen. Rett ett av dem, eller tøm fødselsåret."
                .to_owned(),
        ),
        "language" => ("language", "Velg et språk fra lista.".to_owned()),
        "contact_notes" => (
            "contact_notes",
            "Skriv høyst 2000 tegn her. Kort ned teksten.".to_owned(),
        ),
        "national_id" if m.contains("11 digits") => (
            "national_id",
            "Et fødselsnummer har 11 siffer. Skriv det uten mellomrom, f.eks. 01010750160."
                .to_owned(),
        ),
        "national_id" if m.contains("date") => (
            "national_id",
            "De seks første sifrene er ikke en gyldig dato (ddmmåå). Sjekk nummeret.".to_owned(),
        ),
        "national_id" => (
            "national_id",
            "Kontrollsifrene stemmer ikke. Sjekk om det er en skrivefeil.".to_owned(),
        ),
        "coordinator_id" => ("coordinator_id", "Velg en koordinator fra lista.".to_owned()),
        _ => {
            draft.general.push(format!("Noe i skjemaet er feil ({}).", e.field));
            return;
        }
    };
    draft.error(field, text);
}

pub async fn register(
    State(ctx): State<AppContext>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let rights = rights(&mut tx, &session).await?;
    tx.commit().await?;
    if !rights.may(roles::WRITE_PATIENT) {
        denied(&ctx, &session, "patient.create", None).await;
        return Err(refusal(
            &session,
            rights,
            roles::WRITE_PATIENT,
            "registrere pasienter",
        ));
    }
    let mut draft = Draft::new("ny", &form);
    let birth_date = draft.opt("birth_date").and_then(|d| {
        let parsed = parse_date(&d);
        if parsed.is_none() {
            draft.error(
                "birth_date",
                format!("«{d}» er ikke en dato vi forstår. Skriv datoen som 24.12.1979."),
            );
        }
        parsed
    });
    let birth_year = draft.opt("birth_year").and_then(|y| {
        let parsed = y.parse::<i32>().ok().filter(|y| (1000..=9999).contains(y));
        if parsed.is_none() {
            draft.error(
                "birth_year",
                "Skriv fødselsåret med fire sifre, f.eks. 1979.",
            );
        }
        parsed
    });
    let coordinator_id = draft.opt("coordinator_id").and_then(|c| {
        let parsed = c.parse::<Id>().ok();
        if parsed.is_none() {
            draft.error("coordinator_id", "Velg en koordinator fra lista.");
        }
        parsed
    });
    let national_id = draft.opt("national_id").map(|n| n.replace(' ', ""));
    if draft.opt("name").is_none() {
        draft.error("name", "Skriv pasientens navn, f.eks. Kari Nordmann.");
    }
    if draft.opt("birth_date").is_none() && draft.opt("birth_year").is_none() {
        draft.error(
            "birth_date",
            "Skriv fødselsdatoen (f.eks. 24.12.1979), eller fødselsåret hvis dere ikke vet datoen.",
        );
    }
    if !draft.is_wrong() {
        let new = NewPatient {
            name: draft.value("name").to_owned(),
            birth_year,
            birth_date,
            language: Some(draft.opt("language").unwrap_or_else(|| "nb".into())),
            contact_notes: draft.value("contact_notes").to_owned(),
            national_id,
            coordinator_id,
        };
        let mut tx = ctx.store.begin().await?;
        match patients::create(&mut tx, session.organisation_id, new, ctx.clock.now()).await {
            Ok(p) => {
                record(&ctx, &mut tx, &session, "patient.create", p.id, None).await?;
                tx.commit().await?;
                return Ok(Redirect::to(&format!("/staff/pasienter/{}", p.id)).into_response());
            }
            Err(StoreError::Invalid(errors)) => {
                for e in &errors {
                    patient_error(&mut draft, e);
                }
            }
            Err(StoreError::Conflict(_)) => draft.error(
                "national_id",
                "En pasient med dette fødselsnummeret er allerede registrert her. Søk opp pasienten i stedet.",
            ),
            Err(e) => return Err(e.into()),
        }
    }
    let page = search_page(
        &ctx,
        &session,
        rights,
        &SearchQuery::default(),
        Some(&draft),
    )
    .await?;
    Ok(page.into_response())
}

// ---------------------------------------------------------------------------------------------
// The patient page.

pub async fn show(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let Some((patient, rights)) = open_patient(
        &ctx,
        &session,
        &id,
        roles::READ_PATIENT,
        "patient.read",
        "se pasientsider",
    )
    .await?
    else {
        return Ok(not_found());
    };
    Ok(patient_page(&ctx, &session, &patient, rights, None)
        .await?
        .into_response())
}

fn contact_point_form(draft: Option<&Draft>, patient: Id, services: &[&Organisation]) -> FormView {
    let kinds = ContactKind::ALL
        .iter()
        .map(|k| (k.as_str(), contact_kind_label(*k)));
    let mut kind_options = vec![("", "Velg type")];
    kind_options.extend(kinds);
    let mut provenance_options = vec![("", "Velg hvor det kommer fra")];
    provenance_options.extend(
        Provenance::ALL
            .iter()
            .map(|p| (p.as_str(), provenance_label(*p))),
    );
    let mut org_options = vec![(String::new(), "Ingen".to_owned())];
    org_options.extend(services.iter().map(|o| {
        (
            o.id.to_string(),
            format!("{} ({})", o.name, org_kind_label(o.kind)),
        )
    }));
    form(
        "kp",
        format!("/staff/pasienter/{patient}/kontaktpunkter"),
        "Legg til kontaktpunktet",
        draft,
        vec![
            plain(vec![
                text("kind", "Type").select(kind_options).required(),
                text("provenance", "Hvor kommer opplysningen fra?")
                    .select(provenance_options)
                    .required(),
            ]),
            fieldset(
                "Telefon",
                Some(
                    "For SMS og pårørende. For lavterskeltilbud: et nummer der tjenesten kan nå pasienten (valgfritt).",
                ),
                vec![
                    text("phone", "Telefonnummer").hint("F.eks. 912 34 567 eller +47 912 34 567."),
                ],
            ),
            fieldset(
                "Postadresse",
                Some("For brev."),
                vec![
                    text("lines", "Adresselinjer")
                        .hint("Én linje per rad: mottaker, c/o hvis noen, gateadresse.")
                        .area(),
                    text("postal_code", "Postnummer")
                        .hint("Fire siffer, f.eks. 0155.")
                        .numeric(),
                    text("place", "Poststed").hint("F.eks. OSLO."),
                    text("country", "Land (hvis ikke Norge)")
                        .hint("To bokstaver, f.eks. SE. Tomt betyr Norge."),
                ],
            ),
            fieldset(
                "Tjeneste",
                Some("For lavterskeltilbud og oppsøkende team. Pasienten blir delt med tjenesten."),
                vec![text("organisation_id", "Tjeneste").select(org_options)],
            ),
            fieldset(
                "Pårørende",
                Some(
                    "Bare med pasientens samtykke. Den pårørende blir bare bedt om å si at pasienten skal ringe oss.",
                ),
                vec![
                    text("contact_name", "Navn på pårørende"),
                    text("relation", "Relasjon (valgfritt)").hint("F.eks. søster."),
                    text(
                        "consent_recorded",
                        "Pasienten har samtykket til at vi kontakter denne pårørende",
                    )
                    .checkbox(),
                    text("consent_given_by", "Hvem ga samtykket, og til hvem?")
                        .hint("F.eks. «pasienten, til sykepleier Kari Nordmann»."),
                ],
            ),
            fieldset(
                "Mer om kontaktpunktet",
                None,
                vec![
                    text("verified_by", "Bekreftet av (valgfritt)")
                        .hint("Tomt: deg, når du har bekreftet det selv ansikt til ansikt."),
                    text("expires", "Gjelder til og med (valgfritt)")
                        .hint("Skriv datoen som 24.12.2026. Etter den dagen brukes det ikke.")
                        .numeric(),
                    text("note", "Merknad (valgfritt)"),
                ],
            ),
        ],
    )
}

fn book_form(draft: Option<&Draft>, patient: Id, place: &str) -> FormView {
    form(
        "time",
        format!("/staff/pasienter/{patient}/timer"),
        "Book timen",
        draft,
        vec![plain(vec![
            text("date", "Dato").required().hint(DATE_HINT).numeric(),
            text("time", "Klokkeslett")
                .required()
                .hint("Skriv klokkeslettet som 10:30.")
                .numeric(),
            text("duration", "Varighet i minutter")
                .default("30")
                .numeric(),
            text("place", "Sted")
                .required()
                .hint("Slik pasienten skal lese det: adresse, etasje, dør.")
                .default(place),
            text("kind", "Type time")
                .select(
                    AppointmentKind::ALL
                        .iter()
                        .map(|k| (k.as_str(), appointment_kind_label(*k))),
                )
                .default("in_person"),
        ])],
    )
}

fn reschedule_form(draft: Option<&Draft>, a: &Appointment) -> FormView {
    let local = a.starts_at.with_timezone(&OSLO);
    form(
        &format!("flytt-{}", a.id),
        format!("/staff/timer/{}/flytt", a.id),
        "Flytt timen",
        draft,
        vec![plain(vec![
            text("date", "Ny dato")
                .required()
                .hint(DATE_HINT)
                .numeric()
                .default(date_nb(local.date_naive())),
            text("time", "Nytt klokkeslett")
                .required()
                .hint("Skriv klokkeslettet som 10:30.")
                .numeric()
                .default(local.format("%H:%M").to_string()),
            text("duration", "Varighet i minutter")
                .numeric()
                .default(a.duration_minutes.to_string()),
            text("place", "Sted").default(a.place.clone()),
            text("reason", "Grunn (valgfritt)").hint("Kommer i historikken, ikke i beskjeden."),
        ])],
    )
}

fn cancel_form(draft: Option<&Draft>, a: &Appointment) -> FormView {
    form(
        &format!("avlys-{}", a.id),
        format!("/staff/timer/{}/avlys", a.id),
        "Avlys timen",
        draft,
        vec![plain(vec![
            text("reason", "Grunn (valgfritt)").hint("Kommer i historikken, ikke i beskjeden."),
        ])],
    )
}

fn retire_form(draft: Option<&Draft>, patient: Id, cp: Id) -> FormView {
    form(
        &format!("trekk-{cp}"),
        format!("/staff/pasienter/{patient}/kontaktpunkter/{cp}/trekk-tilbake"),
        "Trekk tilbake",
        draft,
        vec![plain(vec![
            text("reason", "Hvorfor?")
                .required()
                .hint("F.eks. «har flyttet fra hospitset»."),
        ])],
    )
}

async fn patient_page(
    ctx: &AppContext,
    session: &StaffSession,
    patient: &Patient,
    rights: Rights,
    draft: Option<&Draft>,
) -> Result<Page, WebError> {
    let now = ctx.clock.now();
    let pid = patient.id;
    let mut tx = ctx.store.begin().await?;
    record(ctx, &mut tx, session, "patient.read", pid, None).await?;
    let points = contact_points::list(&mut tx, pid).await?;
    record(ctx, &mut tx, session, "contact_point.list", pid, None).await?;
    let mut names = Names::load(&mut tx, session.organisation_id).await?;
    let clinical = rights.may(roles::READ_APPOINTMENT);
    let (appts, notice_list, entries) = if clinical {
        let appts = appointments::for_patient(&mut tx, pid).await?;
        record(ctx, &mut tx, session, "appointment.list", pid, None).await?;
        let mut histories = Vec::new();
        for a in &appts {
            histories.push(appointments::history(&mut tx, a.id).await?);
        }
        let ns = notices::for_patient(&mut tx, pid).await?;
        record(ctx, &mut tx, session, "notice.list", pid, None).await?;
        let mut with_steps = Vec::new();
        for n in ns {
            let s = steps::for_notice(&mut tx, n.id).await?;
            let e = steps::events_for_notice(&mut tx, n.id).await?;
            let ack = acks::for_notice(&mut tx, n.id).await?;
            record(ctx, &mut tx, session, "notice.read", pid, Some(n.id)).await?;
            with_steps.push((n, s, e, ack));
        }
        let entries = timeline::for_patient(&mut tx, pid).await?;
        record(ctx, &mut tx, session, "timeline.read", pid, None).await?;
        (
            appts.into_iter().zip(histories).collect::<Vec<_>>(),
            with_steps,
            entries,
        )
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let mut labels: Vec<&str> = points
        .iter()
        .flat_map(|c| [Some(c.created_by.as_str()), c.verified_by.as_deref()])
        .flatten()
        .collect();
    labels.extend(
        appts
            .iter()
            .flat_map(|(_, h)| h.iter().map(|e| e.actor.as_str())),
    );
    labels.extend(entries.iter().filter_map(|e| e.actor.as_deref()));
    let coordinator = match patient.coordinator_id {
        Some(c) => {
            let l = format!("staff:{c}");
            names.learn(&mut tx, &[&l]).await?;
            Some(names.who(&l))
        }
        None => None,
    };
    names.learn(&mut tx, &labels).await?;
    tx.commit().await?;

    // Contact points, newest first; the retire form for those still in use.
    let write_cp = rights.may(roles::WRITE_CONTACT_POINT);
    let mut cps = Vec::new();
    let mut forms_out: Vec<FormView> = Vec::new();
    // In use first, newest first within each.
    let mut ordered: Vec<&ContactPoint> = points.iter().rev().collect();
    ordered.sort_by_key(|c| c.status == ContactStatus::Retired || !c.is_live(now));
    for cp in ordered {
        let verified = match (&cp.verified_by, cp.verified_at) {
            (Some(by), Some(at)) => Some(format!("{} av {}", when_nb(at), names.who(by))),
            (None, Some(at)) => Some(when_nb(at)),
            (Some(by), None) => Some(format!("av {}", names.who(by))),
            (None, None) => None,
        };
        let mut status = contact_status_label(cp.status).to_owned();
        if let Some(r) = &cp.failure_reason {
            status.push_str(&format!(": {}", reason_nb(r).unwrap_or_else(|| r.clone())));
        }
        if let (Some(at), Some(why)) = (cp.retired_at, &cp.retired_reason) {
            status = format!("trukket tilbake {}: {why}", when_nb(at));
        }
        let expired = cp.expires_at.is_some_and(|e| e <= now);
        let retire = (write_cp && cp.status != ContactStatus::Retired)
            .then(|| retire_form(draft, pid, cp.id));
        if let Some(f) = &retire
            && f.wrong
        {
            forms_out.push(retire_form(draft, pid, cp.id));
        }
        cps.push(context! {
            id => cp.id.to_string(),
            kind => contact_kind_label(cp.kind),
            value => contact_point_value(cp, &names),
            provenance => provenance_label(cp.provenance),
            verified,
            status,
            live => cp.is_live(now),
            expires => cp.expires_at.map(|e| (if expired { "gikk ut " } else { "gjelder til " }).to_owned() + &when_nb(e)),
            consent => cp.consent_given_by.as_ref().map(|by| format!("Samtykke gitt av {by}{}", cp.consent_given_at.map(|t| format!(", {}", when_nb(t))).unwrap_or_default())),
            note => cp.note.clone(),
            added => format!("{} av {}", when_nb(cp.created_at), names.who(&cp.created_by)),
            retire => Value::from(Serde(&retire)),
        });
    }
    let services: Vec<&Organisation> = names
        .orgs
        .values()
        .filter(|o| o.kind != OrganisationKind::Clinic)
        .collect::<Vec<_>>();
    let mut services = services;
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let add_cp = write_cp.then(|| contact_point_form(draft, pid, &services));

    // Appointments, soonest first, with what may be done with each.
    let write_appt = rights.may(roles::WRITE_APPOINTMENT);
    let mut appt_views = Vec::new();
    let mut starts: HashMap<Id, DateTime<Utc>> = HashMap::new();
    // Those still to come first (soonest first), then the rest (latest first).
    let mut ordered: Vec<&(Appointment, Vec<appointments::AppointmentEvent>)> =
        appts.iter().collect();
    ordered.sort_by_key(|(a, _)| {
        let open = a.status.is_open();
        (
            !open,
            if open {
                a.starts_at.timestamp()
            } else {
                -a.starts_at.timestamp()
            },
        )
    });
    for (a, history) in ordered {
        starts.insert(a.id, a.starts_at);
        let ours = a.organisation_id == session.organisation_id;
        let can_change = write_appt && ours && a.status.is_open();
        let events: Vec<String> = history
            .iter()
            .map(|e| {
                let mut s = format!(
                    "{}: {} av {}",
                    when_nb(e.at),
                    appointment_status_label(e.status),
                    names.who(&e.actor)
                );
                if e.status == AppointmentStatus::Rescheduled {
                    s.push_str(&format!(" (til {})", when_nb(e.starts_at)));
                }
                if let Some(r) = &e.reason {
                    s.push_str(&format!(", grunn: {r}"));
                }
                s
            })
            .collect();
        let flytt = can_change.then(|| reschedule_form(draft, a));
        let avlys = can_change.then(|| cancel_form(draft, a));
        appt_views.push(context! {
            id => a.id.to_string(),
            when => when_nb(a.starts_at),
            duration => a.duration_minutes,
            place => a.place.clone(),
            kind => appointment_kind_label(a.kind),
            status => appointment_status_label(a.status),
            open => a.status.is_open(),
            past => a.starts_at <= now,
            events,
            org => (!ours).then(|| names.org(Some(a.organisation_id))),
            reschedule => Value::from(Serde(&flytt)),
            cancel => Value::from(Serde(&avlys)),
            // From two hours before the start (attended) and from the start (did not come).
            attended => can_change && now >= a.starts_at - TimeDelta::hours(2),
            no_show => can_change && now >= a.starts_at,
            attendance_later => can_change && now < a.starts_at - TimeDelta::hours(2),
        });
        if let Some(f) = flytt
            && f.wrong
        {
            forms_out.push(f);
        }
        if let Some(f) = avlys
            && f.wrong
        {
            forms_out.push(f);
        }
    }
    let last_place = appts
        .iter()
        .rev()
        .find(|(a, _)| a.organisation_id == session.organisation_id)
        .map(|(a, _)| a.place.clone())
        .unwrap_or_default();
    let book = write_appt.then(|| book_form(draft, pid, &last_place));

    // The notices, newest first, each with its steps in order.
    let by_id: HashMap<Id, &ContactPoint> = points.iter().map(|c| (c.id, c)).collect();
    let mut notice_views = Vec::new();
    for (n, steps, events, ack) in &notice_list {
        let rows: Vec<Value> = steps
            .iter()
            .map(|s| step_view(s, events, &by_id, &names))
            .collect();
        let appointment = n
            .appointment_id
            .and_then(|id| starts.get(&id))
            .map(|t| when_nb(*t));
        notice_views.push(context! {
            id => n.id.to_string(),
            kind => notice_kind_label(n.kind),
            created => when_nb(n.created_at),
            status => notice_status_label(n.status),
            open => n.status.is_open(),
            appointment,
            deadline => n.deadline.map(when_nb),
            ack => ack.as_ref().map(|a| format!("{} {}", ack_method_label(a.method), when_nb(a.at))),
            closed => n.closed_at.map(when_nb),
            steps => rows,
        });
    }
    let history: Vec<Value> = entries
        .iter()
        .rev()
        .map(|e| {
            context! {
                when => when_nb(e.at),
                what => event_label(&e.event),
                who => e.actor.as_deref().map(|a| names.who(a)),
            }
        })
        .collect();

    let mut all: Vec<&FormView> = forms_out.iter().collect();
    if let Some(f) = &add_cp {
        all.push(f);
    }
    if let Some(f) = &book {
        all.push(f);
    }
    let errors = summary(&all);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let born = match patient.birth_date {
        Some(d) => date_nb(d),
        None => format!("{} (bare året)", patient.birth_year),
    };
    Ok(Page::new(
        "clinic/patient.html",
        context! {
            title => if errors.is_empty() { patient.name.clone() } else { format!("Feil i skjemaet – {}", patient.name) },
            patient => context! {
                id => pid.to_string(),
                name => patient.name.clone(),
                born,
                national_id => patient.national_id.clone(),
                language => language_label(&patient.language),
                notes => Some(patient.contact_notes.clone()).filter(|n| !n.is_empty()),
                coordinator,
                registered => when_nb(patient.created_at),
            },
            contact_points => cps,
            add_cp => Value::from(Serde(&add_cp)),
            clinical,
            appointments => appt_views,
            book => Value::from(Serde(&book)),
            notices => notice_views,
            history,
            errors,
            ..staff_context(session)
        },
    )
    .with_status(status))
}

fn step_view(
    s: &Step,
    events: &[kontaktvei_store::steps::StepEvent],
    points: &HashMap<Id, &ContactPoint>,
    names: &Names,
) -> Value {
    let via = s
        .contact_point_id
        .and_then(|id| points.get(&id))
        .map(|cp| contact_point_short(cp, names));
    let why = s
        .reason
        .as_deref()
        .map(|r| reason_nb(r).unwrap_or_else(|| r.to_owned()));
    let mut what = match (s.status, s.channel, s.reason.as_deref()) {
        (StepStatus::Failed, ChannelKind::Letter, Some("returned_letter")) => {
            "kom i retur".to_owned()
        }
        (st, _, _) => step_status_label(st).to_owned(),
    };
    if let Some(w) = &why
        && matches!(
            s.status,
            StepStatus::Skipped | StepStatus::Failed | StepStatus::Expired
        )
        && w != &what
    {
        what = format!("{what}: {w}");
    }
    let when = match s.status {
        StepStatus::Planned => s.due_at.map(|t| format!("tidligst {}", when_nb(t))),
        StepStatus::Queued => s.due_at.map(when_nb),
        StepStatus::Sending | StepStatus::Sent | StepStatus::Delivered => {
            s.sent_at.or(Some(s.updated_at)).map(when_nb)
        }
        _ => s.finished_at.or(Some(s.updated_at)).map(when_nb),
    };
    let waits = (s.status.is_waiting())
        .then_some(s.window_ends_at)
        .flatten()
        .map(|t| format!("Venter på svar til {}", when_nb(t)));
    // What happened after it was handed on; the planning and queueing are noise here.
    let mut history: Vec<String> = events
        .iter()
        .filter(|e| e.step_id == s.id)
        .filter(|e| {
            matches!(
                e.status,
                StepStatus::Sent
                    | StepStatus::Delivered
                    | StepStatus::Failed
                    | StepStatus::Acknowledged
                    | StepStatus::Expired
            )
        })
        .map(|e| {
            let mut line = format!("{}: {}", when_nb(e.at), step_status_label(e.status));
            if let Some(d) = e.detail.as_deref().and_then(reason_nb) {
                line.push_str(&format!(" ({d})"));
            }
            line
        })
        .collect();
    if history.len() < 2 {
        history.clear();
    }
    context! {
        position => s.position + 1,
        channel => channel_label(s.channel),
        via => via.unwrap_or_else(|| match s.channel {
            ChannelKind::Coordinator => "pasientens koordinator".to_owned(),
            _ => "–".to_owned(),
        }),
        what,
        skipped => s.status == StepStatus::Skipped,
        failed => s.status == StepStatus::Failed,
        when => when.unwrap_or_else(|| "–".into()),
        waits,
        history,
    }
}

// ---------------------------------------------------------------------------------------------
// Contact points.

fn contact_point_error(draft: &mut Draft, e: &FieldError) {
    let m = e.message.as_str();
    let field = match e.field.as_str() {
        f if f.starts_with("lines") => "lines",
        "consent_given_at" => "consent_given_by",
        "expires_at" => "expires",
        f => f,
    };
    if m.contains("does not belong") {
        let what = match field {
            "phone" => "Telefonnummer",
            "lines" | "postal_code" | "place" | "country" => "Adressen",
            "organisation_id" => "Tjenesten",
            _ => "Opplysningen om pårørende",
        };
        draft.error(
            field,
            format!("{what} hører ikke til denne typen kontaktpunkt. Tøm feltet, eller velg en annen type."),
        );
        return;
    }
    let text = match field {
        "phone" if m.contains("needs") || m.contains("give a phone") => {
            "Skriv telefonnummeret, f.eks. 912 34 567 eller +47 912 34 567."
        }
        "phone" if m.contains("machine-to-machine") => {
            "Numre som begynner på 59 er maskin-SIM-kort, ikke en person. Skriv pasientens mobilnummer."
        }
        "phone" if m.contains("not a mobile") => {
            "Dette er ikke et mobilnummer og kan ikke få SMS. Skriv et mobilnummer, eller legg det inn som pårørende."
        }
        "phone" if m.contains("valid") => {
            "Nummeret er ikke gyldig. Sjekk sifrene og landskoden (+47 for Norge)."
        }
        "phone" => "Dette er ikke et telefonnummer. Skriv det som 912 34 567 eller +47 912 34 567.",
        "lines" if m.contains("1–5") => {
            "Skriv 1–5 adresselinjer, én per rad: mottaker, c/o hvis noen, gateadresse."
        }
        "lines" => {
            "Hver adresselinje må ha 1–60 tegn (det som får plass i vinduskonvolutten). Fjern tomme linjer."
        }
        "postal_code" if m.contains("4 digits") => {
            "Et norsk postnummer har fire siffer, f.eks. 0155."
        }
        "postal_code" => "Skriv postnummeret, f.eks. 0155.",
        "place" => "Skriv poststedet, f.eks. OSLO.",
        "country" => "Skriv landet som to bokstaver, f.eks. SE. Tomt betyr Norge.",
        "organisation_id" if m.contains("this organisation is a") => {
            "Denne tjenesten passer ikke til typen: et lavterskeltilbud må være et lavterskeltilbud eller en hjemmetjeneste, et oppsøkende team et oppsøkende team eller en hjemmetjeneste."
        }
        "organisation_id" => "Velg tjenesten som skal nå pasienten.",
        "contact_name" => "Skriv navnet på den pårørende.",
        "consent_recorded" => {
            "En pårørende kan bare kontaktes med pasientens samtykke. Kryss av når samtykket er gitt."
        }
        "consent_given_by" => {
            "Skriv hvem som ga samtykket, f.eks. «pasienten, til sykepleier Kari Nordmann»."
        }
        "expires" => {
            "Datoen har passert. Tøm feltet, eller skriv en dato fram i tid, f.eks. 24.12.2026."
        }
        _ => {
            draft
                .general
                .push(format!("Noe i skjemaet er feil ({}).", e.field));
            return;
        }
    };
    draft.error(field, text);
}

pub async fn add_contact_point(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let Some((patient, rights)) = open_patient(
        &ctx,
        &session,
        &id,
        roles::WRITE_CONTACT_POINT,
        "contact_point.add",
        "legge til kontaktpunkter",
    )
    .await?
    else {
        return Ok(not_found());
    };
    let mut draft = Draft::new("kp", &form);
    let kind = draft
        .opt("kind")
        .and_then(|k| k.parse::<ContactKind>().ok());
    if kind.is_none() {
        draft.error("kind", "Velg hvilken type kontaktpunkt dette er.");
    }
    let provenance = draft
        .opt("provenance")
        .and_then(|p| p.parse::<Provenance>().ok());
    if provenance.is_none() {
        draft.error(
            "provenance",
            "Velg hvor opplysningen kommer fra, f.eks. «Oppgitt av pasienten».",
        );
    }
    if matches!(kind, Some(ContactKind::Relay | ContactKind::Outreach))
        && !rights.may(roles::SHARE_PATIENT)
    {
        denied(&ctx, &session, "contact_point.add", Some(patient.id)).await;
        return Err(refusal(
            &session,
            rights,
            roles::SHARE_PATIENT,
            "legge til lavterskeltilbud eller oppsøkende team (det deler pasienten med tjenesten)",
        ));
    }
    let organisation_id = draft.opt("organisation_id").and_then(|o| {
        let parsed = o.parse::<Id>().ok();
        if parsed.is_none() {
            draft.error("organisation_id", "Velg en tjeneste fra lista.");
        }
        parsed
    });
    let expires_at = draft.opt("expires").and_then(|d| {
        let parsed = parse_date(&d);
        if parsed.is_none() {
            draft.error(
                "expires",
                format!("«{d}» er ikke en dato vi forstår. {DATE_HINT}"),
            );
        }
        // To the end of that day: from midnight after it, it is no longer used.
        parsed
            .and_then(|d| d.succ_opt())
            .map(|d| oslo_instant(d, NaiveTime::MIN))
    });
    let lines = draft.opt("lines").map(|l| {
        l.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let consent = draft.value("consent_recorded") == "ja";
    if draft.is_wrong() {
        let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
        return Ok(page.into_response());
    }
    let (Some(kind), Some(provenance)) = (kind, provenance) else {
        return Err(WebError::BadForm);
    };
    let new = NewContactPoint {
        kind,
        provenance,
        phone: draft.opt("phone"),
        lines,
        postal_code: draft.opt("postal_code"),
        place: draft.opt("place"),
        country: draft.opt("country"),
        organisation_id,
        contact_name: draft.opt("contact_name"),
        relation: draft.opt("relation"),
        consent_recorded: consent,
        consent_given_by: draft.opt("consent_given_by"),
        consent_given_at: None,
        verified_by: draft.opt("verified_by"),
        verified_at: None,
        expires_at,
        note: draft.opt("note"),
    };
    let mut tx = ctx.store.begin().await?;
    let now = ctx.clock.now();
    match contact_points::add(&mut tx, patient.id, new, &session.label(), now).await {
        Ok(cp) => {
            if let Some(org) = cp.organisation_id
                && patients::share(&mut tx, patient.id, org, now).await?
            {
                record(
                    &ctx,
                    &mut tx,
                    &session,
                    "patient.share",
                    patient.id,
                    Some(org),
                )
                .await?;
            }
            record(
                &ctx,
                &mut tx,
                &session,
                "contact_point.add",
                patient.id,
                Some(cp.id),
            )
            .await?;
            tx.commit().await?;
            Ok(
                Redirect::to(&format!("/staff/pasienter/{}#kontaktpunkter", patient.id))
                    .into_response(),
            )
        }
        Err(StoreError::Invalid(errors)) => {
            drop(tx);
            for e in &errors {
                contact_point_error(&mut draft, e);
            }
            let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
            Ok(page.into_response())
        }
        Err(StoreError::Conflict(_)) => {
            drop(tx);
            draft.general.push(
                "Pasienten har allerede dette kontaktpunktet i bruk. Skal det erstattes, trekk tilbake det gamle først."
                    .into(),
            );
            let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
            Ok(page.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn retire_contact_point(
    State(ctx): State<AppContext>,
    Path((id, cp)): Path<(String, String)>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let Some((patient, rights)) = open_patient(
        &ctx,
        &session,
        &id,
        roles::WRITE_CONTACT_POINT,
        "contact_point.retire",
        "trekke tilbake kontaktpunkter",
    )
    .await?
    else {
        return Ok(not_found());
    };
    let Ok(cp_id) = cp.parse::<Id>() else {
        return Ok(not_found());
    };
    let mut draft = Draft::new(format!("trekk-{cp_id}"), &form);
    let reason = draft.value("reason").to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        draft.error(
            "reason",
            "Skriv hvorfor kontaktpunktet ikke skal brukes lenger (1–500 tegn), f.eks. «har flyttet fra hospitset».",
        );
        let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
        return Ok(page.into_response());
    }
    let mut tx = ctx.store.begin().await?;
    match contact_points::retire(&mut tx, patient.id, cp_id, &reason, ctx.clock.now()).await {
        Ok(cp) => {
            record(
                &ctx,
                &mut tx,
                &session,
                "contact_point.retire",
                patient.id,
                Some(cp.id),
            )
            .await?;
            tx.commit().await?;
            Ok(
                Redirect::to(&format!("/staff/pasienter/{}#kontaktpunkter", patient.id))
                    .into_response(),
            )
        }
        Err(StoreError::NotFound(_)) => Ok(not_found()),
        Err(StoreError::Conflict(_)) => Err(WebError::Refused(
            "Kontaktpunktet er allerede trukket tilbake.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Appointments: book, move, cancel, attendance — through the engine, as the API does.

fn appointment_error(draft: &mut Draft, e: &FieldError) {
    let m = e.message.as_str();
    let (field, text) = match e.field.as_str() {
        "starts_at" if m.contains("two years") => {
            ("date", "Det er mer enn to år fram i tid. Sjekk årstallet.")
        }
        "starts_at" => (
            "date",
            "Tidspunktet har passert. Velg en dato og et klokkeslett fram i tid.",
        ),
        "duration_minutes" => (
            "duration",
            "Varigheten må være mellom 5 og 720 minutter, f.eks. 30.",
        ),
        "place" => (
            "place",
            "Skriv hvor pasienten skal møte (1–300 tegn), f.eks. «Storgata 36, 2. etasje».",
        ),
        "reason" => ("reason", "Skriv høyst 500 tegn."),
        _ => {
            draft
                .general
                .push(format!("Noe i skjemaet er feil ({}).", e.field));
            return;
        }
    };
    draft.error(field, text);
}

/// A refusal for a change the appointment's state does not allow, in words.
fn appointment_conflict(a: &Appointment, why: &str) -> WebError {
    let text = if why.contains("too early") {
        format!(
            "Det er for tidlig å registrere oppmøte: timen begynner {}. «Møtte» kan registreres fra to timer før, «Møtte ikke» fra timen har begynt.",
            when_nb(a.starts_at)
        )
    } else if why.contains("someone else") {
        "Noen andre endret timen samtidig. Gå tilbake, last inn siden på nytt og prøv igjen.".into()
    } else {
        format!(
            "Timen er allerede {}, så den kan ikke endres.",
            appointment_status_label(a.status)
        )
    };
    WebError::Refused(text)
}

pub async fn book(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let Some((patient, rights)) = open_patient(
        &ctx,
        &session,
        &id,
        roles::WRITE_APPOINTMENT,
        "appointment.book",
        "booke timer",
    )
    .await?
    else {
        return Ok(not_found());
    };
    let mut draft = Draft::new("time", &form);
    let starts_at = read_start(&mut draft);
    let duration = read_minutes(&mut draft, "duration");
    let kind = match draft.opt("kind") {
        None => Some(AppointmentKind::InPerson),
        Some(k) => {
            let parsed = k.parse::<AppointmentKind>().ok();
            if parsed.is_none() {
                draft.error("kind", "Velg en type time fra lista.");
            }
            parsed
        }
    };
    if draft.opt("place").is_none() {
        draft.error(
            "place",
            "Skriv hvor pasienten skal møte, f.eks. «Storgata 36, 2. etasje».",
        );
    }
    let (Some(starts_at), Some(kind), false) = (starts_at, kind, draft.is_wrong()) else {
        let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
        return Ok(page.into_response());
    };
    let new = NewAppointment {
        patient_id: patient.id,
        starts_at,
        duration_minutes: duration.unwrap_or(30),
        place: draft.value("place").to_owned(),
        kind,
    };
    let mut tx = ctx.store.begin().await?;
    match appointments::book(
        &mut tx,
        session.organisation_id,
        new,
        &session.label(),
        ctx.clock.now(),
    )
    .await
    {
        Ok((appointment, notice)) => {
            ctx.engine
                .plan(&mut tx, &notice)
                .await
                .map_err(engine_error)?;
            record(
                &ctx,
                &mut tx,
                &session,
                "appointment.book",
                patient.id,
                Some(appointment.id),
            )
            .await?;
            tx.commit().await?;
            tracing::info!(appointment_id = %appointment.id, notice_id = %notice.id, "appointment booked on the staff pages");
            Ok(Redirect::to(&format!("/staff/pasienter/{}#timer", patient.id)).into_response())
        }
        Err(StoreError::Invalid(errors)) => {
            drop(tx);
            for e in &errors {
                appointment_error(&mut draft, e);
            }
            let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
            Ok(page.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The appointment named by the path, if the person may change it: its patient is shared with
/// their organisation, their role may change appointments, and their organisation booked it.
/// Refusals are audited, as in the API's `appointments::load`.
async fn open_appointment(
    ctx: &AppContext,
    session: &StaffSession,
    id: &str,
    action: &str,
) -> Result<Option<(Appointment, Patient, Rights)>, WebError> {
    let Ok(id) = id.parse::<Id>() else {
        return Ok(None);
    };
    let mut tx = ctx.store.begin_read().await?;
    let rights = rights(&mut tx, session).await?;
    let appointment = match appointments::get(&mut tx, id).await {
        Ok(a) => a,
        Err(StoreError::NotFound(_)) => {
            tx.commit().await?;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let visible =
        patients::get_visible(&mut tx, session.organisation_id, appointment.patient_id).await;
    tx.commit().await?;
    let pid = Some(appointment.patient_id);
    if !rights.may(roles::WRITE_APPOINTMENT) {
        denied(ctx, session, action, pid).await;
        return Err(refusal(
            session,
            rights,
            roles::WRITE_APPOINTMENT,
            "endre timer",
        ));
    }
    let patient = match visible {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => {
            denied(ctx, session, action, pid).await;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    if appointment.organisation_id != session.organisation_id {
        denied(ctx, session, action, pid).await;
        return Err(WebError::Refused(
            "Bare organisasjonen som booket timen, kan endre den.".into(),
        ));
    }
    Ok(Some((appointment, patient, rights)))
}

pub async fn reschedule(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let Some((appointment, patient, rights)) =
        open_appointment(&ctx, &session, &id, "appointment.reschedule").await?
    else {
        return Ok(not_found());
    };
    let mut draft = Draft::new(format!("flytt-{}", appointment.id), &form);
    let starts_at = read_start(&mut draft);
    let duration = read_minutes(&mut draft, "duration");
    let (Some(starts_at), false) = (starts_at, draft.is_wrong()) else {
        let page = patient_page(&ctx, &session, &patient, rights, Some(&draft)).await?;
        return Ok(page.into_response());
    };
    let change = Reschedule {
        starts_at,
        duration_minutes: duration,
        place: draft.opt("place"),
        reason: draft.opt("reason"),
    };
    let mut tx = ctx.store.begin().await?;
    let changed = appointments::reschedule(
        &mut tx,
        appointment.clone(),
        change,
        &session.label(),
        ctx.clock.now(),
    )
    .await;
    let change = Change {
        action: "appointment.reschedule",
        appointment: &appointment,
        patient: &patient,
        rights,
    };
    after_change(&ctx, tx, &session, change, changed, draft).await
}

pub async fn cancel(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let Some((appointment, patient, rights)) =
        open_appointment(&ctx, &session, &id, "appointment.cancel").await?
    else {
        return Ok(not_found());
    };
    let draft = Draft::new(format!("avlys-{}", appointment.id), &form);
    let mut tx = ctx.store.begin().await?;
    let changed = appointments::cancel(
        &mut tx,
        appointment.clone(),
        draft.opt("reason"),
        &session.label(),
        ctx.clock.now(),
    )
    .await;
    let change = Change {
        action: "appointment.cancel",
        appointment: &appointment,
        patient: &patient,
        rights,
    };
    after_change(&ctx, tx, &session, change, changed, draft).await
}

/// A reschedule or cancellation the store was asked to make.
struct Change<'a> {
    action: &'static str,
    appointment: &'a Appointment,
    patient: &'a Patient,
    rights: Rights,
}

/// After a reschedule or cancellation: the new notice is planned, the change audited and the
/// person sent back to the patient; or the page comes back with what was wrong, nothing stored.
async fn after_change(
    ctx: &AppContext,
    mut tx: Tx,
    session: &StaffSession,
    change: Change<'_>,
    changed: Result<(Appointment, kontaktvei_store::notices::Notice), StoreError>,
    mut draft: Draft,
) -> Result<Response, WebError> {
    match changed {
        Ok((appointment, notice)) => {
            ctx.engine
                .plan(&mut tx, &notice)
                .await
                .map_err(engine_error)?;
            record(
                ctx,
                &mut tx,
                session,
                change.action,
                appointment.patient_id,
                Some(appointment.id),
            )
            .await?;
            tx.commit().await?;
            Ok(
                Redirect::to(&format!("/staff/pasienter/{}#timer", change.patient.id))
                    .into_response(),
            )
        }
        Err(StoreError::Invalid(errors)) => {
            drop(tx);
            for e in &errors {
                appointment_error(&mut draft, e);
            }
            let page =
                patient_page(ctx, session, change.patient, change.rights, Some(&draft)).await?;
            Ok(page.into_response())
        }
        Err(StoreError::Conflict(why)) => Err(appointment_conflict(change.appointment, &why)),
        Err(e) => Err(e.into()),
    }
}

pub async fn attendance(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let status = match form.get("attended").map(|s| s.trim()) {
        Some("ja") => AppointmentStatus::Attended,
        Some("nei") => AppointmentStatus::NoShow,
        _ => return Err(WebError::BadForm),
    };
    let Some((appointment, patient, _)) =
        open_appointment(&ctx, &session, &id, "appointment.attendance").await?
    else {
        return Ok(not_found());
    };
    let mut tx = ctx.store.begin().await?;
    match appointments::record_attendance(
        &mut tx,
        appointment.clone(),
        status,
        &session.label(),
        ctx.clock.now(),
    )
    .await
    {
        Ok((done, follow_up)) => {
            if let Some(notice) = &follow_up {
                ctx.engine
                    .plan(&mut tx, notice)
                    .await
                    .map_err(engine_error)?;
                ctx.engine
                    .no_show(&mut tx, notice)
                    .await
                    .map_err(engine_error)?;
            }
            record(
                &ctx,
                &mut tx,
                &session,
                "appointment.attendance",
                done.patient_id,
                Some(done.id),
            )
            .await?;
            tx.commit().await?;
            Ok(Redirect::to(&format!("/staff/pasienter/{}#timer", patient.id)).into_response())
        }
        Err(StoreError::Conflict(why)) => Err(appointment_conflict(&appointment, &why)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_as_people_type_them() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
        for s in ["24.12.2026", "2026-12-24", " 24/12/2026 ", "24.12.2026"] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(parse_date("3.3.2027"), NaiveDate::from_ymd_opt(2027, 3, 3));
        for s in ["31.02.2026", "24.12.26", "24122026", "", "i morgen"] {
            assert_eq!(parse_date(s), None, "{s}");
        }
        let t = NaiveTime::from_hms_opt(10, 30, 0).unwrap();
        for s in ["10:30", "10.30", " 10:30 "] {
            assert_eq!(parse_time(s), Some(t), "{s}");
        }
        assert_eq!(parse_time("9:05"), NaiveTime::from_hms_opt(9, 5, 0));
        for s in ["25:00", "10", "10:3", "1030", "ti"] {
            assert_eq!(parse_time(s), None, "{s}");
        }
    }

    #[test]
    fn phones_read_like_phones() {
        assert_eq!(phone_nb("+4791234567"), "+47 912 34 567");
        assert_eq!(phone_nb("+46701234567"), "+46701234567");
    }
}
