//! An organisation's contact policy: which channels, in which order, how long each step waits
//! for an acknowledgement, quiet hours and the print cut-off. A notice snapshots the policy it
//! was planned with, so editing the policy never changes a notice in flight.
//!
//! The defaults, and why:
//! - SMS: 24 h to answer — prepaid phones are often off for a day; longer and the letter that
//!   follows may no longer arrive in time.
//! - Letter: until 2 working days after the expected delivery day — time to read it and answer.
//! - Relay: 72 h — most drop-in users come by at least twice a week.
//! - Outreach: 24 h for someone on the team to claim the task before it goes to the team lead
//!   and the coordinator.
//! - Quiet hours 21:00–08:00 and the print cut-off 14:00, Oslo time.

use crate::calendar::QuietHours;
use chrono::{NaiveTime, TimeDelta};
use kontaktvei_channels::ChannelKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The chain, in order. The last step is always human: if the plan for a patient would end
    /// without a relay or outreach step, the coordinator gets a task instead.
    pub chain: Vec<ChannelKind>,
    pub sms_ack_hours: i64,
    pub letter_ack_working_days: u32,
    pub relay_ack_hours: i64,
    pub outreach_claim_hours: i64,
    #[serde(with = "hhmm")]
    pub quiet_from: NaiveTime,
    #[serde(with = "hhmm")]
    pub quiet_until: NaiveTime,
    #[serde(with = "hhmm")]
    pub print_cutoff: NaiveTime,
    /// Whether an SMS reply without the code, from a number that has been confirmed before,
    /// counts as an acknowledgement. Off by default: a shared or passed-on phone answers too.
    #[serde(default)]
    pub replies_from_confirmed_number_count: bool,
    /// The small return line above the address window. Neutral by default: a letter from
    /// "Rusklinikken" in a shared mailbox at a shelter is a privacy breach.
    #[serde(default = "neutral_sender_line")]
    pub letter_sender_line: String,
    /// Who to call and when, printed in every letter, e.g. "Ring oss på 22 00 00 00, hverdager
    /// 08.00–15.30." Empty: left out.
    #[serde(default)]
    pub letter_contact_text: String,
    /// The most letters in one print batch (one PDF); a bigger day becomes several batches.
    /// Making a PDF holds it in memory: 1,000 letters take about 100 MB.
    #[serde(default = "default_batch_letters")]
    pub print_batch_max_letters: u32,
    /// How many days a print batch's letters can be downloaded (they hold names and addresses).
    #[serde(default = "default_retention")]
    pub print_retention_days: u32,
    /// Plan only steps that can reach the patient before the appointment. `false` runs the
    /// chain blindly, as simpler services do — only the reach simulation's baselines; the API
    /// refuses it.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub latency_aware: bool,
    /// Words this organisation's texts must not show where others may see them (SMS, relay
    /// messages, the letter's title), besides the shipped list ("rus", "psykiatri", …): e.g. the
    /// clinic's full name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revealing_words: Vec<String>,
    /// The organisation may name itself or its speciality in those texts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_revealing: bool,
    /// The longest SMS an own text may make, in segments.
    #[serde(default = "default_sms_segments")]
    pub max_sms_segments: u32,
    /// End a chain that has no person in it with the coordinator. `false` lets a notice end in
    /// silence — only the reach simulation's baselines; the API refuses it.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub person_last: bool,
}

fn default_sms_segments() -> u32 {
    4
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn default_retention() -> u32 {
    30
}

fn default_batch_letters() -> u32 {
    1000
}

fn neutral_sender_line() -> String {
    "Avsender: helse- og omsorgstjenesten".to_owned()
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            chain: ChannelKind::DEFAULT_CHAIN.to_vec(),
            sms_ack_hours: 24,
            letter_ack_working_days: 2,
            relay_ack_hours: 72,
            outreach_claim_hours: 24,
            quiet_from: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            quiet_until: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            print_cutoff: NaiveTime::from_hms_opt(14, 0, 0).unwrap_or_default(),
            replies_from_confirmed_number_count: false,
            letter_sender_line: neutral_sender_line(),
            print_retention_days: default_retention(),
            letter_contact_text: String::new(),
            print_batch_max_letters: default_batch_letters(),
            latency_aware: true,
            person_last: true,
            revealing_words: Vec::new(),
            allow_revealing: false,
            max_sms_segments: default_sms_segments(),
        }
    }
}

