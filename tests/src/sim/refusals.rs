//! Every refusal gms-sim gives, over real HTTP: its statusCode and error code, and that its
//! `chatEnded` agrees with what a refresh of the same chat reports right after.

use anyhow::{Context as _, Result};
use serde_json::json;
use shared::gms::{ChatOperation, ChatResponse, Credentials, FilePart, Visitor};

use super::Sim;
use crate::support::SERVICE;

/// One request as a client could send it, malformed or not.
struct Case {
    name: &'static str,
    suffix: String,
    fields: Vec<(&'static str, String)>,
    /// Multipart without a `file` part instead of a form.
    multipart: bool,
}

impl Case {
    fn form(name: &'static str, suffix: &str, fields: Vec<(&'static str, String)>) -> Case {
        Case { name, suffix: suffix.to_owned(), fields, multipart: false }
    }
}

/// The 14 session operations with everything they need, for the given credentials.
fn every_operation(credentials: &Credentials) -> Vec<Case> {
    let with = |extra: &[(&'static str, &str)]| {
        let mut fields = vec![
            ("secureKey", credentials.secure_key.clone()),
            ("userId", credentials.user_id.clone()),
            ("alias", credentials.alias.clone()),
        ];
        fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    };
    vec![
        Case::form("send", "send", with(&[("message", "hi")])),
        Case::form("startTyping", "startTyping", with(&[])),
        Case::form("stopTyping", "stopTyping", with(&[])),
        Case::form("refresh", "refresh", with(&[("transcriptPosition", "1")])),
        Case::form("pushUrl", "pushUrl", with(&[("pushUrl", "https://example.com")])),
        Case::form("updateNickname", "updateNickname", with(&[("nickname", "J")])),
        Case::form("customNotice", "customNotice", with(&[("message", "n")])),
        Case::form("readReceipt", "readReceipt", with(&[])),
        Case::form("updateData", "updateData", with(&[("userData[a]", "b")])),
        Case::form("fileLimits", "file/limits", with(&[])),
        Case { name: "upload", suffix: "file".into(), fields: with(&[]), multipart: true },
        Case::form("download", "file/NOFILE/download", with(&[])),
        Case::form("delete", "file/NOFILE/delete", with(&[])),
        Case::form("disconnect", "disconnect", with(&[])),
    ]
}

async fn send(sim: &Sim, chat_id: &str, case: &Case) -> Result<ChatResponse> {
    let url = format!("{}/genesys/2/chat/{SERVICE}/{chat_id}/{}", sim.running.url(), case.suffix);
    let request = reqwest::Client::new().post(url);
    let request = if case.multipart {
        let mut form = reqwest::multipart::Form::new();
        for (key, value) in &case.fields {
            form = form.text(*key, value.clone());
        }
        request.multipart(form)
    } else {
        let fields: Vec<(String, String)> =
            case.fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(shared::form::encode(&fields))
    };
    let body = request.send().await?.bytes().await?;
    ChatResponse::parse(&body)
        .with_context(|| format!("{}: {}", case.name, String::from_utf8_lossy(&body)))
}

/// Sends the case, checks statusCode and error code, and that `chatEnded` is what a refresh
/// of the chat says now.
async fn expect_refusal(
    sim: &Sim,
    credentials: &Credentials,
    case: &Case,
    status_code: i64,
    code: i64,
) -> Result<()> {
    let refused = send(sim, &credentials.chat_id, case).await?;
    let what = format!("{} on {}: {refused:?}", case.name, credentials.chat_id);
    assert_eq!(refused.status_code, status_code, "{what}");
    assert_eq!(refused.errors.first().map(|e| e.code), Some(code), "{what}");
    let seen = sim.refresh(credentials, 0).await?;
    assert_eq!(refused.chat_ended, Some(seen.chat_ended.unwrap_or(false)), "{what}");
    Ok(())
}

#[tokio::test]
async fn refusals_on_a_live_chat_never_say_it_ended() -> Result<()> {
    let sim = Sim::start(&["--download-attempts", "1", "--upload-max-file-size", "100"]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;

    let mut wrong_key = credentials.clone();
    wrong_key.secure_key = "0000".into();
    let mut wrong_user = credentials.clone();
    wrong_user.user_id = "FFFF".into();
    for case in every_operation(&wrong_key) {
        expect_refusal(&sim, &credentials, &case, 2, 8210).await?;
    }
    for case in every_operation(&wrong_user) {
        expect_refusal(&sim, &credentials, &case, 2, 8201).await?;
    }

    let valid = every_operation(&credentials);
    let without = |name: &str, field: &str| {
        let case = valid.iter().find(|c| c.name == name).expect("operation");
        Case {
            name: case.name,
            suffix: case.suffix.clone(),
            fields: case.fields.iter().filter(|(k, _)| *k != field).cloned().collect(),
            multipart: case.multipart,
        }
    };
    let missing = [
        without("send", "message"),
        without("pushUrl", "pushUrl"),
        without("updateNickname", "nickname"),
        without("upload", "file"),
    ];
    for case in &missing {
        expect_refusal(&sim, &credentials, case, 2, 400).await?;
    }
    for name in ["download", "delete"] {
        let case = valid.iter().find(|c| c.name == name).expect("operation");
        expect_refusal(&sim, &credentials, case, 2, 207).await?;
    }

    // The file limits and download attempts, through the documented encoding.
    let upload = |name: &str, size: usize| ChatOperation::Upload {
        file: FilePart {
            file_name: name.into(),
            content_type: "application/octet-stream".into(),
            bytes: vec![b'x'; size],
        },
        description: None,
        user_data: vec![],
    };
    let uploaded = sim.gms.call(&upload("a.txt", 3), &credentials).await?;
    let file_id = uploaded.user_data.get("file-id").cloned().context("file-id")?;
    for (operation, code) in [
        (upload("run.exe", 1), 203),
        (upload("big.txt", 101), 202),
        (ChatOperation::Download { file_id: file_id.clone() }, 206),
    ] {
        if let ChatOperation::Download { .. } = operation {
            sim.gms.raw(&operation, Some(&credentials)).await?; // the one attempt allowed
        }
        let refused = sim.gms.call(&operation, &credentials).await?;
        assert_eq!((refused.status_code, refused.errors[0].code), (2, code), "{refused:?}");
        assert_eq!(refused.chat_ended, Some(false), "{refused:?}");
    }

    sim.admin.ok("/sim/faults", json!({"statusCode1": 1})).await?;
    let refresh = valid.iter().find(|c| c.name == "refresh").expect("refresh");
    expect_refusal(&sim, &credentials, refresh, 1, 8201).await?;

    let live = sim.refresh(&credentials, 0).await?;
    assert_eq!((live.status_code, live.chat_ended), (0, Some(false)), "still running");
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn refusals_on_an_ended_or_unknown_chat_say_it_ended() -> Result<()> {
    let sim = Sim::start(&[]).await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;
    sim.gms.call(&ChatOperation::Disconnect, &credentials).await?;
    let ended = sim.refresh(&credentials, 1).await?;
    assert_eq!((ended.status_code, ended.chat_ended), (0, Some(true)), "the end stays readable");

    for case in every_operation(&credentials).iter().filter(|c| c.name != "refresh") {
        expect_refusal(&sim, &credentials, case, 2, 249).await?;
    }
    let mut wrong_key = credentials.clone();
    wrong_key.secure_key = "0000".into();
    for case in &every_operation(&wrong_key) {
        expect_refusal(&sim, &credentials, case, 2, 8210).await?;
    }

    let mut unknown = credentials.clone();
    unknown.chat_id = "NoSuchChat".into();
    for case in &every_operation(&unknown) {
        expect_refusal(&sim, &unknown, case, 2, 249).await?;
    }
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_create_ends_nothing() -> Result<()> {
    let sim = Sim::start(&[]).await?;
    let create = ChatOperation::Create { visitor: Visitor::default(), user_data: vec![] };
    let refused = ChatResponse::parse(&sim.gms.raw(&create, None).await?.body)?;
    assert_eq!((refused.status_code, refused.errors[0].code), (2, 161));
    assert_eq!(refused.chat_ended, Some(false), "no chat exists, so none ended");
    sim.running.stop().await;
    Ok(())
}
