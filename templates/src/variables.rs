//! What a template may use: the template keys (notice kind × channel, plus the staff e-mail), the
//! one table of variables each key is given ([`NOTICE_VARIABLES`], [`STAFF_EMAIL_VARIABLES`],
//! [`WHEN_FORMAT_VARIABLES`]), and the sample values previews and validation render with.
//!
//! A template that uses a name not in its row is refused when it is saved or loaded; at render
//! time only the row's variables are defined, so an SMS cannot print a patient's name even if
//! someone tries. `Optional` variables are always defined but may be `none`: test them with
//! `{% if place %}`; printing a `none` is an error, like printing an undefined name.

use crate::Kind;
use std::fmt;

/// Where a notice text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Sms,
    /// A printed letter: a `title` block (visible through an envelope window, so it is checked
    /// for neutral wording like an SMS) and a `body` block. The letter renderer prints the code,
    /// the link and the QR code itself, so letters are not given `code` or `link`.
    Letter,
    /// What staff at a low-threshold service (drop-in centre) say to the patient in person.
    Relay,
    /// What an outreach worker says to the patient.
    Outreach,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Sms,
        Channel::Letter,
        Channel::Relay,
        Channel::Outreach,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Letter => "letter",
            Channel::Relay => "relay",
            Channel::Outreach => "outreach",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether others than the patient may see the text (an SMS on a shared phone, a message
    /// said at a drop-in centre, a letter's title in the envelope window): such texts must not
    /// reveal a diagnosis or the clinic's speciality unless the clinic's policy allows it.
    pub fn is_exposed(self) -> bool {
        matches!(self, Channel::Sms | Channel::Relay | Channel::Letter)
    }
}

/// One template slot: a notice kind on a channel, or the staff e-mail (one per language).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKey {
    Notice(Kind, Channel),
    /// The summary mailed to staff: how many new things wait and a link; never patient data.
    /// Blocks `subject` and `body`.
    StaffEmail,
}

impl TemplateKey {
    /// All 25 keys: every kind on every channel, then the staff e-mail.
    pub fn all() -> impl Iterator<Item = TemplateKey> {
        Kind::ALL
            .into_iter()
            .flat_map(|k| Channel::ALL.map(|c| TemplateKey::Notice(k, c)))
            .chain([TemplateKey::StaffEmail])
    }

    /// The file name without `.jinja`: `booking.sms`, `no_show_follow_up.letter`, `staff_email`.
    pub fn file_stem(self) -> String {
        self.to_string()
    }

    pub fn parse(stem: &str) -> Option<TemplateKey> {
        if stem == "staff_email" {
            return Some(TemplateKey::StaffEmail);
        }
        let (kind, channel) = stem.split_once('.')?;
        Some(TemplateKey::Notice(
            Kind::parse(kind)?,
            Channel::parse(channel)?,
        ))
    }

    /// The variables this template is given (its row of the table).
    pub fn variables(self) -> &'static [Variable] {
        match self {
            TemplateKey::StaffEmail => STAFF_EMAIL_VARIABLES,
            TemplateKey::Notice(kind, channel) => NOTICE_VARIABLES
                .iter()
                .find(|row| row.kinds.contains(&kind) && row.channels.contains(&channel))
                .map_or(&[], |row| row.variables),
        }
    }

    /// The `{% block %}`s the template must have, title/subject first; none for one-part texts.
    pub fn blocks(self) -> &'static [&'static str] {
        match self {
            TemplateKey::Notice(_, Channel::Letter) => &["title", "body"],
            TemplateKey::StaffEmail => &["subject", "body"],
            TemplateKey::Notice(..) => &[],
        }
    }

    /// Whether the text is one line (SMS, relay, outreach): whitespace runs, line breaks
    /// included, render as one space, so a template may be written over several lines.
    pub fn is_one_line(self) -> bool {
        self.blocks().is_empty()
    }

    pub fn channel(self) -> Option<Channel> {
        match self {
            TemplateKey::Notice(_, channel) => Some(channel),
            TemplateKey::StaffEmail => None,
        }
    }
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateKey::Notice(kind, channel) => {
                write!(f, "{}.{}", kind.as_str(), channel.as_str())
            }
            TemplateKey::StaffEmail => f.write_str("staff_email"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Always has a value; rendering without one is an error (a booking needs its time).
    Always,
    /// Defined, but `none` when unknown: use it inside `{% if name %}`.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub presence: Presence,
    pub about: &'static str,
}

