//! Several relays on one real redis-server: a push taken by one relay reaches browsers on
//! every relay exactly once, tokens of one are accepted by all, chats survive Redis and
//! relay restarts, and while Redis is away pushes are refused (GMS resends) and readiness
//! fails, then everything catches up. `redis_ha` covers the Chat Server watch.

use std::time::Duration;

use anyhow::Result;
use shared::gms::ChatEvent;
use shared::relay_api::{PUSH_PATH, SESSIONS_PATH, ServerFrame};

use super::{Setup, next_events};
use crate::harness::{Options, RedisServer};
use crate::support::{RelayArgs, SERVICE, Wait, until_every};
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
    let what = format!("{path} answering {want}");
    until_every(&what, Duration::from_secs(15), Duration::from_millis(50), async || {
        let answer = status(http, url, path).await?;
        Ok(Wait::done_if(answer == want, answer))
    })
    .await
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

#[tokio::test]
async fn three_relays_ping_each_chat_once_per_interval_between_them() -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = Setup::start(Options::sim(&[]).relay(&[
        "--redis-url",
        &redis.url(),
        "--ping-interval",
        "0.5",
    ]))
    .await?;
    let others = [setup.system.add_relay().await?, setup.system.add_relay().await?];
    let credentials = setup.chat(false).await?;
    setup.register(&credentials).await?;
    let count = |all: std::collections::HashMap<String, u64>| {
        all.get(&credentials.chat_id).copied().unwrap_or(0)
    };
    let before = count(setup.admin.refreshes().await?);
    // A window of six intervals: one relay alone pings about six times, three that do not
    // share the schedule about eighteen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pings = count(setup.admin.refreshes().await?) - before;
    assert!((4..=8).contains(&pings), "{pings} pings in six intervals");
    // Two relays leave: the one left goes on pinging the chat as often.
    for other in others {
        other.stop().await?;
    }
    let before = count(setup.admin.refreshes().await?);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pings = count(setup.admin.refreshes().await?) - before;
    assert!((4..=8).contains(&pings), "{pings} pings in six intervals by the relay left");
    setup.system.stop().await
}

#[tokio::test]
async fn a_burst_of_pushes_over_three_relays_costs_about_one_acknowledgement() -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = cluster(&redis, &[]).await?;
    let nodes = [setup.system.add_relay().await?, setup.system.add_relay().await?];
    let credentials = setup.chat(false).await?;
    setup.register(&credentials).await?;
    let chat_id = credentials.chat_id.clone();
    // Every ping takes 300 ms, so the whole burst lands while the first is under way.
    setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 300})).await?;
    let count =
        |all: std::collections::HashMap<String, u64>| all.get(&chat_id).copied().unwrap_or(0);
    let before = count(setup.admin.refreshes().await?);
    let body =
        serde_json::json!({"deviceId": "d", "message": "New message", "session-id": chat_id})
            .to_string();
    let query = super::test_secret_query();
    let urls = [setup.system.relay_url.clone(), nodes[0].url.clone(), nodes[1].url.clone()];
    let mut burst = Vec::new();
    for _ in 0..10 {
        for url in &urls {
            let request = setup
                .http
                .post(format!("{url}{PUSH_PATH}{query}"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            burst.push(request);
        }
    }
    for answer in futures_util::future::join_all(burst).await {
        assert_eq!(answer?.status().as_u16(), 200);
    }
    // The pings are done well within this (one, then one more for the pushes it missed).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pings = count(setup.admin.refreshes().await?) - before;
    assert!((1..=2).contains(&pings), "{pings} acknowledgements for one burst over three relays");
    setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 0})).await?;
    for node in nodes {
        node.stop().await?;
    }
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_during_another_relays_acknowledgement_gets_one_more_ping_after_it() -> Result<()> {
    // Pushes with new events: each relay's write of the record takes the claim.
    one_more_ping_after_the_first(true).await
}

#[tokio::test]
async fn a_push_that_changes_nothing_during_another_relays_acknowledgement_gets_one_more_ping()
-> Result<()> {
    // Pushes without events write nothing: the claim is taken before the ping.
    one_more_ping_after_the_first(false).await
}

