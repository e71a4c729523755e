//! The WebSocket edge: subscription tokens, allowed origins, slow consumers, silent peers,
//! and sockets that flood the relay with frames or subscriptions (issue 29).

use std::time::{Duration, Instant};

use serde_json::json;
use shared::relay_api::{ClientFrame, PUSH_PATH, ServerFrame, close_code};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Setup, next_events, test_secret_query};
use crate::harness::{Options, RedisServer};
use crate::support::{Wait, until_every};
use crate::ws_client::{Received, WsClient};

#[tokio::test]
async fn a_wrong_token_subscribes_to_nothing_and_junk_frames_are_ignored() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(true).await?;
    let registered = setup.register(&credentials).await?;
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    ws.send_raw("not json").await?;
    ws.send_raw(r#"{"type":"hello","x":1}"#).await?;
    let refused = ws.subscribe(&credentials.chat_id, "forged").await?;
    assert!(
        matches!(refused, ServerFrame::Error { ref code, .. } if code == "bad_token"),
        "{refused:?}"
    );
    setup.admin.agent_says(&credentials.chat_id, "secret").await?;
    // Acknowledged means forwarded: had the forged subscription counted, those frames
    // would now come before the answer to the real one.
    setup.acknowledged(&credentials.chat_id, Duration::from_secs(5)).await?;
    let accepted = ws.subscribe(&credentials.chat_id, &registered.token).await?;
    assert_eq!(
        accepted,
        ServerFrame::Subscribed { chat_id: credentials.chat_id.clone(), position: 4 }
    );
    ws.close().await?;
    setup.system.stop().await
}

#[tokio::test]
async fn only_allowed_origins_may_connect() -> anyhow::Result<()> {
    let mut setup =
        Setup::start(Options::sim(&[]).relay(&["--allowed-origin", "https://shop.example"]))
            .await?;
    let url = shared::relay_api::ws_url(&setup.system.relay_url);
    let with_origin = |origin: &'static str| -> anyhow::Result<_> {
        let mut request = url.clone().into_client_request()?;
        request.headers_mut().insert("origin", origin.parse()?);
        Ok(request)
    };
    // A browser sees close codes, not the status of a refused upgrade: the refused origin
    // gets the code after which the widget does not reconnect.
    let (refused, _) =
        tokio_tungstenite::connect_async(with_origin("https://evil.example")?).await?;
    let mut refused = WsClient::from_socket(refused);
    assert_eq!(
        refused.next(Duration::from_secs(5)).await?,
        Received::Closed(Some(close_code::ORIGIN_REJECTED))
    );
    let (allowed, _) =
        tokio_tungstenite::connect_async(with_origin("https://shop.example")?).await?;
    let mut allowed = WsClient::from_socket(allowed);
    // Open until the relay itself closes it.
    setup.system.stop_relay().await?;
    let (frames, code) = allowed.frames_until_closed().await?;
    assert_eq!((frames, code), (vec![], Some(close_code::GOING_AWAY)));
    setup.system.stop().await
}

