//! Several relays on one real redis-server: a push taken by one relay reaches browsers on
//! every relay exactly once, tokens of one are accepted by all, chats survive Redis and
//! relay restarts, and while Redis is away pushes are refused (GMS resends) and readiness
//! fails, then everything catches up.

use std::time::Duration;

use anyhow::Result;
use shared::gms::ChatEvent;
use shared::relay_api::ServerFrame;

use super::{Setup, next_events};
use crate::harness::{Options, RedisServer};
use crate::ws_client::WsClient;

async fn cluster(redis: &RedisServer, sim: &[&str]) -> Result<Setup> {
    Setup::start(Options::sim(sim).relay(&["--redis-url", &redis.url(), "--ping-interval", "3600"]))
        .await
}

fn texts(events: &[ChatEvent]) -> Vec<String> {
    events.iter().filter_map(|e| e.text.clone()).collect()
}

async fn status(http: &reqwest::Client, url: &str, path: &str) -> Result<u16> {
    Ok(http.get(format!("{url}{path}")).send().await?.status().as_u16())
}

/// Polls an endpoint until it answers `want` (a state change this test caused elsewhere).
async fn wait_status(http: &reqwest::Client, url: &str, path: &str, want: u16) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while status(http, url, path).await? != want {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{path} never answered {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_push_to_one_relay_reaches_browsers_on_every_relay_once() -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = cluster(&redis, &[]).await?;
    let other = setup.system.add_relay().await?;
    // Registered on the first relay, followed on both: the second accepts its token.
    let (credentials, mut here, registered) = setup.subscribed_chat(true).await?;
    let chat_id = credentials.chat_id.clone();
    let mut there = WsClient::connect(&other.url).await?;
    let answer = there.subscribe(&chat_id, &registered.token).await?;
    assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");

    for text in ["one", "two", "three"] {
        setup.admin.agent_says(&chat_id, text).await?;
    }
    for ws in [&mut here, &mut there] {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            seen.extend(texts(&next_events(ws).await?));
        }
        assert_eq!(seen, ["one", "two", "three"]);
        ws.none_within(Duration::from_millis(300)).await?;
    }
    setup.acknowledged(&chat_id, Duration::from_secs(5)).await?;
    here.close().await?;
    there.close().await?;
    other.stop().await?;
    setup.system.stop().await
}

#[tokio::test]
async fn chats_outlive_a_redis_kill_and_every_relay() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let mut setup = cluster(&redis, &[]).await?;
    let credentials = setup.chat(true).await?;
    let registered = setup.register(&credentials).await?;
    setup.system.stop_relay().await?;
    redis.kill().await?;
    redis.restart().await?;
    // A relay that never saw the chat, on a new data directory, knows it from Redis.
    let fresh = setup.system.add_relay().await?;
    let mut ws = WsClient::connect(&fresh.url).await?;
    let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
    assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
    ws.close().await?;
    fresh.stop().await?;
    setup.system.start_relay().await?;
    setup.system.stop().await
}

#[tokio::test]
async fn while_redis_is_away_pushes_wait_and_readiness_fails_then_all_catches_up() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let setup =
        cluster(&redis, &["--push-resend-delay", "0.3", "--push-resend-attempts", "100"]).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(true).await?;
    let chat_id = credentials.chat_id.clone();
    let relay = setup.system.relay_url.clone();
    wait_status(&setup.http, &relay, "/readyz", 200).await?;

    redis.kill().await?;
    wait_status(&setup.http, &relay, "/readyz", 503).await?;
    setup.admin.agent_says(&chat_id, "while away").await?;
    // The push is refused until Redis is back: nothing is acknowledged meanwhile.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let chat = setup.admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_ne!(chat["pendingPushes"], 0, "acknowledged without Redis: {chat}");

    redis.restart().await?;
    wait_status(&setup.http, &relay, "/readyz", 200).await?;
    setup.acknowledged(&chat_id, Duration::from_secs(15)).await?;
    // The browser stayed connected and hears of the line: the resent push's events, or a
    // `changed` after the catch-up (then it refreshes).
    let mut heard = false;
    while !heard {
        heard = match ws.frame(Duration::from_secs(10)).await? {
            ServerFrame::Events { messages, .. } => texts(&messages).contains(&"while away".into()),
            ServerFrame::Changed { .. } => true,
            _ => false,
        };
    }
    ws.close().await?;
    setup.system.stop().await
}

