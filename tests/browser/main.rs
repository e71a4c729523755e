//! Browser tests: the real widget in real browsers (headless Chromium, headless Firefox and
//! WebKit's MiniBrowser, each through its WebDriver), against the real relay and gms-sim.
//! Built only with `--features browser`; `cargo xtask test` builds the widget, sets
//! WIDGET_DIST and runs them, one engine after the other.
//!
//! Each test is an `async fn(Engine)`, and the `engines!` line above it says which engines
//! run it: one `#[tokio::test]` per engine, named `<test>::chromium`, `<test>::firefox` and
//! `<test>::webkit` (so `cargo test … ::firefox` runs one engine). An engine a test does
//! not run in is named with the reason, and shows in every run as an ignored test carrying
//! it, so nothing is left out silently.

/// One test per engine for the `async fn $name(Engine) -> Result<()>` that follows:
/// `engines!(name: Chromium, Firefox, WebKit);`, or with the engines it cannot run in and
/// why: `engines!(name: Chromium; not Firefox, WebKit: "CDP network emulation");`.
macro_rules! engines {
    ($name:ident: $($engine:ident),+ $(; not $($skipped:ident),+ : $reason:literal)?) => {
        mod $name {
            $(engines!(@run $name $engine);)+
            $($(engines!(@skip $skipped $reason);)+)?
        }
    };
    (@run $name:ident Chromium) => { engines!(@test $name chromium Chromium); };
    (@run $name:ident Firefox) => { engines!(@test $name firefox Firefox); };
    (@run $name:ident WebKit) => { engines!(@test $name webkit WebKit); };
    (@test $name:ident $test:ident $engine:ident) => {
        #[tokio::test]
        async fn $test() -> anyhow::Result<()> {
            super::$name(system_tests::webdriver::Engine::$engine).await
        }
    };
    (@skip Chromium $reason:literal) => { engines!(@ignored chromium Chromium $reason); };
    (@skip Firefox $reason:literal) => { engines!(@ignored firefox Firefox $reason); };
    (@skip WebKit $reason:literal) => { engines!(@ignored webkit WebKit $reason); };
    (@ignored $test:ident $engine:ident $reason:literal) => {
        #[tokio::test]
        #[ignore = $reason]
        async fn $test() -> anyhow::Result<()> {
            anyhow::bail!(concat!("not run in ", stringify!($engine), ": ", $reason))
        }
    };
}

mod a11y;
mod conversation;
mod embed;
mod engines;
mod expectations;
mod identity;
mod page;
mod panel;
mod parts;
mod proxy;
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
