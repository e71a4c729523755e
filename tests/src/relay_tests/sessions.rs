use shared::gms::ChatOperation;
use shared::relay_api::SESSIONS_PATH;

use super::Setup;
use crate::harness::Options;

#[tokio::test]
async fn registration_validates_with_gms_and_returns_a_token_and_position() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(true).await?;
    let first = setup.register(&credentials).await?;
    assert_eq!(first.position, 2, "the visitor's own join is index 1");
    let again = setup.register(&credentials).await?;
    assert_eq!(again.token, first.token, "registration is idempotent");

    let mut wrong = credentials.clone();
    wrong.secure_key = "deadbeef".into();
    let (status, body) = setup.register_raw(&wrong).await?;
    assert_eq!((status, body["code"].as_str()), (403, Some("rejected_by_gms")));

    let url = format!("{}{SESSIONS_PATH}", setup.system.relay_url);
    for bad in [
        "{}",
        "not json",
        r#"{"service":"","chatId":"a","userId":"b","secureKey":"c","alias":"1"}"#,
    ] {
        let response = setup
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 400, "{bad}");
    }

    let ended = setup.chat(false).await?;
    setup.gms.call(&ChatOperation::Disconnect, &ended).await?;
    let (status, _) = setup.register_raw(&ended).await?;
    assert_eq!(status, 403, "an ended chat cannot be registered");
    setup.system.stop().await
}

#[tokio::test]
async fn a_chat_is_forgotten_only_with_its_token() -> anyhow::Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(true).await?;
    let registered = setup.register(&credentials).await?;
    let url = format!("{}{SESSIONS_PATH}/{}", setup.system.relay_url, credentials.chat_id);
    let delete = |token: &str| {
        setup.http.delete(&url).header("authorization", format!("Bearer {token}")).send()
    };
    assert_eq!(delete("forged").await?.status().as_u16(), 401);
    assert_eq!(setup.http.delete(&url).send().await?.status().as_u16(), 401);
    assert_eq!(delete(&registered.token).await?.status().as_u16(), 204);
    assert_eq!(delete(&registered.token).await?.status().as_u16(), 404);
    setup.system.stop().await
}