async fn refreshes(setup: &Setup) -> Result<std::collections::HashMap<String, u64>> {
    let stats = setup.admin.stats().await?;
    let chats = stats["chats"].as_object().cloned().unwrap_or_default();
    Ok(chats.into_iter().map(|(id, ops)| (id, ops["refresh"].as_u64().unwrap_or(0))).collect())
}

#[tokio::test]
async fn two_relays_ping_each_chat_once_per_interval_between_them() -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = Setup::start(Options::sim(&[]).relay(&[
        "--redis-url",
        &redis.url(),
        "--ping-interval",
        "0.5",
    ]))
    .await?;
    let other = setup.system.add_relay().await?;
    let credentials = setup.chat(false).await?;
    setup.register(&credentials).await?;
    let count = |all: std::collections::HashMap<String, u64>| {
        all.get(&credentials.chat_id).copied().unwrap_or(0)
    };
    let before = count(refreshes(&setup).await?);
    // A window of six intervals: one relay alone pings about six times, two that do not
    // share the schedule about twelve.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pings = count(refreshes(&setup).await?) - before;
    assert!((4..=8).contains(&pings), "{pings} pings in six intervals");
    other.stop().await?;
    setup.system.stop().await
}

#[tokio::test]
async fn one_relay_watches_the_chat_servers_and_another_takes_over_when_it_leaves() -> Result<()> {
    let redis = RedisServer::start().await?;
    let mut options = Options::sim(&[]).relay(&[
        "--redis-url",
        &redis.url(),
        "--ping-interval",
        "3600",
        "--health-interval",
        "0.1",
    ]);
    options.watch_chat_servers = true;
    let mut setup = Setup::start(options).await?;
    let other = setup.system.add_relay().await?;
    let mut chats = Vec::new();
    for _ in 0..12 {
        let credentials = setup.chat(false).await?;
        setup.register(&credentials).await?;
        chats.push(credentials);
    }
    // Each restart moves the restarted server's chats to the other one; each of them is
    // pinged exactly once however many relays watch.
    for (round, server) in [(1_u64, "117"), (2, "118")] {
        let before = refreshes(&setup).await?;
        let moving: Vec<String> = {
            let hosted = setup.admin.get("/sim/chats").await?;
            hosted
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|c| c["alias"] == server)
                .filter_map(|c| c["chatId"].as_str().map(str::to_owned))
                .collect()
        };
        anyhow::ensure!(!moving.is_empty(), "no chat on {server}");
        // The watching relay has seen the server's process before it restarts.
        let polls = |stats: &serde_json::Value| stats["healthPolls"][server].as_u64().unwrap_or(0);
        let seen = polls(&setup.admin.stats().await?);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while polls(&setup.admin.stats().await?) < seen + 2 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{server} is not watched");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        setup
            .admin
            .ok(&format!("/sim/chat-servers/{server}/restart"), serde_json::json!({}))
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = refreshes(&setup).await?;
            let extra = |id: &String| {
                now.get(id).copied().unwrap_or(0) - before.get(id).copied().unwrap_or(0)
            };
            if moving.iter().all(|id| extra(id) >= 1) {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "round {round}: not restored");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A second watcher would ping within a few health intervals more.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after = refreshes(&setup).await?;
        for chat in &chats {
            let id = &chat.chat_id;
            let extra = after.get(id).copied().unwrap_or(0) - before.get(id).copied().unwrap_or(0);
            assert_eq!(
                extra,
                u64::from(moving.contains(id)),
                "round {round}: {id} pinged {extra} times"
            );
        }
        if round == 1 {
            // The first relay leaves (whether or not it held the lease): the other watches.
            setup.system.stop_relay().await?;
        }
    }
    other.stop().await?;
    setup.system.start_relay().await?;
    setup.system.stop().await
}
