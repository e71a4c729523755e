//! Office hours: a chat service's opening hours written as GMS's `office-hours` service
//! options (`_bh_regular<n>`, `_bh_add<n>`, `_holiday<n>`, `_effective_dates<n>`,
//! `_timezone`), evaluated in the office's own local time; and GMS's Calendar Service
//! answer (periods as instants) read into the same verdict. The relay turns local times
//! into instants (it holds the time zone database); the widget only shows the verdict.
//!
//! The rules, from GMS's option reference (cited in docs/protocol.md): a regular period
//! is `DDD-DDD HH:mm-HH:mm` (`Mon-Fri 9:00-17:00`; day ranges may wrap the week,
//! `Sat-Mon`; hours may cross midnight, `19:00-7:00`, the night then belonging to the day
//! it began); an added period is `YYYY-MM-dd HH:mm-HH:mm` or `MM-dd HH:mm-HH:mm` (every
//! year); effective dates are `YYYY-MM-dd` or `YYYY-MM-dd to YYYY-MM-dd`, and when any is
//! set the office is closed outside them. GMS documents no holiday syntax; `_holiday<n>`
//! as `YYYY-MM-dd` or `MM-dd` closes the periods that begin that day, as Genesys' own
//! tests write it. An added period opens even on a holiday (it is the more specific rule).
//! Every period is judged by the day it began.

use serde_json::Value;

/// Minutes in a day.
const DAY: u16 = 24 * 60;

/// How far ahead the next opening is looked for: a year and a bit covers every yearly rule.
const HORIZON_DAYS: i64 = 400;

/// A moment in the office's local time: days since 1970-01-01 and the minute of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Local {
    /// Days since 1970-01-01 (a local calendar date).
    pub day: i64,
    /// Minutes since local midnight, below 1440.
    pub minute: u16,
}

impl Local {
    /// The local date and time `year-month-day hour:minute`.
    pub fn new(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Local {
        Local {
            day: days_from_civil(year, month, day),
            minute: u16::from(hour) * 60 + u16::from(minute),
        }
    }

    /// The calendar date: year, month, day.
    pub fn date(self) -> (i32, u8, u8) {
        civil_from_days(self.day)
    }
}

/// A period in one day's hours: `from` to `to` in minutes; `to <= from` crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    from: u16,
    to: u16,
}

impl Span {
    /// Whether `minute` of the day the span starts on is inside it.
    fn covers_first_day(self, minute: u16) -> bool {
        minute >= self.from && (self.to <= self.from || minute < self.to)
    }

    /// Whether `minute` of the next day is inside it (a span crossing midnight).
    fn covers_next_day(self, minute: u16) -> bool {
        self.to <= self.from && minute < self.to
    }
}

/// A date an option names: one date, or a month and day every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Date {
    On(i64),
    Yearly(u8, u8),
}

impl Date {
    fn is(self, day: i64) -> bool {
        match self {
            Date::On(on) => on == day,
            Date::Yearly(month, of_month) => {
                let (_, m, d) = civil_from_days(day);
                (m, d) == (month, of_month)
            }
        }
    }
}

/// A service's opening hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// `_timezone`: a Java/IANA zone name (`Europe/Paris`); the relay checks it exists.
    pub timezone: Option<String>,
    /// `_bh_regular<n>`: the weekdays (Monday first) and their hours.
    regular: Vec<([bool; 7], Span)>,
    /// `_bh_add<n>`.
    added: Vec<(Date, Span)>,
    /// `_holiday<n>`.
    holidays: Vec<Date>,
    /// `_effective_dates<n>`: first and last day, inclusive.
    effective: Vec<(i64, i64)>,
}

/// An option that does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOption {
    /// The option's name.
    pub key: String,
    /// Its value.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

impl std::fmt::Display for BadOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "office hours option {}={:?}: expected {}", self.key, self.value, self.expected)
    }
}

impl std::error::Error for BadOption {}

