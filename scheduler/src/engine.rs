//! The escalation rule, as code (DESIGN.md, "The escalation rule").
//!
//! 1. A new notice gets its contact plan ([`Engine::plan`]) in the transaction that created it:
//!    steps are stored, the first one is queued, an ack code and a link token are made.
//! 2. A worker leases due steps and hands each to its channel ([`Engine::run_due`]), with no
//!    transaction open during the call. Sent → wait for an ack until the step's window ends.
//! 3. A delivery failure escalates at once; an ended window escalates ([`Engine::expire_windows`]);
//!    a passing error retries with backoff and jitter inside the window.
//! 4. Escalating queues the next planned step, re-timed from now (quiet hours, print cut-off,
//!    opening hours); a step that can no longer reach the patient in time is skipped. When the
//!    chain runs out, the patient's coordinator gets a task: no notice ends in silence.
//! 5. An ack ([`Engine::acknowledge`]) ends the notice at once: unfinished steps are cancelled,
//!    open tasks closed, and the contact point it came through is confirmed.
//!
//! Every state lives in the database; killing the process at any instant loses nothing.

use crate::calendar::{PostalCalendar, WeeklyHours};
use crate::plan::{self, PlanInput};
use crate::policy::Policy;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, StreamExt};
use kontaktvei_channels::human::TaskChannel;
use kontaktvei_channels::letter::LetterMessage;
use kontaktvei_channels::sms::{OutboxSms, RouteConfig, SmsChannel};
use kontaktvei_channels::{Channel, Dispatch, Outcome};
use kontaktvei_store::acks::{self, AckMethod};
use kontaktvei_store::contact_points::{self, ContactKind, ContactPoint};
use kontaktvei_store::notices::{self, Notice, NoticeStatus};
use kontaktvei_store::organisations;
use kontaktvei_store::steps::{self, ChannelKind, NewStep, Step, StepChanges, StepStatus};
use kontaktvei_store::{Clock, Id, Store, Tx, appointments, due, patients, tasks};
use kontaktvei_templates as templates;
use std::collections::HashMap;
use std::sync::Arc;

/// How long a worker may hold a step before another may take it over.
const LEASE: TimeDelta = TimeDelta::seconds(60);
/// Steps leased per round.
const BATCH: i64 = 50;
/// Steps handed to their channels at the same time.
const DISPATCH_CONCURRENCY: usize = 8;

/// The key a send carries to the provider: notice, step position and attempt. A step taken over
/// after a crash keeps its attempt number, so the provider sees the same key again.
fn idempotency_key(step: &Step) -> String {
    format!("{}-{}-{}", step.notice_id, step.position, step.attempts)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] kontaktvei_store::Error),
    #[error("stored policy is unreadable: {0}")]
    Policy(#[from] serde_json::Error),
    #[error("the shipped text cannot be rendered: {0}")]
    Template(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the one-click link points: `{public_base_url}/k/{token}`.
    pub public_base_url: String,
    /// Names this instance's leases.
    pub instance: String,
    pub postal: PostalCalendar,
}

#[derive(Debug)]
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    channels: HashMap<ChannelKind, Arc<dyn Channel>>,
    /// The SMS channel again, for confirmation replies that belong to no step.
    sms: Option<Arc<SmsChannel>>,
    /// The message texts, per kind, channel and language.
    catalog: Arc<templates::Catalog>,
}

/// What one round of work did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub dispatched: usize,
    pub expired: usize,
}

/// Which step an acknowledgement came through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via<'a> {
    /// This one, if named.
    Step(Option<Id>),
    /// The notice's latest sent SMS step to one of these numbers (a reply from the phone).
    SmsTo(&'a [ContactPoint]),
}

/// The result of an acknowledgement attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckResult {
    /// This ack closed the notice.
    Acknowledged { notice_id: Id },
    /// The notice was already closed (acknowledged, handed over or superseded).
    AlreadyClosed { notice_id: Id, status: NoticeStatus },
}

