use std::time::Duration;

use serde_json::json;
use shared::gms::{ChatOperation, EventType};
use shared::push::PushNotification;
use shared::transcript::TranscriptPosition;

use super::{Sim, push_user_data};
use crate::push_sink::PushSink;

fn parse(value: &serde_json::Value) -> PushNotification {
    PushNotification::from_value(value).expect("a push is a JSON object")
}

#[tokio::test]
async fn agent_events_are_pushed_with_tokens_and_payload_in_every_format() -> anyhow::Result<()> {
    for format in ["flat", "kebab", "nested", "envelope", "envelope-string"] {
        let mut sink = PushSink::start().await?;
        let sim = Sim::start(&["--push-url", &sink.url, "--push-format", format]).await?;
        let (credentials, _) = sim.gms.create("Jane", push_user_data("dev-1", false)).await?;
        let send = ChatOperation::Send {
            message: "mine".into(),
            message_type: None,
            reply_to: None,
            position: TranscriptPosition::None,
        };
        sim.gms.call(&send, &credentials).await?;
        sim.admin.agent_says(&credentials.chat_id, "Hello Jane").await?;

        let (_, joined) = sink.next(Duration::from_secs(5)).await?;
        assert_eq!(parse(&joined).events[0].event_type, EventType::ParticipantJoined, "{format}");
        let (_, raw) = sink.next(Duration::from_secs(5)).await?;
        let push = parse(&raw);
        assert_eq!(push.device_id.as_deref(), Some("dev-1"), "{format}");
        assert_eq!(push.chat_id.as_deref(), Some(credentials.chat_id.as_str()), "{format}");
        assert_eq!(push.user_id.as_deref(), Some(credentials.user_id.as_str()));
        assert_eq!(push.secure_key.as_deref(), Some(credentials.secure_key.as_str()));
        assert_eq!(push.alias.as_deref(), Some(credentials.alias.as_str()));
        assert_eq!(push.notification_type.as_deref(), Some("Message"));
        assert_eq!(push.events.len(), 1);
        assert_eq!(push.events[0].text.as_deref(), Some("Hello Jane"));
        assert_eq!(
            push.proven_next_position(),
            Some(5),
            "{format}: join, mine, agent join, message"
        );
        let envelope = match format {
            // The envelope encoded in `message`: the notification text gives way to it.
            "envelope-string" => {
                assert_eq!(push.message, None);
                serde_json::from_str(raw["message"].as_str().unwrap_or_default())?
            }
            _ => {
                assert_eq!(push.message.as_deref(), Some("Agent: Hello Jane"), "{format}");
                raw.clone()
            }
        };
        if format.starts_with("envelope") {
            // The REST envelope, as a CometD notification's data is.
            assert_eq!(
                (&envelope["statusCode"], &envelope["chatEnded"]),
                (&json!(0), &json!(false))
            );
            assert_eq!(envelope["nextPosition"], 5, "{format}");
        }
        sink.none_within(Duration::from_millis(200)).await?;
        sim.running.stop().await;
    }
    Ok(())
}

