//! Norwegian time for contact planning: public holidays (helligdager), working days
//! (virkedager), quiet hours for SMS, the daily print cut-off for letters, Posten's
//! every-other-day delivery rhythm (postomdeling annenhver dag), and the opening hours of the
//! services that relay a notice.
//!
//! The module is pure: no I/O, no clock reads, no global state. Every function takes the
//! instants it needs as `DateTime<Utc>` (or a `NaiveDate` for calendar days) and answers in
//! `Europe/Oslo` through chrono-tz. Wall-clock times are turned into instants by
//! [`local_instant`]: a time that does not exist on the spring-forward night (02:00–03:00 on the
//! last Sunday in March) becomes the first valid instant after it (03:00 CEST); a time that
//! occurs twice on the fall-back night (02:00–03:00 on the last Sunday in October) becomes the
//! earlier of the two.
//!
//! Sources (see `/work/shared/FACTS.md`, "Post" and "Calendar"):
//! - Public holidays: 1 Jan; Maundy Thursday (Easter −3), Good Friday (−2), Easter Sunday,
//!   Easter Monday (+1); 1 May; 17 May; Ascension Day (+39); Whit Sunday (+49), Whit Monday
//!   (+50); 25 and 26 Dec. Christmas Eve and New Year's Eve are ordinary working days.
//! - Europe/Oslo is CET (+01:00), and CEST (+02:00) from the last Sunday in March to the last
//!   Sunday in October.
//! - Since July 2020 Posten delivers letters to a home address every other weekday: Mon/Wed/Fri
//!   one week, Tue/Thu the next (Nkom: "mandag, onsdag og fredag den ene uken og tirsdag og
//!   torsdag den andre uken", in a two-week cycle); which week gets Mon/Wed/Fri differs between
//!   areas (in July 2020 Skudeneshavn 4280 got Mon/Wed/Fri in even ISO weeks, Rjukan in odd
//!   ones). Post boxes (postboks) get mail every working day. Nothing is delivered on Saturdays,
//!   Sundays or public holidays.
//! - Since A and B mail merged (2018) about 85 % of letters arrive by D+3 and 97 % by D+5
//!   working days, so [`PostalCalendar::delivery_window`] plans with D+2 ..= D+5.

use std::collections::BTreeMap;

use chrono::{
    DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The time zone every plan is made in.
pub const OSLO: Tz = chrono_tz::Europe::Oslo;

/// Quiet hours start (kl. 21.00, Oslo time) unless the policy says otherwise.
pub const DEFAULT_QUIET_START: NaiveTime = hm(21, 0);
/// Quiet hours end (kl. 08.00, Oslo time) unless the policy says otherwise.
pub const DEFAULT_QUIET_END: NaiveTime = hm(8, 0);
/// Letters due before this time on a working day go in that day's print batch.
pub const DEFAULT_PRINT_CUTOFF: NaiveTime = hm(14, 0);

/// Opening hours repeat every week and public holidays never cover every occurrence of a
/// weekday, so a service that has not opened within this many days never will.
const MAX_OPENING_SCAN_DAYS: i64 = 400;

const fn hm(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(t) => t,
        None => panic!("invalid constant time"),
    }
}

// ---------------------------------------------------------------------------------------------
// Easter, public holidays and working days
// ---------------------------------------------------------------------------------------------

/// Easter Sunday (første påskedag) in the Gregorian calendar, from the `computus` crate.
///
/// # Panics
/// Outside the years 1583–9999, where the Gregorian computus is not defined.
pub fn easter_sunday(year: i32) -> NaiveDate {
    easter_sunday_opt(year).unwrap_or_else(|| panic!("no Gregorian Easter date for year {year}"))
}

fn easter_sunday_opt(year: i32) -> Option<NaiveDate> {
    let easter = computus::gregorian(year).ok()?;
    NaiveDate::from_ymd_opt(easter.year, easter.month, easter.day)
}

/// The bokmål name of the public holiday on `date`, if it is one. Outside the years
/// 1583–9999 only the fixed-date holidays are known.
pub fn holiday_name(date: NaiveDate) -> Option<&'static str> {
    let fixed = match (date.month(), date.day()) {
        (1, 1) => Some("første nyttårsdag"),
        (5, 1) => Some("offentlig høytidsdag (1. mai)"),
        (5, 17) => Some("grunnlovsdag (17. mai)"),
        (12, 25) => Some("første juledag"),
        (12, 26) => Some("andre juledag"),
        _ => None,
    };
    let moveable =
        easter_sunday_opt(date.year()).and_then(|easter| match (date - easter).num_days() {
            -3 => Some("skjærtorsdag"),
            -2 => Some("langfredag"),
            0 => Some("første påskedag"),
            1 => Some("andre påskedag"),
            39 => Some("Kristi himmelfartsdag"),
            49 => Some("første pinsedag"),
            50 => Some("andre pinsedag"),
            _ => None,
        });
    // Ascension Day can fall on 1 or 17 May; the church holiday is named first.
    moveable.or(fixed)
}

/// Whether `date` is a Norwegian public holiday (helligdag or offentlig høytidsdag).
pub fn is_public_holiday(date: NaiveDate) -> bool {
    holiday_name(date).is_some()
}

/// Monday to Friday and not a public holiday. Christmas Eve and New Year's Eve are working
/// days, although many services close early.
pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_public_holiday(date)
}

/// The `n`-th working day after `date` (`date` itself when `n` is 0, whatever day it is).
pub fn add_working_days(date: NaiveDate, n: u32) -> NaiveDate {
    let mut day = date;
    let mut left = n;
    while left > 0 {
        let Some(next) = day.succ_opt() else { break };
        day = next;
        if is_working_day(day) {
            left -= 1;
        }
    }
    day
}

