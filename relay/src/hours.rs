//! Office hours as the relay answers them (`GET /v1/hours/{service}`): a chat service's own
//! schedule from `--office-hours FILE` (GMS's `office-hours` options, evaluated by
//! `shared::hours` in the schedule's time zone), or GMS's Calendar Service, asked at most
//! once a minute per service however many visitors open the chat.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use shared::hours::{Local, Schedule, calendar_periods, from_periods};
use shared::relay_api::OfficeHours;

use crate::gms::Gms;

/// How long GMS's answer stands for a service.
const GMS_FOR: Duration = Duration::from_secs(60);
/// How many days ahead GMS is asked for periods: the next opening after a long weekend
/// or a holiday week.
const GMS_DAYS: u32 = 8;

/// GMS's answer: the periods as instants, or why there are none.
type Answer = Result<Vec<(i64, i64)>, String>;

/// GMS's office hours for one service: not known, being asked (every visitor meanwhile
/// waits for that one request), or answered at an instant.
enum Slot {
    Empty,
    Asking(Shared<BoxFuture<'static, Answer>>),
    Answered(Instant, Answer),
}

/// Where one chat service's hours come from.
enum Source {
    /// The file's own schedule.
    Own { schedule: Schedule, zone: TimeZone },
    /// GMS's office-hours service of this name.
    Gms { name: String, slot: Mutex<Slot> },
}

/// Every chat service's office hours; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Hours {
    services: Arc<HashMap<String, Source>>,
}

/// What the relay can say of a service's hours.
pub(crate) enum Verdict {
    /// The relay knows no hours for it.
    Unknown,
    /// GMS answered nothing usable (logged where it was asked).
    Unanswered,
    Known(OfficeHours),
}

