//! Chat Server high availability: restart, kill and graceful stop each end with every chat
//! on a working alias, each chat pinged once, subscribers told the new alias, and the
//! agent's next message delivered.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};
use shared::gms::Credentials;
use shared::relay_api::ServerFrame;

use super::{Setup, next_events};
use crate::harness::Options;
use crate::support::{NO_CLIENT_LIMITS, Wait, until, until_every};
use crate::ws_client::WsClient;

const CHATS: usize = 240;

fn options(extra_relay: &[&str]) -> Options {
    let mut options = Options::sim(&[]).relay(&[
        "--health-interval",
        "0.1",
        "--health-failures",
        "3",
        "--shutdown-advice-delay",
        "1",
    ]);
    options = options.relay(extra_relay).relay(&NO_CLIENT_LIMITS);
    options.watch_chat_servers = true;
    options
}

/// Waits until gms-sim hosts every chat on a running Chat Server process.
async fn all_hosted(setup: &Setup, within: Duration) -> Result<Vec<Value>> {
    until_every("every chat hosted", within, Duration::from_millis(50), async || {
        let chats = setup.admin.get("/sim/chats").await?;
        let chats = chats.as_array().cloned().unwrap_or_default();
        let waiting = chats.iter().filter(|c| c["hosted"] != true).count();
        Ok(if waiting == 0 {
            Wait::Done(chats)
        } else {
            Wait::Still(format!("{waiting} chats wait for restoration"))
        })
    })
    .await
}

/// A subscribed socket for one chat on `alias`.
async fn subscriber(
    setup: &Setup,
    chats: &[Credentials],
    alias: &str,
) -> Result<(Credentials, WsClient)> {
    let Some(chat) = chats.iter().find(|c| c.alias == alias).cloned() else {
        bail!("no chat on {alias}")
    };
    let registered = setup.register(&chat).await?;
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    ws.subscribe(&chat.chat_id, &registered.token).await?;
    Ok((chat, ws))
}

/// This relay's latest restoration of 117's chats, from `/status`.
async fn restoration(setup: &Setup) -> Result<Value> {
    let url = format!("{}/status", setup.system.relay_url);
    let status: Value = setup.http.get(url).send().await?.json().await?;
    Ok(status["restorations"]["117"].clone())
}

/// Waits until the relay's `runs`-th restoration of 117 has finished.
async fn restoration_finished(setup: &Setup, runs: u64) -> Result<Value> {
    restoration_when(setup, |r| r["runs"] == runs && r["running"] == false).await
}

/// Polls the restoration's progress until `done` holds for it; fails after 30 s.
async fn restoration_when(setup: &Setup, done: impl Fn(&Value) -> bool) -> Result<Value> {
    until("the restoration's expected state", Duration::from_secs(30), async || {
        let progress = restoration(setup).await?;
        Ok(if done(&progress) { Wait::Done(progress) } else { Wait::Still(progress) })
    })
    .await
}

/// After the event: every chat that was on 117 was pinged exactly once more, the others
/// not at all, and everything now lives on 118. Counted once the relay says its
/// restoration is over, so a late second ping would be counted.
async fn check_restored_once(
    setup: &Setup,
    chats: &[Credentials],
    before: &HashMap<String, u64>,
    runs: u64,
) -> Result<()> {
    let hosted = all_hosted(setup, Duration::from_secs(20)).await?;
    assert!(hosted.iter().all(|c| c["alias"] == "118"), "every chat on the surviving Chat Server");
    let finished = restoration_finished(setup, runs).await?;
    assert_eq!(finished["failed"], 0, "{finished}");
    let after = setup.admin.refreshes().await?;
    for chat in chats {
        let extra = after.get(&chat.chat_id).copied().unwrap_or(0)
            - before.get(&chat.chat_id).copied().unwrap_or(0);
        let expected = u64::from(chat.alias == "117");
        assert_eq!(extra, expected, "chat on {} pinged {extra} times", chat.alias);
    }
    Ok(())
}

