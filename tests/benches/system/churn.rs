//! Subscribe churn on Redis (issue 29): sockets that subscribe and unsubscribe in a loop,
//! each within the relay's frame limit (20 a second), while pushes for other chats flow.
//! Every subscribe reads its chat's record from Redis; those reads must not queue with the
//! writer's commits, which every push waits for. Push→frame latency of the other chats is
//! measured in alternating rounds without and with the churn (the same relay, chats and
//! rate), and the median p99 with churn may be at most twice the one without.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use shared::relay_api::{ClientFrame, ServerFrame};
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{RedisServer, RelayProcess, relay_binary};
use system_tests::support::{Wait, until_every};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::chats;
use crate::push::{Clock, Pushing, Step, gms_pushing_to_a_relay, subscribe};
use crate::relay_metrics;
use crate::report::{Report, median};

/// The p99 with churn may be at most this many times the p99 without.
const LIMIT_RATIO: f64 = 2.0;
/// Below this a p99 is the machine's scheduling noise rather than the store's queue: the
/// ratio is taken over at least this much, so 2 ms against 0.9 ms on a busy 2-core machine
/// is not a failure, while a read queue behind commits (tens of ms) still is.
const FLOOR_MS: f64 = 5.0;
/// Subscribe/unsubscribe pairs per second of one churning socket: 16 frames a second, under
/// the relay's 20 (its pings' pongs count too).
const PAIRS_PER_SECOND: u32 = 8;