#[tokio::test]
async fn a_slow_consumer_is_closed_and_the_others_get_everything() -> anyhow::Result<()> {
    const PUSHES: u64 = 600;
    let setup = Setup::start(Options::sim(&[]).relay(&["--ws-queue", "32"])).await?;
    let (credentials, mut fast, registered) = setup.subscribed_chat(false).await?;
    let mut slow = WsClient::connect(&setup.system.relay_url).await?;
    slow.subscribe(&credentials.chat_id, &registered.token).await?;

    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < PUSHES {
            next_events(&mut fast).await?;
            seen += 1;
        }
        anyhow::Ok(seen)
    });
    let text = "x".repeat(16 * 1024);
    let query = test_secret_query();
    for index in 0..PUSHES {
        let push = json!({"deviceId": "d", "chatId": credentials.chat_id, "messages": [
            {"from": {"nickname": "Ann", "participantId": 2, "type": "Agent"},
             "index": index + 10, "type": "Message", "text": text, "utcTime": 1}]});
        assert_eq!(setup.push(&query, push.to_string()).await?, 200);
    }
    assert_eq!(reader.await??, PUSHES, "the fast reader got every frame");
    let mut closed = None;
    while closed.is_none() {
        if let Received::Closed(code) = slow.next(Duration::from_secs(10)).await? {
            closed = Some(code);
        }
    }
    assert_eq!(closed, Some(Some(close_code::SLOW_CONSUMER)));
    let metrics = setup.metrics().await?;
    assert!(super::metric(&metrics, "relay_ws_slow_consumers_total", &[]) >= 1.0);
    setup.system.stop().await
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() -> anyhow::Result<()> {
    let setup =
        Setup::start(Options::sim(&[]).relay(&["--ws-ping", "0.2", "--ws-pong-timeout", "0.2"]))
            .await?;
    let (_, mut silent, _) = setup.subscribed_chat(false).await?;
    // Not reading means not answering pings: the relay gives up on the peer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The relay sends close 4002 and drops the connection; reading may see the close
    // frame, or the reset if the client's queued pongs hit the closed socket first.
    loop {
        match silent.next(Duration::from_secs(5)).await {
            Ok(Received::Closed(code)) => {
                assert_eq!(code, Some(close_code::PING_TIMEOUT));
                break;
            }
            Ok(Received::Frame(_)) => {}
            Err(error) => {
                assert!(error.to_string().contains("socket error"), "{error}");
                break;
            }
        }
    }
    setup.system.stop().await
}

/// Issue 29: a widget sends a handful of frames a minute; a socket sending a hundred at
/// once is closed with a code after which the widget reconnects only after its backoff,
/// and the sockets of other chats do not notice.
#[tokio::test]
async fn a_socket_that_floods_the_relay_with_frames_is_closed() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let (credentials, mut calm, _) = setup.subscribed_chat(false).await?;
    let mut flood = WsClient::connect(&setup.system.relay_url).await?;
    for _ in 0..100 {
        // Once the relay has closed the socket, the rest may no longer be written.
        if flood.send_raw(r#"{"type":"hello"}"#).await.is_err() {
            break;
        }
    }
    let code = loop {
        match flood.next(Duration::from_secs(5)).await? {
            Received::Closed(code) => break code,
            Received::Frame(_) => {}
        }
    };
    assert_eq!(code, Some(close_code::TOO_MANY_FRAMES));
    assert!(close_code::should_reconnect(close_code::TOO_MANY_FRAMES));
    let metrics = setup.metrics().await?;
    let flooded = r#"reason="too_many_frames""#;
    assert_eq!(super::metric(&metrics, "relay_ws_rejected_total", &[flooded]), 1.0);

    setup.admin.agent_says(&credentials.chat_id, "still here").await?;
    // Whatever else the agent's side sends (typing), the line arrives.
    let mut texts = Vec::new();
    while texts.is_empty() {
        texts.extend(next_events(&mut calm).await?.into_iter().filter_map(|e| e.text));
    }
    assert_eq!(texts, ["still here"]);
    setup.system.stop().await
}

