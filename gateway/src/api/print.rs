//! The print room (role `print`, or `admin`): today's and past batches, the batch as one PDF and
//! its manifest (no names in file names), marking a batch printed and posted, "print now", and
//! recording a returned letter by the reference printed on it. The PDF holds names and
//! addresses, so every download is audited, per patient.

use super::{Items, roles};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, Ids};
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use chrono::NaiveDate;
use kontaktvei_store::audit::{self, Outcome};
use kontaktvei_store::print::{self, Letter, PrintBatch};
use kontaktvei_store::{Error as StoreError, Tx, notices};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/print-batches", routing::get(list).post(print_now))
        .route("/print-batches/{id}", routing::get(manifest))
        .route("/print-batches/{id}/letters.pdf", routing::get(pdf))
        .route(
            "/print-batches/{id}/manifest.csv",
            routing::get(manifest_csv),
        )
        .route("/print-batches/{id}/printed", routing::post(printed))
        .route("/print-batches/{id}/posted", routing::post(posted))
        .route("/letters/returned", routing::post(returned))
        .route("/letters/{reference}/pdf", routing::get(reprint))
}

/// A batch of the caller's organisation, or 404.
async fn own_batch(
    tx: &mut Tx,
    caller: &Caller,
    id: kontaktvei_store::Id,
) -> ApiResult<PrintBatch> {
    let batch = print::batch(tx, id).await?;
    if batch.organisation_id != caller.organisation_id {
        return Err(ApiError::NotFound("print batch"));
    }
    Ok(batch)
}

/// The organisation's print batches, newest first.
#[utoipa::path(get, path = "/print-batches", tag = "letters", responses((status = 200, body = Items<PrintBatch>)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> ApiResult<Json<Items<PrintBatch>>> {
    caller.require(roles::PRINT, "see print batches")?;
    let mut tx = ctx.store.begin_read().await?;
    let items = print::batches(&mut tx, caller.organisation_id, 100).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

/// "Print now": every letter waiting for a print run goes in a batch at once. Nothing waiting:
/// no batch (an empty list).
#[utoipa::path(post, path = "/print-batches", tag = "letters", responses((status = 201, body = Items<PrintBatch>)))]
pub async fn print_now(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<Items<PrintBatch>>)> {
    caller.require(roles::PRINT, "make print batches")?;
    let made = ctx
        .engine
        .print_now(caller.organisation_id, &caller.label())
        .await?;
    let status = if made.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(Items::all(made))))
}

/// One line of a manifest: which letter, for which notice, where it goes (postal code only), how
/// many pages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ManifestLine {
    pub position: i32,
    pub letter_id: kontaktvei_store::Id,
    pub reference: String,
    pub notice_id: kontaktvei_store::Id,
    pub postal_code: String,
    pub pages: i32,
    pub status: print::LetterStatus,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Manifest {
    #[serde(flatten)]
    pub batch: PrintBatch,
    pub letters: Vec<ManifestLine>,
}

fn line(l: Letter) -> ManifestLine {
    ManifestLine {
        position: l.position + 1,
        letter_id: l.id,
        reference: l.reference,
        notice_id: l.notice_id,
        postal_code: l.postal_code,
        pages: l.pages,
        status: l.status,
    }
}

