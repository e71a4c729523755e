//! The same chat on every device (issue 32): a registration with a verified identity (the
//! site's HMAC of its user id) keeps the chat under it and tells GMS `verifiedUserId` once,
//! another device of the same user takes it over by `POST /v1/identity`, and a resume link
//! hands the chat to whoever follows it until the visitor revokes it, the chat ends or is
//! forgotten; every failed claim gets the same 404, claims are rate-limited, and with Redis
//! any relay answers for a link or an identity another made.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use shared::gms::Credentials;
use shared::relay_api::{
    ChatHandover, ErrorBody, IDENTITY_PATH, Identity, IdentityVerdict, RESUME_LINKS, RESUME_PATH,
    RegisterSession, ResumeLink, SESSIONS_PATH, ServerFrame, SessionRegistered,
};

use super::{Setup, Started, metric, start_binary};
use crate::harness::{Options, RedisServer};
use crate::support::{SERVICE, TEST_PUSH_SECRET, Wait, until, until_every};
use crate::ws_client::WsClient;

/// The secret the site's backend shares with the relay.
const SECRET: &str = "the-site-and-the-relay-share-this-32+";
const WITHIN: Duration = Duration::from_secs(10);

/// `hex(HMAC-SHA256(secret, userId))`, as a site's backend computes it (with OpenSSL, not
/// the relay's code).
pub(super) fn user_hash(secret: &str, user_id: &str) -> Result<String> {
    let key = openssl::pkey::PKey::hmac(secret.as_bytes())?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(user_id.as_bytes())?;
    Ok(signer.sign_to_vec()?.iter().map(|b| format!("{b:02x}")).collect())
}

fn identity(user_id: &str) -> Result<Identity> {
    Ok(Identity { user_id: user_id.to_owned(), user_hash: user_hash(SECRET, user_id)? })
}

/// A relay that verifies identities; the client address comes from `X-Forwarded-For`, so
/// each "device" of a test has its own rate limits.
fn options() -> Options {
    Options::sim(&[]).relay(&["--identity-secret", SECRET, "--trusted-proxy", "127.0.0.1"])
}

/// An address of its own for a device (TEST-NET-3).
fn device(n: u8) -> String {
    format!("203.0.113.{n}")
}

