//! The relay's store under failure and across restarts: nothing answered 200 that is not
//! durable, pushes naming only a device, tokens a push proposes, Chat Server pids kept.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use shared::relay_api::{ClientFrame, RegisterSession, ServerFrame, close_code};

use super::{Setup, next_events, test_secret_query};
use crate::harness::Options;
use crate::support::{NO_CLIENT_LIMITS, RelayArgs, SERVICE, Wait, push_user_data, register, until};
use crate::ws_client::{Received, WsClient};

#[tokio::test]
async fn a_push_is_answered_200_only_once_it_is_durable() -> Result<()> {
    let switches = crate::harness::StoreSwitches::default();
    let fails = switches.fails.clone();
    let mut options =
        Options::sim(&["--push-resend-delay", "0.2", "--push-resend-attempts", "100"]);
    options.store = Some(switches);
    let mut setup = Setup::start(options).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(true).await?;
    let chat = credentials.chat_id.clone();
    setup.admin.ok(&format!("/sim/chats/{chat}/agent/join"), json!({})).await?;
    next_events(&mut ws).await?;
    setup.acknowledged(&chat, Duration::from_secs(5)).await?;

    fails.store(true, Ordering::SeqCst);
    let refused_before = setup.admin.stats().await?["pushes"]["failed"].as_u64().unwrap_or(0);
    setup.admin.agent_says(&chat, "while the disk is full").await?;
    until("the relay refuses a push it cannot store", Duration::from_secs(5), async || {
        let refused = setup.admin.stats().await?["pushes"]["failed"].as_u64().unwrap_or(0);
        Ok(Wait::done_if(refused >= refused_before + 2, format!("{refused} pushes refused")))
    })
    .await?;
    fails.store(false, Ordering::SeqCst);

    // A resend is stored, forwarded and acknowledged...
    let said = next_events(&mut ws).await?;
    assert_eq!(said[0].text.as_deref(), Some("while the disk is full"));
    let index = said[0].index.context("index")?;
    setup.acknowledged(&chat, Duration::from_secs(5)).await?;
    // ...and was really stored: a restarted relay knows the position past it.
    setup.system.restart_relay().await?;
    let mut again = WsClient::connect(&setup.system.relay_url).await?;
    match again.subscribe(&chat, &registered.token).await? {
        ServerFrame::Subscribed { position, .. } => {
            assert!(position > index, "stored position {position} misses event {index}");
        }
        other => bail!("subscribe answered {other:?}"),
    }
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_naming_only_a_device_tells_each_of_its_chats_to_refresh() -> Result<()> {
    let mut setup = Setup::start(Options::sim(&[])).await?;
    let device = "dev-kept-across-chats";
    let mut sockets = Vec::new();
    for _ in 0..6 {
        let (credentials, _) = setup.gms.create("Jane", push_user_data(device, true)).await?;
        let body = RegisterSession::new(SERVICE, &credentials, Some(device));
        let registered = register(&setup.http, &setup.system.relay_url, &body).await?;
        let mut ws = WsClient::connect(&setup.system.relay_url).await?;
        ws.subscribe(&credentials.chat_id, &registered.token).await?;
        sockets.push((credentials.chat_id, ws));
    }
    let bare = json!({"deviceId": device, "message": "New message"}).to_string();
    assert_eq!(setup.push(&test_secret_query(), bare).await?, 200);
    // Shutting down closes every socket: what each got before the close is all it got.
    setup.system.stop_relay().await?;
    // Nothing says which chat it was for: each refreshes with its own tokens.
    for (i, (chat_id, ws)) in sockets.iter_mut().enumerate() {
        let (frames, _) = ws.frames_until_closed().await?;
        let expected = vec![ServerFrame::Changed { chat_id: chat_id.clone() }];
        assert_eq!(frames, expected, "chat {i} of {}", sockets.len());
    }
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_with_a_wrong_secure_key_does_not_end_a_running_chat() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(false).await?;
    let chat = credentials.chat_id.clone();
    let refreshes = || async {
        let stats = setup.admin.stats().await?;
        Ok::<u64, anyhow::Error>(stats["chats"][&chat]["refresh"].as_u64().unwrap_or(0))
    };
    let before = refreshes().await?;
    let forged = json!({
        "deviceId": "d", "message": "New message", "chatId": chat,
        "userId": credentials.user_id, "secureKey": "0000000000000000", "alias": credentials.alias,
    });
    assert_eq!(setup.push(&test_secret_query(), forged.to_string()).await?, 200);
    assert_eq!(
        ws.frame(Duration::from_secs(5)).await?,
        ServerFrame::Changed { chat_id: chat.clone() }
    );
    // Its acknowledgement has been answered by GMS...
    until("the acknowledgement", Duration::from_secs(5), async || {
        let now = refreshes().await?;
        Ok(Wait::done_if(now > before, format!("{now} refreshes")))
    })
    .await?;
    // ...and the chat goes on: the agent's next message arrives, no `ended` before it.
    setup.admin.agent_says(&chat, "still running").await?;
    next_events(&mut ws).await?;
    assert_eq!(next_events(&mut ws).await?[0].text.as_deref(), Some("still running"));
    let mut again = WsClient::connect(&setup.system.relay_url).await?;
    let answer = again.subscribe(&chat, &registered.token).await?;
    assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
    setup.system.stop().await
}

#[tokio::test]
async fn a_chat_server_restarted_while_the_relay_was_down_is_noticed_at_start() -> Result<()> {
    let mut options =
        Options::sim(&[]).relay(&["--health-interval", "0.1"]).relay(&NO_CLIENT_LIMITS);
    options.watch_chat_servers = true;
    let mut setup = Setup::start(options).await?;
    let mut on_117 = Vec::new();
    while on_117.len() < 10 {
        let credentials = setup.chat(false).await?;
        setup.register(&credentials).await?;
        if credentials.alias == "117" {
            on_117.push(credentials);
        }
    }
    setup.system.stop_relay().await?;
    let stored = relay::store::RedbBackend::open(&setup.system.data_dir)
        .and_then(|store| relay::store::Backend::load_all(&store))?;
    assert!(stored.servers.contains_key("117"), "the relay kept the pids it saw: {stored:?}");

    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;
    setup.system.start_relay().await?;
    // The periodic ping is 30 minutes away: only the kept pid can explain a restoration.
    until("every chat of 117 restored", Duration::from_secs(20), async || {
        let chats = setup.admin.get("/sim/chats").await?;
        let all = chats.as_array().cloned().unwrap_or_default();
        let moved = on_117
            .iter()
            .all(|c| all.iter().any(|s| s["chatId"] == c.chat_id.as_str() && s["alias"] == "118"));
        Ok(Wait::done_if(moved, chats))
    })
    .await?;
    setup.system.stop().await
}

#[tokio::test]
async fn a_relay_that_fails_to_start_leaves_nothing_running() -> Result<()> {
    let data_dir = crate::harness::scratch_dir("relay-early-error")?;
    // The token key cannot be read: start fails after the store writer has started.
    std::fs::create_dir_all(data_dir.join("token.key"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let config = RelayArgs::new("127.0.0.1:0", "http://127.0.0.1:9", &data_dir).config()?;
    let started = relay::run(listener, config, std::future::pending()).await;
    assert!(started.is_err(), "a token key that is a directory is an error");
    // The writer let go of the store file (redb allows one opener at a time).
    until("the store released", Duration::from_secs(5), async || {
        Ok(match relay::store::RedbBackend::open(&data_dir) {
            Ok(_) => Wait::Done(()),
            Err(error) => Wait::Still(error.to_string()),
        })
    })
    .await?;
    let _ = std::fs::remove_dir_all(data_dir);
    Ok(())
}

/// A subscribe the store cannot answer (a Redis Cluster failing over) for a chat this
/// relay's memory does not hold (another relay's, announced while this one was cut off) is
/// not told `ended`: the relay does not know, so it closes the socket for the widget to
/// come back, and answers the truth once the store does. Found by the 30-minute chaos run
/// on a Redis Cluster, where two visitors got `ended` for running chats.
#[tokio::test]
async fn a_subscribe_the_store_cannot_answer_is_not_told_ended() -> Result<()> {
    let switches = crate::harness::StoreSwitches { shared: true, ..Default::default() };
    let reads_fail = switches.reads_fail.clone();
    let options = Options { store: Some(switches), ..Options::sim(&[]) };
    let setup = Setup::start(options).await?;
    let credentials = setup.chat(false).await?;
    let registered = setup.register(&credentials).await?;
    // Forgotten: memory no longer holds it, and only the store can say what it is.
    assert_eq!(setup.forget(&credentials.chat_id, &registered.token).await?, 204);

    reads_fail.store(true, Ordering::SeqCst);
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    ws.send(&ClientFrame::Subscribe {
        chat_id: credentials.chat_id.clone(),
        token: registered.token.clone(),
    })
    .await?;
    let answer = ws.next(Duration::from_secs(5)).await?;
    assert_eq!(answer, Received::Closed(Some(close_code::STORE_UNAVAILABLE)));
    assert!(close_code::should_reconnect(close_code::STORE_UNAVAILABLE));

    reads_fail.store(false, Ordering::SeqCst);
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
    assert_eq!(answer, ServerFrame::Ended { chat_id: credentials.chat_id.clone() });
    setup.system.stop().await
}

/// A shared store whose read of a chat finds nothing (it lost the record) does not end the
/// chat for the browsers of a relay that holds it: a chat ends when the relay that forgets
/// it says so on the changes channel, not on one read's word.
#[tokio::test]
async fn a_store_read_that_finds_nothing_does_not_end_a_running_chat() -> Result<()> {
    let switches = crate::harness::StoreSwitches { shared: true, ..Default::default() };
    let reads_nothing = switches.reads_nothing.clone();
    let options = Options { store: Some(switches), ..Options::sim(&[]) };
    let setup = Setup::start(options).await?;
    let (credentials, ws, registered) = setup.subscribed_chat(false).await?;
    ws.close().await?;

    reads_nothing.store(true, Ordering::SeqCst);
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
    assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
    reads_nothing.store(false, Ordering::SeqCst);
    setup.admin.agent_says(&credentials.chat_id, "still here").await?;
    let mut seen = Vec::new();
    while !seen.iter().any(|t: &String| t == "still here") && seen.len() < 5 {
        seen.extend(next_events(&mut ws).await?.into_iter().map(|e| e.text.unwrap_or_default()));
    }
    assert!(seen.iter().any(|t| t == "still here"), "{seen:?}");
    setup.system.stop().await
}