impl Schedule {
    /// Reads GMS `office-hours` options; other options (`_service`, `_type`, `_ttl`, …)
    /// and empty values are ignored.
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Schedule, BadOption> {
        let mut schedule = Schedule::default();
        for (key, value) in options {
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                continue;
            }
            let bad =
                |expected| BadOption { key: key.to_owned(), value: value.to_owned(), expected };
            if key.starts_with("_bh_regular") {
                let (days, span) =
                    value.split_once(char::is_whitespace).ok_or_else(|| bad(REGULAR))?;
                let days = weekdays(days).ok_or_else(|| bad(REGULAR))?;
                schedule.regular.push((days, span_of(span.trim()).ok_or_else(|| bad(REGULAR))?));
            } else if key.starts_with("_bh_add") {
                let (date, span) =
                    value.split_once(char::is_whitespace).ok_or_else(|| bad(ADDED))?;
                let date = date_of(date).ok_or_else(|| bad(ADDED))?;
                schedule.added.push((date, span_of(span.trim()).ok_or_else(|| bad(ADDED))?));
            } else if key.starts_with("_holiday") {
                schedule.holidays.push(date_of(value).ok_or_else(|| bad(HOLIDAY))?);
            } else if key.starts_with("_effective_dates") {
                let (first, last) = value.split_once(" to ").unwrap_or((value, value));
                let day = |text: &str| match date_of(text.trim()) {
                    Some(Date::On(day)) => Some(day),
                    _ => None,
                };
                let range = day(first).zip(day(last)).filter(|(a, b)| a <= b);
                schedule.effective.push(range.ok_or_else(|| bad(EFFECTIVE))?);
            } else if key == "_timezone" {
                schedule.timezone = Some(value.to_owned());
            }
        }
        Ok(schedule)
    }

    /// Whether the office is open at `at`. A period belongs to the day it began (a night
    /// into Saturday is Friday's), so that day's effective dates and holidays rule it.
    pub fn is_open(&self, at: Local) -> bool {
        let Local { day, minute } = at;
        let effective = |d: i64| {
            self.effective.is_empty() || self.effective.iter().any(|&(a, b)| a <= d && d <= b)
        };
        let holiday = |d: i64| self.holidays.iter().any(|date| date.is(d));
        // Started on `start` (today, or yesterday for the night's end), and covering now.
        let from = |start: i64, covers: bool| covers && effective(start);
        let added = self.added.iter().any(|&(date, span)| {
            from(day, date.is(day) && span.covers_first_day(minute))
                || from(day - 1, date.is(day - 1) && span.covers_next_day(minute))
        });
        added
            || self.regular.iter().any(|&(days, span)| {
                from(day, days[weekday(day)] && !holiday(day) && span.covers_first_day(minute))
                    || from(
                        day - 1,
                        days[weekday(day - 1)] && !holiday(day - 1) && span.covers_next_day(minute),
                    )
            })
    }

    /// The first moment after `at` the office opens, if it does within a year: openings
    /// happen only where a period starts or a day begins (a holiday or an effective range
    /// ending), so only those moments are tried.
    pub fn next_opening(&self, at: Local) -> Option<Local> {
        let mut starts: Vec<u16> = std::iter::once(0)
            .chain(self.regular.iter().map(|(_, span)| span.from))
            .chain(self.added.iter().map(|(_, span)| span.from))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        // Outside every effective range nothing opens before the next one begins, however
        // far ahead that is.
        let outside = !self.effective.is_empty()
            && !self.effective.iter().any(|&(a, b)| a <= at.day && at.day <= b);
        let first = match self.effective.iter().map(|&(a, _)| a).filter(|&a| a > at.day).min() {
            Some(next_range) if outside => next_range,
            _ => at.day,
        };
        (first..first + HORIZON_DAYS)
            .flat_map(|day| starts.iter().map(move |&minute| Local { day, minute }))
            .filter(|&candidate| candidate > at)
            .find(|&candidate| self.is_open(candidate) && !self.is_open(before(candidate)))
    }
}

/// The minute before `at`.
fn before(at: Local) -> Local {
    match at.minute {
        0 => Local { day: at.day - 1, minute: DAY - 1 },
        minute => Local { day: at.day, minute: minute - 1 },
    }
}

const REGULAR: &str = "DDD-DDD HH:mm-HH:mm, as Mon-Fri 9:00-17:00";
const ADDED: &str = "YYYY-MM-dd HH:mm-HH:mm or MM-dd HH:mm-HH:mm";
const HOLIDAY: &str = "YYYY-MM-dd or MM-dd";
const EFFECTIVE: &str = "YYYY-MM-dd or YYYY-MM-dd to YYYY-MM-dd";

