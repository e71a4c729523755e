//! Proxy mode's Chat API: what the relay takes from a browser, and what it gives back.

use crate::gms::{
    ChatOperation, ChatResponse, Credentials, PushSubscription, RequestBody, Visitor,
};
use crate::proxy::{
    ProxyRefusal, RateClass, UploadData, read_operation, read_start, upload_user_data,
    without_tokens,
};
use crate::transcript::TranscriptPosition;

/// What the widget sends for `operation` in proxy mode: GMS's own path suffix and form,
/// encoded by `ChatOperation::encode` with tokens the widget does not have.
fn as_the_widget_sends(operation: &ChatOperation) -> (String, Vec<(String, String)>) {
    let tokenless = Credentials {
        chat_id: "chat1".to_owned(),
        user_id: String::new(),
        secure_key: String::new(),
        alias: String::new(),
    };
    let request = operation.encode("svc", Some(&tokenless));
    let path = crate::proxy::relay_path(&request.path);
    let suffix = path.strip_prefix("/v1/chats/svc/chat1/").expect("below the chat").to_owned();
    let RequestBody::Form(fields) = request.body else { panic!("a form") };
    assert!(fields.iter().all(|(k, _)| !["secureKey", "userId", "alias"].contains(&k.as_str())));
    (suffix, fields)
}

#[test]
fn every_offered_operation_reads_back_as_the_widget_encoded_it() {
    for operation in [
        ChatOperation::Send {
            message: "hello & good=day".to_owned(),
            message_type: Some("text".to_owned()),
            reply_to: None,
            position: TranscriptPosition::From(7),
        },
        ChatOperation::StartTyping { message: Some("hel".to_owned()) },
        ChatOperation::StopTyping { message: None },
        ChatOperation::Refresh { position: TranscriptPosition::From(12) },
        ChatOperation::Refresh { position: TranscriptPosition::All },
        ChatOperation::UpdateData { user_data: vec![("rating".to_owned(), "5".to_owned())] },
        ChatOperation::Disconnect,
        ChatOperation::FileLimits,
        ChatOperation::Download { file_id: "file-42".to_owned() },
    ] {
        let (suffix, fields) = as_the_widget_sends(&operation);
        assert_eq!(read_operation(&suffix, &fields), Ok(operation.clone()), "{suffix}");
    }
}

#[test]
fn operations_outside_the_list_are_refused() {
    for suffix in [
        "pushUrl",
        "customNotice",
        "updateNickname",
        "file/f1/delete",
        "file/../download",
        "file//download",
        "",
        "send/extra",
    ] {
        assert!(
            matches!(read_operation(suffix, &[]), Err(ProxyRefusal::NotOffered(_))),
            "{suffix:?}"
        );
    }
}

#[test]
fn fields_are_checked_before_gms_hears_of_them() {
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let refused = |suffix: &str, fields: Vec<(String, String)>| {
        matches!(read_operation(suffix, &fields), Err(ProxyRefusal::BadField(_)))
    };
    assert!(refused("send", form(&[])), "a line needs its text");
    assert!(refused("send", form(&[("message", &"x".repeat(8 * 1024 + 1))])));
    assert!(refused("refresh", form(&[])), "a refresh says from where");
    assert!(refused("refresh", form(&[("transcriptPosition", "-1")])));
    assert!(refused("updateData", form(&[("userData[GCTI_GMS_PushDeviceId]", "x")])));
    assert!(refused("updateData", form(&[("userData[gcti_chat_asyncmode]", "false")])));
    let many: Vec<(String, String)> =
        (0..65).map(|k| (format!("userData[k{k}]"), "v".to_owned())).collect();
    assert!(refused("updateData", many));
    // The chat's tokens in a form are not the browser's to choose: ignored, not used.
    let sent = read_operation("stopTyping", &form(&[("secureKey", "forged")]));
    assert_eq!(sent, Ok(ChatOperation::StopTyping { message: None }));
}

#[test]
fn a_start_keeps_the_form_and_the_sites_data_and_subscribes_only_as_the_relay_says() {
    let fields: Vec<(String, String)> = [
        ("nickname", "Ann"),
        ("emailAddress", "ann@example.com"),
        ("subject", "Billing"),
        ("userData[orderId]", "A-17"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let subscription = PushSubscription::new("relay-device", "");
    let Ok(ChatOperation::Create { visitor, user_data }) = read_start(&fields, &subscription)
    else {
        panic!("a create")
    };
    assert_eq!(
        visitor,
        Visitor {
            nickname: Some("Ann".to_owned()),
            email_address: Some("ann@example.com".to_owned()),
            subject: Some("Billing".to_owned()),
            ..Visitor::default()
        }
    );
    assert_eq!(user_data.first(), Some(&("orderId".to_owned(), "A-17".to_owned())));
    assert!(user_data.contains(&("GCTI_GMS_PushDeviceId".to_owned(), "relay-device".to_owned())));
    let mut hostile = fields;
    hostile.push(("userData[GCTI_GMS_PushProvider]".to_owned(), "elsewhere".to_owned()));
    assert!(read_start(&hostile, &subscription).is_err());
}

#[test]
fn an_upload_takes_its_description_apart_from_the_other_data() {
    let fields = vec![
        ("userData[file-description]".to_owned(), "the invoice".to_owned()),
        ("userData[kind]".to_owned(), "pdf".to_owned()),
    ];
    assert_eq!(
        upload_user_data(&fields),
        Ok(UploadData {
            description: Some("the invoice".to_owned()),
            user_data: vec![("kind".to_owned(), "pdf".to_owned())]
        })
    );
}

#[test]
fn an_answer_leaves_without_the_chats_tokens() {
    let body = br#"{"statusCode":0,"chatId":"c1","userId":"u1","secureKey":"s3cret",
        "alias":"117","nextPosition":3,"messages":[]}"#;
    let response = without_tokens(ChatResponse::parse(body).expect("an envelope"));
    let text = serde_json::to_string(&response).expect("json");
    assert!(!text.contains("s3cret") && !text.contains("u1") && !text.contains("117"), "{text}");
    assert!(text.contains("\"nextPosition\":3") && text.contains("\"chatId\":\"c1\""));
}

#[test]
fn each_operation_counts_against_its_rate() {
    let send = ChatOperation::Send {
        message: "x".to_owned(),
        message_type: None,
        reply_to: None,
        position: TranscriptPosition::None,
    };
    assert_eq!(RateClass::of(&send), RateClass::Send);
    assert_eq!(RateClass::of(&ChatOperation::StartTyping { message: None }), RateClass::Typing);
    assert_eq!(RateClass::of(&ChatOperation::Disconnect), RateClass::Other);
}
