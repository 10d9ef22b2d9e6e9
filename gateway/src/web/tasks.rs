//! Oppgaver (`/staff/oppgaver`): a person's work on one page that works on a phone. A day
//! centre sees today's relay requests with one button per outcome ("Beskjeden er gitt",
//! "Ikke sett"); an outreach team its board (ledige / mine / teamets), where a nurse takes a
//! task, records where they looked and closes it; a coordinator the follow-ups. Every task
//! shown is a read of patient data and is audited; every button is a form with the session's
//! CSRF token, and acts through the same engine calls as the API.

use super::start::staff_context;
use super::{CsrfForm, Page, StaffSession, WebError};
use crate::api::tasks::{TaskView, view};
use crate::context::AppContext;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use kontaktvei_scheduler::human::Closing;
use kontaktvei_store::contact_points::{ContactKind, NewContactPoint, Provenance};
use kontaktvei_store::staff::Role;
use kontaktvei_store::tasks::{
    self, EventKind, NewAttempt, Task, TaskFilter, TaskKind, TaskOutcome, TaskStatus,
};
use kontaktvei_store::{Id, Tx};
use minijinja::{Value, context};
use serde::Deserialize;

/// The outcomes as the pages say them, and which need more than a click (none here: `moved`
/// needs the new whereabouts, which the API takes).
fn outcome_label(o: TaskOutcome) -> &'static str {
    match o {
        TaskOutcome::ToldInPerson => "Beskjeden er gitt",
        TaskOutcome::ToldByPhone => "Nådd på telefon",
        TaskOutcome::NotSeen => "Ikke sett",
        TaskOutcome::NoAnswer => "Ikke svar",
        TaskOutcome::Declined => "Ville ikke ha beskjeden",
        TaskOutcome::MetAndInformed => "Truffet og informert",
        TaskOutcome::NotFound => "Ikke funnet",
        TaskOutcome::Moved => "Flyttet",
        TaskOutcome::WrongContact => "Feil kontaktinformasjon",
        TaskOutcome::Admitted => "Innlagt (sykehus, fengsel …)",
        TaskOutcome::Reached => "Jeg har nådd pasienten",
        TaskOutcome::TakenOver => "Jeg tar over saken",
    }
}

/// The API's whereabouts lines ("address: …", "outreach: FACT Øst") as the pages say them.
fn in_bokmal(line: &str) -> String {
    const KINDS: &[(&str, &str)] = &[
        ("address: ", "adresse: "),
        ("phone: ", "telefon: "),
        ("relay: ", "lavterskeltilbud: "),
        ("outreach: ", "oppsøkende team: "),
    ];
    KINDS
        .iter()
        .find_map(|(en, nb)| line.strip_prefix(en).map(|rest| format!("{nb}{rest}")))
        .unwrap_or_else(|| line.to_owned())
}

fn kind_label(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Relay => "Beskjed som skal gis videre",
        TaskKind::Outreach => "Oppsøking",
        TaskKind::CoordinatorFollowUp => "Oppfølging for koordinator",
    }
}

/// The kind of task a role works on; `None`: all of them. Roles without tasks are refused.
fn kind_for(role: Role) -> Result<Option<TaskKind>, WebError> {
    match role {
        Role::Relay => Ok(Some(TaskKind::Relay)),
        Role::Outreach => Ok(Some(TaskKind::Outreach)),
        Role::Admin | Role::Coordinator => Ok(None),
        Role::Clinic | Role::Print => Err(WebError::Refused(
            "Oppgavene er for lavterskeltilbud, oppsøkende team og koordinatorer.".into(),
        )),
    }
}

/// The audit row for a task read or acted on.
async fn record(
    ctx: &AppContext,
    tx: &mut Tx,
    session: &StaffSession,
    action: &str,
    task: &Task,
) -> Result<(), WebError> {
    session
        .audit(ctx, tx, action, Some(task.patient_id), Some(task.id))
        .await
}

/// The task, if this person may see it (their organisation, their role's kind).
async fn visible(tx: &mut Tx, session: &StaffSession, id: Id) -> Result<Task, WebError> {
    let task = tasks::get(tx, id).await?;
    let kind = kind_for(session.role)?;
    if task.organisation_id != session.organisation_id || kind.is_some_and(|k| k != task.kind) {
        return Err(WebError::Store(kontaktvei_store::Error::NotFound("task")));
    }
    Ok(task)
}

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// `teamet` (default), `mine` or `ledige`.
    vis: Option<String>,
}