const fn always(name: &'static str, about: &'static str) -> Variable {
    Variable {
        name,
        presence: Presence::Always,
        about,
    }
}

const fn optional(name: &'static str, about: &'static str) -> Variable {
    Variable {
        name,
        presence: Presence::Optional,
        about,
    }
}

const WHEN: Variable = always(
    "when",
    "the appointment's start, Oslo time, worded in the template's language (nb \"tirsdag 3. mars kl. 10.30\", en \"Tuesday 3 March at 10:30\")",
);
const WHEN_NB: Variable = always(
    "when_nb",
    "the same time in bokmål, for the Norwegian-speaking staff's part of a relay or outreach text",
);
const CANCELLED_WHEN: Variable = optional("when", "the cancelled appointment's start, if known");
const CANCELLED_WHEN_NB: Variable = optional("when_nb", "the same in bokmål, if known");
const MISSED_WHEN: Variable = optional("when", "the missed appointment's start, if known");
const MISSED_WHEN_NB: Variable = optional("when_nb", "the same in bokmål, if known");
const PLACE: Variable = optional(
    "place",
    "where the appointment is (address, room), if recorded; never the clinic's name",
);
const CODE: Variable = always(
    "code",
    "the acknowledgement code the patient replies with or says (6 characters)",
);
const LINK: Variable = always(
    "link",
    "the acknowledgement link; no BankID needed (about 45 characters)",
);
const PATIENT_NAME: Variable = optional(
    "patient_name",
    "who staff should give the message to (relay and outreach only)",
);
const PATIENT_BIRTH_YEAR: Variable = optional(
    "patient_birth_year",
    "the patient's birth year, to tell people with the same name apart (a number)",
);

/// Notice kinds that have an appointment ahead.
const SCHEDULED: &[Kind] = &[Kind::Booking, Kind::Reschedule, Kind::Reminder];
const IN_PERSON: &[Channel] = &[Channel::Relay, Channel::Outreach];

/// One row of the variable table: these kinds on these channels are given these variables.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub kinds: &'static [Kind],
    pub channels: &'static [Channel],
    pub variables: &'static [Variable],
}

/// The variables of every notice template. Each (kind, channel) is in exactly one row.
pub const NOTICE_VARIABLES: &[Row] = &[
    // An appointment ahead: its time, usually its place.
    Row {
        kinds: SCHEDULED,
        channels: &[Channel::Sms],
        variables: &[WHEN, PLACE, CODE, LINK],
    },
    Row {
        kinds: SCHEDULED,
        channels: &[Channel::Letter],
        variables: &[WHEN, PLACE],
    },
    Row {
        kinds: SCHEDULED,
        channels: IN_PERSON,
        variables: &[
            WHEN,
            WHEN_NB,
            PLACE,
            CODE,
            LINK,
            PATIENT_NAME,
            PATIENT_BIRTH_YEAR,
        ],
    },
    // A cancellation: which time is off, if known.
    Row {
        kinds: &[Kind::Cancellation],
        channels: &[Channel::Sms],
        variables: &[CANCELLED_WHEN, PLACE, CODE, LINK],
    },
    Row {
        kinds: &[Kind::Cancellation],
        channels: &[Channel::Letter],
        variables: &[CANCELLED_WHEN, PLACE],
    },
    Row {
        kinds: &[Kind::Cancellation],
        channels: IN_PERSON,
        variables: &[
            CANCELLED_WHEN,
            CANCELLED_WHEN_NB,
            PLACE,
            CODE,
            LINK,
            PATIENT_NAME,
            PATIENT_BIRTH_YEAR,
        ],
    },
    // A no-show follow-up: the missed time at most; no place.
    Row {
        kinds: &[Kind::NoShowFollowUp],
        channels: &[Channel::Sms],
        variables: &[MISSED_WHEN, CODE, LINK],
    },
    Row {
        kinds: &[Kind::NoShowFollowUp],
        channels: &[Channel::Letter],
        variables: &[MISSED_WHEN],
    },
    Row {
        kinds: &[Kind::NoShowFollowUp],
        channels: IN_PERSON,
        variables: &[
            MISSED_WHEN,
            MISSED_WHEN_NB,
            CODE,
            LINK,
            PATIENT_NAME,
            PATIENT_BIRTH_YEAR,
        ],
    },
    // A free notice: no appointment at all.
    Row {
        kinds: &[Kind::Free],
        channels: &[Channel::Sms],
        variables: &[CODE, LINK],
    },
    Row {
        kinds: &[Kind::Free],
        channels: &[Channel::Letter],
        variables: &[],
    },
    Row {
        kinds: &[Kind::Free],
        channels: IN_PERSON,
        variables: &[CODE, LINK, PATIENT_NAME, PATIENT_BIRTH_YEAR],
    },
];

