//! Koordinator (`/staff/koordinator`): what a coordinator must act on, on one page — notices
//! where no channel got through, patients who did not attend, letters returned, contact points
//! that failed, hand-overs offered to them and their own offers still open — and the forms to
//! accept, decline, withdraw or offer a hand-over. Hand-overs go through the same engine calls
//! as the API (`/api/v1/handovers`). Every patient named on the page is an audited read.

use super::start::staff_context;
use super::{CsrfForm, Page, StaffSession, WebError};
use crate::context::AppContext;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use kontaktvei_scheduler::human::Offer;
use kontaktvei_store::handovers::{self, Handover, HandoverStatus, SubjectKind};
use kontaktvei_store::notifications::{self, Notification, NotificationKind};
use kontaktvei_store::staff::Role;
use kontaktvei_store::{Id, Tx, organisations, patients, staff};
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::BTreeMap;

/// This module's page templates (name, source), compiled with the others in [`super::layout`].
pub const TEMPLATES: &[(&str, &str)] = &[(
    "coordinator.html",
    include_str!("templates/coordinator.html"),
)];

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/staff/koordinator", get(show))
        .route("/staff/koordinator/varsler/{id}/lest", post(mark_read))
        .route("/staff/overleveringer", post(offer))
        .route("/staff/overleveringer/{id}/godta", post(accept))
        .route("/staff/overleveringer/{id}/avsla", post(decline))
        .route("/staff/overleveringer/{id}/trekk", post(withdraw))
}

/// The groups of the page, in the order a coordinator should read them, and the kinds in each.
const GROUPS: &[(&str, &str, &[NotificationKind])] = &[
    (
        "stoppet",
        "Beskjeder som ikke nådde fram",
        &[
            NotificationKind::ChainFailed,
            NotificationKind::NeedsDecision,
            NotificationKind::TaskUnclaimed,
            NotificationKind::TaskOverdue,
        ],
    ),
    (
        "uteblitt",
        "Pasienter som ikke møtte",
        &[NotificationKind::NoShow],
    ),
    (
        "kontakt",
        "Brev i retur og kontaktpunkter som ikke virker",
        &[
            NotificationKind::LetterReturned,
            NotificationKind::ContactPointFailed,
        ],
    ),
    (
        "overlevering",
        "Svar på overleveringer",
        &[
            NotificationKind::HandoverPending,
            NotificationKind::HandoverAccepted,
            NotificationKind::HandoverDeclined,
        ],
    ),
];

/// One notification as a line on the page.
fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::NewTask => "Ny oppgave til teamet",
        NotificationKind::TaskUnclaimed => "Ingen tok oppsøkingsoppgaven",
        NotificationKind::TaskOverdue => "Oppgaven er over fristen",
        NotificationKind::ChainFailed => "Ingen kanal nådde fram – du har saken nå",
        NotificationKind::NeedsDecision => "Trenger din avgjørelse",
        NotificationKind::NoShow => "Møtte ikke til timen",
        NotificationKind::LetterReturned => "Brevet kom i retur",
        NotificationKind::ContactPointFailed => "Et kontaktpunkt virker ikke",
        NotificationKind::HandoverOffered => "Overlevering til deg",
        NotificationKind::HandoverPending => "Overleveringen din er ikke tatt imot ennå",
        NotificationKind::HandoverAccepted => "Overleveringen din er tatt imot",
        NotificationKind::HandoverDeclined => {
            "Overleveringen din ble avslått – du har den fortsatt"
        }
    }
}

fn subject_label(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Patient => "koordinatoransvaret",
        SubjectKind::Task => "en oppgave",
        SubjectKind::Notice => "et varsel",
    }
}

fn only_coordinators(session: &StaffSession) -> Result<(), WebError> {
    match session.role {
        Role::Coordinator | Role::Admin => Ok(()),
        _ => Err(WebError::Refused(
            "Koordinatorsiden er for koordinatorer og administratorer.".into(),
        )),
    }
}

