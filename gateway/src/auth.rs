//! Who is calling. Every `/api/v1` request carries `Authorization: Bearer <api key>`; the
//! middleware resolves the key to a [`Caller`] (organisation + role) or answers 401. Handlers
//! then ask the caller for the role they need; a wrong role is 403, another organisation's
//! patient is 404 (so its existence does not leak).

use crate::context::AppContext;
use crate::problem::ApiError;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kontaktvei_scheduler::human::Person;
use kontaktvei_store::Id;
use kontaktvei_store::audit::Actor;
use kontaktvei_store::organisations::{self, OrganisationKind};
use kontaktvei_store::staff::{self, Role};

#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Id,
    pub organisation_id: Id,
    pub organisation_kind: OrganisationKind,
    pub role: Role,
    /// The staff member a personal key acts for.
    pub staff_id: Option<Id>,
    pub request_id: Option<String>,
}

/// What an action needs: one of these roles, and for the patient's record an organisation that
/// is not a low-threshold service.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub roles: &'static [Role],
    /// The patient's record — who they are, how to reach them, their treatment, who read it. A
    /// low-threshold service sees a patient only through its relay requests (`GET /tasks`):
    /// name, birth year, the description the patient agreed to, what to say and by when.
    pub record: bool,
}

impl Access {
    /// Whether a `role` in an organisation of `kind` may.
    pub fn allows(self, role: Role, kind: OrganisationKind) -> bool {
        self.roles.contains(&role) && !self.refuses_kind(kind)
    }

    /// Whether an organisation of `kind` is refused whatever the role.
    pub fn refuses_kind(self, kind: OrganisationKind) -> bool {
        self.record && kind == OrganisationKind::LowThresholdService
    }
}

impl Caller {
    /// The audit log's view of this caller.
    pub fn actor(&self) -> Actor {
        Actor {
            organisation_id: Some(self.organisation_id),
            label: self.label(),
            request_id: self.request_id.clone(),
        }
    }

    /// How the caller is named in records (`created_by`, appointment history): the person for
    /// a personal key, else the key.
    pub fn label(&self) -> String {
        match self.staff_id {
            Some(id) => format!("staff:{id}"),
            None => format!("api_key:{}", self.key_id),
        }
    }

    /// The named person acting, or 403: claiming, closing and hand-overs are done by people.
    pub fn person(&self, doing: &str) -> Result<Person, ApiError> {
        let staff_id = self.staff_id.ok_or_else(|| {
            ApiError::Forbidden(format!(
                "only a named person may {doing}, and this key acts for nobody: use a personal key (an admin makes one with POST /api/v1/staff/{{id}}/keys)"
            ))
        })?;
        Ok(Person {
            staff_id,
            organisation_id: self.organisation_id,
            role: self.role,
            label: self.label(),
        })
    }

    /// 403 unless the caller may; `doing` finishes "your role may not …". A low-threshold
    /// service is told where it sees patients, whatever its role.
    pub fn require(&self, access: Access, doing: &str) -> Result<(), ApiError> {
        if access.refuses_kind(self.organisation_kind) {
            return Err(ApiError::Forbidden(format!(
                "a low-threshold service may not {doing}: it sees a patient only through its relay requests (GET /api/v1/tasks), with what it needs to pass the message on"
            )));
        }
        if !access.roles.contains(&self.role) {
            let allowed: Vec<&str> = access.roles.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::Forbidden(format!(
                "your role ({}) may not {doing}; that needs one of: {}",
                self.role,
                allowed.join(", ")
            )));
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

pub async fn authenticate(State(ctx): State<AppContext>, mut req: Request, next: Next) -> Response {
    let secret = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return ApiError::Unauthorized.into_response();
    };
    let key = async {
        let mut tx = ctx.store.begin_read().await?;
        let Some(key) = staff::authenticate(&mut tx, secret).await? else {
            return Ok(None);
        };
        let org = organisations::get(&mut tx, key.organisation_id).await?;
        tx.commit().await?;
        Ok::<_, kontaktvei_store::Error>(Some((key, org.kind)))
    }
    .await;
    let (key, organisation_kind) = match key {
        Ok(Some(found)) => found,
        Ok(None) => return ApiError::Unauthorized.into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    tracing::Span::current().record("key_id", tracing::field::display(key.id));
    req.extensions_mut().insert(Caller {
        key_id: key.id,
        organisation_id: key.organisation_id,
        organisation_kind,
        role: key.role,
        staff_id: key.staff_id,
        request_id,
    });
    next.run(req).await
}
