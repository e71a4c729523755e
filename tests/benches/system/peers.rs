//! `--only peers` (never in the smoke run): the relay next to Sockudo 5.2.0, the closest
//! Rust peer (a Pusher-protocol server), in the same run with the same client: memory and
//! CPU per idle WebSocket, and publish→frame latency at 1,000 publishes a second with one
//! subscriber per channel (the relay's publish is a GMS push, acknowledged to gms-sim; the
//! peer's a Pusher HTTP API event). Sockudo is built from crates.io once and cached.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::json;
use system_tests::harness::{RelayProcess, relay_binary, scratch_dir};
use system_tests::support::RelayArgs;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::idle::hold;
use crate::load::{self, Push};
use crate::push::{self, Clock, Step};
use crate::relay_metrics;
use crate::report::{Percentiles, Report};

const VERSION: &str = "5.2.0";
const APP_ID: &str = "bench";
const APP_KEY: &str = "bench-key";
const APP_SECRET: &str = "bench-secret";
/// The relay's WebSocket ping interval, given to Sockudo as its activity timeout, so both
/// ping an idle client as often.
const PING_SECONDS: &str = "25";
const IDLE: usize = 10_000;
const IDLE_WINDOW: Duration = Duration::from_secs(60);
const CHANNELS: usize = 1000;
const RATE: u32 = 1000;
const STEP: Duration = Duration::from_secs(10);

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    anyhow::ensure!(!report.smoke, "the peers benchmark has no smoke run");
    let sockudo = sockudo_binary(report)?;
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let idle = IDLE.min(usize::try_from(limit.saturating_sub(1024))?);

    // Idle sockets, the relay then Sockudo.
    let data_dir = scratch_dir("bench-peers")?;
    let args = RelayArgs::new("127.0.0.1:0", "http://127.0.0.1:9", &data_dir).no_client_limits();
    let relay = RelayProcess::start(&relay_binary()?, &args.build()).await?;
    let url = shared::relay_api::ws_url(&relay.url);
    let relay_url = relay.url.clone();
    let held = hold(relay.pid().context("relay pid")?, &url, idle, IDLE_WINDOW, || {
        relay_metrics::wait_for_connections(&relay_url, idle)
    })
    .await;
    relay.kill9().await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    held?.report(report, "peers", &format!("relay, {idle} idle connections"));

    let peer = Sockudo::start(&sockudo).await?;
    let held = hold(peer.pid()?, &peer.ws_url(), idle, IDLE_WINDOW, || async { Ok(()) }).await;
    held?.report(report, "peers", &format!("Sockudo {VERSION}, {idle} idle connections"));
    drop(peer);

    // Publish → frame at 1,000/s: the relay (push bench's step), then Sockudo.
    let case = format!("relay, {RATE} publishes/s, {CHANNELS} channels");
    relay_publishing(report, &case).await?;
    let case = format!("Sockudo {VERSION}, {RATE} publishes/s, {CHANNELS} channels");
    sockudo_publishing(report, &case, &sockudo).await
}

async fn relay_publishing(report: &mut Report, case: &str) -> Result<()> {
    let push::Pushing { gms, relay_url, data_dir, args } =
        push::gms_pushing_to_a_relay("bench-peers-push").await?;
    let relay = RelayProcess::start(&relay_binary()?, &args.build()).await?;
    let pid = relay.pid().context("relay pid")?;
    let chats = crate::chats::create(&gms.url(), Some(&relay_url), "peers", CHANNELS).await?;
    let clock = Clock::for_steps(&[RATE], STEP);
    let stop = CancellationToken::new();
    for chat in &chats {
        push::subscribe(&relay_url, chat, clock.clone(), stop.clone()).await?;
    }
    relay_metrics::wait_for_connections(&relay_url, CHANNELS).await?;
    let admin = system_tests::gms_client::SimAdmin::new(&gms.url());
    let http = reqwest::Client::new();
    let step = Step { rate: RATE, duration: STEP, first_seq: 0 };
    let outcome =
        step.run(&http, std::slice::from_ref(&relay_url), &chats, &clock, &admin, pid).await;
    stop.cancel();
    relay.kill9().await?;
    gms.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    let outcome = outcome?;
    report.add("peers", case, "accepted", outcome.accepted_rate, "/s");
    report.add("peers", case, "lost", outcome.lost as f64, "frames");
    if let Some(latency) = &outcome.latency {
        report.add("peers", case, "publish→frame p50", latency.p50, "ms");
        report.add("peers", case, "publish→frame p99", latency.p99, "ms");
    }
    report.add("peers", case, "CPU per publish", outcome.cpu_per_push(), "µs");
    Ok(())
}

