//! `cargo xtask bench`: the relay's capacity and latency, the GMS load per chat, the
//! restoration after a Chat Server restart and the widget's weight, measured against the
//! real relay (a separate process where its CPU and memory are read), the real gms-sim and
//! a real Chromium. Prints a table and writes it as JSON under `target/bench/`.
//! `--smoke` runs every benchmark small and short so `cargo xtask test` keeps them working.

mod chats;
mod churn;
mod cluster;
mod gms_load;
mod idle;
mod load;
mod machine;
mod peers;
mod proxy;
mod push;
mod relay_metrics;
mod report;
mod restore;
mod round_trips;
mod wasm_profile;
mod widget;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use crate::report::Report;

#[derive(Parser, Debug)]
#[command(about = "System benchmarks: relay capacity and latency, GMS load, widget weight")]
struct Args {
    /// Small sizes and short windows: proves every benchmark runs, measures nothing.
    #[arg(long)]
    smoke: bool,
    /// Run only these (idle, push, proxy, cluster, churn, gms-load, restore, widget; `peers`,
    /// the relay next to Sockudo, runs only when named).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The push ladder's offered rates (pushes/s), instead of climbing until the relay
    /// stops keeping up: `--push-rates 1000` holds one rate, e.g. to profile it.
    #[arg(long, value_delimiter = ',')]
    push_rates: Vec<u32>,
    /// The push benchmark's relay runs this many tokio worker threads
    /// (`TOKIO_WORKER_THREADS`, for the relay only; default: one per CPU, tokio's choice),
    /// e.g. 1 for a relay limited to less than two CPUs.
    #[arg(long)]
    relay_workers: Option<u32>,
    /// Directory for the JSON results (default: `target/bench` of the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut report = Report::new(args.smoke);
    let mut failed = Vec::new();
    macro_rules! bench {
        ($name:literal, $run:expr) => {
            if wanted($name) {
                report.progress(&format!("{} …", $name));
                if let Err(error) = $run.await {
                    report.progress(&format!("{} failed: {error:#}", $name));
                    failed.push($name);
                }
            }
        };
    }
    bench!("widget", widget::run(&mut report));
    bench!("gms-load", gms_load::run(&mut report));
    bench!("restore", restore::run(&mut report));
    bench!("push", push::run(&mut report, &args.push_rates, args.relay_workers));
    bench!("proxy", proxy::run(&mut report));
    bench!("cluster", cluster::run(&mut report));
    bench!("churn", churn::run(&mut report));
    bench!("idle", idle::run(&mut report));
    // Only when asked for: it builds Sockudo once, and takes minutes.
    if args.only.iter().any(|o| o == "peers") {
        bench!("peers", peers::run(&mut report));
    }
    report.print_table();
    let out = args.out.unwrap_or_else(default_out);
    let file = report.write(&out)?;
    report.progress(&format!("results written to {}", file.display()));
    anyhow::ensure!(failed.is_empty(), "benchmarks failed: {}", failed.join(", "));
    Ok(())
}

/// `target/bench` of the workspace (cargo runs benchmarks from the package directory).
fn default_out() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            package.parent().unwrap_or(package).join("target")
        })
        .join("bench")
}
