//! gms-sim as GMS behind an API gateway (`--require-header`): a request without the key
//! gets the gateway's 401 and fault, one with it reaches GMS, and browsers' preflights
//! are allowed to send it.

use shared::gms::{ChatOperation, ChatResponse, Verdict};
use shared::transcript::TranscriptPosition;

use super::Sim;

#[tokio::test]
async fn a_required_header_keeps_out_requests_without_it() -> anyhow::Result<()> {
    let sim = Sim::start(&["--require-header", "apikey: k-1", "--cors-origin", "*"]).await?;
    let create = ChatOperation::Create { visitor: Default::default(), user_data: vec![] };

    for client in [sim.gms.clone(), sim.gms.clone().with_header("apikey", "wrong")?] {
        let refused = client.raw(&create, None).await?;
        assert_eq!(refused.status, 401);
        let fault: serde_json::Value = serde_json::from_slice(&refused.body)?;
        assert_eq!(fault["fault"]["faultstring"], "Invalid ApiKey");
        assert_eq!(fault["fault"]["detail"]["errorcode"], "oauth.v2.InvalidApiKey");
        assert_eq!(
            ChatResponse::foreign_error(&refused.body).as_deref(),
            Some("Invalid ApiKey: oauth.v2.InvalidApiKey")
        );
    }
    assert!(sim.admin.get("/sim/chats").await?.as_array().is_some_and(Vec::is_empty));

    let keyed = sim.gms.clone().with_header("apikey", "k-1")?;
    let (credentials, _) = keyed.create("Jane", vec![]).await?;
    let refresh = ChatOperation::Refresh { position: TranscriptPosition::from_value(1) };
    assert_eq!(keyed.call(&refresh, &credentials).await?.verdict(), Verdict::Ok);
    // The chat's own operations are behind the gateway too.
    assert_eq!(sim.gms.raw(&refresh, Some(&credentials)).await?.status, 401);

    // A browser's preflight carries no key, and is told the key may be sent.
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/genesys/2/chat/s/c/refresh", sim.running.url()),
        )
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "apikey")
        .send()
        .await?;
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("apikey"), "{allowed:?}");
    sim.running.stop().await;
    Ok(())
}

#[test]
fn the_header_is_given_as_name_colon_value() {
    let parse = shared::gms::GmsHeader::parse;
    let header = parse(" apikey :  k:1 ").expect("valid");
    assert_eq!((header.name.as_str(), header.value.as_str()), ("apikey", "k:1"));
    assert!(parse("apikey").is_err());
    assert!(parse("api key: k").is_err());
    assert!(parse("Content-Type: text/plain").is_err());
    assert!(format!("{header:?}").contains("apikey") && !format!("{header:?}").contains("k:1"));
}
