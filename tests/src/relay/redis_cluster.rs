//! Three relay processes on one redis-server behind a round-robin "load balancer" (gms-sim
//! spreads its pushes over all three): every frame reaches every subscriber once and in
//! order, and after one relay is killed with SIGKILL its visitors reconnect to another,
//! catch up, and lose nothing, while its chats stay acknowledged and pinged. The Chat
//! Server watcher killed mid-restoration is replaced and the restoration finished.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser as _;
use shared::gms::{ChatOperation, Credentials, PushSubscription, async_push_user_data};
use shared::relay_api::{RegisterSession, ServerFrame, SessionRegistered};

use super::SERVICE;
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{
    NO_CLIENT_LIMITS, RedisServer, RelayProcess, TEST_PUSH_SECRET, free_port, relay_binary,
    scratch_dir,
};
use crate::ws_client::WsClient;

const NODES: usize = 3;
const CHATS: usize = 6;

/// A visitor: a chat, its token, its socket, and the agent lines it has, by index.
struct Visitor {
    credentials: Credentials,
    token: String,
    node: usize,
    ws: WsClient,
    lines: BTreeMap<u64, String>,
    duplicates: usize,
    /// `changed` frames received (each cost a refresh): a push whose frame raced the
    /// acknowledgement of an earlier one may cause one.
    changed: usize,
}

