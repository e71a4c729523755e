//! Web Push from the real relay to a push service in the test (`PushService`), which
//! checks every request with implementations of its own: one notification per agent line
//! while no browser follows the chat, none while one does, collapse by topic, the
//! subscription removed on 410 or opt-out, retries as the service asks, a push without
//! payload read from GMS, the end, and exactly one notification whichever relay of a
//! cluster takes the push.

use std::time::Duration;

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use shared::gms::{Credentials, PushSubscription, async_push_user_data};
use shared::relay_api::{
    ChatHandover, NotificationTexts, PUSH_PATH, PUSH_SUBSCRIPTION, PushSubscriptionBody,
    RESUME_FRAGMENT, RESUME_PATH, ResumeClaim, SERVICE_WORKER_PATH, SESSIONS_PATH,
    SessionRegistered,
};

use super::{Setup, next_events, rand_suffix};
use crate::harness::{Options, RedisServer};
use crate::push_service::{Answer, PushService, Received, Subscription};
use crate::support::{SERVICE, TEST_PUSH_SECRET, Wait, until};

const SUBJECT: &str = "mailto:ops@example.com";
/// The page a browser subscribed from (an old widget, or a forged request, may send its
/// query and fragment): the relay keeps and sends only `RETURN_PAGE` (with a resume token).
const PAGE: &str = "https://shop.example/help?order=7#top";
const RETURN_PAGE: &str = "https://shop.example/help";
const WITHIN: Duration = Duration::from_secs(10);

fn options(service: &PushService) -> Options {
    Options::sim(&[]).relay(&["--vapid-subject", SUBJECT, "--web-push-service", service.origin()])
}

fn texts() -> NotificationTexts {
    NotificationTexts {
        message: "{agent} hat geantwortet".into(),
        file: "{agent} hat eine Datei gesendet".into(),
        ended: "Ihr Chat wurde beendet".into(),
        agent: "Der Mitarbeiter".into(),
        wait: "Ein Mitarbeiter antwortet in etwa {minutes} Min.".into(),
    }
}

