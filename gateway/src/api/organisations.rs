//! Organisations (any caller may list them, to pick the low-threshold service or outreach team
//! for a contact point), an admin's edits of their own organisation, and its staff accounts.

use super::{Items, roles};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, Ids};
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_scheduler::Policy;
use kontaktvei_store::accounts::{self, StaffLogin};
use kontaktvei_store::organisations::{self, Organisation, OrganisationUpdate};
use kontaktvei_store::staff::{self, NewStaff, Staff};
use kontaktvei_store::{FieldError, Id};

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/organisations", routing::get(list))
        .route("/organisations/{id}", routing::get(get).patch(update))
        .route(
            "/organisations/{id}/policy",
            routing::get(get_policy).put(put_policy),
        )
        .route("/staff", routing::get(list_staff).post(create_staff))
        .route("/staff/{id}/keys", routing::post(create_staff_key))
        .route("/staff/{id}/login", routing::put(set_login))
}

/// Every organisation, by name.
#[utoipa::path(get, path = "/organisations", tag = "organisations",
    responses((status = 200, body = Items<Organisation>)))]
pub async fn list(
    State(ctx): State<AppContext>,
    _caller: Caller,
) -> ApiResult<Json<Items<Organisation>>> {
    let mut tx = ctx.store.begin_read().await?;
    let items = organisations::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

#[utoipa::path(get, path = "/organisations/{id}", tag = "organisations",
    responses((status = 200, body = Organisation), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    _caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Organisation>> {
    let mut tx = ctx.store.begin_read().await?;
    let org = organisations::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(org))
}

/// An admin changes their own organisation's name, time zone, opening hours or staff e-mail.
#[utoipa::path(patch, path = "/organisations/{id}", tag = "organisations", request_body = OrganisationUpdate,
    responses((status = 200, body = Organisation), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn update(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(update): ApiJson<OrganisationUpdate>,
) -> ApiResult<Json<Organisation>> {
    caller.require(roles::ADMIN, "change an organisation")?;
    if id != caller.organisation_id {
        return Err(ApiError::Forbidden(
            "you may only change your own organisation".into(),
        ));
    }
    let mut tx = ctx.store.begin().await?;
    let org = organisations::update(&mut tx, id, update).await?;
    tx.commit().await?;
    Ok(Json(org))
}

/// The staff accounts of the caller's organisation.
#[utoipa::path(get, path = "/staff", tag = "organisations", responses((status = 200, body = Items<Staff>)))]
pub async fn list_staff(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> ApiResult<Json<Items<Staff>>> {
    caller.require(roles::READ_STAFF, "list staff")?;
    let mut tx = ctx.store.begin_read().await?;
    let items = staff::list_staff(&mut tx, caller.organisation_id).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

/// An admin adds a staff member (e.g. a koordinator patients can be assigned to).
#[utoipa::path(post, path = "/staff", tag = "organisations", request_body = NewStaff,
    responses((status = 201, body = Staff), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn create_staff(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(new): ApiJson<NewStaff>,
) -> ApiResult<(StatusCode, Json<Staff>)> {
    caller.require(roles::ADMIN, "add staff")?;
    let mut tx = ctx.store.begin().await?;
    let staff = staff::create_staff(&mut tx, caller.organisation_id, new, ctx.clock.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(staff)))
}

/// A personal key, shown once.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PersonalKey {
    pub key_id: Id,
    pub staff_id: Id,
    pub role: staff::Role,
    /// The secret: give it to the person; it is never shown again.
    pub api_key: String,
}

/// An admin makes a personal key for a staff member: it acts in their name, so they can claim,
/// work and close tasks and accept hand-overs. The key has the person's role.
#[utoipa::path(post, path = "/staff/{id}/keys", tag = "organisations",
    responses((status = 201, body = PersonalKey), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem)))]
