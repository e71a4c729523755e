//! `relay check --capture` and the route behind it: the first push body of a chat the check
//! registered, redacted by the relay, and each Chat Server's health body, written for an
//! operator to report; the route wants the chat's token and a registration that asked.

use std::time::Duration;

use anyhow::Result;
use relay::check::run;
use serde_json::{Value, json};
use shared::gms::Credentials;
use shared::push::{PushNotification, REDACTED};
use shared::relay_api::{CAPTURE, CapturedPush, RegisterSession, SESSIONS_PATH, SessionRegistered};

use super::Setup;
use crate::harness::Options;
use crate::support::{SERVICE, Wait, chat_server, push_user_data, until_every};

#[tokio::test]
async fn the_check_writes_the_push_body_redacted_and_each_health_body() -> Result<()> {
    // The envelope as a JSON string in `message`: the secure key sits inside a string.
    let options =
        Options::sim(&["--bot", "--bot-delay-ms", "700", "--push-format", "envelope-string"]);
    let setup = Setup::start(options).await?;
    setup.admin.ok("/sim/chat-servers/118/health", json!({"body": "text"})).await?;
    let health = |alias: &str| -> Result<String> {
        let (_, address) = setup
            .system
            .gms
            .chat_servers
            .iter()
            .find(|(a, _)| a == alias)
            .ok_or_else(|| anyhow::anyhow!("no Chat Server {alias}"))?;
        Ok(chat_server(alias, *address))
    };
    let dir = crate::harness::scratch_dir("capture")?.join("new");
    let dir_text = dir.display().to_string();
    let nowhere = chat_server("999", ([127, 0, 0, 1], crate::harness::free_port()?).into());
    let (on_117, on_118) = (health("117")?, health("118")?);
    let servers = ["--chat-server", &on_117, "--chat-server", &on_118, "--chat-server", &nowhere];
    let config = setup.check_config("20", &[&servers[..], &["--capture", &dir_text]].concat())?;
    let mut out = Vec::new();
    let passed = run(&config, &mut out).await?;
    let report = String::from_utf8(out)?;
    assert!(!passed, "two health endpoints fail: {report}");
    for line in [
        "ok    Chat Server \"117\"'s health endpoint: app_dbid \"117\", process_os_pid ",
        "FAIL  Chat Server \"118\"'s health endpoint: unreadable",
        "      - the body is not JSON (2 bytes)",
        "--health-dbid-key and --health-pid-key",
        "FAIL  Chat Server \"999\"'s health endpoint: unreachable",
        "ok    a push arrives through the relay",
        "ok    the test chat ends",
        "6 of 8 steps passed",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    for name in ["health-117.txt", "health-118.txt", "push-body.txt"] {
        let wrote = format!("capture: wrote {}", dir.join(name).display());
        assert!(report.contains(&wrote), "{wrote:?} missing from:\n{report}");
    }
    assert!(!dir.join("health-999.txt").exists(), "no answer, no file");

    // The health files hold the bodies as the sim sent them.
    assert_eq!(std::fs::read_to_string(dir.join("health-118.txt"))?, "OK");
    let servers = setup.admin.get("/sim/chat-servers").await?;
    let pid = servers
        .as_array()
        .and_then(|s| s.iter().find(|s| s["alias"] == "117"))
        .map(|s| s["pid"].clone())
        .unwrap_or_default();
    let body: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("health-117.txt"))?)?;
    assert_eq!((&body["app_dbid"], &body["process_os_pid"]), (&json!(117), &pid), "{body}");

    // The push body keeps its layout (the envelope a string in `message`), names the chat
    // and carries its event (the first push is the bot's joining, before its greeting),
    // and its secure key is gone.
    let chats = setup.admin.get("/sim/chats").await?;
    let chat_id = chats[0]["chatId"].as_str().unwrap_or_default().to_owned();
    let text = std::fs::read_to_string(dir.join("push-body.txt"))?;
    let push: Value = serde_json::from_str(&text)?;
    let envelope: Value = serde_json::from_str(push["message"].as_str().unwrap_or_default())?;
    assert_eq!(envelope["chatId"], chat_id.as_str(), "{text}");
    assert_eq!(envelope["secureKey"], REDACTED, "{text}");
    let event = &envelope["messages"][0];
    assert_eq!(
        (&event["type"], &event["from"]["nickname"]),
        (&json!("ParticipantJoined"), &json!("Ava")),
        "{text}"
    );
    let read = PushNotification::parse(text.as_bytes())?;
    assert_eq!(read.secure_key.as_deref(), Some(REDACTED), "no other secure key in it");
    assert!(!read.events.is_empty());
    setup.system.stop().await
}

