//! Browser tests: the real widget in a real headless Chromium, against the real relay and
//! gms-sim. Built only with `--features browser`; `cargo xtask test` builds the widget,
//! sets WIDGET_DIST and runs them.

mod a11y;
mod embed;
mod page;
mod panel;
mod tabs;
mod visitor;
mod web_push;
mod widget;

use std::path::PathBuf;

use anyhow::{Context, Result};
use system_tests::harness::{Options, System};

/// Starts the system with the widget served by the relay.
async fn system(sim_args: &[&str]) -> Result<System> {
    system_with(Options::sim(sim_args)).await
}

/// The same with more options (the widget's configuration, relay flags).
async fn system_with(options: Options) -> Result<System> {
    let dist = PathBuf::from(
        std::env::var("WIDGET_DIST").context("WIDGET_DIST must name the built widget")?,
    );
    System::start(Options { widget_dist: Some(dist), ..options }).await
}