/// `POST .../push-subscription` for the chat; answers the status and body.
async fn opt_in(
    setup: &Setup,
    relay_url: &str,
    chat_id: &str,
    token: &str,
    subscription: &Subscription,
) -> Result<(u16, Value)> {
    let body = PushSubscriptionBody {
        endpoint: subscription.endpoint.clone(),
        keys: subscription.keys.clone(),
        page: Some(PAGE.into()),
        texts: texts(),
    };
    let response = setup
        .http
        .post(format!("{relay_url}{SESSIONS_PATH}/{chat_id}/{PUSH_SUBSCRIPTION}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// A registered chat whose visitor opted in and left (no socket).
async fn away_visitor(
    setup: &Setup,
    service: &PushService,
    include_payload: bool,
) -> Result<(Credentials, SessionRegistered, Subscription)> {
    let mut push = PushSubscription::new(format!("dev-{}", rand_suffix()), "");
    push.include_payload = include_payload;
    let (credentials, _) = setup.gms.create("Jane", async_push_user_data(&push)).await?;
    let registered = setup.register(&credentials).await?;
    let subscription = service.subscribe()?;
    let url = &setup.system.relay_url;
    let (status, body) =
        opt_in(setup, url, &credentials.chat_id, &registered.token, &subscription).await?;
    ensure!(status == 204, "opting in answered {status}: {body}");
    Ok((credentials, registered, subscription))
}

/// A push of the chat's agent line `text` at `index`, as GMS posts it with its payload.
fn agent_push(credentials: &Credentials, index: u64, text: &str) -> Value {
    json!({
        "deviceId": "dev", "message": format!("Agent: {text}"), "chatId": credentials.chat_id,
        "userId": credentials.user_id, "secureKey": credentials.secure_key,
        "alias": credentials.alias, "nextPosition": index + 1,
        "messages": [{"from": {"nickname": "Agent", "participantId": 2, "type": "Agent"},
                      "index": index, "type": "Message", "text": text, "utcTime": 1}]
    })
}

fn payload(received: &Received) -> (String, String) {
    let payload = received.payload.as_ref().expect("the payload decrypts");
    (payload.title.clone(), payload.body.clone())
}

fn bodies(received: &[Received]) -> Vec<String> {
    received.iter().map(|r| payload(r).1).collect()
}

fn sorted(mut texts: Vec<String>) -> Vec<String> {
    texts.sort();
    texts
}

async fn set_ewt(setup: &Setup, seconds: u64) -> Result<()> {
    let (status, text) = setup.admin.post("/sim/ewt", json!({ "seconds": seconds })).await?;
    ensure!(status == 204, "HTTP {status}: {text}");
    Ok(())
}

#[tokio::test]
async fn a_long_wait_is_told_once_to_an_away_visitor_and_never_once_an_agent_joined() -> Result<()>
{
    let service = PushService::start().await?;
    let queue = format!("{SERVICE}=chat_vq");
    let ewt = ["--ewt-queue", &queue, "--ewt-every", "0.2", "--ewt-notify-minutes", "5"];
    let setup = Setup::start(options(&service).relay(&ewt)).await?;
    set_ewt(&setup, 240).await?;
    let (waiting, _, _) = away_visitor(&setup, &service, true).await?;
    let (answered, _, _) = away_visitor(&setup, &service, true).await?;
    setup.admin.agent_says(&answered.chat_id, "I am here").await?;
    service.wait_for(1, WITHIN).await?;
    // Four minutes is not past five: nothing more for a while.
    let quiet = until("a notification", Duration::from_secs(1), async || {
        Ok(Wait::done_if(service.received().len() > 1, service.received().len()))
    });
    assert!(quiet.await.is_err(), "{:?}", bodies(&service.received()));

    // Ten minutes: the waiting visitor hears it once, in their words; the answered one not.
    set_ewt(&setup, 600).await?;
    let received = service.wait_for(2, WITHIN).await?;
    let told = received.last().and_then(|r| r.payload.clone().ok()).expect("decrypts");
    assert_eq!(told.chat_id, waiting.chat_id);
    assert_eq!(told.title, "Ein Mitarbeiter antwortet in etwa 10 Min.");
    let more = until("another notification", Duration::from_secs(2), async || {
        Ok(Wait::done_if(service.received().len() > 2, service.received().len()))
    });
    assert!(
        more.await.is_err(),
        "told twice or told the answered visitor: {:?}",
        bodies(&service.received())
    );
    setup.system.stop().await
}

#[tokio::test]
async fn an_agent_line_reaches_an_away_visitor_once_signed_encrypted_and_collapsible() -> Result<()>
{
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let (credentials, registered, _) = away_visitor(&setup, &service, true).await?;
    let key = registered.vapid_public_key.clone().expect("the relay offers Web Push");
    let chat_id = &credentials.chat_id;

    setup.admin.agent_says(chat_id, "Your parcel ships today").await?;
    let first = service.wait_for(1, WITHIN).await?;
    let vapid = first[0].vapid.as_ref().expect("the VAPID signature verifies");
    assert_eq!(vapid.key, key, "signed with the key the widget subscribed with");
    assert_eq!((vapid.subject.as_str(), vapid.audience.as_str()), (SUBJECT, service.origin()));
    assert!(vapid.expires_in > 12 * 3600 - 60, "expires with the TTL: {}", vapid.expires_in);
    let sent = first[0].payload.as_ref().expect("the payload decrypts");
    assert_eq!(sent.chat_id, *chat_id);
    assert_eq!(sent.title, "Agent hat geantwortet", "worded as the widget asked");
    assert_eq!(sent.body, "Your parcel ships today");
    // The page without its query or fragment, and in a fragment of its own a resume token,
    // so a browser that lost the chat adopts it.
    let url = sent.url.as_deref().expect("a page");
    let resume = url.strip_prefix(&format!("{RETURN_PAGE}#{RESUME_FRAGMENT}"));
    let claim = ResumeClaim { resume_token: resume.expect(url).to_owned() };
    let resumed = setup
        .http
        .post(format!("{}{RESUME_PATH}", setup.system.relay_url))
        .json(&claim)
        .send()
        .await?;
    assert_eq!(resumed.json::<ChatHandover>().await?.credentials, credentials);
    assert_eq!((first[0].ttl, first[0].urgency.as_deref()), (Some(43_200), Some("normal")));

    setup.admin.agent_says(chat_id, "Anything else?").await?;
    setup.admin.agent_says(chat_id, "Bye for now").await?;
    let all = service.wait_for(3, WITHIN).await?;
    assert_eq!(sorted(bodies(&all)), ["Anything else?", "Bye for now", "Your parcel ships today"]);
    let topic = first[0].topic.clone().expect("a topic");
    assert!(all.iter().all(|r| r.topic.as_ref() == Some(&topic)), "one topic per chat");
    assert!(topic.len() <= 32 && !topic.contains(chat_id.as_str()), "{topic}");
    setup.system.stop().await
}

#[tokio::test]
async fn without_preview_no_chat_text_reaches_the_push_service() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service).relay(&["--web-push-preview=false"])).await?;
    let (credentials, _, _) = away_visitor(&setup, &service, true).await?;
    setup.admin.agent_says(&credentials.chat_id, "Your account number is 4711").await?;
    let all = service.wait_for(1, WITHIN).await?;
    assert_eq!(payload(&all[0]), ("Agent hat geantwortet".into(), String::new()));
    let sent = serde_json::to_string(all[0].payload.as_ref().expect("decrypts"))?;
    assert!(!sent.contains("4711"), "{sent}");
    setup.system.stop().await
}

