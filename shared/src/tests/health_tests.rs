//! Health bodies: configurable names found at any depth, and a 200 without them told apart
//! from no answer.

use crate::health::{ChatServerHealth, HealthKeys, HealthPoll, POLL_RESULTS};

fn keys(dbid: &str, pid: &str) -> HealthKeys {
    HealthKeys { dbid: dbid.to_owned(), pid: pid.to_owned() }
}

#[test]
fn health_keys_default_to_app_dbid_and_process_os_pid_in_three_spellings() {
    let defaults = HealthKeys::default();
    assert_eq!(defaults, keys("app_dbid", "process_os_pid"));
    for body in [
        br#"{"app_dbid":117,"process_os_pid":1}"#.as_slice(),
        br#"{"appDbid":117,"processOsPid":1}"#,
        br#"{"x":{"app-dbid":"117","process-os-pid":"1"}}"#,
    ] {
        let health = ChatServerHealth::parse_with(body, &defaults).expect("parses");
        assert_eq!((health.app_dbid.as_str(), health.process_os_pid), ("117", 1));
    }
}

#[test]
fn health_keys_are_configurable_and_searched_at_any_depth() {
    let custom = keys("dbid", "os_pid");
    let body = br#"{"status":"OK","app":{"dbid":"117","proc":[{"osPid":4243}]}}"#;
    let health = ChatServerHealth::parse_with(body, &custom).expect("parses");
    assert_eq!(health, ChatServerHealth { app_dbid: "117".into(), process_os_pid: 4243 });
    // The default names mean nothing to a relay told other names, and the reverse.
    let default_body = br#"{"app_dbid":117,"process_os_pid":1}"#;
    assert!(ChatServerHealth::parse_with(default_body, &custom).is_err());
    assert!(ChatServerHealth::parse(body).is_err());
}

#[test]
fn health_polls_tell_unreadable_bodies_from_unreachable_servers() {
    let defaults = HealthKeys::default();
    let readable = br#"{"kpi":{"app":{"app_dbid":"117","process_os_pid":"4243"}}}"#;
    assert_eq!(
        HealthPoll::judge(200, readable, &defaults),
        HealthPoll::Ok(ChatServerHealth { app_dbid: "117".into(), process_os_pid: 4243 })
    );
    for body in [
        br#"{"status":"OK","sessions":3}"#.as_slice(),
        br#"{"app_dbid":117}"#,
        br#"{"app_dbid":117,"process_os_pid":"abc"}"#,
        b"OK",
        b"",
    ] {
        let poll = HealthPoll::judge(200, body, &defaults);
        assert!(matches!(poll, HealthPoll::Unreadable(_)), "{poll:?}");
        assert_eq!(poll.result(), "unreadable");
    }
    // Any 2xx is an answer; anything else is no answer, whatever its body says.
    assert_eq!(HealthPoll::judge(204, readable, &defaults).result(), "ok");
    for status in [301, 404, 500, 503] {
        let poll = HealthPoll::judge(status, readable, &defaults);
        assert_eq!(poll, HealthPoll::Unreachable(format!("HTTP {status}")));
        assert_eq!(poll.result(), "unreachable");
    }
    assert_eq!(POLL_RESULTS, ["ok", "unreachable", "unreadable"]);
}

#[test]
fn an_outline_names_the_top_level_keys_and_no_value() {
    let body = br#"{"status":"OK","kpi":{"sessions":12},"dbid":"secret-ish 117","list":[1,2]}"#;
    let outline = crate::health::outline(body);
    assert_eq!(
        outline,
        r#"a JSON object with the keys "dbid" (a string), "kpi" (an object of 1 keys), "list" (an array of 2), "status" (a string)"#
    );
    assert!(!outline.contains("117") && !outline.contains("OK\""));
    assert_eq!(crate::health::outline(b"OK"), "not JSON (2 bytes)");
    assert_eq!(crate::health::outline(b"{}"), "an empty JSON object");
    assert_eq!(crate::health::outline(b"[1]"), "an array of 1 at the top");
    let many: serde_json::Map<String, serde_json::Value> =
        (0..25).map(|i| (format!("k{i:02}"), serde_json::Value::Null)).collect();
    let outline = crate::health::outline(serde_json::Value::Object(many).to_string().as_bytes());
    assert!(outline.ends_with("\"k19\" (null) and 5 more"), "{outline}");
    let forged = crate::health::outline(br#"{"a\nFAIL  forged":1}"#);
    assert!(!forged.contains('\n'), "{forged}");
}