/// The first day on or after `date` for which `pred` holds. Every caller's predicate holds
/// on some day of every few weeks, so the walk is short.
fn first_day_on_or_after(date: NaiveDate, pred: impl Fn(NaiveDate) -> bool) -> NaiveDate {
    let mut day = date;
    while !pred(day) {
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    day
}

// ---------------------------------------------------------------------------------------------
// Wall-clock time in Oslo
// ---------------------------------------------------------------------------------------------

/// The calendar date in Oslo at the instant `at`.
pub fn oslo_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&OSLO).date_naive()
}

/// The instant at which the clocks in Oslo show `time` on `date`.
pub fn oslo_instant(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    local_instant(OSLO, date, time)
}

/// The instant at which the clocks in `tz` show `time` on `date`. A time skipped by a
/// daylight-saving change gives the first valid instant after it (the moment the clocks
/// jump); a time that occurs twice gives the earlier.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    local_instants(tz, naive)
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| naive.and_utc())
}

/// Every instant at which the clocks in `tz` show `naive`, earliest first: one, two in the
/// repeated hour of a fall-back night, and for a time skipped by a spring-forward jump the
/// instant of the jump.
fn local_instants(tz: Tz, naive: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
    match tz.from_local_datetime(&naive) {
        MappedLocalTime::Single(t) => [Some(t.to_utc()), None],
        MappedLocalTime::Ambiguous(a, b) => {
            let (a, b) = (a.to_utc(), b.to_utc());
            [Some(a.min(b)), Some(a.max(b))]
        }
        MappedLocalTime::None => [end_of_gap(tz, naive), None],
    }
}

/// The first instant whose wall-clock time in `tz` is later than `naive`, a time that the
/// clocks skip. Found by bisection between the instants `naive` would mean under the offsets
/// in force a day before and a day after; chrono-tz does not expose its transitions.
fn end_of_gap(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    let wall = naive.and_utc().timestamp();
    let offset_at = |ts: i64| -> Option<i64> {
        let utc = DateTime::from_timestamp(ts, 0)?;
        Some(i64::from(
            tz.offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc(),
        ))
    };
    let shows_later = |ts: i64| offset_at(ts).is_some_and(|offset| ts + offset > wall);
    let before = offset_at(wall - 86_400)?;
    let after = offset_at(wall + 86_400)?;
    let (mut lo, mut hi) = (wall - before.max(after), wall - before.min(after));
    if shows_later(lo) || !shows_later(hi) {
        return DateTime::from_timestamp(hi, 0);
    }
    // Invariant: the clocks show at most `naive` at `lo` and later than it at `hi`.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if shows_later(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

// ---------------------------------------------------------------------------------------------
// Quiet hours (no SMS at night) and the print cut-off
// ---------------------------------------------------------------------------------------------

/// The hours, Oslo wall-clock time, in which no SMS is sent: from `start` (inclusive) to `end`
/// (exclusive). A window with `start > end` crosses midnight (the default, 21:00–08:00);
/// `start == end` means no quiet hours at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            start: DEFAULT_QUIET_START,
            end: DEFAULT_QUIET_END,
        }
    }
}

impl QuietHours {
    fn contains(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// Whether the clocks in Oslo show a quiet time at `at`.
    pub fn is_quiet(&self, at: DateTime<Utc>) -> bool {
        self.contains(at.with_timezone(&OSLO).time())
    }

    /// `at` itself if it is outside quiet hours, else the instant the quiet period ends
    /// (`end`, Oslo time, the same or the next morning).
    pub fn not_quiet(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&OSLO);
        let time = local.time();
        if !self.contains(time) {
            return at;
        }
        let mut date = local.date_naive();
        if self.start > self.end && time >= self.start {
            date = date.succ_opt().unwrap_or(date);
        }
        // In the repeated hour of a fall-back night the earlier reading of `end` may already
        // have passed; the quiet period then ends at the later one.
        local_instants(OSLO, date.and_time(self.end))
            .into_iter()
            .flatten()
            .find(|end| *end >= at)
            .unwrap_or(at)
    }
}

/// The first print cut-off at or after `at`: `cutoff` (Oslo time, 14:00 by default, see
/// [`DEFAULT_PRINT_CUTOFF`]) on a working day. A letter due before it goes in that batch.
pub fn next_print_cutoff(at: DateTime<Utc>, cutoff: NaiveTime) -> DateTime<Utc> {
    let mut date = oslo_date(at);
    loop {
        if is_working_day(date) {
            let instants = local_instants(OSLO, date.and_time(cutoff));
            if let Some(instant) = instants.into_iter().flatten().find(|t| *t >= at) {
                return instant;
            }
        }
        let Some(next) = date.succ_opt() else {
            return at;
        };
        date = next;
    }
}

// ---------------------------------------------------------------------------------------------
// Posten's delivery rhythm (postomdeling annenhver dag)
// ---------------------------------------------------------------------------------------------

/// On which weekdays Posten delivers letters to an address.
///
/// The week is the ISO week number of the delivery day. An ISO year with 53 weeks puts two odd
/// weeks in a row (week 53, then week 1); whether Posten's two-week cycle follows the week
/// number there or keeps strictly alternating is not documented, and this follows the number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryRhythm {
    /// Mon/Wed/Fri in even ISO weeks, Tue/Thu in odd ones.
    #[default]
    MonWedFriInEvenWeeks,
    /// Mon/Wed/Fri in odd ISO weeks, Tue/Thu in even ones.
    MonWedFriInOddWeeks,
    /// Every working day: post boxes (postboks), business addresses, and an escape hatch
    /// where the rhythm is unknown and a pessimistic plan would skip the letter.
    Daily,
}

