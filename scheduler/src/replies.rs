//! What comes back from phones and providers: delivery reports move a step forward (or fail it
//! and escalate at once), and SMS from patients acknowledge a notice with its code, reach staff
//! as a reply, or ask us to stop. Acknowledging from any phone is allowed: the code is what
//! counts, so a patient whose phone changed can still answer from a borrowed one.
//!
//! Repeated or late reports are harmless: state only moves forward.

use crate::engine::{AckResult, Engine, Result, Via};
use kontaktvei_channels::sms::reports::{DeliveryReport, InboundSms, ReportStatus};
use kontaktvei_channels::sms::{Sent, SmsMessage};
use kontaktvei_store::acks::{self, AckMethod};
use kontaktvei_store::contact_points::{self, ContactStatus};
use kontaktvei_store::inbound::{self, InboundKind, InboundMessage};
use kontaktvei_store::notices::{self, Notice};
use kontaktvei_store::steps::{self, StepChanges, StepStatus};
use kontaktvei_store::{Id, Tx, phone};

/// What a delivery report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Its reference names no step (a stale or foreign report); nothing changed.
    UnknownReference,
    /// Recorded on the step (and the step moved on, or failed and escalated).
    Recorded { step_id: Id, notice_id: Id },
}

/// What an incoming SMS did, and what to answer the phone (if anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    pub message_id: Id,
    pub kind: InboundKind,
    pub notice_id: Option<Id>,
    pub reply: Option<String>,
}

const THANKS: &str = "Takk! Vi har registrert at du har fått beskjeden.";
const ALREADY: &str = "Takk, beskjeden er allerede bekreftet.";
const STOPPED: &str = "Vi sender ikke flere SMS til dette nummeret før vi har snakket med deg.";
const STOP_WORDS: &[&str] = &["STOP", "STOPP", "STANS", "AVSLUTT", "AVMELD"];

/// Failed code guesses allowed per phone in the rate-limit window.
const MAX_GUESSES: i64 = 10;

/// A phone number as a provider gives it (`4791234567`, `+4791234567`, `004791234567`) in E.164,
/// or as given when it does not parse.
fn normalise_sender(raw: &str) -> String {
    let raw = raw.trim();
    let candidate = if let Some(rest) = raw.strip_prefix("00") {
        format!("+{rest}")
    } else if !raw.starts_with('+') && raw.len() > 8 && raw.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{raw}")
    } else {
        raw.to_owned()
    };
    phone::normalise(&candidate, phone::Use::Call).unwrap_or_else(|_| raw.to_owned())
}

/// The strings in a reply that could be a code: six characters of the code alphabet, alone or
/// split in two by a space or dash ("K7M X3Q"), whatever the case and the words around them.
pub fn code_candidates(text: &str) -> Vec<String> {
    let upper = text.to_uppercase();
    let tokens: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    let is_code = |t: &str| {
        t.len() == acks::CODE_LENGTH && t.bytes().all(|b| acks::CODE_ALPHABET.contains(&b))
    };
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if is_code(t) {
            out.push((*t).to_owned());
        }
        if let Some(next) = tokens.get(i + 1) {
            let joined = format!("{t}{next}");
            if is_code(&joined) {
                out.push(joined);
            }
        }
    }
    out.dedup();
    out.truncate(5);
    out
}

impl Engine {
    /// Applies a provider's delivery report in the caller's transaction.
    pub async fn delivery_report(
        &self,
        tx: &mut Tx,
        provider: &str,
        report: &DeliveryReport,
    ) -> Result<ReportOutcome> {
        let Some(step) = steps::by_idempotency_key(tx, &report.reference).await? else {
            tracing::warn!(provider, "delivery report for an unknown reference ignored");
            return Ok(ReportOutcome::UnknownReference);
        };
        let now = self.now();
        if let Some(sms) = self.sms() {
            sms.note_report(provider, &report.reference);
        }
        let detail = format!("{provider}: {}", report.detail);
        match &report.status {
            ReportStatus::Delivered => {
                // A report may overtake our own record of the send (the step still `sending`).
                let moved = steps::transition(
                    tx,
                    step.id,
                    &[StepStatus::Sending, StepStatus::Sent],
                    StepStatus::Delivered,
                    Some(&detail),
                    StepChanges::default(),
                    now,
                )
                .await?;
                if !moved {
                    steps::record_event(tx, step.id, step.status, Some(&detail), now).await?;
                }
            }
            ReportStatus::Failed(reason) => {
                steps::record_event(tx, step.id, step.status, Some(&detail), now).await?;
                self.fail_step(tx, &step, reason, now).await?;
            }
            ReportStatus::Accepted | ReportStatus::Buffered => {
                steps::record_event(tx, step.id, step.status, Some(&detail), now).await?;
            }
        }
        Ok(ReportOutcome::Recorded {
            step_id: step.id,
            notice_id: step.notice_id,
        })
    }

