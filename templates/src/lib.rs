//! Message templates for kontaktvei: one text per notice kind × channel × language, and the
//! code that loads, validates and renders them.
//!
//! - [`catalog`]: the [`Catalog`] of templates (shipped files embedded in the binary, plus an
//!   optional directory that replaces or adds files), organisations' [`Overrides`], rendering
//!   with fallback to bokmål, previews.
//! - [`variables`]: template keys ([`TemplateKey`], [`Channel`]) and the one table of variables
//!   each template is given, with the sample data previews use.
//! - [`mod@validate`]: checks a template before it is saved or loaded ([`validate()`], [`Rules`]).
//! - [`when`]: appointment times worded per language ([`format_when`]); [`lang`]: [`Lang`] tags;
//!   [`sms`]: SMS segment counting.
//!
//! The functions in this file ([`render`], [`letter`], [`when_nb`], [`next_of_kin`]) are the
//! original plain bokmål texts, kept until callers move to the [`Catalog`]; the shipped `nb`
//! templates say the same. The texts are neutral on purpose: they never name the clinic, its
//! speciality or a diagnosis — an SMS can be read by whoever holds the phone, a relay message is
//! said out loud at a drop-in centre.
//!
//! This crate sits at the bottom of the dependency arrows and depends on none of ours.

pub mod catalog;
mod engine;
pub mod lang;
mod scan;
pub mod sms;
pub mod validate;
pub mod variables;
pub mod when;

pub use catalog::{
    Catalog, LoadError, Override, Overrides, RenderError, Rendered, StaffEmail, TemplateVersion,
};
pub use lang::Lang;
pub use validate::{Problem, ProblemKind, Report, Rules, validate};
pub use variables::{Channel, TemplateKey};
pub use when::format_when;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Europe::Oslo;

/// Which message: the notice kinds of the store, spelled the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Booking,
    Reschedule,
    Cancellation,
    Reminder,
    NoShowFollowUp,
    Free,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Booking,
        Kind::Reschedule,
        Kind::Cancellation,
        Kind::Reminder,
        Kind::NoShowFollowUp,
        Kind::Free,
    ];

    /// The store's spelling, also the first part of a template's file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Booking => "booking",
            Kind::Reschedule => "reschedule",
            Kind::Cancellation => "cancellation",
            Kind::Reminder => "reminder",
            Kind::NoShowFollowUp => "no_show_follow_up",
            Kind::Free => "free",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "booking" => Kind::Booking,
            "reschedule" => Kind::Reschedule,
            "cancellation" => Kind::Cancellation,
            "reminder" => Kind::Reminder,
            "no_show_follow_up" => Kind::NoShowFollowUp,
            "free" => Kind::Free,
            _ => return None,
        })
    }
}

/// Which channel the text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Sms,
    /// Said by staff at a low-threshold service, or by an outreach worker.
    InPerson,
}

/// What a message may say. `code` and `link` let the patient acknowledge without BankID.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub kind: Kind,
    pub starts_at: Option<DateTime<Utc>>,
    pub place: Option<&'a str>,
    pub code: &'a str,
    pub link: &'a str,
    /// Who the staff member should give the message to (in-person texts only).
    pub patient_name: Option<&'a str>,
    pub patient_birth_year: Option<i32>,
}

const WEEKDAYS: [&str; 7] = [
    "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag",
];
const MONTHS: [&str; 12] = [
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
];

/// Norwegian date and time in Oslo: "tirsdag 3. mars kl. 10.30".
pub fn when_nb(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Oslo);
    let weekday = WEEKDAYS[local.weekday().num_days_from_monday() as usize];
    let month = MONTHS[local.month0() as usize];
    format!(
        "{weekday} {}. {month} kl. {:02}.{:02}",
        local.day(),
        local.hour(),
        local.minute()
    )
}

fn appointment(ctx: &Context<'_>) -> String {
    match (ctx.starts_at, ctx.place) {
        (Some(t), Some(p)) => format!("{}, {p}", when_nb(t)),
        (Some(t), None) => when_nb(t),
        _ => "en avtale".to_owned(),
    }
}

/// A letter's heading and body (paragraphs separated by blank lines, "- " list items). The code
/// and the link are printed separately, large and as a QR code, by the letter renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterText {
    pub title: String,
    pub body: String,
}

pub fn letter(ctx: &Context<'_>) -> LetterText {
    let what = appointment(ctx);
    let (title, news) = match ctx.kind {
        Kind::Booking => ("Du har fått time", format!("Du har fått time {what}.")),
        Kind::Reschedule => ("Timen din er flyttet", format!("Timen din er flyttet til {what}.")),
        Kind::Cancellation => ("Timen din er avlyst", format!("Timen din {what} er avlyst. Du får beskjed om ny time.")),
        Kind::Reminder => ("Påminnelse om time", format!("Vi minner om timen din {what}.")),
        Kind::NoShowFollowUp => (
            "Vi savnet deg",
            "Vi savnet deg på timen din. Ta kontakt når det passer, så finner vi en ny time sammen. Du kan også komme innom.".to_owned(),
        ),
        Kind::Free => ("Beskjed til deg", "Vi har en beskjed til deg. Ta kontakt med oss.".to_owned()),
    };
    let body = format!(
        "Hei!\n\n{news}\n\nVi vil gjerne vite at du har fått dette brevet. Du trenger ikke BankID. Gjør ett av dette:\n         - svar med koden nedenfor på en SMS fra oss,\n         - si koden i resepsjonen eller når du ringer oss,\n         - skann QR-koden og trykk på knappen."
    );
    LetterText {
        title: title.to_owned(),
        body,
    }
}

