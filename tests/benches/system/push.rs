//! Push throughput and latency: pushes into `/gms/push` at fixed offered rates, each for a
//! chat with one WebSocket subscriber, with the relay acknowledging every push to gms-sim.
//! Latency runs from sending the push to the subscriber reading its frame. The rate is
//! raised until the relay stops keeping up (the knee).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::relay_api::{ClientFrame, ServerFrame};
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{RelayProcess, relay_binary, scratch_dir};
use system_tests::support::{RelayArgs, push_url};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::chats::{self, BenchChat};
use crate::load::{self, Push};
use crate::machine::Usage;
use crate::relay_metrics::{self, metric, scrape};
use crate::report::{Percentiles, Report};

/// A step passes while p99 push-to-frame latency stays under this.
const P99_BUDGET_MS: f64 = 250.0;

struct Plan<'a> {
    chats: usize,
    rates: &'a [u32],
    step: Duration,
}

/// What the subscribers saw: when each push was sent, and the latencies of this step.
pub(crate) struct Clock {
    origin: Instant,
    sent_at: Vec<AtomicU64>,
    latencies: Mutex<Vec<Duration>>,
    received: AtomicUsize,
}

impl Clock {
    /// A clock for the pushes of every rate in `rates`, `step` long each.
    pub(crate) fn for_steps(rates: &[u32], step: Duration) -> Arc<Clock> {
        let total: usize =
            rates.iter().map(|r| (f64::from(*r) * step.as_secs_f64()) as usize + 1).sum();
        Arc::new(Clock {
            origin: Instant::now(),
            sent_at: (0..total).map(|_| AtomicU64::new(0)).collect(),
            latencies: Mutex::new(Vec::new()),
            received: AtomicUsize::new(0),
        })
    }

