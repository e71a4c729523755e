//! The expected wait over real sockets: GMS's EWT API (gms-sim's, v2 and v1) asked once
//! per service per period however many chats wait, a `wait` frame to each chat's
//! browsers, updates as GMS's estimate moves, and none when GMS has nothing usable.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;
use shared::relay_api::ServerFrame;

use super::Setup;
use crate::harness::Options;
use crate::support::SERVICE;
use crate::ws_client::WsClient;

/// The next `wait` frame on `ws`, skipping others.
async fn next_wait(ws: &mut WsClient) -> Result<(String, Option<u64>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let ServerFrame::Wait { chat_id, seconds } = ws.frame(Duration::from_secs(10)).await? {
            return Ok((chat_id, seconds));
        }
    }
    bail!("no wait frame")
}

async fn set_ewt(setup: &Setup, seconds: serde_json::Value) -> Result<()> {
    let (status, text) = setup.admin.post("/sim/ewt", json!({ "seconds": seconds })).await?;
    anyhow::ensure!(status == 204, "HTTP {status}: {text}");
    Ok(())
}

async fn ewt_requests(setup: &Setup) -> Result<u64> {
    Ok(setup.admin.stats().await?["requests"]["ewt"].as_u64().unwrap_or(0))
}

async fn waits_are_sent_once_per_service(api: &str) -> Result<()> {
    let queue = format!("{SERVICE}=chat_vq");
    let relay = ["--ewt-queue", &queue, "--ewt-every", "0.2", "--ewt-api", api];
    let setup = Setup::start(Options::sim(&[]).relay(&relay)).await?;
    set_ewt(&setup, json!(240)).await?;
    let (first, mut ws_first, _) = setup.subscribed_chat(false).await?;
    let (second, mut ws_second, _) = setup.subscribed_chat(false).await?;
    assert_eq!(next_wait(&mut ws_first).await?, (first.chat_id.clone(), Some(240)));
    assert_eq!(next_wait(&mut ws_second).await?, (second.chat_id.clone(), Some(240)));

    // GMS's estimate moves: the browsers hear it; GMS is asked once a period, not per chat.
    let (before, started) = (ewt_requests(&setup).await?, Instant::now());
    set_ewt(&setup, json!(61)).await?;
    while next_wait(&mut ws_first).await?.1 != Some(61) {}
    while next_wait(&mut ws_second).await?.1 != Some(61) {}
    for _ in 0..5 {
        next_wait(&mut ws_first).await?;
    }
    let asked = ewt_requests(&setup).await? - before;
    let periods = (started.elapsed().as_secs_f64() / 0.2).ceil() as u64 + 1;
    assert!(asked <= periods, "{asked} EWT requests in {periods} periods for two chats");

    // Nothing usable: the browsers are told there is no estimate.
    set_ewt(&setup, json!(null)).await?;
    while next_wait(&mut ws_first).await?.1.is_some() {}
    assert_eq!(next_wait(&mut ws_second).await?.0, second.chat_id);
    setup.system.stop().await
}

#[tokio::test]
async fn the_expected_wait_reaches_each_waiting_chat_from_the_v2_api() -> Result<()> {
    waits_are_sent_once_per_service("v2").await
}

#[tokio::test]
async fn the_expected_wait_reaches_each_waiting_chat_from_the_v1_api() -> Result<()> {
    waits_are_sent_once_per_service("v1").await
}

#[tokio::test]
async fn without_a_queue_for_the_service_gms_is_never_asked() -> Result<()> {
    let relay = ["--ewt-queue", "another-service=vq", "--ewt-every", "0.2"];
    let setup = Setup::start(Options::sim(&[]).relay(&relay)).await?;
    set_ewt(&setup, json!(240)).await?;
    let (_, mut ws, _) = setup.subscribed_chat(false).await?;
    ws.none_within(Duration::from_secs(1)).await?;
    assert_eq!(ewt_requests(&setup).await?, 0);
    setup.system.stop().await
}
