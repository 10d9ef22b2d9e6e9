//! The appointment time as a patient reads it, in the patient's language and in Oslo time:
//! weekday and month names for the four shipped languages. A language added by a template
//! directory can bring its own `when.jinja` (see [`crate::catalog`]); otherwise it gets the
//! numeric [`iso`] form.

use crate::lang::Lang;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use chrono_tz::Europe::Oslo;

const NN_WEEKDAYS: [&str; 7] = [
    "måndag", "tysdag", "onsdag", "torsdag", "fredag", "laurdag", "sundag",
];
const EN_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
// Northern Sami (CLDR `se`); months in the genitive, as in "guovvamánu 6. beaivi".
// A native speaker should review these, like the Sami templates.
const SE_WEEKDAYS: [&str; 7] = [
    "vuossárga",
    "maŋŋebárga",
    "gaskavahkku",
    "duorasdat",
    "bearjadat",
    "lávvardat",
    "sotnabeaivi",
];
const SE_MONTHS_GENITIVE: [&str; 12] = [
    "ođđajagemánu",
    "guovvamánu",
    "njukčamánu",
    "cuoŋománu",
    "miessemánu",
    "geassemánu",
    "suoidnemánu",
    "borgemánu",
    "čakčamánu",
    "golggotmánu",
    "skábmamánu",
    "juovlamánu",
];

/// `t` in Oslo time, written for `lang`:
/// - nb: "tirsdag 3. mars kl. 10.30" (exactly [`crate::when_nb`])
/// - nn: "tysdag 3. mars kl. 10.30"
/// - en: "Tuesday 3 March at 10:30"
/// - se: "maŋŋebárga njukčamánu 3. beaivi diibmu 10.30"
/// - any other language: "2026-03-03 10:30" ([`iso`]).
pub fn format_when(lang: &Lang, t: DateTime<Utc>) -> String {
    builtin(lang, t).unwrap_or_else(|| iso(t))
}

/// The worded form for a shipped language, `None` for any other.
pub(crate) fn builtin(lang: &Lang, t: DateTime<Utc>) -> Option<String> {
    let local = oslo(t);
    let weekday = local.weekday().num_days_from_monday() as usize;
    let month = local.month0() as usize;
    let (day, hour, minute) = (local.day(), local.hour(), local.minute());
    Some(match lang.as_str() {
        "nb" => crate::when_nb(t),
        "nn" => format!(
            "{} {day}. {} kl. {hour:02}.{minute:02}",
            NN_WEEKDAYS[weekday],
            crate::MONTHS[month]
        ),
        "en" => format!(
            "{} {day} {} at {hour:02}:{minute:02}",
            EN_WEEKDAYS[weekday], EN_MONTHS[month]
        ),
        "se" => format!(
            "{} {} {day}. beaivi diibmu {hour:02}.{minute:02}",
            SE_WEEKDAYS[weekday], SE_MONTHS_GENITIVE[month]
        ),
        _ => return None,
    })
}

/// Oslo time, numeric and unambiguous in any language: "2026-03-03 10:30".
pub fn iso(t: DateTime<Utc>) -> String {
    oslo(t).format("%Y-%m-%d %H:%M").to_string()
}

pub(crate) fn oslo(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&Oslo).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_shipped_language_words_the_time_in_oslo() {
        let winter = Utc.with_ymd_and_hms(2026, 3, 3, 9, 30, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 6, 17, 6, 5, 0).unwrap();
        let cases = [
            (Lang::NB, winter, "tirsdag 3. mars kl. 10.30"),
            (Lang::NB, summer, "onsdag 17. juni kl. 08.05"),
            (Lang::NN, winter, "tysdag 3. mars kl. 10.30"),
            (Lang::NN, summer, "onsdag 17. juni kl. 08.05"),
            (Lang::EN, winter, "Tuesday 3 March at 10:30"),
            (Lang::EN, summer, "Wednesday 17 June at 08:05"),
            (
                Lang::SE,
                winter,
                "maŋŋebárga njukčamánu 3. beaivi diibmu 10.30",
            ),
            (
                Lang::SE,
                summer,
                "gaskavahkku geassemánu 17. beaivi diibmu 08.05",
            ),
        ];
        for (lang, t, want) in cases {
            assert_eq!(format_when(&lang, t), want, "{lang}");
        }
    }

    #[test]
    fn nb_is_exactly_when_nb_all_year() {
        let mut t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        while t.year() == 2026 {
            assert_eq!(format_when(&Lang::NB, t), crate::when_nb(t));
            t += chrono::Duration::hours(7) + chrono::Duration::minutes(13);
        }
    }

    #[test]
    fn other_languages_get_the_numeric_form() {
        let t = Utc.with_ymd_and_hms(2026, 10, 25, 0, 59, 0).unwrap();
        assert_eq!(
            format_when(&Lang::parse("fi").unwrap(), t),
            "2026-10-25 02:59"
        );
    }
}