impl DeliveryRhythm {
    /// Whether an address with this rhythm gets letters on `date` (never on weekends or
    /// public holidays).
    pub fn delivers_on(self, date: NaiveDate) -> bool {
        if !is_working_day(date) {
            return false;
        }
        let even_week = date.iso_week().week().is_multiple_of(2);
        let mon_wed_fri = matches!(date.weekday(), Weekday::Mon | Weekday::Wed | Weekday::Fri);
        match self {
            DeliveryRhythm::Daily => true,
            DeliveryRhythm::MonWedFriInEvenWeeks => mon_wed_fri == even_week,
            DeliveryRhythm::MonWedFriInOddWeeks => mon_wed_fri != even_week,
        }
    }
}

/// A postal-code prefix that is not 1 to 4 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a postal code prefix is 1 to 4 digits (\"01\" covers 0100–0199), got {0:?}")]
pub struct InvalidPostalPrefix(pub String);

/// Which delivery rhythm applies to which postal code. Rhythms are set per 4-digit postal code
/// or per prefix ("01" covers 0100–0199); the longest matching prefix wins, and codes no entry
/// covers get the default rhythm.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PostalCalendarConfig")]
pub struct PostalCalendar {
    default_rhythm: DeliveryRhythm,
    by_postal_code: BTreeMap<String, DeliveryRhythm>,
}

/// What a configuration file holds; checked before it becomes a [`PostalCalendar`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostalCalendarConfig {
    #[serde(default)]
    default_rhythm: DeliveryRhythm,
    #[serde(default)]
    by_postal_code: BTreeMap<String, DeliveryRhythm>,
}

impl TryFrom<PostalCalendarConfig> for PostalCalendar {
    type Error = InvalidPostalPrefix;

    fn try_from(config: PostalCalendarConfig) -> Result<Self, Self::Error> {
        let mut calendar = PostalCalendar::new(config.default_rhythm);
        for (prefix, rhythm) in config.by_postal_code {
            calendar.set(&prefix, rhythm)?;
        }
        Ok(calendar)
    }
}

impl PostalCalendar {
    /// A calendar in which every postal code has `default_rhythm`.
    pub fn new(default_rhythm: DeliveryRhythm) -> Self {
        PostalCalendar {
            default_rhythm,
            by_postal_code: BTreeMap::new(),
        }
    }

    /// Sets the rhythm for a postal code or prefix (1–4 digits).
    pub fn set(&mut self, prefix: &str, rhythm: DeliveryRhythm) -> Result<(), InvalidPostalPrefix> {
        let valid = (1..=4).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(InvalidPostalPrefix(prefix.to_owned()));
        }
        self.by_postal_code.insert(prefix.to_owned(), rhythm);
        Ok(())
    }

    /// [`PostalCalendar::set`], for building a calendar in one expression.
    pub fn with(
        mut self,
        prefix: &str,
        rhythm: DeliveryRhythm,
    ) -> Result<Self, InvalidPostalPrefix> {
        self.set(prefix, rhythm)?;
        Ok(self)
    }

    pub fn default_rhythm(&self) -> DeliveryRhythm {
        self.default_rhythm
    }

    /// The rhythm of the longest configured prefix of `postal_code`, else the default.
    pub fn rhythm(&self, postal_code: &str) -> DeliveryRhythm {
        let code = postal_code.trim();
        (1..=code.len().min(4))
            .rev()
            .filter_map(|len| code.get(..len))
            .find_map(|prefix| self.by_postal_code.get(prefix).copied())
            .unwrap_or(self.default_rhythm)
    }

    /// Whether Posten delivers letters to `postal_code` on `date`.
    pub fn is_delivery_day(&self, postal_code: &str, date: NaiveDate) -> bool {
        self.rhythm(postal_code).delivers_on(date)
    }

    /// The expected earliest and latest delivery date of a letter posted on `posted_on`: the
    /// first delivery day for the address on or after D+2 working days, and on or after D+5.
    pub fn delivery_window(
        &self,
        postal_code: &str,
        posted_on: NaiveDate,
    ) -> (NaiveDate, NaiveDate) {
        let rhythm = self.rhythm(postal_code);
        let first_delivery =
            |n| first_day_on_or_after(add_working_days(posted_on, n), |d| rhythm.delivers_on(d));
        (first_delivery(2), first_delivery(5))
    }
}

// ---------------------------------------------------------------------------------------------
// Opening hours
// ---------------------------------------------------------------------------------------------

/// A service's weekly opening hours, parsed once: for each weekday (Monday first) the
/// intervals it is open, `opens` inclusive, `closes` exclusive, in the service's local time.
/// A service is closed on public holidays whatever its hours say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeeklyHours {
    days: [Vec<(NaiveTime, NaiveTime)>; 7],
}

impl WeeklyHours {
    /// Hours from intervals per weekday, Monday first. Intervals that do not open before they
    /// close are dropped; the rest are sorted.
    pub fn new(days: [Vec<(NaiveTime, NaiveTime)>; 7]) -> Self {
        let days = days.map(|mut intervals| {
            intervals.retain(|(opens, closes)| opens < closes);
            intervals.sort();
            intervals
        });
        WeeklyHours { days }
    }