/// `Mon-Fri`, `Sat-Mon`, `Sun`, `Mon,Wed-Thu`: the days named, Monday first.
fn weekdays(text: &str) -> Option<[bool; 7]> {
    let mut days = [false; 7];
    for part in text.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last) = (day_index(first)?, day_index(last)?);
        let mut day = first;
        loop {
            days[day] = true;
            if day == last {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Some(days)
}

/// A day's three-letter name or its full name, in any case.
fn day_index(name: &str) -> Option<usize> {
    const NAMES: [&str; 7] =
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let name = name.trim().to_ascii_lowercase();
    NAMES.iter().position(|full| name == *full || (name.len() == 3 && full.starts_with(&name)))
}

/// `9:00-17:00`, `19:00-7:00`, `00:00-24:00` (the whole day).
fn span_of(text: &str) -> Option<Span> {
    let (from, to) = text.split_once('-')?;
    let (from, to) = (minute_of(from.trim())?, minute_of(to.trim())?);
    // 24:00 ends a day (the next midnight); it starts nothing. A period of no length is a
    // mistake, except the whole day, which starts and ends at midnight.
    let whole_day = from == 0 && to == DAY;
    let to = to % DAY;
    (from < DAY && (from != to || whole_day)).then_some(Span { from, to })
}

/// `H:mm` or `HH:mm`, up to `24:00`.
fn minute_of(text: &str) -> Option<u16> {
    let (hour, minute) = text.split_once(':')?;
    let (hour, minute): (u16, u16) = (number(hour, 1, 2)?, number(minute, 2, 2)?);
    (hour < 24 && minute < 60 || hour == 24 && minute == 0).then_some(hour * 60 + minute)
}

/// `YYYY-MM-dd` or `MM-dd`.
fn date_of(text: &str) -> Option<Date> {
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [year, month, day] => {
            let (year, month, day) =
                (number(year, 4, 4)?, number(month, 1, 2)?, number(day, 1, 2)?);
            let (year, month, day) =
                (i32::from(year), u8::try_from(month).ok()?, u8::try_from(day).ok()?);
            valid(year, month, day).then(|| Date::On(days_from_civil(year, month, day)))
        }
        [month, day] => {
            let (month, day) =
                (u8::try_from(number(month, 1, 2)?).ok()?, u8::try_from(number(day, 1, 2)?).ok()?);
            valid(2000, month, day).then_some(Date::Yearly(month, day))
        }
        _ => None,
    }
}

/// Decimal digits only, `min..=max` of them.
fn number(text: &str, min: usize, max: usize) -> Option<u16> {
    let digits = (min..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

fn valid(year: i32, month: u8, day: u8) -> bool {
    (1..=12).contains(&month)
        && day >= 1
        && civil_from_days(days_from_civil(year, month, day)) == (year, month, day)
}

/// Monday 0 … Sunday 6 (1970-01-01 was a Thursday).
fn weekday(day: i64) -> usize {
    usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let of_era = year - era * 400;
    let month = i64::from(month);
    let of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let of_era_days = of_era * 365 + of_era / 4 - of_era / 100 + of_year;
    era * 146_097 + of_era_days - 719_468
}

/// The date of a day number: the inverse of `days_from_civil`.
pub fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let of_era = z - era * 146_097;
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
    let of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * of_year + 2) / 153;
    let day = of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let small = |n: i64| u8::try_from(n).unwrap_or(0);
    (i32::try_from(year).unwrap_or(i32::MAX), small(month), small(day))
}

/// An instant in milliseconds since the epoch from ISO 8601 with a zone
/// (`2026-12-07T09:00:00Z`, `…:00.000+01:00`); None for anything else.
pub fn instant_ms(text: &str) -> Option<i64> {
    let (date, rest) = text.trim().split_once(['T', ' '])?;
    let Some(Date::On(day)) = date_of(date) else { return None };
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (time, zone) = rest.split_at(zone_at);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut fields = clock.split(':');
    let hour = i64::from(number(fields.next()?, 2, 2)?);
    let minute = i64::from(number(fields.next()?, 2, 2)?);
    let second = fields.next().map_or(Some(0), |s| number(s, 2, 2)).map(i64::from)?;
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis = match fraction {
        "" => 0,
        digits if digits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{:0<3}", &digits[..digits.len().min(3)]).parse::<i64>().ok()?
        }
        _ => return None,
    };
    let offset = match zone {
        "Z" | "z" => 0,
        signed => {
            let (sign, rest) = signed.split_at(1);
            let (h, m) = rest.split_once(':').unwrap_or((rest.get(..2)?, rest.get(2..)?));
            let minutes = i64::from(number(h, 2, 2)?) * 60 + i64::from(number(m, 2, 2)?);
            if sign == "-" { -minutes } else { minutes }
        }
    };
    Some(((day * 86_400 + hour * 3600 + minute * 60 + second - offset * 60) * 1000) + millis)
}

