use std::time::Duration;

use clap::Parser as _;
use shared::relay_api::{RegisterSession, ServerFrame};

use super::next_events;
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{RelayProcess, free_port, relay_binary, scratch_dir};
use crate::support::{RelayArgs, SERVICE, Wait, push_url, push_user_data, register, until_every};
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
        &push_url(&relay_url),
    ];
    let sim = gms_sim::start(gms_sim::Config::try_parse_from(sim_args)?).await?;
    let data_dir = scratch_dir("relay-kill9")?;
    let args = RelayArgs::new(&format!("127.0.0.1:{port}"), &sim.url(), &data_dir).build();

    let relay = RelayProcess::start(&binary, &args).await?;
    let setup_gms = GmsClient::new(&sim.url(), SERVICE);
    let admin = SimAdmin::new(&sim.url());
    let (credentials, _) = setup_gms.create("Jane", push_user_data("dev-kill9", true)).await?;
    let body = RegisterSession::new(SERVICE, &credentials, Some("dev-kill9"));
    let registered = register(&reqwest::Client::new(), &relay_url, &body).await?;
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
    let what = "acknowledged after the restart";
    until_every(what, Duration::from_secs(10), Duration::from_millis(50), async || {
        let chat = admin.get(&format!("/sim/chats/{}", credentials.chat_id)).await?;
        Ok(Wait::done_if(chat["pendingPushes"] == 0, chat))
    })
    .await?;
    relay.kill9().await?;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    Ok(())
}
