//! The relay's lifecycle and its public edges: the ordered shutdown, a peer that stops
//! reading, per-address limits, one answer per subscribe, metrics described from the start.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::json;
use shared::relay_api::{SESSIONS_PATH, ServerFrame, close_code};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Setup, metric, next_events, test_secret_query};
use crate::harness::Options;
use crate::support::{RelayArgs, SERVICE, Wait, until};
use crate::ws_client::WsClient;

#[tokio::test]
async fn shutdown_closes_every_socket_with_4000_and_drains_acknowledgements() -> Result<()> {
    // One ping at a time, each slowed down: the acknowledgements are still queued when
    // the shutdown starts.
    let options = Options::sim(&["--push-resend-delay", "60"]).relay(&["--gms-concurrency", "1"]);
    let mut setup = Setup::start(options).await?;
    let mut chats = Vec::new();
    for _ in 0..10 {
        let (credentials, mut ws, _) = setup.subscribed_chat(true).await?;
        let chat = credentials.chat_id;
        setup.admin.ok(&format!("/sim/chats/{chat}/agent/join"), json!({})).await?;
        next_events(&mut ws).await?;
        setup.acknowledged(&chat, Duration::from_secs(5)).await?;
        chats.push((chat, ws));
    }
    setup.admin.ok("/sim/faults", json!({"delayMs": 150})).await?;
    for (chat, ws) in &mut chats {
        setup.admin.agent_says(chat, "one more thing").await?;
        next_events(ws).await?;
    }
    let started = tokio::time::Instant::now();
    setup.system.stop_relay().await?;
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    for (chat, ws) in &mut chats {
        let (frames, code) = ws.frames_until_closed().await?;
        assert_eq!(code, Some(close_code::GOING_AWAY), "{chat}: after {frames:?}");
        let state = setup.admin.get(&format!("/sim/chats/{chat}")).await?;
        assert_eq!(state["pendingPushes"], 0, "{chat} acknowledged during the drain: {state}");
    }
    setup.system.stop().await
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_within_the_pong_timeout() -> Result<()> {
    let options = Options::sim(&[]).relay(&[
        "--ws-ping",
        "0.5",
        "--ws-pong-timeout",
        "1",
        "--ws-queue",
        "1024",
    ]);
    let setup = Setup::start(options).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(false).await?;
    let chat = credentials.chat_id;
    setup.admin.ok(&format!("/sim/chats/{chat}/agent/join"), json!({})).await?;
    next_events(&mut ws).await?;

    // A peer with a tiny receive window that subscribes, then never reads again.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let address = setup.system.relay_url.trim_start_matches("http://").parse()?;
    let stream = socket.connect(address).await?;
    let url = shared::relay_api::ws_url(&setup.system.relay_url);
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (stalled, _) = tokio_tungstenite::client_async(url, stream).await?;
    let mut stalled = WsClient::from_socket(stalled);
    stalled.subscribe(&chat, &registered.token).await?;

    let before = metric(&setup.metrics().await?, "relay_ws_write_timeouts_total", &[]);
    // The peer that keeps up reads all along.
    const MESSAGES: usize = 300;
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < MESSAGES {
            seen += next_events(&mut ws).await?.len();
        }
        anyhow::Ok(ws)
    });
    // 300 frames of 20 KB: more than the kernel buffers of the stalled socket hold.
    let long = "x".repeat(20_000);
    for _ in 0..MESSAGES {
        setup.admin.agent_says(&chat, &long).await?;
    }
    until("the stalled peer dropped", Duration::from_secs(30), async || {
        let timeouts = metric(&setup.metrics().await?, "relay_ws_write_timeouts_total", &[]);
        Ok(Wait::done_if(timeouts > before, format!("{timeouts} write timeouts")))
    })
    .await?;
    let _reader_kept_up = reader.await??;
    let status: serde_json::Value =
        setup.http.get(format!("{}/status", setup.system.relay_url)).send().await?.json().await?;
    assert_eq!(status["connections"], 1, "{status}");
    setup.system.stop().await
}