#[tokio::test]
async fn the_minimal_format_is_only_the_documented_device_and_text() -> anyhow::Result<()> {
    let mut sink = PushSink::start().await?;
    let sim = Sim::start(&["--push-url", &sink.url, "--push-format", "minimal"]).await?;
    let (credentials, _) = sim.gms.create("Jane", push_user_data("dev-1", true)).await?;
    sim.admin.agent_says(&credentials.chat_id, "hi").await?;
    for said in ["Agent joined the chat", "Agent: hi"] {
        let (_, raw) = sink.next(Duration::from_secs(5)).await?;
        assert_eq!(raw, json!({"deviceId": "dev-1", "message": said}));
    }
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn without_the_payload_the_envelope_layouts_carry_only_the_tokens() -> anyhow::Result<()> {
    for format in ["envelope", "envelope-string"] {
        let mut sink = PushSink::start().await?;
        let sim = Sim::start(&["--push-url", &sink.url, "--push-format", format]).await?;
        let mut subscription = shared::gms::PushSubscription::new("dev-1", "gms-cluster");
        subscription.include_payload = false;
        let user_data = shared::gms::async_push_user_data(&subscription);
        let (credentials, _) = sim.gms.create("Jane", user_data).await?;
        sim.admin.agent_says(&credentials.chat_id, "hi").await?;
        let push = parse(&sink.next(Duration::from_secs(5)).await?.1);
        assert_eq!(push.chat_id.as_deref(), Some(credentials.chat_id.as_str()), "{format}");
        assert_eq!(push.secure_key.as_deref(), Some(credentials.secure_key.as_str()));
        assert!(push.events.is_empty() && push.next_position.is_none(), "{format}");
        sim.running.stop().await;
    }
    Ok(())
}

#[tokio::test]
async fn flex_push_content_limits_the_tokens() -> anyhow::Result<()> {
    let mut sink = PushSink::start().await?;
    let sim =
        Sim::start(&["--push-url", &sink.url, "--flex-push-content", "session-id,user-id"]).await?;
    let (credentials, _) = sim.gms.create("Jane", push_user_data("dev-1", false)).await?;
    sim.admin.agent_says(&credentials.chat_id, "hi").await?;
    let push = parse(&sink.next(Duration::from_secs(5)).await?.1);
    assert_eq!(push.chat_id.as_deref(), Some(credentials.chat_id.as_str()));
    assert!(push.secure_key.is_none() && push.alias.is_none());
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn chats_without_a_push_subscription_get_no_push() -> anyhow::Result<()> {
    let mut sink = PushSink::start().await?;
    let sim = Sim::start(&["--push-url", &sink.url]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    sim.admin.agent_says(&credentials.chat_id, "hi").await?;
    sink.none_within(Duration::from_millis(300)).await?;
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn resend_repeats_until_a_refresh_acknowledges() -> anyhow::Result<()> {
    let mut sink = PushSink::start().await?;
    let sim = Sim::start(&[
        "--push-url",
        &sink.url,
        "--push-resend-delay",
        "0.3",
        "--push-resend-attempts",
        "10",
    ])
    .await?;
    let (credentials, _) = sim.gms.create("Jane", push_user_data("dev-1", true)).await?;
    sim.admin
        .ok(&format!("/sim/chats/{}/agent/join", credentials.chat_id), serde_json::json!({}))
        .await?;

    let (first, push) = sink.next(Duration::from_secs(5)).await?;
    assert_eq!(
        parse(&push).notification_type.as_deref(),
        Some("push-url"),
        "resent pushes are of type push-url"
    );
    let (second, again) = sink.next(Duration::from_secs(5)).await?;
    let (third, _) = sink.next(Duration::from_secs(5)).await?;
    assert_eq!(again, push, "a resend is the same notification");
    for gap in [second - first, third - second] {
        assert!(
            gap >= Duration::from_millis(280) && gap < Duration::from_millis(900),
            "resend interval {gap:?}"
        );
    }
    // The HTTP 200s did not stop it; the acknowledging ping does.
    sim.refresh(&credentials, 0).await?;
    sink.none_within(Duration::from_millis(800)).await?;
    let stats = sim.admin.stats().await?;
    assert_eq!(stats["pushes"]["sent"], 1);
    assert!(stats["pushes"]["resent"].as_u64() >= Some(2));
    assert_eq!(stats["pushes"]["acknowledged"], 1);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn resend_gives_up_after_its_attempts_and_never_without_the_flag() -> anyhow::Result<()> {
    let mut sink = PushSink::start().await?;
    sink.answer_with(500);
    let sim = Sim::start(&[
        "--push-url",
        &sink.url,
        "--push-resend-delay",
        "0.1",
        "--push-resend-attempts",
        "2",
    ])
    .await?;
    let (with_resend, _) = sim.gms.create("Jane", push_user_data("dev-1", true)).await?;
    sim.admin.agent_says(&with_resend.chat_id, "hi").await?;
    // The agent's join and message, each delivered once and resent twice.
    for _ in 0..6 {
        sink.next(Duration::from_secs(5)).await?;
    }
    sink.none_within(Duration::from_millis(400)).await?;

    let (without, _) = sim.gms.create("Joe", push_user_data("dev-2", false)).await?;
    sim.admin.agent_says(&without.chat_id, "hi").await?;
    sink.next(Duration::from_secs(5)).await?;
    sink.next(Duration::from_secs(5)).await?;
    sink.none_within(Duration::from_millis(400)).await?;
    let stats = sim.admin.stats().await?;
    assert_eq!(stats["pushes"]["expired"], 2, "join and message both ran out");
    assert_eq!(stats["pushes"]["delivered"], 0);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn push_faults_drop_duplicate_and_delay_deliveries() -> anyhow::Result<()> {
    let mut sink = PushSink::start().await?;
    let sim = Sim::start(&[
        "--push-url",
        &sink.url,
        "--push-resend-delay",
        "0.4",
        "--push-resend-attempts",
        "5",
    ])
    .await?;
    let (credentials, _) = sim.gms.create("Jane", push_user_data("dev-1", true)).await?;
    let chat = &credentials.chat_id;
    let faults = |body| sim.admin.ok("/sim/faults", body);

    // Dropped: nothing arrives for the first delivery; the resend brings it.
    faults(serde_json::json!({"pushDrop": 1})).await?;
    let dropped_at = tokio::time::Instant::now();
    sim.admin.ok(&format!("/sim/chats/{chat}/agent/join"), serde_json::json!({})).await?;
    let (arrived, joined) = sink.next(Duration::from_secs(5)).await?;
    assert!(arrived - dropped_at >= Duration::from_millis(350), "the first delivery was dropped");
    sim.refresh(&credentials, 0).await?;

    // Duplicated: the same body twice, before any resend is due.
    faults(serde_json::json!({"pushDuplicate": 1})).await?;
    sim.admin.agent_says(chat, "twice").await?;
    let (first, once) = sink.next(Duration::from_secs(5)).await?;
    let (second, again) = sink.next(Duration::from_secs(5)).await?;
    assert_eq!(once, again);
    assert_ne!(once, joined);
    assert!(second - first < Duration::from_millis(300), "a duplicate, not a resend");
    sim.refresh(&credentials, 0).await?;

    // Delayed, until set back to 0.
    faults(serde_json::json!({"pushDelayMs": 500})).await?;
    let said_at = tokio::time::Instant::now();
    sim.admin.agent_says(chat, "late").await?;
    let (late, _) = sink.next(Duration::from_secs(5)).await?;
    assert!(late - said_at >= Duration::from_millis(500), "delayed {:?}", late - said_at);
    sim.refresh(&credentials, 0).await?;
    let now = faults(serde_json::json!({"pushDelayMs": 0, "statusCode1": 1})).await?;
    assert_eq!(now["pushDelayMs"], 0);
    assert_eq!(now["pushShuffleMs"], 0, "every fault is reported: {now}");
    let now = faults(serde_json::json!({"http5xx": 1})).await?;
    assert_eq!((now["statusCode1"].as_u64(), now["http5xx"].as_u64()), (Some(1), Some(1)));
    sim.running.stop().await;
    Ok(())
}
