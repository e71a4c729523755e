//! Three relay processes on one redis-server behind a round-robin "load balancer" (gms-sim
//! spreads its pushes over all three): every frame reaches every subscriber once and in
//! order, and after one relay is killed with SIGKILL its visitors reconnect to another,
//! catch up, and lose nothing, while its chats stay acknowledged and pinged. The Chat
//! Server watcher killed mid-restoration is replaced and the restoration finished.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser as _;
use shared::relay_api::{RegisterSession, ServerFrame};
use shared::transcript::TranscriptCursor;

use super::{Visitor, extra, restored};
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{RedisServer, RelayCluster, free_port};
use crate::support::{
    SERVICE, Wait, chat_server, push_url, push_user_data, register, until, until_every,
};
use crate::ws_client::WsClient;

const NODES: usize = 3;
const CHATS: usize = 6;
/// How long a visitor waits for its lines.
const LINES_WITHIN: Duration = Duration::from_secs(20);

fn expected(upto: usize) -> Vec<String> {
    (0..upto).map(|n| format!("line {n}")).collect()
}

#[tokio::test]
async fn three_relays_deliver_every_line_once_and_survive_one_killed() -> Result<()> {
    let redis = RedisServer::start().await?;
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect::<Result<_>>()?;
    let mut sim_args: Vec<String> = ["gms-sim", "--listen", "127.0.0.1:0"]
        .iter()
        .chain(&["--push-resend-delay", "0.3", "--push-resend-attempts", "100"])
        .map(|s| (*s).to_owned())
        .collect();
    for port in &ports {
        sim_args.extend(["--push-url".to_owned(), push_url(&format!("http://127.0.0.1:{port}"))]);
    }
    let sim = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;
    let flags = ["--ping-interval", "1"].map(str::to_owned);
    let mut cluster = RelayCluster::start(&redis, &sim.url(), &ports, &flags).await?;
    let urls = cluster.urls.clone();
    let gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let http = reqwest::Client::new();

    // Each chat registered on one relay and followed on the next.
    let mut visitors = Vec::new();
    for n in 0..CHATS {
        let device = format!("dev-cluster-{n}");
        let (credentials, created) = gms.create("Jane", push_user_data(&device, true)).await?;
        // The widget's cursor starts where the chat's creation left it.
        let mut cursor = TranscriptCursor::new();
        cursor.apply(&created);
        let body = RegisterSession::new(SERVICE, &credentials, None);
        let registered = register(&http, &urls[n % NODES], &body).await?;
        let node = (n + 1) % NODES;
        let mut ws = WsClient::connect(&urls[node]).await?;
        let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
        anyhow::ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
        visitors.push(Visitor::new(credentials, registered.token, node, ws, cursor));
    }

    // The agent writes in every chat; the pushes land on all three relays in turn.
    for line in 0..4 {
        for visitor in &visitors {
            admin.agent_says(&visitor.credentials.chat_id, &format!("line {line}")).await?;
        }
    }
    for visitor in &mut visitors {
        visitor
            .read_lines(&gms, 4, LINES_WITHIN)
            .await
            .with_context(|| format!("before the kill, {:?}", visitor.lines))?;
        assert_eq!(visitor.lines.values().cloned().collect::<Vec<_>>(), expected(4));
        assert_eq!(visitor.duplicates, 0, "a frame arrived twice");
    }

    // One relay dies mid-traffic.
    let dead = 2;
    cluster.kill9(dead).await?;
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
                if visitor.cursor.behind(Some(position)).is_some());
            if behind {
                visitor.refresh(&gms).await?;
            }
        }
        visitor.read_lines(&gms, 8, LINES_WITHIN).await.with_context(|| {
            format!("after the kill, node {} {:?}", visitor.node, visitor.lines)
        })?;
        assert_eq!(visitor.lines.values().cloned().collect::<Vec<_>>(), expected(8));
    }

    // Every push acknowledged by the relays left, and every chat still pinged.
    let what = "every push acknowledged";
    until_every(what, Duration::from_secs(20), Duration::from_millis(50), async || {
        let chats = admin.get("/sim/chats").await?;
        let waiting = chats
            .as_array()
            .map_or(0, |all| all.iter().filter(|c| c["pendingPushes"].as_u64() != Some(0)).count());
        Ok(Wait::done_if(waiting == 0, format!("{waiting} chats unacknowledged")))
    })
    .await?;
    let before = admin.refreshes().await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let now = admin.refreshes().await?;
    for visitor in &visitors {
        let id = &visitor.credentials.chat_id;
        assert!(now.get(id) > before.get(id), "chat {id} no longer pinged");
    }
    cluster.stop().await?;
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_watcher_killed_mid_restoration_is_replaced_and_every_chat_restored() -> Result<()> {
    let redis = RedisServer::start().await?;
    let sim =
        gms_sim::start(gms_sim::Config::try_parse_from(["gms-sim", "--listen", "127.0.0.1:0"])?)
            .await?;
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect::<Result<_>>()?;
    // Ten restoration pings a second: long enough to kill the restoring relay mid-way.
    let mut flags =
        ["--health-interval", "0.1", "--restore-rate", "10"].map(str::to_owned).to_vec();
    for (alias, health) in &sim.chat_servers {
        flags.extend(["--chat-server".to_owned(), chat_server(alias, *health)]);
    }
    let mut cluster = RelayCluster::start(&redis, &sim.url(), &ports, &flags).await?;
    let urls = cluster.urls.clone();
    let gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let http = reqwest::Client::new();
    for n in 0..40 {
        let (credentials, _) = gms.create("Jane", Vec::new()).await?;
        register(&http, &urls[n % NODES], &RegisterSession::new(SERVICE, &credentials, None))
            .await?;
    }
    let on_117 = admin.chats_on("117").await?;
    anyhow::ensure!(on_117.len() >= 10, "too few chats on 117: {}", on_117.len());
    admin.polled("117", 2).await?;
    let before = admin.refreshes().await?;
    admin.ok("/sim/chat-servers/117/restart", serde_json::json!({})).await?;

    // The relay restoring is killed once it has pinged a few chats.
    let watcher = until("a restoration of 117 under way", Duration::from_secs(10), async || {
        let mut seen = Vec::new();
        for (k, url) in urls.iter().enumerate() {
            let status: serde_json::Value =
                http.get(format!("{url}/status")).send().await?.json().await?;
            let progress = &status["restorations"]["117"];
            if progress["running"] == true && progress["pinged"].as_u64() >= Some(3) {
                return Ok(Wait::Done(k));
            }
            seen.push(progress.clone());
        }
        Ok(Wait::Still(serde_json::Value::from(seen)))
    })
    .await?;
    cluster.kill9(watcher).await?;

    // Another relay takes the lease once it expires and finishes the restoration.
    restored(&admin, &on_117, &before, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = admin.refreshes().await?;
    for (id, pings) in before.keys().map(|id| (id, extra(&now, &before, id))) {
        if on_117.contains(id) {
            assert!((1..=2).contains(&pings), "{id} pinged {pings} times");
        } else {
            assert_eq!(pings, 0, "{id} was not on the restarted server");
        }
    }
    cluster.stop().await?;
    sim.stop().await;
    Ok(())
}