#[tokio::test]
async fn with_redis_a_relay_that_never_took_the_push_answers_with_its_body() -> Result<()> {
    let redis = crate::harness::RedisServer::start().await?;
    let options =
        Options::sim(&["--push-format", "envelope"]).relay(&["--redis-url", &redis.url()]);
    let setup = Setup::start(options).await?;
    // gms-sim pushes to the first relay only.
    let other = setup.system.add_relay().await?;
    let device = "dev-capture-redis";
    let chat = chat(&setup, device).await?;
    let token = register(&setup, &chat, device, true).await?;
    setup.admin.agent_says(&chat.chat_id, "kept in redis").await?;
    setup.acknowledged(&chat.chat_id, std::time::Duration::from_secs(10)).await?;
    let url = format!("{}{SESSIONS_PATH}/{}/{CAPTURE}", other.url, chat.chat_id);
    let within = Duration::from_secs(5);
    let body = until_every("the body kept", within, Duration::from_millis(50), async || {
        // The first relay hands the body to Redis beside the push, never holding it up.
        let response = setup.http.get(&url).bearer_auth(&token.token).send().await?;
        Ok(match response.status() {
            reqwest::StatusCode::OK => Wait::Done(response.json::<CapturedPush>().await?.push),
            other => Wait::Still(other),
        })
    })
    .await?;
    assert!(body.contains(&chat.chat_id) && !body.contains(&chat.secure_key), "{body}");
    other.stop().await?;
    setup.system.stop().await
}

/// A push-subscribed chat on `device`.
async fn chat(setup: &Setup, device: &str) -> Result<Credentials> {
    Ok(setup.gms.create("Jane", push_user_data(device, true)).await?.0)
}

/// Registers the chat with the relay, asking for a capture or not.
async fn register(
    setup: &Setup,
    credentials: &Credentials,
    device: &str,
    capture: bool,
) -> Result<SessionRegistered> {
    let mut body = RegisterSession::new(SERVICE, credentials, Some(device));
    body.capture = capture;
    Ok(setup.post_registration(&body).await?.error_for_status()?.json().await?)
}

/// `GET /v1/sessions/{chatId}/capture` with `token`: the status and the body.
async fn capture(setup: &Setup, chat_id: &str, token: Option<&str>) -> Result<(u16, String)> {
    let url = format!("{}{SESSIONS_PATH}/{chat_id}/{CAPTURE}", setup.system.relay_url);
    let mut request = setup.http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

#[tokio::test]
async fn the_capture_route_wants_the_chats_token_and_a_registration_that_asked() -> Result<()> {
    // The envelope merged at the top: the secure key is a top-level field.
    let setup = Setup::start(Options::sim(&["--push-format", "envelope"])).await?;
    let within = std::time::Duration::from_secs(10);
    let (asked, plain) =
        (chat(&setup, "dev-capture-1").await?, chat(&setup, "dev-capture-2").await?);
    // An agent joins before the registrations: that push is no capture's first.
    for chat in [&asked, &plain] {
        setup.admin.ok(&format!("/sim/chats/{}/agent/join", chat.chat_id), json!({})).await?;
        setup.acknowledged(&chat.chat_id, within).await?;
    }
    let asked_token = register(&setup, &asked, "dev-capture-1", true).await?;
    let plain_token = register(&setup, &plain, "dev-capture-2", false).await?;
    assert_eq!(capture(&setup, &asked.chat_id, Some(&asked_token.token)).await?.0, 404);

    for chat in [&asked, &plain] {
        setup.admin.agent_says(&chat.chat_id, "a line to capture").await?;
        setup.acknowledged(&chat.chat_id, within).await?;
    }
    assert_eq!(capture(&setup, &asked.chat_id, Some(&plain_token.token)).await?.0, 401);
    assert_eq!(capture(&setup, &asked.chat_id, None).await?.0, 401);
    let (status, _) = capture(&setup, &plain.chat_id, Some(&plain_token.token)).await?;
    assert_eq!(status, 404, "no capture without asking, even after a push");

    let (status, body) = capture(&setup, &asked.chat_id, Some(&asked_token.token)).await?;
    assert_eq!(status, 200, "{body}");
    let push = serde_json::from_str::<CapturedPush>(&body)?.push;
    assert!(push.contains(&asked.chat_id) && push.contains("a line to capture"), "{push}");
    assert!(!push.contains(&asked.secure_key), "{push}");
    assert!(push.contains(&format!("\"secureKey\":\"{REDACTED}\"")), "{push}");

    // Only the first push is kept.
    setup.admin.agent_says(&asked.chat_id, "a later line").await?;
    setup.acknowledged(&asked.chat_id, within).await?;
    let (_, again) = capture(&setup, &asked.chat_id, Some(&asked_token.token)).await?;
    assert_eq!(serde_json::from_str::<CapturedPush>(&again)?.push, push);
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_that_names_only_a_device_is_captured_for_its_chat() -> Result<()> {
    // GMS's documented minimum, `{deviceId, message}`: the push reaches the chat through
    // its device.
    let setup = Setup::start(Options::sim(&["--push-format", "minimal"])).await?;
    let device = "dev-capture-minimal";
    let chat = chat(&setup, device).await?;
    let token = register(&setup, &chat, device, true).await?;
    setup.admin.agent_says(&chat.chat_id, "only a device").await?;
    setup.acknowledged(&chat.chat_id, std::time::Duration::from_secs(10)).await?;
    let (status, body) = capture(&setup, &chat.chat_id, Some(&token.token)).await?;
    assert_eq!(status, 200, "{body}");
    let push: Value = serde_json::from_str(&serde_json::from_str::<CapturedPush>(&body)?.push)?;
    assert_eq!(push["deviceId"], "dev-capture-minimal", "{push}");
    // The agent's joining came first (the sim's message says who joined).
    assert!(push["message"].as_str().is_some_and(|m| m.contains("joined the chat")), "{push}");
    setup.system.stop().await
}
