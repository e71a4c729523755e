//! `cargo xtask fuzz [--seconds N]`: each coverage-guided fuzz target in `tests/fuzz` for N
//! seconds (60 by default) on the nightly toolchain, new inputs kept in
//! `target/fuzz-corpus/<target>` next to the committed seeds. A crash fails the run and
//! leaves its input in `tests/fuzz/artifacts/<target>`; it becomes a regression test.
//! Where the machine has no nightly toolchain, fuzzing says so and is skipped.

use std::process::Command;

use anyhow::{Result, bail};

use crate::setup::{self, Tools};
use crate::workspace;

/// Every target: the parsers of input from outside (see tests/fuzz/Cargo.toml).
const TARGETS: [&str; 5] = ["push", "health", "gms_response", "client_frame", "widget_inputs"];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let seconds = match args.iter().position(|a| a == "--seconds") {
        None => 60,
        Some(i) => args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(60),
    };
    let tools = setup::ensure_all()?;
    run_all(&tools, seconds)
}

/// Runs every target for `seconds` and prints each one's executions.
pub(crate) fn run_all(tools: &Tools, seconds: u64) -> Result<()> {
    let nightly = Command::new("rustup").args(["run", "nightly", "rustc", "--version"]).output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        println!("==> fuzzing: skipped, this machine has no nightly toolchain");
        return Ok(());
    }
    setup::ensure_cargo_fuzz()?;
    let root = workspace::root()?;
    let mut crashed = Vec::new();
    for target in TARGETS {
        let corpus = root.join("target").join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let output = tools
            .command("cargo")
            .current_dir(&root)
            .args(["+nightly", "fuzz", "run", "--fuzz-dir", "tests/fuzz", target])
            .arg(&corpus)
            .arg(root.join("tests/fuzz/seeds").join(target))
            .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1"])
            .output()?;
        let log = String::from_utf8_lossy(&output.stderr);
        let stat = |name: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .map_or("?".to_owned(), |v| v.trim().to_owned())
        };
        if output.status.success() {
            println!(
                "    fuzz {target}: {} executions in {seconds} s, corpus +{}, no crash",
                stat("number_of_executed_units"),
                stat("new_units_added"),
            );
        } else {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            println!(
                "    fuzz {target}: FAILED\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            crashed.push(target);
        }
    }
    if !crashed.is_empty() {
        bail!("fuzzing found crashes in {} (inputs in tests/fuzz/artifacts)", crashed.join(", "));
    }
    Ok(())
}