async fn one_more_ping_after_the_first(events: bool) -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = cluster(&redis, &[]).await?;
    let other = setup.system.add_relay().await?;
    let credentials = setup.chat(false).await?;
    setup.register(&credentials).await?;
    let chat_id = credentials.chat_id.clone();
    // GMS takes a second over each ping, so the second push lands during the first's.
    setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 1000})).await?;
    let pings = async || -> Result<u64> {
        Ok(setup.admin.refreshes().await?.get(&chat_id).copied().unwrap_or(0))
    };
    let before = pings().await?;
    let push = async |url: &str, index: u64| -> Result<u16> {
        let mut body =
            serde_json::json!({"deviceId": "d", "message": "New message", "session-id": chat_id});
        if events {
            body["nextPosition"] = (index + 1).into();
            body["messages"] = serde_json::json!([{"index": index, "type": "Message",
                "text": format!("line {index}"), "utcTime": 1_732_460_000_000_u64,
                "from": {"nickname": "Ann", "participantId": 2, "type": "Agent"}}]);
        }
        let query = super::test_secret_query();
        let answer = setup
            .http
            .post(format!("{url}{PUSH_PATH}{query}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        Ok(answer.status().as_u16())
    };
    let reached = async |count: u64| {
        until_every("the pings", Duration::from_secs(10), Duration::from_millis(20), async || {
            let seen = pings().await? - before;
            Ok(Wait::done_if(seen >= count, seen))
        })
        .await
    };
    assert_eq!(push(&setup.system.relay_url, 100).await?, 200);
    reached(1).await?;
    let first = std::time::Instant::now();
    assert_eq!(push(&other.url, 101).await?, 200);
    reached(2).await?;
    // The second ping is the first relay's once more, after GMS answered its first: a
    // ping of the other relay's own would have come at once, and none would fail the wait.
    let apart = first.elapsed();
    assert!(apart >= Duration::from_millis(800), "the second ping came {apart:?} after the first");
    setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 0})).await?;
    other.stop().await?;
    setup.system.stop().await
}

/// One relay on Redis with one registered chat, whose hash the test reads and writes.
struct ChatOnRedis {
    redis: RedisServer,
    setup: Setup,
    chat_id: String,
    /// The chat's hash.
    key: String,
}

impl ChatOnRedis {
    async fn start() -> Result<ChatOnRedis> {
        let redis = RedisServer::start().await?;
        let setup = cluster(&redis, &[]).await?;
        let credentials = setup.chat(false).await?;
        setup.register(&credentials).await?;
        let chat_id = credentials.chat_id.clone();
        let key = format!("gmschat:{{{chat_id}}}:chat");
        Ok(ChatOnRedis { redis, setup, chat_id, key })
    }

    async fn connection(&self) -> Result<::redis::aio::MultiplexedConnection> {
        Ok(::redis::Client::open(self.redis.url())?.get_multiplexed_async_connection().await?)
    }

    /// Pushes the agent's line `index` to the relay; answers its status.
    async fn agent_line(&self, index: u64) -> Result<u16> {
        let body = serde_json::json!({"deviceId": "d", "message": "New message",
            "session-id": self.chat_id, "nextPosition": index + 1,
            "messages": [{"index": index, "type": "Message", "text": format!("line {index}"),
                "utcTime": 1_732_460_000_000_u64,
                "from": {"nickname": "Ann", "participantId": 2, "type": "Agent"}}]});
        let query = super::test_secret_query();
        let url = format!("{}{PUSH_PATH}{query}", self.setup.system.relay_url);
        Ok(self.setup.http.post(url).json(&body).send().await?.status().as_u16())
    }
}

