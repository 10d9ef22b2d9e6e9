//! People's side of the chain: a person closes a task with an outcome and the engine acts on
//! it (an attested acknowledgement, escalation at once, or the coordinator's decision); tasks
//! nobody claimed, or that ran past due, are chased; hand-overs move a patient, task or notice
//! from one named person to another only when the other accepts.

use crate::engine::{Engine, Result};
use chrono::{DateTime, TimeDelta, Utc};
use kontaktvei_store::acks::AckMethod;
use kontaktvei_store::contact_points::{self, NewContactPoint, Provenance};
use kontaktvei_store::due;
use kontaktvei_store::handovers::{self, Handover, HandoverStatus, NewHandover, SubjectKind};
use kontaktvei_store::notices::{self, Notice};
use kontaktvei_store::notifications::{self, About, NotificationKind};
use kontaktvei_store::staff::{self, Role};
use kontaktvei_store::steps::{self, StepChanges, StepStatus};
use kontaktvei_store::tasks::{
    self, Chase, ContactMode, NewTask, Task, TaskKind, TaskOutcome, TaskPriority,
};
use kontaktvei_store::{Error as StoreError, FieldError, Id, Tx, patients};

/// A claimed task past due reminds its holder at once, and the team lead this much later.
pub(crate) const LEAD_AFTER: TimeDelta = TimeDelta::hours(24);
/// An offer nobody answered for this long reminds the one who offered it.
const HANDOVER_REMINDER: TimeDelta = TimeDelta::hours(24);
/// How soon a coordinator's follow-up (no-show, returned letter, STOP) should be looked at.
const FOLLOW_UP_DUE: TimeDelta = TimeDelta::days(1);
/// Unassigned follow-ups (the patient has no coordinator) must be taken within this.
const FOLLOW_UP_CLAIM: TimeDelta = TimeDelta::hours(4);

/// A named staff member acting (the holder of a personal key, or a logged-in person).
#[derive(Debug, Clone)]
pub struct Person {
    pub staff_id: Id,
    pub organisation_id: Id,
    pub role: Role,
    /// How records name them, e.g. `staff:<id>`.
    pub label: String,
}

/// What a person says when closing a task.
#[derive(Debug, Clone)]
pub struct Closing {
    pub outcome: TaskOutcome,
    pub note: Option<String>,
    /// `moved`: the new whereabouts, stored with provenance `verified_in_person`.
    pub new_contact_point: Option<NewContactPoint>,
}

/// What a person offers, and to whom: a named person, or anyone in an organisation.
#[derive(Debug, Clone)]
pub struct Offer {
    pub subject_kind: SubjectKind,
    pub subject_id: Id,
    pub to_staff_id: Option<Id>,
    pub to_organisation_id: Option<Id>,
    pub note: Option<String>,
}

/// The team that works a kind of task.
fn team_roles(kind: TaskKind) -> &'static [Role] {
    match kind {
        TaskKind::Relay => &[Role::Relay],
        TaskKind::Outreach => &[Role::Outreach],
        TaskKind::CoordinatorFollowUp => &[Role::Coordinator],
    }
}

fn invalid(field: &str, message: impl Into<String>) -> crate::engine::Error {
    StoreError::invalid(field, message).into()
}

fn conflict(message: impl Into<String>) -> crate::engine::Error {
    StoreError::Conflict(message.into()).into()
}

impl Engine {
    /// Gives the patient's coordinator (or, without one, the notice's clinic) a follow-up task
    /// about this notice, and tells them why.
    pub async fn coordinator_task(
        &self,
        tx: &mut Tx,
        notice: &Notice,
        reason: String,
        told: NotificationKind,
    ) -> Result<Id> {
        let now = self.now();
        let patient = patients::get(tx, notice.patient_id).await?;
        let organisation_id = match patient.coordinator_id {
            Some(id) => staff::get_staff(tx, id).await?.organisation_id,
            None => notice.organisation_id,
        };
        let (id, _) = tasks::create(
            tx,
            NewTask {
                kind: TaskKind::CoordinatorFollowUp,
                organisation_id,
                patient_id: patient.id,
                notice_id: Some(notice.id),
                step_id: None,
                assignee_id: patient.coordinator_id,
                reason,
                due_at: now + FOLLOW_UP_DUE,
                priority: TaskPriority::Normal,
                channel: ContactMode::InPerson,
                message: None,
                claim_by: patient
                    .coordinator_id
                    .is_none()
                    .then_some(now + FOLLOW_UP_CLAIM),
            },
            now,
        )
        .await?;
        let about = About {
            task_id: Some(id),
            notice_id: Some(notice.id),
            ..About::default()
        };
        notifications::notify_coordinator(tx, patient.id, notice.organisation_id, told, about, now)
            .await?;
        Ok(id)
    }

