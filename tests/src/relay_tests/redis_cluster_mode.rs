//! Relay processes on a real Redis Cluster (`--redis-cluster`: three primaries, three
//! replicas, on loopback). Frames between relays go by sharded pub/sub, so only the shard
//! owning a chat's slot carries them, and reach the other relay's visitors exactly once; a
//! primary killed under a steady push load is replaced by its replica (the killed node
//! back as a replica) with every line delivered, every push acknowledged and every record
//! stored before still there. The Chat Server watcher's lease and a restoration its holder
//! left unfinished carry over to another relay as on one server.

use std::time::Duration;

use anyhow::Result;
use clap::Parser as _;
use shared::relay_api::RegisterSession;

use super::{RedisLoad, extra, kept, restored, stored_positions};
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{RedisClusterNodes, RelayCluster, free_port};
use crate::support::{SERVICE, Wait, chat_server, register, until};

const RELAYS: usize = 2;
/// Enough chats that every shard holds some.
const CHATS: usize = 6;
const BEFORE: usize = 3;
const LINES: usize = 30;
/// How long a visitor may wait for its lines (the dead primary's shard refuses writes
/// until the killed node is back as a replica).
const LINES_WITHIN: Duration = Duration::from_secs(60);

fn chat_key(chat: &str) -> String {
    format!("gmschat:{{{chat}}}:chat")
}

fn frames(chat: &str) -> String {
    format!("gmschat:{{{chat}}}:frames")
}

#[tokio::test]
async fn frames_cross_relays_once_by_shard_and_a_killed_primary_loses_nothing() -> Result<()> {
    let mut cluster = RedisClusterNodes::start().await?;
    let redis = ["--redis-cluster".to_owned(), cluster.seeds()];
    let mut run = RedisLoad::start(&redis, RELAYS, CHATS).await?;
    let chats = run.chats();

    // Each chat's frames channel is a sharded one on the primary owning its slot, followed
    // by the one relay its visitor is on, and no plain channel of that name has anyone.
    let mut connection = cluster.connection().await?;
    for chat in &chats {
        let shard = cluster.primary_of(&chat_key(chat)).await?;
        let owner = redis::Client::open(format!("redis://127.0.0.1:{shard}/0"))?;
        let mut owner = owner.get_multiplexed_async_connection().await?;
        let (_, sharded): (String, i64) = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(frames(chat))
            .query_async(&mut owner)
            .await?;
        let (_, plain): (String, i64) =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(frames(chat)).query_async(&mut owner).await?;
        assert_eq!((sharded, plain), (1, 0), "{chat}'s frames on :{shard}");
    }

    run.load(0, BEFORE).await??;
    run.delivered(BEFORE, LINES_WITHIN).await?;
    for visitor in &run.visitors {
        assert_eq!(visitor.duplicates, 0, "a frame arrived twice");
    }
    run.acknowledged(Duration::from_secs(20)).await?;
    let before = stored_positions(&mut connection, &chats).await?;

    // The primary holding the first chat dies mid-load; its replica takes over, and the
    // killed node comes back as the new primary's replica.
    let key = chat_key(&chats[0]);
    let killed = cluster.primary_of(&key).await?;
    let load = run.load(BEFORE, LINES);
    cluster.kill(killed).await?;
    let promoted = cluster.failed_over(killed, &key).await?;
    assert_ne!(promoted, killed);
    cluster.restart(killed).await?;
    load.await??;

    run.delivered(LINES, LINES_WITHIN).await?;
    run.acknowledged(Duration::from_secs(60)).await?;
    kept(&before, &stored_positions(&mut cluster.connection().await?, &chats).await?);
    run.stop().await
}

#[tokio::test]
async fn on_a_cluster_a_watcher_killed_mid_restoration_is_replaced_and_every_chat_restored()
-> Result<()> {
    let cluster = RedisClusterNodes::start().await?;
    let sim =
        gms_sim::start(gms_sim::Config::try_parse_from(["gms-sim", "--listen", "127.0.0.1:0"])?)
            .await?;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_>>()?;
    let redis = ["--redis-cluster".to_owned(), cluster.seeds()];
    // Ten restoration pings a second: long enough to kill the restoring relay mid-way.
    let mut flags =
        ["--health-interval", "0.1", "--restore-rate", "10"].map(str::to_owned).to_vec();
    for (alias, health) in &sim.chat_servers {
        flags.extend(["--chat-server".to_owned(), chat_server(alias, *health)]);
    }
    let mut relays = RelayCluster::start_on(&redis, &sim.url(), &ports, &flags).await?;
    let urls = relays.urls.clone();
    let gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let http = reqwest::Client::new();
    for n in 0..30 {
        let (credentials, _) = gms.create("Jane", Vec::new()).await?;
        let body = RegisterSession::new(SERVICE, &credentials, None);
        register(&http, &urls[n % urls.len()], &body).await?;
    }
    // One relay holds the lease, in the `{watch}` slot with the servers' pids.
    let mut connection = cluster.connection().await?;
    let holder: Option<String> =
        redis::cmd("GET").arg("gmschat:{watch}:lease").query_async(&mut connection).await?;
    anyhow::ensure!(holder.is_some(), "no relay holds the watcher's lease");

    let on_117 = admin.chats_on("117").await?;
    anyhow::ensure!(on_117.len() >= 8, "too few chats on 117: {}", on_117.len());
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
    relays.kill9(watcher).await?;

    // Another relay takes the lease once it expires and finishes the restoration, reading
    // the unfinished mark and the pids from the cluster.
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
    relays.stop().await?;
    sim.stop().await;
    Ok(())
}
