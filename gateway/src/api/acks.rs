//! Acknowledgements from staff: a code the patient read out at a desk or on the phone, or a
//! staff member's attestation that they told the patient in person. Codes are rate-limited per
//! caller and per code; every failed attempt is audited; codes are never logged.
//!
//! An attestation is a person's word (who, when), so it needs a personal key, and a relay or a
//! meeting is attested by the kind of service that does it: `relay_attested` by a
//! low-threshold service, `outreach_met` by an outreach team. A refusal is audited.

use super::{audit, denied, roles, visible_patient};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::ApiJson;
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::routing;
use axum::{Json, Router};
use chrono::TimeDelta;
use kontaktvei_scheduler::AckResult;
use kontaktvei_store::acks::{self, AckMethod};
use kontaktvei_store::audit::Outcome;
use kontaktvei_store::notices::{self, NoticeStatus};
use kontaktvei_store::organisations::OrganisationKind;
use kontaktvei_store::{Error as StoreError, FieldError, Id, Tx};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppContext> {
    Router::new().route("/acks", routing::post(create))
}

/// Failed attempts allowed per caller, and per code, in [`WINDOW`].
pub const MAX_FAILURES: i64 = 10;
pub const WINDOW: TimeDelta = TimeDelta::minutes(15);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAck {
    /// The code from the SMS or letter, as the patient says it (case, spaces and dashes do not matter).
    pub code: Option<String>,
    /// For an attestation: the notice the patient was told about.
    pub notice_id: Option<Id>,
    /// `code_at_desk` (default with a code), `code_by_phone`; or for an attestation, with a
    /// personal key: `staff_attested` (default without a code), `relay_attested` (a
    /// low-threshold service), `outreach_met` (an outreach team).
    pub method: Option<AckMethod>,
    /// For an attestation: where and how, e.g. "told her at the day centre".
    pub note: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckAnswer {
    /// `acknowledged`, or the status the notice already had.
    pub status: NoticeStatus,
    /// The notice, when the caller's organisation may see it.
    pub notice_id: Option<Id>,
}

/// Records an acknowledgement: a code, or an attestation for a notice. An attestation needs a
/// personal key (403 naming `method` with a shared key), and `relay_attested` a low-threshold
/// service, `outreach_met` an outreach team (403 naming `method` for another organisation).
#[utoipa::path(post, path = "/acks", tag = "notices", request_body = NewAck,
    responses((status = 200, body = AckAnswer), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem), (status = 429, body = crate::problem::Problem)))]
pub async fn create(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAck>,
) -> ApiResult<Json<AckAnswer>> {
    match (&body.code, body.notice_id) {
        (Some(code), None) => by_code(&ctx, &caller, code, body.method).await,
        (None, Some(notice_id)) => attested(&ctx, &caller, notice_id, body.method, body.note).await,
        _ => Err(StoreError::Invalid(vec![
            kontaktvei_store::FieldError::new(
                "code",
                "give either the patient's code, or notice_id for an attestation",
            ),
            kontaktvei_store::FieldError::new(
                "notice_id",
                "give either the patient's code, or notice_id for an attestation",
            ),
        ])
        .into()),
    }
}