/// `POST {SESSIONS_PATH}` naming `identity`: the answer, insisting on 200.
async fn register_as(
    setup: &Setup,
    relay_url: &str,
    credentials: &Credentials,
    identity: Option<Identity>,
) -> Result<SessionRegistered> {
    let body = RegisterSession { identity, ..RegisterSession::new(SERVICE, credentials, None) };
    let response =
        setup.http.post(format!("{relay_url}{SESSIONS_PATH}")).json(&body).send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    ensure!(status == 200, "registration answered {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

/// `POST {IDENTITY_PATH}` from `device`: the status and body.
async fn look_up(
    setup: &Setup,
    relay_url: &str,
    identity: &Identity,
    device: &str,
) -> Result<(u16, String)> {
    let response = setup
        .http
        .post(format!("{relay_url}{IDENTITY_PATH}"))
        .header("x-forwarded-for", device)
        .json(identity)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The chat handed over to `identity`, insisting on 200.
async fn handed_over(setup: &Setup, relay_url: &str, identity: &Identity) -> Result<ChatHandover> {
    let (status, body) = look_up(setup, relay_url, identity, &device(1)).await?;
    ensure!(status == 200, "the identity's chat answered {status}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// `POST` (make) or `DELETE` (revoke) on the chat's resume links with its token.
async fn resume_links(
    setup: &Setup,
    relay_url: &str,
    method: reqwest::Method,
    chat_id: &str,
    token: &str,
) -> Result<(u16, String)> {
    let url = format!("{relay_url}{SESSIONS_PATH}/{chat_id}/{RESUME_LINKS}");
    let response = setup.http.request(method, url).bearer_auth(token).send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

async fn make_link(setup: &Setup, relay_url: &str, chat_id: &str, token: &str) -> Result<String> {
    let (status, body) =
        resume_links(setup, relay_url, reqwest::Method::POST, chat_id, token).await?;
    ensure!(status == 200, "making a resume link answered {status}: {body}");
    Ok(serde_json::from_str::<ResumeLink>(&body)?.resume_token)
}

/// `POST {RESUME_PATH}` from `device` with `body`: the status, `Retry-After` and body.
async fn claim_raw(
    setup: &Setup,
    relay_url: &str,
    body: &Value,
    device: Option<&str>,
) -> Result<(u16, Option<String>, String)> {
    let mut request = setup.http.post(format!("{relay_url}{RESUME_PATH}")).json(body);
    if let Some(device) = device {
        request = request.header("x-forwarded-for", device);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((status, retry_after, response.text().await?))
}

/// Claims `token` from `device`: the status and body.
async fn claim(setup: &Setup, relay_url: &str, token: &str, device: &str) -> Result<(u16, String)> {
    let body = json!({"resumeToken": token});
    let (status, _, text) = claim_raw(setup, relay_url, &body, Some(device)).await?;
    Ok((status, text))
}

/// The handover's token subscribes to its chat over the WebSocket.
async fn subscribes(relay_url: &str, handover: &ChatHandover) -> Result<()> {
    let mut ws = WsClient::connect(relay_url).await?;
    let answer = ws.subscribe(&handover.credentials.chat_id, &handover.token).await?;
    ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "subscribe answered {answer:?}");
    ws.close().await
}

/// What gms-sim holds as the chat's user data.
async fn user_data(setup: &Setup, chat_id: &str) -> Result<Value> {
    Ok(setup.admin.get(&format!("/sim/chats/{chat_id}")).await?["userData"].clone())
}

/// Waits until gms-sim holds `verifiedUserId` for the chat, and answers it.
async fn verified_user_id(setup: &Setup, chat_id: &str) -> Result<String> {
    until(&format!("verifiedUserId in {chat_id}'s user data"), WITHIN, async || {
        let data = user_data(setup, chat_id).await?;
        Ok(match data["verifiedUserId"].as_str() {
            Some(user) => Wait::Done(user.to_owned()),
            None => Wait::Still(data),
        })
    })
    .await
}

/// `updateData` requests gms-sim answered for the chat.
async fn updates(setup: &Setup, chat_id: &str) -> Result<u64> {
    Ok(setup.admin.stats().await?["chats"][chat_id]["updateData"].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn a_verified_chat_is_told_to_gms_once_and_handed_to_the_users_other_device() -> Result<()> {
    let setup = Setup::start(options()).await?;
    let relay = setup.system.relay_url.clone();
    let user = identity("user-42")?;

    // The laptop starts a chat as the logged-in user: verified, and GMS hears who it is.
    let first = setup.chat(false).await?;
    let registered = register_as(&setup, &relay, &first, Some(user.clone())).await?;
    assert_eq!(registered.identity, Some(IdentityVerdict::Verified));
    assert_eq!(verified_user_id(&setup, &first.chat_id).await?, "user-42");
    // Registered again (every page view): GMS is not told again.
    register_as(&setup, &relay, &first, Some(user.clone())).await?;
    let second = setup.chat(false).await?;
    // The site may send the hash in capitals: it is the same identity.
    let shouting = Identity { user_hash: user.user_hash.to_ascii_uppercase(), ..user.clone() };
    register_as(&setup, &relay, &second, Some(shouting)).await?;
    // GMS heard of the second chat after every registration of the first was answered.
    assert_eq!(verified_user_id(&setup, &second.chat_id).await?, "user-42");
    assert_eq!(updates(&setup, &first.chat_id).await?, 1, "told once, when it became theirs");

    // The phone logs in: it gets the identity's newest chat, with its tokens and position.
    setup.admin.agent_says(&second.chat_id, "hello on every device").await?;
    setup.acknowledged(&second.chat_id, WITHIN).await?;
    let position = register_as(&setup, &relay, &second, None).await?.position;
    ensure!(position > 0, "the agent's line moved the position");
    let handover = handed_over(&setup, &relay, &user).await?;
    assert_eq!(handover.credentials, second, "the tokens as the relay holds them");
    assert_eq!((handover.service.as_str(), handover.position), (SERVICE, position));
    subscribes(&relay, &handover).await?;
    assert_eq!(handover.token, register_as(&setup, &relay, &second, None).await?.token);

    // The laptop's chat registered again under the identity is its newest now.
    register_as(&setup, &relay, &first, Some(user.clone())).await?;
    assert_eq!(handed_over(&setup, &relay, &user).await?.credentials, first);
    // Another user has none.
    let (status, body) = look_up(&setup, &relay, &identity("user-43")?, &device(2)).await?;
    assert_eq!((status, body.as_str()), (204, ""));

    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_identity_total", &["result=\"verified\""]) >= 3.0);
    assert!(metric(&metrics, "relay_identity_total", &["result=\"handed_over\""]) >= 2.0);
    assert!(metric(&metrics, "relay_identity_total", &["result=\"none\""]) >= 1.0);
    for secret in [user.user_hash.as_str(), SECRET, &first.secure_key] {
        assert!(!metrics.contains(secret), "a secret in /metrics");
    }
    setup.system.stop().await
}

#[tokio::test]
async fn a_hash_that_does_not_verify_is_refused_and_the_chat_stays_anonymous() -> Result<()> {
    let setup = Setup::start(options()).await?;
    let relay = setup.system.relay_url.clone();
    let user = identity("user-42")?;
    let forged = Identity {
        user_hash: user_hash("a guess at the site's secret", "user-42")?,
        ..user.clone()
    };

    let chat = setup.chat(false).await?;
    let registered = register_as(&setup, &relay, &chat, Some(forged.clone())).await?;
    assert_eq!(registered.identity, Some(IdentityVerdict::Refused));
    // The chat is registered (and works) as any anonymous one.
    let mut ws = WsClient::connect(&relay).await?;
    let answer = ws.subscribe(&chat.chat_id, &registered.token).await?;
    assert!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
    ws.close().await?;

    // The real user has no chat: the refused registration did not put one under them.
    let (status, _) = look_up(&setup, &relay, &user, &device(1)).await?;
    assert_eq!(status, 204);
    // Whatever is wrong with it, a hash that does not verify gets 403, saying nothing else.
    let too_long = "u".repeat(257);
    for wrong in [
        forged,
        Identity { user_hash: "zz".into(), ..user.clone() },
        Identity { user_hash: String::new(), ..user.clone() },
        Identity { user_id: "user-43".into(), ..user.clone() },
        Identity { user_id: "user-42\n".into(), user_hash: user_hash(SECRET, "user-42\n")? },
        Identity { user_id: too_long.clone(), user_hash: user_hash(SECRET, &too_long)? },
    ] {
        let (status, body) = look_up(&setup, &relay, &wrong, &device(2)).await?;
        let error: ErrorBody = serde_json::from_str(&body)?;
        assert_eq!(status, 403, "{wrong:?}");
        assert_eq!(
            (error.code.as_str(), error.message.as_str()),
            ("identity_refused", "the identity did not verify")
        );
    }
    // GMS never heard of a verified user for it.
    assert_eq!(user_data(&setup, &chat.chat_id).await?.get("verifiedUserId"), None);
    assert_eq!(updates(&setup, &chat.chat_id).await?, 0);
    // A body that is no identity is a bad request.
    let response = setup
        .http
        .post(format!("{relay}{IDENTITY_PATH}"))
        .json(&json!({"userId": "user-42"}))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    setup.system.stop().await
}

#[tokio::test]
async fn without_an_identity_secret_identities_are_unconfigured() -> Result<()> {
    let setup = Setup::start(Options::default()).await?;
    let relay = setup.system.relay_url.clone();
    let user = identity("user-42")?;
    let chat = setup.chat(false).await?;
    let registered = register_as(&setup, &relay, &chat, Some(user.clone())).await?;
    assert_eq!(registered.identity, Some(IdentityVerdict::Unconfigured));
    // A registration that names none hears nothing of identities.
    let (status, body) = setup.register_raw(&chat).await?;
    assert_eq!(status, 200);
    assert_eq!(body.get("identity"), None, "{body}");

    let (status, body) = look_up(&setup, &relay, &user, &device(1)).await?;
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<ErrorBody>(&body)?.code, "identity_unconfigured");
    assert_eq!(user_data(&setup, &chat.chat_id).await?.get("verifiedUserId"), None);
    setup.system.stop().await
}

#[tokio::test]
async fn a_relay_with_a_short_identity_secret_does_not_start() -> Result<()> {
    let short = "31-bytes-are-one-too-few-here!!";
    let args = ["--push-secret", TEST_PUSH_SECRET, "--identity-secret", short];
    let Started::Refused(log) = start_binary(&args, &[]).await? else {
        anyhow::bail!("the relay started with a 31-byte identity secret");
    };
    assert!(log.contains("RELAY_IDENTITY_SECRET") && log.contains("at least 32"), "{log}");
    assert!(!log.contains(short), "the secret is never shown: {log}");
    // The same from the environment.
    let env = [("RELAY_IDENTITY_SECRET", short)];
    let started = start_binary(&["--push-secret", TEST_PUSH_SECRET], &env).await?;
    assert!(matches!(started, Started::Refused(_)), "started with a short secret in the env");
    Ok(())
}

#[tokio::test]
async fn a_resume_link_hands_the_chat_to_another_device_until_revoked_or_forgotten() -> Result<()> {
    let setup = Setup::start(options()).await?;
    let relay = setup.system.relay_url.clone();
    let chat = setup.chat(false).await?;
    let registered = setup.register(&chat).await?;
    let chat_id = chat.chat_id.as_str();

    // Only the chat's own token makes a link.
    let (status, _) =
        resume_links(&setup, &relay, reqwest::Method::POST, chat_id, "not-the-token").await?;
    assert_eq!(status, 401);
    let link = make_link(&setup, &relay, chat_id, &registered.token).await?;
    ensure!(link.starts_with(&format!("{chat_id}.")) && link.split('.').count() == 3, "{link}");

    // Another device follows it: the same chat, its tokens, a token that subscribes.
    let (status, body) = claim(&setup, &relay, &link, &device(1)).await?;
    assert_eq!(status, 200, "{body}");
    let handover: ChatHandover = serde_json::from_str(&body)?;
    assert_eq!(handover.credentials, chat);
    assert_eq!(
        (handover.service.as_str(), handover.token.as_str()),
        (SERVICE, registered.token.as_str())
    );
    subscribes(&relay, &handover).await?;
    // A link works again (and from yet another device) until revoked.
    assert_eq!(claim(&setup, &relay, &link, &device(2)).await?.0, 200);

    // Revoked: every link made so far is dead, a new one works.
    let other_link = make_link(&setup, &relay, chat_id, &registered.token).await?;
    let (status, _) =
        resume_links(&setup, &relay, reqwest::Method::DELETE, chat_id, &registered.token).await?;
    assert_eq!(status, 204);
    let (status, refused) = claim(&setup, &relay, &link, &device(3)).await?;
    assert_eq!(status, 404);
    let error: ErrorBody = serde_json::from_str(&refused)?;
    assert_eq!(error.code, "not_found");
    assert_eq!(claim(&setup, &relay, &other_link, &device(3)).await?, (404, refused.clone()));
    let fresh = make_link(&setup, &relay, chat_id, &registered.token).await?;
    assert_eq!(claim(&setup, &relay, &fresh, &device(4)).await?.0, 200);

    // Forged, malformed and another chat's tokens: the very same 404 as a revoked one.
    let other = setup.chat(false).await?;
    let other_registered = setup.register(&other).await?;
    let others = make_link(&setup, &relay, &other.chat_id, &other_registered.token).await?;
    let (_, nonce_and_mac) = others.split_once('.').context("three parts")?;
    let (nonce, mac) = nonce_and_mac.split_once('.').context("three parts")?;
    let flipped = if mac.ends_with('A') { "B" } else { "A" };
    let forged_mac = format!("{chat_id}.{nonce}.{}{flipped}", &mac[..mac.len() - 1]);
    for (n, token) in [
        format!("{chat_id}.{nonce_and_mac}"),
        forged_mac,
        format!("{chat_id}.{nonce}"),
        "not a token".to_owned(),
        String::new(),
        format!("unknown-chat.{nonce_and_mac}"),
        format!("../{chat_id}.{nonce_and_mac}"),
        "x".repeat(5000),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = claim(&setup, &relay, &token, &device(10 + n as u8)).await?;
        assert_eq!(answer, (404, refused.clone()), "{token:.60}");
    }
    // Only a body that is no claim at all is a bad request.
    let (status, _, _) =
        claim_raw(&setup, &relay, &json!({"token": fresh}), Some(&device(30))).await?;
    assert_eq!(status, 400);
    assert_eq!(claim(&setup, &relay, &others, &device(31)).await?.0, 200, "its own chat");

    // Forgotten (the visitor's "forget" on a shared computer): the link dies with the chat.
    let forget = setup
        .http
        .delete(format!("{relay}{SESSIONS_PATH}/{chat_id}"))
        .bearer_auth(&registered.token)
        .send()
        .await?;
    assert_eq!(forget.status(), 204);
    assert_eq!(claim(&setup, &relay, &fresh, &device(32)).await?, (404, refused.clone()));
    // Registered again (its other tab): the links revoked or forgotten stay dead.
    setup.register(&chat).await?;
    for token in [&link, &fresh] {
        assert_eq!(claim(&setup, &relay, token, &device(33)).await?, (404, refused.clone()));
    }

    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_resume_total", &["result=\"made\""]) >= 4.0);
    assert!(metric(&metrics, "relay_resume_total", &["result=\"claimed\""]) >= 4.0);
    assert!(metric(&metrics, "relay_resume_total", &["result=\"refused\""]) >= 13.0);
    assert!(metric(&metrics, "relay_resume_total", &["result=\"revoked\""]) >= 1.0);
    assert!(!metrics.contains(&fresh) && !metrics.contains(nonce), "a token in /metrics");
    setup.system.stop().await
}

#[tokio::test]
async fn an_ended_chat_is_neither_resumed_nor_handed_over() -> Result<()> {
    let setup = Setup::start(options()).await?;
    let relay = setup.system.relay_url.clone();
    let user = identity("user-7")?;
    let chat = setup.chat(false).await?;
    let registered = register_as(&setup, &relay, &chat, Some(user.clone())).await?;
    let link = make_link(&setup, &relay, &chat.chat_id, &registered.token).await?;
    assert_eq!(handed_over(&setup, &relay, &user).await?.credentials, chat);

    let mut ws = WsClient::connect(&relay).await?;
    ws.subscribe(&chat.chat_id, &registered.token).await?;
    // Chat Server pushes once an agent has joined.
    setup.admin.ok(&format!("/sim/chats/{}/agent/join", chat.chat_id), json!({})).await?;
    setup.admin.ok(&format!("/sim/chats/{}/end", chat.chat_id), json!({})).await?;
    // The relay forgets the chat before it tells its browsers.
    loop {
        if let ServerFrame::Ended { .. } = ws.frame(WITHIN).await? {
            break;
        }
    }
    ws.close().await?;
    assert_eq!(claim(&setup, &relay, &link, &device(1)).await?.0, 404);
    assert_eq!(look_up(&setup, &relay, &user, &device(1)).await?.0, 204);
    let (status, _) =
        resume_links(&setup, &relay, reqwest::Method::POST, &chat.chat_id, &registered.token)
            .await?;
    assert_eq!(status, 404, "no link for a chat that ended");
    setup.system.stop().await
}

#[tokio::test]
async fn claims_beyond_the_rate_are_refused_with_retry_after() -> Result<()> {
    // No trusted proxy: every claim comes from 127.0.0.1.
    let setup = Setup::start(Options::sim(&[])).await?;
    let relay = setup.system.relay_url.clone();
    let body = json!({"resumeToken": "guess.AAAAAAAAAAAAAAAAAAAAAA.AAAA"});
    for n in 1..=5 {
        let (status, _, _) = claim_raw(&setup, &relay, &body, None).await?;
        assert_eq!(status, 404, "claim {n} of the burst of 5");
    }
    let (status, retry_after, text) = claim_raw(&setup, &relay, &body, None).await?;
    assert_eq!(status, 429, "{text}");
    let seconds: u64 = retry_after.context("a Retry-After")?.parse()?;
    assert!((1..=6).contains(&seconds), "one claim every 6 s: retry after {seconds}");
    assert_eq!(serde_json::from_str::<ErrorBody>(&text)?.code, "rate_limited");
    let metrics = setup.metrics().await?;
    assert!(metric(&metrics, "relay_rate_limited_total", &["endpoint=\"resume\""]) >= 1.0);
    setup.system.stop().await
}

#[tokio::test]
async fn with_redis_a_link_or_an_identity_from_one_relay_is_answered_by_another() -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = Setup::start(options().relay(&["--redis-url", &redis.url()])).await?;
    let other = setup.system.add_relay().await?;
    let (here, there) = (setup.system.relay_url.clone(), other.url.clone());
    let user = identity("user-on-two-relays")?;

    // Registered on one relay under the identity: the other hands it over (once the change
    // reached it through Redis).
    let chat = setup.chat(false).await?;
    let registered = register_as(&setup, &here, &chat, Some(user.clone())).await?;
    let what = "the other relay knowing the identity's chat";
    let handover = until_every(what, WITHIN, Duration::from_millis(50), async || {
        let (status, body) = look_up(&setup, &there, &user, &device(1)).await?;
        Ok(match status {
            200 => Wait::Done(serde_json::from_str::<ChatHandover>(&body)?),
            _ => Wait::Still(status),
        })
    })
    .await?;
    assert_eq!((handover.credentials, handover.token), (chat.clone(), registered.token.clone()));

    // A link made on one relay is claimed on the other; revoked on that one, it is dead on
    // the first at once (each reads the chat as stored).
    let link = make_link(&setup, &here, &chat.chat_id, &registered.token).await?;
    let (status, body) = claim(&setup, &there, &link, &device(2)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<ChatHandover>(&body)?.credentials, chat);
    let (status, _) =
        resume_links(&setup, &there, reqwest::Method::DELETE, &chat.chat_id, &registered.token)
            .await?;
    assert_eq!(status, 204);
    assert_eq!(claim(&setup, &here, &link, &device(3)).await?.0, 404);
    let fresh = make_link(&setup, &here, &chat.chat_id, &registered.token).await?;
    assert_eq!(claim(&setup, &there, &fresh, &device(4)).await?.0, 200);
    other.stop().await?;
    setup.system.stop().await
}
