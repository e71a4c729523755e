//! Chat Server high availability with several relays on Redis: one relay watches (a
//! lease), another takes over when it leaves, and a restoration it left unfinished is
//! finished by the next watcher, with no chat pinged more than twice for one event.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{Setup, extra, restored};
use crate::harness::{Options, RedisServer};
use crate::support::{Wait, until, until_every};

async fn watched_cluster(redis: &RedisServer, restore_rate: &str) -> Result<Setup> {
    let mut options = Options::sim(&[]).relay(&[
        "--redis-url",
        &redis.url(),
        "--ping-interval",
        "3600",
        "--health-interval",
        "0.1",
        "--restore-rate",
        restore_rate,
    ]);
    options.watch_chat_servers = true;
    Setup::start(options).await
}

async fn registered_chats(setup: &Setup, count: usize) -> Result<Vec<String>> {
    let mut chats = Vec::new();
    for _ in 0..count {
        let credentials = setup.chat(false).await?;
        setup.register(&credentials).await?;
        chats.push(credentials.chat_id);
    }
    Ok(chats)
}

#[tokio::test]
async fn one_relay_watches_the_chat_servers_and_another_takes_over_when_it_leaves() -> Result<()> {
    let redis = RedisServer::start().await?;
    let mut setup = watched_cluster(&redis, "200").await?;
    let other = setup.system.add_relay().await?;
    let chats = registered_chats(&setup, 12).await?;
    // Each restart moves the restarted server's chats to the other one; each of them is
    // pinged exactly once however many relays watch.
    for (round, server) in [(1_u64, "117"), (2, "118")] {
        let before = setup.admin.refreshes().await?;
        let moving = setup.admin.chats_on(server).await?;
        anyhow::ensure!(!moving.is_empty(), "no chat on {server}");
        setup.admin.polled(server, 2).await?;
        setup.admin.ok(&format!("/sim/chat-servers/{server}/restart"), json!({})).await?;
        restored(&setup.admin, &moving, &before, Duration::from_secs(20)).await?;
        // A second watcher would ping within a few health intervals more.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after = setup.admin.refreshes().await?;
        for id in &chats {
            let extra = extra(&after, &before, id);
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
    setup.system.stop().await
}

#[tokio::test]
async fn a_restoration_left_unfinished_by_a_leaving_watcher_is_finished_by_the_next() -> Result<()>
{
    let redis = RedisServer::start().await?;
    // Four restoration pings a second: the restoration lasts long enough to interrupt.
    let mut setup = watched_cluster(&redis, "4").await?;
    let other = setup.system.add_relay().await?;
    let chats = registered_chats(&setup, 16).await?;
    let moving = setup.admin.chats_on("117").await?;
    anyhow::ensure!(moving.len() >= 4, "too few chats on 117: {}", moving.len());
    setup.admin.polled("117", 2).await?;
    let before = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;

    // Whichever relay restores leaves as soon as it has pinged some of the chats.
    let nodes = [setup.system.relay_url.clone(), other.url.clone()];
    let watcher = until("a restoration of 117 under way", Duration::from_secs(10), async || {
        let mut seen = Vec::new();
        for (index, url) in nodes.iter().enumerate() {
            let status: Value =
                setup.http.get(format!("{url}/status")).send().await?.json().await?;
            let progress = &status["restorations"]["117"];
            if progress["running"] == true && progress["pinged"].as_u64() >= Some(1) {
                return Ok(Wait::Done(index));
            }
            seen.push(progress.clone());
        }
        Ok(Wait::Still(Value::from(seen)))
    })
    .await?;
    let other = if watcher == 0 {
        setup.system.stop_relay().await?;
        Some(other)
    } else {
        other.stop().await?;
        None
    };
    let now = setup.admin.refreshes().await?;
    let left = moving.iter().filter(|id| extra(&now, &before, id) == 0).count();
    assert!(left > 0, "the restoration had finished before its relay left");

    restored(&setup.admin, &moving, &before, Duration::from_secs(20)).await?;
    // Let a second restoration run finish if one were (wrongly) going on.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = setup.admin.refreshes().await?;
    for id in &chats {
        let pinged = extra(&after, &before, id);
        if moving.contains(id) {
            assert!((1..=2).contains(&pinged), "{id} pinged {pinged} times");
        } else {
            assert_eq!(pinged, 0, "{id} was not on the restarted server");
        }
    }
    if let Some(other) = other {
        other.stop().await?;
    }
    setup.system.stop().await
}

#[tokio::test]
async fn while_another_holds_the_lease_a_relay_does_not_watch_and_takes_over_at_its_expiry()
-> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = watched_cluster(&redis, "200").await?;
    let chats = registered_chats(&setup, 6).await?;
    let moving = setup.admin.chats_on("117").await?;
    setup.admin.polled("117", 2).await?;

    // Another node takes the lease and then dies (renews it no more): this relay stops
    // polling within a renewal (1 s), and takes over once the lease expires.
    let client = redis::Client::open(redis.url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let lease = "gmschat:{watch}:lease";
    redis::cmd("SET")
        .arg(lease)
        .arg("intruder")
        .arg("PX")
        .arg(4_000)
        .exec_async(&mut connection)
        .await?;
    let expires = tokio::time::Instant::now() + Duration::from_secs(4);
    // Each look is a window of 500 ms of its own, so the next follows at once.
    let what = "117 no longer polled without the lease";
    until_every(what, Duration::from_secs(5), Duration::ZERO, async || {
        let before = setup.admin.health_polls("117").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let polls = setup.admin.health_polls("117").await? - before;
        Ok(Wait::done_if(polls == 0, format!("{polls} polls in 500 ms")))
    })
    .await?;
    let before = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = setup.admin.refreshes().await?;
    assert!(chats.iter().all(|id| extra(&now, &before, id) == 0), "restored without the lease");

    anyhow::ensure!(tokio::time::Instant::now() < expires, "too slow to test before the expiry");

    // The lease expires: the relay takes it, sees the new pid against the stored one and
    // restores what the restart moved meanwhile, within 5 s of the dead holder's expiry.
    restored(&setup.admin, &moving, &before, Duration::from_secs(20)).await?;
    let late = tokio::time::Instant::now().saturating_duration_since(expires);
    assert!(late < Duration::from_secs(5), "took over {late:?} after the lease expired");
    setup.system.stop().await
}
