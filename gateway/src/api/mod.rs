//! The JSON API under `/api/v1`: one router per concern, merged here, behind authentication,
//! idempotency and the OpenAPI document. Handlers are thin: they check the caller's role, call
//! the store in one transaction, write the audit row in that same transaction, and answer.

mod acks;
mod appointments;
mod handovers;
mod notices;
mod organisations;
mod outbox;
mod patients;
mod print;
mod reports;
pub(crate) mod tasks;
mod templates;

use crate::auth::Caller;
use crate::context::AppContext;
use crate::problem::{ApiError, ApiResult};
use axum::Router;
use kontaktvei_store::audit::{self, Outcome};
use kontaktvei_store::staff::Role;
use kontaktvei_store::{Id, Tx};
use serde::Serialize;

pub use openapi::ApiDoc;

/// Who may do what. Patient records are for the people who reach or treat the patient; the
/// print room works on letters only and never sees a patient record through the API, and a
/// low-threshold service sees a patient only through its relay requests (`GET /tasks`).
pub(crate) mod roles {
    use super::Role::*;
    use crate::auth::Access;

    const fn any(roles: &'static [super::Role]) -> Access {
        Access {
            roles,
            record: false,
        }
    }

    /// The patient's record — identity, contact points, shares, appointments, notices, the
    /// timeline and the access log — stays with clinics, outreach teams and home services. A
    /// low-threshold service gets what it needs to pass a message on in its relay requests.
    const fn record(roles: &'static [super::Role]) -> Access {
        Access {
            roles,
            record: true,
        }
    }

    pub const READ_PATIENT: Access = record(&[Admin, Clinic, Coordinator, Relay, Outreach]);
    pub const WRITE_PATIENT: Access = record(&[Admin, Clinic, Coordinator]);
    /// Relay and outreach staff verify addresses and phones in person, so they may add them
    /// (but not relay or outreach contact points, which share the patient with a service). A
    /// low-threshold service does so when it closes a relay request.
    pub const WRITE_CONTACT_POINT: Access = record(&[Admin, Clinic, Coordinator, Relay, Outreach]);
    pub const SHARE_PATIENT: Access = record(&[Admin, Clinic, Coordinator]);
    pub const READ_APPOINTMENT: Access = record(&[Admin, Clinic, Coordinator]);
    pub const WRITE_APPOINTMENT: Access = record(&[Admin, Clinic]);
    pub const READ_AUDIT: Access = record(&[Admin]);
    pub const ADMIN: Access = any(&[Admin]);
    /// Tasks and hand-overs: each role sees the tasks of its kind (see `api::tasks`), a
    /// low-threshold service its relay requests.
    pub const TASKS: Access = any(&[Admin, Clinic, Coordinator, Relay, Outreach]);
    /// Anyone at a desk or on the phone may type in a patient's code.
    pub const ENTER_CODE: Access = any(&[Admin, Clinic, Coordinator, Relay, Outreach]);
    pub const READ_STAFF: Access = any(&[Admin, Clinic, Coordinator, Relay, Outreach]);
    /// The print room prints and posts letters; it sees addresses only in the letters.
    pub const PRINT: Access = any(&[Admin, Print]);
    /// Message texts: those who send notices may read and preview them; admins change them.
    pub const READ_TEMPLATES: Access = any(&[Admin, Clinic, Coordinator]);
    /// The reach report: coordinators and admins (and the clinic that books).
    pub const READ_REPORT: Access = any(&[Admin, Coordinator, Clinic]);
}

/// A list answer: `{"items": […]}`, with a cursor when more pages follow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Items<T> {
    pub fn all(items: Vec<T>) -> Self {
        Items {
            items,
            next_cursor: None,
        }
    }
}

/// Writes an allowed audit row in the request's transaction.
pub(crate) async fn audit(
    ctx: &AppContext,
    tx: &mut Tx,
    caller: &Caller,
    action: &str,
    patient_id: Option<Id>,
    subject: Option<Id>,
) -> ApiResult<()> {
    audit::record(
        tx,
        &caller.actor(),
        action,
        patient_id,
        subject,
        Outcome::Allowed,
        ctx.clock.now(),
    )
    .await?;
    Ok(())
}

