//! `cargo xtask test`: every check CI runs, with progress, timings and one summary line.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::run::{Counts, add_tests, check, check_with};
// The other tasks whose checks `test` runs too: the only calls between tasks.
use crate::{chaos, deploy, fuzz};
use crate::{setup, workspace};

pub(crate) fn run() -> Result<()> {
    let total = Instant::now();
    let tools = setup::ensure_all()?;
    let root = workspace::root()?;
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
    // The release widget's split points (`--cfg gms_split`: `frontend/src/later.rs`, its
    // runtime's unsafe code) are code the checks above never see. Its own target dir, as
    // `cargo xtask widget` has, so the flag does not rebuild the other checks' crates.
    let mut split = cargo(&[
        "clippy",
        "-p",
        "frontend",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]);
    split
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", "--cfg gms_split")
        .env("CARGO_TARGET_DIR", root.join("target").join("clippy-split"));
    check(&mut counts, "clippy (wasm32, the split build)", &mut split);
    add_tests(&mut counts, "workspace tests", &mut cargo(&["test", "--workspace"]));
    // Seconds per target: enough to catch a parser that panics on what the seeds lead to;
    // `cargo xtask fuzz` runs for minutes.
    check_with(&mut counts, "fuzz smoke (3 s per target)", || fuzz::run_all(&tools, 3));
    deploy::check_all(&tools, &mut counts)?;

    let widget_built =
        check_with(&mut counts, "widget release build (split)", || crate::widget::build(&tools));
    if widget_built {
        // One run per engine (each test is named `…::chromium`, `…::firefox` or
        // `…::webkit`), so the counts say how many passed in each.
        for engine in ["Chromium", "Firefox", "WebKit"] {
            let only = format!("::{}", engine.to_lowercase());
            let mut browser = cargo(&[
                "test",
                "-p",
                "system-tests",
                "--features",
                "browser",
                "--test",
                "browser",
                "--",
                &only,
            ]);
            browser.env("WIDGET_DIST", root.join("target").join("widget"));
            browser.env("AXE_JS", &tools.axe_js);
            browser.env("LIGHTHOUSE", &tools.lighthouse);
            add_tests(&mut counts, &format!("browser tests ({engine})"), &mut browser);
        }
        // Every benchmark, small and short, so `cargo xtask bench` keeps working, against
        // the release relay: the smoke's memory budget holds for what operators run (an
        // unoptimized relay's futures and code pages cost an idle socket 2 KiB more).
        check(
            &mut counts,
            "relay release build",
            &mut cargo(&["build", "--release", "-p", "relay", "--bin", "relay"]),
        );
        let mut smoke =
            cargo(&["test", "-p", "system-tests", "--bench", "system", "--", "--smoke"]);
        smoke.env("WIDGET_DIST", root.join("target").join("widget"));
        smoke.env("RELAY_BIN", root.join("target").join("release").join("relay"));
        check(&mut counts, "benchmark smoke", &mut smoke);
        check(
            &mut counts,
            "chaos smoke (seed 20261130, 1 min, 100 faults)",
            &mut chaos::smoke(&tools, &[])?,
        );
        check(
            &mut counts,
            "chaos smoke in proxy mode (seed 20261130, 1 min, 100 faults)",
            &mut chaos::smoke(&tools, &["--proxy"])?,
        );
    } else {
        println!("==> browser tests, benchmark and chaos smoke: not run, the widget did not build");
        counts.record(false);
    }

    println!("==> all checks took {:.1}s", total.elapsed().as_secs_f64());
    println!("{} passed, {} failed", counts.passed, counts.failed);
    if counts.failed > 0 {
        bail!("{} failed", counts.failed);
    }
    Ok(())
}
