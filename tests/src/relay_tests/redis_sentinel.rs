//! Two relay processes on Redis Sentinel (`redis+sentinel://`, a primary, one replica and
//! three sentinels, all real), gms-sim spreading a steady push load over both while the
//! primary changes: by `SENTINEL FAILOVER`, and by a kill -9 of the primary (its replica
//! promoted, the killed server back as the new primary's replica). Every line reaches every
//! visitor once, every push is acknowledged, and every record Redis held before the
//! failover is there after it, at its position or later: a write is acknowledged only once
//! a replica holds it (`WAIT`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use shared::relay_api::{RegisterSession, ServerFrame};
use shared::transcript::TranscriptCursor;

use super::Visitor;
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{RedisSentinels, RelayCluster, free_port};
use crate::support::{SERVICE, Wait, push_url, push_user_data, register, until_every};
use crate::ws_client::WsClient;

const RELAYS: usize = 2;
const CHATS: usize = 4;
/// Lines each chat gets before the failover, and in all.
const BEFORE: usize = 3;
const LINES: usize = 30;
/// How long a visitor may wait for its lines (the kill leaves writes refused until the
/// killed server is back as a replica).
const LINES_WITHIN: Duration = Duration::from_secs(60);

/// gms-sim, the relays on the sentinels, and a visitor per chat, each registered on one
/// relay and following it on the other.
struct Run {
    sim: gms_sim::Running,
    relays: RelayCluster,
    gms: GmsClient,
    admin: SimAdmin,
    visitors: Vec<Visitor>,
}

impl Run {
    async fn start(sentinels: &RedisSentinels) -> Result<Run> {
        let ports: Vec<u16> = (0..RELAYS).map(|_| free_port()).collect::<Result<_>>()?;
        // GMS resends a refused push every 0.3 s for a minute and a half.
        let mut sim_args: Vec<String> = ["gms-sim", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(&["--push-resend-delay", "0.3", "--push-resend-attempts", "300"])
            .map(|s| (*s).to_owned())
            .collect();
        for port in &ports {
            sim_args.push("--push-url".to_owned());
            sim_args.push(push_url(&format!("http://127.0.0.1:{port}")));
        }
        let sim = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;
        let redis = ["--redis-url".to_owned(), sentinels.url()];
        let flags = ["--ping-interval", "3600"].map(str::to_owned);
        let relays = RelayCluster::start_on(&redis, &sim.url(), &ports, &flags).await?;
        let gms = GmsClient::new(&sim.url(), SERVICE);
        let admin = SimAdmin::new(&sim.url());
        let http = reqwest::Client::new();
        let mut visitors = Vec::new();
        for n in 0..CHATS {
            let device = format!("dev-sentinel-{n}");
            let (credentials, created) = gms.create("Jane", push_user_data(&device, true)).await?;
            let mut cursor = TranscriptCursor::new();
            cursor.apply(&created);
            let body = RegisterSession::new(SERVICE, &credentials, None);
            let registered = register(&http, &relays.urls[n % RELAYS], &body).await?;
            let node = (n + 1) % RELAYS;
            let mut ws = WsClient::connect(&relays.urls[node]).await?;
            let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
            anyhow::ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
            visitors.push(Visitor::new(credentials, registered.token, node, ws, cursor));
        }
        Ok(Run { sim, relays, gms, admin, visitors })
    }

    fn chats(&self) -> Vec<String> {
        self.visitors.iter().map(|v| v.credentials.chat_id.clone()).collect()
    }

    /// The agent writes lines `from..to` in every chat, a round every 100 ms: a steady
    /// load that outlasts a failover.
    fn load(&self, from: usize, to: usize) -> tokio::task::JoinHandle<Result<()>> {
        let (admin, chats) = (self.admin.clone(), self.chats());
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            for line in from..to {
                pace.tick().await;
                for chat in &chats {
                    admin.agent_says(chat, &format!("line {line}")).await?;
                }
            }
            Ok(())
        })
    }

    /// Every visitor holds lines `0..upto`, each once.
    async fn delivered(&mut self, upto: usize) -> Result<()> {
        let expected: Vec<String> = (0..upto).map(|n| format!("line {n}")).collect();
        for visitor in &mut self.visitors {
            visitor.read_lines(&self.gms, upto, LINES_WITHIN).await.with_context(|| {
                format!("visitor on relay {} holds {:?}", visitor.node, visitor.lines)
            })?;
            assert_eq!(visitor.lines.values().cloned().collect::<Vec<_>>(), expected);
        }
        Ok(())
    }

    /// Waits until gms-sim has no push left unacknowledged.
    async fn acknowledged(&self, within: Duration) -> Result<()> {
        let what = "every push acknowledged";
        until_every(what, within, Duration::from_millis(100), async || {
            let chats = self.admin.get("/sim/chats").await?;
            let waiting = chats.as_array().map_or(0, |all| {
                all.iter().filter(|c| c["pendingPushes"].as_u64() != Some(0)).count()
            });
            Ok(Wait::done_if(waiting == 0, format!("{waiting} chats with pushes unacknowledged")))
        })
        .await
    }

    async fn stop(self) -> Result<()> {
        self.relays.stop().await?;
        self.sim.stop().await;
        Ok(())
    }
}

