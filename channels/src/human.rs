//! The human channels: a relay request for a low-threshold service, an outreach task for a team,
//! and a follow-up task for the patient's coordinator. Dispatching one creates the task row (once
//! per step, however often it is retried) and tells the people who must act: the service's or
//! team's staff of a new task, the coordinator that the automatic chain ran out. People claim,
//! work and close the task through the API; the scheduler acts on the outcome.

use crate::{BoxFuture, Channel, ChannelKind, Dispatch, Outcome};
use chrono::TimeDelta;
use kontaktvei_store::notifications::{self, About, NotificationKind};
use kontaktvei_store::staff::{self, Role};
use kontaktvei_store::tasks::{self, ContactMode, NewTask, TaskKind, TaskPriority};
use kontaktvei_store::{Clock, Store};
use std::sync::Arc;

/// An appointment closer than this makes a human task urgent.
const URGENT: TimeDelta = TimeDelta::hours(48);
/// How long an outreach or coordinator task may run when the notice has no deadline.
const NO_DEADLINE_DUE: TimeDelta = TimeDelta::days(3);

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
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // A coordinator's task goes to their organisation, held by them from the start.
        let coordinator_org = match (self.kind, step.coordinator_id) {
            (ChannelKind::Coordinator, Some(id)) => {
                Some(staff::get_staff(&mut tx, id).await?.organisation_id)
            }
            _ => None,
        };
        let (kind, organisation_id, reason, team) = match self.kind {
            ChannelKind::Relay => (
                TaskKind::Relay,
                step.task_organisation_id,
                "pass on a message when the patient comes in",
                Some(Role::Relay),
            ),
            ChannelKind::Outreach => (
                TaskKind::Outreach,
                step.task_organisation_id,
                "find the patient and give them a message",
                Some(Role::Outreach),
            ),
            _ => (
                TaskKind::CoordinatorFollowUp,
                coordinator_org.or(Some(step.organisation_id)),
                "no one has confirmed that the patient got the message: decide what happens next",
                None,
            ),
        };
        let Some(organisation_id) = organisation_id else {
            return Ok(Outcome::Failed {
                reason: "no_organisation".into(),
            });
        };
        // A relay request is due at the end of its window; outreach and the coordinator work
        // towards the appointment (or a few days), and must be claimed within the window.
        let deadline = step.valid_until.filter(|d| *d > now);
        let (due_at, claim_by) = match self.kind {
            ChannelKind::Relay => (step.due_by, None),
            _ => {
                let claim_by = step.due_by.max(now);
                let due = deadline.unwrap_or(claim_by + NO_DEADLINE_DUE).max(claim_by);
                (due, Some(claim_by))
            }
        };
        let priority = if deadline.is_some_and(|d| d - now < URGENT) {
            TaskPriority::High
        } else {
            TaskPriority::Normal
        };
        let assignee_id = if self.kind == ChannelKind::Coordinator {
            step.coordinator_id
        } else {
            None
        };
        let (id, created) = tasks::create(
            &mut tx,
            NewTask {
                kind,
                organisation_id,
                patient_id: step.patient_id,
                notice_id: Some(step.notice_id),
                step_id: Some(step.step_id),
                assignee_id,
                reason: reason.to_owned(),
                due_at,
                priority,
                // A relay contact point with a phone is the service's direct line: call it.
                channel: if self.kind == ChannelKind::Relay && step.phone.is_some() {
                    ContactMode::Phone
                } else {
                    ContactMode::InPerson
                },
                message: Some(step.body.clone()).filter(|b| !b.is_empty()),
                claim_by: if assignee_id.is_some() {
                    None
                } else {
                    claim_by
                },
            },
            now,
        )
        .await?;
        if created {
            let about = About {
                patient_id: Some(step.patient_id),
                task_id: Some(id),
                notice_id: Some(step.notice_id),
                handover_id: None,
            };
            match team {
                Some(role) => {
                    notifications::notify_team(
                        &mut tx,
                        organisation_id,
                        &[role],
                        false,
                        NotificationKind::NewTask,
                        about,
                        now,
                    )
                    .await?;
                }
                None => {
                    notifications::notify_coordinator(
                        &mut tx,
                        step.patient_id,
                        organisation_id,
                        NotificationKind::ChainFailed,
                        about,
                        now,
                    )
                    .await?;
                }
            }
        }
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
