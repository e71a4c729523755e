//! Running commands with progress lines and timings, and counting checks and tests as
//! passed or failed: the helpers every task shares.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Prints a step's start; returns the clock to hand to [`done`].
pub(crate) fn step(what: &str) -> Instant {
    println!("==> {what}");
    Instant::now()
}

/// Prints a step's end with its duration.
pub(crate) fn done(what: &str, started: Instant, ok: bool) {
    let verdict = if ok { "ok" } else { "FAILED" };
    println!("==> {what}: {verdict} in {:.1}s", started.elapsed().as_secs_f64());
}

/// Runs a command with inherited output; errors on a non-zero exit.
pub(crate) fn status(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}

/// Runs a command and returns its stdout, or `None` if it cannot run or fails.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Test counts read from `cargo test` output.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Counts {
    /// Counts one check as passed or failed.
    pub(crate) fn record(&mut self, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// A check counts as one passed or failed item.
pub(crate) fn check(counts: &mut Counts, what: &str, cmd: &mut Command) -> bool {
    check_with(counts, what, || status(cmd))
}

/// [`check`] of work that is more than one command (the fuzz smoke). Its error is printed
/// rather than returned, so the checks after it still run.
pub(crate) fn check_with(
    counts: &mut Counts,
    what: &str,
    work: impl FnOnce() -> Result<()>,
) -> bool {
    let started = step(what);
    let ok = work().map_err(|e| println!("    {e:#}")).is_ok();
    done(what, started, ok);
    counts.record(ok);
    ok
}

/// Runs a test command as a step and adds its tests to `counts` (see [`tests`]).
pub(crate) fn add_tests(counts: &mut Counts, what: &str, cmd: &mut Command) {
    let started = step(what);
    let result = tests(cmd).unwrap_or_else(|e| {
        println!("    {e:#}");
        Counts { passed: 0, failed: 1 }
    });
    done(what, started, result.failed == 0);
    println!("    {} passed, {} failed", result.passed, result.failed);
    counts.passed += result.passed;
    counts.failed += result.failed;
}

/// Runs `cargo test`-like commands, echoing their stdout and adding up every
/// `test result: ... N passed; M failed` line. A run that fails without a failed test
/// (a compile error, a crash) counts as one failure so it cannot pass unnoticed.
fn tests(cmd: &mut Command) -> Result<Counts> {
    let mut child =
        cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot start {cmd:?}"))?;
    let mut counts = Counts::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading test output")?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                counts.passed += number_before(rest, " passed");
                counts.failed += number_before(rest, " failed");
            }
        }
    }
    let status = child.wait().context("waiting for tests")?;
    if !status.success() && counts.failed == 0 {
        counts.failed = 1;
    }
    Ok(counts)
}

fn number_before(text: &str, label: &str) -> u64 {
    text.split([';', '.'])
        .find_map(|part| part.trim().strip_suffix(label.trim_start()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::number_before;

    #[test]
    fn reads_cargo_test_summaries() {
        let line =
            "ok. 37 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s";
        assert_eq!(number_before(line, " passed"), 37);
        assert_eq!(number_before(line, " failed"), 2);
        assert_eq!(number_before("FAILED. 1 passed; 1 failed;", " failed"), 1);
    }
}