impl Policy {
    /// A policy as stored (JSON), or the defaults when none is stored.
    pub fn from_stored(stored: Option<serde_json::Value>) -> Result<Policy, serde_json::Error> {
        stored.map_or_else(|| Ok(Policy::default()), serde_json::from_value)
    }

    /// The rules a stored policy must keep; each broken one as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.chain.is_empty() {
            out.push((
                "chain",
                "name at least one channel: sms, letter, relay, outreach".to_owned(),
            ));
        }
        let mut seen = Vec::new();
        for c in &self.chain {
            if seen.contains(c) {
                out.push(("chain", format!("{c} appears twice; each channel once")));
            }
            if *c == ChannelKind::Coordinator {
                out.push(("chain", "the coordinator is added by the engine when a chain has no person in it; leave it out".to_owned()));
            }
            seen.push(*c);
        }
        for (field, hours) in [
            ("sms_ack_hours", self.sms_ack_hours),
            ("relay_ack_hours", self.relay_ack_hours),
            ("outreach_claim_hours", self.outreach_claim_hours),
        ] {
            if !(1..=720).contains(&hours) {
                out.push((field, "must be between 1 and 720 hours".to_owned()));
            }
        }
        if !(1..=5000).contains(&self.print_batch_max_letters) {
            out.push((
                "print_batch_max_letters",
                "must be between 1 and 5000".to_owned(),
            ));
        }
        if !(1..=365).contains(&self.print_retention_days) {
            out.push((
                "print_retention_days",
                "must be between 1 and 365 days".to_owned(),
            ));
        }
        if !(1..=10).contains(&self.max_sms_segments) {
            out.push((
                "max_sms_segments",
                "must be between 1 and 10 segments".to_owned(),
            ));
        }
        if self
            .revealing_words
            .iter()
            .any(|w| w.trim().is_empty() || w.chars().count() > 100)
        {
            out.push((
                "revealing_words",
                "each word or phrase needs 1–100 characters".to_owned(),
            ));
        }
        if !self.latency_aware {
            out.push((
                "latency_aware",
                "a chain blind to the appointment time exists only to compare against in the reach simulation; leave it out".to_owned(),
            ));
        }
        if !self.person_last {
            out.push((
                "person_last",
                "a notice must never end in silence; only the reach simulation turns this off, to compare; leave it out".to_owned(),
            ));
        }
        if !(1..=20).contains(&self.letter_ack_working_days) {
            out.push((
                "letter_ack_working_days",
                "must be between 1 and 20 working days".to_owned(),
            ));
        }
        out
    }

    /// What an organisation's own text must keep to.
    pub fn template_rules(&self) -> kontaktvei_templates::Rules {
        let mut rules = kontaktvei_templates::Rules {
            max_sms_segments: self.max_sms_segments as usize,
            allow_revealing: self.allow_revealing,
            ..Default::default()
        };
        rules
            .revealing_words
            .extend(self.revealing_words.iter().map(|w| w.trim().to_owned()));
        rules
    }

    pub fn quiet_hours(&self) -> QuietHours {
        QuietHours {
            start: self.quiet_from,
            end: self.quiet_until,
        }
    }

    pub fn sms_window(&self) -> TimeDelta {
        TimeDelta::hours(self.sms_ack_hours)
    }

    pub fn relay_window(&self) -> TimeDelta {
        TimeDelta::hours(self.relay_ack_hours)
    }

    pub fn outreach_claim_window(&self) -> TimeDelta {
        TimeDelta::hours(self.outreach_claim_hours)
    }
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .map_err(|_| serde::de::Error::custom("write times as HH:MM"))
    }
}
