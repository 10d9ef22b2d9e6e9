//! Letters, from the step to the letterbox: the printable letter of a step (its stored message,
//! the address, the organisation's neutral sender line, the batch date), print batches frozen at
//! the cut-off in postal-code order, posting (which sets each letter's expected delivery from
//! Posten's calendar and so its acknowledgement window) and returned letters (the address is
//! marked failed, the coordinator is told, the notice escalates at once).

use crate::calendar::{add_working_days, oslo_date, oslo_instant};
use crate::engine::{Engine, Error, Result};
use chrono::{NaiveDate, NaiveTime};
use kontaktvei_channels::letter::{LetterContent, LetterMessage, LetterRenderer, reference_for};
use kontaktvei_store::print::{self, BatchStatus, Letter, LetterStatus, PrintBatch};
use kontaktvei_store::steps::{self, ChannelKind, Step, StepChanges, StepStatus};
use kontaktvei_store::{Id, Tx, contact_points, notices};
use std::collections::BTreeMap;

fn not_found(what: &'static str) -> Error {
    Error::Store(kontaktvei_store::Error::NotFound(what))
}

fn render_error(e: impl std::fmt::Display) -> Error {
    Error::Store(kontaktvei_store::Error::Conflict(format!(
        "the letter cannot be rendered: {e}"
    )))
}

impl Engine {
    /// The printable letter of a letter step, dated `date`.
    pub async fn letter_for_step(
        &self,
        tx: &mut Tx,
        step: &Step,
        date: NaiveDate,
    ) -> Result<LetterContent> {
        let message: LetterMessage =
            serde_json::from_str(step.body.as_deref().unwrap_or_default())?;
        let cp_id = step.contact_point_id.ok_or(not_found("address"))?;
        let address = contact_points::get(tx, cp_id)
            .await?
            .address
            .ok_or(not_found("address"))?;
        let policy = self.policy_of(tx, step.notice_id).await?;
        Ok(message.to_content(
            &address,
            &policy.letter_sender_line,
            date,
            &reference_for(step.id),
        ))
    }

    /// The printable letter of a notice: its first letter step that was not skipped.
    pub async fn letter_for_notice(
        &self,
        tx: &mut Tx,
        notice_id: Id,
        date: NaiveDate,
    ) -> Result<LetterContent> {
        notices::get(tx, notice_id).await?;
        let step = steps::for_notice(tx, notice_id)
            .await?
            .into_iter()
            .find(|s| {
                s.channel == ChannelKind::Letter
                    && s.status != StepStatus::Skipped
                    && s.body.is_some()
            })
            .ok_or(not_found("letter for this notice"))?;
        self.letter_for_step(tx, &step, date).await
    }

    /// Freezes the letters due by now into one print batch per organisation (of `only`, if
    /// given), sorted by postal code. A letter whose address is no longer usable fails and
    /// escalates instead. An organisation with nothing due gets no batch.
    pub async fn make_print_batches(
        &self,
        only: Option<Id>,
        created_by: &str,
    ) -> Result<Vec<PrintBatch>> {
        self.batch_letters(only, created_by, self.now()).await
    }

    /// "Print now": every letter waiting for a print run, due or not, in a batch at once.
    pub async fn print_now(
        &self,
        organisation_id: Id,
        created_by: &str,
    ) -> Result<Vec<PrintBatch>> {
        self.batch_letters(
            Some(organisation_id),
            created_by,
            self.now() + chrono::TimeDelta::days(3660),
        )
        .await
    }

