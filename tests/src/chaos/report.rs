//! The run's figures and verdict, printed as one table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Everything a run measured.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub minutes: f64,
    pub visitors: usize,
    pub browsers: usize,
    pub relays: usize,
    pub store: super::schedule::Store,
    /// The relays were in proxy mode.
    pub proxy: bool,
    /// Faults done, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Transcript events shown to headless visitors (each visitor counts its own).
    pub events_delivered: u64,
    /// Transcript lines the widgets in Chromium show at the end.
    pub browser_lines: u64,
    pub agent_lines: u64,
    /// Agent lines GMS refused because the chat's Chat Server was down or restarted.
    pub agent_refused: u64,
    pub visitor_lines: u64,
    /// Tabs the headless visitors opened (the first visit and every return).
    pub tabs: u64,
    /// Visitor lines that failed (the retry policy gave up) and were sent again.
    pub visitor_retries: u64,
    /// Transcript events a visitor never saw.
    pub gaps: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Events shown with content GMS does not have.
    pub wrong: u64,
    /// Visitors that did not catch up within the limit after the last fault.
    pub stuck: Vec<String>,
    /// Catch-up after a fault, for visitors behind when it healed (ms).
    pub catch_up_ms: Percentiles,
    /// Catch-up after the last fault, every visitor back (ms).
    pub final_catch_up_ms: Percentiles,
    pub pushes_sent: u64,
    pub pushes_resent: u64,
    /// Pushes whose resends ran out unacknowledged.
    pub pushes_expired: u64,
    /// Pushes still unacknowledged at the end.
    pub pushes_pending: u64,
    /// `ended` frames for chats that were still running: the relay forgot them.
    pub forgotten: u64,
    pub gms_requests: u64,
    /// The same by Chat API operation (`refresh` includes the relay's pings).
    pub gms_requests_by_operation: BTreeMap<String, u64>,
    pub gms_requests_per_visitor_hour: f64,
    /// What the events of the run explain (see RELIABILITY.md), per visitor-hour.
    pub gms_budget_per_visitor_hour: f64,
    /// Relay starts that ended with the process exiting (started again after 2 s).
    pub relay_failed_starts: u64,
    pub violations: Vec<String>,
    /// Every fault with its time from the start.
    pub fault_log: Vec<String>,
}

/// p50, p99 and max of some durations, in milliseconds.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(durations: &[Duration]) -> Percentiles {
        let mut ms: Vec<u64> =
            durations.iter().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).collect();
        ms.sort_unstable();
        let at = |q: f64| {
            let rank = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
            ms.get(rank).copied().unwrap_or(0)
        };
        Percentiles { samples: ms.len(), p50: at(0.50), p99: at(0.99), max: at(1.0) }
    }
}

impl Report {
    /// The table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mode = match self.store {
            super::schedule::Store::Disk => "on its data directory",
            super::schedule::Store::Server => "on Redis",
            super::schedule::Store::Sentinel => "on Redis Sentinel",
            super::schedule::Store::Cluster => "on a Redis Cluster",
        };
        let _ = writeln!(
            out,
            "chaos: seed {}, {:.1} min, {} headless visitors + {} browsers, {} relay(s) {mode}{}",
            self.seed,
            self.minutes,
            self.visitors,
            self.browsers,
            self.relays,
            if self.proxy { ", in proxy mode" } else { "" }
        );
        let rows: Vec<(String, String)> = self
            .faults
            .iter()
            .map(|(kind, n)| (format!("fault: {kind}"), n.to_string()))
            .chain([
                ("faults in all".to_owned(), self.faults.values().sum::<u64>().to_string()),
                (
                    "agent lines / visitor lines".to_owned(),
                    format!("{} / {}", self.agent_lines, self.visitor_lines),
                ),
                (
                    "agent lines refused (Chat Server down)".to_owned(),
                    self.agent_refused.to_string(),
                ),
                (
                    "visitor lines failed and sent again".to_owned(),
                    self.visitor_retries.to_string(),
                ),
                ("tabs opened (visits and returns)".to_owned(), self.tabs.to_string()),
                ("events delivered (headless)".to_owned(), self.events_delivered.to_string()),
                (
                    "lines shown by the widgets in Chromium".to_owned(),
                    self.browser_lines.to_string(),
                ),
                ("gaps (events never shown)".to_owned(), self.gaps.to_string()),
                ("duplicates".to_owned(), self.duplicates.to_string()),
                ("out of order".to_owned(), self.out_of_order.to_string()),
                ("content differs from GMS".to_owned(), self.wrong.to_string()),
                ("stuck chats".to_owned(), self.stuck.len().to_string()),
                ("catch-up after a fault p50 / p99 / max".to_owned(), self.catch_up_ms.to_string()),
                (
                    "catch-up after the last fault p50 / p99 / max".to_owned(),
                    self.final_catch_up_ms.to_string(),
                ),
                (
                    "pushes sent / resent".to_owned(),
                    format!("{} / {}", self.pushes_sent, self.pushes_resent),
                ),
                ("pushes expired unacknowledged".to_owned(), self.pushes_expired.to_string()),
                ("pushes unacknowledged at the end".to_owned(), self.pushes_pending.to_string()),
                ("running chats the relay forgot".to_owned(), self.forgotten.to_string()),
                (
                    "relay starts that failed (started again)".to_owned(),
                    self.relay_failed_starts.to_string(),
                ),
                ("GMS requests".to_owned(), self.gms_requests.to_string()),
                (
                    "GMS requests by operation".to_owned(),
                    self.gms_requests_by_operation
                        .iter()
                        .map(|(operation, n)| format!("{operation} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                (
                    "GMS requests per visitor-hour (budget)".to_owned(),
                    format!(
                        "{:.0} ({:.0})",
                        self.gms_requests_per_visitor_hour, self.gms_budget_per_visitor_hour
                    ),
                ),
            ])
            .collect();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in rows {
            let _ = writeln!(out, "  {key:<width$}  {value}");
        }
        if self.violations.is_empty() {
            let _ = writeln!(out, "no violation");
        } else {
            for violation in &self.violations {
                let _ = writeln!(out, "VIOLATION: {violation}");
            }
            let _ = writeln!(out, "reproduce with --seed {}", self.seed);
        }
        out
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {} / {} ms ({} samples)", self.p50, self.p99, self.max, self.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let durations: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&durations);
        assert_eq!((p.samples, p.p50, p.p99, p.max), (100, 50, 99, 100));
        let none = Percentiles::of(&[]);
        assert_eq!((none.samples, none.p50, none.max), (0, 0, 0));
    }
}
