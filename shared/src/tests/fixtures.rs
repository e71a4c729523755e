//! Literal bodies captured from real GMS deployments or the Genesys documentation (the
//! examples of `docs/protocol.md`, "GMS Chat API V2 as used here"), and the tokens of a
//! made-up chat.

use crate::gms::Credentials;

/// A chat's tokens: user `U`, key `K`, Chat Server `117`.
pub(super) fn tokens(chat_id: &str) -> Credentials {
    Credentials {
        chat_id: chat_id.into(),
        user_id: "U".into(),
        secure_key: "K".into(),
        alias: "117".into(),
    }
}

/// Request Chat response, documentation example.
pub(super) const CREATE: &str = r#"{"statusCode":0,"alias":"117","userId":"007555677B20000A","secureKey":"4ee15d7e1c343c8e",
 "messages":[{"from":{"nickname":"First Last","participantId":1,"type":"Client"},
              "index":1,"type":"ParticipantJoined","utcTime":1432845088000}],
 "chatId":"00048aAPEQJ8000U"}"#;

/// Send success, captured.
pub(super) const SEND_OK: &str = r#"{"messages":[],"chatEnded":false,"statusCode":0,"alias":"1323","secureKey":"02f8e3936f763afffcce",
 "userId":"052B5F58EBCF069A","chatId":"0008TaFN3SE300QU","nextPosition":3}"#;

/// Send failure after the session was gone, captured.
pub(super) const SEND_FAILED: &str = r#"{"messages":[],"chatEnded":true,"statusCode":2,"alias":"1323","chatId":"0008TaFN3SE300RT",
 "errors":[{"code":249,"advice":"Media server was not able to execute request. referenceId[10016629]"}]}"#;

/// File limits, captured: the limits sit in a `Notice` event.
pub(super) const FILE_LIMITS: &str = r#"{"messages":[{"from":{"nickname":"test","participantId":1,"type":"Client"},
  "text":"file-client-cfg-get","type":"Notice","utcTime":1554322581000,
  "userData":{"download-attempts":"2","upload-max-files":"5","delete-file":"odd",
    "upload-max-file-size":"10485760","used-download-attempts":"0","used-upload-max-total-size":"0",
    "upload-need-agent":"false","used-upload-max-files":"0","upload-max-total-size":"99614720",
    "upload-file-types":"jpeg:jpg:pdf:png:zip"}}],
 "chatEnded":false,"statusCode":0}"#;

/// An agent's file upload event, captured.
pub(super) const FILE_UPLOADED: &str = r#"{"from":{"nickname":"agent","participantId":2,"type":"Agent"},"index":10,
 "text":"00D25C4FD5580141","type":"FileUploaded","utcTime":1548735832000,
 "userData":{"file-document-id":"0002KaE4JJ9Y00BX","file-source":"ucs","file-upload-path":"/var/files",
             "file-id":"00D25C4FD5580141","file-upload-type":"file-system","file-size":"438",
             "file-name":"New Text Document.txt"}}"#;
