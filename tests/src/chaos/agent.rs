//! The agent's side of a chaos run: joins every chat and writes at a steady rate, and
//! the last line in every chat once the faults are over.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::visitor::{Face, Phase};
use crate::gms_client::SimAdmin;
use crate::support::{Wait, until_every};

/// How often, on average, the agent writes in each chat.
const LINE_EVERY: Duration = Duration::from_secs(15);

/// What the agent did.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) lines: u64,
    /// Lines GMS refused because the chat's Chat Server was down or restarted.
    pub(super) refused: u64,
}

/// The agent: joins each chat once it exists, then writes in a random chat at a steady
/// rate, until the chaos is over.
pub(super) async fn talk(
    admin: SimAdmin,
    faces: Arc<[Arc<Face>]>,
    seed: u64,
    mut phase: watch::Receiver<Phase>,
) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(2));
    let mut tally = Tally::default();
    let mut joined = std::collections::HashSet::new();
    let every = LINE_EVERY / u32::try_from(faces.len().max(1)).unwrap_or(1);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = phase.changed() => return tally,
            _ = tick.tick() => {}
        }
        let face = &faces[rng.random_range(0..faces.len())];
        let Some(chat_id) = face.chat_id.get() else { continue };
        let (path, body) = if joined.contains(chat_id) {
            let text = format!("a{}", tally.lines);
            (format!("/sim/chats/{chat_id}/agent/message"), json!({ "text": text }))
        } else {
            (format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Agent"}))
        };
        match admin.post(&path, body).await {
            Ok((200, _)) => {
                tally.lines += 1;
                joined.insert(chat_id.clone());
            }
            _ => tally.refused += 1,
        }
    }
}

/// The agent's last line in every chat (a chat whose Chat Server went away is restored by
/// its visitor's return, so a refusal is tried again); answers each line's position.
pub(super) async fn last_lines(
    admin: &SimAdmin,
    faces: &[Arc<Face>],
    limit: Duration,
) -> Result<Vec<(usize, u64, Instant)>> {
    let mut lines = Vec::new();
    for (number, face) in faces.iter().enumerate() {
        let Some(chat_id) = face.chat_id.get() else { continue };
        let path = format!("/sim/chats/{chat_id}/agent/message");
        let what = format!("chat {chat_id} taking the agent's last line");
        let index = until_every(&what, limit, Duration::from_millis(200), async || {
            let (status, body) = admin.post(&path, json!({"text": "last line"})).await?;
            if status != 200 {
                return Ok(Wait::Still(format!("refused: {body}")));
            }
            let index: serde_json::Value = serde_json::from_str(&body)?;
            Ok(Wait::Done(index["index"].as_u64().context("the agent's line has no index")?))
        })
        .await?;
        lines.push((number, index + 1, Instant::now()));
    }
    Ok(lines)
}