/// The text for one channel; plain bokmål.
pub fn render(medium: Medium, ctx: &Context<'_>) -> String {
    let what = appointment(ctx);
    let news = match ctx.kind {
        Kind::Booking => format!("Du har fått time {what}."),
        Kind::Reschedule => format!("Timen din er flyttet til {what}."),
        Kind::Cancellation => format!("Timen din {what} er avlyst. Du får beskjed om ny time."),
        Kind::Reminder => format!("Påminnelse: Du har time {what}."),
        Kind::NoShowFollowUp => {
            "Vi savnet deg på timen din. Ta kontakt når det passer, så finner vi en ny time sammen. Du kan også komme innom.".to_owned()
        }
        Kind::Free => "Vi har en beskjed til deg. Ta kontakt med oss.".to_owned(),
    };
    let code = ctx.code;
    match medium {
        Medium::Sms => format!(
            "{news} Svar {code} på denne meldingen så vet vi at du har fått beskjeden, eller åpne {}",
            ctx.link
        ),
        Medium::InPerson => {
            let who = match (ctx.patient_name, ctx.patient_birth_year) {
                (Some(n), Some(y)) => format!("{n} (født {y})"),
                (Some(n), None) => n.to_owned(),
                _ => "pasienten".to_owned(),
            };
            format!(
                "Gi denne beskjeden til {who}: «{news}» Når du har sagt det, registrer at beskjeden er gitt. Koden {code} kan pasienten også bruke selv."
            )
        }
    }
}

/// The SMS to a next of kin the patient consented to: who to ask to call, nothing more — no
/// time, place, kind of appointment or code (the consent covers "ask them to call us").
pub fn next_of_kin(kin_name: Option<&str>, patient_first_name: &str, call_us: &str) -> String {
    let greeting = match kin_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("Hei {n}!"),
        None => "Hei!".to_owned(),
    };
    let call = call_us.trim();
    let how = if call.is_empty() {
        "ringe oss".to_owned()
    } else {
        format!("ringe oss ({call})")
    };
    format!(
        "{greeting} {patient_first_name} har sagt at vi kan kontakte deg. Vi prøver å nå {patient_first_name} – kan du be {patient_first_name} {how}? Ikke svar på denne meldingen."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_next_of_kin_hears_no_appointment_details() {
        let text = next_of_kin(Some("Anne"), "Ola", "22 33 44 55");
        assert_eq!(
            text,
            "Hei Anne! Ola har sagt at vi kan kontakte deg. Vi prøver å nå Ola – kan du be Ola ringe oss (22 33 44 55)? Ikke svar på denne meldingen."
        );
        assert!(!text.contains("time") && !text.contains("kl."));
    }

    #[test]
    fn norwegian_dates_follow_oslo_time() {
        let winter = Utc.with_ymd_and_hms(2026, 3, 3, 9, 30, 0).unwrap();
        assert_eq!(when_nb(winter), "tirsdag 3. mars kl. 10.30");
        let summer = Utc.with_ymd_and_hms(2026, 6, 17, 6, 5, 0).unwrap();
        assert_eq!(when_nb(summer), "onsdag 17. juni kl. 08.05");
    }

    #[test]
    fn every_text_carries_the_code_and_never_a_clinic_name() {
        let ctx = Context {
            kind: Kind::Booking,
            starts_at: Some(Utc.with_ymd_and_hms(2026, 3, 3, 9, 30, 0).unwrap()),
            place: Some("Storgata 36"),
            code: "K7MX3Q",
            link: "http://127.0.0.1:8080/k/abc",
            patient_name: Some("Kari"),
            patient_birth_year: Some(1979),
        };
        for medium in [Medium::Sms, Medium::InPerson] {
            let text = render(medium, &ctx);
            assert!(text.contains("K7MX3Q"), "{text}");
            assert!(
                text.contains("tirsdag 3. mars kl. 10.30, Storgata 36"),
                "{text}"
            );
            assert!(!text.to_lowercase().contains("rus"), "{text}");
        }
        assert!(render(Medium::InPerson, &ctx).contains("Kari (født 1979)"));
        let letter = letter(&ctx);
        assert_eq!(letter.title, "Du har fått time");
        assert!(
            letter
                .body
                .contains("tirsdag 3. mars kl. 10.30, Storgata 36"),
            "{}",
            letter.body
        );
        assert!(
            !letter.body.contains("K7MX3Q"),
            "the renderer prints the code itself"
        );
    }
}
