//! Proxy mode (`--gms-proxy`): a chat started, written in, refreshed, ended and given files
//! through the relay alone, with no GMS token in any answer; and every limit that keeps the
//! relay from being an open proxy, each refusal counted.

use anyhow::{Result, ensure};
use serde_json::Value;
use shared::proxy::CHATS_PATH;
use shared::relay_api::ServerFrame;

use super::{Setup, metric, next_events};
use crate::harness::Options;
use crate::support::SERVICE;
use crate::ws_client::WsClient;

/// A browser in proxy mode: it knows the relay only.
struct Browser<'a> {
    setup: &'a Setup,
}

/// An answer: status, headers, body as JSON (`Null` when it is none).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Browser<'_> {
    fn url(&self, rest: &str) -> String {
        format!("{}{CHATS_PATH}/{rest}", self.setup.system.relay_url)
    }

    async fn answer(response: reqwest::Response) -> Result<Answer> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        // No answer of proxy mode may carry a token.
        for token in ["secureKey", "userId", "\"alias\""] {
            ensure!(!text.contains(token), "an answer carried {token}: {text}");
        }
        Ok(Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
    }

    async fn start(&self, fields: &[(&str, &str)]) -> Result<Answer> {
        let response = self
            .setup
            .http
            .post(self.url(SERVICE))
            .header("content-type", shared::form::CONTENT_TYPE)
            .body(shared::form::encode(fields))
            .send()
            .await?;
        Self::answer(response).await
    }

    /// A started chat: its id and subscription token.
    async fn started(&self) -> Result<(String, String)> {
        let answer = self.start(&[("nickname", "Ann"), ("userData[orderId]", "A-17")]).await?;
        ensure!(answer.status == 200, "start answered {}: {}", answer.status, answer.body);
        let chat_id = answer.body["chatId"].as_str().unwrap_or_default().to_owned();
        let token = answer.body["relay"]["token"].as_str().unwrap_or_default().to_owned();
        ensure!(!chat_id.is_empty() && !token.is_empty(), "{}", answer.body);
        Ok((chat_id, token))
    }

    async fn call(
        &self,
        chat_id: &str,
        token: &str,
        operation: &str,
        fields: &[(&str, &str)],
    ) -> Result<Answer> {
        let response = self
            .setup
            .http
            .post(self.url(&format!("{SERVICE}/{chat_id}/{operation}")))
            .bearer_auth(token)
            .header("content-type", shared::form::CONTENT_TYPE)
            .body(shared::form::encode(fields))
            .send()
            .await?;
        Self::answer(response).await
    }

    async fn upload(
        &self,
        chat_id: &str,
        token: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<Answer> {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new()
            .text("userData[file-description]", "the invoice")
            .part("file", part);
        let response = self
            .setup
            .http
            .post(self.url(&format!("{SERVICE}/{chat_id}/file")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?;
        Self::answer(response).await
    }
}

async fn proxy(relay_args: &[&str]) -> Result<Setup> {
    let mut args = vec!["--gms-proxy"];
    args.extend_from_slice(relay_args);
    Setup::start(Options::sim(&[]).relay(&args)).await
}

async fn transcript_texts(setup: &Setup, chat_id: &str) -> Result<Vec<String>> {
    let chat = setup.admin.get(&format!("/sim/chats/{chat_id}")).await?;
    Ok(chat["transcript"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["text"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn a_chat_runs_through_the_relay_alone_and_no_answer_carries_a_token() -> Result<()> {
    let setup = proxy(&[]).await?;
    let browser = Browser { setup: &setup };
    let (chat_id, token) = browser.started().await?;

    // GMS got the site's data and the relay's push subscription, not the browser's.
    let chat = setup.admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["userData"]["orderId"], "A-17");
    assert_eq!(chat["userData"]["GCTI_GMS_PushDeviceType"], "customhttp");
    assert!(
        chat["userData"]["GCTI_GMS_PushDeviceId"].as_str().is_some_and(|d| d.starts_with("relay-"))
    );
    assert_eq!(chat["pushSubscribed"], true);

    // The agent's line arrives by push on the relay's WebSocket, as in direct mode.
    let mut ws = WsClient::connect(&setup.system.relay_url).await?;
    let subscribed = ws.subscribe(&chat_id, &token).await?;
    assert!(matches!(subscribed, ServerFrame::Subscribed { .. }), "{subscribed:?}");
    setup.admin.agent_says(&chat_id, "how can I help?").await?;
    let mut seen = false;
    for _ in 0..5 {
        if next_events(&mut ws).await?.iter().any(|e| e.text.as_deref() == Some("how can I help?"))
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "the agent's line arrives by push");

    let typing = browser.call(&chat_id, &token, "startTyping", &[("message", "my ord")]).await?;
    assert_eq!((typing.status, typing.body["statusCode"].as_i64()), (200, Some(0)));
    let sent = browser.call(&chat_id, &token, "send", &[("message", "my order is late")]).await?;
    assert_eq!((sent.status, sent.body["statusCode"].as_i64()), (200, Some(0)), "{}", sent.body);
    assert!(transcript_texts(&setup, &chat_id).await?.contains(&"my order is late".to_owned()));

    let all = browser.call(&chat_id, &token, "refresh", &[("transcriptPosition", "1")]).await?;
    let texts: Vec<&str> = all.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"how can I help?") && texts.contains(&"my order is late"), "{texts:?}");
    assert_eq!(all.headers.get("cache-control").map(|v| v.to_str().ok()), Some(Some("no-store")));

    let data = browser.call(&chat_id, &token, "updateData", &[("userData[rating]", "5")]).await?;
    assert_eq!(data.body["statusCode"].as_i64(), Some(0));
    let chat = setup.admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["userData"]["rating"], "5");

    let ended = browser.call(&chat_id, &token, "disconnect", &[]).await?;
    assert_eq!(ended.body["statusCode"].as_i64(), Some(0), "{}", ended.body);
    let after = browser.call(&chat_id, &token, "refresh", &[("transcriptPosition", "1")]).await?;
    assert_eq!(after.body["chatEnded"], true, "the end reaches the widget as GMS says it");
    ws.close().await?;
    setup.system.stop().await
}

#[tokio::test]
async fn files_go_up_and_come_down_through_the_relay_within_gmss_own_limits() -> Result<()> {
    let setup = proxy(&[]).await?;
    let browser = Browser { setup: &setup };
    let (chat_id, token) = browser.started().await?;
    let limits = browser.call(&chat_id, &token, "file/limits", &[]).await?;
    assert_eq!(limits.body["statusCode"].as_i64(), Some(0), "{}", limits.body);

    let content: Vec<u8> = (0..300_000u32).map(|k| (k % 251) as u8).collect();
    let up = browser.upload(&chat_id, &token, "invoice.pdf", content.clone()).await?;
    assert_eq!((up.status, up.body["statusCode"].as_i64()), (200, Some(0)), "{}", up.body);
    let file_id = up.body["userData"]["file-id"].as_str().unwrap_or_default().to_owned();
    assert!(!file_id.is_empty(), "{}", up.body);

    let down = setup
        .http
        .post(browser.url(&format!("{SERVICE}/{chat_id}/file/{file_id}/download")))
        .bearer_auth(&token)
        .header("content-type", shared::form::CONTENT_TYPE)
        .send()
        .await?;
    assert_eq!(down.status(), 200);
    assert_eq!(down.bytes().await?.to_vec(), content, "the same bytes come back");

    // GMS's limits (gms-sim: 2 MiB, jpg:jpeg:png:gif:pdf:txt) hold before GMS is asked.
    let big = browser.upload(&chat_id, &token, "big.pdf", vec![7; 2 * 1024 * 1024 + 1]).await?;
    assert_eq!(big.status, 413, "{}", big.body);
    let exe = browser.upload(&chat_id, &token, "tool.exe", vec![1; 10]).await?;
    assert_eq!(exe.status, 415, "{}", exe.body);
    let metrics = setup.metrics().await?;
    assert_eq!(metric(&metrics, "relay_refused_total", &["reason=\"too_large\""]), 1.0);
    assert_eq!(metric(&metrics, "relay_refused_total", &["reason=\"file_type_refused\""]), 1.0);
    setup.system.stop().await
}

#[tokio::test]
async fn only_the_offered_operations_of_held_chats_with_their_token_pass() -> Result<()> {
    let setup = proxy(&[]).await?;
    let browser = Browser { setup: &setup };
    let (chat_id, token) = browser.started().await?;
    let (other_chat, other_token) = browser.started().await?;

    let send = [("message", "hi")];
    assert_eq!(browser.call(&chat_id, "", "send", &send).await?.status, 401);
    assert_eq!(browser.call(&chat_id, &other_token, "send", &send).await?.status, 401);
    for operation in ["pushUrl", "customNotice", "updateNickname", "file/x/delete"] {
        let answer = browser.call(&chat_id, &token, operation, &[("pushUrl", "https://x")]).await?;
        assert_eq!((answer.status, answer.body["code"].as_str()), (404, Some("not_offered")));
    }
    // The push subscription is the relay's alone, at the start and later.
    let hijack = [("userData[GCTI_GMS_PushProvider]", "elsewhere")];
    assert_eq!(browser.call(&chat_id, &token, "updateData", &hijack).await?.status, 400);
    let mut fields = vec![("nickname", "Eve")];
    fields.extend(hijack);
    assert_eq!(browser.start(&fields).await?.status, 400);
    // A chat on another service, or one the relay does not hold, is not served.
    let elsewhere = setup
        .http
        .post(browser.url("billing"))
        .header("content-type", shared::form::CONTENT_TYPE)
        .body("nickname=Eve")
        .send()
        .await?;
    assert_eq!(elsewhere.status(), 404);
    let forget = setup
        .http
        .delete(format!("{}/v1/sessions/{other_chat}", setup.system.relay_url))
        .bearer_auth(&other_token)
        .send()
        .await?;
    assert_eq!(forget.status(), 204);
    // A chat the relay signed but forgot has ended, as GMS would say.
    let forgotten = browser.call(&other_chat, &other_token, "send", &send).await?;
    assert_eq!((forgotten.status, forgotten.body["chatEnded"].as_bool()), (200, Some(true)));
    assert!(!transcript_texts(&setup, &other_chat).await?.contains(&"hi".to_owned()));
    // Bodies are bounded.
    let long = "x".repeat(40 * 1024);
    assert_eq!(browser.call(&chat_id, &token, "send", &[("message", &long)]).await?.status, 413);
    let metrics = setup.metrics().await?;
    assert_eq!(metric(&metrics, "relay_refused_total", &["reason=\"not_offered\""]), 5.0);
    assert!(metric(&metrics, "relay_refused_total", &["reason=\"bad_token\""]) >= 2.0);
    setup.system.stop().await
}

#[tokio::test]
async fn each_chat_has_its_own_rates_and_a_refusal_says_when_to_retry() -> Result<()> {
    let setup = proxy(&["--proxy-send-rate", "2", "--proxy-typing-rate", "3"]).await?;
    let browser = Browser { setup: &setup };
    let (chat_id, token) = browser.started().await?;
    let (other, other_token) = browser.started().await?;
    let send = [("message", "hi")];
    for _ in 0..2 {
        assert_eq!(browser.call(&chat_id, &token, "send", &send).await?.status, 200);
    }
    let refused = browser.call(&chat_id, &token, "send", &send).await?;
    assert_eq!(refused.status, 429);
    let retry: u64 = refused.headers["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "{retry}");
    // Another chat's allowance is its own; typing counts apart from lines.
    assert_eq!(browser.call(&other, &other_token, "send", &send).await?.status, 200);
    assert_eq!(browser.call(&chat_id, &token, "stopTyping", &[]).await?.status, 200);
    let metrics = setup.metrics().await?;
    assert_eq!(metric(&metrics, "relay_rate_limited_total", &["endpoint=\"proxy_send\""]), 1.0);
    setup.system.stop().await
}

#[tokio::test]
async fn gms_errors_reach_the_browser_as_they_would_directly() -> Result<()> {
    let setup = proxy(&[]).await?;
    let browser = Browser { setup: &setup };
    let (chat_id, token) = browser.started().await?;
    setup.admin.ok("/sim/faults", serde_json::json!({"statusCode1": 1})).await?;
    let retry = browser.call(&chat_id, &token, "send", &[("message", "one")]).await?;
    assert_eq!(retry.body["statusCode"].as_i64(), Some(1), "statusCode 1, for the widget to retry");
    setup.admin.ok("/sim/faults", serde_json::json!({"http5xx": 1})).await?;
    let unavailable = browser.call(&chat_id, &token, "send", &[("message", "two")]).await?;
    assert_eq!(unavailable.status, 503);
    let again = browser.call(&chat_id, &token, "send", &[("message", "three")]).await?;
    assert_eq!(again.body["statusCode"].as_i64(), Some(0));
    // One request each: the relay does not retry on the widget's behalf.
    let texts = transcript_texts(&setup, &chat_id).await?;
    assert!(!texts.contains(&"one".to_owned()) && texts.contains(&"three".to_owned()), "{texts:?}");
    setup.system.stop().await
}

#[tokio::test]
async fn gms_sees_the_visitors_address_only_when_the_operator_asks() -> Result<()> {
    // gms-sim as a gateway that wants the visitor's address (loopback here).
    let gateway = ["--require-header", "x-forwarded-for: 127.0.0.1"];
    let setup =
        Setup::start(Options::sim(&gateway).relay(&["--gms-proxy", "--gms-forward-client-ip"]))
            .await?;
    let browser = Browser { setup: &setup };
    let started = browser.start(&[("nickname", "Ann")]).await?;
    assert_eq!(started.status, 200, "{}", started.body);
    setup.system.stop().await?;

    let setup = Setup::start(Options::sim(&gateway).relay(&["--gms-proxy"])).await?;
    let browser = Browser { setup: &setup };
    let started = browser.start(&[("nickname", "Ann")]).await?;
    assert_eq!((started.status, started.body["code"].as_str()), (401, Some("gms_http")));
    setup.system.stop().await
}

#[tokio::test]
async fn without_the_flag_there_is_no_proxy() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let browser = Browser { setup: &setup };
    assert_eq!(browser.start(&[("nickname", "Ann")]).await?.status, 404);
    let chats = setup.admin.get("/sim/chats").await?;
    assert_eq!(chats.as_array().map(Vec::len), Some(0), "GMS heard nothing");
    setup.system.stop().await
}

/// A browser's call to one relay of several: status and body.
async fn call_on(
    relay_url: &str,
    chat_id: &str,
    token: Option<&str>,
    operation: &str,
    fields: &[(&str, &str)],
) -> Result<(u16, Value)> {
    let url = match token {
        Some(_) => format!("{relay_url}{CHATS_PATH}/{SERVICE}/{chat_id}/{operation}"),
        None => format!("{relay_url}{CHATS_PATH}/{SERVICE}"),
    };
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", shared::form::CONTENT_TYPE)
        .body(shared::form::encode(fields));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    ensure!(!text.contains("secureKey"), "{text}");
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn every_relay_serves_every_chat_and_one_killed_loses_nothing_gms_accepted() -> Result<()> {
    use clap::Parser as _;
    let redis = crate::harness::RedisServer::start().await?;
    let ports = [crate::harness::free_port()?, crate::harness::free_port()?];
    let mut sim_args = vec!["gms-sim".to_owned(), "--listen".to_owned(), "127.0.0.1:0".to_owned()];
    for port in ports {
        sim_args.push("--push-url".to_owned());
        sim_args.push(crate::support::push_url(&format!("http://127.0.0.1:{port}")));
    }
    let sim = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;
    let admin = crate::gms_client::SimAdmin::new(&sim.url());
    let flags = ["--redis-url".to_owned(), redis.url()];
    let mut relays = crate::harness::RelayCluster::start_on(
        &flags,
        &sim.url(),
        &ports,
        &["--gms-proxy".to_owned()],
    )
    .await?;
    let (one, two) = (relays.urls[0].clone(), relays.urls[1].clone());

    // Started on one relay, written in through the other at once.
    let (status, started) = call_on(&one, "", None, "", &[("nickname", "Ann")]).await?;
    assert_eq!(status, 200, "{started}");
    let chat_id = started["chatId"].as_str().unwrap_or_default().to_owned();
    let token = started["relay"]["token"].as_str().unwrap_or_default().to_owned();
    let (status, sent) =
        call_on(&two, &chat_id, Some(&token), "send", &[("message", "through two")]).await?;
    assert_eq!((status, sent["statusCode"].as_i64()), (200, Some(0)), "{sent}");

    // The relay that started it is killed; the other serves the chat, GMS's lines intact.
    relays.kill9(0).await?;
    let (status, sent) =
        call_on(&two, &chat_id, Some(&token), "send", &[("message", "after the kill")]).await?;
    assert_eq!((status, sent["statusCode"].as_i64()), (200, Some(0)), "{sent}");
    let (_, all) =
        call_on(&two, &chat_id, Some(&token), "refresh", &[("transcriptPosition", "1")]).await?;
    let texts: Vec<&str> = all["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["through two", "after the kill"], "{all}");
    let chat = admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["pushSubscribed"], true);
    relays.stop().await?;
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_browser_without_gms_tokens_registers_with_its_chats_token_and_is_verified() -> Result<()>
{
    const SECRET: &str = "the-site-and-the-relay-share-this-32+";
    let setup = proxy(&["--identity-secret", SECRET]).await?;
    let browser = Browser { setup: &setup };
    let (chat_id, token) = browser.started().await?;
    let identity = shared::relay_api::Identity {
        user_id: "ann".to_owned(),
        user_hash: super::identity::user_hash(SECRET, "ann")?,
    };
    let tokenless = shared::gms::Credentials::id_only(&chat_id);
    let mut body = shared::relay_api::RegisterSession::new(SERVICE, &tokenless, None);
    body.identity = Some(identity.clone());
    let url = format!("{}{}", setup.system.relay_url, shared::relay_api::SESSIONS_PATH);
    let post = |token: Option<&str>| {
        let request = setup.http.post(&url).json(&body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    // Without the chat's token a registration without GMS tokens is nobody's.
    assert_eq!(post(None).send().await?.status(), 401);
    let (_, other_token) = browser.started().await?;
    assert_eq!(post(Some(&other_token)).send().await?.status(), 401);
    let answer = post(Some(&token)).send().await?;
    assert_eq!(answer.status(), 200);
    let registered: shared::relay_api::SessionRegistered = answer.json().await?;
    assert_eq!(registered.identity, Some(shared::relay_api::IdentityVerdict::Verified));
    // The identity's other device finds the chat, and gets no GMS token with it.
    let found = setup
        .http
        .post(format!("{}{}", setup.system.relay_url, shared::relay_api::IDENTITY_PATH))
        .json(&identity)
        .send()
        .await?;
    let text = found.text().await?;
    assert!(text.contains(&chat_id) && !text.contains("secureKey"), "{text}");
    let chat = setup.admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["userData"]["verifiedUserId"], "ann");
    setup.system.stop().await
}
