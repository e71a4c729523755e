//! Two relays on one Redis: pushes go into relay A, every subscriber is connected to relay
//! B, so each frame crosses Redis pub/sub. Latency runs from sending the push to A until
//! B's subscriber reads it; the same offered rates as `push` (one relay) compare the two.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser as _;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{
    NO_CLIENT_LIMITS, RedisServer, RelayProcess, TEST_PUSH_SECRET, free_port, relay_binary,
    scratch_dir,
};
use tokio_util::sync::CancellationToken;

use crate::chats;
use crate::push::{Clock, Step, subscribe};
use crate::relay_metrics;
use crate::report::Report;

struct Plan {
    chats: usize,
    rates: &'static [u32],
    step: Duration,
}

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let plan = if report.smoke {
        Plan { chats: 20, rates: &[50], step: Duration::from_secs(1) }
    } else {
        Plan { chats: 500, rates: &[250, 1000, 2000, 4000], step: Duration::from_secs(5) }
    };
    let redis = RedisServer::start().await?;
    let (port_a, port_b) = (free_port()?, free_port()?);
    let (url_a, url_b) =
        (format!("http://127.0.0.1:{port_a}"), format!("http://127.0.0.1:{port_b}"));
    let gms = gms_sim::start(gms_sim::Config::try_parse_from([
        "gms-sim",
        "--listen",
        "127.0.0.1:0",
        "--flex-disconnect-timeout",
        "100000",
        "--push-url",
        &format!("{url_a}/gms/push?secret={TEST_PUSH_SECRET}"),
    ])?)
    .await?;
    let binary = relay_binary()?;
    let mut relays = Vec::new();
    let mut data_dirs = Vec::new();
    for port in [port_a, port_b] {
        let data_dir = scratch_dir("bench-cluster")?;
        let args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--gms-url",
            &gms.url(),
            "--data-dir",
            &data_dir.display().to_string(),
            "--push-secret",
            TEST_PUSH_SECRET,
            "--redis-url",
            &redis.url(),
        ]
        .iter()
        .chain(&NO_CLIENT_LIMITS)
        .map(|s| (*s).to_owned())
        .collect();
        relays.push(RelayProcess::start(&binary, &args).await?);
        data_dirs.push(data_dir);
    }
    let pid_a = relays[0].pid().context("relay A pid")?;
    let chats = chats::create(&gms.url(), Some(&url_a), "cluster", plan.chats).await?;
    let clock = Clock::for_steps(plan.rates, plan.step);
    let stop = CancellationToken::new();
    for chat in &chats {
        subscribe(&url_b, chat, clock.clone(), stop.clone()).await?;
    }
    relay_metrics::wait_for_connections(&url_b, plan.chats).await?;

    let admin = SimAdmin::new(&gms.url());
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let mut next_seq = 0;
    for &rate in plan.rates {
        let step = Step { rate, duration: plan.step, first_seq: next_seq };
        let outcome = step.run(&http, &url_a, &chats, &clock, &admin, pid_a).await?;
        next_seq += outcome.sent;
        let case = format!("{rate} pushes/s into relay A, {} subscribers on relay B", plan.chats);
        report.add("cluster", &case, "accepted", outcome.accepted_rate, "pushes/s");
        report.add("cluster", &case, "lost (sent - delivered)", outcome.lost as f64, "frames");
        if let Some(l) = &outcome.latency {
            report.add("cluster", &case, "push→frame p50", l.p50, "ms");
            report.add("cluster", &case, "push→frame p99", l.p99, "ms");
        }
        report.add("cluster", &case, "relay A CPU", outcome.relay_cores, "cores");
        if outcome.lost > 0 || outcome.accepted_rate < 0.95 * f64::from(rate) {
            break;
        }
    }
    stop.cancel();
    for relay in relays {
        relay.kill9().await?;
    }
    gms.stop().await;
    for dir in data_dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