#[tokio::test]
async fn a_resent_push_notifies_nothing_twice() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let (credentials, _, _) = away_visitor(&setup, &service, true).await?;
    let chat_id = &credentials.chat_id;
    setup.admin.agent_says(chat_id, "one").await?;
    service.wait_for(1, WITHIN).await?;
    // The same push again, as GMS resends it when an acknowledgement is lost.
    let push = agent_push(&credentials, 2, "one");
    let query = format!("?secret={TEST_PUSH_SECRET}");
    for _ in 0..3 {
        assert_eq!(setup.push(&query, push.to_string()).await?, 200);
    }
    setup.admin.agent_says(chat_id, "two").await?;
    let all = service.wait_for(2, WITHIN).await?;
    assert_eq!(bodies(&all), ["one", "two"], "the resends notified nothing");
    setup.system.stop().await
}

#[tokio::test]
async fn no_notification_while_a_browser_follows_the_chat() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(true).await?;
    let chat_id = &credentials.chat_id;
    let subscription = service.subscribe()?;
    let url = &setup.system.relay_url;
    let (status, _) = opt_in(&setup, url, chat_id, &registered.token, &subscription).await?;
    assert_eq!(status, 204);

    setup.admin.agent_says(chat_id, "seen in the open tab").await?;
    // The agent's join comes first.
    while !next_events(&mut ws)
        .await?
        .iter()
        .any(|e| e.text.as_deref() == Some("seen in the open tab"))
    {}
    setup.acknowledged(chat_id, WITHIN).await?;
    ws.close().await?;
    // The tab is gone: the next line is notified, and it is the first notification.
    setup.admin.agent_says(chat_id, "after the tab closed").await?;
    let all = service.wait_for(1, WITHIN).await?;
    assert_eq!(bodies(&all), ["after the tab closed"]);
    setup.system.stop().await
}