async fn sockudo_publishing(report: &mut Report, case: &str, binary: &PathBuf) -> Result<()> {
    let peer = Sockudo::start(binary).await?;
    let pid = peer.pid()?;
    let clock = Clock::for_steps(&[RATE], STEP);
    let stop = CancellationToken::new();
    for channel in 0..CHANNELS {
        subscribe(&peer.ws_url(), channel, clock.clone(), stop.clone()).await?;
    }
    let count = usize::try_from(RATE)? * usize::try_from(STEP.as_secs())?;
    let pushes = (0..count)
        .map(|seq| {
            let body =
                json!({"name": "m", "channel": format!("c{}", seq % CHANNELS), "data": seq.to_string()})
                    .to_string();
            Push::new(seq, &peer.events_url(&body)?, &body)
        })
        .collect::<Result<Vec<_>>>()?;
    let before = crate::machine::Usage::of(pid).context("Sockudo usage")?;
    let started = std::time::Instant::now();
    let answered = load::offer(pushes, RATE, &clock, Duration::from_secs(30)).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while clock.received() < answered.accepted && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let after = crate::machine::Usage::of(pid).context("Sockudo usage")?;
    stop.cancel();
    let accepted_rate = answered.accepted as f64 / answered.elapsed.as_secs_f64();
    report.add("peers", case, "accepted", accepted_rate, "/s");
    report.add("peers", case, "lost", count.saturating_sub(clock.received()) as f64, "frames");
    if let Some(latency) = Percentiles::of(&mut clock.latencies()) {
        report.add("peers", case, "publish→frame p50", latency.p50, "ms");
        report.add("peers", case, "publish→frame p99", latency.p99, "ms");
    }
    let cores = after.cores_since(&before, wall);
    report.add("peers", case, "CPU per publish", cores * 1e6 / accepted_rate.max(1.0), "µs");
    Ok(())
}

/// One subscriber of channel `c{channel}`, recording each event's latency.
async fn subscribe(
    url: &str,
    channel: usize,
    clock: Arc<Clock>,
    stop: CancellationToken,
) -> Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let subscribe =
        json!({"event": "pusher:subscribe", "data": {"channel": format!("c{channel}")}});
    ws.send(Message::text(subscribe.to_string())).await?;
    // Subscribed once Sockudo says so: a publish before that would reach nobody.
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("no subscription_succeeded")?;
        match message {
            Some(Ok(Message::Text(text))) if text.contains("subscription_succeeded") => break,
            Some(Ok(_)) => {}
            Some(Err(error)) => anyhow::bail!("subscribing to c{channel}: {error}"),
            None => anyhow::bail!("subscribing to c{channel}: the socket closed"),
        }
    }
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => break,
                message = ws.next() => message,
            };
            let Some(Ok(Message::Text(text))) = message else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                continue;
            };
            let seq = event["data"].as_str().and_then(|d| d.trim_matches('"').parse().ok());
            if event["event"] == "m"
                && let Some(seq) = seq
            {
                clock.received_now(seq);
            }
        }
    });
    Ok(())
}

/// A Sockudo process on a free port, killed when dropped.
struct Sockudo {
    child: tokio::process::Child,
    port: u16,
}

impl Sockudo {
    async fn start(binary: &PathBuf) -> Result<Sockudo> {
        let port = system_tests::harness::free_port()?;
        // Its own working directory: Sockudo reads config/config.toml from there if present.
        let dir = scratch_dir("sockudo")?;
        let child = tokio::process::Command::new(binary)
            .current_dir(&dir)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("SOCKUDO_DEFAULT_APP_ID", APP_ID)
            .env("SOCKUDO_DEFAULT_APP_KEY", APP_KEY)
            .env("SOCKUDO_DEFAULT_APP_SECRET", APP_SECRET)
            .env("ACTIVITY_TIMEOUT", PING_SECONDS)
            // As the relay runs here with `--no-client-limits`: every client is 127.x.
            .env("RATE_LIMITER_ENABLED", "false")
            // Its default app takes 100 connections; the rest are closed after their
            // handshake.
            .env("SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS", "1000000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let peer = Sockudo { child, port };
        // Ready once it accepts a WebSocket.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if tokio_tungstenite::connect_async(peer.ws_url()).await.is_ok() {
                return Ok(peer);
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "Sockudo did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> Result<u32> {
        self.child.id().context("Sockudo pid")
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/app/{APP_KEY}?protocol=7&client=bench&version=1", self.port)
    }

    /// The Pusher HTTP API's signed URL for publishing `body`.
    fn events_url(&self, body: &str) -> Result<String> {
        let path = format!("/apps/{APP_ID}/events");
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let md5 = hex(&hash(MessageDigest::md5(), body.as_bytes())?);
        let query = format!(
            "auth_key={APP_KEY}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={md5}"
        );
        let key = PKey::hmac(APP_SECRET.as_bytes())?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
        signer.update(format!("POST\n{path}\n{query}").as_bytes())?;
        let signature = hex(&signer.sign_to_vec()?);
        Ok(format!("http://127.0.0.1:{}{path}?{query}&auth_signature={signature}", self.port))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sockudo's binary, built from crates.io on first use (`protoc` must be installed).
fn sockudo_binary(report: &Report) -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME")?;
    let root = PathBuf::from(home).join(".cache/gms-async-chat").join(format!("sockudo-{VERSION}"));
    let binary = root.join("bin").join("sockudo");
    if binary.exists() {
        return Ok(binary);
    }
    report.progress(&format!("building Sockudo {VERSION} from crates.io (once; minutes)"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(["install", "sockudo", "--version", VERSION, "--locked", "--root"])
        .arg(&root)
        .status()
        .context("cargo install sockudo")?;
    anyhow::ensure!(status.success(), "building Sockudo failed (is protoc installed?)");
    Ok(binary)
}