    async fn batch_letters(
        &self,
        only: Option<Id>,
        created_by: &str,
        due_by: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PrintBatch>> {
        let now = self.now();
        let date = oslo_date(now);
        let mut tx = self.store().begin().await?;
        let mut by_org: BTreeMap<Id, Vec<(Step, LetterContent)>> = BTreeMap::new();
        for step in steps::due_letters(&mut tx, due_by).await? {
            let notice = notices::get(&mut tx, step.notice_id).await?;
            if only.is_some_and(|o| o != notice.organisation_id) {
                continue;
            }
            let live = match step.contact_point_id {
                Some(cp) => contact_points::get(&mut tx, cp).await?.is_live(now),
                None => false,
            };
            if !live {
                self.fail_step(&mut tx, &step, "address_no_longer_valid", now)
                    .await?;
                continue;
            }
            let content = self.letter_for_step(&mut tx, &step, date).await?;
            by_org
                .entry(notice.organisation_id)
                .or_default()
                .push((step, content));
        }
        if by_org.is_empty() {
            tx.commit().await?; // the failures reported above
            return Ok(Vec::new());
        }
        let renderer = LetterRenderer::new().map_err(render_error)?;
        let mut made = Vec::new();
        let mut chunks = Vec::new();
        for (organisation_id, mut letters) in by_org {
            letters.sort_by(|a, b| {
                a.1.postal_code
                    .cmp(&b.1.postal_code)
                    .then(a.0.id.cmp(&b.0.id))
            });
            // One PDF holds a whole batch in memory while it is made (10,000 letters: 750 MB),
            // so a big day becomes several batches of at most the policy's size, each its own PDF.
            let max = self
                .organisation_policy(&mut tx, organisation_id)
                .await?
                .print_batch_max_letters
                .max(1) as usize;
            while letters.len() > max {
                let rest = letters.split_off(max);
                chunks.push((organisation_id, letters));
                letters = rest;
            }
            chunks.push((organisation_id, letters));
        }
        for (organisation_id, letters) in chunks {
            let pages = renderer
                .page_counts(letters.iter().map(|(_, c)| c))
                .map_err(render_error)?;
            let batch = PrintBatch {
                id: Id::new(now),
                organisation_id,
                created_at: now,
                letters: letters.len() as i32,
                pages: pages.iter().map(|p| (p + p % 2) as i32).sum(),
                status: BatchStatus::Ready,
                printed_at: None,
                posted_on: None,
                created_by: created_by.to_owned(),
            };
            print::create_batch(&mut tx, &batch).await?;
            for (position, ((step, content), pages)) in letters.iter().zip(&pages).enumerate() {
                let letter = Letter {
                    id: Id::new(now),
                    step_id: step.id,
                    notice_id: step.notice_id,
                    batch_id: batch.id,
                    reference: content.reference.clone(),
                    postal_code: content.postal_code.clone(),
                    position: position as i32,
                    pages: *pages as i32,
                    status: LetterStatus::Batched,
                    expected_from: None,
                    expected_to: None,
                    returned_at: None,
                    return_reason: None,
                    created_at: now,
                };
                print::add_letter(&mut tx, &letter).await?;
                let detail = format!("in print batch {}", batch.id);
                steps::transition(
                    &mut tx,
                    step.id,
                    &[StepStatus::Queued],
                    StepStatus::Sending,
                    Some(&detail),
                    StepChanges::default(),
                    now,
                )
                .await?;
            }
            tracing::info!(batch_id = %batch.id, letters = batch.letters, "print batch made");
            made.push(batch);
        }
        tx.commit().await?;
        Ok(made)
    }

    /// The batch as one PDF (each letter from an odd page), rendered again from what was frozen.
    /// Nothing is stored; after the policy's retention period it is no longer given out.
    pub async fn batch_pdf(&self, tx: &mut Tx, batch_id: Id) -> Result<Vec<u8>> {
        let batch = print::batch(tx, batch_id).await?;
        self.within_retention(tx, &batch).await?;
        let date = oslo_date(batch.created_at);
        let mut contents = Vec::new();
        for letter in print::letters_in(tx, batch_id).await? {
            let step = steps::get(tx, letter.step_id).await?;
            contents.push(self.letter_for_step(tx, &step, date).await?);
        }
        let (pdf, _) = kontaktvei_channels::letter::render_many(&contents).map_err(render_error)?;
        Ok(pdf)
    }

    async fn within_retention(&self, tx: &mut Tx, batch: &PrintBatch) -> Result<()> {
        let policy = self.organisation_policy(tx, batch.organisation_id).await?;
        let days = i64::from(policy.print_retention_days);
        if self.now() - batch.created_at > chrono::TimeDelta::days(days) {
            return Err(Error::Store(kontaktvei_store::Error::Conflict(format!(
                "this batch is older than {days} days, so its letters are no longer given out (they hold names and addresses)"
            ))));
        }
        Ok(())
    }

    /// One letter of a batch again (a reprint), as it was printed.
    pub async fn letter_pdf(&self, tx: &mut Tx, reference: &str) -> Result<(Letter, Vec<u8>)> {
        let letter = print::letter_by_reference(tx, &reference.trim().to_uppercase())
            .await?
            .ok_or(not_found("letter"))?;
        let batch = print::batch(tx, letter.batch_id).await?;
        self.within_retention(tx, &batch).await?;
        let step = steps::get(tx, letter.step_id).await?;
        let content = self
            .letter_for_step(tx, &step, oslo_date(batch.created_at))
            .await?;
        let pdf = kontaktvei_channels::letter::render(&content).map_err(render_error)?;
        Ok((letter, pdf))
    }

    pub async fn mark_batch_printed(&self, tx: &mut Tx, batch_id: Id) -> Result<bool> {
        print::batch(tx, batch_id).await?;
        Ok(print::set_batch_status(tx, batch_id, BatchStatus::Printed, None, self.now()).await?)
    }

    /// The batch went in the post on `posted_on`: each letter is now on its way, expected in
    /// Posten's D+2..D+5 window for its postal code; its step waits for an acknowledgement until
    /// the policy's working days after the latest expected day.
    pub async fn mark_batch_posted(
        &self,
        tx: &mut Tx,
        batch_id: Id,
        posted_on: NaiveDate,
    ) -> Result<bool> {
        let now = self.now();
        print::batch(tx, batch_id).await?;
        if !print::set_batch_status(tx, batch_id, BatchStatus::Posted, Some(posted_on), now).await?
        {
            return Ok(false);
        }
        for letter in print::letters_in(tx, batch_id).await? {
            if letter.status != LetterStatus::Batched {
                continue;
            }
            let (from, to) = self
                .postal()
                .delivery_window(&letter.postal_code, posted_on);
            let policy = self.policy_of(tx, letter.notice_id).await?;
            let end_of_day = NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default();
            let mut window = oslo_instant(
                add_working_days(to, policy.letter_ack_working_days),
                end_of_day,
            );
            // As every window: an hour before the appointment a person takes over.
            if let Some(deadline) = notices::get(tx, letter.notice_id).await?.deadline {
                window = window.min((deadline - crate::plan::PERSON_MARGIN).max(now));
            }
            print::set_letter_posted(tx, letter.id, from, to).await?;
            let changes = StepChanges {
                window_ends_at: Some(window),
                sent_at: Some(now),
                ..Default::default()
            };
            let detail = format!("posted {posted_on}; expected {from}..{to}");
            steps::transition(
                tx,
                letter.step_id,
                &[StepStatus::Sending],
                StepStatus::Sent,
                Some(&detail),
                changes,
                now,
            )
            .await?;
        }
        Ok(true)
    }

    /// A letter came back. Its address is marked failed, the coordinator gets a task, and the
    /// notice escalates at once. Recording it twice changes nothing.
    pub async fn letter_returned(
        &self,
        tx: &mut Tx,
        reference: &str,
        reason: &str,
    ) -> Result<Letter> {
        let now = self.now();
        let reference = reference.trim().to_uppercase();
        let letter = print::letter_by_reference(tx, &reference)
            .await?
            .ok_or(not_found("letter"))?;
        if !print::set_letter_returned(tx, letter.id, reason, now).await? {
            return Ok(letter);
        }
        let step = steps::get(tx, letter.step_id).await?;
        let notice = notices::get(tx, letter.notice_id).await?;
        self.fail_step(tx, &step, "returned_letter", now).await?;
        if let Some(cp) = step.contact_point_id {
            contact_points::mark_failed(tx, cp, &format!("returned letter: {reason}")).await?;
        }
        self.coordinator_task(
            tx,
            &notice,
            format!("a letter came back ({reason}): the address no longer works"),
            kontaktvei_store::notifications::NotificationKind::LetterReturned,
        )
        .await?;
        tracing::info!(letter_id = %letter.id, "returned letter recorded");
        Ok(letter)
    }
}