#[tokio::test]
async fn a_gone_subscription_or_an_opt_out_stops_notifications() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let (gone, _, _) = away_visitor(&setup, &service, true).await?;
    let (opted_out, registered, _) = away_visitor(&setup, &service, true).await?;
    let (witness, _, _) = away_visitor(&setup, &service, true).await?;

    service.answer_next(&[Answer::Status(410)]);
    setup.admin.agent_says(&gone.chat_id, "to a browser that unsubscribed").await?;
    service.wait_for(1, WITHIN).await?;
    // Counted once the subscription is removed (no other test makes a push service say 410).
    until("the subscription removed", WITHIN, async || {
        let metrics = setup.metrics().await?;
        let gone = metrics.contains("relay_web_push_total{result=\"gone\"} 1");
        Ok(Wait::done_if(gone, metrics))
    })
    .await?;
    let off = setup
        .http
        .delete(format!(
            "{}{SESSIONS_PATH}/{}/{PUSH_SUBSCRIPTION}",
            setup.system.relay_url, opted_out.chat_id
        ))
        .bearer_auth(&registered.token)
        .send()
        .await?;
    assert_eq!(off.status().as_u16(), 204);

    for chat in [&gone, &opted_out, &witness] {
        setup.admin.agent_says(&chat.chat_id, "later").await?;
        setup.acknowledged(&chat.chat_id, WITHIN).await?;
    }
    // Only the witness is notified of "later", and nothing else arrives before it.
    let all = service.wait_for(2, WITHIN).await?;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[1].payload.as_ref().map(|p| p.chat_id.as_str()).ok(),
        Some(witness.chat_id.as_str())
    );
    setup.system.stop().await
}

#[tokio::test]
async fn throttled_and_failing_push_services_are_retried_as_they_ask() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let (credentials, _, _) = away_visitor(&setup, &service, true).await?;
    service.answer_next(&[Answer::RetryAfter(429, 1), Answer::Status(503)]);
    setup.admin.agent_says(&credentials.chat_id, "eventually").await?;
    let all = service.wait_for(3, WITHIN).await?;
    assert_eq!(all.iter().map(|r| r.answered).collect::<Vec<_>>(), [429, 503, 201]);
    assert!(all[1].at - all[0].at >= Duration::from_secs(1), "Retry-After is honoured");
    assert!(all[2].at - all[1].at >= Duration::from_millis(900), "5xx backs off");
    assert_eq!(bodies(&all), ["eventually"; 3]);
    setup.system.stop().await
}

#[tokio::test]
async fn a_push_without_payload_is_read_from_gms_and_the_end_is_notified() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let (credentials, _, _) = away_visitor(&setup, &service, false).await?;
    let chat_id = &credentials.chat_id;
    setup.admin.agent_says(chat_id, "read from the transcript").await?;
    let first = service.wait_for(1, WITHIN).await?;
    assert_eq!(
        payload(&first[0]),
        ("Agent hat geantwortet".into(), "read from the transcript".into())
    );

    setup.admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    let all = service.wait_for(2, WITHIN).await?;
    assert_eq!(payload(&all[1]), ("Ihr Chat wurde beendet".into(), String::new()));
    let end = all[1].payload.as_ref().expect("the payload decrypts");
    assert_eq!(end.url.as_deref(), Some(RETURN_PAGE), "an ended chat has no resume token");
    assert_eq!(all[1].urgency.as_deref(), Some("low"));
    setup.system.stop().await
}

