//! GMS behind an API gateway that wants a key (gms-sim `--require-header`): with
//! `--gms-header` the relay's registrations, acknowledgements and `relay check` get
//! through; without it a registration is refused as GMS's failure (502).

use std::time::Duration;

use clap::Parser as _;
use relay::check::CheckConfig;

use super::{Setup, next_events};
use crate::harness::Options;

const KEY: &str = "apikey: k-30";

async fn behind_gateway(relay_args: &[&str]) -> anyhow::Result<Setup> {
    let options = Options::sim(&["--require-header", KEY, "--bot", "--bot-delay-ms", "300"]);
    let mut setup = Setup::start(options.relay(relay_args)).await?;
    setup.gms = setup.gms.clone().with_header("apikey", "k-30")?;
    Ok(setup)
}

#[tokio::test]
async fn with_the_key_registration_and_acknowledgements_pass_the_gateway() -> anyhow::Result<()> {
    let setup = behind_gateway(&["--gms-header", KEY]).await?;
    let (credentials, mut ws, _) = setup.subscribed_chat(false).await?;
    setup.admin.agent_says(&credentials.chat_id, "through the gateway").await?;
    let mut seen = false;
    for _ in 0..5 {
        let events = next_events(&mut ws).await?;
        if events.iter().any(|e| e.text.as_deref() == Some("through the gateway")) {
            seen = true;
            break;
        }
    }
    assert!(seen, "the agent's line arrives");
    setup.acknowledged(&credentials.chat_id, Duration::from_secs(5)).await?;
    setup.system.stop().await
}

#[tokio::test]
async fn without_the_key_a_registration_is_gmss_failure() -> anyhow::Result<()> {
    let setup = behind_gateway(&[]).await?;
    let credentials = setup.chat(false).await?;
    let (status, body) = setup.register_raw(&credentials).await?;
    assert_eq!(status, 502, "{body}");
    setup.system.stop().await
}

#[tokio::test]
async fn relay_check_sends_the_key_to_gms() -> anyhow::Result<()> {
    let setup = behind_gateway(&["--gms-header", KEY]).await?;
    let check = |extra: &[&str]| setup.check_config("20", extra);
    let mut out = Vec::new();
    let passed = relay::check::run(&check(&["--gms-header", KEY])?, &mut out).await?;
    let report = String::from_utf8(out)?;
    assert!(passed && report.contains("5 of 5 steps passed"), "{report}");

    let mut out = Vec::new();
    assert!(!relay::check::run(&check(&[])?, &mut out).await?);
    let report = String::from_utf8(out)?;
    assert!(report.contains("Invalid ApiKey"), "the gateway's fault is shown: {report}");
    setup.system.stop().await
}

#[test]
fn the_key_never_shows_in_the_configurations_debug_form() -> anyhow::Result<()> {
    let config = relay::Config::try_parse_from(["relay", "--gms-header", KEY])?;
    let printed = format!("{config:?}");
    assert!(printed.contains("apikey") && !printed.contains("k-30"), "{printed}");
    let check = CheckConfig::try_parse_from(["relay check", "--gms-header", KEY])?;
    assert!(!format!("{check:?}").contains("k-30"));
    Ok(())
}