async fn by_code(
    ctx: &AppContext,
    caller: &Caller,
    code: &str,
    method: Option<AckMethod>,
) -> ApiResult<Json<AckAnswer>> {
    caller.require(roles::ENTER_CODE, "record acknowledgements")?;
    let method = method.unwrap_or(AckMethod::CodeAtDesk);
    if !matches!(method, AckMethod::CodeAtDesk | AckMethod::CodeByPhone) {
        return Err(StoreError::invalid(
            "method",
            "with a code, method is code_at_desk or code_by_phone",
        )
        .into());
    }
    let code = acks::normalise_code(code);
    if code.len() != acks::CODE_LENGTH || !code.bytes().all(|b| acks::CODE_ALPHABET.contains(&b)) {
        return Err(StoreError::invalid(
            "code",
            format!(
                "a code has {} letters and digits, e.g. K7MX3Q (no 0, O, 1, I or L)",
                acks::CODE_LENGTH
            ),
        )
        .into());
    }
    let code_hash = acks::hash(&code);
    let source = caller.label();
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let (by_source, by_code) =
        acks::recent_failures(&mut tx, &source, &code_hash, WINDOW, now).await?;
    if by_source >= MAX_FAILURES || by_code >= MAX_FAILURES {
        drop(tx);
        return Err(denied(ctx, caller, "ack.code", None, ApiError::TooManyAttempts).await);
    }
    let Some(notice) = notices::by_code_hash(&mut tx, &code_hash).await? else {
        acks::record_attempt(&mut tx, &source, Some(&code_hash), false, now).await?;
        kontaktvei_store::audit::record(
            &mut tx,
            &caller.actor(),
            "ack.code",
            None,
            None,
            Outcome::Denied,
            now,
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::NotFound("notice with this code"));
    };
    acks::record_attempt(&mut tx, &source, Some(&code_hash), true, now).await?;
    let answer = acknowledge(ctx, &mut tx, caller, notice.id, method, None).await?;
    let visible =
        kontaktvei_store::patients::get_visible(&mut tx, caller.organisation_id, notice.patient_id)
            .await
            .is_ok();
    audit(
        ctx,
        &mut tx,
        caller,
        "ack.code",
        Some(notice.patient_id),
        Some(notice.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(AckAnswer {
        status: answer,
        notice_id: visible.then_some(notice.id),
    }))
}

async fn attested(
    ctx: &AppContext,
    caller: &Caller,
    notice_id: Id,
    method: Option<AckMethod>,
    note: Option<String>,
) -> ApiResult<Json<AckAnswer>> {
    let method = method.unwrap_or(AckMethod::StaffAttested);
    if !matches!(
        method,
        AckMethod::StaffAttested | AckMethod::RelayAttested | AckMethod::OutreachMet
    ) {
        return Err(StoreError::invalid(
            "method",
            "an attestation is staff_attested, relay_attested or outreach_met",
        )
        .into());
    }
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_none_or(|n| n.chars().count() > 500) {
        return Err(StoreError::invalid("note", "say where and how the patient was told (1–500 characters), e.g. \"told her at the day centre\"").into());
    }
    let notice = {
        let mut tx = ctx.store.begin_read().await?;
        let notice = notices::get(&mut tx, notice_id).await?;
        tx.commit().await?;
        notice
    };
    visible_patient(
        ctx,
        caller,
        notice.patient_id,
        roles::ENTER_CODE,
        "record acknowledgements",
        "ack.attest",
    )
    .await?;
    if let Err(e) = may_attest(caller, method) {
        return Err(denied(ctx, caller, "ack.attest", Some(notice.patient_id), e).await);
    }
    let mut tx = ctx.store.begin().await?;
    let status = acknowledge(ctx, &mut tx, caller, notice_id, method, note.as_deref()).await?;
    audit(
        ctx,
        &mut tx,
        caller,
        "ack.attest",
        Some(notice.patient_id),
        Some(notice_id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(AckAnswer {
        status,
        notice_id: Some(notice_id),
    }))
}

/// Whether the caller may attest with `method`: a named person (the ack says who), and for a
/// relay or a meeting someone from the kind of service that does it. A refusal names `method`
/// and says what to do instead.
fn may_attest(caller: &Caller, method: AckMethod) -> ApiResult<()> {
    let kind = caller.organisation_kind;
    let refuse =
        |message: String| Err(ApiError::ForbiddenField(FieldError::new("method", message)));
    if caller.staff_id.is_none() {
        let or_code = if kind == OrganisationKind::Clinic {
            "; or record the code the patient gives you (code_at_desk or code_by_phone)"
        } else {
            ""
        };
        return refuse(format!(
            "{method} is a person's word that the patient was told, and this key is shared by the organisation: use your personal key (an admin makes one with POST /api/v1/staff/{{id}}/keys){or_code}"
        ));
    }
    let (needed, who) = match method {
        AckMethod::RelayAttested => (
            OrganisationKind::LowThresholdService,
            "a low-threshold service that passed the message on",
        ),
        AckMethod::OutreachMet => (
            OrganisationKind::OutreachTeam,
            "an outreach team that met the patient",
        ),
        _ => return Ok(()),
    };
    if kind == needed {
        return Ok(());
    }
    let instead = match kind {
        OrganisationKind::Clinic => {
            "record the code the patient gives you (code_at_desk or code_by_phone), or staff_attested if you told the patient yourself"
        }
        _ => "use staff_attested if you told the patient yourself",
    };
    refuse(format!(
        "{method} is for {who}, and your organisation is of kind {kind}: {instead}"
    ))
}

async fn acknowledge(
    ctx: &AppContext,
    tx: &mut Tx,
    caller: &Caller,
    notice_id: Id,
    method: AckMethod,
    note: Option<&str>,
) -> ApiResult<NoticeStatus> {
    Ok(
        match ctx
            .engine
            .acknowledge(tx, notice_id, method, &caller.label(), None, note)
            .await?
        {
            AckResult::Acknowledged { .. } => NoticeStatus::Acknowledged,
            AckResult::AlreadyClosed { status, .. } => status,
        },
    )
}
