//! `cargo xtask chaos [-- --seed N --minutes M --visitors V ...]`: the release relay and
//! widget, then one chaos run (`tests/src/bin/chaos.rs`) with 3 real widgets in Chromium;
//! the run's flags are passed on, `--push-format` among them (gms-sim's push layout: `flat`
//! by default, `kebab`, `nested`, `envelope`, `envelope-string` with the payload as a JSON
//! string, or `minimal`), and `--proxy` (the relays in proxy mode). `cargo xtask test` runs
//! a short fixed seed (`smoke`), in direct and in proxy mode.

use std::process::Command;

use anyhow::Result;

use crate::build::release_builds;
use crate::run::status;
use crate::setup::{self, Tools};
use crate::workspace;

/// The smoke run's seed, fixed so that CI replays the same faults.
pub(crate) const SMOKE_SEED: &str = "20261130";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    let tools = setup::ensure_all()?;
    let root = workspace::root()?;
    release_builds(&tools, &["-p", "system-tests", "--bin", "chaos"])?;
    let target = root.join("target");
    let binary = target.join("release").join("chaos");
    let mut chaos = tools.command(&binary.to_string_lossy());
    chaos
        .current_dir(&root)
        .env("RELAY_BIN", target.join("release").join("relay"))
        .env("WIDGET_DIST", target.join("widget"))
        .env("TEST_LOG", quiet_relays());
    if !args.iter().any(|a| a == "--browsers") {
        chaos.args(["--browsers", "3"]);
    }
    status(chaos.args(args))
}

/// The short run of `cargo xtask test`: a minute of 100 faults on 20 headless visitors and
/// one widget in Chromium, in the dev profile, with `extra` flags (`--proxy`).
pub(crate) fn smoke(tools: &Tools, extra: &[&str]) -> Result<Command> {
    let root = workspace::root()?;
    let mut cmd = tools.command("cargo");
    cmd.current_dir(&root)
        .args(["run", "--quiet", "-p", "system-tests", "--bin", "chaos", "--"])
        .args(["--seed", SMOKE_SEED, "--minutes", "1", "--faults", "100"])
        .args(["--visitors", "20", "--browsers", "1"])
        .args(extra)
        .env("WIDGET_DIST", root.join("target").join("widget"))
        .env("TEST_LOG", quiet_relays());
    Ok(cmd)
}

/// The relays' log level: errors only, so the fault log stays readable (`TEST_LOG` overrides).
fn quiet_relays() -> String {
    std::env::var("TEST_LOG").unwrap_or_else(|_| "error".to_owned())
}