impl Engine {
    /// An engine with the built-in channels: the SMS outbox and the three human channels.
    /// Letters wait in `queued` for the print batch.
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        let mut engine = Engine {
            store: store.clone(),
            clock: clock.clone(),
            config,
            channels: HashMap::new(),
            sms: None,
            catalog: Arc::new(templates::Catalog::shipped()),
        };
        let outbox = RouteConfig {
            provider: Arc::new(OutboxSms::new(store.clone())),
            priority: 1,
            weight: 1,
            rate_per_second: None,
        };
        engine = engine.with_sms(Arc::new(SmsChannel::new(vec![outbox], clock.clone(), None)));
        for kind in [
            ChannelKind::Relay,
            ChannelKind::Outreach,
            ChannelKind::Coordinator,
        ] {
            engine = engine.with_channel(Arc::new(TaskChannel::new(
                kind,
                store.clone(),
                clock.clone(),
            )));
        }
        engine
    }

    /// Uses this SMS channel for steps and for confirmation replies.
    pub fn with_sms(mut self, sms: Arc<SmsChannel>) -> Self {
        self.sms = Some(sms.clone());
        // A next of kin is reached by SMS too (with its own, detail-free text).
        self.channels.insert(ChannelKind::NextOfKin, sms.clone());
        self.with_channel(sms)
    }

    /// The catalogue the engine renders with.
    pub fn catalog(&self) -> &templates::Catalog {
        &self.catalog
    }

    /// The organisation's own texts, newest version of each (a return to the default left out).
    pub async fn overrides(
        &self,
        tx: &mut Tx,
        organisation_id: Id,
    ) -> Result<templates::Overrides> {
        let mut overrides = templates::Overrides::new();
        for o in kontaktvei_store::template_overrides::current(tx, organisation_id).await? {
            let (Some(key), Some(lang), Some(source)) = (
                templates::TemplateKey::parse(&o.template_key),
                templates::Lang::parse(&o.lang),
                o.source,
            ) else {
                continue;
            };
            overrides.insert(key, lang, o.version, source);
        }
        Ok(overrides)
    }

    /// Uses this catalogue of texts (the shipped one, or one with a directory of its own).
    pub fn with_catalog(mut self, catalog: Arc<templates::Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    pub fn sms(&self) -> Option<&Arc<SmsChannel>> {
        self.sms.as_ref()
    }

    /// Replaces the channel of its kind (a real SMS provider, a simulated peer in tests).
    pub fn with_channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.kind(), channel);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Posten's delivery calendar this engine plans with.
    pub fn postal(&self) -> &crate::calendar::PostalCalendar {
        &self.config.postal
    }

    /// Where staff pages and the patient's link live.
    pub fn public_base_url(&self) -> &str {
        &self.config.public_base_url
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The policy a notice was planned with (its snapshot).
    pub(crate) async fn policy_of(&self, tx: &mut Tx, notice_id: Id) -> Result<Policy> {
        Ok(Policy::from_stored(
            notices::policy_snapshot(tx, notice_id).await?,
        )?)
    }

    /// The organisation's current policy: for new plans and for print settings.
    pub(crate) async fn organisation_policy(
        &self,
        tx: &mut Tx,
        organisation_id: Id,
    ) -> Result<Policy> {
        Ok(Policy::from_stored(
            organisations::policy(tx, organisation_id).await?,
        )?)
    }

    async fn opening_hours(
        &self,
        tx: &mut Tx,
        points: &[ContactPoint],
    ) -> Result<HashMap<Id, WeeklyHours>> {
        let mut hours = HashMap::new();
        for org_id in points
            .iter()
            .filter(|c| c.kind == ContactKind::Relay)
            .filter_map(|c| c.organisation_id)
        {
            let org = organisations::get(tx, org_id).await?;
            let is_set = org.opening_hours != organisations::OpeningHours::default();
            if is_set {
                hours.insert(org_id, WeeklyHours::from_store(&org.opening_hours));
            }
        }
        Ok(hours)
    }

    /// Plans a new notice inside the caller's transaction: snapshots the organisation's policy,
    /// stores the steps with their rendered messages, and queues the first one.
    pub async fn plan(&self, tx: &mut Tx, notice: &Notice) -> Result<Vec<NewStep>> {
        let now = self.now();
        let policy = self.organisation_policy(tx, notice.organisation_id).await?;
        let points = contact_points::list(tx, notice.patient_id).await?;
        let opening_hours = self.opening_hours(tx, &points).await?;
        let input = PlanInput {
            now,
            deadline: notice.deadline,
            contact_points: &points,
            policy: &policy,
            postal: &self.config.postal,
            opening_hours: &opening_hours,
        };
        let mut steps = plan::build(&input);

        let code = loop {
            let code = acks::new_code();
            if !notices::code_in_use(tx, &acks::hash(&code)).await? {
                break code;
            }
        };
        let token = acks::new_link_token();
        let link = format!(
            "{}/k/{token}",
            self.config.public_base_url.trim_end_matches('/')
        );
        let patient = patients::get(tx, notice.patient_id).await?;
        let appointment = match notice.appointment_id {
            Some(id) => Some(appointments::get(tx, id).await?),
            None => None,
        };
        let kind = templates::Kind::parse(notice.kind.as_str()).unwrap_or(templates::Kind::Free);
        let ctx = templates::Context {
            kind,
            starts_at: appointment.as_ref().map(|a| a.starts_at),
            place: appointment.as_ref().map(|a| a.place.as_str()),
            code: &code,
            link: &link,
            patient_name: Some(&patient.name),
            patient_birth_year: Some(patient.birth_year),
        };
        // The patient's language when there is a template in it; bokmål otherwise.
        let lang = templates::Lang::parse(&patient.language).unwrap_or(templates::Lang::NB);
        let overrides = self.overrides(tx, notice.organisation_id).await?;
        let mut used = std::collections::BTreeMap::new();
        let mut lang_used = lang.clone();
        for step in steps.iter_mut().filter(|s| s.status == StepStatus::Planned) {
            let channel = match step.channel {
                ChannelKind::Sms => Some(templates::Channel::Sms),
                ChannelKind::Letter => Some(templates::Channel::Letter),
                ChannelKind::Relay => Some(templates::Channel::Relay),
                ChannelKind::Outreach | ChannelKind::Coordinator => {
                    Some(templates::Channel::Outreach)
                }
                ChannelKind::NextOfKin => None,
            };
            let rendered = channel.and_then(|c| {
                match self.catalog.render(c, &lang, &ctx, &overrides) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(notice_id = %notice.id, error = %e, "template failed; the built-in bokmål text is used");
                        None
                    }
                }
            });
            if let Some(r) = &rendered {
                for w in &r.warnings {
                    tracing::warn!(notice_id = %notice.id, warning = %w, "template");
                }
                lang_used = r.lang_used.clone();
                let version = match r.version {
                    templates::TemplateVersion::Default => "default".to_owned(),
                    templates::TemplateVersion::Override(v) => v.to_string(),
                };
                used.insert(step.channel.as_str().to_owned(), version);
            }
            step.body = Some(match step.channel {
                ChannelKind::Sms => rendered
                    .map(|r| r.text)
                    .unwrap_or_else(|| templates::render(templates::Medium::Sms, &ctx)),
                ChannelKind::Letter => {
                    let (title, mut body) = match rendered {
                        Some(r) => (r.title.unwrap_or_default(), r.text),
                        None => {
                            let t = templates::letter(&ctx);
                            (t.title, t.body)
                        }
                    };
                    if !policy.letter_contact_text.trim().is_empty() {
                        body = format!("{}\n\n{}", body, policy.letter_contact_text.trim());
                    }
                    let message = LetterMessage {
                        title,
                        body,
                        code: code.clone(),
                        link: link.clone(),
                    };
                    serde_json::to_string(&message)?
                }
                ChannelKind::NextOfKin => {
                    let kin = step
                        .contact_point_id
                        .and_then(|id| points.iter().find(|c| c.id == id))
                        .and_then(|c| c.contact_name.as_deref());
                    let first_name = patient.name.split_whitespace().next().unwrap_or("");
                    templates::next_of_kin(kin, first_name, &policy.letter_contact_text)
                }
                _ => rendered
                    .map(|r| r.text)
                    .unwrap_or_else(|| templates::render(templates::Medium::InPerson, &ctx)),
            });
        }
        // The first step to run is stored queued (due and window are planned already), not
        // stored planned and then queued: one statement less for every notice.
        if let Some(first) = steps.iter_mut().find(|s| s.status == StepStatus::Planned) {
            first.status = StepStatus::Queued;
        }
        steps::insert_plan(tx, notice.id, &steps, now).await?;
        notices::activate(
            tx,
            notice.id,
            &notices::Activation {
                policy: &serde_json::to_value(&policy)?,
                code_hash: &acks::hash(&code),
                token_hash: &acks::hash(&token),
                template_lang: lang_used.as_str(),
                templates_used: &used,
            },
            now,
        )
        .await?;
        tracing::info!(notice_id = %notice.id, steps = steps.len(), "notice planned");
        Ok(steps)
    }

    /// A no-show never closes anything: besides the follow-up notice (planned like any other),
    /// the patient's coordinator gets a task — or, without a coordinator, the clinic does.
    pub async fn no_show(&self, tx: &mut Tx, follow_up: &Notice) -> Result<Id> {
        let id = self
            .coordinator_task(
                tx,
                follow_up,
                "the patient did not come to the appointment: follow up (a no-show never closes the treatment)".into(),
                kontaktvei_store::notifications::NotificationKind::NoShow,
            )
            .await?;
        tracing::info!(notice_id = %follow_up.id, task_id = %id, "no-show: coordinator task created");
        Ok(id)
    }

    /// Queues the next planned step of an open notice, re-timed from now; skips steps that can
    /// no longer reach the patient; adds the coordinator when nothing is left.
    pub(crate) async fn escalate(
        &self,
        tx: &mut Tx,
        notice_id: Id,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (notice, policy) = notices::get_with_policy(tx, notice_id).await?;
        if !notice.status.is_open() {
            return Ok(());
        }
        let all = steps::for_notice(tx, notice_id).await?;
        if all.iter().any(|s| {
            matches!(
                s.status,
                StepStatus::Queued | StepStatus::Sending | StepStatus::Sent | StepStatus::Delivered
            )
        }) {
            return Ok(()); // a step is still running
        }
        let policy = Policy::from_stored(policy)?;
        let points = contact_points::list(tx, notice.patient_id).await?;
        let opening_hours = self.opening_hours(tx, &points).await?;
        let input = PlanInput {
            now,
            deadline: notice.deadline,
            contact_points: &points,
            policy: &policy,
            postal: &self.config.postal,
            opening_hours: &opening_hours,
        };
        for step in all.iter().filter(|s| s.status == StepStatus::Planned) {
            let cp = step
                .contact_point_id
                .and_then(|id| points.iter().find(|c| c.id == id));
            if cp.is_some_and(|c| !c.is_live(now)) {
                steps::transition(
                    tx,
                    step.id,
                    &[StepStatus::Planned],
                    StepStatus::Skipped,
                    Some(plan::reason::CONTACT_POINT_FAILED),
                    StepChanges::default(),
                    now,
                )
                .await?;
                continue;
            }
            match plan::timing(step.channel, cp, now, &input) {
                Ok((due_at, window_end)) => {
                    let window_ends_at = if step.channel.held_by_a_person() {
                        None
                    } else {
                        Some(window_end)
                    };
                    let changes = StepChanges {
                        due_at: Some(due_at),
                        window_ends_at,
                        ..Default::default()
                    };
                    steps::transition(
                        tx,
                        step.id,
                        &[StepStatus::Planned],
                        StepStatus::Queued,
                        None,
                        changes,
                        now,
                    )
                    .await?;
                    return Ok(());
                }
                Err(why) => {
                    steps::transition(
                        tx,
                        step.id,
                        &[StepStatus::Planned],
                        StepStatus::Skipped,
                        Some(why),
                        StepChanges::default(),
                        now,
                    )
                    .await?;
                }
            }
        }
        // The chain ran out without an acknowledgement: the coordinator decides what next.
        if policy.person_last {
            self.give_to_coordinator(tx, notice_id, &all, "chain_exhausted", now)
                .await?;
        }
        Ok(())
    }

    /// Adds the coordinator's step to a notice (queued now) unless the coordinator already
    /// has it. `all` is the notice's steps. Returns whether a step was added.
    async fn give_to_coordinator(
        &self,
        tx: &mut Tx,
        notice_id: Id,
        all: &[Step],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let coordinator_has_it = all.iter().any(|s| {
            s.channel == ChannelKind::Coordinator
                && !matches!(
                    s.status,
                    StepStatus::Skipped | StepStatus::Failed | StepStatus::Cancelled
                )
        });
        if coordinator_has_it {
            return Ok(false);
        }
        let step = NewStep {
            channel: ChannelKind::Coordinator,
            contact_point_id: None,
            status: StepStatus::Queued,
            reason: Some(reason.into()),
            due_at: Some(now),
            window_ends_at: None,
            // What to say in person: a relay or outreach step's text if there was one.
            body: all
                .iter()
                .rev()
                .filter(|s| s.channel.is_human() || s.channel == ChannelKind::Sms)
                .find_map(|s| s.body.clone()),
        };
        steps::append(tx, notice_id, &step, now).await?;
        tracing::warn!(notice_id = %notice_id, reason, "the coordinator takes the notice over");
        Ok(true)
    }

    /// One round: hand due steps to their channels, then escalate ended windows, then chase
    /// tasks and hand-overs.
    pub async fn run_once(&self) -> Result<Round> {
        let due = self.due_work().await?;
        Ok(self.round(due).await?.0)
    }

    /// A round from what is due now: the parts with nothing to do are skipped (see [`due`]).
    /// After a part has done something, what is due is asked again, since a dispatch or an
    /// escalation may have made work for the parts after it. Returns what is due after the
    /// round, when the last question still answers it (nothing was written since).
    async fn round(&self, mut due: due::DueWork) -> Result<(Round, Option<due::DueWork>)> {
        let dispatched = if due.steps { self.run_due().await? } else { 0 };
        if dispatched > 0 {
            due = self.due_work().await?;
        }
        let expired = if due.windows {
            self.expire_windows().await?
        } else {
            0
        };
        if expired > 0 {
            due = self.due_work().await?;
        }
        let chased = if due.chase { self.chase().await? } else { 0 };
        let after = (chased == 0).then_some(due);
        Ok((
            Round {
                dispatched,
                expired,
            },
            after,
        ))
    }

    /// Which parts of a round have anything to do now.
    pub async fn due_work(&self) -> Result<due::DueWork> {
        let mut tx = self.store.begin_read().await?;
        let work =
            due::due_work(&mut tx, &self.channel_kinds(), self.chase_times(self.now())).await?;
        tx.commit().await?;
        Ok(work)
    }

    /// When this engine next has something to do (a step falling due, a window ending, a task
    /// to chase), so a driver of virtual time can jump there. Cron jobs are not included.
    pub async fn next_wake(&self) -> Result<Option<DateTime<Utc>>> {
        let mut tx = self.store.begin_read().await?;
        let wake = due::next_wake(&mut tx, crate::human::LEAD_AFTER).await?;
        tx.commit().await?;
        Ok(wake)
    }

    /// Rounds until nothing is left to do now (tests and the simulator drive virtual time so).
    pub async fn run_until_idle(&self) -> Result<Round> {
        let mut total = Round::default();
        let mut known = None;
        for _ in 0..1000 {
            let due = match known {
                Some(due) => due,
                None => self.due_work().await?,
            };
            let (round, after) = self.round(due).await?;
            known = after;
            total.dispatched += round.dispatched;
            total.expired += round.expired;
            if round == Round::default() {
                break;
            }
        }
        Ok(total)
    }

    /// The channels this engine can send through.
    pub fn channel_kinds(&self) -> Vec<ChannelKind> {
        self.channels.keys().copied().collect()
    }

    /// Leases due steps of the channels we have and dispatches them. Returns how many.
    pub async fn run_due(&self) -> Result<usize> {
        let now = self.now();
        let kinds = self.channel_kinds();
        let mut tx = self.store.begin().await?;
        let leased = steps::lease_due(
            &mut tx,
            &self.config.instance,
            &kinds,
            now,
            (now + LEASE).timestamp_millis(),
            BATCH,
        )
        .await?;
        // The key is noted before the provider is called, so a delivery report that overtakes
        // our own bookkeeping still finds its step. What each send needs (the notice, its
        // patient and organisation, the contact point) is read with it.
        let mut ready = Vec::with_capacity(leased.len());
        for step in leased {
            let (facts, cp) =
                steps::prepare_dispatch(&mut tx, &step, &idempotency_key(&step)).await?;
            ready.push((step, facts, cp));
        }
        tx.commit().await?;
        let count = ready.len();
        // Providers answer in tens to hundreds of milliseconds: send several at a time.
        stream::iter(ready)
            .for_each_concurrent(DISPATCH_CONCURRENCY, |(step, facts, cp)| async move {
                if let Err(e) = self.dispatch(&step, facts, cp).await {
                    // The lease runs out and the step is tried again; nothing is lost.
                    tracing::error!(step_id = %step.id, error = %e, "dispatch failed");
                }
            })
            .await;
        Ok(count)
    }

    async fn dispatch(
        &self,
        step: &Step,
        facts: notices::DispatchFacts,
        cp: Option<ContactPoint>,
    ) -> Result<()> {
        let Some(channel) = self.channels.get(&step.channel).cloned() else {
            return Ok(());
        };
        let policy = Policy::from_stored(facts.policy.map(|j| j.0))?;
        let dispatch = Dispatch {
            notice_id: step.notice_id,
            step_id: step.id,
            patient_id: facts.patient_id,
            organisation_id: facts.organisation_id,
            contact_point_id: step.contact_point_id,
            phone: cp.as_ref().and_then(|c| c.phone.clone()),
            sender: facts.sms_sender,
            task_organisation_id: cp.as_ref().and_then(|c| c.organisation_id),
            coordinator_id: facts.coordinator_id,
            body: step.body.clone().unwrap_or_default(),
            idempotency_key: idempotency_key(step),
            valid_until: facts.deadline,
            // A person's task must be claimed within the claim window; a relay request is
            // due when its window ends.
            due_by: if step.channel.held_by_a_person() {
                plan::claim_by(self.now(), facts.deadline, &policy)
            } else {
                step.window_ends_at
                    .or(facts.deadline)
                    .unwrap_or(self.now() + policy.outreach_claim_window())
            },
        };
        // An SMS that would arrive after the appointment is not sent (it waited out quiet hours
        // or a retry too long): the step is too late, and the next one takes over.
        if !step.channel.is_human() && dispatch.valid_until.is_some_and(|d| d <= self.now()) {
            let now = self.now();
            let mut tx = self.store.begin().await?;
            if steps::transition(
                &mut tx,
                step.id,
                &[StepStatus::Sending],
                StepStatus::Skipped,
                Some(plan::reason::TOO_LATE),
                StepChanges::default(),
                now,
            )
            .await?
            {
                self.escalate(&mut tx, step.notice_id, now).await?;
            }
            tx.commit().await?;
            return Ok(());
        }
        let outcome = channel.dispatch(&dispatch).await;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        match outcome {
            Outcome::Sent { provider_ref } => {
                let window_ends_at = match step.channel {
                    c if c.held_by_a_person() => None,
                    _ => {
                        let points: Vec<ContactPoint> = cp.into_iter().collect();
                        let hours = self.opening_hours(&mut tx, &points).await?;
                        let input = PlanInput {
                            now,
                            deadline: dispatch.valid_until,
                            contact_points: &points,
                            policy: &policy,
                            postal: &self.config.postal,
                            opening_hours: &hours,
                        };
                        // The window runs from the real send, not the planned one.
                        let from = plan::timing(step.channel, points.first(), now, &input)
                            .map(|(_, end)| end);
                        Some(from.unwrap_or(now).max(now))
                    }
                };
                let changes = StepChanges {
                    window_ends_at,
                    idempotency_key: Some(dispatch.idempotency_key.clone()),
                    provider_ref,
                    sent_at: Some(now),
                    ..Default::default()
                };
                let moved = steps::transition(
                    &mut tx,
                    step.id,
                    &[StepStatus::Sending],
                    StepStatus::Sent,
                    None,
                    changes.clone(),
                    now,
                )
                .await?;
                if !moved {
                    // A delivery report overtook us: keep its status, add what we know.
                    steps::record_sent_after_report(&mut tx, step.id, &changes, now).await?;
                }
            }
            Outcome::Failed { reason } => {
                self.fail_step(&mut tx, step, &reason, now).await?;
            }
            Outcome::Retry { after, reason } => {
                let backoff = after
                    .and_then(|d| TimeDelta::from_std(d).ok())
                    .unwrap_or_else(|| backoff_with_jitter(step.attempts));
                let retry_at = now + backoff;
                if step.window_ends_at.is_some_and(|end| retry_at >= end) {
                    self.fail_step(&mut tx, step, "gave_up_retrying", now)
                        .await?;
                } else {
                    tracing::warn!(step_id = %step.id, reason = %reason, "step will be retried");
                    steps::release_for_retry(&mut tx, step.id, retry_at, &reason, now).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Fails a step and escalates at once. The coordinator's step is not failed by a report:
    /// only a person closes it (and nothing comes after it).
    pub(crate) async fn fail_step(
        &self,
        tx: &mut Tx,
        step: &Step,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if step.channel == ChannelKind::Coordinator {
            tracing::warn!(step_id = %step.id, reason, "a failure reported on the coordinator's step is ignored: only a person closes it");
            return Ok(());
        }
        let from = [
            StepStatus::Sending,
            StepStatus::Sent,
            StepStatus::Delivered,
            StepStatus::Queued,
        ];
        if steps::transition(
            tx,
            step.id,
            &from,
            StepStatus::Failed,
            Some(reason),
            StepChanges::default(),
            now,
        )
        .await?
        {
            if let Some(cp) = step.contact_point_id
                && !step.channel.is_human()
            {
                self.contact_point_failed(tx, cp, reason, now).await?;
            }
            self.escalate(tx, step.notice_id, now).await?;
        }
        Ok(())
    }

    /// A provider's report that a step's message could not be delivered: escalate at once.
    /// Repeated or late reports change nothing.
    pub async fn report_failure(&self, tx: &mut Tx, step_id: Id, reason: &str) -> Result<()> {
        let step = steps::get(tx, step_id).await?;
        self.fail_step(tx, &step, reason, self.now()).await
    }

    /// A provider's report that the message reached the phone.
    pub async fn report_delivered(&self, tx: &mut Tx, step_id: Id) -> Result<bool> {
        Ok(steps::transition(
            tx,
            step_id,
            &[StepStatus::Sent],
            StepStatus::Delivered,
            None,
            StepChanges::default(),
            self.now(),
        )
        .await?)
    }

    /// Steps whose window ended without an ack: expire them and escalate.
    pub async fn expire_windows(&self) -> Result<usize> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let ended = steps::windows_ended(&mut tx, now, BATCH).await?;
        let mut count = 0;
        for step in &ended {
            let from = [StepStatus::Sent, StepStatus::Delivered, StepStatus::Queued];
            if steps::transition(
                &mut tx,
                step.id,
                &from,
                StepStatus::Expired,
                Some("no_ack_in_window"),
                StepChanges::default(),
                now,
            )
            .await?
            {
                // A relay request whose window ended is passed on: the next step takes over.
                if step.channel.is_human()
                    && let Some(task) = tasks::for_step(&mut tx, step.id).await?
                {
                    tasks::cancel(
                        &mut tx,
                        task.id,
                        "its window ended; the next step took over",
                        now,
                    )
                    .await?;
                }
                self.escalate(&mut tx, step.notice_id, now).await?;
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Acknowledges a notice inside the caller's transaction. The first ack wins; a later one
    /// says the notice was already closed.
    #[allow(clippy::too_many_arguments)]
    pub async fn acknowledge(
        &self,
        tx: &mut Tx,
        notice_id: Id,
        method: AckMethod,
        actor: &str,
        via_step: Option<Id>,
        note: Option<&str>,
    ) -> Result<AckResult> {
        self.acknowledge_via(tx, notice_id, method, actor, Via::Step(via_step), note)
            .await
    }

    /// [`Engine::acknowledge`], with the step the ack came through named or found.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn acknowledge_via(
        &self,
        tx: &mut Tx,
        notice_id: Id,
        method: AckMethod,
        actor: &str,
        via: Via<'_>,
        note: Option<&str>,
    ) -> Result<AckResult> {
        let now = self.now();
        if !notices::close(tx, notice_id, NoticeStatus::Acknowledged, now).await? {
            // Closed already (or no such notice: `get` says so); the notice is read only then.
            return Ok(AckResult::AlreadyClosed {
                notice_id,
                status: notices::get(tx, notice_id).await?.status,
            });
        }
        let all = steps::for_notice(tx, notice_id).await?;
        let via_step = match via {
            Via::Step(id) => id,
            Via::SmsTo(known) => all
                .iter()
                .rev()
                .find(|s| {
                    s.channel == ChannelKind::Sms
                        && s.sent_at.is_some()
                        && s.contact_point_id
                            .is_some_and(|c| known.iter().any(|k| k.id == c))
                })
                .map(|s| s.id),
        };
        // The step the ack came through: the one named, else the latest that reached the patient.
        let via = match via_step {
            Some(id) => all.iter().find(|s| s.id == id),
            None => all.iter().rev().find(|s| {
                s.status.is_waiting() || (s.status == StepStatus::Expired && s.sent_at.is_some())
            }),
        };
        let contact_point_id = via.and_then(|s| s.contact_point_id);
        if let Some(step) = via {
            let from = [
                StepStatus::Sent,
                StepStatus::Delivered,
                StepStatus::Queued,
                StepStatus::Sending,
                StepStatus::Expired,
            ];
            steps::transition(
                tx,
                step.id,
                &from,
                StepStatus::Acknowledged,
                Some(method.as_str()),
                StepChanges::default(),
                now,
            )
            .await?;
        }
        acks::record(
            tx,
            acks::NewAck {
                notice_id,
                step_id: via.map(|s| s.id),
                method,
                actor,
                contact_point_id,
                note,
            },
            now,
        )
        .await?;
        steps::cancel_remaining(tx, notice_id, "acknowledged", now).await?;
        tasks::cancel_for_notice(tx, notice_id, "the patient acknowledged the notice", now).await?;
        if let Some(cp) = contact_point_id {
            contact_points::confirm(tx, cp).await?;
        }
        tracing::info!(notice_id = %notice_id, method = %method, "notice acknowledged");
        Ok(AckResult::Acknowledged { notice_id })
    }
}

/// 30 s, 1 min, 2 min, … up to an hour, each ±20 % so retries from many steps spread out.
fn backoff_with_jitter(attempts: i32) -> TimeDelta {
    let base = 30_i64
        .saturating_mul(1_i64 << attempts.clamp(0, 7))
        .min(3600);
    let jitter = (rand_fraction() * 0.4 - 0.2) * base as f64;
    TimeDelta::seconds(base) + TimeDelta::milliseconds((jitter * 1000.0) as i64)
}

fn rand_fraction() -> f64 {
    f64::from(rand::random::<u32>()) / f64::from(u32::MAX)
}