/// The staff e-mail's variables: counts and a link, never patient data.
pub const STAFF_EMAIL_VARIABLES: &[Variable] = &[
    always("staff_name", "the staff member's name"),
    always("count", "how many new things wait (a number)"),
    always(
        "lines",
        "a list of summary lines without patient data, e.g. \"2 beskjeder venter på å bli gitt videre\"",
    ),
    always("link", "where to log in and see them"),
];

/// The variables of a directory language's `when.jinja`, which words an appointment time
/// (Oslo time) for languages the crate has no names for.
pub const WHEN_FORMAT_VARIABLES: &[Variable] = &[
    always("weekday", "1 = Monday … 7 = Sunday"),
    always("day", "day of the month, 1–31"),
    always("month", "1 = January … 12 = December"),
    always("year", "e.g. 2026"),
    always("hour", "two digits, 00–23"),
    always("minute", "two digits, 00–59"),
];

/// Sample values for previews and validation: typical lengths (code 6, link 45, place 23).
pub mod sample {
    use crate::catalog::StaffEmail;
    use crate::{Context, Kind};
    use chrono::{DateTime, TimeZone, Utc};

    pub const CODE: &str = "K7MX3Q";
    pub const LINK: &str = "https://kontaktvei.example.no/k/Xy7pQ2mN9aB4c";
    pub const PLACE: &str = "Helsehuset, Storgata 36";
    pub const PATIENT_NAME: &str = "Kari Nordmann";
    pub const PATIENT_BIRTH_YEAR: i32 = 1979;
    pub const STAFF_NAME: &str = "Ola";
    pub const STAFF_LINK: &str = "https://kontaktvei.example.no/oppgaver";
    pub const STAFF_LINES: [&str; 2] = [
        "2 beskjeder venter på å bli gitt videre",
        "1 oppsøkende oppgave har ingen ansvarlig",
    ];

    /// Tuesday 3 March 2026, 10.30 in Oslo.
    pub fn time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 3, 9, 30, 0).unwrap()
    }

    /// A notice of `kind` with every field set (an appointment ahead, place, patient).
    pub fn context(kind: Kind) -> Context<'static> {
        Context {
            kind,
            starts_at: Some(time()),
            place: Some(PLACE),
            code: CODE,
            link: LINK,
            patient_name: Some(PATIENT_NAME),
            patient_birth_year: Some(PATIENT_BIRTH_YEAR),
        }
    }

    pub fn staff_email() -> StaffEmail {
        StaffEmail {
            staff_name: STAFF_NAME.to_owned(),
            count: 3,
            lines: STAFF_LINES.map(str::to_owned).to_vec(),
            link: STAFF_LINK.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_key_is_in_exactly_one_row() {
        for kind in Kind::ALL {
            for channel in Channel::ALL {
                let rows = NOTICE_VARIABLES
                    .iter()
                    .filter(|r| r.kinds.contains(&kind) && r.channels.contains(&channel))
                    .count();
                assert_eq!(rows, 1, "{kind:?} {channel:?}");
            }
        }
    }

    #[test]
    fn keys_round_trip_through_file_names() {
        assert_eq!(TemplateKey::all().count(), 25);
        for key in TemplateKey::all() {
            assert_eq!(TemplateKey::parse(&key.file_stem()), Some(key));
        }
        assert_eq!(TemplateKey::parse("booking.fax"), None);
    }

    #[test]
    fn only_in_person_texts_name_the_patient() {
        for key in TemplateKey::all() {
            let names = key.variables().iter().any(|v| v.name == "patient_name");
            let in_person = matches!(key.channel(), Some(Channel::Relay | Channel::Outreach));
            assert_eq!(names, in_person, "{key}");
        }
    }
}
