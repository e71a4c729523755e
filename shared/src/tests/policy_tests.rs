use std::time::Duration;

use crate::gms::{Answer, ChatResponse, RetryPolicy, Verdict};

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