/// Names of patients and people, looked up once per page; each patient read is audited once.
struct Names<'a> {
    ctx: &'a AppContext,
    session: &'a StaffSession,
    patients: BTreeMap<Id, String>,
    staff: BTreeMap<Id, String>,
    organisations: BTreeMap<Id, String>,
}

impl Names<'_> {
    async fn patient(&mut self, tx: &mut Tx, id: Id) -> Result<String, WebError> {
        if let Some(name) = self.patients.get(&id) {
            return Ok(name.clone());
        }
        let p = patients::get(tx, id).await?;
        self.session
            .audit(self.ctx, tx, "patient.read", Some(id), None)
            .await?;
        let name = format!("{}, født {}", p.name, p.birth_year);
        self.patients.insert(id, name.clone());
        Ok(name)
    }

    async fn staff(&mut self, tx: &mut Tx, id: Id) -> Result<String, WebError> {
        if let Some(name) = self.staff.get(&id) {
            return Ok(name.clone());
        }
        let name = staff::get_staff(tx, id).await?.name;
        self.staff.insert(id, name.clone());
        Ok(name)
    }

    async fn organisation(&mut self, tx: &mut Tx, id: Id) -> Result<String, WebError> {
        if let Some(name) = self.organisations.get(&id) {
            return Ok(name.clone());
        }
        let name = organisations::get(tx, id).await?.name;
        self.organisations.insert(id, name.clone());
        Ok(name)
    }

    /// "Kari Nordmann (Poliklinikk Rus Nord)" or "hvem som helst i FACT Øst".
    async fn recipient(&mut self, tx: &mut Tx, h: &Handover) -> Result<String, WebError> {
        let org = self.organisation(tx, h.to_organisation_id).await?;
        Ok(match h.to_staff_id {
            Some(id) => format!("{} ({org})", self.staff(tx, id).await?),
            None => format!("hvem som helst i {org}"),
        })
    }
}

fn patient_link(id: Id) -> String {
    format!("/staff/pasienter/{id}")
}

pub async fn show(State(ctx): State<AppContext>, session: StaffSession) -> Result<Page, WebError> {
    only_coordinators(&session)?;
    page(&ctx, &session, None, StatusCode::OK).await
}