    /// Handles an SMS from a phone in the caller's transaction: acknowledges with a code,
    /// pauses the number on STOP, or keeps the text as a reply for staff.
    pub async fn inbound_sms(
        &self,
        tx: &mut Tx,
        provider: &str,
        sms: &InboundSms,
    ) -> Result<InboundOutcome> {
        let now = self.now();
        let from = normalise_sender(&sms.from);
        let text = sms.text.trim();
        let mut message = InboundMessage {
            id: Id::new(now),
            provider: provider.to_owned(),
            from_phone: from.clone(),
            to_phone: sms.to.clone(),
            body: text.to_owned(),
            kind: InboundKind::Unknown,
            notice_id: None,
            patient_id: None,
            received_at: now,
        };
        let known = contact_points::by_phone(tx, &from).await?;

        let mut reply = None;
        let source = format!("sms:{from}");
        let candidates = code_candidates(text);
        let mut matched = None;
        for code in &candidates {
            let hash = acks::hash(code);
            let (by_source, _) = acks::recent_failures(tx, &source, &hash, window(), now).await?;
            if by_source >= MAX_GUESSES {
                tracing::warn!(provider, "too many wrong codes from one phone; ignored");
                break;
            }
            if let Some(notice) = notices::by_code_hash(tx, &hash).await? {
                acks::record_attempt(tx, &source, Some(&hash), true, now).await?;
                matched = Some(notice);
                break;
            }
            acks::record_attempt(tx, &source, Some(&hash), false, now).await?;
        }

        if let Some(notice) = matched {
            message.kind = InboundKind::Ack;
            message.notice_id = Some(notice.id);
            message.patient_id = Some(notice.patient_id);
            let actor = format!("sms:{}", message.id);
            let via = Via::SmsTo(&known);
            reply = Some(
                match self
                    .acknowledge_via(tx, notice.id, AckMethod::SmsReply, &actor, via, None)
                    .await?
                {
                    AckResult::Acknowledged { .. } => THANKS,
                    AckResult::AlreadyClosed { .. } => ALREADY,
                },
            );
        } else if STOP_WORDS.contains(&text.to_uppercase().trim_end_matches(['.', '!']).trim()) {
            message.kind = InboundKind::Stop;
            let newest_open = self.newest_open_notice(tx, &known).await?;
            message.notice_id = newest_open.as_ref().map(|n| n.id);
            message.patient_id = known.first().map(|c| c.patient_id);
            for cp in &known {
                contact_points::pause(tx, cp.id, "the patient answered STOP").await?;
                if let Some(n) = newest_open
                    .as_ref()
                    .filter(|n| n.patient_id == cp.patient_id)
                {
                    self.coordinator_task(
                        tx,
                        n,
                        "the patient answered STOP to an SMS: SMS to this number is paused until someone has talked with them".into(),
                        kontaktvei_store::notifications::NotificationKind::ContactPointFailed,
                    )
                    .await?;
                }
            }
            reply = Some(STOPPED);
        } else if let Some(notice) = self.newest_open_notice(tx, &known).await? {
            message.kind = InboundKind::Reply;
            message.notice_id = Some(notice.id);
            message.patient_id = Some(notice.patient_id);
            let policy = self.policy_of(tx, notice.id).await?;
            let confirmed = known
                .iter()
                .any(|c| c.patient_id == notice.patient_id && c.status == ContactStatus::Confirmed);
            if policy.replies_from_confirmed_number_count && confirmed {
                let actor = format!("sms:{}", message.id);
                self.acknowledge_via(
                    tx,
                    notice.id,
                    AckMethod::SmsReply,
                    &actor,
                    Via::SmsTo(&known),
                    Some("a reply without the code, from a confirmed number"),
                )
                .await?;
                message.kind = InboundKind::Ack;
                reply = Some(THANKS);
            }
        }
        inbound::record(tx, &message).await?;
        tracing::info!(provider, message_id = %message.id, kind = %message.kind, "SMS received");
        Ok(InboundOutcome {
            message_id: message.id,
            kind: message.kind,
            notice_id: message.notice_id,
            reply: reply.map(str::to_owned),
        })
    }

    /// Sends a confirmation reply through the SMS providers (for providers that do not take the
    /// answer to their callback as the reply). Best effort: a lost "thank you" harms no one.
    pub async fn send_reply(&self, notice_id: Id, to: &str, text: &str, reference: &str) {
        let Some(sms) = self.sms() else { return };
        let message = SmsMessage {
            to: normalise_sender(to),
            text: text.to_owned(),
            sender: None,
            reference: reference.to_owned(),
            valid_until: Some(self.now() + chrono::TimeDelta::hours(24)),
            now: self.now(),
            notice_id,
            step_id: None,
        };
        if let (_, Sent::Rejected { reason } | Sent::Unavailable { reason, .. }) =
            sms.send(&message).await
        {
            tracing::warn!(notice_id = %notice_id, reason = %reason, "confirmation reply not sent");
        }
    }

    async fn newest_open_notice(
        &self,
        tx: &mut Tx,
        known: &[contact_points::ContactPoint],
    ) -> Result<Option<Notice>> {
        let mut newest: Option<Notice> = None;
        for cp in known {
            for n in notices::for_patient(tx, cp.patient_id).await? {
                if n.status.is_open() && newest.as_ref().is_none_or(|m| n.id > m.id) {
                    newest = Some(n);
                }
            }
        }
        Ok(newest)
    }
}

/// The window in which wrong codes from one phone are counted.
pub fn window() -> chrono::TimeDelta {
    chrono::TimeDelta::minutes(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_however_the_patient_writes_them() {
        assert_eq!(code_candidates("K7MX3Q"), vec!["K7MX3Q"]);
        assert_eq!(code_candidates("ok k7mx3q takk"), vec!["K7MX3Q"]);
        assert_eq!(code_candidates("k7m x3q"), vec!["K7MX3Q"]);
        assert_eq!(code_candidates("Kode: K7M-X3Q!"), vec!["K7MX3Q"]);
        assert!(
            code_candidates("Hei, kommer ikke i dag").is_empty(),
            "words with look-alikes are not codes"
        );
        assert!(code_candidates("").is_empty());
    }

    #[test]
    fn sender_numbers_become_e164() {
        assert_eq!(normalise_sender("4791234567"), "+4791234567");
        assert_eq!(normalise_sender("+4791234567"), "+4791234567");
        assert_eq!(normalise_sender("004791234567"), "+4791234567");
        assert_eq!(normalise_sender("91234567"), "+4791234567");
        assert_eq!(normalise_sender("2270"), "2270");
    }
}