#[tokio::test]
async fn a_claim_left_by_a_relay_that_died_holds_pushes_until_it_lapses() -> Result<()> {
    let chat = ChatOnRedis::start().await?;
    let mut redis_connection = chat.connection().await?;
    let now = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis(),
    )?;
    let mut claim = async |pushes: i64, lapses_at: u64| -> Result<()> {
        ::redis::cmd("HSET")
            .arg(&chat.key)
            .arg("a")
            .arg(pushes)
            .arg("d")
            .arg(lapses_at)
            .query_async::<()>(&mut redis_connection)
            .await?;
        Ok(())
    };
    let pings = async || -> Result<u64> {
        Ok(chat.setup.admin.refreshes().await?.get(&chat.chat_id).copied().unwrap_or(0))
    };
    // gms-sim's own pushes of the new chat are acknowledged (and no resend comes) first.
    chat.setup.acknowledged(&chat.chat_id, Duration::from_secs(10)).await?;
    let before = pings().await?;

    // Another relay claimed the chat's acknowledgement a moment ago and died mid-ping: its
    // claim holds for now, so this push is added to it, not pinged.
    claim(1, now + 60_000).await?;
    assert_eq!(chat.agent_line(100).await?, 200);
    let deferred = super::metric(&chat.setup.metrics().await?, "relay_acks_deferred_total", &[]);
    assert!(deferred >= 1.0, "the push joined the claim held");
    let mut reader = chat.connection().await?;
    let covered: i64 =
        ::redis::cmd("HGET").arg(&chat.key).arg("a").query_async(&mut reader).await?;
    assert_eq!(covered, 2, "the claim covers the push");

    // Once the claim has lapsed, the next push takes it, pings, and ends it.
    claim(2, now.saturating_sub(1)).await?;
    assert_eq!(chat.agent_line(101).await?, 200);
    let what = "the ping and the claim's end";
    until_every(what, Duration::from_secs(10), Duration::from_millis(20), async || {
        let seen = pings().await? - before;
        let left: Option<i64> =
            ::redis::cmd("HGET").arg(&chat.key).arg("a").query_async(&mut reader).await?;
        let state = format!("{seen} pings, the claim at {left:?}");
        Ok(Wait::done_if(seen >= 1 && left.is_some_and(|a| a <= 0), state))
    })
    .await?;
    chat.setup.system.stop().await
}

/// Another relay forgets a chat while this one pings it: the claim's release finds no
/// claim, and leaves no hash of the chat behind (it would never expire).
#[tokio::test]
async fn a_chat_forgotten_during_its_acknowledgement_leaves_no_key_behind() -> Result<()> {
    let chat = ChatOnRedis::start().await?;
    let mut redis_connection = chat.connection().await?;
    // GMS takes a second over the acknowledging ping.
    chat.setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 1000})).await?;
    assert_eq!(chat.agent_line(100).await?, 200);
    // As another relay's forget does, during the ping.
    ::redis::cmd("DEL").arg(&chat.key).query_async::<()>(&mut redis_connection).await?;

    let what = "the claim's release, and no key left";
    until_every(what, Duration::from_secs(10), Duration::from_millis(20), async || {
        let stats: String =
            ::redis::cmd("INFO").arg("commandstats").query_async(&mut redis_connection).await?;
        let released = stats.lines().any(|l| l.starts_with("cmdstat_hincrby:calls="));
        let left: bool =
            ::redis::cmd("EXISTS").arg(&chat.key).query_async(&mut redis_connection).await?;
        let state = format!("released: {released}, key left: {left}");
        Ok(Wait::done_if(released && !left, state))
    })
    .await?;
    chat.setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 0})).await?;
    chat.setup.system.stop().await
}

#[tokio::test]
async fn relays_reach_redis_over_tls() -> Result<()> {
    let redis = RedisServer::start_tls().await?;
    let setup = Setup::start(Options::sim(&[])).await?;
    let data_dir = crate::harness::scratch_dir("relay-tls")?;
    let args = RelayArgs::new("127.0.0.1:0", &setup.system.gms.url(), &data_dir)
        .redis(&redis.url())
        .build();
    // The relay trusts the test certificate as it would a site's own CA bundle.
    let ca = redis.ca_file();
    let env = [("SSL_CERT_FILE", ca.as_os_str())];
    let relay =
        crate::harness::RelayProcess::start_with_env(&crate::harness::relay_binary()?, &args, &env)
            .await?;
    let credentials = setup.chat(false).await?;
    let body = shared::relay_api::RegisterSession::new(SERVICE, &credentials, None);
    let registered =
        setup.http.post(format!("{}{SESSIONS_PATH}", relay.url)).json(&body).send().await?;
    assert_eq!(registered.status().as_u16(), 200);
    let held: serde_json::Value =
        setup.http.get(format!("{}/status", relay.url)).send().await?.json().await?;
    assert_eq!(held["chats"], 1, "{held}");
    assert_eq!(status(&setup.http, &relay.url, "/readyz").await?, 200);
    relay.kill9().await?;
    let _ = std::fs::remove_dir_all(data_dir);
    setup.system.stop().await
}
