use std::time::Duration;

use crate::gms::{Answer, Attempts, ChatResponse, Next, RetryPolicy, Verdict};

fn envelope(json: &str) -> ChatResponse {
    ChatResponse::parse(json.as_bytes()).expect("parses")
}

#[test]
fn answers_are_ok_ended_retry_or_stop() {
    let cases = [
        (r#"{"statusCode":0}"#, Verdict::Ok),
        (r#"{"statusCode":0,"chatEnded":false}"#, Verdict::Ok),
        (r#"{"statusCode":0,"chatEnded":true}"#, Verdict::Ended),
        (r#"{"statusCode":1,"chatEnded":false}"#, Verdict::Retry),
        (r#"{"statusCode":2,"chatEnded":true,"errors":[{"code":249}]}"#, Verdict::Ended),
        (r#"{"statusCode":2,"chatEnded":false,"errors":[{"code":8210}]}"#, Verdict::Stop),
        (r#"{"statusCode":2}"#, Verdict::Stop),
        (r#"{"statusCode":9}"#, Verdict::Stop),
    ];
    for (json, verdict) in cases {
        assert_eq!(Verdict::of(Answer::Envelope(&envelope(json))), verdict, "{json}");
    }
    assert_eq!(Verdict::of(Answer::Http(503)), Verdict::Retry);
    assert_eq!(Verdict::of(Answer::Http(429)), Verdict::Retry);
    assert_eq!(Verdict::of(Answer::Http(404)), Verdict::Stop);
    assert_eq!(Verdict::of(Answer::Network), Verdict::Retry);
}

#[test]
fn waits_double_up_to_the_cap_and_stop_with_the_attempts() {
    let policy = RetryPolicy {
        attempts: 6,
        first: Duration::from_millis(100),
        max: Duration::from_millis(500),
    };
    let full: Vec<_> = (1..6).map(|n| policy.wait_after(n, 1.0)).collect();
    let ms = |n: u64| Some(Duration::from_millis(n));
    assert_eq!(full, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    assert_eq!(policy.wait_after(6, 1.0), None, "six attempts: no seventh");
    assert_eq!(policy.wait_after(0, 1.0), None);
    assert_eq!(policy.wait_after(1, 0.0), ms(50), "jitter keeps at least half");
    assert_eq!(policy.wait_after(1, 7.0), ms(100), "a random number out of range is clamped");
    assert_eq!(RetryPolicy::ONCE.wait_after(1, 0.5), None);
    assert_eq!(RetryPolicy::RECONNECT.wait_after(1_000_000, 1.0), Some(Duration::from_secs(30)));
}

#[test]
fn attempts_wait_between_retries_and_give_up_when_none_is_left() {
    let policy =
        RetryPolicy { attempts: 3, first: Duration::from_millis(100), max: Duration::from_secs(1) };
    let mut attempts = Attempts::new(policy);
    assert_eq!(attempts.after(Verdict::Retry, 1.0), Next::Wait(Duration::from_millis(100)));
    assert_eq!(attempts.after(Verdict::Retry, 1.0), Next::Wait(Duration::from_millis(200)));
    assert_eq!(attempts.after(Verdict::Retry, 1.0), Next::GiveUp, "three attempts in all");
    for verdict in [Verdict::Ok, Verdict::Ended, Verdict::Stop] {
        assert_eq!(Attempts::new(policy).after(verdict, 0.5), Next::Done(verdict));
    }
    assert_eq!(Attempts::new(RetryPolicy::ONCE).after(Verdict::Retry, 0.5), Next::GiveUp);
}

/// The widget and the chaos visitors hand the machine the same input for the same last
/// answer: a statusCode 1 given up on is no answer, any other envelope is judged by it.
#[test]
fn a_call_settles_into_the_machines_input_one_way() {
    use crate::visitor::{GmsResult, NetFailure};
    let retry = ChatResponse::parse(br#"{"statusCode":1}"#).expect("parses");
    assert_eq!(GmsResult::settled(Ok(retry)), GmsResult::Failed(NetFailure::Network));
    let refused = ChatResponse::parse(br#"{"statusCode":2}"#).expect("parses");
    assert_eq!(GmsResult::settled(Ok(refused.clone())), GmsResult::Answer(Box::new(refused)));
    let http = Err(NetFailure::Http(503));
    assert_eq!(GmsResult::settled(http), GmsResult::Failed(NetFailure::Http(503)));
    assert_eq!(NetFailure::Http(503).verdict(), Verdict::Retry);
    assert_eq!(NetFailure::Http(404).verdict(), Verdict::Stop);
    assert_eq!(NetFailure::Network.verdict(), Verdict::Retry);
}

#[test]
fn the_relays_registration_answer_is_judged_one_way() {
    use crate::visitor::Registration;
    let body = r#"{"token":"t","position":4,"vapidPublicKey":"k"}"#;
    let registered = Registration::Registered {
        token: "t".into(),
        position: 4,
        push_key: Some("k".into()),
        identity: None,
    };
    assert_eq!(Registration::of(200, body), registered);
    assert_eq!(Registration::of(200, "not json"), Registration::Failed);
    assert_eq!(Registration::of(403, r#"{"code":"refused","message":"m"}"#), Registration::Refused);
    assert_eq!(Registration::of(502, ""), Registration::Failed);
}

#[test]
fn the_relays_websocket_url_follows_its_scheme() {
    use crate::relay_api::ws_url;
    assert_eq!(ws_url("http://127.0.0.1:8091"), "ws://127.0.0.1:8091/v1/ws");
    assert_eq!(ws_url("https://chat.example.com/"), "wss://chat.example.com/v1/ws");
    assert_eq!(ws_url("https://chat.example.com/relay"), "wss://chat.example.com/relay/v1/ws");
}
