use serde_json::json;
use shared::gms::{ChatOperation, ChatResponse, EventType, Verdict, Visitor};
use shared::transcript::TranscriptPosition;

use super::Sim;
use crate::support::SERVICE;

fn create_with(visitor: Visitor) -> ChatOperation {
    ChatOperation::Create { visitor, user_data: vec![] }
}

#[tokio::test]
async fn create_returns_tokens_and_the_visitors_own_join() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, response) = sim.gms.create("Jane", vec![]).await?;
    assert_eq!(response.verdict(), Verdict::Ok);
    assert_eq!(credentials.chat_id.len(), 16);
    assert!(credentials.chat_id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(credentials.user_id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    assert!(
        credentials.secure_key.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(["117", "118"].contains(&credentials.alias.as_str()));
    let joined = &response.messages[0];
    assert_eq!((joined.index, &joined.event_type), (Some(1), &EventType::ParticipantJoined));
    assert_eq!((joined.from.participant_id, joined.from.party_type.as_str()), (1, "Client"));
    assert_eq!(response.next_position, Some(2));
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn create_needs_a_nickname_or_a_first_and_last_name() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let cases = [
        (Visitor::default(), Some(161)),
        (Visitor { first_name: Some("Jane".into()), ..Visitor::default() }, Some(103)),
        (Visitor { last_name: Some("Doe".into()), ..Visitor::default() }, Some(102)),
        (
            Visitor {
                first_name: Some("Jane".into()),
                last_name: Some("Doe".into()),
                ..Visitor::default()
            },
            None,
        ),
    ];
    for (visitor, error) in cases {
        let raw = sim.gms.raw(&create_with(visitor.clone()), None).await?;
        let response = ChatResponse::parse(&raw.body)?;
        match error {
            Some(code) => {
                assert_eq!(response.status_code, 2, "{visitor:?}");
                assert_eq!(response.errors[0].code, code);
            }
            None => assert_eq!(response.messages[0].from.nickname, "Jane Doe"),
        }
    }
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn transcript_positions_follow_the_zero_one_n_rule() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    for text in ["one", "two"] {
        sim.admin.agent_says(&credentials.chat_id, text).await?;
    }
    // 1 joined (client), 2 joined (agent), 3 "one", 4 "two".
    let none = sim.refresh(&credentials, 0).await?;
    assert!(none.messages.is_empty());
    assert_eq!(none.next_position, Some(5));
    let all = sim.refresh(&credentials, 1).await?;
    assert_eq!(all.messages.iter().filter_map(|e| e.index).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let from_three = sim.refresh(&credentials, 3).await?;
    assert_eq!(
        from_three.messages.iter().map(|e| e.text.clone().unwrap_or_default()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    let beyond = sim.refresh(&credentials, 9).await?;
    assert!(beyond.messages.is_empty());
    let send = ChatOperation::Send {
        message: "hi".into(),
        message_type: Some("text".into()),
        reply_to: None,
        position: TranscriptPosition::From(4),
    };
    let sent = sim.gms.call(&send, &credentials).await?;
    assert_eq!(sent.messages.len(), 2, "send returns the transcript from its position");
    assert_eq!(sent.messages[1].message_type.as_deref(), Some("text"));
    assert_eq!(sent.next_position, Some(6));
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_wrong_secure_key_is_refused_and_user_id_and_alias_are_optional() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    let mut wrong = credentials.clone();
    wrong.secure_key = "0000".into();
    let refused = sim.refresh(&wrong, 1).await?;
    assert_eq!(refused.verdict(), Verdict::Stop);
    assert_eq!(refused.errors[0].code, 8210);
    assert_eq!(refused.secure_key, None, "a refusal does not leak the key");

    // GMS 8.5.112+ allows leaving out userId and alias.
    let body = format!("secureKey={}&transcriptPosition=1", credentials.secure_key);
    let url =
        format!("{}/genesys/2/chat/{SERVICE}/{}/refresh", sim.running.url(), credentials.chat_id);
    let response: ChatResponse = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(response.verdict(), Verdict::Ok);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn other_content_types_get_415_and_multipart_create_works() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let url = format!("{}/genesys/2/chat/{SERVICE}", sim.running.url());
    let client = reqwest::Client::new();
    let json = client.post(&url).json(&json!({"nickname": "Jane"})).send().await?;
    assert_eq!(json.status().as_u16(), 415);
    let form =
        reqwest::multipart::Form::new().text("nickname", "Jane").text("userData[TimeZone]", "-480");
    let created: ChatResponse = client.post(&url).multipart(form).send().await?.json().await?;
    assert!(created.credentials().is_some());
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn session_operations_append_their_events() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    let operations = [
        (
            ChatOperation::StartTyping { message: Some("Hel".into()) },
            Some(EventType::TypingStarted),
        ),
        (ChatOperation::StopTyping { message: None }, Some(EventType::TypingStopped)),
        (
            ChatOperation::Send {
                message: "Hello".into(),
                message_type: None,
                reply_to: None,
                position: TranscriptPosition::None,
            },
            Some(EventType::Message),
        ),
        (
            ChatOperation::PushUrl { url: "https://example.com/order/1".into() },
            Some(EventType::PushUrl),
        ),
        (
            ChatOperation::UpdateNickname { nickname: "Jane D".into() },
            Some(EventType::NicknameUpdated),
        ),
        (
            ChatOperation::CustomNotice { message: "cart=3".into(), message_type: None },
            Some(EventType::CustomNotice),
        ),
        (ChatOperation::ReadReceipt { position: TranscriptPosition::From(2) }, None),
        (ChatOperation::UpdateData { user_data: vec![("orderId".into(), "42".into())] }, None),
    ];
    for (operation, event) in operations {
        let before = sim.refresh(&credentials, 0).await?.next_position.unwrap_or(0);
        let response = sim.gms.call(&operation, &credentials).await?;
        assert_eq!(response.verdict(), Verdict::Ok, "{}", operation.name());
        let after = sim.refresh(&credentials, before).await?;
        let types: Vec<EventType> = after.messages.iter().map(|e| e.event_type.clone()).collect();
        assert_eq!(types, event.into_iter().collect::<Vec<_>>(), "{}", operation.name());
    }
    let detail = sim.admin.get(&format!("/sim/chats/{}", credentials.chat_id)).await?;
    assert_eq!(detail["userData"]["orderId"], "42");
    assert_eq!(detail["nickname"], "Jane D");
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn after_disconnect_the_chat_is_ended_but_its_transcript_stays_readable() -> anyhow::Result<()>
{
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    let left = sim.gms.call(&ChatOperation::Disconnect, &credentials).await?;
    assert_eq!(left.verdict(), Verdict::Ended);
    let send = ChatOperation::Send {
        message: "still there?".into(),
        message_type: None,
        reply_to: None,
        position: TranscriptPosition::None,
    };
    let refused = sim.gms.call(&send, &credentials).await?;
    assert_eq!(refused.verdict(), Verdict::Ended);
    assert_eq!(refused.errors[0].code, 249);
    let transcript = sim.refresh(&credentials, 1).await?;
    assert_eq!(transcript.verdict(), Verdict::Ended);
    assert_eq!(
        transcript.messages.last().map(|e| e.event_type.clone()),
        Some(EventType::ParticipantLeft)
    );
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_agent_side_joins_types_pushes_urls_and_ends() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    let chat = credentials.chat_id.clone();
    sim.admin.ok(&format!("/sim/chats/{chat}/agent/join"), json!({"nickname": "Ann"})).await?;
    sim.admin.ok(&format!("/sim/chats/{chat}/agent/typing"), json!({"typing": true})).await?;
    sim.admin
        .ok(
            &format!("/sim/chats/{chat}/agent/push-url"),
            json!({"url": "https://example.com/help"}),
        )
        .await?;
    let (status, _) =
        sim.admin.post(&format!("/sim/chats/{chat}/agent/message"), json!({})).await?;
    assert_eq!(status, 400, "a message needs text");
    sim.admin.ok(&format!("/sim/chats/{chat}/end"), json!({})).await?;
    let (status, _) = sim
        .admin
        .post(&format!("/sim/chats/{chat}/agent/message"), json!({"text": "late"}))
        .await?;
    assert_eq!(status, 409, "an ended chat takes no more messages");
    let transcript = sim.refresh(&credentials, 2).await?;
    let seen: Vec<(String, String)> = transcript
        .messages
        .iter()
        .map(|e| (e.event_type.as_str().to_owned(), e.from.nickname.clone()))
        .collect();
    let expected = [
        ("ParticipantJoined", "Ann"),
        ("TypingStarted", "Ann"),
        ("PushUrl", "Ann"),
        ("ParticipantLeft", "Ann"),
    ];
    assert_eq!(seen, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(transcript.chat_ended, Some(true));
    let (status, _) = sim.admin.post("/sim/chats/nope/agent/join", json!({})).await?;
    assert_eq!(status, 404);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn cors_answers_configured_origins_only() -> anyhow::Result<()> {
    let sim = Sim::start(&["--cors-origin", "http://shop.example"]).await?;
    let url = format!("{}/genesys/2/chat/{SERVICE}", sim.running.url());
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("http://shop.example").await?;
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").map(|v| v.as_bytes()),
        Some(&b"http://shop.example"[..])
    );
    let other = preflight("http://evil.example").await?;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn faults_are_injected_then_cleared() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    sim.admin.ok("/sim/faults", json!({"statusCode1": 2, "http5xx": 1})).await?;
    let op = ChatOperation::Refresh { position: TranscriptPosition::None };
    assert_eq!(sim.gms.raw(&op, Some(&credentials)).await?.status, 503);
    assert_eq!(sim.gms.call(&op, &credentials).await?.verdict(), Verdict::Retry);
    assert_eq!(sim.gms.call(&op, &credentials).await?.verdict(), Verdict::Retry);
    assert_eq!(sim.gms.call(&op, &credentials).await?.verdict(), Verdict::Ok);
    sim.admin.ok("/sim/faults", json!({"delayMs": 150})).await?;
    let started = tokio::time::Instant::now();
    sim.gms.call(&op, &credentials).await?;
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let (status, _) = sim.admin.post("/sim/faults", json!({"statusCode1": "many"})).await?;
    assert_eq!(status, 400);
    let stats = sim.admin.stats().await?;
    assert_eq!(stats["requests"]["refresh"], 5);
    assert_eq!(stats["chats"][&credentials.chat_id]["refresh"], 5);
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_bot_joins_and_answers() -> anyhow::Result<()> {
    let sim = Sim::start(&["--bot", "--bot-delay-ms", "20"]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    let agent_message = |r: &ChatResponse| {
        r.messages
            .iter()
            .filter(|e| e.from.participant_id == 2 && e.event_type == EventType::Message)
            .count()
    };
    sim.refresh_until(&credentials, std::time::Duration::from_secs(5), |r| agent_message(r) >= 1)
        .await?;
    let send = ChatOperation::Send {
        message: "where is my order".into(),
        message_type: None,
        reply_to: None,
        position: TranscriptPosition::None,
    };
    sim.gms.call(&send, &credentials).await?;
    let answered = sim
        .refresh_until(&credentials, std::time::Duration::from_secs(5), |r| agent_message(r) >= 2)
        .await?;
    let reply = answered
        .messages
        .iter()
        .rev()
        .find(|e| e.from.participant_id == 2 && e.event_type == EventType::Message);
    assert!(reply.and_then(|e| e.text.as_deref()).is_some_and(|t| t.contains("where is my order")));
    let console = reqwest::get(format!("{}/sim/agent", sim.running.url())).await?.text().await?;
    assert!(console.contains("agent console"));
    sim.running.stop().await;
    Ok(())
}
