//! Idle WebSocket connections held by one relay process: its memory per connection and
//! its CPU at idle with the 25 s server pings. The clients spread their source addresses
//! over 127.1.x.y so no single address runs out of ports.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use system_tests::harness::{RelayProcess, relay_binary, scratch_dir};
use system_tests::support::RelayArgs;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::machine::Usage;
use crate::relay_metrics;
use crate::report::Report;

/// Descriptors each process keeps for itself beyond one per connection.
const RESERVE: u64 = 512;
/// Connections per client source address.
const PER_SOURCE: usize = 1000;
/// Connections being opened at once.
const OPENING: usize = 256;
/// The most an idle connection may cost the relay, in RSS (at 2,000 connections in the
/// smoke run, where the process's fixed cost still counts: 6.0 KiB measured on
/// 2026-12-07, 16.3 KiB before the socket task shrank). A regression fails the smoke run.
const RSS_BUDGET_KIB: f64 = 7.0;

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    // The relay inherits this process's raised limit and raises its own as well.
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let fits = usize::try_from(limit.saturating_sub(RESERVE))?;
    let (sizes, window): (&[usize], _) = if report.smoke {
        (&[2_000], Duration::from_secs(3))
    } else {
        // Two rounds of 25 s pings and then some.
        (&[10_000, 50_000, 100_000], Duration::from_secs(60))
    };
    for &size in sizes {
        if size > fits {
            report.note(format!(
                "{size} idle connections not measured: a process may open {limit} files \
                 here (hard limit) and raising it needs CAP_SYS_RESOURCE, which this \
                 machine does not grant"
            ));
            continue;
        }
        measure(report, size, window).await?;
    }
    // Sizes that did not fit: measure the largest that does, so there is a figure to
    // extrapolate from.
    let largest = fits / 1000 * 1000;
    if sizes.iter().any(|&s| s > fits) && largest > 0 && !sizes.contains(&largest) {
        measure(report, largest, window).await?;
    }
    Ok(())
}

async fn measure(report: &mut Report, size: usize, window: Duration) -> Result<()> {
    let data_dir = scratch_dir("bench-idle")?;
    let args = RelayArgs::new("127.0.0.1:0", "http://127.0.0.1:9", &data_dir).no_client_limits();
    let relay = RelayProcess::start(&relay_binary()?, &args.build()).await?;
    let pid = relay.pid().context("relay pid")?;
    let url = shared::relay_api::ws_url(&relay.url);
    let relay_url = relay.url.clone();
    let held =
        hold(pid, &url, size, window, || relay_metrics::wait_for_connections(&relay_url, size))
            .await;
    relay.kill9().await?;
    let _ = std::fs::remove_dir_all(data_dir);
    let held = held?;
    held.report(report, "idle", &format!("{size} idle connections"));
    let kib = held.per_connection / 1024.0;
    anyhow::ensure!(
        kib <= RSS_BUDGET_KIB,
        "an idle connection costs the relay {kib:.2} KiB of RSS, over its {RSS_BUDGET_KIB} KiB budget"
    );
    Ok(())
}

/// What holding idle connections cost a server process.
pub(crate) struct Held {
    connect_rate: f64,
    rss_bytes: u64,
    /// RSS bytes per connection.
    pub(crate) per_connection: f64,
    cores: f64,
    size: usize,
    pings: f64,
}

impl Held {
    pub(crate) fn report(&self, report: &mut Report, bench: &'static str, case: &str) {
        report.add(bench, case, "connect rate", self.connect_rate, "conn/s");
        report.add(bench, case, "RSS", self.rss_bytes as f64 / 1048576.0, "MiB");
        report.add(bench, case, "RSS per connection", self.per_connection / 1024.0, "KiB");
        report.add(bench, case, "CPU at idle", self.cores, "cores");
        report.add(bench, case, "CPU per connection", self.cores * 1e6 / self.size as f64, "µs/s");
        report.add(bench, case, "server pings seen", self.pings, "/s");
    }
}

/// Opens `size` WebSockets to `url` on the server process `pid`, waits for `settled` (the
/// server counts them), then measures its memory and its CPU over `window`. The same
/// client for every server: it answers WebSocket pings and Pusher's `pusher:ping`.
pub(crate) async fn hold<F: std::future::Future<Output = Result<()>>>(
    pid: u32,
    url: &str,
    size: usize,
    window: Duration,
    settled: impl FnOnce() -> F,
) -> Result<Held> {
    let before = Usage::of(pid).context("server usage")?;
    let addr: SocketAddr =
        url.trim_start_matches("ws://").split('/').next().context("a ws:// URL")?.parse()?;
    let stop = CancellationToken::new();
    let pings = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let opened: Vec<Result<()>> = futures_util::stream::iter(0..size)
        .map(|i| open(addr, url, i, (pings.clone(), closed.clone()), stop.clone()))
        .buffer_unordered(OPENING)
        .collect()
        .await;
    let failures = opened.iter().filter(|r| r.is_err()).count();
    if let Some(Err(error)) = opened.into_iter().find(Result::is_err) {
        anyhow::bail!("{failures} of {size} connections failed, e.g. {error:#}");
    }
    settled().await?;
    let connect_time = started.elapsed();

    let held = Usage::of(pid).context("server usage")?;
    let pings_before = pings.load(Ordering::Relaxed);
    let window_start = Instant::now();
    tokio::time::sleep(window).await;
    let idle = Usage::of(pid).context("server usage")?;
    let wall = window_start.elapsed();
    let pings_seen = pings.load(Ordering::Relaxed) - pings_before;
    stop.cancel();
    // A server that closes what it accepted is not holding it.
    let closed = closed.load(Ordering::Relaxed);
    anyhow::ensure!(closed == 0, "the server closed {closed} of the {size} idle connections");
    Ok(Held {
        connect_rate: size as f64 / connect_time.as_secs_f64(),
        rss_bytes: held.rss_bytes,
        per_connection: held.rss_bytes.saturating_sub(before.rss_bytes) as f64 / size as f64,
        cores: idle.cores_since(&held, wall),
        size,
        pings: pings_seen as f64 / wall.as_secs_f64(),
    })
}

/// Opens connection `i` from its source address and keeps reading it (which answers the
/// server's WebSocket pings; Pusher's are answered here) until `stop`.
async fn open(
    server: SocketAddr,
    url: &str,
    i: usize,
    (pings, closed): (Arc<AtomicU64>, Arc<AtomicU64>),
    stop: CancellationToken,
) -> Result<()> {
    let source = i / PER_SOURCE;
    let ip = Ipv4Addr::new(127, 1, u8::try_from(source / 250)?, u8::try_from(source % 250 + 1)?);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip.into(), 0))?;
    let stream = socket.connect(server).await?;
    // Small buffers like a browser's idle socket; the defaults would make the client
    // fleet, not the server, the memory limit of this benchmark.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                message = ws.next() => match message {
                    Some(Ok(Message::Ping(_))) => {
                        pings.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(Message::Text(text))) if text.contains("pusher:ping") => {
                        pings.fetch_add(1, Ordering::Relaxed);
                        let pong = Message::text(r#"{"event":"pusher:pong","data":{}}"#);
                        if ws.send(pong).await.is_err() {
                            closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                },
            }
        }
    });
    Ok(())
}
