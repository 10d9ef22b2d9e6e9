//! A simulated population: how its people can be reached, how they answer, how the clinic books
//! them, and how much the services around them can do. Read from a TOML scenario file (the
//! shipped ones are in `scheduler/scenarios/`, with the reasoning behind each number).

use serde::Deserialize;

/// The TSB/ROP outpatient population the product is built for (the default).
pub const TSB_ROP: &str = include_str!("../../scenarios/tsb_rop.toml");
/// A general outpatient clinic, for contrast.
pub const GENERAL_OUTPATIENT: &str = include_str!("../../scenarios/general_outpatient.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub clinic: Clinic,
    pub phone: Phone,
    pub post: Post,
    pub relay: Relay,
    pub outreach: Outreach,
    pub coordinator: Coordinator,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinic {
    /// Appointments booked per patient per 30 days.
    pub appointments_per_30_days: f64,
    /// How far ahead appointments are booked, in days (inclusive range).
    pub lead_days: [u32; 2],
    /// Share of appointments moved once to a later day.
    pub reschedule_share: f64,
    /// Chance of attending when the patient acknowledged a notice before the appointment…
    pub attend_if_informed: f64,
    /// …and when no notice reached them.
    pub attend_if_not_informed: f64,
    /// Share of patients with a named coordinator (koordinator).
    pub coordinator_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    /// No phone at all.
    pub none: f64,
    /// The phone is off (lost charger, no credit) for some days during the period…
    pub switched_off: f64,
    /// …for this many days (inclusive range).
    pub switched_off_days: [u32; 2],
    /// The number changed and the old one is dead: messages bounce.
    pub changed_undeliverable: f64,
    /// The number changed and the old one is in someone else's hands: delivered, never answered.
    pub changed_other_hands: f64,
    /// Chance a patient who gets the SMS answers with the code.
    pub reply: f64,
    /// Mean hours before they answer.
    pub reply_delay_hours: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    /// No address to write to.
    pub no_address: f64,
    /// Of those with an address: it is wrong or out of date, and the letter comes back.
    pub wrong_or_expired: f64,
    /// Of those with a working address: c/o a shelter or service, where mail waits until the
    /// patient comes by.
    pub care_of: f64,
    /// Chance a patient who gets the letter answers with the code.
    pub read: f64,
    /// Days until a wrongly addressed letter is back at the clinic (inclusive range).
    pub return_after_days: [u32; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    /// Share of patients who use a low-threshold service that agreed to pass messages on.
    pub linked: f64,
    /// How often they come in.
    pub visits_per_week: f64,
    /// Chance staff notice them and pass the message on when they come in.
    pub staff_pass_on: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outreach {
    /// Share of patients followed by an outreach team (FACT/ACT).
    pub linked: f64,
    /// Attempts the teams can make per working day, per 1,000 patients in the population.
    pub attempts_per_day_per_1000_patients: f64,
    /// Chance one attempt finds the person.
    pub find: f64,
    /// Attempts before a task is closed `not_found`.
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordinator {
    /// Chance the coordinator reaches the patient when a task reaches them.
    pub reach: f64,
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.check()?;
        Ok(s)
    }

    /// Every share must be a probability, every range ordered.
    fn check(&self) -> Result<(), String> {
        let shares = [
            ("clinic.reschedule_share", self.clinic.reschedule_share),
            ("clinic.attend_if_informed", self.clinic.attend_if_informed),
            (
                "clinic.attend_if_not_informed",
                self.clinic.attend_if_not_informed,
            ),
            ("clinic.coordinator_share", self.clinic.coordinator_share),
            ("phone.none", self.phone.none),
            ("phone.switched_off", self.phone.switched_off),
            (
                "phone.changed_undeliverable",
                self.phone.changed_undeliverable,
            ),
            ("phone.changed_other_hands", self.phone.changed_other_hands),
            ("phone.reply", self.phone.reply),
            ("post.no_address", self.post.no_address),
            ("post.wrong_or_expired", self.post.wrong_or_expired),
            ("post.care_of", self.post.care_of),
            ("post.read", self.post.read),
            ("relay.linked", self.relay.linked),
            ("relay.staff_pass_on", self.relay.staff_pass_on),
            ("outreach.linked", self.outreach.linked),
            ("outreach.find", self.outreach.find),
            ("coordinator.reach", self.coordinator.reach),
        ];
        for (key, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{key}: {v} is not a share between 0 and 1"));
            }
        }
        let phone_states = self.phone.none
            + self.phone.switched_off
            + self.phone.changed_undeliverable
            + self.phone.changed_other_hands;
        if phone_states > 1.0 {
            return Err(format!(
                "phone: none + switched_off + changed_undeliverable + changed_other_hands = {phone_states}, more than everyone"
            ));
        }
        for (key, [a, b]) in [
            ("clinic.lead_days", self.clinic.lead_days),
            ("phone.switched_off_days", self.phone.switched_off_days),
            ("post.return_after_days", self.post.return_after_days),
        ] {
            if a > b || b == 0 {
                return Err(format!(
                    "{key}: [{a}, {b}] must be [low, high] with high ≥ 1"
                ));
            }
        }
        if self.clinic.lead_days[0] == 0 {
            return Err("clinic.lead_days: an appointment is booked at least a day ahead".into());
        }
        if !(0.0..=20.0).contains(&self.clinic.appointments_per_30_days) {
            return Err("clinic.appointments_per_30_days: between 0 and 20".into());
        }
        if !(0.0..=14.0).contains(&self.relay.visits_per_week) {
            return Err("relay.visits_per_week: between 0 and 14".into());
        }
        if self.outreach.max_attempts == 0 {
            return Err("outreach.max_attempts: at least 1".into());
        }
        if self.phone.reply_delay_hours.is_nan() || self.phone.reply_delay_hours <= 0.0 {
            return Err("phone.reply_delay_hours: more than 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenarios_are_valid() {
        assert_eq!(Scenario::parse(TSB_ROP).unwrap().name, "tsb_rop");
        assert_eq!(
            Scenario::parse(GENERAL_OUTPATIENT).unwrap().name,
            "general_outpatient"
        );
    }

    #[test]
    fn a_share_above_one_names_its_key() {
        let bad = TSB_ROP.replace("reply = 0.55", "reply = 1.5");
        assert!(
            Scenario::parse(&bad)
                .unwrap_err()
                .starts_with("phone.reply")
        );
    }
}
