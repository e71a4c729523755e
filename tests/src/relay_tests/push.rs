use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use shared::gms::{ChatOperation, EventType};
use shared::relay_api::{PUSH_PATH, RegisterSession, ServerFrame};
use shared::transcript::TranscriptPosition;

use super::{Setup, metric, next_events, test_secret_query};
use crate::harness::Options;
use crate::support::{SERVICE, TEST_PUSH_SECRET, push_user_data, register};
use crate::ws_client::WsClient;

#[tokio::test]
async fn an_agent_message_becomes_a_frame_and_is_acknowledged() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&["--push-resend-delay", "0.4"])).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(true).await?;
    setup.admin.agent_says(&credentials.chat_id, "Hello Jane").await?;
    // The agent joins first (automatically), then speaks: two pushes, two frames.
    let joined = next_events(&mut ws).await?;
    assert_eq!(joined[0].event_type, EventType::ParticipantJoined);
    let said = next_events(&mut ws).await?;
    assert_eq!(said[0].text.as_deref(), Some("Hello Jane"));
    setup.acknowledged(&credentials.chat_id, Duration::from_secs(5)).await?;
    // Acknowledged before the first resend: nothing is sent twice.
    ws.none_within(Duration::from_millis(700)).await?;
    let stats = setup.admin.stats().await?;
    assert_eq!(stats["pushes"]["resent"], 0, "{stats}");
    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_pushes_total", &["result=\"accepted\""]) >= 2.0);
    assert!(metric(&metrics, "relay_pings_total", &["kind=\"ack\"", "result=\"ok\""]) >= 1.0);
    assert!(metrics.contains("relay_push_to_frame_seconds"));
    assert!(metrics.contains("relay_ack_latency_seconds"));
    setup.system.stop().await
}

/// Every layout gms-sim can send, end to end: a registered chat's browser hears the agent,
/// and the push is acknowledged. Where the push carries the tokens (all but `minimal`), a
/// chat nobody registered is acknowledged too, which proves the relay read them (from the
/// JSON string in `message` for `envelope-string`). `minimal` names no chat: every chat on
/// the device hears `changed` and catches up from GMS.
#[tokio::test]
async fn every_push_format_is_understood() -> anyhow::Result<()> {
    for format in ["flat", "kebab", "nested", "envelope", "envelope-string", "minimal"] {
        let setup = Setup::start(Options::sim(&["--push-format", format])).await?;
        let device = format!("dev-{format}");
        let (credentials, _) = setup.gms.create("Jane", push_user_data(&device, true)).await?;
        let body = RegisterSession::new(SERVICE, &credentials, Some(&device));
        let registered = register(&setup.http, &setup.system.relay_url, &body).await?;
        let mut ws = WsClient::connect(&setup.system.relay_url).await?;
        ws.subscribe(&credentials.chat_id, &registered.token).await?;
        setup.admin.agent_says(&credentials.chat_id, "hi").await?;
        if format == "minimal" {
            // The agent's join and message: each names only the device.
            for _ in 0..2 {
                assert_eq!(
                    ws.frame(Duration::from_secs(5)).await?,
                    ServerFrame::Changed { chat_id: credentials.chat_id.clone() },
                    "{format}"
                );
            }
            let refresh = ChatOperation::Refresh { position: TranscriptPosition::All };
            let caught_up = setup.gms.call(&refresh, &credentials).await?;
            assert!(caught_up.messages.iter().any(|e| e.text.as_deref() == Some("hi")));
        } else {
            next_events(&mut ws).await?;
            assert_eq!(next_events(&mut ws).await?[0].text.as_deref(), Some("hi"), "{format}");
            let unregistered = setup.chat(true).await?;
            setup.admin.agent_says(&unregistered.chat_id, "anyone?").await?;
            setup.acknowledged(&unregistered.chat_id, Duration::from_secs(5)).await?;
        }
        setup.acknowledged(&credentials.chat_id, Duration::from_secs(5)).await?;
        setup.system.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn pushes_need_the_secret_by_query_or_basic_auth() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let body = json!({"deviceId": "d", "message": "m"}).to_string();
    assert_eq!(setup.push("", body.clone()).await?, 401);
    assert_eq!(setup.push("?secret=wrong", body.clone()).await?, 401);
    assert_eq!(setup.push(&test_secret_query(), body.clone()).await?, 200);
    let basic = |password: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("gms:{password}"));
        format!("Basic {encoded}")
    };
    let url = format!("{}{PUSH_PATH}", setup.system.relay_url);
    for (password, status) in [(TEST_PUSH_SECRET, 200), ("nope", 401)] {
        let response = setup
            .http
            .post(&url)
            .header("authorization", basic(password))
            .body(body.clone())
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), status);
        if status == 401 {
            assert!(response.headers().contains_key("www-authenticate"));
            let error: serde_json::Value = response.json().await?;
            assert_eq!(error["code"], "bad_secret");
        }
    }
    setup.system.stop().await
}

#[tokio::test]
async fn pushes_from_outside_the_allowed_networks_are_forbidden() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[]).relay(&["--push-allow", "10.0.0.0/8"])).await?;
    assert_eq!(setup.push(&test_secret_query(), "{}").await?, 403);
    setup.system.stop().await?;
    let local =
        Setup::start(Options::sim(&[]).relay(&["--push-allow", "10.0.0.0/8,127.0.0.0/8"])).await?;
    assert_eq!(local.push(&test_secret_query(), "{}").await?, 200);
    local.system.stop().await
}

#[tokio::test]
async fn malformed_and_oversize_pushes_are_refused_without_harming_other_chats()
-> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[]).relay(&["--push-body-limit", "4096"])).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(false).await?;
    let query = test_secret_query();
    for bad in ["not json", "[1,2,3]", "", "{\"deviceId\": "] {
        assert_eq!(setup.push(&query, bad).await?, 400, "{bad:?}");
    }
    let oversize = json!({"chatId": credentials.chat_id, "pad": "x".repeat(8192)}).to_string();
    assert_eq!(setup.push(&query, oversize).await?, 413);
    // The chat is untouched and still works.
    setup.admin.agent_says(&credentials.chat_id, "still here").await?;
    next_events(&mut ws).await?;
    assert_eq!(next_events(&mut ws).await?[0].text.as_deref(), Some("still here"));
    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_pushes_total", &["result=\"malformed\""]) >= 4.0);
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_without_payload_says_changed_and_an_unknown_device_is_ignored() -> anyhow::Result<()>
{
    let mut setup = Setup::start(Options::sim(&[])).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(false).await?;
    let query = test_secret_query();
    let bare =
        json!({"deviceId": "d", "message": "New message", "session-id": credentials.chat_id})
            .to_string();
    assert_eq!(setup.push(&query, bare).await?, 200);
    assert_eq!(
        ws.frame(Duration::from_secs(5)).await?,
        ServerFrame::Changed { chat_id: credentials.chat_id.clone() }
    );
    let stranger = json!({"deviceId": "nobody", "message": "?"}).to_string();
    assert_eq!(setup.push(&query, stranger).await?, 200);
    setup.system.stop_relay().await?;
    let (frames, _) = ws.frames_until_closed().await?;
    assert_eq!(frames, vec![], "the stranger's push reached no one");
    setup.system.stop().await
}
