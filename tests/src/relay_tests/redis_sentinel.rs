//! Two relay processes on Redis Sentinel (`redis+sentinel://`, a primary, one replica and
//! three sentinels, all real), gms-sim spreading a steady push load over both while the
//! primary changes: by `SENTINEL FAILOVER`, and by a kill -9 of the primary (its replica
//! promoted, the killed server back as the new primary's replica). Every line reaches every
//! visitor once, every push is acknowledged, and every record Redis held before the
//! failover is there after it, at its position or later: a write is acknowledged only once
//! a replica holds it (`WAIT`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;

use super::{RedisLoad, kept, stored_positions};
use crate::harness::RedisSentinels;

const RELAYS: usize = 2;
const CHATS: usize = 4;
/// Lines each chat gets before the failover, and in all.
const BEFORE: usize = 3;
const LINES: usize = 30;
/// How long a visitor may wait for its lines (the kill leaves writes refused until the
/// killed server is back as a replica).
const LINES_WITHIN: Duration = Duration::from_secs(60);

/// The run's first lines, delivered and acknowledged before the failover; answers what
/// Redis holds then.
async fn steady(run: &mut RedisLoad, sentinels: &RedisSentinels) -> Result<HashMap<String, u64>> {
    run.load(0, BEFORE).await??;
    run.delivered(BEFORE, LINES_WITHIN).await?;
    for visitor in &run.visitors {
        assert_eq!(visitor.duplicates, 0, "a frame arrived twice before any failover");
    }
    run.acknowledged(Duration::from_secs(20)).await?;
    stored_positions(&mut sentinels.primary().await?, &run.chats()).await
}

async fn start(sentinels: &RedisSentinels) -> Result<RedisLoad> {
    let redis = ["--redis-url".to_owned(), sentinels.url()];
    RedisLoad::start(&redis, RELAYS, CHATS).await
}

#[tokio::test]
async fn a_sentinel_failover_under_load_loses_nothing_acknowledged() -> Result<()> {
    let sentinels = RedisSentinels::start().await?;
    let mut run = start(&sentinels).await?;
    let before = steady(&mut run, &sentinels).await?;

    let load = run.load(BEFORE, LINES);
    let old = sentinels.primary_port().await?;
    let new = sentinels.failover().await?;
    assert_ne!(old, new);
    load.await??;

    run.delivered(LINES, LINES_WITHIN).await?;
    run.acknowledged(Duration::from_secs(60)).await?;
    kept(&before, &stored_positions(&mut sentinels.primary().await?, &run.chats()).await?);
    run.stop().await
}

#[tokio::test]
async fn a_killed_primary_is_replaced_under_load_and_nothing_acknowledged_is_lost() -> Result<()> {
    let mut sentinels = RedisSentinels::start().await?;
    let mut run = start(&sentinels).await?;
    let before = steady(&mut run, &sentinels).await?;

    let load = run.load(BEFORE, LINES);
    let killed = sentinels.kill_primary().await?;
    sentinels.moved_from(killed).await?;
    // The promoted replica has no replica of its own, so writes wait (and pushes get 503)
    // until the killed server is back as its replica.
    sentinels.restart(killed).await?;
    load.await??;

    run.delivered(LINES, LINES_WITHIN).await?;
    run.acknowledged(Duration::from_secs(60)).await?;
    kept(&before, &stored_positions(&mut sentinels.primary().await?, &run.chats()).await?);
    run.stop().await
}
