use std::time::Duration;

use shared::relay_api::{PUSH_PATH, ServerFrame, close_code};

use super::{Setup, next_events};
use crate::harness::Options;
use crate::ws_client::Received;

#[tokio::test]
async fn the_periodic_ping_recovers_an_event_whose_push_was_lost() -> anyhow::Result<()> {
    // Pushes from gms-sim (127.0.0.1) are refused with 403 and resend is off, so they are
    // lost: only the periodic ping can find the new event.
    // A chat counts as missing pushes from its registration on (`--push-missed-after 0`).
    for missed_after in ["0", "120"] {
        let options = Options::sim(&[]).relay(&[
            "--push-allow",
            "10.0.0.0/8",
            "--ping-interval",
            "0.3",
            "--push-missed-after",
            missed_after,
        ]);
        let setup = Setup::start(options).await?;
        let (credentials, mut ws, _) = setup.subscribed_chat(false).await?;
        setup.admin.agent_says(&credentials.chat_id, "are you there?").await?;
        let frame = ws.frame(Duration::from_secs(5)).await?;
        assert_eq!(frame, ServerFrame::Changed { chat_id: credentials.chat_id.clone() });
        let stats = setup.admin.stats().await?;
        let lost = stats["pushes"]["failed"].as_u64();
        assert!(lost >= Some(2), "the pushes really were lost: {stats}");
        // The silence is visible to the operator, once the chat is old enough for it to
        // mean that Chat Server does not push for it.
        let status: shared::relay_api::RelayStatus = setup
            .http
            .get(format!("{}/status", setup.system.relay_url))
            .send()
            .await?
            .json()
            .await?;
        match missed_after {
            "0" => assert!(status.pushes_missed >= 1, "{status:?}"),
            _ => assert_eq!(status.pushes_missed, 0, "a new chat's silence is no fault yet"),
        }
        setup.system.stop().await?;
    }
    Ok(())
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

#[tokio::test]
async fn a_lost_last_push_that_an_acknowledgement_covered_is_announced() -> anyhow::Result<()> {
    // Pushes alternate between the relay and an address where nothing listens, and are
    // resent only after a minute: the agent's joining reaches the relay, the line after it
    // is lost. The relay's acknowledgement of the first reaches GMS after the second was
    // sent (every Chat API answer takes 300 ms), so GMS counts the second acknowledged and
    // never resends it: the lost push is the last, and no later frame reveals the gap.
    let nowhere = format!("http://127.0.0.1:{}{PUSH_PATH}", crate::harness::free_port()?);
    let sim = ["--push-url", &nowhere, "--push-resend-delay", "60"];
    let setup = Setup::start(Options::sim(&sim).relay(&["--ping-interval", "3600"])).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(true).await?;
    let chat_id = credentials.chat_id.clone();
    setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 300})).await?;
    setup.admin.agent_says(&chat_id, "one").await?;
    let joined = next_events(&mut ws).await?;
    assert!(joined.iter().all(|e| e.text.is_none()), "only the join came through: {joined:?}");
    setup.acknowledged(&chat_id, Duration::from_secs(5)).await?;
    let stats = setup.admin.stats().await?;
    assert!(stats["pushes"]["failed"].as_u64() >= Some(1), "the second push was lost: {stats}");
    // Only the relay can tell the browser now.
    assert_eq!(ws.frame(Duration::from_secs(5)).await?, ServerFrame::Changed { chat_id });
    setup.admin.ok("/sim/faults", serde_json::json!({"delayMs": 0})).await?;
    setup.system.stop().await
}
