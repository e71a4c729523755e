//! A GMS (or something on its address) that answers what real GMS never should: the relay
//! follows no redirect with a chat's tokens, and what an answer or a browser carries cannot
//! forge a line of the relay's log.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use shared::relay_api::{PUSH_PATH, SESSIONS_PATH, ServerFrame};

use super::{Started, start_binary};
use crate::support::{SERVICE, Wait, until};
use crate::ws_client::WsClient;

/// A socket server that answers every HTTP request with `response` and counts them.
struct FakeServer {
    url: String,
    requests: Arc<AtomicUsize>,
    /// Each request's head (request line and headers), in order.
    heads: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeServer {
    async fn start(response: String) -> Result<FakeServer> {
        FakeServer::scripted(vec![response]).await
    }

    /// Answers the n-th request with `responses[n]`, and every later one with the last.
    async fn scripted(responses: Vec<String>) -> Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let responses: Arc<[String]> = responses.into();
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (counter, responses, kept) = (counter.clone(), responses.clone(), kept.clone());
                tokio::spawn(async move {
                    if let Ok(head) = read_request(&mut socket).await {
                        kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(head);
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let response = responses.get(n).or(responses.last());
                        let _ = socket.write_all(response.map_or(&b""[..], |r| r.as_bytes())).await;
                    }
                });
            }
        });
        Ok(FakeServer { url, requests, heads })
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request's head and its `Content-Length` body; answers the head.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Result<String> {
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let n = socket.read(&mut buffer).await?;
        anyhow::ensure!(n > 0, "closed mid-request");
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return Ok(text[..end].to_owned());
            }
        }
    }
}

fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `POST /v1/sessions` for the chat `c0ffee` with this alias.
async fn registration(relay: &str, alias: &str) -> Result<reqwest::Response> {
    let body = serde_json::json!({"service": SERVICE, "chatId": "c0ffee",
        "userId": "u1", "secureKey": "k1", "alias": alias});
    Ok(reqwest::Client::new().post(format!("{relay}{SESSIONS_PATH}")).json(&body).send().await?)
}

/// The status of that registration.
async fn register(relay: &str, alias: &str) -> Result<u16> {
    Ok(registration(relay, alias).await?.status().as_u16())
}

fn listen(ready: &serde_json::Value) -> Result<String> {
    Ok(format!("http://{}", ready["listen"].as_str().context("listen")?))
}

#[tokio::test]
async fn a_redirect_from_gms_is_not_followed_with_the_chats_tokens() -> Result<()> {
    let elsewhere = FakeServer::start(answer("200 OK", "", "{\"statusCode\":0}")).await?;
    let location = format!("location: {}/steal\r\n", elsewhere.url);
    let gms = FakeServer::start(answer("307 Temporary Redirect", &location, "")).await?;
    let Started::Running { ready, _child: _running, .. } =
        start_binary(&["--gms-url", &gms.url], &[("RELAY_PUSH_SECRET", "sixteen-chars!!!")])
            .await?
    else {
        anyhow::bail!("the relay did not start");
    };
    assert_eq!(register(&listen(&ready)?, "117").await?, 502, "a redirect is no answer");
    assert_eq!(gms.requests(), 1, "asked once, not retried");
    assert_eq!(elsewhere.requests(), 0, "the tokens went nowhere else");
    Ok(())
}

#[tokio::test]
async fn a_newline_from_outside_cannot_forge_a_log_line() -> Result<()> {
    // GMS accepts the tokens and names no alias: the browser's alias is kept, and logged.
    let gms = FakeServer::start(answer(
        "200 OK",
        "",
        "{\"statusCode\":0,\"chatId\":\"c0ffee\",\"nextPosition\":1}",
    ))
    .await?;
    let Started::Running { ready, log, _child: _running } =
        start_binary(&["--gms-url", &gms.url], &[("RELAY_PUSH_SECRET", "sixteen-chars!!!")])
            .await?
    else {
        anyhow::bail!("the relay did not start");
    };
    let forged = "117\nERROR relay: forged line";
    assert_eq!(register(&listen(&ready)?, forged).await?, 200);
    let text = || log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    until("the registration is logged", Duration::from_secs(10), async || {
        let text = text();
        Ok(Wait::done_if(text.contains("chat registered"), text))
    })
    .await?;
    let text = text();
    assert!(!text.lines().any(|l| l.starts_with("ERROR relay: forged")), "{text}");
    assert!(text.contains(r"117\nERROR relay: forged line"), "logged escaped: {text}");
    Ok(())
}

