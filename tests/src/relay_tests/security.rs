//! The relay fails closed: no start without a push secret, pushes that cannot move a chat
//! where GMS would not, floods of registrations and frames that never reach GMS, checked
//! path segments and forwarded addresses, device-only pushes that reach no other chat.

use std::time::Duration;

use anyhow::{Context as _, Result};

use shared::relay_api::{PUSH_PATH, SESSIONS_PATH, ServerFrame};

use super::{Setup, Started, metric, start_binary, test_secret_query};
use crate::harness::Options;
use crate::support::{SERVICE, Wait, until};
use crate::ws_client::WsClient;

/// What a relay that should not have started wrote.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    match start_binary(args, env).await? {
        Started::Refused(log) => Ok(log),
        Started::Running { .. } => anyhow::bail!("the relay started with {args:?} {env:?}"),
    }
}

#[tokio::test]
async fn the_relay_refuses_to_start_without_a_push_secret_of_16_characters() -> Result<()> {
    let missing = refused(&[], &[]).await?;
    assert!(missing.contains("RELAY_PUSH_SECRET") && missing.contains("16"), "{missing}");
    // An env-file placeholder left empty is no secret.
    let empty = refused(&[], &[("RELAY_PUSH_SECRET", "")]).await?;
    assert!(empty.contains("no push secret"), "{empty}");
    let blank = refused(&["--push-secret", "   "], &[]).await?;
    assert!(blank.contains("no push secret"), "{blank}");
    let short = refused(&[], &[("RELAY_PUSH_SECRET", "fifteen-chars!!")]).await?;
    assert!(short.contains("15 characters") && !short.contains("fifteen"), "{short}");
    match start_binary(&[], &[("RELAY_PUSH_SECRET", "sixteen-chars!!!")]).await? {
        Started::Running { ready, .. } => assert_eq!(ready["ready"], true),
        Started::Refused(log) => anyhow::bail!("a 16-character secret was refused: {log}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_insecure_demo_mode_accepts_pushes_and_says_so() -> Result<()> {
    // The child is bound, not dropped with the pattern: dropping it kills the relay.
    let Started::Running { ready, log, _child: _running } =
        start_binary(&["--insecure-no-push-secret"], &[]).await?
    else {
        anyhow::bail!("the insecure mode did not start");
    };
    let url = format!("http://{}{PUSH_PATH}", ready["listen"].as_str().context("listen")?);
    let body = serde_json::json!({"deviceId": "d", "message": "m"}).to_string();
    let status = reqwest::Client::new().post(url).body(body).send().await?.status();
    assert_eq!(status.as_u16(), 200, "accepted without a secret");
    until("the warning is logged", Duration::from_secs(10), async || {
        let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Ok(Wait::done_if(
            log.contains("--insecure-no-push-secret: pushes are accepted from anyone"),
            log,
        ))
    })
    .await
}

#[tokio::test]
async fn a_push_cannot_move_a_chat_where_gms_would_not() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(false).await?;
    let chat_id = credentials.chat_id.clone();
    // A push naming another Chat Server and a far position, with one event of its own.
    let forged = serde_json::json!({
        "chatId": chat_id, "alias": "999", "nextPosition": 1_000_000,
        "messages": [{"index": 7, "type": "Message", "text": "see https://phish.example",
                      "utcTime": 1, "from": {"nickname": "Agent", "participantId": 2, "type": "Agent"}}],
    });
    assert_eq!(setup.push(&test_secret_query(), forged.to_string()).await?, 200);
    match ws.frame(Duration::from_secs(5)).await? {
        ServerFrame::Events { next_position, .. } => {
            assert_eq!(next_position, Some(8), "only the carried event is proof");
        }
        other => anyhow::bail!("expected the events, got {other:?}"),
    }
    // The acknowledging ping brings GMS's own word, which names the chat's real server:
    // no `tokens` frame moves the browsers to "999".
    setup.acknowledged(&chat_id, Duration::from_secs(5)).await?;
    ws.none_within(Duration::from_millis(500)).await?;
    let mut again = WsClient::connect(&setup.system.relay_url).await?;
    match again.subscribe(&chat_id, &registered.token).await? {
        ServerFrame::Subscribed { position, .. } => {
            assert!(position < 1_000, "the relay adopted the push's position: {position}");
        }
        other => anyhow::bail!("subscribe answered {other:?}"),
    }
    setup.system.stop().await
}

/// `POST /v1/sessions` as a browser behind a trusted proxy would send it.
async fn register_from(
    setup: &Setup,
    credentials: &shared::gms::Credentials,
    forwarded_for: &str,
    device: Option<&str>,
) -> Result<u16> {
    let body = shared::relay_api::RegisterSession::new(SERVICE, credentials, device);
    let response = setup
        .http
        .post(format!("{}{SESSIONS_PATH}", setup.system.relay_url))
        .header("x-forwarded-for", forwarded_for)
        .json(&body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn a_registration_costs_gms_one_request_at_most_even_while_gms_fails() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(false).await?;
    setup.admin.ok("/sim/faults", serde_json::json!({"http5xx": 20})).await?;
    let (status, body) = setup.register_raw(&credentials).await?;
    assert_eq!(status, 502, "{body}");
    // The widget retries; the relay does not.
    let refreshes = setup.admin.refreshes().await?;
    assert_eq!(refreshes.get(&credentials.chat_id).copied(), Some(1), "{refreshes:?}");
    setup.admin.ok("/sim/faults", serde_json::json!({"http5xx": 0})).await?;
    setup.register(&credentials).await?;
    setup.system.stop().await
}

#[tokio::test]
async fn registrations_are_limited_per_ipv6_slash_64_and_across_every_address() -> Result<()> {
    let trusted = ["--trusted-proxy", "127.0.0.0/8"];
    let per_client =
        Setup::start(Options::sim(&[]).relay(&[&trusted[..], &["--register-rate", "1"]].concat()))
            .await?;
    let credentials = per_client.chat(false).await?;
    // One host holds a whole /64: its addresses share one limit, whatever the hop's form.
    assert_eq!(register_from(&per_client, &credentials, "[2001:db8::1]:443", None).await?, 200);
    assert_eq!(register_from(&per_client, &credentials, "2001:db8::2", None).await?, 429);
    assert_eq!(register_from(&per_client, &credentials, "2001:db8:0:1::1", None).await?, 200);
    per_client.system.stop().await?;

    let global =
        Setup::start(Options::sim(&[]).relay(
            &[&trusted[..], &["--register-rate", "0", "--register-global-rate", "1"]].concat(),
        ))
        .await?;
    let credentials = global.chat(false).await?;
    let before = global.admin.refreshes().await?.get(&credentials.chat_id).copied();
    assert_eq!(register_from(&global, &credentials, "198.51.100.1", None).await?, 200);
    // Another address, at once: the cap across every address refuses it, before GMS.
    assert_eq!(register_from(&global, &credentials, "198.51.100.2", None).await?, 429);
    let after = global.admin.refreshes().await?.get(&credentials.chat_id).copied();
    assert_eq!(after.unwrap_or(0), before.unwrap_or(0) + 1, "only the first reached GMS");
    // (Tests share one metrics recorder: at least this one was counted.)
    let metrics = global.metrics().await?;
    assert!(metric(&metrics, "relay_rate_limited_total", &["endpoint=\"register_global\""]) >= 1.0);
    global.system.stop().await
}

#[tokio::test]
async fn service_and_chat_ids_outside_gms_alphabet_are_refused_before_gms() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(false).await?;
    let before = setup.admin.stats().await?["requests"].clone();
    for (service, chat_id) in
        [("..", credentials.chat_id.as_str()), (SERVICE, "."), (SERVICE, "a/../b")]
    {
        let mut body = shared::relay_api::RegisterSession::new(service, &credentials, None);
        body.chat_id = chat_id.to_owned();
        let response = setup.post_registration(&body).await?;
        assert_eq!(response.status().as_u16(), 400, "{service} {chat_id}");
        assert_eq!(response.headers()["cache-control"], "no-store", "an error is not kept");
    }
    assert_eq!(setup.admin.stats().await?["requests"], before, "GMS heard nothing");
    // In a path too (a client resolves a bare `..` before sending it).
    let url = format!("{}{SESSIONS_PATH}/a..b", setup.system.relay_url);
    let response = setup.http.delete(url).bearer_auth("x").send().await?;
    assert_eq!(response.status().as_u16(), 400);
    let push = serde_json::json!({"chatId": "..", "userId": "u", "secureKey": "k", "alias": "117"});
    assert_eq!(setup.push(&test_secret_query(), push.to_string()).await?, 400);
    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_refused_total", &["reason=\"bad_request\""]) >= 5.0);
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_naming_only_a_device_tells_every_chat_on_it_to_refresh_and_forwards_nothing()
-> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let device = "victims-device";
    // The victim's chat, then one registered by someone else with the victim's device id.
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let credentials = setup.chat(false).await?;
        let body = shared::relay_api::RegisterSession::new(SERVICE, &credentials, Some(device));
        let response = setup.post_registration(&body).await?;
        let registered: shared::relay_api::SessionRegistered = response.json().await?;
        let mut ws = WsClient::connect(&setup.system.relay_url).await?;
        ws.subscribe(&credentials.chat_id, &registered.token).await?;
        sockets.push((credentials.chat_id, ws));
    }
    let line = serde_json::json!({"deviceId": device, "message": "Agent: your code is 4711",
        "messages": [{"index": 3, "type": "Message", "text": "your code is 4711", "utcTime": 1,
                      "from": {"nickname": "Agent", "participantId": 2, "type": "Agent"}}]});
    let chats: Vec<String> = sockets.iter().map(|(id, _)| id.clone()).collect();
    let refreshes_before = setup.admin.refreshes().await?;
    assert_eq!(setup.push(&test_secret_query(), line.to_string()).await?, 200);
    for (chat_id, ws) in &mut sockets {
        assert_eq!(
            ws.frame(Duration::from_secs(5)).await?,
            ServerFrame::Changed { chat_id: chat_id.clone() },
            "each chat refreshes with its own tokens"
        );
        ws.none_within(Duration::from_millis(300)).await?;
    }
    // Each is pinged, which acknowledges the push whichever chat it was for.
    let (refreshes, chats, admin) = (&refreshes_before, &chats, &setup.admin);
    until("both chats pinged", Duration::from_secs(5), async || {
        let now = admin.refreshes().await?;
        Ok(Wait::done_if(
            chats.iter().all(|id| now.get(id) > refreshes.get(id)),
            format!("{now:?}"),
        ))
    })
    .await?;
    setup.system.stop().await
}
