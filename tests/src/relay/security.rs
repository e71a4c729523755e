//! The relay fails closed: no start without a push secret, pushes that cannot move a chat
//! where GMS would not, floods of registrations and frames that never reach GMS, checked
//! path segments and forwarded addresses, device-only pushes that reach no other chat.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::store::until;
use crate::harness::{relay_binary, scratch_dir};

/// How a start of the relay binary ended.
enum Started {
    /// It exited before its ready line, with this on stderr.
    Refused(String),
    /// It runs: its ready line, and its stderr so far (kept up to date).
    Running { ready: serde_json::Value, log: Arc<Mutex<String>>, _child: tokio::process::Child },
}

/// Runs the relay binary with `args` and `env` until it exits or prints its ready line.
async fn start_binary(args: &[&str], env: &[(&str, &str)]) -> Result<Started> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let dir = scratch_dir("relay-start")?;
    let mut child = tokio::process::Command::new(relay_binary()?)
        .args(["--listen", "127.0.0.1:0", "--gms-url", "http://127.0.0.1:9", "--data-dir"])
        .arg(&dir)
        .args(args)
        .env_remove("RELAY_PUSH_SECRET")
        .envs(env.iter().copied())
        .env("RUST_LOG", "relay=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the relay")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut stderr = child.stderr.take().context("stderr")?;
    let log = Arc::new(Mutex::new(String::new()));
    let kept = log.clone();
    let drained = tokio::spawn(async move {
        let mut buffer = [0_u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buffer).await {
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push_str(&text);
        }
    });
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .context("neither a ready line nor an exit within 20 s")??;
    let Some(line) = line else {
        let status = child.wait().await?;
        drained.await?;
        let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        anyhow::ensure!(!status.success(), "the relay exited with success: {log}");
        return Ok(Started::Refused(log));
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Started::Running { ready: serde_json::from_str(&line)?, log, _child: child })
}

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
    let url = format!("http://{}/gms/push", ready["listen"].as_str().context("listen")?);
    let body = serde_json::json!({"deviceId": "d", "message": "m"}).to_string();
    let status = reqwest::Client::new().post(url).body(body).send().await?.status();
    assert_eq!(status.as_u16(), 200, "accepted without a secret");
    until("the warning is logged", Duration::from_secs(10), || {
        let log = log.clone();
        async move {
            let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(log.contains("--insecure-no-push-secret: pushes are accepted from anyone"))
        }
    })
    .await
}