    /// Notes that a subscriber read push `seq`'s frame now.
    pub(crate) fn received_now(&self, seq: usize) {
        let now = self.origin.elapsed();
        let Some(sent) = self.sent_at.get(seq) else { return };
        let sent = Duration::from_nanos(sent.load(Ordering::Relaxed));
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies.push(now.saturating_sub(sent));
        }
    }

    /// Frames read since the step began.
    pub(crate) fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// The latencies read since the step began.
    pub(crate) fn latencies(&self) -> Vec<Duration> {
        self.latencies.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Notes that push `seq` leaves the generator at `at`.
    pub(crate) fn mark_sent(&self, seq: usize, at: Instant) {
        if let Some(slot) = self.sent_at.get(seq) {
            let since = at.saturating_duration_since(self.origin).as_nanos();
            slot.store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
    }
}

/// gms-sim pushing to a relay about to start on a free port.
pub(crate) struct Pushing {
    pub(crate) gms: gms_sim::Running,
    pub(crate) relay_url: String,
    /// The relay's data directory, removed by the benchmark at its end.
    pub(crate) data_dir: std::path::PathBuf,
    /// The relay's flags (no per-client limits), to which a benchmark adds its own.
    pub(crate) args: RelayArgs,
}

/// Starts gms-sim pushing to a relay that is yet to start, its data directory named after
/// `label`.
pub(crate) async fn gms_pushing_to_a_relay(label: &str) -> Result<Pushing> {
    let relay_port = system_tests::harness::free_port()?;
    let relay_url = format!("http://127.0.0.1:{relay_port}");
    let gms = gms_sim::start(gms_sim::Config::try_parse_from([
        "gms-sim",
        "--listen",
        "127.0.0.1:0",
        "--flex-disconnect-timeout",
        "100000",
        "--push-url",
        &push_url(&relay_url),
    ])?)
    .await?;
    let data_dir = scratch_dir(label)?;
    let args = RelayArgs::new(&format!("127.0.0.1:{relay_port}"), &gms.url(), &data_dir)
        .no_client_limits();
    Ok(Pushing { gms, relay_url, data_dir, args })
}

/// The ladder: it climbs until a step fails.
const LADDER: &[u32] = &[
    250, 500, 1000, 2000, 4000, 6000, 8000, 12000, 16000, 20000, 25000, 30000, 40000, 50000, 60000,
];

/// `workers`: the relay's tokio worker threads, when not its own choice.
pub(crate) async fn run(report: &mut Report, rates: &[u32], workers: Option<u32>) -> Result<()> {
    let mut plan = if report.smoke {
        Plan { chats: 20, rates: &[50], step: Duration::from_secs(1) }
    } else {
        Plan { chats: 1000, rates: LADDER, step: Duration::from_secs(5) }
    };
    if !rates.is_empty() {
        plan.rates = rates;
    }
    let Pushing { gms, relay_url, data_dir, args } = gms_pushing_to_a_relay("bench-push").await?;
    let workers = workers.map(|n| n.to_string());
    let env: Vec<(&str, &std::ffi::OsStr)> =
        workers.iter().map(|n| ("TOKIO_WORKER_THREADS", n.as_ref())).collect();
    let relay = RelayProcess::start_with_env(&relay_binary()?, &args.build(), &env).await?;
    if let Some(n) = &workers {
        report.note(format!("push: the relay ran {n} tokio worker thread(s)"));
    }
    let pid = relay.pid().context("relay pid")?;
    let chats = chats::create(&gms.url(), Some(&relay_url), "push", plan.chats).await?;

    let clock = Clock::for_steps(plan.rates, plan.step);
    let stop = CancellationToken::new();
    for chat in &chats {
        subscribe(&relay_url, chat, clock.clone(), stop.clone()).await?;
    }
    relay_metrics::wait_for_connections(&relay_url, plan.chats).await?;

    let admin = SimAdmin::new(&gms.url());
    let http = reqwest::Client::new();
    let mut next_seq = 0;
    let mut knee = None;
    for &rate in plan.rates {
        let step = Step { rate, duration: plan.step, first_seq: next_seq };
        let outcome =
            step.run(&http, std::slice::from_ref(&relay_url), &chats, &clock, &admin, pid).await?;
        next_seq += outcome.sent;
        let case = format!("{rate} pushes/s offered, {} subscribers", plan.chats);
        report.add("push", &case, "accepted", outcome.accepted_rate, "pushes/s");
        report.add("push", &case, "frames delivered", outcome.delivered as f64, "frames");
        report.add("push", &case, "lost (sent - delivered)", outcome.lost as f64, "frames");
        if let Some(l) = &outcome.latency {
            report.add("push", &case, "push→frame p50", l.p50, "ms");
            report.add("push", &case, "push→frame p99", l.p99, "ms");
            report.add("push", &case, "push→frame max", l.max, "ms");
        }
        if let Some(a) = &outcome.answer {
            report.add("push", &case, "push answered (200) p99", a.p99, "ms");
        }
        report.add("push", &case, "relay CPU", outcome.relay_cores, "cores");
        report.add("push", &case, "relay CPU per push", outcome.cpu_per_push(), "µs");
        report.add("push", &case, "load + gms-sim CPU", outcome.own_cores, "cores");
        report.add("push", &case, "pushes per store commit", outcome.pushes_per_commit, "pushes");
        report.add("push", &case, "mean store commit", outcome.commit_ms, "ms");
        report.add("push", &case, "acknowledgements to GMS", outcome.acks_rate, "/s");
        if !outcome.kept_up(rate) {
            break;
        }
        knee = Some(rate);
    }
    match knee {
        Some(rate) => report.add(
            "push",
            &format!("{} subscribers", plan.chats),
            "knee (highest rate kept up)",
            f64::from(rate),
            "pushes/s",
        ),
        None => report.note("push: the relay did not keep up even at the lowest rate".to_owned()),
    }
    stop.cancel();
    relay.kill9().await?;
    gms.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    Ok(())
}

/// One subscriber per chat, recording the latency of every pushed event it reads.
pub(crate) async fn subscribe(
    relay_url: &str,
    chat: &BenchChat,
    clock: Arc<Clock>,
    stop: CancellationToken,
) -> Result<()> {
    let url = shared::relay_api::ws_url(relay_url);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let frame = ClientFrame::Subscribe {
        chat_id: chat.credentials.chat_id.clone(),
        token: chat.token.clone().context("registered")?,
    };
    ws.send(Message::text(serde_json::to_string(&frame)?)).await?;
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => break,
                message = ws.next() => message,
            };
            let Some(Ok(message)) = message else { break };
            let Message::Text(text) = message else { continue };
            let Ok(ServerFrame::Events { messages, .. }) = serde_json::from_str(text.as_str())
            else {
                continue;
            };
            for event in messages {
                let seq = event.text.as_deref().and_then(|t| t.strip_prefix('b')?.parse().ok());
                if let Some(seq) = seq {
                    clock.received_now(seq);
                }
            }
        }
    });
    Ok(())
}

pub(crate) struct Step {
    pub(crate) rate: u32,
    pub(crate) duration: Duration,
    pub(crate) first_seq: usize,
}

pub(crate) struct Outcome {
    pub(crate) sent: usize,
    pub(crate) accepted_rate: f64,
    pub(crate) delivered: usize,
    pub(crate) lost: usize,
    pub(crate) latency: Option<Percentiles>,
    answer: Option<Percentiles>,
    pub(crate) relay_cores: f64,
    pub(crate) own_cores: f64,
    pushes_per_commit: f64,
    commit_ms: f64,
    pub(crate) acks_rate: f64,
}

