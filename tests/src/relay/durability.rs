use std::time::Duration;

use clap::Parser as _;
use shared::relay_api::ServerFrame;

use super::{SERVICE, next_events};
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{
    RelayProcess, TEST_PUSH_SECRET, free_port, relay_args, relay_binary, scratch_dir,
};
use crate::ws_client::WsClient;

#[tokio::test]
async fn a_relay_killed_with_sigkill_keeps_its_chats_and_tokens() -> anyhow::Result<()> {
    let binary = relay_binary()?;
    let port = free_port()?;
    let relay_url = format!("http://127.0.0.1:{port}");
    let sim_args = [
        "gms-sim",
        "--listen",
        "127.0.0.1:0",
        "--push-resend-delay",
        "0.3",
        "--push-resend-attempts",
        "50",
        "--push-url",
        &format!("{relay_url}/gms/push?secret={TEST_PUSH_SECRET}"),
    ];
    let sim = gms_sim::start(gms_sim::Config::try_parse_from(sim_args)?).await?;
    let data_dir = scratch_dir("relay-kill9")?;
    let args = relay_args(&format!("127.0.0.1:{port}"), &sim.url(), &data_dir);

    let relay = RelayProcess::start(&binary, &args).await?;
    let setup_gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let mut subscription = shared::gms::PushSubscription::new("dev-kill9", "");
    subscription.resend = true;
    let (credentials, _) =
        setup_gms.create("Jane", shared::gms::async_push_user_data(&subscription)).await?;
    let registered: shared::relay_api::SessionRegistered = reqwest::Client::new()
        .post(format!("{relay_url}/v1/sessions"))
        .json(&shared::relay_api::RegisterSession::new(SERVICE, &credentials, Some("dev-kill9")))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    relay.kill9().await?;

    // While the relay is dead the agent writes; Chat Server keeps resending.
    admin.agent_says(&credentials.chat_id, "while you were away").await?;
    let relay = RelayProcess::start(&binary, &args).await?;
    let mut ws = WsClient::connect(&relay.url).await?;
    let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
    assert!(
        matches!(answer, ServerFrame::Subscribed { .. }),
        "the chat and the token key survived: {answer:?}"
    );
    // The resent pushes arrive, are forwarded and acknowledged with the stored tokens.
    let mut texts = Vec::new();
    while texts.len() < 2 {
        texts.extend(next_events(&mut ws).await?.into_iter().map(|e| e.text.unwrap_or_default()));
    }
    assert!(texts.contains(&"while you were away".to_owned()), "{texts:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while admin.get(&format!("/sim/chats/{}", credentials.chat_id)).await?["pendingPushes"] != 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "never acknowledged after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.kill9().await?;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    Ok(())
}
