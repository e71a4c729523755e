//! Three relays on one Redis behind a round-robin "load balancer": pushes go to the three
//! in turn and each chat's subscriber sits on a relay other than the one that registered
//! it, so most frames cross Redis pub/sub. Reported next to one relay (`push`): the knee,
//! push→frame latency, Redis commands and round trips per push (`round_trips`), and the
//! GMS requests an idle chat costs the whole cluster per hour (the periodic ping shared
//! through Redis).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser as _;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{RedisServer, RelayCluster, free_port};
use system_tests::support::push_url;
use tokio_util::sync::CancellationToken;

use crate::chats;
use crate::push::{Clock, Step, subscribe};
use crate::relay_metrics;
use crate::report::Report;
use crate::round_trips;

const NODES: usize = 3;

struct Plan {
    chats: usize,
    rates: &'static [u32],
    step: Duration,
    idle_chats: usize,
    idle_window: Duration,
}

/// gms-sim posting its pushes to the relays on `ports` in turn.
async fn balanced_sim(ports: &[u16]) -> Result<gms_sim::Running> {
    let mut args: Vec<String> =
        ["gms-sim", "--listen", "127.0.0.1:0", "--flex-disconnect-timeout", "100000"]
            .map(str::to_owned)
            .to_vec();
    for port in ports {
        args.extend(["--push-url".to_owned(), push_url(&format!("http://127.0.0.1:{port}"))]);
    }
    gms_sim::start(gms_sim::Config::try_parse_from(&args)?).await
}

/// Commands Redis has processed so far.
async fn redis_commands(redis: &RedisServer) -> Result<u64> {
    let client = redis::Client::open(redis.url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut connection).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .context("INFO stats has no total_commands_processed")
}

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let plan = if report.smoke {
        Plan {
            chats: 18,
            rates: &[50],
            step: Duration::from_secs(1),
            idle_chats: 6,
            idle_window: Duration::from_secs(4),
        }
    } else {
        Plan {
            chats: 600,
            rates: &[250, 1000, 2000, 4000, 6000, 8000, 12000],
            step: Duration::from_secs(5),
            idle_chats: 60,
            idle_window: Duration::from_secs(60),
        }
    };
    let redis = RedisServer::start().await?;
    // The relays reach Redis through a proxy that counts round trips; on loopback it adds
    // tens of microseconds per trip, less than a hop to a Redis on another machine.
    let proxy = round_trips::Counted::start(redis.address()).await?;
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect::<Result<_>>()?;
    let gms = balanced_sim(&ports).await?;
    let cluster = RelayCluster::start_on(
        &["--redis-url".to_owned(), proxy.url.clone()],
        &gms.url(),
        &ports,
        &[],
    )
    .await?;
    let pid = cluster.pid(0).context("relay pid")?;

    // Registered on one relay, followed on the next.
    let mut all = Vec::new();
    for (k, url) in cluster.urls.iter().enumerate() {
        let batch =
            chats::create(&gms.url(), Some(url), &format!("cluster-{k}"), plan.chats / NODES)
                .await?;
        all.extend(batch.into_iter().map(|chat| (k, chat)));
    }
    let clock = Clock::for_steps(plan.rates, plan.step);
    let stop = CancellationToken::new();
    for (k, chat) in &all {
        subscribe(&cluster.urls[(k + 1) % NODES], chat, clock.clone(), stop.clone()).await?;
    }
    for url in &cluster.urls {
        relay_metrics::wait_for_connections(url, plan.chats / NODES).await?;
    }
    let chats: Vec<_> = all.into_iter().map(|(_, chat)| chat).collect();

    let admin = SimAdmin::new(&gms.url());
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let mut next_seq = 0;
    let mut knee = None;
    for &rate in plan.rates {
        let step = Step { rate, duration: plan.step, first_seq: next_seq };
        let commands_before = redis_commands(&redis).await?;
        let trips_before = proxy.trips();
        let outcome = step.run(&http, &cluster.urls, &chats, &clock, &admin, pid).await?;
        let commands = redis_commands(&redis).await? - commands_before;
        let trips = proxy.trips() - trips_before;
        next_seq += outcome.sent;
        let case = format!("{rate} pushes/s over {NODES} relays, {} subscribers", plan.chats);
        report.add("cluster", &case, "accepted", outcome.accepted_rate, "pushes/s");
        report.add("cluster", &case, "lost (sent - delivered)", outcome.lost as f64, "frames");
        if let Some(l) = &outcome.latency {
            report.add("cluster", &case, "push→frame p50", l.p50, "ms");
            report.add("cluster", &case, "push→frame p99", l.p99, "ms");
        }
        let accepted = (outcome.accepted_rate * plan.step.as_secs_f64()).max(1.0);
        report.add(
            "cluster",
            &case,
            "Redis commands per push",
            commands as f64 / accepted,
            "commands",
        );
        report.add(
            "cluster",
            &case,
            "Redis round trips per push",
            trips as f64 / accepted,
            "round trips",
        );
        report.add("cluster", &case, "acknowledgements to GMS", outcome.acks_rate, "/s");
        report.add("cluster", &case, "one relay's CPU", outcome.relay_cores, "cores");
        report.add("cluster", &case, "load + gms-sim CPU", outcome.own_cores, "cores");
        if !outcome.kept_up(rate) {
            break;
        }
        knee = Some(rate);
    }
    if let Some(rate) = knee {
        let case = format!("{NODES} relays, {} subscribers", plan.chats);
        report.add("cluster", &case, "knee (highest rate kept up)", f64::from(rate), "pushes/s");
    }
    stop.cancel();
    cluster.stop().await?;

    idle_load(report, &redis, &plan).await?;
    gms.stop().await;
    Ok(())
}

/// GMS requests per idle chat-hour across three relays, with the ping interval shortened
/// 600× (30 minutes become 3 s) and scaled back.
async fn idle_load(report: &mut Report, redis: &RedisServer, plan: &Plan) -> Result<()> {
    const SCALE: f64 = 600.0;
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect::<Result<_>>()?;
    let gms = balanced_sim(&ports).await?;
    let interval = (1800.0 / SCALE).to_string();
    let flags = ["--ping-interval", &interval, "--redis-prefix", "idle:"].map(str::to_owned);
    let cluster = RelayCluster::start(redis, &gms.url(), &ports, &flags).await?;
    let stored = chats::create(&gms.url(), Some(&cluster.urls[0]), "idle", plan.idle_chats).await?;
    let admin = SimAdmin::new(&gms.url());
    let count = |stats: &serde_json::Value| -> u64 {
        stored
            .iter()
            .map(|c| {
                let ops = &stats["chats"][&c.credentials.chat_id];
                ops.as_object()
                    .map_or(0, |o| o.values().filter_map(serde_json::Value::as_u64).sum())
            })
            .sum()
    };
    let before = count(&admin.stats().await?);
    let started = Instant::now();
    tokio::time::sleep(plan.idle_window).await;
    let requests = count(&admin.stats().await?) - before;
    let virtual_hours = started.elapsed().as_secs_f64() * SCALE / 3600.0;
    let rate = requests as f64 / plan.idle_chats as f64 / virtual_hours;
    let case =
        format!("{} idle chats over {NODES} relays, ping timer ×{SCALE} faster", plan.idle_chats);
    report.add("cluster", &case, "GMS requests (whole cluster)", rate, "req/chat-hour");
    cluster.stop().await?;
    gms.stop().await;
    Ok(())
}