#[tokio::test]
async fn subscriptions_are_checked_before_they_are_kept() -> Result<()> {
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service)).await?;
    let credentials = setup.chat(true).await?;
    let registered = setup.register(&credentials).await?;
    let (chat_id, token) = (credentials.chat_id.as_str(), registered.token.as_str());
    let url = setup.system.relay_url.clone();
    let good = service.subscribe()?;

    let (status, _) = opt_in(&setup, &url, chat_id, "forged", &good).await?;
    assert_eq!(status, 401, "a wrong token");
    let mut elsewhere = service.subscribe()?;
    elsewhere.endpoint = "http://169.254.169.254/latest".into();
    let (status, body) = opt_in(&setup, &url, chat_id, token, &elsewhere).await?;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("push service")), "{body}");
    let mut broken = service.subscribe()?;
    broken.keys.p256dh = "AAAA".into();
    let (status, body) = opt_in(&setup, &url, chat_id, token, &broken).await?;
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("AAAA"), "values are not echoed: {body}");
    let (status, _) = opt_in(&setup, &url, chat_id, token, &good).await?;
    assert_eq!(status, 204);

    let worker = setup.http.get(format!("{url}{SERVICE_WORKER_PATH}")).send().await?;
    assert_eq!(worker.status().as_u16(), 200);
    let kind = worker.headers()["content-type"].to_str()?.to_owned();
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert!(worker.text().await?.contains("notificationclick"));
    setup.system.stop().await?;

    // Without --vapid-subject: no key, no subscriptions, no service worker.
    let plain = Setup::start(Options::sim(&[])).await?;
    let credentials = plain.chat(true).await?;
    let registered = plain.register(&credentials).await?;
    assert_eq!(registered.vapid_public_key, None);
    let url = plain.system.relay_url.clone();
    let (status, body) =
        opt_in(&plain, &url, &credentials.chat_id, &registered.token, &good).await?;
    assert_eq!((status, body["code"].as_str()), (404, Some("web_push_disabled")));
    let worker = plain.http.get(format!("{url}{SERVICE_WORKER_PATH}")).send().await?;
    assert_eq!(worker.status().as_u16(), 404);
    plain.system.stop().await
}

#[tokio::test]
async fn two_relays_on_redis_notify_each_line_once_whichever_takes_the_push() -> Result<()> {
    let redis = RedisServer::start().await?;
    let service = PushService::start().await?;
    let setup = Setup::start(options(&service).relay(&["--redis-url", &redis.url()])).await?;
    let other = setup.system.add_relay().await?;
    let (credentials, registered, _) = away_visitor(&setup, &service, true).await?;
    let chat_id = &credentials.chat_id;
    // Both relays hold one VAPID key (kept in Redis).
    let there = setup
        .http
        .post(format!("{}{SESSIONS_PATH}", other.url))
        .json(&shared::relay_api::RegisterSession::new(SERVICE, &credentials, None))
        .send()
        .await?
        .json::<SessionRegistered>()
        .await?;
    assert_eq!(there.vapid_public_key, registered.vapid_public_key);

    // GMS delivers each push to one relay and resends it to the other.
    let query = format!("?secret={TEST_PUSH_SECRET}");
    let lines = ["first", "second", "third", "fourth"];
    for (n, text) in lines.iter().enumerate() {
        let index = 10 + n as u64;
        let push = agent_push(&credentials, index, text);
        let (a, b) = if n % 2 == 0 {
            (&setup.system.relay_url, &other.url)
        } else {
            (&other.url, &setup.system.relay_url)
        };
        let sends = [a, b]
            .map(|url| setup.http.post(format!("{url}{PUSH_PATH}{query}")).json(&push).send());
        let [x, y] = sends;
        let (x, y) = tokio::join!(x, y);
        assert_eq!((x?.status().as_u16(), y?.status().as_u16()), (200, 200));
    }
    let all = service.wait_for(lines.len(), WITHIN).await?;
    assert_eq!(sorted(bodies(&all)), sorted(lines.map(str::to_owned).to_vec()), "each line once");
    // A line after them all, through the second relay: still exactly one more.
    setup.admin.agent_says(chat_id, "last").await?;
    let all = service.wait_for(lines.len() + 1, WITHIN).await?;
    assert_eq!(all.len(), lines.len() + 1, "{:?}", bodies(&all));
    other.stop().await?;
    setup.system.stop().await
}