    /// Hours from the store's `HH:MM` strings. The store validated them, so an interval that
    /// does not parse is ignored rather than reported.
    pub fn from_store(hours: &kontaktvei_store::organisations::OpeningHours) -> WeeklyHours {
        let parse = |intervals: &[kontaktvei_store::organisations::Interval]| {
            intervals
                .iter()
                .filter_map(|i| {
                    let opens = NaiveTime::parse_from_str(&i.opens, "%H:%M").ok()?;
                    let closes = NaiveTime::parse_from_str(&i.closes, "%H:%M").ok()?;
                    Some((opens, closes))
                })
                .collect::<Vec<_>>()
        };
        WeeklyHours::new([
            parse(&hours.mon),
            parse(&hours.tue),
            parse(&hours.wed),
            parse(&hours.thu),
            parse(&hours.fri),
            parse(&hours.sat),
            parse(&hours.sun),
        ])
    }

    /// The intervals the service is open on `weekday`.
    pub fn day(&self, weekday: Weekday) -> &[(NaiveTime, NaiveTime)] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    /// Whether no day has any opening hours.
    pub fn is_never_open(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }

    /// Whether the service is open at `at`, by the clocks in `tz`.
    pub fn is_open(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let local = at.with_timezone(&tz);
        let date = local.date_naive();
        let time = local.time();
        !is_public_holiday(date)
            && self
                .day(date.weekday())
                .iter()
                .any(|&(opens, closes)| opens <= time && time < closes)
    }