#[tokio::test]
async fn registrations_are_limited_per_client_address_before_reaching_gms() -> Result<()> {
    let options =
        Options::sim(&[]).relay(&["--register-rate", "5", "--trusted-proxy", "127.0.0.0/8"]);
    let setup = Setup::start(options).await?;
    let refreshes = || async {
        Ok::<u64, anyhow::Error>(
            setup.admin.stats().await?["requests"]["refresh"].as_u64().unwrap_or(0),
        )
    };
    let before = refreshes().await?;
    let made_up = shared::relay_api::RegisterSession {
        service: SERVICE.into(),
        chat_id: "made-up".into(),
        user_id: "U".into(),
        secure_key: "K".into(),
        alias: "117".into(),
        device_id: None,
        capture: false,
        identity: None,
    };
    let url = format!("{}{SESSIONS_PATH}", setup.system.relay_url);
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let response = setup.http.post(&url).json(&made_up).send().await?;
        if response.status() == 429 {
            let wait: u64 =
                response.headers().get("retry-after").context("Retry-After")?.to_str()?.parse()?;
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15, "{statuses:?}");
    assert_eq!(refreshes().await? - before, 5, "GMS saw only what the limit let through");

    // Behind the trusted proxy, each forwarded client has its own allowance.
    let forwarded = setup
        .http
        .post(&url)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&made_up)
        .send()
        .await?;
    assert_eq!(forwarded.status(), 403, "a different client reaches GMS");
    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_rate_limited_total", &["endpoint=\"register\""]) >= 15.0);
    setup.system.stop().await
}

#[tokio::test]
async fn open_websockets_are_limited_per_client_address() -> Result<()> {
    let setup = Setup::start(Options::sim(&[]).relay(&["--ws-per-address", "3"])).await?;
    let url = shared::relay_api::ws_url(&setup.system.relay_url);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(WsClient::connect(&setup.system.relay_url).await?);
    }
    let refused = tokio_tungstenite::connect_async(url.clone().into_client_request()?).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => anyhow::bail!("the fourth socket was not refused: {:?}", other.map(|_| ())),
    }
    // A closed socket gives its slot back.
    open.pop().context("a socket")?.close().await?;
    until("a slot given back", Duration::from_secs(5), async || {
        Ok(match tokio_tungstenite::connect_async(url.clone()).await {
            Ok(_) => Wait::Done(()),
            Err(error) => Wait::Still(error.to_string()),
        })
    })
    .await?;
    setup.system.stop().await
}

#[tokio::test]
async fn a_subscribe_to_a_forgotten_chat_is_ended_and_stays_so() -> Result<()> {
    let mut setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(false).await?;
    let registered = setup.register(&credentials).await?;
    assert_eq!(setup.forget(&credentials.chat_id, &registered.token).await?, 204);
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
    assert_eq!(answer, ServerFrame::Ended { chat_id: credentials.chat_id.clone() });
    // A push with every token brings the chat back into the store; this socket was told
    // it ended and is not subscribed, so it hears nothing of it.
    let push = json!({
        "deviceId": "d", "message": "New message", "chatId": credentials.chat_id,
        "userId": credentials.user_id, "secureKey": credentials.secure_key, "alias": credentials.alias,
    });
    assert_eq!(setup.push(&test_secret_query(), push.to_string()).await?, 200);
    setup.system.stop_relay().await?;
    let (frames, code) = ws.frames_until_closed().await?;
    assert_eq!((frames, code), (vec![], Some(close_code::GOING_AWAY)));
    setup.system.stop().await
}

#[tokio::test]
async fn a_fresh_relay_describes_every_metric() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let text = setup.metrics().await?;
    for name in [
        "relay_pushes_total",
        "relay_ws_connections",
        "relay_ws_frames_sent_total",
        "relay_ws_slow_consumers_total",
        "relay_ws_write_timeouts_total",
        "relay_store_commits_total",
        "relay_store_failures_total",
        "relay_rate_limited_total",
        "relay_restored_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help:\n{text}");
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} has no series:\n{text}");
    }
    // The independent check; `cargo xtask test` installs it (Debian's prometheus).
    if let Some(promtool) = which("promtool") {
        let checked = run_with_input(&promtool, &["check", "metrics"], text.as_bytes()).await?;
        let report = String::from_utf8_lossy(&checked.stdout).into_owned()
            + &String::from_utf8_lossy(&checked.stderr);
        assert!(checked.status.success() && report.trim().is_empty(), "promtool: {report}");
    }
    setup.system.stop().await
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// Runs `program args` with `input` on its standard input; its whole output.
async fn run_with_input(
    program: &std::path::Path,
    args: &[&str],
    input: &[u8],
) -> Result<std::process::Output> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(input).await?;
    drop(stdin);
    Ok(child.wait_with_output().await?)
}