async fn tokens_then_delivery(setup: &Setup, chat: &Credentials, ws: &mut WsClient) -> Result<()> {
    let frame = ws.frame(Duration::from_secs(20)).await?;
    assert_eq!(frame, ServerFrame::Tokens { chat_id: chat.chat_id.clone(), alias: "118".into() });
    setup.admin.agent_says(&chat.chat_id, "after restoration").await?;
    next_events(ws).await?;
    assert_eq!(next_events(ws).await?[0].text.as_deref(), Some("after restoration"));
    Ok(())
}

#[tokio::test]
async fn a_restarted_chat_server_has_every_chat_restored_once() -> Result<()> {
    let setup = Setup::start(options(&["--restore-rate", "1000"])).await?;
    let chats = setup.registered_chats(CHATS).await?;
    let (chat, mut ws) = subscriber(&setup, &chats, "117").await?;
    let before = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;
    check_restored_once(&setup, &chats, &before, 1).await?;
    tokens_then_delivery(&setup, &chat, &mut ws).await?;
    let metrics = setup.metrics().await?;
    assert!(
        super::metric(&metrics, "relay_chat_server_events_total", &["kind=\"restarted\""]) >= 1.0
    );
    assert!(metrics.contains("relay_restore_duration_seconds"));
    setup.system.stop().await
}

#[tokio::test]
async fn a_killed_chat_server_has_every_chat_restored_once() -> Result<()> {
    let setup = Setup::start(options(&["--restore-rate", "1000"])).await?;
    let chats = setup.registered_chats(CHATS).await?;
    let (chat, mut ws) = subscriber(&setup, &chats, "117").await?;
    let before = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/kill", json!({})).await?;
    check_restored_once(&setup, &chats, &before, 1).await?;
    tokens_then_delivery(&setup, &chat, &mut ws).await?;
    // It comes back as a new process: its old chats have already moved, nothing is pinged
    // and no restoration starts, however many times the relay polls it.
    let settled = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/start", json!({})).await?;
    setup.admin.polled("117", 2).await?;
    assert_eq!(restoration(&setup).await?["runs"], 1, "no second restoration");
    assert_eq!(setup.admin.refreshes().await?, settled);
    setup.system.stop().await
}

#[tokio::test]
async fn a_gracefully_stopped_chat_server_has_every_chat_restored_once() -> Result<()> {
    let setup = Setup::start(options(&["--restore-rate", "1000"])).await?;
    let chats = setup.registered_chats(CHATS).await?;
    let (chat, mut ws) = subscriber(&setup, &chats, "117").await?;
    let before = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/stop", json!({})).await?;
    check_restored_once(&setup, &chats, &before, 1).await?;
    tokens_then_delivery(&setup, &chat, &mut ws).await?;
    setup.system.stop().await
}

#[tokio::test]
async fn a_second_restart_during_a_restoration_is_handled() -> Result<()> {
    // A slow rate keeps the first restoration running when the second restart comes.
    let setup = Setup::start(options(&["--restore-rate", "40"])).await?;
    let chats = setup.registered_chats(CHATS).await?;
    let on_117 = chats.iter().filter(|c| c.alias == "117").count();
    let before = setup.admin.refreshes().await?;
    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;
    restoration_when(&setup, |r| r["runs"] == 1 && r["pinged"].as_u64().unwrap_or(0) >= 5).await?;
    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;
    let second = restoration_finished(&setup, 2).await?;
    // The second restart landed while the first was at work: the first had moved some of
    // 117's chats, and the second took over the others.
    let left = second["chats"].as_u64().unwrap_or(0);
    assert!((1..on_117 as u64).contains(&left), "{left} of {on_117} left: {second}");
    check_restored_once(&setup, &chats, &before, 2).await?;
    setup.system.stop().await
}