const ACCEPTED: &str =
    "{\"statusCode\":0,\"chatId\":\"c0ffee\",\"alias\":\"117\",\"nextPosition\":1}";
const REFUSED: &str =
    "{\"statusCode\":2,\"errors\":[{\"code\":102,\"advice\":\"chat not found\"}]}";

/// A relay (refusals 1 s apart make a chat over) before a GMS answering `responses`, with
/// the chat registered and followed; answers what happened after a push made it ping.
async fn refused_then(responses: &[&str]) -> Result<(FakeServer, Vec<(Duration, ServerFrame)>)> {
    let script = responses.iter().map(|body| answer("200 OK", "", body)).collect();
    let gms = FakeServer::scripted(script).await?;
    let Started::Running { ready, _child: _running, .. } = start_binary(
        &["--gms-url", &gms.url, "--gms-refusal-apart", "1"],
        &[("RELAY_PUSH_SECRET", "sixteen-chars!!!")],
    )
    .await?
    else {
        anyhow::bail!("the relay did not start");
    };
    let relay = listen(&ready)?;
    let registered: shared::relay_api::SessionRegistered =
        registration(&relay, "117").await?.error_for_status()?.json().await?;
    let mut ws = WsClient::connect(&relay).await?;
    ws.subscribe("c0ffee", &registered.token).await?;
    let push = serde_json::json!({"chatId": "c0ffee", "deviceId": "d", "message": "m"});
    let status = reqwest::Client::new()
        .post(format!("{relay}{PUSH_PATH}?secret=sixteen-chars!!!"))
        .body(push.to_string())
        .send()
        .await?
        .status();
    anyhow::ensure!(status == 200, "push answered {status}");
    let pushed = tokio::time::Instant::now();
    let mut frames = Vec::new();
    while let Ok(frame) = ws.frame(Duration::from_secs(3)).await {
        let ended = matches!(frame, ServerFrame::Ended { .. });
        frames.push((pushed.elapsed(), frame));
        if ended {
            break;
        }
    }
    Ok((gms, frames))
}

#[tokio::test]
async fn a_chat_is_forgotten_only_when_gms_refuses_it_twice_some_time_apart() -> Result<()> {
    let (gms, frames) = refused_then(&[ACCEPTED, REFUSED]).await?;
    let Some((after, ServerFrame::Ended { .. })) = frames.last() else {
        anyhow::bail!("the chat was never given up: {frames:?}");
    };
    // The acknowledgement was refused at once; only the look a second later ended it.
    assert!(*after >= Duration::from_secs(1), "ended {after:?} after the first refusal");
    assert_eq!(gms.requests(), 3, "the registration and two pings");
    // Every form says its charset, so GMS (or a gateway) reads non-ASCII letters right.
    let heads = gms.heads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for head in &heads {
        let declared = head.lines().any(|line| {
            line.eq_ignore_ascii_case(
                "content-type: application/x-www-form-urlencoded; charset=utf-8",
            )
        });
        assert!(declared, "{head}");
    }
    Ok(())
}

#[tokio::test]
async fn a_passing_refusal_does_not_end_the_chat() -> Result<()> {
    let (gms, frames) = refused_then(&[ACCEPTED, REFUSED, ACCEPTED]).await?;
    assert!(
        !frames.iter().any(|(_, frame)| matches!(frame, ServerFrame::Ended { .. })),
        "{frames:?}"
    );
    assert!(gms.requests() >= 3, "asked again after the refusal");
    Ok(())
}

#[tokio::test]
async fn an_error_body_that_is_no_envelope_is_logged_with_its_message() -> Result<()> {
    // What GMS's other APIs answer, and what an API gateway before GMS answers.
    let body = r#"{"message":"Chat service not found","exception":"com.genesyslab.NotFound"}"#;
    let gms = FakeServer::start(answer("404 Not Found", "", body)).await?;
    let Started::Running { ready, log, _child: _running } =
        start_binary(&["--gms-url", &gms.url], &[("RELAY_PUSH_SECRET", "sixteen-chars!!!")])
            .await?
    else {
        anyhow::bail!("the relay did not start");
    };
    let refused = registration(&listen(&ready)?, "117").await?;
    assert_eq!(refused.status(), 502);
    let told = refused.text().await?;
    assert!(!told.contains("Chat service not found"), "the browser is told no more: {told}");
    let text = || log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    until("the refusal is logged with GMS's message", Duration::from_secs(10), async || {
        let text = text();
        Ok(Wait::done_if(
            text.contains("HTTP 404: Chat service not found: com.genesyslab.NotFound"),
            text,
        ))
    })
    .await
}