struct Plan {
    /// Chats receiving pushes, one subscriber each.
    chats: usize,
    /// Sockets looping subscribe/unsubscribe, each on a chat of its own.
    churners: usize,
    rate: u32,
    step: Duration,
    rounds: usize,
}

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let plan = if report.smoke {
        Plan { chats: 10, churners: 8, rate: 100, step: Duration::from_secs(1), rounds: 3 }
    } else {
        Plan { chats: 200, churners: 48, rate: 500, step: Duration::from_secs(4), rounds: 5 }
    };
    let redis = RedisServer::start().await?;
    let Pushing { gms, relay_url, data_dir, args } = gms_pushing_to_a_relay("bench-churn").await?;
    // The frame limit and the subscription cap stay at their defaults: the churn is what one
    // address can do within them.
    let args = args.redis(&redis.url()).flags(["--ping-interval", "3600"]).build();
    let relay = RelayProcess::start(&relay_binary()?, &args).await?;
    let pid = relay.pid().context("relay pid")?;
    let pushed = chats::create(&gms.url(), Some(&relay_url), "churn-pushed", plan.chats).await?;
    let looped = chats::create(&gms.url(), Some(&relay_url), "churn-loop", plan.churners).await?;

    let rates = vec![plan.rate; plan.rounds * 2];
    let clock = Clock::for_steps(&rates, plan.step);
    let stop = CancellationToken::new();
    for chat in &pushed {
        subscribe(&relay_url, chat, clock.clone(), stop.clone()).await?;
    }
    let (churning, on) = watch::channel(false);
    let subscribes = Arc::new(AtomicU64::new(0));
    let mut churners = tokio::task::JoinSet::new();
    for chat in &looped {
        let socket = connect(&relay_url).await?;
        let frame = ClientFrame::Subscribe {
            chat_id: chat.credentials.chat_id.clone(),
            token: chat.token.clone().context("registered")?,
        };
        let job = churn(socket, frame, on.clone(), subscribes.clone(), stop.clone());
        churners.spawn(job);
    }
    relay_metrics::wait_for_connections(&relay_url, plan.chats + plan.churners).await?;

    let admin = SimAdmin::new(&gms.url());
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let (mut quiet, mut churned, mut lost) = (Vec::new(), Vec::new(), 0);
    let mut churn_rates = Vec::new();
    let mut next_seq = 0;
    for _ in 0..plan.rounds {
        for churn in [false, true] {
            churning.send_replace(churn);
            if churn {
                started(&subscribes, plan.churners).await?;
            }
            let before = subscribes.load(Ordering::Relaxed);
            let step = Step { rate: plan.rate, duration: plan.step, first_seq: next_seq };
            let outcome = step
                .run(&http, std::slice::from_ref(&relay_url), &pushed, &clock, &admin, pid)
                .await?;
            next_seq += outcome.sent;
            lost += outcome.lost;
            let p99 = outcome.latency.as_ref().map_or(f64::NAN, |l| l.p99);
            if churn {
                let done = subscribes.load(Ordering::Relaxed) - before;
                churn_rates.push(done as f64 / plan.step.as_secs_f64());
                churned.push(p99);
            } else {
                quiet.push(p99);
            }
        }
    }
    churning.send_replace(false);
    stop.cancel();
    // A churner that was closed (4029) or refused a subscribe ends with its error.
    let mut closed = 0;
    while let Some(ended) = churners.join_next().await {
        if !matches!(ended, Ok(Ok(()))) {
            closed += 1;
        }
    }

    let (without, with) = (median(&mut quiet), median(&mut churned));
    let ratio = with / without.max(FLOOR_MS);
    let case = format!(
        "{} pushes/s to {} chats, {} sockets looping subscribe/unsubscribe, Redis",
        plan.rate, plan.chats, plan.churners
    );
    report.add("churn", &case, "push→frame p99 without churn (median)", without, "ms");
    report.add("churn", &case, "push→frame p99 with churn (median)", with, "ms");
    report.add("churn", &case, "p99 ratio (over at least 5 ms)", ratio, "×");
    report.add("churn", &case, "subscribes while churning", median(&mut churn_rates), "/s");
    report.add("churn", &case, "lost (sent - delivered)", lost as f64, "frames");
    report.add("churn", &case, "churning sockets closed", f64::from(closed), "sockets");
    relay.kill9().await?;
    gms.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    anyhow::ensure!(closed == 0, "{closed} churning sockets were closed or refused");
    anyhow::ensure!(lost == 0, "{lost} frames were not delivered");
    anyhow::ensure!(
        ratio <= LIMIT_RATIO,
        "churn raised the p99 from {without:.2} ms to {with:.2} ms"
    );
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(relay_url: &str) -> Result<Socket> {
    let url = shared::relay_api::ws_url(relay_url);
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

/// Waits until every churner has subscribed at least once more (the churn is on).
async fn started(subscribes: &AtomicU64, churners: usize) -> Result<()> {
    let before = subscribes.load(Ordering::Relaxed);
    let what = "the churning sockets started";
    until_every(what, Duration::from_secs(10), Duration::from_millis(10), async || {
        let now = subscribes.load(Ordering::Relaxed);
        Ok(Wait::done_if(now >= before + churners as u64, format!("{} subscribes", now - before)))
    })
    .await
}

/// Subscribes and unsubscribes `PAIRS_PER_SECOND` times a second while `on` says so, each
/// subscribe answered before the unsubscribe; ends with an error if the relay refuses one
/// or closes the socket.
async fn churn(
    mut socket: Socket,
    subscribe: ClientFrame,
    mut on: watch::Receiver<bool>,
    subscribes: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<()> {
    let ClientFrame::Subscribe { chat_id, .. } = &subscribe else {
        anyhow::bail!("not a subscribe")
    };
    let unsubscribe =
        serde_json::to_string(&ClientFrame::Unsubscribe { chat_id: chat_id.clone() })?;
    let subscribe = serde_json::to_string(&subscribe)?;
    let mut pace = tokio::time::interval(Duration::from_secs(1) / PAIRS_PER_SECOND);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            turned = on.wait_for(|on| *on) => { turned?; }
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = pace.tick() => {}
        }
        socket.send(Message::text(subscribe.clone())).await?;
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                message = socket.next() => message,
            };
            let Some(message) = message else { anyhow::bail!("the relay closed the socket") };
            match message? {
                Message::Text(text) => match serde_json::from_str(text.as_str()) {
                    Ok(ServerFrame::Subscribed { .. }) => break,
                    Ok(other) => anyhow::bail!("subscribe answered {other:?}"),
                    Err(_) => {}
                },
                Message::Close(close) => anyhow::bail!("the relay closed the socket: {close:?}"),
                _ => {}
            }
        }
        socket.send(Message::text(unsubscribe.clone())).await?;
        subscribes.fetch_add(1, Ordering::Relaxed);
    }
}