    /// A person closes a task with an outcome; returns the task as closed.
    ///
    /// - told in person / by phone, met and informed, reached: an attested acknowledgement
    ///   (the notice is done, every other step and task cancelled);
    /// - not seen, no answer, not found, wrong contact: the step failed, escalate at once;
    /// - declined, admitted, moved: the automatic chain stops and the coordinator decides;
    /// - taken over (coordinator): the notice is handed over to that person by name.
    pub async fn close_task(
        &self,
        tx: &mut Tx,
        task_id: Id,
        by: &Person,
        closing: Closing,
    ) -> Result<Task> {
        let now = self.now();
        let task = tasks::get(tx, task_id).await?;
        let allowed = TaskOutcome::allowed_for(task.kind);
        if !allowed.contains(&closing.outcome) {
            let words: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
            return Err(invalid(
                "outcome",
                format!(
                    "a {} task closes with one of: {}",
                    task.kind,
                    words.join(", ")
                ),
            ));
        }
        if !task.is_open() {
            return Err(conflict(format!(
                "the task is already {}; nothing was changed",
                task.status
            )));
        }
        // One person holds an outreach task, and a coordinator's follow-up once it is theirs:
        // only they close it.
        let held_by_another = task.assignee_id.is_some_and(|a| a != by.staff_id);
        if task.kind == TaskKind::Outreach && task.assignee_id.is_none() {
            return Err(conflict(
                "claim the task before you close it: one person holds an outreach task",
            ));
        }
        if held_by_another && task.kind != TaskKind::Relay {
            return Err(conflict(
                "another person holds this task; only they can close it (or ask them to hand it over)",
            ));
        }
        if closing.outcome == TaskOutcome::Moved && closing.new_contact_point.is_none() {
            return Err(invalid(
                "new_contact_point",
                "give the new whereabouts as a contact point (an address, a phone, or the service that now sees the patient)",
            ));
        }
        if closing.new_contact_point.is_some() && closing.outcome != TaskOutcome::Moved {
            return Err(invalid(
                "new_contact_point",
                "only a `moved` outcome carries new whereabouts; add other contact points on the patient",
            ));
        }
        if let Some(mut new) = closing.new_contact_point.clone() {
            // What the team saw for themselves.
            new.provenance = Provenance::VerifiedInPerson;
            new.verified_by.get_or_insert_with(|| by.label.clone());
            if let Err(e) = contact_points::add(tx, task.patient_id, new, &by.label, now).await {
                return Err(match e {
                    StoreError::Invalid(errors) => StoreError::Invalid(
                        errors
                            .into_iter()
                            .map(|f| {
                                FieldError::new(format!("new_contact_point.{}", f.field), f.message)
                            })
                            .collect(),
                    ),
                    other => other,
                }
                .into());
            }
        }
        let note = closing.note.as_deref();
        tasks::close(
            tx,
            task.id,
            by.staff_id,
            &by.label,
            closing.outcome,
            note,
            now,
        )
        .await?;
        let Some(notice_id) = task.notice_id else {
            return Ok(tasks::get(tx, task.id).await?);
        };
        let step = match task.step_id {
            Some(id) => Some(steps::get(tx, id).await?),
            None => None,
        };
        use TaskOutcome::*;
        match closing.outcome {
            ToldInPerson | ToldByPhone | MetAndInformed | Reached => {
                let method = match closing.outcome {
                    MetAndInformed => AckMethod::OutreachMet,
                    Reached => AckMethod::StaffAttested,
                    _ => AckMethod::RelayAttested,
                };
                self.acknowledge(tx, notice_id, method, &by.label, task.step_id, note)
                    .await?;
            }
            NotSeen | NoAnswer | NotFound | WrongContact => {
                if let Some(step) = &step {
                    if closing.outcome == WrongContact
                        && let Some(cp) = step.contact_point_id
                    {
                        self.contact_point_failed(tx, cp, "wrong_contact", now)
                            .await?;
                    }
                    self.fail_step(tx, step, closing.outcome.as_str(), now)
                        .await?;
                }
            }
            Declined | Admitted | Moved => {
                // No machine should go on trying: the coordinator decides what happens next,
                // and is told so whatever the chain does after this step.
                let clinic = notices::get(tx, notice_id).await?.organisation_id;
                notifications::notify_coordinator(
                    tx,
                    task.patient_id,
                    clinic,
                    NotificationKind::NeedsDecision,
                    about_task(&task),
                    now,
                )
                .await?;
                for s in steps::for_notice(tx, notice_id).await? {
                    if s.status == StepStatus::Planned {
                        steps::transition(
                            tx,
                            s.id,
                            &[StepStatus::Planned],
                            StepStatus::Skipped,
                            Some(closing.outcome.as_str()),
                            StepChanges::default(),
                            now,
                        )
                        .await?;
                    }
                }
                if let Some(step) = &step {
                    self.fail_step(tx, step, closing.outcome.as_str(), now)
                        .await?;
                }
            }
            TakenOver => {
                if notices::hand_over(tx, notice_id, by.staff_id, now).await? {
                    steps::cancel_remaining(tx, notice_id, "taken_over", now).await?;
                    tasks::cancel_for_notice(tx, notice_id, "a person took the notice over", now)
                        .await?;
                    tracing::info!(notice_id = %notice_id, staff_id = %by.staff_id, "notice handed over to a person");
                }
            }
        }
        Ok(tasks::get(tx, task.id).await?)
    }