#[tokio::test]
async fn a_push_the_relay_has_already_seen_counts_as_a_resend() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let (credentials, _ws, registered) = setup.subscribed_chat(false).await?;
    let repeats = || async {
        Ok::<f64, anyhow::Error>(metric(&setup.metrics().await?, "relay_push_repeats_total", &[]))
    };
    let before = repeats().await?;
    let seen = json!({"deviceId": "d", "message": "m", "chatId": credentials.chat_id,
                      "nextPosition": registered.position});
    assert_eq!(setup.push(&test_secret_query(), seen.to_string()).await?, 200);
    assert!(repeats().await? > before, "a push at the stored position is a resend");
    setup.system.stop().await
}

#[tokio::test]
async fn readiness_fails_with_the_one_error_shape_when_gms_is_unreachable() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let ready = setup.http.get(format!("{}/readyz", setup.system.relay_url)).send().await?;
    assert_eq!(ready.status(), 200);
    setup.system.gms.shutdown.cancel();
    let url = format!("{}/readyz", setup.system.relay_url);
    until("readiness fails", Duration::from_secs(10), async || {
        let status = setup.http.get(&url).send().await?.status();
        Ok(Wait::done_if(status == 503, status))
    })
    .await?;
    let refused = setup.http.get(&url).send().await?;
    let body: shared::relay_api::ErrorBody = refused.json().await?;
    assert_eq!(body.code, "not_ready");
    assert!(body.message.contains("GMS"), "{}", body.message);
    setup.system.stop().await
}

/// A relay of its own in this process with `extra` flags and GMS at `gms_url`; answers its
/// address and the token that stops it.
async fn relay_at(
    gms_url: &str,
    extra: &[&str],
) -> Result<(String, tokio_util::sync::CancellationToken)> {
    let dir = crate::harness::scratch_dir("relay-own")?;
    let config = RelayArgs::new("127.0.0.1:0", gms_url, &dir).flags(extra).config()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move { relay::run(listener, config, stopped.cancelled_owned()).await });
    Ok((url, stop))
}

#[tokio::test]
async fn readiness_asks_gms_for_a_connection_at_most_every_few_seconds() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // GMS as a socket that counts the connections it accepts.
    let gms = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gms_url = format!("http://{}", gms.local_addr()?);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = gms.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let (relay, stop) = relay_at(&gms_url, &[]).await?;
    let http = reqwest::Client::new();
    for _ in 0..30 {
        assert_eq!(http.get(format!("{relay}/readyz")).send().await?.status(), 200);
    }
    let probes = accepted.load(Ordering::SeqCst);
    assert!((1..=2).contains(&probes), "{probes} connections for 30 readiness checks");
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn monitoring_endpoints_can_live_on_their_own_address() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let admin = crate::harness::free_port()?;
    let admin_address = format!("127.0.0.1:{admin}");
    let (relay, stop) =
        relay_at(&setup.system.gms.url(), &["--admin-listen", &admin_address]).await?;
    let http = reqwest::Client::new();
    let status = |url: String| {
        let http = http.clone();
        async move { Ok::<u16, anyhow::Error>(http.get(url).send().await?.status().as_u16()) }
    };
    until("the monitoring listener answers", Duration::from_secs(10), async || {
        let answer = status(format!("http://{admin_address}/metrics")).await.unwrap_or(0);
        Ok(Wait::done_if(answer == 200, answer))
    })
    .await?;
    assert_eq!(status(format!("http://{admin_address}/status")).await?, 200);
    for path in ["/metrics", "/status"] {
        assert_eq!(status(format!("{relay}{path}")).await?, 404, "{path} on the public address");
    }
    for base in [relay.clone(), format!("http://{admin_address}")] {
        assert_eq!(status(format!("{base}/healthz")).await?, 200, "{base}");
    }
    stop.cancel();
    setup.system.stop().await
}
