//! The SMS channel and its providers. The built-in provider is the **outbox**: it stores each
//! message in the database (shown at `GET /api/v1/outbox`) and sends nothing, so a fresh install
//! can run a whole chain without an account. Real providers come with the SMS issue.

use crate::{BoxFuture, Channel, ChannelKind, Dispatch, Outcome};
use kontaktvei_store::{Clock, Store, outbox};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct OutboxSms {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl OutboxSms {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        tracing::warn!(
            "SMS provider is the outbox: messages are stored in the database and nothing leaves this machine"
        );
        OutboxSms { store, clock }
    }

    async fn put(&self, step: &Dispatch, phone: &str) -> kontaktvei_store::Result<String> {
        let mut tx = self.store.begin().await?;
        let id = outbox::put(
            &mut tx,
            step.notice_id,
            step.step_id,
            phone,
            &step.body,
            &step.idempotency_key,
            self.clock.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(format!("outbox:{id}"))
    }
}

impl Channel for OutboxSms {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn dispatch<'a>(&'a self, step: &'a Dispatch) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(phone) = step.phone.as_deref() else {
                return Outcome::Failed {
                    reason: "no_phone".into(),
                };
            };
            match self.put(step, phone).await {
                Ok(provider_ref) => Outcome::Sent {
                    provider_ref: Some(provider_ref),
                },
                Err(e) => Outcome::Retry {
                    after: None,
                    reason: format!("outbox: {e}"),
                },
            }
        })
    }
}
