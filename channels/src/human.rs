//! The human channels: a relay request for a low-threshold service, an outreach task for a team,
//! and a follow-up task for the patient's coordinator. Dispatching one creates the task row (once
//! per step, however often it is retried); people claim and close it (human-channels issue).

use crate::{BoxFuture, Channel, ChannelKind, Dispatch, Outcome};
use kontaktvei_store::tasks::{self, NewTask, TaskKind};
use kontaktvei_store::{Clock, Store};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct TaskChannel {
    kind: ChannelKind,
    store: Store,
    clock: Arc<dyn Clock>,
}

impl TaskChannel {
    /// `kind` is relay, outreach or coordinator.
    pub fn new(kind: ChannelKind, store: Store, clock: Arc<dyn Clock>) -> Self {
        TaskChannel { kind, store, clock }
    }

    async fn create(&self, step: &Dispatch) -> kontaktvei_store::Result<Outcome> {
        let (kind, organisation_id, reason) = match self.kind {
            ChannelKind::Relay => (
                TaskKind::Relay,
                step.task_organisation_id,
                "pass on a message when the patient comes in",
            ),
            ChannelKind::Outreach => (
                TaskKind::Outreach,
                step.task_organisation_id,
                "find the patient and give them a message",
            ),
            _ => (
                TaskKind::CoordinatorFollowUp,
                Some(step.organisation_id),
                "no one has confirmed that the patient got the message: decide what happens next",
            ),
        };
        let Some(organisation_id) = organisation_id else {
            return Ok(Outcome::Failed {
                reason: "no_organisation".into(),
            });
        };
        let mut tx = self.store.begin().await?;
        let id = tasks::create(
            &mut tx,
            NewTask {
                kind,
                organisation_id,
                patient_id: step.patient_id,
                notice_id: Some(step.notice_id),
                step_id: Some(step.step_id),
                assignee_id: if self.kind == ChannelKind::Coordinator {
                    step.coordinator_id
                } else {
                    None
                },
                reason: reason.to_owned(),
                due_at: step.due_by,
            },
            self.clock.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome::Sent {
            provider_ref: Some(format!("task:{id}")),
        })
    }
}

impl Channel for TaskChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn dispatch<'a>(&'a self, step: &'a Dispatch) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.create(step).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Retry {
                    after: None,
                    reason: format!("task: {e}"),
                },
            }
        })
    }
}
