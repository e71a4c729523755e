//! `cargo xtask test | demo | bench | fuzz | chaos | image | setup`: the project's
//! automation, in Rust rather than shell.
//!
//! Each task is a module (`test`, `demo`, `bench`, `fuzz`, `chaos`, `setup`, and `deploy`,
//! which `test` runs and which builds the `image`) over the helpers they share: `build`
//! (the release builds), `run` (commands, progress lines, pass and fail counts),
//! `setup::Tools` and `workspace` (`balancer` is the demo's own). Tasks import no other
//! task, except that `test` calls the others' entry points (`fuzz::run_all`,
//! `deploy::check_all`, `chaos::smoke`) to run their checks too.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on stdout"
)]

mod balancer;
mod bench;
mod build;
mod chaos;
mod css;
mod demo;
mod deploy;
mod emoji;
mod fuzz;
mod run;
mod setup;
mod test;
mod widget;
mod workspace;

const USAGE: &str = "usage: cargo xtask <test|demo|bench|fuzz|chaos|image|setup>
  test    install what is missing, then fmt, clippy (host and wasm32), every test,
          the release widget build and the browser tests; ends with `N passed, N failed`
  demo    build the widget, start gms-sim (with its scripted agent) and the relay, print
          the URLs; Ctrl-C stops everything (`-- --nodes 2`: two relays on a local
          redis-server behind a small load balancer; `--nodes 2 --sentinel`: on a primary,
          its replica and three sentinels, to try a failover; `--proxy`: the relays in
          proxy mode, GMS private)
  bench   measure the relay (idle connections, push throughput and latency, restoration),
          the GMS load per idle chat and the widget's weight; prints a table and writes
          target/bench/results.json (`-- --only push,idle` runs some)
  fuzz    run every coverage-guided fuzz target (tests/fuzz) on nightly
          (`-- --seconds N`, 60 by default); skipped where there is no nightly
  chaos   the chaos suite: headless visitors and 3 widgets in Chromium chat while a seeded
          schedule of faults hits relays, Chat Servers, GMS, pushes and Redis; prints the
          table, exits 1 on any lost, repeated or reordered event (`-- --seed N --minutes M
          --visitors V --relays 2 --redis sentinel|cluster --proxy`; see RELIABILITY.md)
  image   the relay as a static binary (x86_64-unknown-linux-musl, release) in a
          FROM-scratch image (deploy/Containerfile), where docker or podman runs
  setup   only install what is missing, and trunk for the development loop (`trunk serve`)
  widget  only the widget's release build (split into the first open and what loads
          later), into target/widget
  compact-css FILE   compact the widget's styles in place (the release build runs it)
  emoji   write the emoji picker's data (frontend/emoji) from emojibase-data (npm)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(),
        Some("demo") => demo::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("chaos") => chaos::run(&args[1..]),
        Some("image") => deploy::image(),
        Some("setup") => setup::ensure_development().map(drop),
        Some("compact-css") => css::run(&args[1..]),
        Some("emoji") => emoji::run(),
        Some("widget") => setup::ensure_all().and_then(|tools| widget::build(&tools)),
        _ => {
            eprintln!("{USAGE}");
            Err(anyhow::anyhow!("unknown or missing task"))
        }
    };
    if let Err(error) = result {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}