impl Visitor {
    /// Reads frames until it holds `count` agent lines (fails after 20 s); a `changed`
    /// frame makes it refresh from GMS, as the widget does.
    async fn until(&mut self, gms: &GmsClient, count: usize) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.lines.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.ws.frame(left).await? {
                ServerFrame::Events { messages, .. } => {
                    for event in messages {
                        if let (Some(index), Some(text)) = (event.index, event.text)
                            && text.starts_with("line ")
                            && self.lines.insert(index, text).is_some()
                        {
                            self.duplicates += 1;
                        }
                    }
                }
                ServerFrame::Changed { .. } => {
                    self.changed += 1;
                    self.refresh(gms).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The lines after the last one held, from GMS.
    async fn refresh(&mut self, gms: &GmsClient) -> Result<()> {
        let from = self.lines.keys().next_back().map_or(1, |i| i + 1);
        let position = shared::transcript::TranscriptPosition::from_value(from);
        let response = gms.call(&ChatOperation::Refresh { position }, &self.credentials).await?;
        for event in response.messages {
            if let (Some(index), Some(text)) = (event.index, event.text)
                && text.starts_with("line ")
            {
                self.lines.insert(index, text);
            }
        }
        Ok(())
    }
}

fn expected(upto: usize) -> Vec<String> {
    (0..upto).map(|n| format!("line {n}")).collect()
}

#[tokio::test]
async fn three_relays_deliver_every_line_once_and_survive_one_killed() -> Result<()> {
    let redis = RedisServer::start().await?;
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect::<Result<_>>()?;
    let urls: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let mut sim_args: Vec<String> = ["gms-sim", "--listen", "127.0.0.1:0"]
        .iter()
        .chain(&["--push-resend-delay", "0.3", "--push-resend-attempts", "100"])
        .map(|s| (*s).to_owned())
        .collect();
    for url in &urls {
        sim_args
            .extend(["--push-url".to_owned(), format!("{url}/gms/push?secret={TEST_PUSH_SECRET}")]);
    }
    let sim = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;
    let binary = relay_binary()?;
    let mut relays = Vec::new();
    let mut dirs = Vec::new();
    for port in &ports {
        let dir = scratch_dir("relay-cluster")?;
        let args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--gms-url",
            &sim.url(),
            "--data-dir",
            &dir.display().to_string(),
            "--push-secret",
            TEST_PUSH_SECRET,
            "--redis-url",
            &redis.url(),
            "--ping-interval",
            "1",
        ]
        .iter()
        .chain(&NO_CLIENT_LIMITS)
        .map(|s| (*s).to_owned())
        .collect();
        relays.push(Some(RelayProcess::start(&binary, &args).await?));
        dirs.push(dir);
    }
    let gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let http = reqwest::Client::new();

    // Each chat registered on one relay and followed on the next.
    let mut visitors = Vec::new();
    for n in 0..CHATS {
        let mut subscription = PushSubscription::new(format!("dev-cluster-{n}"), "");
        subscription.resend = true;
        let (credentials, _) = gms.create("Jane", async_push_user_data(&subscription)).await?;
        let registered: SessionRegistered = http
            .post(format!("{}/v1/sessions", urls[n % NODES]))
            .json(&RegisterSession::new(SERVICE, &credentials, None))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let node = (n + 1) % NODES;
        let mut ws = WsClient::connect(&urls[node]).await?;
        let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
        anyhow::ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
        let token = registered.token;
        visitors.push(Visitor {
            credentials,
            token,
            node,
            ws,
            lines: BTreeMap::new(),
            duplicates: 0,
            changed: 0,
        });
    }

    // The agent writes in every chat; the pushes land on all three relays in turn.
    for line in 0..4 {
        for visitor in &visitors {
            admin.agent_says(&visitor.credentials.chat_id, &format!("line {line}")).await?;
        }
    }
    for visitor in &mut visitors {
        visitor
            .until(&gms, 4)
            .await
            .with_context(|| format!("before the kill, {:?}", visitor.lines))?;
        assert_eq!(visitor.lines.values().cloned().collect::<Vec<_>>(), expected(4));
        assert_eq!(visitor.duplicates, 0, "a frame arrived twice");
    }

    // One relay dies mid-traffic.
    let dead = 2;
    relays[dead].take().context("relay")?.kill9().await?;
    for line in 4..8 {
        for visitor in &visitors {
            admin.agent_says(&visitor.credentials.chat_id, &format!("line {line}")).await?;
        }
    }
    for visitor in &mut visitors {
        if visitor.node == dead {
            // As the widget does: reconnect elsewhere, subscribe, and refresh from the
            // last line held if the relay's position is ahead of it.
            visitor.node = (dead + 1) % NODES;
            visitor.ws = WsClient::connect(&urls[visitor.node]).await?;
            let chat_id = visitor.credentials.chat_id.clone();
            let answer = visitor.ws.subscribe(&chat_id, &visitor.token).await?;
            anyhow::ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
            let behind = matches!(answer, ServerFrame::Subscribed { position, .. }
                if visitor.lines.keys().next_back().is_none_or(|last| position > last + 1));
            if behind {
                visitor.refresh(&gms).await?;
            }
        }
        visitor.until(&gms, 8).await.with_context(|| {
            format!("after the kill, node {} {:?}", visitor.node, visitor.lines)
        })?;
        assert_eq!(visitor.lines.values().cloned().collect::<Vec<_>>(), expected(8));
    }

    // Every push acknowledged by the relays left, and every chat still pinged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let chats = admin.get("/sim/chats").await?;
        let waiting = chats
            .as_array()
            .map_or(0, |all| all.iter().filter(|c| c["pendingPushes"].as_u64() != Some(0)).count());
        if waiting == 0 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{waiting} chats unacknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refreshes = |stats: serde_json::Value, id: &str| stats["chats"][id]["refresh"].as_u64();
    let before: Vec<_> = {
        let stats = admin.stats().await?;
        visitors.iter().map(|v| refreshes(stats.clone(), &v.credentials.chat_id)).collect()
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = admin.stats().await?;
    for (visitor, before) in visitors.iter().zip(before) {
        let now = refreshes(stats.clone(), &visitor.credentials.chat_id);
        assert!(now > before, "chat {} no longer pinged", visitor.credentials.chat_id);
    }

    for relay in relays.into_iter().flatten() {
        relay.kill9().await?;
    }
    sim.stop().await;
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// Refreshes gms-sim counted per chat.
async fn refreshes(admin: &SimAdmin) -> Result<std::collections::HashMap<String, u64>> {
    let stats = admin.stats().await?;
    let chats = stats["chats"].as_object().cloned().unwrap_or_default();
    Ok(chats.into_iter().map(|(id, ops)| (id, ops["refresh"].as_u64().unwrap_or(0))).collect())
}

#[tokio::test]
async fn a_watcher_killed_mid_restoration_is_replaced_and_every_chat_restored() -> Result<()> {
    let redis = RedisServer::start().await?;
    let sim =
        gms_sim::start(gms_sim::Config::try_parse_from(["gms-sim", "--listen", "127.0.0.1:0"])?)
            .await?;
    let binary = relay_binary()?;
    let mut relays = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..NODES {
        let dir = scratch_dir("relay-cluster-ha")?;
        let mut args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--gms-url",
            &sim.url(),
            "--data-dir",
            &dir.display().to_string(),
            "--redis-url",
            &redis.url(),
            "--health-interval",
            "0.1",
            // Ten a second: the restoration lasts long enough to kill its relay mid-way.
            "--restore-rate",
            "10",
            "--push-secret",
            TEST_PUSH_SECRET,
        ]
        .iter()
        .chain(&NO_CLIENT_LIMITS)
        .map(|s| (*s).to_owned())
        .collect();
        for (alias, health) in &sim.chat_servers {
            args.extend(["--chat-server".to_owned(), format!("{alias}=http://{health}/health")]);
        }
        relays.push(Some(RelayProcess::start(&binary, &args).await?));
        dirs.push(dir);
    }
    let urls: Vec<String> = relays.iter().flatten().map(|r| r.url.clone()).collect();
    let gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let http = reqwest::Client::new();
    for n in 0..40 {
        let (credentials, _) = gms.create("Jane", Vec::new()).await?;
        http.post(format!("{}/v1/sessions", urls[n % NODES]))
            .json(&RegisterSession::new(SERVICE, &credentials, None))
            .send()
            .await?
            .error_for_status()?;
    }
    let on_117: Vec<String> = admin
        .get("/sim/chats")
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|c| c["alias"] == "117")
        .filter_map(|c| c["chatId"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(on_117.len() >= 10, "too few chats on 117: {}", on_117.len());
    // The watcher has seen 117's process before it restarts.
    let polls = |stats: serde_json::Value| stats["healthPolls"]["117"].as_u64().unwrap_or(0);
    let seen = polls(admin.stats().await?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while polls(admin.stats().await?) < seen + 2 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "117 is not watched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = refreshes(&admin).await?;
    admin.ok("/sim/chat-servers/117/restart", serde_json::json!({})).await?;

    // The relay restoring is killed once it has pinged a few chats.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let watcher = 'found: loop {
        for (k, url) in urls.iter().enumerate() {
            let status: serde_json::Value =
                http.get(format!("{url}/status")).send().await?.json().await?;
            let progress = &status["restorations"]["117"];
            if progress["running"] == true && progress["pinged"].as_u64() >= Some(3) {
                break 'found k;
            }
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no restoration started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    relays[watcher].take().context("relay")?.kill9().await?;
    let killed_at = tokio::time::Instant::now();

    // Another relay takes the lease once it expires and finishes the restoration.
    let deadline = killed_at + Duration::from_secs(30);
    let extra = |now: &std::collections::HashMap<String, u64>, id: &String| {
        now.get(id).copied().unwrap_or(0) - before.get(id).copied().unwrap_or(0)
    };
    loop {
        let now = refreshes(&admin).await?;
        if on_117.iter().all(|id| extra(&now, id) >= 1) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "not every chat was restored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = refreshes(&admin).await?;
    for (id, pings) in before.keys().map(|id| (id, extra(&now, id))) {
        if on_117.contains(id) {
            assert!((1..=2).contains(&pings), "{id} pinged {pings} times");
        } else {
            assert_eq!(pings, 0, "{id} was not on the restarted server");
        }
    }
    for relay in relays.into_iter().flatten() {
        relay.kill9().await?;
    }
    sim.stop().await;
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