pub async fn show(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Query(f): Query<Filter>,
) -> Result<Page, WebError> {
    let kind = kind_for(session.role)?;
    let vis = f.vis.as_deref().unwrap_or("teamet");
    let filter = TaskFilter {
        organisation_id: session.organisation_id,
        assignee_id: (vis == "mine").then_some(session.staff_id),
        kind,
        patient_id: None,
        statuses: vec![TaskStatus::Open, TaskStatus::Claimed],
        unclaimed_only: vis == "ledige",
        due_before: None,
        limit: 200,
    };
    let mut tx = ctx.store.begin().await?;
    let found = tasks::list(&mut tx, &filter).await?;
    let mut cards = Vec::new();
    for task in found {
        record(&ctx, &mut tx, &session, "task.read", &task).await?;
        let held_by_me = task.assignee_id == Some(session.staff_id);
        let unclaimed = task.assignee_id.is_none();
        let kind = task.kind;
        // An outreach card shows where the team already looked.
        let v: TaskView = view(&mut tx, task, kind == TaskKind::Outreach)
            .await
            .map_err(|e| WebError::Refused(e.to_string()))?;
        // One click each for a day centre and a coordinator; outreach closes after claiming.
        // A relay request done in person is not answered "by phone", and the other way round.
        let by_phone = v.channel == kontaktvei_store::tasks::ContactMode::Phone;
        let quick: Vec<TaskOutcome> = match kind {
            TaskKind::Outreach => Vec::new(),
            _ => v
                .outcomes
                .iter()
                .copied()
                .filter(|o| match o {
                    TaskOutcome::ToldByPhone | TaskOutcome::NoAnswer => by_phone,
                    TaskOutcome::ToldInPerson | TaskOutcome::NotSeen => !by_phone,
                    _ => true,
                })
                .collect(),
        };
        // "Flyttet" has its own form, with the new whereabouts.
        let can_move = v.outcomes.contains(&TaskOutcome::Moved);
        let close: Vec<TaskOutcome> = v
            .outcomes
            .iter()
            .copied()
            .filter(|o| *o != TaskOutcome::Moved)
            .collect();
        cards.push(context! {
            id => v.id.to_string(),
            patient => format!("{}, født {}", v.patient.name, v.patient.birth_year),
            description => v.patient.description.clone(),
            urgent => v.priority == kontaktvei_store::tasks::TaskPriority::High,
            holder => v.holder.as_ref().map(|h| h.name.clone()),
            whereabouts => (!v.whereabouts.is_empty()).then(|| v.whereabouts.iter().map(|w| in_bokmal(w)).collect::<Vec<_>>().join("; ")),
            message => v.message.clone(),
            phone => v.phone.clone(),
            kind_label => kind_label(kind),
            due => kontaktvei_templates::when_nb(v.due_at),
            appointment => v.appointment.as_ref().map(|a| format!("{}, {}", kontaktvei_templates::when_nb(a.starts_at), a.place)),
            quick => quick.iter().map(|o| context! { value => o.as_str(), label => outcome_label(*o) }).collect::<Vec<_>>(),
            close => close.iter().map(|o| context! { value => o.as_str(), label => outcome_label(*o) }).collect::<Vec<_>>(),
            can_claim => kind != TaskKind::Relay && unclaimed,
            held_by_me,
            outreach => kind == TaskKind::Outreach,
            can_move,
            attempts => v.history.iter().filter(|e| e.kind == EventKind::Attempt).map(|e| context! {
                when => kontaktvei_templates::when_nb(e.attempted_at.unwrap_or(e.at)),
                place => e.place.clone(),
                result => e.result.clone(),
            }).collect::<Vec<_>>(),
        });
    }
    tx.commit().await?;
    let tabs: Vec<Value> = [("teamet", "Teamets"), ("ledige", "Ledige"), ("mine", "Mine")]
        .into_iter()
        .map(|(v, label)| context! { href => format!("/staff/oppgaver?vis={v}"), label, current => v == vis })
        .collect();
    Ok(Page::new(
        "tasks.html",
        context! { title => "Oppgaver", cards, tabs, ..staff_context(&session) },
    ))
}

