use serde_json::{Value, json};

use super::fixtures::*;
use crate::form;
use crate::gms::*;
use crate::transcript::TranscriptPosition;

fn value(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn roundtrip(text: &str) -> ChatResponse {
    let parsed = ChatResponse::parse(text.as_bytes()).expect("fixture parses");
    let back = serde_json::to_value(&parsed).expect("serialises");
    assert_eq!(back, value(text), "serialising gives back the captured body");
    parsed
}

#[test]
fn create_response_roundtrips_and_yields_credentials() {
    let response = roundtrip(CREATE);
    assert_eq!(response.verdict(), Verdict::Ok);
    let credentials = response.credentials().expect("create carries all tokens");
    assert_eq!(credentials.chat_id, "00048aAPEQJ8000U");
    assert_eq!(credentials.alias, "117");
    assert_eq!(response.next_position, None, "the documented example has no nextPosition");
    let joined = &response.messages[0];
    assert_eq!(joined.event_type, EventType::ParticipantJoined);
    assert_eq!(joined.index, Some(1));
    assert!(joined.from.is_client());
    assert_eq!(joined.utc_time, Some(1_432_845_088_000));
}

/// GMS 8.5.112 and later may leave out `userId` and `alias` (GMSLibrary decodes both as
/// optional): the chat starts with what there is, and requests carry only that.
#[test]
fn a_create_answer_without_user_id_and_alias_still_starts_the_chat() {
    let answer = br#"{"statusCode":0,"chatId":"C1","secureKey":"K1","messages":[]}"#;
    let credentials = ChatResponse::parse(answer).expect("parses").credentials().expect("tokens");
    assert_eq!((credentials.user_id.as_str(), credentials.alias.as_str()), ("", ""));
    let refresh = ChatOperation::Refresh { position: TranscriptPosition::All };
    let body = refresh.encode("svc", Some(&credentials)).form_body().expect("form");
    assert_eq!(body, "secureKey=K1&transcriptPosition=1");
    assert!(credentials.may_be_on("117") && credentials.may_be_on("118"));

    let without_key = br#"{"statusCode":0,"chatId":"C1","userId":"U","alias":"117"}"#;
    assert_eq!(ChatResponse::parse(without_key).expect("parses").credentials(), None);
    let stored = crate::json::from_str::<Credentials>(r#"{"chatId":"C1","secureKey":"K1"}"#);
    assert_eq!(stored, Some(credentials), "stored credentials without them are read back");
}

#[test]
fn send_success_roundtrips() {
    let response = roundtrip(SEND_OK);
    assert_eq!(response.verdict(), Verdict::Ok);
    assert_eq!(response.next_position, Some(3));
}

#[test]
fn send_failure_is_a_stop_with_the_chat_ended() {
    let response = roundtrip(SEND_FAILED);
    assert_eq!(response.verdict(), Verdict::Ended);
    assert_eq!(response.secure_key, None);
    assert_eq!(response.errors[0].code, 249);
    assert!(response.error_summary().starts_with("249 Media server"));
    let mut credentials = Credentials {
        chat_id: "c".into(),
        user_id: "u".into(),
        secure_key: "k".into(),
        alias: "117".into(),
    };
    assert!(!response.update_credentials(&mut credentials), "error fields are not trusted");
    assert_eq!(credentials.alias, "117");
}

#[test]
fn status_code_one_is_retry_and_unknown_codes_stop() {
    let retry =
        ChatResponse::parse(br#"{"statusCode":1,"errors":[{"code":8201}]}"#).expect("parses");
    assert_eq!(retry.verdict(), Verdict::Retry);
    let odd = ChatResponse::parse(br#"{"statusCode":7}"#).expect("parses");
    assert_eq!(odd.verdict(), Verdict::Stop);
    assert_eq!(odd.error_summary(), "statusCode 7");
    let ended = ChatResponse::parse(br#"{"statusCode":0,"chatEnded":true}"#).expect("parses");
    assert_eq!(ended.verdict(), Verdict::Ended);
}

#[test]
fn a_successful_response_updates_the_alias() {
    let mut credentials = roundtrip(CREATE).credentials().expect("tokens");
    let moved =
        ChatResponse::parse(br#"{"statusCode":0,"alias":"118","chatId":"00048aAPEQJ8000U"}"#)
            .expect("parses");
    assert!(moved.update_credentials(&mut credentials));
    assert_eq!(credentials.alias, "118");
    assert!(!moved.update_credentials(&mut credentials), "same alias again is no change");
}

#[test]
fn file_limits_come_from_the_notice() {
    let response = roundtrip(FILE_LIMITS);
    let limits = FileLimits::from_response(&response).expect("limits notice");
    assert_eq!(limits.upload_max_files, Some(5));
    assert_eq!(limits.upload_max_file_size, Some(10_485_760));
    assert_eq!(limits.upload_max_total_size, Some(99_614_720));
    assert_eq!(limits.download_attempts, Some(2));
    assert!(!limits.upload_need_agent);
    assert_eq!(limits.upload_file_types, ["jpeg", "jpg", "pdf", "png", "zip"]);
    assert_eq!(limits.delete_file.as_deref(), Some("odd"));
    assert!(limits.allows_file_name("Scan.PDF"));
    assert!(!limits.allows_file_name("run.exe"));
    assert!(!limits.allows_file_name("no-extension"));
}

#[test]
fn user_data_integers_and_booleans_become_text_and_the_rest_is_dropped() {
    let body = br#"{"statusCode":0,"userData":{"s":"x","n":-2,"f":1.5,"b":false,"z":null,"o":{"a":[1]},"l":[1,{"b":2}]}}"#;
    let response = ChatResponse::parse(body).expect("parses");
    let pairs: Vec<(&str, &str)> =
        response.user_data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(pairs, [("b", "false"), ("n", "-2"), ("s", "x")]);
    assert!(ChatResponse::parse(b"{\"statusCode\":0,\"userData\":null}").is_ok());
    assert!(ChatResponse::parse(b"\xff").is_err(), "not UTF-8");
}

#[test]
fn file_limits_fall_back_to_top_level_user_data() {
    let body = br#"{"statusCode":0,"messages":[],"userData":{"upload-max-files":"3","upload-need-agent":"true","upload-max-file-size":2097152}}"#;
    let response = ChatResponse::parse(body).expect("parses");
    let limits = FileLimits::from_response(&response).expect("top-level limits");
    assert_eq!(limits.upload_max_files, Some(3));
    assert_eq!(limits.upload_max_file_size, Some(2_097_152), "numbers are tolerated");
    assert!(limits.upload_need_agent);
    assert!(limits.allows_file_name("anything.bin"), "no type list means any type");
    let none = ChatResponse::parse(SEND_OK.as_bytes()).expect("parses");
    assert_eq!(FileLimits::from_response(&none), None);
}

#[test]
fn file_uploaded_event_roundtrips() {
    let event: ChatEvent = serde_json::from_str(FILE_UPLOADED).expect("parses");
    assert_eq!(event.event_type, EventType::FileUploaded);
    assert_eq!(event.user_data["file-name"], "New Text Document.txt");
    assert_eq!(event.from.party_type, "Agent");
    assert_eq!(serde_json::to_value(&event).expect("serialises"), value(FILE_UPLOADED));
}

#[test]
fn unknown_fields_and_event_types_are_kept() {
    let body = json!({
        "statusCode": 0, "monitored": true, "idleTimerExpire": 42,
        "messages": [{"from": {"nickname": "Bot", "participantId": 3, "type": "External"},
                      "index": 4, "type": "ReadReceiptSent", "utcTime": 1, "eventAttributes": {"a": 1}}]
    });
    let response = <ChatResponse as serde::Deserialize>::deserialize(&body).expect("tolerated");
    let event = &response.messages[0];
    assert_eq!(event.event_type, EventType::Other("ReadReceiptSent".into()));
    assert!(event.event_type.is_pushable());
    let again = serde_json::to_value(&response).expect("serialises");
    // An event's attributes are kept whole by both (rich messages live in them).
    assert_eq!(event.attributes.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(again["messages"][0]["eventAttributes"], json!({"a": 1}));
    let widget: ChatResponse =
        crate::json::from_str(&body.to_string()).expect("the widget reads it");
    let written: serde_json::Value =
        serde_json::from_str(&crate::json::to_string(&widget.messages))
            .expect("the widget writes JSON");
    assert_eq!(written[0]["eventAttributes"], json!({"a": 1}));
    // The relay keeps what it does not know; the widget skips it.
    #[cfg(feature = "unknown-fields")]
    {
        assert_eq!(response.extra["monitored"], json!(true));
        assert_eq!(again, body);
    }
    #[cfg(not(feature = "unknown-fields"))]
    assert!(again.get("monitored").is_none());
}

#[test]
fn event_types_keep_their_wire_names() {
    for name in ["ParticipantJoined", "Message", "TypingStopped", "IdleClose", "External"] {
        let t = EventType::from(name.to_owned());
        assert_eq!(t.as_str(), name);
    }
    assert!(!EventType::Notice.is_pushable());
    assert!(!EventType::FileDeleted.is_pushable());
    assert!(EventType::PushUrl.is_pushable());
}

#[test]
fn malformed_responses_are_errors() {
    for body in [&b""[..], b"null", b"[]", b"{}", b"{\"statusCode\":\"zero\"}", b"\xff\xfe"] {
        assert!(ChatResponse::parse(body).is_err(), "{body:?}");
    }
}

fn credentials() -> Credentials {
    Credentials {
        chat_id: "0008TaFN3SE300QU".into(),
        user_id: "052B5F58EBCF069A".into(),
        secure_key: "02f8e3936f763afffcce".into(),
        alias: "1323".into(),
    }
}

fn fields(request: &EncodedRequest) -> Vec<(String, String)> {
    match &request.body {
        RequestBody::Form(fields) => fields.clone(),
        RequestBody::Multipart { fields, .. } => fields.clone(),
    }
}

#[test]
fn create_encodes_visitor_and_bracketed_user_data() {
    let op = ChatOperation::Create {
        visitor: Visitor {
            nickname: Some("Jane".into()),
            email_address: Some("jane@example.com".into()),
            subject: Some("Billing & more".into()),
            ..Visitor::default()
        },
        user_data: async_push_user_data(&PushSubscription::new("dev-42", "gms-cluster")),
    };
    let request = op.encode("customer-support", None);
    assert_eq!(request.path, "/genesys/2/chat/customer-support");
    assert_eq!(request.operation, "create");
    let body = request.form_body().expect("form");
    assert!(body.starts_with(
        "nickname=Jane&emailAddress=jane%40example.com&subject=Billing+%26+more&userData%5BGCTI_Chat_AsyncMode%5D=true"
    ), "{body}");
    let decoded = form::decode(&body).expect("decodes");
    let user_data: Vec<_> =
        decoded.iter().filter_map(|(k, v)| Some((form::user_data_key(k)?, v.as_str()))).collect();
    assert_eq!(
        user_data,
        [
            ("GCTI_Chat_AsyncMode", "true"),
            ("GCTI_Chat_PushSubscribe", "true"),
            ("GCTI_GMS_PushDeviceType", "customhttp"),
            ("GCTI_GMS_PushDeviceId", "dev-42"),
            ("GCTI_GMS_NodeGroup", "gms-cluster"),
            ("GCTI_GMS_PushIncludePayload", "true"),
            ("GCTI_GMS_PushResend", "true"),
        ]
    );
}

#[test]
fn every_session_operation_encodes_its_path_and_fields() {
    let file =
        FilePart { file_name: "a.png".into(), content_type: "image/png".into(), bytes: vec![1, 2] };
    type Case = (ChatOperation, &'static str, Vec<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (
            ChatOperation::Send {
                message: "Hi there".into(),
                message_type: Some("text".into()),
                reply_to: None,
                position: TranscriptPosition::From(3),
            },
            "send",
            vec![("message", "Hi there"), ("messageType", "text"), ("transcriptPosition", "3")],
        ),
        (
            ChatOperation::StartTyping { message: Some("Hi".into()) },
            "startTyping",
            vec![("message", "Hi")],
        ),
        (ChatOperation::StopTyping { message: None }, "stopTyping", vec![]),
        (
            ChatOperation::Refresh { position: TranscriptPosition::None },
            "refresh",
            vec![("transcriptPosition", "0")],
        ),
        (ChatOperation::Disconnect, "disconnect", vec![]),
        (
            ChatOperation::PushUrl { url: "https://example.com/a?b=c".into() },
            "pushUrl",
            vec![("pushUrl", "https://example.com/a?b=c")],
        ),
        (
            ChatOperation::UpdateNickname { nickname: "J".into() },
            "updateNickname",
            vec![("nickname", "J")],
        ),
        (
            ChatOperation::CustomNotice { message: "n".into(), message_type: None },
            "customNotice",
            vec![("message", "n")],
        ),
        (
            ChatOperation::ReadReceipt { position: TranscriptPosition::From(7) },
            "readReceipt",
            vec![("transcriptPosition", "7")],
        ),
        (
            ChatOperation::UpdateData { user_data: vec![("order".into(), "42".into())] },
            "updateData",
            vec![("userData[order]", "42")],
        ),
        (ChatOperation::FileLimits, "file/limits", vec![]),
        (
            ChatOperation::Upload { file, description: Some("scan".into()), user_data: vec![] },
            "file",
            vec![("userData[file-description]", "scan")],
        ),
        (
            ChatOperation::Download { file_id: "00D25C4FD5580141".into() },
            "file/00D25C4FD5580141/download",
            vec![],
        ),
        (
            ChatOperation::Delete { file_id: "00D25C4FD5580141".into() },
            "file/00D25C4FD5580141/delete",
            vec![],
        ),
    ];
    for (op, suffix, extra) in cases {
        let request = op.encode("svc", Some(&credentials()));
        assert_eq!(request.path, format!("/genesys/2/chat/svc/0008TaFN3SE300QU/{suffix}"));
        let mut expected: Vec<(String, String)> = vec![
            ("secureKey".into(), "02f8e3936f763afffcce".into()),
            ("userId".into(), "052B5F58EBCF069A".into()),
            ("alias".into(), "1323".into()),
        ];
        expected.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        assert_eq!(fields(&request), expected, "{}", request.operation);
        assert_eq!(matches!(request.body, RequestBody::Multipart { .. }), op.name() == "upload");
    }
}

#[test]
fn path_segments_are_percent_encoded() {
    let mut c = credentials();
    c.chat_id = "a/b c".into();
    let request = ChatOperation::Disconnect.encode("my service", Some(&c));
    assert_eq!(request.path, "/genesys/2/chat/my%20service/a%2Fb%20c/disconnect");
}

#[test]
fn form_encoding_roundtrips_unicode_and_reserved_characters() {
    let fields = [("message", "Grüße & 100% \"ok\"+\n"), ("userData[k=v]", "")];
    let body = form::encode(&fields);
    assert!(!body.contains(' '));
    let decoded = form::decode(&body).expect("decodes");
    assert_eq!(decoded[0], ("message".to_owned(), "Grüße & 100% \"ok\"+\n".to_owned()));
    assert_eq!(decoded[1], ("userData[k=v]".to_owned(), String::new()));
    assert_eq!(form::decode("a=%zz"), Err(form::FormError::BadPercentEscape));
    assert_eq!(form::decode("a=%"), Err(form::FormError::BadPercentEscape));
    assert_eq!(form::decode("a=%ff"), Err(form::FormError::NotUtf8));
    assert_eq!(
        form::decode("&&flag&x=1").expect("lenient"),
        [("flag".into(), String::new()), ("x".into(), "1".into())]
    );
}

#[test]
fn push_subscription_without_node_group_or_resend() {
    let mut sub = PushSubscription::new("d", "");
    sub.resend = false;
    sub.provider = Some("AsyncSMSChat".into());
    let data = async_push_user_data(&sub);
    assert!(!data.iter().any(|(k, _)| k == "GCTI_GMS_NodeGroup"));
    assert!(data.contains(&("GCTI_GMS_PushResend".into(), "false".into())));
    assert!(data.contains(&("GCTI_GMS_PushProvider".into(), "AsyncSMSChat".into())));
}

mod properties {
    use proptest::prelude::*;

    use crate::{form, gms::ChatResponse, health::ChatServerHealth};

    proptest! {
        #[test]
        fn parsers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ChatResponse::parse(&bytes);
            let _ = ChatServerHealth::parse(&bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = form::decode(text);
            }
        }

        #[test]
        fn form_roundtrips(fields in proptest::collection::vec((".{0,12}", ".{0,24}"), 0..6)) {
            let body = form::encode(&fields);
            let decoded = form::decode(&body).expect("own encoding decodes");
            // Even an empty pair survives: it encodes as "=".
            prop_assert_eq!(decoded, fields);
        }
    }
}

#[test]
fn widget_config_is_embedded_in_the_host_page() {
    use crate::widget_config::WidgetConfig;
    let page = r#"<html><script type="application/json" id="gms-chat-config">{}</script><body></body></html>"#;
    let config = WidgetConfig {
        gms_url: "http://127.0.0.1:8090".into(),
        title: "</script>".into(),
        ..WidgetConfig::default()
    };
    let embedded = config.embed_in(page).expect("page has the element");
    assert!(embedded.contains(r#""gmsUrl":"http://127.0.0.1:8090""#), "{embedded}");
    assert!(embedded.ends_with("</script><body></body></html>"));
    let json = embedded
        .split("gms-chat-config\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("content");
    assert_eq!(WidgetConfig::from_json(json), config);
    assert_eq!(config.embed_in("<html></html>"), None);
    let added = config.embed_in("<html><head><title>t</title></head></html>").expect("adds one");
    assert!(added.contains(r#"id="gms-chat-config">{"gmsUrl""#), "{added}");
    assert!(added.ends_with("</script>\n</head></html>"), "{added}");
    let partial = WidgetConfig::from_json(r#"{"service":"sales"}"#);
    assert_eq!(partial.service, "sales");
    assert_eq!(partial.title, "Chat with us");
    assert_eq!(WidgetConfig::from_json("not json"), WidgetConfig::default());
}

#[test]
fn widget_gms_headers_keep_the_valid_ones_and_never_tell_a_value() {
    use crate::widget_config::WidgetConfig;
    let mut config = WidgetConfig::from_json(
        r#"{"gmsHeaders":{" apikey ":" k-test ","Cookie":"c-secret","X-Bad":"v\nsecret"}}"#,
    );
    let problems = config.check_gms_headers();
    assert_eq!(config.gms_headers.len(), 1);
    assert_eq!(config.gms_headers.get("apikey").map(String::as_str), Some("k-test"));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().all(|p| !p.contains("secret")), "{problems:?}");
    let mut none = WidgetConfig::default();
    assert!(none.check_gms_headers().is_empty());
    assert!(none.gms_headers.is_empty());
}

#[test]
fn ids_are_letters_digits_dashes_and_underscores_up_to_128() {
    use crate::gms::is_gms_id;
    for good in ["customer-support", "00048aABcd_19", "a", &"x".repeat(128)] {
        assert!(is_gms_id(good), "{good}");
    }
    for bad in ["", ".", "..", "a/b", "a.b", "a b", "%2e%2e", "é", &"x".repeat(129)] {
        assert!(!is_gms_id(bad), "{bad}");
    }
}

#[test]
fn a_body_that_is_no_envelope_still_says_what_went_wrong() {
    let gms = br#"{"message":"Chat service not found","exception":"com.genesyslab.gms.NotFound"}"#;
    assert_eq!(
        ChatResponse::foreign_error(gms).as_deref(),
        Some("Chat service not found: com.genesyslab.gms.NotFound")
    );
    let apigee = br#"{"fault":{"faultstring":"Invalid ApiKey","detail":{"errorcode":"oauth.v2.InvalidApiKey"}}}"#;
    assert_eq!(
        ChatResponse::foreign_error(apigee).as_deref(),
        Some("Invalid ApiKey: oauth.v2.InvalidApiKey")
    );
    for nothing in [&b"<html>502</html>"[..], b"{}", b"[]", b"{\"message\": 5}"] {
        assert_eq!(ChatResponse::foreign_error(nothing), None);
    }
    let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
    assert_eq!(ChatResponse::foreign_error(long.as_bytes()).map(|m| m.len()), Some(300));
}

#[test]
fn extra_gms_headers_are_checked_and_their_values_never_shown() {
    use crate::gms::{GmsHeader, checked_headers};
    let header = GmsHeader::parse("apikey:  s3cr3t, with comma ").expect("valid");
    assert_eq!((header.name.as_str(), header.value.as_str()), ("apikey", "s3cr3t, with comma"));
    assert_eq!(format!("{header:?}"), "\"apikey\": …");
    assert!(GmsHeader::parse("x-api-key:").is_ok(), "an empty value is a value");
    for bad in ["apikey", ": v", "api key: v", "apikey\u{e9}: v", "Host: h", "content-length: 1"] {
        assert!(GmsHeader::parse(bad).is_err(), "{bad:?}");
    }
    for reserved in ["Sec-Fetch-Mode: x", "Proxy-Authorization: x", "Cookie: a=b"] {
        assert!(GmsHeader::parse(reserved).is_err(), "{reserved:?}");
    }
    let problem = GmsHeader::new("apikey", "a\r\nInjected: 1").expect_err("a line break");
    assert!(!problem.contains("Injected"), "the value stays out of the message: {problem}");

    let given = [("apikey".to_owned(), "k".to_owned()), ("bad name".to_owned(), "v".to_owned())];
    let (valid, problems) = checked_headers(given.iter().map(|(n, v)| (n, v)));
    assert_eq!(valid, vec![GmsHeader::new("apikey", "k").expect("valid")]);
    assert_eq!(problems.len(), 1);
}