impl Outcome {
    /// The relay's CPU time per accepted push: the push, its frame and its acknowledgement.
    pub(crate) fn cpu_per_push(&self) -> f64 {
        self.relay_cores * 1e6 / self.accepted_rate.max(1.0)
    }

    /// Whether the relay kept up with an offered rate: at least 95 % accepted, every frame
    /// delivered, p99 within the budget.
    pub(crate) fn kept_up(&self, rate: u32) -> bool {
        self.accepted_rate >= 0.95 * f64::from(rate)
            && self.lost == 0
            && self.latency.as_ref().is_some_and(|l| l.p99 <= P99_BUDGET_MS)
    }
}

impl Step {
    /// Pushes into `relay_urls` in turn at the step's rate (the subscribers may be on other
    /// relays); the first relay's metrics and the process `relay_pid` are reported.
    pub(crate) async fn run(
        &self,
        http: &reqwest::Client,
        relay_urls: &[String],
        chats: &[BenchChat],
        clock: &Arc<Clock>,
        admin: &SimAdmin,
        relay_pid: u32,
    ) -> Result<Outcome> {
        let count = (f64::from(self.rate) * self.duration.as_secs_f64()) as usize;
        clock.received.store(0, Ordering::Relaxed);
        if let Ok(mut latencies) = clock.latencies.lock() {
            latencies.clear();
        }
        let relay_url = relay_urls.first().context("a relay")?;
        let acks_before = refreshes(admin).await?;
        let metrics_before = scrape(http, relay_url).await?;
        let relay_before = Usage::of(relay_pid).context("relay usage")?;
        let own_before = Usage::of(std::process::id()).context("own usage")?;
        // Built before the clock starts: the generator's cost is a write per push.
        let push_urls: Vec<String> = relay_urls.iter().map(|url| push_url(url)).collect();
        let pushes = (0..count)
            .map(|k| {
                let seq = self.first_seq + k;
                let body = push_body(&chats[seq % chats.len()], seq, 2 + seq / chats.len());
                Push::new(seq, &push_urls[seq % push_urls.len()], &body)
            })
            .collect::<Result<Vec<_>>>()?;
        let started = Instant::now();
        let answered = load::offer(pushes, self.rate, clock, Duration::from_secs(30)).await?;
        let sending_time = answered.elapsed;
        let accepted = answered.accepted;
        let mut answers = answered.latencies;
        // Frames still on their way: wait for them, but not forever.
        let deadline = Instant::now() + Duration::from_secs(10);
        while clock.received.load(Ordering::Relaxed) < accepted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = started.elapsed();
        let relay_after = Usage::of(relay_pid).context("relay usage")?;
        let own_after = Usage::of(std::process::id()).context("own usage")?;
        let metrics_after = scrape(http, relay_url).await?;
        let acks = refreshes(admin).await? - acks_before;

        let delivered = clock.received();
        let mut latencies = clock.latencies();
        let delta = |name: &str| {
            metric(&metrics_after, name).unwrap_or(0.0)
                - metric(&metrics_before, name).unwrap_or(0.0)
        };
        let commits = delta("relay_store_commit_seconds_count").max(1.0);
        Ok(Outcome {
            sent: count,
            accepted_rate: accepted as f64 / sending_time.as_secs_f64(),
            delivered,
            lost: count.saturating_sub(delivered),
            latency: Percentiles::of(&mut latencies),
            answer: Percentiles::of(&mut answers),
            relay_cores: relay_after.cores_since(&relay_before, wall),
            own_cores: own_after.cores_since(&own_before, wall),
            pushes_per_commit: accepted as f64 / commits,
            commit_ms: delta("relay_store_commit_seconds_sum") * 1000.0 / commits,
            acks_rate: acks as f64 / wall.as_secs_f64(),
        })
    }
}

/// An agent message push as Chat Server sends it, carrying the event and every token.
fn push_body(chat: &BenchChat, seq: usize, index: usize) -> String {
    let c = &chat.credentials;
    json!({
        "deviceId": chat.device_id, "type": "Message", "message": format!("Ann: b{seq}"),
        "chatId": c.chat_id, "userId": c.user_id, "secureKey": c.secure_key, "alias": c.alias,
        "nextPosition": index + 1,
        "messages": [{"from": {"nickname": "Ann", "participantId": 2, "type": "Agent"},
                      "index": index, "type": "Message", "text": format!("b{seq}"),
                      "utcTime": 1_732_460_000_000_u64}],
    })
    .to_string()
}

async fn refreshes(admin: &SimAdmin) -> Result<u64> {
    Ok(admin.stats().await?["requests"]["refresh"].as_u64().unwrap_or(0))
}
