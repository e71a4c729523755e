//! `cargo xtask test`: every check CI runs, with progress, timings and one summary line.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::run::{self, Counts, done, step};
use crate::setup::{self, Tools};

pub(crate) fn run() -> Result<()> {
    let total = Instant::now();
    let tools = setup::ensure_all()?;
    let root = crate::root()?;
    let mut counts = Counts::default();

    let cargo = |args: &[&str]| {
        let mut cmd = tools.command("cargo");
        cmd.current_dir(&root).args(args);
        cmd
    };
    check(&mut counts, "fmt --check", &mut cargo(&["fmt", "--all", "--check"]));
    check(
        &mut counts,
        "clippy (host)",
        &mut cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    );
    check(
        &mut counts,
        "clippy (wasm32)",
        &mut cargo(&[
            "clippy",
            "-p",
            "frontend",
            "-p",
            "shared",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]),
    );
    add_tests(&mut counts, "workspace tests", &mut cargo(&["test", "--workspace"]));
    // Seconds per target: enough to catch a parser that panics on what the seeds lead to;
    // `cargo xtask fuzz` runs for minutes.
    let started = step("fuzz smoke (3 s per target)");
    let fuzzed = crate::fuzz::run_all(&tools, 3).map_err(|e| println!("    {e:#}")).is_ok();
    done("fuzz smoke (3 s per target)", started, fuzzed);
    if fuzzed {
        counts.passed += 1;
    } else {
        counts.failed += 1;
    }
    crate::deploy::check_all(&tools, &mut counts)?;

    let widget_built =
        check(&mut counts, "widget release build (trunk)", &mut trunk_build(&tools)?);
    if widget_built {
        let mut browser =
            cargo(&["test", "-p", "system-tests", "--features", "browser", "--test", "browser"]);
        browser.env("WIDGET_DIST", root.join("target").join("widget"));
        browser.env("AXE_JS", &tools.axe_js);
        browser.env("LIGHTHOUSE", &tools.lighthouse);
        add_tests(&mut counts, "browser tests (Chromium)", &mut browser);
        // Every benchmark, small and short, so `cargo xtask bench` keeps working.
        let mut smoke =
            cargo(&["test", "-p", "system-tests", "--bench", "system", "--", "--smoke"]);
        smoke.env("WIDGET_DIST", root.join("target").join("widget"));
        check(&mut counts, "benchmark smoke", &mut smoke);
        check(
            &mut counts,
            "chaos smoke (seed 20261130, 1 min, 100 faults)",
            &mut crate::chaos::smoke(&tools)?,
        );
    } else {
        println!("==> browser tests, benchmark and chaos smoke: not run, the widget did not build");
        counts.failed += 1;
    }

    println!("==> all checks took {:.1}s", total.elapsed().as_secs_f64());
    println!("{} passed, {} failed", counts.passed, counts.failed);
    if counts.failed > 0 {
        bail!("{} failed", counts.failed);
    }
    Ok(())
}

/// The release build of the widget into `target/widget`, offline, with our tools.
pub(crate) fn trunk_build(tools: &Tools) -> Result<Command> {
    let mut cmd = tools.command("trunk");
    cmd.current_dir(crate::root()?).args(["build", "--release", "--offline"]);
    Ok(cmd)
}

/// The release widget, then the release relay and any other binaries `more` names
/// (`-p <package> --bin <name>` pairs): what `bench` and `chaos` measure.
pub(crate) fn release_builds(tools: &Tools, more: &[&str]) -> Result<()> {
    let started = step("widget release build (trunk)");
    run::status(&mut trunk_build(tools)?)?;
    done("widget release build (trunk)", started, true);
    let started = step("release build");
    run::status(
        tools
            .command("cargo")
            .current_dir(crate::root()?)
            .args(["build", "--release", "-p", "relay", "--bin", "relay"])
            .args(more),
    )?;
    done("release build", started, true);
    Ok(())
}

/// A check counts as one passed or failed item.
pub(crate) fn check(counts: &mut Counts, what: &str, cmd: &mut Command) -> bool {
    let started = step(what);
    let ok = run::status(cmd).map_err(|e| println!("    {e:#}")).is_ok();
    done(what, started, ok);
    if ok {
        counts.passed += 1;
    } else {
        counts.failed += 1;
    }
    ok
}

fn add_tests(counts: &mut Counts, what: &str, cmd: &mut Command) {
    let started = step(what);
    let result = run::tests(cmd).unwrap_or_else(|e| {
        println!("    {e:#}");
        Counts { passed: 0, failed: 1 }
    });
    done(what, started, result.failed == 0);
    println!("    {} passed, {} failed", result.passed, result.failed);
    counts.passed += result.passed;
    counts.failed += result.failed;
}
