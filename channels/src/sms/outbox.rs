//! The outbox: the built-in SMS provider of a fresh install. Messages are stored in the database
//! (shown at `GET /api/v1/outbox`) and nothing leaves the machine, so a newcomer can run a whole
//! chain without an account. One message per reference (idempotency key), however often a send
//! is retried.

use super::{Sent, SmsMessage, SmsProvider};
use crate::BoxFuture;
use kontaktvei_store::{Id, Store, outbox};

#[derive(Debug, Clone)]
pub struct OutboxSms {
    store: Store,
}

impl OutboxSms {
    pub fn new(store: Store) -> Self {
        OutboxSms { store }
    }

    async fn put(&self, m: &SmsMessage) -> kontaktvei_store::Result<Id> {
        let mut tx = self.store.begin().await?;
        let id = outbox::put(
            &mut tx,
            m.notice_id,
            m.step_id,
            &m.to,
            &m.text,
            &m.reference,
            m.now,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

impl SmsProvider for OutboxSms {
    fn name(&self) -> &str {
        "outbox"
    }

    fn send<'a>(&'a self, message: &'a SmsMessage) -> BoxFuture<'a, Sent> {
        Box::pin(async move {
            match self.put(message).await {
                Ok(id) => Sent::Accepted {
                    provider_ref: id.to_string(),
                },
                Err(e) => Sent::Unavailable {
                    retry_after: None,
                    reason: format!("outbox: {e}"),
                },
            }
        })
    }
}
