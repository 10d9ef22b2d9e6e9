//! SMS that came in from patients' phones: acknowledgements with a code, replies for staff to
//! read, and STOP requests. Kept as received and shown on the notice they belong to.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;

text_enum! {
    pub enum InboundKind {
        /// It carried a code and acknowledged a notice.
        Ack = "ack",
        /// Free text for staff; not an acknowledgement.
        Reply = "reply",
        /// The sender asked us to stop sending SMS to the number.
        Stop = "stop",
        /// From a number we do not know, with no code.
        Unknown = "unknown",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InboundMessage {
    pub id: Id,
    pub provider: String,
    pub from_phone: String,
    pub to_phone: Option<String>,
    pub body: String,
    pub kind: InboundKind,
    pub notice_id: Option<Id>,
    pub patient_id: Option<Id>,
    pub received_at: DateTime<Utc>,
}

pub async fn record(tx: &mut Tx, m: &InboundMessage) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO inbound_messages (id, provider, from_phone, to_phone, body, kind, notice_id, patient_id, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(m.id)
        .bind(&m.provider)
        .bind(&m.from_phone)
        .bind(&m.to_phone)
        .bind(&m.body)
        .bind(m.kind)
        .bind(m.notice_id)
        .bind(m.patient_id)
        .bind(m.received_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub async fn for_notice(tx: &mut Tx, notice_id: Id) -> Result<Vec<InboundMessage>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, provider, from_phone, to_phone, body, kind, notice_id, patient_id, received_at
             FROM inbound_messages WHERE notice_id = $1 ORDER BY received_at, id",
        )
        .bind(notice_id)
        .fetch_all(c)
        .await?
    }))
}
