//! The figures a run produced: printed as a table, written as JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

/// One measured value.
#[derive(Debug, Serialize)]
pub(crate) struct Figure {
    pub(crate) bench: &'static str,
    /// What was measured under which load, e.g. `10000 idle connections`.
    pub(crate) case: String,
    pub(crate) metric: &'static str,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
}

/// Everything one run measured, and what it could not.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) smoke: bool,
    machine: crate::machine::Machine,
    figures: Vec<Figure>,
    /// Cases not run and why (e.g. a limit of this machine).
    notes: Vec<String>,
}

impl Report {
    pub(crate) fn new(smoke: bool) -> Report {
        Report {
            smoke,
            machine: crate::machine::Machine::read(),
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn add(
        &mut self,
        bench: &'static str,
        case: &str,
        metric: &'static str,
        value: f64,
        unit: &'static str,
    ) {
        self.progress(&format!("  {case}: {metric} = {} {unit}", format_value(value)));
        self.figures.push(Figure { bench, case: case.to_owned(), metric, value, unit });
    }

    pub(crate) fn note(&mut self, text: String) {
        self.progress(&format!("  note: {text}"));
        self.notes.push(text);
    }

    /// Progress goes to stderr so stdout carries only the table.
    #[allow(clippy::print_stderr, reason = "progress of a long benchmark run")]
    pub(crate) fn progress(&self, line: &str) {
        eprintln!("bench: {line}");
    }

    #[allow(clippy::print_stdout, reason = "the table is the benchmark's output")]
    pub(crate) fn print_table(&self) {
        let width = |f: &dyn Fn(&Figure) -> usize| self.figures.iter().map(f).max().unwrap_or(0);
        let (b, c, m) = (
            width(&|f| f.bench.len()).max(5),
            width(&|f| f.case.chars().count()).max(4),
            width(&|f| f.metric.len()).max(6),
        );
        println!("{:b$}  {:c$}  {:m$}  {:>12}  unit", "bench", "case", "metric", "value");
        for f in &self.figures {
            println!(
                "{:b$}  {:c$}  {:m$}  {:>12}  {}",
                f.bench,
                f.case,
                f.metric,
                format_value(f.value),
                f.unit
            );
        }
        for note in &self.notes {
            println!("note: {note}");
        }
        println!("machine: {}", self.machine.summary());
    }

    /// Writes `results.json` (or `smoke.json`) and returns its path.
    pub(crate) fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let file = dir.join(if self.smoke { "smoke.json" } else { "results.json" });
        std::fs::write(&file, serde_json::to_vec_pretty(self)?)?;
        Ok(file)
    }
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

/// p50, p99 and max of a set of durations, in milliseconds.
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Percentiles {
    pub(crate) fn of(samples: &mut [Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1000.0
        };
        Some(Percentiles { p50: at(0.50), p99: at(0.99), max: at(1.0) })
    }
}

/// The median of a few values.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