/// The batch and its manifest.
#[utoipa::path(get, path = "/print-batches/{id}", tag = "letters", responses((status = 200, body = Manifest)))]
pub async fn manifest(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Manifest>> {
    caller.require(roles::PRINT, "see print batches")?;
    let mut tx = ctx.store.begin_read().await?;
    let batch = own_batch(&mut tx, &caller, id).await?;
    let letters = print::letters_in(&mut tx, id)
        .await?
        .into_iter()
        .map(line)
        .collect();
    tx.commit().await?;
    Ok(Json(Manifest { batch, letters }))
}

/// The manifest as CSV for the print room's spreadsheet.
#[utoipa::path(get, path = "/print-batches/{id}/manifest.csv", tag = "letters", responses((status = 200, content_type = "text/csv")))]
pub async fn manifest_csv(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Response> {
    let Json(m) = manifest(State(ctx), caller, Ids([id])).await?;
    let mut csv = String::from("position,letter_id,reference,notice_id,postal_code,pages,status\n");
    for l in &m.letters {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            l.position, l.letter_id, l.reference, l.notice_id, l.postal_code, l.pages, l.status
        ));
    }
    let disposition = format!("attachment; filename=\"batch-{}.csv\"", m.batch.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// The whole batch as one PDF, each letter starting on an odd page for duplex printing.
#[utoipa::path(get, path = "/print-batches/{id}/letters.pdf", tag = "letters", responses((status = 200, content_type = "application/pdf")))]
pub async fn pdf(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Response> {
    caller.require(roles::PRINT, "download print batches")?;
    let mut tx = ctx.store.begin().await?;
    own_batch(&mut tx, &caller, id).await?;
    let pdf = ctx.engine.batch_pdf(&mut tx, id).await?;
    print::audit_download(&mut tx, id, &caller.actor(), ctx.clock.now()).await?;
    tx.commit().await?;
    let disposition = format!("attachment; filename=\"batch-{id}.pdf\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response())
}

#[utoipa::path(post, path = "/print-batches/{id}/printed", tag = "letters", responses((status = 200, body = PrintBatch), (status = 409, body = crate::problem::Problem)))]
pub async fn printed(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<PrintBatch>> {
    caller.require(roles::PRINT, "mark batches printed")?;
    let mut tx = ctx.store.begin().await?;
    own_batch(&mut tx, &caller, id).await?;
    if !ctx.engine.mark_batch_printed(&mut tx, id).await? {
        return Err(ApiError::Conflict(
            "this batch is already printed or posted".into(),
        ));
    }
    let batch = print::batch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(batch))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Posted {
    /// The day the letters went in the post (`YYYY-MM-DD`); today if left out.
    pub posted_on: Option<NaiveDate>,
}

/// The batch went in the post: each letter's expected delivery and acknowledgement window
/// follow from Posten's calendar for its postal code.
#[utoipa::path(post, path = "/print-batches/{id}/posted", tag = "letters", request_body = Posted,
    responses((status = 200, body = PrintBatch), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn posted(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(body): ApiJson<Posted>,
) -> ApiResult<Json<PrintBatch>> {
    caller.require(roles::PRINT, "mark batches posted")?;
    let today = kontaktvei_scheduler::calendar::oslo_date(ctx.clock.now());
    let posted_on = body.posted_on.unwrap_or(today);
    if posted_on > today || posted_on < today - chrono::TimeDelta::days(14) {
        return Err(StoreError::invalid(
            "posted_on",
            "the posting day must be within the last 14 days, not in the future",
        )
        .into());
    }
    let mut tx = ctx.store.begin().await?;
    own_batch(&mut tx, &caller, id).await?;
    if !ctx.engine.mark_batch_posted(&mut tx, id, posted_on).await? {
        return Err(ApiError::Conflict("this batch is already posted".into()));
    }
    let batch = print::batch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(batch))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Returned {
    /// The reference printed on the letter (`BR-…`), typed or scanned.
    pub reference: String,
    /// What the post office wrote, e.g. "ukjent adressat", "flyttet".
    pub reason: String,
}

/// A letter came back: its address is marked failed, the coordinator is told, and the notice
/// escalates at once.
#[utoipa::path(post, path = "/letters/returned", tag = "letters", request_body = Returned,
    responses((status = 200, body = ManifestLine), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn returned(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(body): ApiJson<Returned>,
) -> ApiResult<Json<ManifestLine>> {
    caller.require(roles::PRINT, "record returned letters")?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(StoreError::invalid(
            "reason",
            "say why it came back (1–200 characters), e.g. \"ukjent adressat\"",
        )
        .into());
    }
    let mut tx = ctx.store.begin().await?;
    let reference = body.reference.trim().to_uppercase();
    let Some(found) = print::letter_by_reference(&mut tx, &reference).await? else {
        return Err(ApiError::NotFound("letter"));
    };
    let batch = print::batch(&mut tx, found.batch_id).await?;
    if batch.organisation_id != caller.organisation_id {
        return Err(ApiError::NotFound("letter"));
    }
    ctx.engine
        .letter_returned(&mut tx, &reference, reason)
        .await?;
    let patient = notices::get(&mut tx, found.notice_id).await?.patient_id;
    audit::record(
        &mut tx,
        &caller.actor(),
        "letter.returned",
        Some(patient),
        Some(found.id),
        Outcome::Allowed,
        ctx.clock.now(),
    )
    .await?;
    let letter = print::letter_by_reference(&mut tx, &reference)
        .await?
        .ok_or(ApiError::NotFound("letter"))?;
    tx.commit().await?;
    Ok(Json(line(letter)))
}

/// One letter again, as it was printed (a reprint), by its reference.
#[utoipa::path(get, path = "/letters/{reference}/pdf", tag = "letters", responses((status = 200, content_type = "application/pdf"), (status = 404, body = crate::problem::Problem)))]
pub async fn reprint(
    State(ctx): State<AppContext>,
    caller: Caller,
    axum::extract::Path(reference): axum::extract::Path<String>,
) -> ApiResult<Response> {
    caller.require(roles::PRINT, "reprint letters")?;
    let mut tx = ctx.store.begin().await?;
    let Some(found) = print::letter_by_reference(&mut tx, &reference.trim().to_uppercase()).await?
    else {
        return Err(ApiError::NotFound("letter"));
    };
    if print::batch(&mut tx, found.batch_id).await?.organisation_id != caller.organisation_id {
        return Err(ApiError::NotFound("letter"));
    }
    let (letter, pdf) = ctx.engine.letter_pdf(&mut tx, &reference).await?;
    let patient = notices::get(&mut tx, letter.notice_id).await?.patient_id;
    audit::record(
        &mut tx,
        &caller.actor(),
        "letter.download",
        Some(patient),
        Some(letter.id),
        Outcome::Allowed,
        ctx.clock.now(),
    )
    .await?;
    tx.commit().await?;
    let disposition = format!("attachment; filename=\"letter-{}.pdf\"", letter.reference);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response())
}