/// Issue 29: a browser follows one chat; a socket may follow 16, and the 17th subscription
/// is refused with an error frame and not made (its frames never reach the socket). The
/// socket stays open, following a chat again is no new subscription, and leaving one makes
/// room. (20 frames in all: within what a socket may send at once.)
#[tokio::test]
async fn a_socket_follows_at_most_16_chats() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let mut chats = Vec::new();
    for _ in 0..17 {
        let credentials = setup.chat(false).await?;
        let registered = setup.register(&credentials).await?;
        chats.push((credentials.chat_id, registered.token));
    }
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    for (chat_id, token) in &chats[..16] {
        let answer = ws.subscribe(chat_id, token).await?;
        assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
    }
    let (extra, extra_token) = &chats[16];
    let refused = ws.subscribe(extra, extra_token).await?;
    assert!(
        matches!(refused, ServerFrame::Error { ref code, .. } if code == "too_many_subscriptions"),
        "{refused:?}"
    );
    setup.admin.agent_says(extra, "not for this socket").await?;
    // Acknowledged means forwarded: had the refused subscription been made, the frame
    // would now come before the answer to the next subscribe.
    setup.acknowledged(extra, Duration::from_secs(5)).await?;
    let (first, first_token) = &chats[0];
    let again = ws.subscribe(first, first_token).await?;
    assert!(matches!(again, ServerFrame::Subscribed { .. }), "{again:?}");

    ws.send(&ClientFrame::Unsubscribe { chat_id: first.clone() }).await?;
    let made = ws.subscribe(extra, extra_token).await?;
    assert!(matches!(made, ServerFrame::Subscribed { .. }), "{made:?}");
    let metrics = setup.metrics().await?;
    let refusals = r#"reason="too_many_subscriptions""#;
    assert_eq!(super::metric(&metrics, "relay_ws_rejected_total", &[refusals]), 1.0);
    ws.close().await?;
    setup.system.stop().await
}

/// Issue 29: with Redis, a subscribe reads the chat's record from Redis; that read must not
/// queue behind the writer's commits, or sockets subscribing in a loop would hold up every
/// push. Redis holds writes (`CLIENT PAUSE … WRITE`, reads go on) while a push's commit is
/// under way: the subscribe is answered while that commit still waits.
#[tokio::test]
async fn with_redis_a_subscribe_does_not_wait_for_the_writers_commit() -> anyhow::Result<()> {
    // Below the relay's 2 s Redis timeout, so the held commit succeeds in the end.
    const HELD: Duration = Duration::from_millis(1800);
    let redis = RedisServer::start().await?;
    let setup = Setup::start(Options::sim(&[]).relay(&[
        "--redis-url",
        &redis.url(),
        "--ping-interval",
        "3600",
    ]))
    .await?;
    let (pushed, _pushed_ws, _) = setup.subscribed_chat(false).await?;
    let followed = setup.chat(false).await?;
    let registered = setup.register(&followed).await?;
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;

    let client = redis::Client::open(redis.url())?;
    let mut control = client.get_multiplexed_async_connection().await?;
    let held_at = Instant::now();
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(HELD.as_millis().to_string())
        .arg("WRITE")
        .query_async(&mut control)
        .await?;
    let push = json!({"deviceId": "d", "chatId": pushed.chat_id, "messages": [
        {"from": {"nickname": "Ann", "participantId": 2, "type": "Agent"},
         "index": 10, "type": "Message", "text": "held", "utcTime": 1}]});
    let url = format!("{}{PUSH_PATH}{}", setup.system.relay_url, test_secret_query());
    let posting = setup.http.post(url).header("content-type", "application/json");
    let pushing = tokio::spawn(posting.body(push.to_string()).send());
    // The commit is in Redis, held: a client blocked on EVAL.
    let within = (held_at + HELD / 2).saturating_duration_since(Instant::now());
    let what = "the push's commit held in Redis";
    until_every(what, within, Duration::from_millis(10), async || {
        let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut control).await?;
        let held = clients.lines().any(|l| l.contains(" flags=b ") && l.contains(" cmd=eval "));
        Ok(Wait::done_if(held, clients))
    })
    .await?;
    let answer = ws.subscribe(&followed.chat_id, &registered.token).await?;
    let answered_after = held_at.elapsed();
    assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
    assert!(!pushing.is_finished(), "the subscribe was answered after the commit");
    assert!(answered_after < HELD * 3 / 4, "answered after {answered_after:?}");
    assert_eq!(pushing.await??.status().as_u16(), 200);
    setup.system.stop().await
}
