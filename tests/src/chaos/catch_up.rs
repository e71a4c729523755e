//! Measuring a chaos run while it runs: how far GMS's transcripts are, how long visitors
//! take to catch up with them, and whether every push was acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::visitor::Face;
use crate::gms_client::SimAdmin;

/// Snapshot of every chat's next position in GMS.
async fn positions(admin: &SimAdmin) -> Result<BTreeMap<String, (u64, u64)>> {
    let chats = admin.get("/sim/chats").await?;
    Ok(chats
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let id = c["chatId"].as_str()?.to_owned();
            Some((id, (c["nextPosition"].as_u64()?, c["pendingPushes"].as_u64().unwrap_or(0))))
        })
        .collect())
}

/// How long each visitor with an open tab that was behind GMS takes to catch up with
/// where GMS is now; a visitor that closes its tab meanwhile is not counted.
pub(super) async fn catch_up(
    admin: &SimAdmin,
    faces: &[Arc<Face>],
    limit: Duration,
) -> Result<Vec<Duration>> {
    let positions = positions(admin).await?;
    let since = Instant::now();
    let mut waits = JoinSet::new();
    for face in faces {
        let Some(chat_id) = face.chat_id.get() else { continue };
        let Some(&(target, _)) = positions.get(chat_id) else { continue };
        let progress = *face.progress.borrow();
        if !progress.tab_open || progress.next_position >= target {
            continue;
        }
        let mut watch = face.progress.subscribe();
        waits.spawn(async move {
            let reached = tokio::time::timeout(
                limit,
                watch.wait_for(|p| p.next_position >= target || !p.tab_open),
            )
            .await;
            match reached {
                Ok(Ok(p)) if p.tab_open => Some(since.elapsed()),
                Ok(_) => None,
                Err(_) => Some(limit),
            }
        });
    }
    let mut measured = Vec::new();
    while let Some(waited) = waits.join_next().await {
        measured.extend(waited.ok().flatten());
    }
    Ok(measured)
}

/// Waits for every visitor to show its chat's last line; answers the times and the
/// visitors that did not within the limit.
pub(super) async fn wait_caught_up(
    faces: &[Arc<Face>],
    lines: &[(usize, u64, Instant)],
    limit: Duration,
) -> (Vec<Duration>, Vec<String>) {
    let mut waits = JoinSet::new();
    for &(number, target, since) in lines {
        let mut watch = faces[number].progress.subscribe();
        let chat_id = faces[number].chat_id.get().cloned().unwrap_or_default();
        waits.spawn(async move {
            let reached = tokio::time::timeout_at(
                since + limit,
                watch.wait_for(|p| p.next_position >= target),
            )
            .await;
            match reached {
                Ok(Ok(_)) => Ok(since.elapsed()),
                _ => Err(format!("visitor {number} (chat {chat_id})")),
            }
        });
    }
    let (mut times, mut stuck) = (Vec::new(), Vec::new());
    while let Some(waited) = waits.join_next().await {
        match waited {
            Ok(Ok(time)) => times.push(time),
            Ok(Err(who)) => stuck.push(who),
            Err(error) => stuck.push(format!("a waiting task failed: {error}")),
        }
    }
    (times, stuck)
}

/// Waits (up to 30 s: thirty resends) for the relay to acknowledge every push.
pub(super) async fn settle_pushes(admin: &SimAdmin) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: u64 = positions(admin).await?.values().map(|(_, p)| p).sum();
        if pending == 0 || Instant::now() >= deadline {
            return Ok(pending);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