/// The page, with a message about a refused offer above the offer form when there is one.
async fn page(
    ctx: &AppContext,
    session: &StaffSession,
    offer_error: Option<(&str, &OfferForm)>,
    status: StatusCode,
) -> Result<Page, WebError> {
    let mut tx = ctx.store.begin().await?;
    let mut names = Names {
        ctx,
        session,
        patients: BTreeMap::new(),
        staff: BTreeMap::new(),
        organisations: BTreeMap::new(),
    };

    let unread: Vec<Notification> = notifications::for_staff(
        &mut tx,
        session.staff_id,
        session.organisation_id,
        true,
        200,
    )
    .await?;
    let mut groups = Vec::new();
    for &(id, heading, kinds) in GROUPS {
        let mut items = Vec::new();
        for n in unread.iter().filter(|n| kinds.contains(&n.kind)) {
            let patient = match n.patient_id {
                Some(p) => Some(names.patient(&mut tx, p).await?),
                None => None,
            };
            items.push(context! {
                id => n.id.to_string(),
                what => kind_label(n.kind),
                patient,
                href => n.patient_id.map(patient_link),
                when => kontaktvei_templates::when_nb(n.created_at),
            });
        }
        groups.push(context! { id, heading, items });
    }

    let mut incoming = Vec::new();
    for h in handovers::incoming(&mut tx, Some(session.staff_id), session.organisation_id).await? {
        session
            .audit(
                ctx,
                &mut tx,
                "handover.read",
                Some(h.patient_id),
                Some(h.id),
            )
            .await?;
        let from = names.staff(&mut tx, h.from_staff_id).await?;
        let from_org = names.organisation(&mut tx, h.from_organisation_id).await?;
        incoming.push(context! {
            id => h.id.to_string(),
            patient => names.patient(&mut tx, h.patient_id).await?,
            href => patient_link(h.patient_id),
            subject => subject_label(h.subject_kind),
            from => format!("{from} ({from_org})"),
            note => h.note.clone(),
            when => kontaktvei_templates::when_nb(h.offered_at),
            to_me => h.to_staff_id.is_some(),
        });
    }

    let mut outgoing = Vec::new();
    for h in handovers::outgoing(&mut tx, session.staff_id).await? {
        session
            .audit(
                ctx,
                &mut tx,
                "handover.read",
                Some(h.patient_id),
                Some(h.id),
            )
            .await?;
        outgoing.push(context! {
            id => h.id.to_string(),
            patient => names.patient(&mut tx, h.patient_id).await?,
            href => patient_link(h.patient_id),
            subject => subject_label(h.subject_kind),
            to => names.recipient(&mut tx, &h).await?,
            when => kontaktvei_templates::when_nb(h.offered_at),
        });
    }

    let mine = patients::coordinated_by(&mut tx, session.staff_id, 500).await?;
    let mut my_patients = Vec::new();
    for p in &mine {
        let name = names.patient(&mut tx, p.id).await?;
        my_patients.push(context! { id => p.id.to_string(), name, href => patient_link(p.id) });
    }

    // Whom an offer can go to: a colleague by name, or an organisation's whole team.
    let colleagues: Vec<Value> = staff::list_staff(&mut tx, session.organisation_id)
        .await?
        .into_iter()
        .filter(|s| s.id != session.staff_id)
        .map(|s| context! { value => format!("staff:{}", s.id), label => s.name })
        .collect();
    let teams: Vec<Value> = organisations::list(&mut tx)
        .await?
        .into_iter()
        .map(|o| context! { value => format!("org:{}", o.id), label => format!("Hvem som helst i {}", o.name) })
        .collect();
    tx.commit().await?;

    let (offer_error, typed) = match offer_error {
        Some((why, form)) => (
            Some(why.to_owned()),
            context! {
                patient => form.patient.clone(),
                to => form.to.clone(),
                note => form.note.clone().unwrap_or_default(),
            },
        ),
        None => (None, context! { patient => "", to => "", note => "" }),
    };
    Ok(Page::new(
        "coordinator.html",
        context! {
            title => "Koordinator",
            groups,
            nothing_unread => unread.iter().all(|n| !GROUPS.iter().any(|(_, _, k)| k.contains(&n.kind))),
            incoming,
            outgoing,
            my_patients,
            colleagues,
            teams,
            offer_error,
            typed,
            ..staff_context(session)
        },
    )
    .with_status(status))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn mark_read(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Redirect, WebError> {
    only_coordinators(&session)?;
    let mut tx = ctx.store.begin().await?;
    // Marks only this person's (or their organisation's unnamed) notifications; another's
    // id changes nothing.
    notifications::mark_read(
        &mut tx,
        id,
        session.organisation_id,
        Some(session.staff_id),
        ctx.clock.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to("/staff/koordinator"))
}

#[derive(Debug, Deserialize)]
pub struct OfferForm {
    /// The patient whose coordinator role is offered.
    patient: String,
    /// `staff:{id}` or `org:{id}`.
    to: String,
    note: Option<String>,
}

/// Offers the coordinator role for one of your patients to a colleague or another team.
pub async fn offer(
    State(ctx): State<AppContext>,
    CsrfForm { session, form }: CsrfForm<OfferForm>,
) -> Result<Page, WebError> {
    only_coordinators(&session)?;
    match try_offer(&ctx, &session, &form).await? {
        Ok(()) => Ok(Page::message(
            StatusCode::OK,
            "Overleveringen er sendt",
            "Du har fortsatt ansvaret til den andre har tatt imot. Du får en påminnelse om ingen har svart innen et døgn.",
            ("/staff/koordinator", "Tilbake til koordinatorsiden"),
        )),
        Err(why) => {
            page(
                &ctx,
                &session,
                Some((&why, &form)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// Makes the offer, or says (as `Err`) what the person must change.
async fn try_offer(
    ctx: &AppContext,
    session: &StaffSession,
    form: &OfferForm,
) -> Result<Result<(), String>, WebError> {
    let refuse = |why: &str| Ok(Err(why.to_owned()));
    let Ok(patient_id) = form.patient.parse::<Id>() else {
        return refuse("Velg hvilken pasient du vil overlevere.");
    };
    let (to_staff_id, to_organisation_id) = match form.to.split_once(':') {
        Some(("staff", id)) => match id.parse::<Id>() {
            Ok(id) => (Some(id), None),
            Err(_) => return refuse("Velg hvem du vil overlevere til."),
        },
        Some(("org", id)) => match id.parse::<Id>() {
            Ok(id) => (None, Some(id)),
            Err(_) => return refuse("Velg hvem du vil overlevere til."),
        },
        _ => return refuse("Velg hvem du vil overlevere til."),
    };
    let note = form
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return refuse("Merknaden kan være opptil 2 000 tegn.");
    }
    let mut tx = ctx.store.begin().await?;
    if patients::get_visible(&mut tx, session.organisation_id, patient_id)
        .await
        .is_err()
    {
        return refuse("Velg en av dine pasienter fra lista.");
    }
    let offered = ctx
        .engine
        .offer_handover(
            &mut tx,
            &session.person(),
            Offer {
                subject_kind: SubjectKind::Patient,
                subject_id: patient_id,
                to_staff_id,
                to_organisation_id,
                note,
            },
        )
        .await;
    let h = match offered {
        Ok(h) => h,
        Err(e) => return Ok(Err(refusal(e)?)),
    };
    session
        .audit(
            ctx,
            &mut tx,
            "handover.offer",
            Some(h.patient_id),
            Some(h.id),
        )
        .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// What the engine's refusal means for the person, or the error itself when it is not one.
fn refusal(e: kontaktvei_scheduler::engine::Error) -> Result<String, WebError> {
    use kontaktvei_scheduler::engine::Error as E;
    use kontaktvei_store::Error as S;
    match e {
        E::Store(S::Conflict(why)) => Ok(why),
        E::Store(S::NotFound(what)) => Ok(format!("Fant ikke {what}.")),
        E::Store(S::Invalid(fields)) => Ok(fields
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
            .join(" ")),
        E::Store(other) => Err(other.into()),
        other => Ok(other.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    note: Option<String>,
}

async fn decide(
    ctx: AppContext,
    session: StaffSession,
    id: Id,
    decision: HandoverStatus,
    note: Option<String>,
) -> Result<Redirect, WebError> {
    only_coordinators(&session)?;
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let mut tx = ctx.store.begin().await?;
    let decided = ctx
        .engine
        .decide_handover(&mut tx, id, &session.person(), decision, note.as_deref())
        .await;
    let h = match decided {
        Ok(h) => h,
        Err(e) => return Err(WebError::Refused(refusal(e)?)),
    };
    let action = format!("handover.{}", decision.as_str());
    session
        .audit(&ctx, &mut tx, &action, Some(h.patient_id), Some(id))
        .await?;
    tx.commit().await?;
    Ok(Redirect::to("/staff/koordinator"))
}

pub async fn accept(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, form }: CsrfForm<DecisionForm>,
) -> Result<Redirect, WebError> {
    decide(ctx, session, id, HandoverStatus::Accepted, form.note).await
}

pub async fn decline(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, form }: CsrfForm<DecisionForm>,
) -> Result<Redirect, WebError> {
    decide(ctx, session, id, HandoverStatus::Declined, form.note).await
}

pub async fn withdraw(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, form }: CsrfForm<DecisionForm>,
) -> Result<Redirect, WebError> {
    decide(ctx, session, id, HandoverStatus::Withdrawn, form.note).await
}