/// An instant in milliseconds since the epoch as ISO 8601 in UTC, to the second
/// (`2026-12-07T09:00:00Z`), as GMS's Calendar Service reads and writes them.
pub fn iso_instant(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// The periods a GMS Calendar Service answer lists, as `[start, end)` milliseconds.
/// GMS documents only that the answer lists periods (none: closed) and carries `error`;
/// the shape is read tolerantly: any object, at any depth, with a start and an end
/// instant under the names such answers use. None when the answer reports an error.
pub fn calendar_periods(answer: &Value) -> Option<Vec<(i64, i64)>> {
    if answer.get("error").is_some_and(|e| !e.is_null()) {
        return None;
    }
    let mut periods = Vec::new();
    collect_periods(answer, &mut periods, 0);
    periods.sort_unstable();
    Some(periods)
}

fn collect_periods(value: &Value, periods: &mut Vec<(i64, i64)>, depth: usize) {
    const NAMES: [(&str, &str); 4] =
        [("start", "end"), ("startTime", "endTime"), ("from", "to"), ("open", "close")];
    if depth > 8 {
        return;
    }
    match value {
        Value::Object(fields) => {
            let instant = |name| fields.get(name).and_then(Value::as_str).and_then(instant_ms);
            let found = NAMES.iter().find_map(|&(start, end)| instant(start).zip(instant(end)));
            match found {
                Some((start, end)) if start < end => periods.push((start, end)),
                Some(_) => {}
                None => fields.values().for_each(|v| collect_periods(v, periods, depth + 1)),
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_periods(v, periods, depth + 1)),
        _ => {}
    }
}

/// The verdict from periods as instants: open when one covers `now`, otherwise the
/// earliest start after it.
pub fn from_periods(periods: &[(i64, i64)], now_ms: i64) -> (bool, Option<i64>) {
    let open = periods.iter().any(|&(start, end)| start <= now_ms && now_ms < end);
    let next = periods.iter().map(|&(start, _)| start).filter(|&start| start > now_ms).min();
    (open, if open { None } else { next })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Local, Schedule, calendar_periods, from_periods, instant_ms, iso_instant};

    fn schedule(options: &[(&str, &str)]) -> Schedule {
        Schedule::from_options(options.iter().copied()).expect("options read")
    }

    #[test]
    fn regular_hours_are_open_inside_and_closed_outside() {
        // 2026-12-07 is a Monday.
        let s = schedule(&[("_bh_regular1", "Mon-Fri 9:00-17:00"), ("_timezone", "Europe/Paris")]);
        assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
        assert!(s.is_open(Local::new(2026, 12, 7, 9, 0)));
        assert!(s.is_open(Local::new(2026, 12, 11, 16, 59)));
        assert!(!s.is_open(Local::new(2026, 12, 7, 17, 0)));
        assert!(!s.is_open(Local::new(2026, 12, 7, 8, 59)));
        assert!(!s.is_open(Local::new(2026, 12, 12, 10, 0)), "Saturday");
        // Friday evening: next Monday 9:00.
        let next = s.next_opening(Local::new(2026, 12, 11, 22, 0));
        assert_eq!(next, Some(Local::new(2026, 12, 14, 9, 0)));
        assert_eq!(
            s.next_opening(Local::new(2026, 12, 7, 8, 0)),
            Some(Local::new(2026, 12, 7, 9, 0))
        );
    }

    #[test]
    fn wrapping_days_and_nights_belong_to_the_day_they_began() {
        let s = schedule(&[("_bh_regular1", "Sat-Mon 19:00-7:00")]);
        assert!(s.is_open(Local::new(2026, 12, 12, 23, 0)), "Saturday night");
        assert!(s.is_open(Local::new(2026, 12, 13, 6, 59)), "Sunday early, from Saturday");
        assert!(s.is_open(Local::new(2026, 12, 15, 6, 0)), "Tuesday early, from Monday");
        assert!(!s.is_open(Local::new(2026, 12, 16, 6, 0)), "Wednesday early");
        assert!(!s.is_open(Local::new(2026, 12, 12, 6, 0)), "Saturday early, Friday is closed");
        let always = schedule(&[("_bh_regular1", "Mon-Sun 00:00-24:00")]);
        assert!(always.is_open(Local::new(2026, 12, 9, 0, 0)));
        assert!(always.is_open(Local::new(2026, 12, 9, 23, 59)));
    }

    #[test]
    fn holidays_close_added_periods_open_and_effective_dates_bound() {
        let s = schedule(&[
            ("_bh_regular1", "Mon-Fri 9:00-17:00"),
            ("_holiday1", "12-25"),
            ("_holiday2", "2026-12-24"),
            ("_bh_add1", "2026-12-24 10:00-12:00"),
            ("_bh_add2", "12-27 10:00-14:00"),
        ]);
        assert!(!s.is_open(Local::new(2026, 12, 25, 10, 0)), "a yearly holiday");
        assert!(s.is_open(Local::new(2027, 12, 24, 10, 0)), "a dated holiday is one year's");
        assert!(s.is_open(Local::new(2026, 12, 24, 11, 0)), "added on a holiday");
        assert!(!s.is_open(Local::new(2026, 12, 24, 13, 0)), "the holiday outside the addition");
        assert!(s.is_open(Local::new(2026, 12, 27, 13, 0)), "added on a Sunday");
        assert!(s.is_open(Local::new(2027, 12, 27, 13, 0)), "every year");
        // Thursday 24th after noon: the added Sunday comes before Monday.
        assert_eq!(
            s.next_opening(Local::new(2026, 12, 24, 12, 0)),
            Some(Local::new(2026, 12, 27, 10, 0))
        );

        let bounded = schedule(&[
            ("_bh_regular1", "Mon-Fri 9:00-17:00"),
            ("_effective_dates1", "2027-01-04 to 2027-01-08"),
        ]);
        assert!(!bounded.is_open(Local::new(2026, 12, 7, 10, 0)));
        assert!(bounded.is_open(Local::new(2027, 1, 4, 10, 0)));
        assert!(!bounded.is_open(Local::new(2027, 1, 11, 10, 0)));
        assert_eq!(
            bounded.next_opening(Local::new(2026, 12, 7, 10, 0)),
            Some(Local::new(2027, 1, 4, 9, 0))
        );
        assert_eq!(bounded.next_opening(Local::new(2027, 1, 8, 18, 0)), None, "never again");
        let far = schedule(&[
            ("_bh_regular1", "Mon-Fri 9:00-17:00"),
            ("_effective_dates1", "2099-01-05 to 2099-01-09"),
        ]);
        assert_eq!(
            far.next_opening(Local::new(2026, 12, 7, 10, 0)),
            Some(Local::new(2099, 1, 5, 9, 0))
        );
    }

    #[test]
    fn a_night_belongs_to_the_day_it_began_holidays_and_effective_dates_included() {
        // Friday 2026-12-25 is a holiday: its night is closed, Thursday's night is not.
        let s = schedule(&[("_bh_regular1", "Mon-Fri 22:00-6:00"), ("_holiday1", "12-25")]);
        assert!(s.is_open(Local::new(2026, 12, 25, 3, 0)), "Thursday's night, into the holiday");
        assert!(!s.is_open(Local::new(2026, 12, 25, 23, 0)), "the holiday's own night");
        assert!(!s.is_open(Local::new(2026, 12, 26, 3, 0)), "the holiday's night, Saturday");
        assert_eq!(
            s.next_opening(Local::new(2026, 12, 25, 12, 0)),
            Some(Local::new(2026, 12, 28, 22, 0))
        );
        let full = schedule(&[("_bh_regular1", "monday-FRIDAY 9:00-17:00")]);
        assert!(full.is_open(Local::new(2026, 12, 7, 10, 0)));
        // The night before an effective range began outside it.
        let bounded = schedule(&[
            ("_bh_regular1", "Mon-Sun 22:00-6:00"),
            ("_effective_dates1", "2027-01-04 to 2027-01-08"),
        ]);
        assert!(!bounded.is_open(Local::new(2027, 1, 4, 3, 0)));
        assert!(bounded.is_open(Local::new(2027, 1, 9, 3, 0)), "the last day's night");
    }

    #[test]
    fn an_opening_is_a_change_from_closed_to_open() {
        // Two periods that touch are one opening.
        let s = schedule(&[
            ("_bh_regular1", "Mon-Fri 9:00-12:00"),
            ("_bh_regular2", "Mon-Fri 12:00-17:00"),
        ]);
        assert_eq!(
            s.next_opening(Local::new(2026, 12, 7, 11, 0)),
            Some(Local::new(2026, 12, 8, 9, 0))
        );
        assert_eq!(Schedule::default().next_opening(Local::new(2026, 12, 7, 11, 0)), None);
    }

    #[test]
    fn options_that_do_not_read_are_named_and_the_rest_ignored() {
        for (key, value) in [
            ("_bh_regular1", "Mon-Fri"),
            ("_bh_regular1", "Mox-Fri 9:00-17:00"),
            ("_bh_regular1", "Mon-Fri 9:00-25:00"),
            ("_bh_regular1", "Mon-Fri 9:00-9:00"),
            ("_bh_add1", "2026-02-30 10:00-12:00"),
            ("_holiday1", "25/12"),
            ("_effective_dates1", "12-01 to 12-31"),
            ("_effective_dates1", "2027-01-08 to 2027-01-04"),
            ("_bh_regular1", "Monkey-Fri 9:00-17:00"),
            ("_bh_regular1", "Mon-Tue-Wed 9:00-17:00"),
        ] {
            let error = Schedule::from_options([(key, value)]).expect_err(value);
            assert!(error.to_string().contains(key), "{error}");
        }
        let s = schedule(&[("_service", "office-hours"), ("_ttl", "30"), ("_bh_add1", "")]);
        assert_eq!(s, Schedule::default());
    }

    #[test]
    fn instants_read_with_their_zone() {
        assert_eq!(instant_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(instant_ms("1970-01-01T01:00:00.250+01:00"), Some(250));
        assert_eq!(instant_ms("2026-12-07T09:00:00.000Z"), Some(1_796_634_000_000));
        assert_eq!(instant_ms("2026-12-07T09:00:00"), None, "no zone");
        assert_eq!(iso_instant(1_796_634_000_999), "2026-12-07T09:00:00Z");
        assert_eq!(iso_instant(-1000), "1969-12-31T23:59:59Z");
        for ms in [0, 951_782_400_000, 4_102_444_799_000] {
            assert_eq!(instant_ms(&iso_instant(ms)), Some(ms));
        }
        assert_eq!(instant_ms("2026-12-07T9:00:00Z"), None);
        assert_eq!(instant_ms("2026-13-07T09:00:00Z"), None);
    }

    #[test]
    fn a_calendar_answer_is_read_whatever_its_nesting() {
        let at = |t: &str| instant_ms(t).expect("instant");
        let answer = json!({"error": null, "days": [
            {"date": "2026-12-07", "periods": [{"start": "2026-12-07T08:00:00Z", "end": "2026-12-07T16:00:00Z"}]},
            {"date": "2026-12-08", "periods": [{"start": "2026-12-08T08:00:00.000+00:00", "end": "2026-12-08T16:00:00.000Z"}]},
        ]});
        let periods = calendar_periods(&answer).expect("periods");
        assert_eq!(periods.len(), 2);
        assert_eq!(from_periods(&periods, at("2026-12-07T09:00:00Z")), (true, None));
        assert_eq!(
            from_periods(&periods, at("2026-12-07T17:00:00Z")),
            (false, Some(at("2026-12-08T08:00:00Z")))
        );
        let flat =
            json!([{"startTime": "2026-12-07T08:00:00Z", "endTime": "2026-12-07T16:00:00Z"}]);
        assert_eq!(calendar_periods(&flat).map(|p| p.len()), Some(1));
        assert_eq!(calendar_periods(&json!({"error": "no such service"})), None);
        assert_eq!(calendar_periods(&json!({"error": null, "periods": []})), Some(Vec::new()));
        assert_eq!(from_periods(&[], 0), (false, None));
    }
}
