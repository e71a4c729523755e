use std::time::Duration;

use serde_json::json;
use shared::gms::{ChatOperation, Credentials, Verdict};
use shared::health::ChatServerHealth;
use shared::push::PushNotification;
use shared::transcript::TranscriptPosition;

use super::{Sim, push_user_data};
use crate::push_sink::PushSink;

async fn health(sim: &Sim, alias: &str) -> anyhow::Result<ChatServerHealth> {
    let addr = sim
        .running
        .chat_servers
        .iter()
        .find(|(a, _)| a == alias)
        .map(|(_, addr)| *addr)
        .expect("alias");
    let body = reqwest::get(format!("http://{addr}/health")).await?.bytes().await?;
    Ok(ChatServerHealth::parse(&body)?)
}

/// A chat created on `alias` (chats go to the least loaded server, so create until one lands there).
async fn chat_on(
    sim: &Sim,
    alias: &str,
    user_data: Vec<(String, String)>,
) -> anyhow::Result<Credentials> {
    for _ in 0..4 {
        let (credentials, _) = sim.gms.create("Jane", user_data.clone()).await?;
        if credentials.alias == alias {
            return Ok(credentials);
        }
    }
    anyhow::bail!("no chat landed on {alias}")
}

#[tokio::test]
async fn a_restarted_chat_server_has_a_new_pid_and_its_chats_move_on_the_next_request()
-> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let before = health(&sim, "117").await?;
    assert_eq!(before.app_dbid, "117");
    let mut credentials = chat_on(&sim, "117", vec![]).await?;
    sim.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;
    let after = health(&sim, "117").await?;
    assert_ne!(after.process_os_pid, before.process_os_pid);

    let (status, _) = sim
        .admin
        .post(&format!("/sim/chats/{}/agent/message", credentials.chat_id), json!({"text": "x"}))
        .await?;
    assert_eq!(status, 409, "no agent activity reaches a session that is not restored");
    let restored = sim.refresh(&credentials, 1).await?;
    assert_eq!(restored.verdict(), Verdict::Ok);
    assert_eq!(restored.alias.as_deref(), Some("118"), "restored on the other Chat Server");
    assert_eq!(restored.messages.len(), 1, "the transcript survives restoration");
    assert!(restored.update_credentials(&mut credentials));
    sim.admin.agent_says(&credentials.chat_id, "back").await?;
    assert_eq!(sim.admin.stats().await?["restorations"], 1);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_killed_chat_server_stops_answering_health_until_started_again() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let before = health(&sim, "118").await?;
    let credentials = chat_on(&sim, "118", vec![]).await?;
    sim.admin.ok("/sim/chat-servers/118/kill", json!({})).await?;
    assert!(health(&sim, "118").await.is_err(), "a dead process does not answer");
    let restored = sim.refresh(&credentials, 0).await?;
    assert_eq!(restored.alias.as_deref(), Some("117"));
    sim.admin.ok("/sim/chat-servers/118/start", json!({})).await?;
    assert_ne!(health(&sim, "118").await?.process_os_pid, before.process_os_pid);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_graceful_stop_pushes_the_shutdown_advice_first() -> anyhow::Result<()> {
    for format in ["flat", "envelope", "envelope-string"] {
        let mut sink = PushSink::start().await?;
        let sim = Sim::start(&["--push-url", &sink.url, "--push-format", format]).await?;
        let subscribed = chat_on(&sim, "117", push_user_data("dev-1", false)).await?;
        sim.admin.ok("/sim/chat-servers/117/stop", json!({})).await?;
        let advice = PushNotification::from_value(&sink.next(Duration::from_secs(5)).await?.1)?;
        assert!(advice.shutdown_advice, "{format}");
        assert_eq!(advice.chat_id.as_deref(), Some(subscribed.chat_id.as_str()), "{format}");
        assert!(health(&sim, "117").await.is_err());
        let restored = sim.refresh(&subscribed, 0).await?;
        assert_eq!(restored.alias.as_deref(), Some("118"));
        sim.running.stop().await;
    }
    Ok(())
}

#[tokio::test]
async fn with_every_chat_server_down_requests_are_retryable_until_one_starts() -> anyhow::Result<()>
{
    let sim = Sim::start(&["--chat-servers", "117"]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    sim.admin.ok("/sim/chat-servers/117/kill", json!({})).await?;
    let ping = ChatOperation::Refresh { position: TranscriptPosition::None };
    assert_eq!(sim.gms.call(&ping, &credentials).await?.verdict(), Verdict::Retry);
    let visitor = shared::gms::Visitor { nickname: Some("Joe".into()), ..Default::default() };
    let create = sim.gms.raw(&ChatOperation::Create { visitor, user_data: vec![] }, None).await?;
    let refused = shared::gms::ChatResponse::parse(&create.body)?;
    assert_eq!(
        (refused.verdict(), refused.errors[0].code),
        (Verdict::Retry, 240),
        "no server can take a new chat"
    );
    sim.admin.ok("/sim/chat-servers/117/start", json!({})).await?;
    let restored = sim.gms.call(&ping, &credentials).await?;
    assert_eq!(restored.verdict(), Verdict::Ok);
    assert_eq!(restored.alias.as_deref(), Some("117"), "the only server, restarted, takes it back");
    sim.running.stop().await;
    Ok(())
}
