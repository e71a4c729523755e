//! The release builds the tasks share: the widget into `target/widget` (`widget`), and
//! the release relay with the other binaries a task runs (`bench`, `chaos`).

use anyhow::Result;

use crate::run::{done, status, step};
use crate::setup::Tools;
use crate::workspace;

/// The release widget, then the release relay and any other binaries `more` names
/// (`-p <package> --bin <name>` pairs): what `bench` and `chaos` measure.
pub(crate) fn release_builds(tools: &Tools, more: &[&str]) -> Result<()> {
    let started = step("widget release build");
    crate::widget::build(tools)?;
    done("widget release build", started, true);
    let started = step("release build");
    status(
        tools
            .command("cargo")
            .current_dir(workspace::root()?)
            .args(["build", "--release", "-p", "relay", "--bin", "relay"])
            .args(more),
    )?;
    done("release build", started, true);
    Ok(())
}
