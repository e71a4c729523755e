//! `cargo xtask chaos`: one chaos run (see `system_tests::chaos`); prints the fault log and
//! the table, writes `target/chaos/<seed>.json`, and exits 1 on any violation.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line tool reports")]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use system_tests::chaos::schedule::Store;

/// A chaos run.
#[derive(Debug, Parser)]
struct Args {
    /// The schedule's and the visitors' seed.
    #[arg(long, default_value = "1")]
    seed: u64,
    /// How long faults are struck.
    #[arg(long, default_value = "5")]
    minutes: f64,
    /// Headless visitors.
    #[arg(long, default_value = "200")]
    visitors: usize,
    /// Real widgets in Chromium (needs --widget and chromedriver).
    #[arg(long, default_value = "0")]
    browsers: usize,
    /// The built widget (trunk's output).
    #[arg(long, env = "WIDGET_DIST")]
    widget: Option<PathBuf>,
    /// Faults to strike (by default 35 a minute, and at least 100).
    #[arg(long)]
    faults: Option<usize>,
    /// Relays; more than one run on Redis.
    #[arg(long, default_value = "1")]
    relays: usize,
    /// The relays' Redis: `server` (one redis-server, the default with several relays and
    /// for a bare `--redis`), `sentinel` (a primary, its replica and three sentinels) or
    /// `cluster` (three primaries and three replicas).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "server")]
    redis: Option<Store>,
    /// gms-sim's push layout (`flat`, `kebab`, `nested`, `envelope`, `envelope-string`,
    /// `minimal`); gms-sim's default when not given.
    #[arg(long)]
    push_format: Option<String>,
    /// The relays in proxy mode (`--gms-proxy`): the visitors and widgets reach GMS only
    /// through them.
    #[arg(long)]
    proxy: bool,
    /// Where to write the report as JSON.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let faults = args.faults.unwrap_or(((args.minutes * 35.0) as usize).max(100));
    let options = system_tests::chaos::Options {
        seed: args.seed,
        span: Duration::from_secs_f64(args.minutes * 60.0),
        visitors: args.visitors,
        faults,
        relays: args.relays.max(1),
        store: match args.redis {
            Some(store) => store,
            None if args.relays > 1 => Store::Server,
            None => Store::Disk,
        },
        browsers: args.browsers,
        widget: args.widget.clone(),
        push_format: args.push_format.clone(),
        proxy: args.proxy,
    };
    let report = system_tests::chaos::run(options).await?;
    print!("{}", report.table());
    std::fs::create_dir_all(&args.out)?;
    let file = args.out.join(format!("{}.json", args.seed));
    std::fs::write(&file, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", file.display()))?;
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