pub async fn claim(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Redirect, WebError> {
    let mut tx = ctx.store.begin().await?;
    let task = visible(&mut tx, &session, id).await?;
    let me = session.person();
    match tasks::claim(&mut tx, task.id, me.staff_id, &me.label, ctx.clock.now()).await {
        Ok(_) => {}
        Err(kontaktvei_store::Error::Conflict(why)) => return Err(WebError::Refused(why)),
        Err(e) => return Err(e.into()),
    }
    record(&ctx, &mut tx, &session, "task.claim", &task).await?;
    tx.commit().await?;
    Ok(Redirect::to("/staff/oppgaver?vis=mine"))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
pub struct AttemptForm {
    place: String,
    result: String,
}

pub async fn attempt(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, form }: CsrfForm<AttemptForm>,
) -> Result<Redirect, WebError> {
    let mut tx = ctx.store.begin().await?;
    let task = visible(&mut tx, &session, id).await?;
    if task.assignee_id != Some(session.staff_id) {
        return Err(WebError::Refused(
            "Ta oppgaven før du registrerer et forsøk.".into(),
        ));
    }
    let me = session.person();
    let attempt = NewAttempt {
        place: form.place,
        at: None,
        result: form.result,
        note: None,
    };
    match tasks::record_attempt(
        &mut tx,
        task.id,
        me.staff_id,
        &me.label,
        &attempt,
        ctx.clock.now(),
    )
    .await
    {
        Ok(_) => {}
        Err(kontaktvei_store::Error::Invalid(_)) => {
            return Err(WebError::Refused(
                "Skriv hvor du lette og hva som skjedde (1–500 tegn hver).".into(),
            ));
        }
        Err(kontaktvei_store::Error::Conflict(why)) => return Err(WebError::Refused(why)),
        Err(e) => return Err(e.into()),
    }
    record(&ctx, &mut tx, &session, "task.attempt", &task).await?;
    tx.commit().await?;
    Ok(Redirect::to("/staff/oppgaver?vis=mine"))
}

#[derive(Debug, Deserialize)]
pub struct CloseForm {
    outcome: String,
    note: Option<String>,
    /// `moved`: where the patient can be reached now — a phone, or an address.
    #[serde(default)]
    phone: String,
    #[serde(default)]
    care_of: String,
    #[serde(default)]
    street: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    place: String,
}

/// The new whereabouts an outreach worker typed for `moved`, verified by them in person: a
/// phone if they got one, else the address. The patient's name heads the address block.
fn new_whereabouts(form: &CloseForm, patient_name: &str) -> Result<NewContactPoint, WebError> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let (phone, street) = (text(&form.phone), text(&form.street));
    if phone.is_none() && street.is_none() {
        return Err(WebError::Refused(
            "Skriv det nye telefonnummeret eller den nye adressen (gate, postnummer og sted)."
                .into(),
        ));
    }
    let postal = phone.is_none();
    let lines = street.map(|street| {
        let mut lines = vec![patient_name.to_owned()];
        if let Some(co) = text(&form.care_of) {
            lines.push(if co.to_lowercase().starts_with("c/o") {
                co
            } else {
                format!("c/o {co}")
            });
        }
        lines.push(street);
        lines
    });
    Ok(NewContactPoint {
        kind: if postal {
            ContactKind::Postal
        } else {
            ContactKind::Sms
        },
        provenance: Provenance::VerifiedInPerson,
        phone,
        lines: if postal { lines } else { None },
        postal_code: if postal {
            text(&form.postal_code)
        } else {
            None
        },
        place: if postal { text(&form.place) } else { None },
        country: None,
        organisation_id: None,
        contact_name: None,
        relation: None,
        consent_recorded: false,
        consent_given_by: None,
        consent_given_at: None,
        verified_by: None,
        verified_at: None,
        expires_at: None,
        note: None,
    })
}

pub async fn close(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, form }: CsrfForm<CloseForm>,
) -> Result<Redirect, WebError> {
    let outcome: TaskOutcome = form
        .outcome
        .parse()
        .map_err(|_| WebError::Refused("Velg et utfall fra lista.".into()))?;
    let mut tx = ctx.store.begin().await?;
    let task = visible(&mut tx, &session, id).await?;
    let new_contact_point = if outcome == TaskOutcome::Moved {
        let patient = kontaktvei_store::patients::get(&mut tx, task.patient_id).await?;
        Some(new_whereabouts(&form, &patient.name)?)
    } else {
        None
    };
    let closing = Closing {
        outcome,
        note: form
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        new_contact_point,
    };
    match ctx
        .engine
        .close_task(&mut tx, task.id, &session.person(), closing)
        .await
    {
        Ok(_) => {}
        Err(kontaktvei_scheduler::engine::Error::Store(kontaktvei_store::Error::Conflict(why))) => {
            return Err(WebError::Refused(why));
        }
        Err(kontaktvei_scheduler::engine::Error::Store(kontaktvei_store::Error::Invalid(f))) => {
            return Err(WebError::Refused(
                f.into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
        Err(e) => return Err(WebError::Refused(e.to_string())),
    }
    record(&ctx, &mut tx, &session, "task.close", &task).await?;
    tx.commit().await?;
    tracing::info!(task_id = %id, outcome = %outcome, "task closed on the staff pages");
    Ok(Redirect::to("/staff/oppgaver"))
}

/// A refusal as a page: what was wrong and the way back.
pub fn refused(why: &str) -> Page {
    Page::message(
        StatusCode::CONFLICT,
        "Det gikk ikke",
        why,
        ("/staff", "Til startsiden"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn whereabouts_in_bokmal() {
        assert_eq!(
            super::in_bokmal("outreach: FACT Øst"),
            "oppsøkende team: FACT Øst"
        );
        assert_eq!(
            super::in_bokmal("address: Storgata 1, 0155 Oslo"),
            "adresse: Storgata 1, 0155 Oslo"
        );
        assert_eq!(super::in_bokmal("annet"), "annet");
    }
}