/// Records a refused access to a patient's data in a transaction of its own (the request's
/// transaction is rolled back) and passes the error on.
pub(crate) async fn denied(
    ctx: &AppContext,
    caller: &Caller,
    action: &str,
    patient_id: Option<Id>,
    error: ApiError,
) -> ApiError {
    let result = audit::record_denied(
        &ctx.store,
        &caller.actor(),
        action,
        patient_id,
        ctx.clock.now(),
    )
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not write the audit row for a refused request");
    }
    error
}

/// Checks the role and that the patient is shared with the caller's organisation, auditing a
/// refusal. Returns the patient. Call it before opening the request's transaction: a refusal is
/// written in a transaction of its own, and SQLite has one writer at a time.
pub(crate) async fn visible_patient(
    ctx: &AppContext,
    caller: &Caller,
    patient_id: Id,
    access: crate::auth::Access,
    doing: &str,
    action: &str,
) -> ApiResult<kontaktvei_store::patients::Patient> {
    if let Err(e) = caller.require(access, doing) {
        return Err(denied(ctx, caller, action, Some(patient_id), e).await);
    }
    let found = async {
        let mut tx = ctx.store.begin_read().await?;
        let p =
            kontaktvei_store::patients::get_visible(&mut tx, caller.organisation_id, patient_id)
                .await;
        tx.commit().await?;
        p
    }
    .await;
    match found {
        Ok(p) => Ok(p),
        Err(e) => Err(denied(ctx, caller, action, Some(patient_id), e.into()).await),
    }
}

pub fn router(ctx: AppContext) -> Router<AppContext> {
    Router::new()
        .merge(organisations::router())
        .merge(patients::router())
        .merge(appointments::router())
        .merge(notices::router())
        .merge(acks::router())
        .merge(outbox::router())
        .merge(print::router())
        .merge(tasks::router())
        .merge(handovers::router())
        .merge(reports::router())
        .merge(templates::router())
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            crate::idempotency::idempotent,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx,
            crate::auth::authenticate,
        ))
}

mod openapi {
    use super::*;
    use utoipa::Modify;
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

    struct BearerAuth;

    impl Modify for BearerAuth {
        fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
            let components = openapi.components.get_or_insert_with(Default::default);
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("kv_…")
                        .build(),
                ),
            );
        }
    }

    #[derive(utoipa::OpenApi)]
    #[openapi(
        info(title = "kontaktvei", description = "Contact gateway for patients without BankID, fixed address or stable phone."),
        servers((url = "/api/v1")),
        security(("api_key" = [])),
        modifiers(&BearerAuth),
        paths(
            organisations::list, organisations::get, organisations::update,
            organisations::list_staff, organisations::create_staff,
            organisations::get_policy, organisations::put_policy,
            patients::create, patients::list, patients::get, patients::update,
            patients::list_shares, patients::add_share,
            patients::add_contact_point, patients::list_contact_points, patients::retire_contact_point,
            patients::timeline, patients::audit_log,
            appointments::book, appointments::get, appointments::list_for_patient,
            appointments::reschedule, appointments::cancel, appointments::attendance,
            notices::get, notices::list_for_patient, acks::create,
            outbox::list, organisations::create_staff_key, organisations::set_login,
            tasks::list, tasks::get, tasks::claim, tasks::unclaim, tasks::attempt, tasks::close,
            tasks::list_notifications, tasks::read_notification, tasks::list_emails,
            handovers::list, handovers::offer, handovers::accept, handovers::decline, handovers::withdraw,
            patients::withdraw_consent, reports::reach,
            templates::list, templates::get, templates::save, templates::reset, templates::preview,
            print::list, print::print_now, print::manifest, print::manifest_csv, print::pdf,
            print::printed, print::posted, print::returned, print::reprint,
        ),
        components(schemas(crate::problem::Problem, kontaktvei_store::FieldError))
    )]
    pub struct ApiDoc;
}
