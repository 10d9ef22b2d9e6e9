//! Utskrift (`/staff/utskrift`): the print room's page. Today's and past batches (letters,
//! pages, state), download a batch's PDF, mark it printed and posted, print now, and record a
//! letter that came back by typing or scanning the reference printed on it. Downloading a batch
//! reads names and addresses: each letter is audited, as in the API.

use super::start::staff_context;
use super::{CsrfForm, Page, StaffSession, WebError};
use crate::context::AppContext;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kontaktvei_scheduler::calendar::oslo_date;
use kontaktvei_store::audit::{self, Outcome};
use kontaktvei_store::print::{self, BatchStatus};
use kontaktvei_store::staff::Role;
use kontaktvei_store::{Id, Tx, notices};
use minijinja::context;
use serde::Deserialize;

fn may_print(session: &StaffSession) -> Result<(), WebError> {
    if matches!(session.role, Role::Print | Role::Admin) {
        Ok(())
    } else {
        Err(WebError::Refused(
            "Utskriftssiden er for utskriftsrommet og administratorer.".into(),
        ))
    }
}

/// The batch, if it is this organisation's; else "not found".
async fn own_batch(
    tx: &mut Tx,
    session: &StaffSession,
    id: Id,
) -> Result<print::PrintBatch, WebError> {
    let batch = print::batch(tx, id).await?;
    if batch.organisation_id != session.organisation_id {
        return Err(WebError::Store(kontaktvei_store::Error::NotFound(
            "print batch",
        )));
    }
    Ok(batch)
}

fn status_label(s: BatchStatus) -> &'static str {
    match s {
        BatchStatus::Ready => "klar til utskrift",
        BatchStatus::Printed => "skrevet ut",
        BatchStatus::Posted => "postlagt",
    }
}

pub async fn show(State(ctx): State<AppContext>, session: StaffSession) -> Result<Page, WebError> {
    may_print(&session)?;
    let mut tx = ctx.store.begin_read().await?;
    let batches = print::batches(&mut tx, session.organisation_id, 50).await?;
    tx.commit().await?;
    let rows: Vec<_> = batches
        .iter()
        .map(|b| {
            context! {
                id => b.id.to_string(),
                made => kontaktvei_templates::when_nb(b.created_at),
                letters => b.letters,
                pages => b.pages,
                status => status_label(b.status),
                can_print => b.status == BatchStatus::Ready,
                can_post => b.status != BatchStatus::Posted,
                posted_on => b.posted_on.map(|d| d.format("%d.%m.%Y").to_string()),
            }
        })
        .collect();
    Ok(Page::new(
        "print.html",
        context! { title => "Utskrift", batches => rows, ..staff_context(&session) },
    ))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn print_now(
    State(ctx): State<AppContext>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Redirect, WebError> {
    may_print(&session)?;
    ctx.engine
        .print_now(
            session.organisation_id,
            &format!("staff:{}", session.staff_id),
        )
        .await
        .map_err(|e| WebError::Refused(e.to_string()))?;
    Ok(Redirect::to("/staff/utskrift"))
}

pub async fn pdf(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Path(id): Path<Id>,
) -> Result<Response, WebError> {
    may_print(&session)?;
    let mut tx = ctx.store.begin().await?;
    own_batch(&mut tx, &session, id).await?;
    let pdf = ctx
        .engine
        .batch_pdf(&mut tx, id)
        .await
        .map_err(|e| WebError::Refused(e.to_string()))?;
    print::audit_download(&mut tx, id, &session.actor(), ctx.clock.now()).await?;
    tx.commit().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"brev-{id}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

pub async fn printed(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Redirect, WebError> {
    may_print(&session)?;
    let mut tx = ctx.store.begin().await?;
    own_batch(&mut tx, &session, id).await?;
    let done = ctx
        .engine
        .mark_batch_printed(&mut tx, id)
        .await
        .map_err(|e| WebError::Refused(e.to_string()))?;
    if !done {
        return Err(WebError::Refused(
            "Bunken er allerede skrevet ut eller postlagt.".into(),
        ));
    }
    tx.commit().await?;
    Ok(Redirect::to("/staff/utskrift"))
}

pub async fn posted(
    State(ctx): State<AppContext>,
    Path(id): Path<Id>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Redirect, WebError> {
    may_print(&session)?;
    let today = oslo_date(ctx.clock.now());
    let mut tx = ctx.store.begin().await?;
    own_batch(&mut tx, &session, id).await?;
    let done = ctx
        .engine
        .mark_batch_posted(&mut tx, id, today)
        .await
        .map_err(|e| WebError::Refused(e.to_string()))?;
    if !done {
        return Err(WebError::Refused("Bunken er allerede postlagt.".into()));
    }
    tx.commit().await?;
    Ok(Redirect::to("/staff/utskrift"))
}

#[derive(Debug, Deserialize)]
pub struct ReturnedForm {
    reference: String,
    reason: String,
}

/// A letter came back: its address is marked failed, the coordinator is told, and the notice
/// goes to the next step at once.
pub async fn returned(
    State(ctx): State<AppContext>,
    CsrfForm { session, form }: CsrfForm<ReturnedForm>,
) -> Result<Page, WebError> {
    may_print(&session)?;
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(WebError::Refused(
            "Skriv hvorfor brevet kom i retur (1–200 tegn), for eksempel «ukjent adressat».".into(),
        ));
    }
    let reference = form.reference.trim().to_uppercase();
    let mut tx = ctx.store.begin().await?;
    let Some(found) = print::letter_by_reference(&mut tx, &reference).await? else {
        return Err(WebError::Refused(format!(
            "Fant ikke noe brev med referansen «{reference}». Sjekk at den er skrevet av riktig (den står under adressen)."
        )));
    };
    if print::batch(&mut tx, found.batch_id).await?.organisation_id != session.organisation_id {
        return Err(WebError::Refused(format!(
            "Fant ikke noe brev med referansen «{reference}» her."
        )));
    }
    ctx.engine
        .letter_returned(&mut tx, &reference, reason)
        .await
        .map_err(|e| WebError::Refused(e.to_string()))?;
    let patient = notices::get(&mut tx, found.notice_id).await?.patient_id;
    audit::record(
        &mut tx,
        &session.actor(),
        "letter.returned",
        Some(patient),
        Some(found.id),
        Outcome::Allowed,
        ctx.clock.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Page::message(
        StatusCode::OK,
        "Returbrevet er registrert",
        "Adressen er merket som ugyldig, koordinatoren har fått beskjed, og varselet går videre til neste kanal med en gang.",
        ("/staff/utskrift", "Tilbake til utskrift"),
    ))
}
