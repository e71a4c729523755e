use std::time::Duration;

use shared::relay_api::{ServerFrame, close_code};

use super::{Setup, next_events};
use crate::harness::Options;
use crate::ws_client::Received;

#[tokio::test]
async fn the_periodic_ping_recovers_an_event_whose_push_was_lost() -> anyhow::Result<()> {
    // Pushes from gms-sim (127.0.0.1) are refused with 403 and resend is off, so they are
    // lost: only the periodic ping can find the new event.
    let options =
        Options::sim(&[]).relay(&["--push-allow", "10.0.0.0/8", "--ping-interval", "0.3"]);
    let setup = Setup::start(options).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(false).await?;
    setup.admin.agent_says(&credentials.chat_id, "are you there?").await?;
    let frame = ws.frame(Duration::from_secs(5)).await?;
    assert_eq!(frame, ServerFrame::Changed { chat_id: credentials.chat_id.clone() });
    let stats = setup.admin.stats().await?;
    assert!(stats["pushes"]["failed"].as_u64() >= Some(2), "the pushes really were lost: {stats}");
    setup.system.stop().await
}

#[tokio::test]
async fn an_ended_chat_is_announced_and_forgotten() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(false).await?;
    setup
        .admin
        .ok(&format!("/sim/chats/{}/agent/join", credentials.chat_id), serde_json::json!({}))
        .await?;
    next_events(&mut ws).await?;
    setup
        .admin
        .ok(&format!("/sim/chats/{}/end", credentials.chat_id), serde_json::json!({}))
        .await?;
    next_events(&mut ws).await?;
    assert_eq!(
        ws.frame(Duration::from_secs(5)).await?,
        ServerFrame::Ended { chat_id: credentials.chat_id.clone() }
    );
    // Forgotten: a new subscription with the old token learns that it ended.
    let mut late = crate::ws_client::WsClient::connect(&setup.system.relay_url).await?;
    let answer = late.subscribe(&credentials.chat_id, &registered.token).await?;
    assert_eq!(answer, ServerFrame::Ended { chat_id: credentials.chat_id.clone() });
    setup.system.stop().await
}

#[tokio::test]
async fn shutdown_closes_sockets_with_the_reconnect_code() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let (_, mut ws, _) = setup.subscribed_chat(false).await?;
    let started = tokio::time::Instant::now();
    setup.system.stop().await?;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        ws.next(Duration::from_secs(5)).await?,
        Received::Closed(Some(close_code::GOING_AWAY))
    );
    Ok(())
}