pub async fn create_staff_key(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<(StatusCode, Json<PersonalKey>)> {
    caller.require(roles::ADMIN, "make keys")?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let person = staff::get_staff(&mut tx, id).await?;
    if person.organisation_id != caller.organisation_id {
        return Err(kontaktvei_store::Error::NotFound("staff member").into());
    }
    let (key, secret) = staff::create_api_key(
        &mut tx,
        caller.organisation_id,
        person.role,
        Some(format!("personal key for staff {}", person.id)),
        Some(person.id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(PersonalKey {
            key_id: key.id,
            staff_id: person.id,
            role: key.role,
            api_key: secret,
        }),
    ))
}

/// A username and password for the staff web pages.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLogin {
    /// 3–64 letters, digits or `. - _ @`; stored lower-case, unique across organisations.
    pub username: String,
    /// At least 12 characters. Stored only as an Argon2id hash; never shown again.
    pub password: String,
}

// By hand: the password must never reach a log line.
impl std::fmt::Debug for NewLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An admin gives a staff member of their organisation a login to the staff pages, or a new
/// username and password: the lockout is lifted and the person's open sessions end.
#[utoipa::path(put, path = "/staff/{id}/login", tag = "organisations", request_body = NewLogin,
    responses((status = 200, body = StaffLogin), (status = 403, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn set_login(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(new): ApiJson<NewLogin>,
) -> ApiResult<Json<StaffLogin>> {
    caller.require(roles::ADMIN, "give staff a login")?;
    let username = crate::web::password::check_new_login(&new.username, &new.password)?;
    let person = async {
        let mut tx = ctx.store.begin_read().await?;
        let person = staff::get_staff(&mut tx, id).await;
        tx.commit().await?;
        person
    }
    .await?;
    if person.organisation_id != caller.organisation_id {
        return Err(kontaktvei_store::Error::NotFound("staff member").into());
    }
    // Hashed before the transaction: SQLite has one writer, and a hash takes a while.
    let hash = crate::web::password::hash(new.password)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut tx = ctx.store.begin().await?;
    let login = accounts::set_login(&mut tx, id, &username, &hash, ctx.clock.now()).await?;
    super::audit(&ctx, &mut tx, &caller, "staff.login.set", None, Some(id)).await?;
    tx.commit().await?;
    Ok(Json(login))
}

/// The organisation's contact policy: the chain and how long each step waits for an
/// acknowledgement. Defaults apply until an admin saves one.
#[utoipa::path(get, path = "/organisations/{id}/policy", tag = "organisations",
    responses((status = 200, body = Object), (status = 403, body = crate::problem::Problem)))]
pub async fn get_policy(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Policy>> {
    if id != caller.organisation_id {
        return Err(ApiError::Forbidden(
            "you may only read your own organisation's policy".into(),
        ));
    }
    let mut tx = ctx.store.begin_read().await?;
    let stored = organisations::policy(&mut tx, id).await?;
    tx.commit().await?;
    let policy = Policy::from_stored(stored).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(policy))
}

/// An admin replaces the policy. Notices already planned keep the policy they were planned
/// with; new notices use this one.
#[utoipa::path(put, path = "/organisations/{id}/policy", tag = "organisations", request_body = Object,
    responses((status = 200, body = Object), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn put_policy(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(policy): ApiJson<Policy>,
) -> ApiResult<Json<Policy>> {
    caller.require(roles::ADMIN, "change the contact policy")?;
    if id != caller.organisation_id {
        return Err(ApiError::Forbidden(
            "you may only change your own organisation's policy".into(),
        ));
    }
    let problems = policy.problems();
    if !problems.is_empty() {
        return Err(ApiError::Invalid(
            problems
                .into_iter()
                .map(|(f, m)| FieldError::new(f, m))
                .collect(),
        ));
    }
    let json = serde_json::to_value(&policy).map_err(|e| ApiError::Internal(e.into()))?;
    let mut tx = ctx.store.begin().await?;
    organisations::set_policy(&mut tx, id, &json).await?;
    tx.commit().await?;
    Ok(Json(policy))
}