impl Hours {
    /// The hours in `path` (none without one); a file that does not read stops the relay.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Hours> {
        let Some(path) = path else { return Ok(Hours::default()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --office-hours {}", path.display()))?;
        let services =
            read(&text).with_context(|| format!("in --office-hours {}", path.display()))?;
        Ok(Hours { services: Arc::new(services) })
    }

    /// The chat services with hours.
    pub(crate) fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// Whether `service` is open now, and if not when it next opens.
    pub(crate) async fn verdict(&self, service: &str, gms: &Gms) -> Verdict {
        let now = Timestamp::now();
        match self.services.get(service) {
            None => Verdict::Unknown,
            Some(Source::Own { schedule, zone }) => {
                Verdict::Known(own_verdict(schedule, zone, now))
            }
            Some(Source::Gms { name, slot }) => match gms_periods(name, slot, gms, now).await {
                Ok(periods) => {
                    let (open, next) = from_periods(&periods, now.as_millisecond());
                    let next_open = next.and_then(|ms| u64::try_from(ms).ok());
                    Verdict::Known(OfficeHours { open, next_open })
                }
                Err(_) => Verdict::Unanswered,
            },
        }
    }
}

/// GMS's periods for the office-hours service `name`: its answer of the last minute, the
/// request already on its way, or a new one. Nothing is locked across the request.
async fn gms_periods(name: &str, slot: &Mutex<Slot>, gms: &Gms, now: Timestamp) -> Answer {
    let lock = || slot.lock().unwrap_or_else(PoisonError::into_inner);
    let asking = {
        let mut slot = lock();
        match &*slot {
            Slot::Answered(at, answer) if at.elapsed() < GMS_FOR => return answer.clone(),
            Slot::Asking(asking) => asking.clone(),
            Slot::Answered(..) | Slot::Empty => {
                let start = shared::hours::iso_instant(now.as_millisecond());
                let path = format!(
                    "/genesys/1/service/{}?start={start}&number-of-days={GMS_DAYS}",
                    shared::form::encode_path_segment(name)
                );
                let (gms, name) = (gms.clone(), name.to_owned());
                let asking = async move {
                    let answer =
                        gms.get_json(&path, "office_hours").await.map_err(|e| e.to_string())?;
                    calendar_periods(&answer)
                        .ok_or_else(|| "the answer reports an error".to_owned())
                }
                .map(move |answer: Answer| {
                    if let Err(why) = &answer {
                        tracing::warn!(service = name, why, "GMS gave no office hours");
                    }
                    answer
                })
                .boxed()
                .shared();
                *slot = Slot::Asking(asking.clone());
                asking
            }
        }
    };
    let answer = asking.await;
    let mut slot = lock();
    if matches!(*slot, Slot::Asking(_)) {
        // An answer stands for a minute; a failure not at all (the next visitor asks
        // again), so a request left unfinished by visitors who went away costs nothing.
        *slot = match &answer {
            Ok(_) => Slot::Answered(Instant::now(), answer.clone()),
            Err(_) => Slot::Empty,
        };
    }
    answer
}

/// A schedule's verdict at `now`, read in its own time zone.
fn own_verdict(schedule: &Schedule, zone: &TimeZone, now: Timestamp) -> OfficeHours {
    let local = now.to_zoned_datetime(zone.clone()).datetime();
    let at = Local::new(
        i32::from(local.year()),
        u8::try_from(local.month()).unwrap_or(1),
        u8::try_from(local.day()).unwrap_or(1),
        u8::try_from(local.hour()).unwrap_or(0),
        u8::try_from(local.minute()).unwrap_or(0),
    );
    if schedule.is_open(at) {
        return OfficeHours { open: true, next_open: None };
    }
    let next_open = schedule.next_opening(at).and_then(|local| instant(local, zone));
    OfficeHours { open: false, next_open }
}

/// A local time as an instant in milliseconds; a time a clock change skips is read as
/// the clocks do (`compatible`: after the gap).
fn instant(local: Local, zone: &TimeZone) -> Option<u64> {
    let (year, month, day) = local.date();
    let date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let hour = i8::try_from(local.minute / 60).ok()?;
    let minute = i8::try_from(local.minute % 60).ok()?;
    let zoned = date.at(hour, minute, 0, 0).to_zoned_datetime(zone.clone()).ok()?;
    u64::try_from(zoned.timestamp().as_millisecond()).ok()
}

/// The file: a section per chat service, `[service]`, holding GMS's `office-hours` option
/// lines (`_bh_regular1 = Mon-Fri 9:00-17:00`, `_timezone = Europe/Paris`, …), or
/// `gms = <name>` to ask GMS's own office-hours service of that name. `#` and `;` start
/// comments.
fn read(text: &str) -> anyhow::Result<HashMap<String, Source>> {
    let mut sections: Vec<(String, Vec<(&str, &str)>)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_owned(), Vec::new()));
            continue;
        }
        let (key, value) = line.split_once('=').with_context(|| {
            format!("line {}: expected `name = value` or `[service]`", number + 1)
        })?;
        let (_, options) = sections
            .last_mut()
            .with_context(|| format!("line {}: an option before any `[service]`", number + 1))?;
        options.push((key.trim(), value.trim()));
    }
    let mut services = HashMap::new();
    for (service, options) in sections {
        let gms = options.iter().find(|(key, _)| *key == "gms").map(|(_, name)| *name);
        let source = match gms {
            Some(name) => Source::Gms { name: name.to_owned(), slot: Mutex::new(Slot::Empty) },
            None => {
                let schedule = Schedule::from_options(options.iter().copied())
                    .with_context(|| format!("[{service}]"))?;
                let name = schedule.timezone.clone().with_context(|| {
                    format!("[{service}]: no _timezone (a zone such as Europe/Paris)")
                })?;
                let zone = TimeZone::get(&name).with_context(|| {
                    format!("[{service}]: _timezone {name:?} is not a known zone")
                })?;
                Source::Own { schedule, zone }
            }
        };
        anyhow::ensure!(
            services.insert(service.clone(), source).is_none(),
            "[{service}] appears twice"
        );
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use jiff::tz::TimeZone;
    use shared::hours::Schedule;
    use shared::relay_api::OfficeHours;

    use super::{Source, own_verdict, read};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn ms(text: &str) -> Option<u64> {
        u64::try_from(at(text).as_millisecond()).ok()
    }

    #[test]
    fn a_schedule_is_read_in_its_own_zone_across_a_clock_change() {
        let schedule =
            Schedule::from_options([("_bh_regular1", "Mon-Fri 9:00-17:00")]).expect("options");
        let paris = TimeZone::get("Europe/Paris").expect("zone");
        // Monday 2026-12-07, 08:30 UTC is 09:30 in Paris (UTC+1).
        let open = own_verdict(&schedule, &paris, at("2026-12-07T08:30:00Z"));
        assert_eq!(open, OfficeHours { open: true, next_open: None });
        // Friday 2027-03-26 evening: next opening Monday 29th at 9:00 summer time (UTC+2),
        // the clocks having changed on the Sunday.
        let closed = own_verdict(&schedule, &paris, at("2027-03-26T18:00:00Z"));
        assert_eq!(closed, OfficeHours { open: false, next_open: ms("2027-03-29T07:00:00Z") });
    }

    #[test]
    fn the_file_names_each_service_and_what_does_not_read_is_said() {
        let services = read(
            "# hours\n[web-chat]\n_bh_regular1 = Mon-Fri 9:00-17:00\n_timezone = Europe/Paris\n\n\
             [vip]\ngms = business-hours\n",
        )
        .expect("read");
        assert!(matches!(services.get("web-chat"), Some(Source::Own { .. })));
        assert!(
            matches!(services.get("vip"), Some(Source::Gms { name, .. }) if name == "business-hours")
        );
        for (bad, says) in [
            ("_bh_regular1 = Mon-Fri 9:00-17:00\n", "before any"),
            ("[a]\n_bh_regular1 = Mon-Fri 9:00-17:00\n", "no _timezone"),
            ("[a]\n_timezone = Mars/Olympus\n", "not a known zone"),
            ("[a]\n_bh_regular1 = Mon-Fri\n_timezone = UTC\n", "_bh_regular1"),
            ("[a]\njust words\n", "line 2"),
            ("[a]\ngms = x\n[a]\ngms = y\n", "twice"),
        ] {
            let error = read(bad).err().map(|e| format!("{e:#}")).unwrap_or_default();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }
}