/// Each chat's stored position, read from the primary Sentinel names now.
async fn stored_positions(
    sentinels: &RedisSentinels,
    chats: &[String],
) -> Result<HashMap<String, u64>> {
    let mut primary = sentinels.primary().await?;
    let mut positions = HashMap::new();
    for chat in chats {
        let record: Option<String> = redis::cmd("HGET")
            .arg(format!("gmschat:{{{chat}}}:chat"))
            .arg("r")
            .query_async(&mut primary)
            .await?;
        let record: serde_json::Value =
            serde_json::from_str(&record.with_context(|| format!("no record of {chat}"))?)?;
        positions.insert(chat.clone(), record["position"].as_u64().context("no position")?);
    }
    Ok(positions)
}

/// What was acknowledged before is stored after, at that position or later.
fn kept(before: &HashMap<String, u64>, after: &HashMap<String, u64>) {
    for (chat, position) in before {
        let now = after.get(chat).copied().unwrap_or(0);
        assert!(now >= *position, "{chat} fell back from {position} to {now}");
    }
}

/// The run's first lines, delivered and acknowledged before the failover; answers what
/// Redis holds then.
async fn steady(run: &mut Run, sentinels: &RedisSentinels) -> Result<HashMap<String, u64>> {
    run.load(0, BEFORE).await??;
    run.delivered(BEFORE).await?;
    for visitor in &run.visitors {
        assert_eq!(visitor.duplicates, 0, "a frame arrived twice before any failover");
    }
    run.acknowledged(Duration::from_secs(20)).await?;
    stored_positions(sentinels, &run.chats()).await
}

#[tokio::test]
async fn a_sentinel_failover_under_load_loses_nothing_acknowledged() -> Result<()> {
    let sentinels = RedisSentinels::start().await?;
    let mut run = Run::start(&sentinels).await?;
    let before = steady(&mut run, &sentinels).await?;

    let load = run.load(BEFORE, LINES);
    let old = sentinels.primary_port().await?;
    let new = sentinels.failover().await?;
    assert_ne!(old, new);
    load.await??;

    run.delivered(LINES).await?;
    run.acknowledged(Duration::from_secs(60)).await?;
    kept(&before, &stored_positions(&sentinels, &run.chats()).await?);
    run.stop().await
}

#[tokio::test]
async fn a_killed_primary_is_replaced_under_load_and_nothing_acknowledged_is_lost() -> Result<()> {
    let mut sentinels = RedisSentinels::start().await?;
    let mut run = Run::start(&sentinels).await?;
    let before = steady(&mut run, &sentinels).await?;

    let load = run.load(BEFORE, LINES);
    let killed = sentinels.kill_primary().await?;
    sentinels.moved_from(killed).await?;
    // The promoted replica has no replica of its own, so writes wait (and pushes get 503)
    // until the killed server is back as its replica.
    sentinels.restart(killed).await?;
    load.await??;

    run.delivered(LINES).await?;
    run.acknowledged(Duration::from_secs(60)).await?;
    kept(&before, &stored_positions(&sentinels, &run.chats()).await?);
    run.stop().await
}
