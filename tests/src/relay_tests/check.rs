//! `relay check` against the real relay and gms-sim: every step passes when push is set
//! up, and a missing push names what to fix.

use std::time::Duration;

use clap::Parser as _;
use relay::check::{CheckConfig, run};

use super::Setup;
use crate::harness::Options;

#[tokio::test]
async fn the_check_passes_every_step_on_a_working_deployment() -> anyhow::Result<()> {
    // The scripted agent greets the test chat a moment after it starts.
    let setup = Setup::start(Options::sim(&["--bot", "--bot-delay-ms", "700"])).await?;
    let mut out = Vec::new();
    let passed = run(&setup.check_config("20", &[])?, &mut out).await?;
    let report = String::from_utf8(out)?;
    assert!(passed, "{report}");
    for step in [
        "ok    GMS creates a chat with push",
        "ok    the relay registers the chat",
        "ok    a push arrives through the relay",
        "ok    the relay acknowledges the push",
        "ok    the test chat ends",
        "5 of 5 steps passed",
    ] {
        assert!(report.contains(step), "{step:?} missing from:\n{report}");
    }
    let chats = setup.admin.get("/sim/chats").await?;
    assert!(chats.as_array().is_some_and(|c| c.iter().all(|c| c["ended"] == true)), "{chats}");
    setup.system.stop().await
}

#[tokio::test]
async fn without_a_push_the_check_says_what_to_fix() -> anyhow::Result<()> {
    // No agent ever answers: nothing is pushed.
    let setup = Setup::start(Options::sim(&[])).await?;
    let started = tokio::time::Instant::now();
    let mut out = Vec::new();
    let passed = run(&setup.check_config("1", &[])?, &mut out).await?;
    let report = String::from_utf8(out)?;
    assert!(!passed);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        report.contains("FAIL  a push arrives through the relay: no push within 1 s"),
        "{report}"
    );
    assert!(report.contains("customhttp.url"), "the fixes name the option: {report}");
    let chats = setup.admin.get("/sim/chats").await?;
    assert!(chats.as_array().is_some_and(|c| c.iter().all(|c| c["ended"] == true)), "cleaned up");
    setup.system.stop().await
}

#[tokio::test]
async fn an_unreachable_gms_fails_the_first_step() -> anyhow::Result<()> {
    let mut config = CheckConfig::try_parse_from(["relay check", "--wait", "1"])?;
    config.gms_url = format!("http://127.0.0.1:{}", crate::harness::free_port()?);
    let mut out = Vec::new();
    assert!(!run(&config, &mut out).await?);
    let report = String::from_utf8(out)?;
    assert!(
        report.starts_with("FAIL  GMS creates a chat with push: no answer from GMS"),
        "{report}"
    );
    Ok(())
}

#[tokio::test]
async fn an_agent_line_without_a_push_points_at_chat_servers_push_settings() -> anyhow::Result<()> {
    // The bot answers at once, but every push is refused (as if Chat Server pushed
    // nowhere): GMS has the line, the relay never hears of it.
    let options =
        Options::sim(&["--bot", "--bot-delay-ms", "50"]).relay(&["--push-allow", "10.0.0.0/8"]);
    let setup = Setup::start(options).await?;
    let mut out = Vec::new();
    let passed = run(&setup.check_config("2", &[])?, &mut out).await?;
    let report = String::from_utf8(out)?;
    assert!(!passed);
    assert!(report.contains("though GMS has events in the chat from others"), "{report}");
    assert!(report.contains("flex-push-on-join") && report.contains("8.5.315.05"), "{report}");
    setup.system.stop().await
}