    /// `at` if the service is open then, else the next instant it opens no later than
    /// `at + horizon`; `None` if it does not open within the horizon or never opens. Horizons
    /// beyond 400 days are treated as 400 days: hours that repeat weekly open within that if
    /// at all.
    pub fn next_open(
        &self,
        at: DateTime<Utc>,
        tz: Tz,
        horizon: TimeDelta,
    ) -> Option<DateTime<Utc>> {
        if self.is_open(at, tz) {
            return Some(at);
        }
        if self.is_never_open() || horizon <= TimeDelta::zero() {
            return None;
        }
        let horizon = horizon.min(TimeDelta::days(MAX_OPENING_SCAN_DAYS));
        let until = at.checked_add_signed(horizon)?;
        let last_date = until.with_timezone(&tz).date_naive();
        let mut date = at.with_timezone(&tz).date_naive();
        while date <= last_date {
            if !is_public_holiday(date) {
                for &(opens, _) in self.day(date.weekday()) {
                    let instants = local_instants(tz, date.and_time(opens));
                    // A time skipped by a spring-forward jump may fall after the day's closing.
                    let opening = instants
                        .into_iter()
                        .flatten()
                        .find(|t| *t >= at && self.is_open(*t, tz));
                    if let Some(t) = opening {
                        return (t <= until).then_some(t);
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The last instant in `(after, until]` at which the service closes (the end of one of its
    /// opening intervals), or `None` if it does not close in that span. A relay request that
    /// nobody answered by the close of the last opening in its window will not be answered
    /// while the service is closed: waiting on through the closed hours only delays the next
    /// step.
    pub fn last_closing(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        if self.is_never_open() || until <= after {
            return None;
        }
        let first_date = after.with_timezone(&tz).date_naive();
        let mut date = until.with_timezone(&tz).date_naive();
        while date >= first_date {
            if !is_public_holiday(date) {
                for &(_, closes) in self.day(date.weekday()).iter().rev() {
                    let closing = local_instants(tz, date.and_time(closes))
                        .into_iter()
                        .flatten()
                        .filter(|t| *t > after && *t <= until)
                        .max();
                    if closing.is_some() {
                        return closing;
                    }
                }
            }
            date = date.pred_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontaktvei_store::organisations::{Interval, OpeningHours};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// An instant written with its offset, e.g. `2026-01-15T23:30:00+01:00`.
    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    /// An instant as the clocks in Oslo show it, with the offset in force.
    fn in_oslo(instant: DateTime<Utc>) -> String {
        instant.with_timezone(&OSLO).to_rfc3339()
    }

    fn interval(opens: &str, closes: &str) -> Interval {
        Interval {
            opens: opens.to_owned(),
            closes: closes.to_owned(),
        }
    }

    /// A service open Monday to Friday, 09:00–15:00.
    fn weekdays_nine_to_three() -> WeeklyHours {
        let day = vec![interval("09:00", "15:00")];
        WeeklyHours::from_store(&OpeningHours {
            mon: day.clone(),
            tue: day.clone(),
            wed: day.clone(),
            thu: day.clone(),
            fri: day,
            ..OpeningHours::default()
        })
    }

    // --- Easter and holidays ---

    #[test]
    fn easter_sunday_falls_on_the_known_dates() {
        assert_eq!(easter_sunday(2024), date(2024, 3, 31));
        assert_eq!(easter_sunday(2025), date(2025, 4, 20));
        assert_eq!(easter_sunday(2026), date(2026, 4, 5));
        assert_eq!(easter_sunday(2027), date(2027, 3, 28));
        assert_eq!(easter_sunday(2038), date(2038, 4, 25));
    }

    #[test]
    fn the_easter_holidays_of_2026_are_not_working_days() {
        for d in [
            date(2026, 4, 2),
            date(2026, 4, 3),
            date(2026, 4, 5),
            date(2026, 4, 6),
        ] {
            assert!(is_public_holiday(d), "{d} is a holiday");
            assert!(!is_working_day(d), "{d} is not a working day");
        }
        assert_eq!(holiday_name(date(2026, 4, 2)), Some("skjærtorsdag"));
        assert!(
            is_working_day(date(2026, 4, 1)),
            "the Wednesday before Easter is a working day"
        );
        assert!(
            is_working_day(date(2026, 4, 7)),
            "the Tuesday after Easter is a working day"
        );
    }

    #[test]
    fn may_holidays_in_2026_are_17_may_ascension_and_whit_monday() {
        assert!(is_public_holiday(date(2026, 5, 1)));
        assert!(is_public_holiday(date(2026, 5, 17)));
        assert!(
            is_public_holiday(date(2026, 5, 14)),
            "Ascension is Easter + 39"
        );
        assert!(!is_working_day(date(2026, 5, 14)));
        assert!(
            is_public_holiday(date(2026, 5, 24)),
            "Whit Sunday is Easter + 49"
        );
        assert!(
            is_public_holiday(date(2026, 5, 25)),
            "Whit Monday is Easter + 50"
        );
        assert!(!is_working_day(date(2026, 5, 25)));
        assert!(is_working_day(date(2026, 5, 26)));
    }

    #[test]
    fn christmas_eve_and_new_years_eve_are_working_days_but_christmas_is_not() {
        assert!(is_working_day(date(2026, 12, 24)));
        assert!(is_working_day(date(2026, 12, 31)));
        assert!(!is_working_day(date(2026, 12, 25)));
        assert!(!is_working_day(date(2026, 12, 26)));
        assert!(!is_working_day(date(2027, 1, 1)));
    }

    #[test]
    fn a_year_has_twelve_holidays_unless_two_coincide() {
        let count = |year| {
            let mut d = date(year, 1, 1);
            let mut n = 0;
            while d.year() == year {
                n += usize::from(is_public_holiday(d));
                d = d.succ_opt().unwrap();
            }
            n
        };
        assert_eq!(count(2026), 12);
        // In 2008 Ascension Day fell on 1 May.
        assert_eq!(count(2008), 11);
        assert!(is_public_holiday(date(2008, 5, 1)));
    }

    #[test]
    fn weekends_are_not_working_days() {
        assert!(!is_working_day(date(2026, 3, 7)));
        assert!(!is_working_day(date(2026, 3, 8)));
        assert!(is_working_day(date(2026, 3, 9)));
    }

    #[test]
    fn adding_working_days_skips_weekends_and_easter() {
        assert_eq!(add_working_days(date(2026, 3, 5), 0), date(2026, 3, 5));
        assert_eq!(
            add_working_days(date(2026, 3, 6), 1),
            date(2026, 3, 9),
            "Friday + 1 is Monday"
        );
        assert_eq!(
            add_working_days(date(2026, 4, 1), 1),
            date(2026, 4, 7),
            "over Easter"
        );
        assert_eq!(add_working_days(date(2026, 3, 27), 5), date(2026, 4, 8));
        assert_eq!(
            add_working_days(date(2026, 3, 7), 1),
            date(2026, 3, 9),
            "from a Saturday"
        );
    }

    // --- Daylight saving ---

    #[test]
    fn a_time_skipped_on_the_spring_forward_night_means_the_moment_the_clocks_jump() {
        let instant = oslo_instant(date(2026, 3, 29), time(2, 30));
        assert_eq!(in_oslo(instant), "2026-03-29T03:00:00+02:00");
        assert_eq!(instant, at("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn a_time_repeated_on_the_fall_back_night_means_the_earlier_one() {
        let instant = oslo_instant(date(2026, 10, 25), time(2, 30));
        assert_eq!(in_oslo(instant), "2026-10-25T02:30:00+02:00");
    }

    #[test]
    fn ordinary_times_have_the_offset_of_the_season() {
        assert_eq!(
            in_oslo(oslo_instant(date(2026, 1, 15), time(8, 0))),
            "2026-01-15T08:00:00+01:00"
        );
        assert_eq!(
            in_oslo(oslo_instant(date(2026, 7, 15), time(8, 0))),
            "2026-07-15T08:00:00+02:00"
        );
    }

    // --- Quiet hours ---

    #[test]
    fn an_sms_due_at_half_past_eleven_in_winter_waits_until_eight_next_morning() {
        let quiet = QuietHours::default();
        let due = at("2026-01-15T23:30:00+01:00");
        assert!(quiet.is_quiet(due));
        assert_eq!(in_oslo(quiet.not_quiet(due)), "2026-01-16T08:00:00+01:00");
    }

    #[test]
    fn an_sms_due_at_half_past_eleven_in_summer_waits_until_eight_next_morning() {
        let quiet = QuietHours::default();
        let due = at("2026-07-15T23:30:00+02:00");
        assert_eq!(in_oslo(quiet.not_quiet(due)), "2026-07-16T08:00:00+02:00");
    }

    #[test]
    fn an_sms_due_after_midnight_waits_until_eight_the_same_morning() {
        let quiet = QuietHours::default();
        assert_eq!(
            in_oslo(quiet.not_quiet(at("2026-01-16T05:00:00+01:00"))),
            "2026-01-16T08:00:00+01:00"
        );
    }

    #[test]
    fn an_sms_outside_quiet_hours_goes_at_once() {
        let quiet = QuietHours::default();
        for due in [
            "2026-01-15T08:00:00+01:00",
            "2026-01-15T12:00:00+01:00",
            "2026-01-15T20:59:59+01:00",
        ] {
            assert!(!quiet.is_quiet(at(due)), "{due}");
            assert_eq!(quiet.not_quiet(at(due)), at(due));
        }
        assert!(quiet.is_quiet(at("2026-01-15T21:00:00+01:00")));
        assert!(quiet.is_quiet(at("2026-01-16T07:59:59+01:00")));
    }

    #[test]
    fn on_the_spring_forward_night_quiet_hours_end_at_eight_summer_time() {
        let quiet = QuietHours::default();
        for due in [
            "2026-03-28T23:30:00+01:00",
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:30:00+02:00",
        ] {
            assert_eq!(
                in_oslo(quiet.not_quiet(at(due))),
                "2026-03-29T08:00:00+02:00",
                "{due}"
            );
        }
    }

    #[test]
    fn on_the_fall_back_night_quiet_hours_end_at_eight_winter_time() {
        let quiet = QuietHours::default();
        // 02:30 happens twice that night; both end at the same morning.
        for due in [
            "2026-10-24T23:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
        ] {
            assert_eq!(
                in_oslo(quiet.not_quiet(at(due))),
                "2026-10-25T08:00:00+01:00",
                "{due}"
            );
        }
    }

    #[test]
    fn quiet_hours_within_one_day_end_the_same_day() {
        let lunch = QuietHours {
            start: time(12, 0),
            end: time(13, 0),
        };
        assert!(!lunch.is_quiet(at("2026-01-15T11:59:00+01:00")));
        assert!(lunch.is_quiet(at("2026-01-15T12:00:00+01:00")));
        assert_eq!(
            in_oslo(lunch.not_quiet(at("2026-01-15T12:30:00+01:00"))),
            "2026-01-15T13:00:00+01:00"
        );
        assert!(!lunch.is_quiet(at("2026-01-15T13:00:00+01:00")));
        assert!(!lunch.is_quiet(at("2026-01-15T23:00:00+01:00")));
    }

    #[test]
    fn quiet_hours_that_start_when_they_end_are_never_quiet() {
        let none = QuietHours {
            start: time(8, 0),
            end: time(8, 0),
        };
        assert!(!none.is_quiet(at("2026-01-15T08:00:00+01:00")));
        assert!(!none.is_quiet(at("2026-01-15T03:00:00+01:00")));
    }

    #[test]
    fn quiet_hours_ending_in_the_repeated_hour_end_after_the_sms_was_due() {
        let quiet = QuietHours {
            start: time(1, 0),
            end: time(2, 30),
        };
        // 02:10 on the second pass: the first 02:30 has already gone by.
        let due = at("2026-10-25T02:10:00+01:00");
        assert_eq!(in_oslo(quiet.not_quiet(due)), "2026-10-25T02:30:00+01:00");
    }

    // --- Print cut-off ---

    #[test]
    fn a_letter_due_by_two_on_a_thursday_goes_in_that_days_batch() {
        let thursday_cutoff = "2026-03-05T14:00:00+01:00";
        let cutoff = |due| in_oslo(next_print_cutoff(at(due), DEFAULT_PRINT_CUTOFF));
        assert_eq!(cutoff("2026-03-05T13:59:00+01:00"), thursday_cutoff);
        assert_eq!(cutoff("2026-03-05T14:00:00+01:00"), thursday_cutoff);
        assert_eq!(
            cutoff("2026-03-05T14:01:00+01:00"),
            "2026-03-06T14:00:00+01:00"
        );
    }

    #[test]
    fn a_letter_due_on_friday_afternoon_waits_for_mondays_batch() {
        let cutoff = next_print_cutoff(at("2026-03-06T15:00:00+01:00"), DEFAULT_PRINT_CUTOFF);
        assert_eq!(in_oslo(cutoff), "2026-03-09T14:00:00+01:00");
        let weekend = next_print_cutoff(at("2026-03-08T10:00:00+01:00"), DEFAULT_PRINT_CUTOFF);
        assert_eq!(weekend, cutoff);
    }

    #[test]
    fn a_letter_due_on_maundy_thursday_waits_for_the_tuesday_after_easter() {
        let cutoff = next_print_cutoff(at("2026-04-02T09:00:00+02:00"), DEFAULT_PRINT_CUTOFF);
        assert_eq!(in_oslo(cutoff), "2026-04-07T14:00:00+02:00");
        let wednesday_late =
            next_print_cutoff(at("2026-04-01T15:00:00+02:00"), DEFAULT_PRINT_CUTOFF);
        assert_eq!(wednesday_late, cutoff);
    }

    // --- Postal delivery ---

    // 2026-03-02 is the Monday of ISO week 10 (even); 2026-03-09 of week 11 (odd).

    #[test]
    fn delivery_days_alternate_by_week() {
        let even = DeliveryRhythm::MonWedFriInEvenWeeks;
        let odd = DeliveryRhythm::MonWedFriInOddWeeks;
        assert!(even.delivers_on(date(2026, 3, 2)) && !odd.delivers_on(date(2026, 3, 2)));
        assert!(!even.delivers_on(date(2026, 3, 3)) && odd.delivers_on(date(2026, 3, 3)));
        assert!(!even.delivers_on(date(2026, 3, 9)) && odd.delivers_on(date(2026, 3, 9)));
        assert!(even.delivers_on(date(2026, 3, 10)) && !odd.delivers_on(date(2026, 3, 10)));
        for rhythm in [even, odd, DeliveryRhythm::Daily] {
            assert!(
                !rhythm.delivers_on(date(2026, 3, 7)),
                "no post on Saturdays"
            );
            assert!(
                !rhythm.delivers_on(date(2026, 5, 14)),
                "no post on Ascension Day"
            );
        }
    }

    #[test]
    fn a_letter_posted_monday_in_an_even_week() {
        let posted = date(2026, 3, 2);
        let even = PostalCalendar::new(DeliveryRhythm::MonWedFriInEvenWeeks);
        let odd = PostalCalendar::new(DeliveryRhythm::MonWedFriInOddWeeks);
        let daily = PostalCalendar::new(DeliveryRhythm::Daily);
        // D+2 is Wednesday; D+5 is the next Monday (odd week).
        assert_eq!(
            even.delivery_window("0150", posted),
            (date(2026, 3, 4), date(2026, 3, 10))
        );
        assert_eq!(
            odd.delivery_window("0150", posted),
            (date(2026, 3, 5), date(2026, 3, 9))
        );
        assert_eq!(
            daily.delivery_window("0150", posted),
            (date(2026, 3, 4), date(2026, 3, 9))
        );
    }

    #[test]
    fn a_letter_posted_monday_in_an_odd_week() {
        let posted = date(2026, 3, 9);
        let even = PostalCalendar::new(DeliveryRhythm::MonWedFriInEvenWeeks);
        let odd = PostalCalendar::new(DeliveryRhythm::MonWedFriInOddWeeks);
        assert_eq!(
            even.delivery_window("0150", posted),
            (date(2026, 3, 12), date(2026, 3, 16))
        );
        assert_eq!(
            odd.delivery_window("0150", posted),
            (date(2026, 3, 11), date(2026, 3, 17))
        );
    }

    #[test]
    fn a_letter_posted_the_wednesday_before_easter() {
        // Working days after 2026-04-01: Tue 7 (D+1), Wed 8 (D+2, odd week), ..., Mon 13 (D+5,
        // even week).
        let posted = date(2026, 4, 1);
        let even = PostalCalendar::new(DeliveryRhythm::MonWedFriInEvenWeeks);
        let odd = PostalCalendar::new(DeliveryRhythm::MonWedFriInOddWeeks);
        assert_eq!(
            even.delivery_window("0150", posted),
            (date(2026, 4, 9), date(2026, 4, 13))
        );
        assert_eq!(
            odd.delivery_window("0150", posted),
            (date(2026, 4, 8), date(2026, 4, 14))
        );
    }

    #[test]
    fn the_default_postal_calendar_delivers_mon_wed_fri_in_even_weeks() {
        let calendar = PostalCalendar::default();
        assert_eq!(
            calendar.rhythm("0150"),
            DeliveryRhythm::MonWedFriInEvenWeeks
        );
        assert!(calendar.is_delivery_day("9990", date(2026, 3, 2)));
        assert!(!calendar.is_delivery_day("9990", date(2026, 3, 3)));
    }

    #[test]
    fn the_longest_configured_postal_prefix_wins() {
        let calendar = PostalCalendar::default()
            .with("0", DeliveryRhythm::MonWedFriInOddWeeks)
            .and_then(|c| c.with("01", DeliveryRhythm::Daily))
            .and_then(|c| c.with("0150", DeliveryRhythm::MonWedFriInEvenWeeks))
            .unwrap();
        assert_eq!(
            calendar.rhythm("0150"),
            DeliveryRhythm::MonWedFriInEvenWeeks
        );
        assert_eq!(calendar.rhythm("0151"), DeliveryRhythm::Daily);
        assert_eq!(calendar.rhythm("0250"), DeliveryRhythm::MonWedFriInOddWeeks);
        assert_eq!(
            calendar.rhythm("5003"),
            DeliveryRhythm::MonWedFriInEvenWeeks
        );
        assert_eq!(calendar.rhythm(" 0151 "), DeliveryRhythm::Daily);
        assert!(
            calendar.is_delivery_day("0151", date(2026, 3, 3)),
            "daily delivery on a Tuesday"
        );
    }

    #[test]
    fn postal_prefixes_must_be_one_to_four_digits() {
        let mut calendar = PostalCalendar::default();
        for bad in ["", "01a", "12345", "ø1"] {
            assert_eq!(
                calendar.set(bad, DeliveryRhythm::Daily),
                Err(InvalidPostalPrefix(bad.to_owned()))
            );
        }
        assert_eq!(calendar, PostalCalendar::default());
    }

    #[test]
    fn a_postal_calendar_is_read_from_configuration_and_checked() {
        let json =
            r#"{"default_rhythm":"mon_wed_fri_in_odd_weeks","by_postal_code":{"01":"daily"}}"#;
        let calendar: PostalCalendar = serde_json::from_str(json).unwrap();
        assert_eq!(calendar.rhythm("0150"), DeliveryRhythm::Daily);
        assert_eq!(calendar.rhythm("5003"), DeliveryRhythm::MonWedFriInOddWeeks);
        assert_eq!(serde_json::to_string(&calendar).unwrap(), json);
        assert!(
            serde_json::from_str::<PostalCalendar>(r#"{"by_postal_code":{"oslo":"daily"}}"#)
                .is_err()
        );
        assert_eq!(
            serde_json::from_str::<PostalCalendar>("{}").unwrap(),
            PostalCalendar::default()
        );
    }

    // --- Opening hours ---

    #[test]
    fn a_weekday_service_is_open_in_its_hours_only() {
        let hours = weekdays_nine_to_three();
        assert!(hours.is_open(at("2026-03-10T09:00:00+01:00"), OSLO));
        assert!(hours.is_open(at("2026-03-10T14:59:00+01:00"), OSLO));
        assert!(!hours.is_open(at("2026-03-10T15:00:00+01:00"), OSLO));
        assert!(
            !hours.is_open(at("2026-03-08T12:00:00+01:00"), OSLO),
            "closed on Sunday"
        );
        assert!(
            !hours.is_open(at("2026-05-14T12:00:00+02:00"), OSLO),
            "closed on Ascension Day"
        );
    }

    #[test]
    fn on_sunday_evening_a_weekday_service_next_opens_monday_morning() {
        let hours = weekdays_nine_to_three();
        let sunday_evening = at("2026-03-08T20:00:00+01:00");
        let next = hours.next_open(sunday_evening, OSLO, TimeDelta::days(7));
        assert_eq!(
            next.map(in_oslo).as_deref(),
            Some("2026-03-09T09:00:00+01:00")
        );
    }

    #[test]
    fn an_open_service_is_open_now() {
        let hours = weekdays_nine_to_three();
        let tuesday = at("2026-03-10T10:00:00+01:00");
        assert_eq!(
            hours.next_open(tuesday, OSLO, TimeDelta::zero()),
            Some(tuesday)
        );
    }

    #[test]
    fn over_easter_a_weekday_service_next_opens_the_tuesday_after() {
        let hours = weekdays_nine_to_three();
        let maundy_thursday = at("2026-04-02T10:00:00+02:00");
        assert!(!hours.is_open(maundy_thursday, OSLO));
        let next = hours.next_open(maundy_thursday, OSLO, TimeDelta::days(14));
        assert_eq!(
            next.map(in_oslo).as_deref(),
            Some("2026-04-07T09:00:00+02:00")
        );
    }

    #[test]
    fn an_opening_beyond_the_horizon_is_not_found() {
        let hours = weekdays_nine_to_three();
        let sunday_evening = at("2026-03-08T20:00:00+01:00");
        assert_eq!(
            hours.next_open(sunday_evening, OSLO, TimeDelta::hours(12)),
            None
        );
        assert!(
            hours
                .next_open(sunday_evening, OSLO, TimeDelta::hours(13))
                .is_some()
        );
    }

    #[test]
    fn a_service_that_is_never_open_never_opens() {
        let hours = WeeklyHours::from_store(&OpeningHours::default());
        assert!(hours.is_never_open());
        assert_eq!(
            hours.next_open(at("2026-03-08T20:00:00+01:00"), OSLO, TimeDelta::days(365)),
            None
        );
    }

    #[test]
    fn a_service_with_a_lunch_break_reopens_after_it() {
        let hours = WeeklyHours::from_store(&OpeningHours {
            tue: vec![interval("12:00", "15:00"), interval("09:00", "11:00")],
            ..OpeningHours::default()
        });
        let lunch = at("2026-03-10T11:30:00+01:00");
        let next = hours.next_open(lunch, OSLO, TimeDelta::days(1));
        assert_eq!(
            next.map(in_oslo).as_deref(),
            Some("2026-03-10T12:00:00+01:00")
        );
    }

    #[test]
    fn unparsable_store_intervals_are_ignored() {
        let hours = WeeklyHours::from_store(&OpeningHours {
            mon: vec![
                interval("9am", "3pm"),
                interval("10:00", "25:00"),
                interval("10:00", "12:00"),
            ],
            tue: vec![interval("15:00", "09:00")],
            ..OpeningHours::default()
        });
        assert_eq!(hours.day(Weekday::Mon), &[(time(10, 0), time(12, 0))]);
        assert!(hours.day(Weekday::Tue).is_empty());
    }

    #[test]
    fn a_night_opening_skipped_by_the_spring_forward_jump_opens_when_the_clocks_jump() {
        let hours = WeeklyHours::new([
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![(time(2, 30), time(4, 0))],
        ]);
        let saturday = at("2026-03-28T12:00:00+01:00");
        let next = hours.next_open(saturday, OSLO, TimeDelta::days(2));
        assert_eq!(
            next.map(in_oslo).as_deref(),
            Some("2026-03-29T03:00:00+02:00")
        );
    }

    /// A day centre open Tuesday and Thursday 10–14: a relay request made Thursday at ten
    /// with 72 hours to run ends when the centre closes that Thursday, not on Sunday morning.
    #[test]
    fn a_relay_window_ends_at_the_last_closing_inside_it() {
        let tue_thu = WeeklyHours::new([
            vec![],
            vec![(time(10, 0), time(14, 0))],
            vec![],
            vec![(time(10, 0), time(14, 0))],
            vec![],
            vec![],
            vec![],
        ]);
        let thursday = at("2026-03-12T10:00:00+01:00");
        let end = tue_thu.last_closing(thursday, thursday + TimeDelta::hours(72), OSLO);
        assert_eq!(
            end.map(in_oslo).as_deref(),
            Some("2026-03-12T14:00:00+01:00")
        );
        // From Tuesday at ten, 72 hours reach Friday: Thursday's close is the last one.
        let tuesday = at("2026-03-10T10:00:00+01:00");
        let end = tue_thu.last_closing(tuesday, tuesday + TimeDelta::hours(72), OSLO);
        assert_eq!(
            end.map(in_oslo).as_deref(),
            Some("2026-03-12T14:00:00+01:00")
        );
        // No closing inside the span (Friday to Monday), or no hours at all: none.
        let friday = at("2026-03-13T10:00:00+01:00");
        assert_eq!(
            tue_thu.last_closing(friday, friday + TimeDelta::hours(72), OSLO),
            None
        );
        let never = WeeklyHours::default();
        assert_eq!(
            never.last_closing(friday, friday + TimeDelta::days(9), OSLO),
            None
        );
        // A public holiday is not a closing: Maundy Thursday 2026 is 2 April.
        let easter_tuesday = at("2026-03-31T10:00:00+02:00");
        let end = tue_thu.last_closing(easter_tuesday, easter_tuesday + TimeDelta::hours(72), OSLO);
        assert_eq!(
            end.map(in_oslo).as_deref(),
            Some("2026-03-31T14:00:00+02:00")
        );
    }
}
