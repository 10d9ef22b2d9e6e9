//! What the machine has "sent": the SMS outbox (the built-in provider: nothing leaves the
//! machine).

use super::{Items, roles};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::problem::ApiResult;
use axum::extract::State;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_store::outbox::{self, OutboxMessage};

pub fn router() -> Router<AppContext> {
    Router::new().route("/outbox", routing::get(list))
}

/// The newest 200 SMS messages stored by the outbox provider for the caller's organisation.
#[utoipa::path(get, path = "/outbox", tag = "notices", responses((status = 200, body = Items<OutboxMessage>)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> ApiResult<Json<Items<OutboxMessage>>> {
    caller.require(roles::WRITE_APPOINTMENT, "read the outbox")?;
    let mut tx = ctx.store.begin().await?;
    let items = outbox::list(&mut tx, caller.organisation_id, 200).await?;
    for m in &items {
        super::audit(&ctx, &mut tx, &caller, "outbox.read", None, Some(m.id)).await?;
    }
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}