    /// A contact point stopped working: mark it and tell the patient's coordinator.
    pub(crate) async fn contact_point_failed(
        &self,
        tx: &mut Tx,
        contact_point_id: Id,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let cp = contact_points::get(tx, contact_point_id).await?;
        if !cp.is_live(now) {
            return Ok(());
        }
        contact_points::mark_failed(tx, contact_point_id, reason).await?;
        let fallback = patients::get(tx, cp.patient_id)
            .await?
            .created_by_organisation_id;
        notifications::notify_coordinator(
            tx,
            cp.patient_id,
            fallback,
            NotificationKind::ContactPointFailed,
            About::default(),
            now,
        )
        .await?;
        Ok(())
    }

    /// The moments [`Engine::chase`] compares with at `now`.
    pub fn chase_times(&self, now: DateTime<Utc>) -> due::ChaseTimes {
        due::ChaseTimes {
            now,
            lead_due_before: now - LEAD_AFTER,
            handover_before: now - HANDOVER_REMINDER,
        }
    }

    /// Tasks nobody claimed in time go to the team lead (who holds them from then on, by name)
    /// and the coordinator is told; claimed tasks past due remind their holder, then the lead;
    /// unanswered hand-overs remind who offered them.
    /// Each chase happens once (compare-and-set), however many instances run.
    pub async fn chase(&self) -> Result<usize> {
        let now = self.now();
        let times = self.chase_times(now);
        let mut tx = self.store().begin().await?;
        let mut count = 0;
        for t in tasks::unclaimed_past_claim_time(&mut tx, now).await? {
            if !tasks::mark_chased(&mut tx, t.id, Chase::Unclaimed, now).await? {
                continue;
            }
            let about = about_task(&t);
            notifications::notify_team(
                &mut tx,
                t.organisation_id,
                team_roles(t.kind),
                true,
                NotificationKind::TaskUnclaimed,
                about,
                now,
            )
            .await?;
            let clinic = match t.notice_id {
                Some(id) => notices::get(&mut tx, id).await?.organisation_id,
                None => t.organisation_id,
            };
            notifications::notify_coordinator(
                &mut tx,
                t.patient_id,
                clinic,
                NotificationKind::TaskUnclaimed,
                about,
                now,
            )
            .await?;
            // Nobody let go of it: the team lead holds it now, by name, until they give it to
            // someone (or back to the team, with a reason).
            // A lead who does this work, else any lead of the organisation.
            let leads: Vec<_> = staff::list_staff(&mut tx, t.organisation_id)
                .await?
                .into_iter()
                .filter(|s| s.team_lead)
                .collect();
            let lead = leads
                .iter()
                .find(|s| team_roles(t.kind).contains(&s.role))
                .or(leads.first());
            if let Some(lead) = lead {
                tasks::reassign(
                    &mut tx,
                    t.id,
                    t.organisation_id,
                    lead.id,
                    "system",
                    "nobody claimed it in time: the team lead holds it",
                    now,
                )
                .await?;
            } else if let (TaskKind::Outreach, Some(notice_id), Some(step_id)) =
                (t.kind, t.notice_id, t.step_id)
            {
                // A team with no lead: nobody would hold it. The step ends as unclaimed and
                // the chain goes on, to the patient's coordinator if nothing else is left.
                tasks::cancel(
                    &mut tx,
                    t.id,
                    "nobody claimed it in time and the team has no lead: the chain went on",
                    now,
                )
                .await?;
                let from = [StepStatus::Sent, StepStatus::Delivered, StepStatus::Queued];
                if steps::transition(
                    &mut tx,
                    step_id,
                    &from,
                    StepStatus::Expired,
                    Some("unclaimed_and_no_team_lead"),
                    StepChanges::default(),
                    now,
                )
                .await?
                {
                    self.escalate(&mut tx, notice_id, now).await?;
                }
            }
            tracing::warn!(task_id = %t.id, "task not claimed in time: team lead and coordinator told");
            count += 1;
        }
        for t in tasks::overdue(&mut tx, now, false).await? {
            if tasks::mark_chased(&mut tx, t.id, Chase::Owner, now).await? {
                notifications::notify(
                    &mut tx,
                    t.organisation_id,
                    t.assignee_id,
                    NotificationKind::TaskOverdue,
                    about_task(&t),
                    now,
                )
                .await?;
                count += 1;
            }
        }
        for t in tasks::overdue(&mut tx, times.lead_due_before, true).await? {
            if tasks::mark_chased(&mut tx, t.id, Chase::Lead, now).await? {
                notifications::notify_team(
                    &mut tx,
                    t.organisation_id,
                    team_roles(t.kind),
                    true,
                    NotificationKind::TaskOverdue,
                    about_task(&t),
                    now,
                )
                .await?;
                count += 1;
            }
        }
        // An offer nobody answers is brought up again every day until someone does.
        let before = times.handover_before;
        for h in handovers::unanswered(&mut tx, before).await? {
            if handovers::mark_reminded(&mut tx, h.id, before, now).await? {
                let about = about_handover(&h);
                notifications::notify(
                    &mut tx,
                    h.from_organisation_id,
                    Some(h.from_staff_id),
                    NotificationKind::HandoverPending,
                    about,
                    now,
                )
                .await?;
                tell_recipients(&mut tx, &h, now).await?;
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Offers a patient, task or notice the person holds to another person or organisation.
    pub async fn offer_handover(&self, tx: &mut Tx, by: &Person, offer: Offer) -> Result<Handover> {
        let now = self.now();
        let Offer {
            subject_kind,
            subject_id,
            to_staff_id,
            to_organisation_id,
            note,
        } = offer;
        let patient_id = match subject_kind {
            SubjectKind::Patient => {
                let p = patients::get(tx, subject_id).await?;
                let holds = match p.coordinator_id {
                    Some(c) => c == by.staff_id,
                    // Nobody coordinates yet: a coordinator who can see the patient may offer.
                    None => by.role == Role::Coordinator || by.role == Role::Admin,
                };
                if !holds {
                    return Err(conflict(
                        "only the patient's coordinator can hand the patient over",
                    ));
                }
                p.id
            }
            SubjectKind::Task => {
                let t = tasks::get(tx, subject_id).await?;
                if !t.is_open() || t.assignee_id != Some(by.staff_id) {
                    return Err(conflict(
                        "only the person who holds an open task can hand it over; claim it first",
                    ));
                }
                t.patient_id
            }
            SubjectKind::Notice => {
                let n = notices::get(tx, subject_id).await?;
                let holds_task = tasks::for_notice(tx, n.id).await?.iter().any(|t| {
                    t.is_open()
                        && t.kind == TaskKind::CoordinatorFollowUp
                        && t.assignee_id == Some(by.staff_id)
                });
                if n.holder_staff_id != Some(by.staff_id) && !holds_task {
                    return Err(conflict(
                        "only the person who holds a notice (took it over, or holds its coordinator task) can hand it over",
                    ));
                }
                n.patient_id
            }
        };
        let (to_staff_id, to_organisation_id) = match (to_staff_id, to_organisation_id) {
            (Some(s), org) => {
                let person = match staff::get_staff(tx, s).await {
                    Ok(p) => p,
                    Err(StoreError::NotFound(_)) => {
                        return Err(invalid("to_staff_id", "no staff member has this id"));
                    }
                    Err(e) => return Err(e.into()),
                };
                if org.is_some_and(|o| o != person.organisation_id) {
                    return Err(invalid(
                        "to_organisation_id",
                        "that person works in another organisation; give only to_staff_id",
                    ));
                }
                if s == by.staff_id {
                    return Err(invalid(
                        "to_staff_id",
                        "you cannot hand something to yourself",
                    ));
                }
                (Some(s), person.organisation_id)
            }
            (None, Some(org)) => {
                if let Err(e) = kontaktvei_store::organisations::get(tx, org).await {
                    return Err(match e {
                        StoreError::NotFound(_) => {
                            invalid("to_organisation_id", "no organisation has this id")
                        }
                        e => e.into(),
                    });
                }
                (None, org)
            }
            (None, None) => {
                return Err(invalid(
                    "to_staff_id",
                    "say who takes it over: to_staff_id (a person) or to_organisation_id (anyone there)",
                ));
            }
        };
        let h = handovers::offer(
            tx,
            NewHandover {
                subject_kind,
                subject_id,
                patient_id,
                from_staff_id: by.staff_id,
                from_organisation_id: by.organisation_id,
                to_staff_id,
                to_organisation_id,
                note: note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            },
            now,
        )
        .await?;
        tell_recipients(tx, &h, now).await?;
        Ok(h)
    }

    /// Accepts or declines an offer made to the person (or their organisation), or withdraws
    /// one they made. Accepting moves the subject to them.
    pub async fn decide_handover(
        &self,
        tx: &mut Tx,
        id: Id,
        by: &Person,
        decision: HandoverStatus,
        note: Option<&str>,
    ) -> Result<Handover> {
        let now = self.now();
        let h = handovers::get(tx, id).await?;
        let is_recipient = h.to_staff_id == Some(by.staff_id)
            || (h.to_staff_id.is_none() && h.to_organisation_id == by.organisation_id);
        match decision {
            HandoverStatus::Accepted | HandoverStatus::Declined if !is_recipient => {
                return Err(conflict("this offer was made to someone else"));
            }
            HandoverStatus::Withdrawn if h.from_staff_id != by.staff_id => {
                return Err(conflict(
                    "only the person who made the offer can withdraw it",
                ));
            }
            HandoverStatus::Offered => {
                return Err(invalid("decision", "accept, decline or withdraw"));
            }
            _ => {}
        }
        if !handovers::decide(tx, id, decision, by.staff_id, note, now).await? {
            return Err(conflict(format!(
                "this offer is already {}; nothing was changed",
                h.status
            )));
        }
        if decision == HandoverStatus::Accepted {
            match h.subject_kind {
                SubjectKind::Patient => {
                    patients::set_coordinator(tx, h.patient_id, by.staff_id, now).await?;
                    patients::share(tx, h.patient_id, by.organisation_id, now).await?;
                }
                SubjectKind::Task => {
                    tasks::reassign(
                        tx,
                        h.subject_id,
                        by.organisation_id,
                        by.staff_id,
                        &by.label,
                        "accepted a hand-over",
                        now,
                    )
                    .await?;
                    patients::share(tx, h.patient_id, by.organisation_id, now).await?;
                }
                SubjectKind::Notice => {
                    notices::set_holder(tx, h.subject_id, by.staff_id, now).await?;
                    for t in tasks::for_notice(tx, h.subject_id).await? {
                        if t.is_open() && t.kind == TaskKind::CoordinatorFollowUp {
                            tasks::reassign(
                                tx,
                                t.id,
                                by.organisation_id,
                                by.staff_id,
                                &by.label,
                                "accepted a hand-over",
                                now,
                            )
                            .await?;
                        }
                    }
                    patients::share(tx, h.patient_id, by.organisation_id, now).await?;
                }
            }
        }
        if decision != HandoverStatus::Withdrawn {
            let kind = if decision == HandoverStatus::Accepted {
                NotificationKind::HandoverAccepted
            } else {
                NotificationKind::HandoverDeclined
            };
            notifications::notify(
                tx,
                h.from_organisation_id,
                Some(h.from_staff_id),
                kind,
                about_handover(&h),
                now,
            )
            .await?;
        }
        Ok(handovers::get(tx, id).await?)
    }
}

fn about_task(t: &Task) -> About {
    About {
        patient_id: Some(t.patient_id),
        task_id: Some(t.id),
        notice_id: t.notice_id,
        handover_id: None,
    }
}

fn about_handover(h: &Handover) -> About {
    About {
        patient_id: Some(h.patient_id),
        handover_id: Some(h.id),
        ..About::default()
    }
}

/// The offered-to person, or everyone in the offered-to organisation.
async fn tell_recipients(tx: &mut Tx, h: &Handover, now: DateTime<Utc>) -> Result<()> {
    let about = about_handover(h);
    match h.to_staff_id {
        Some(s) => {
            notifications::notify(
                tx,
                h.to_organisation_id,
                Some(s),
                NotificationKind::HandoverOffered,
                about,
                now,
            )
            .await?;
        }
        None => {
            notifications::notify_team(
                tx,
                h.to_organisation_id,
                Role::ALL,
                false,
                NotificationKind::HandoverOffered,
                about,
                now,
            )
            .await?;
        }
    }
    Ok(())
}
