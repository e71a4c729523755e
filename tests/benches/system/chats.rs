//! Chats created in gms-sim the way the widget creates them, optionally registered with
//! the relay.

use anyhow::Result;
use futures_util::StreamExt;
use shared::gms::{Credentials, PushSubscription, async_push_user_data};
use shared::relay_api::{RegisterSession, SessionRegistered};
use system_tests::gms_client::GmsClient;

pub(crate) const SERVICE: &str = "customer-support";

/// A chat and, once registered, the relay's subscription token.
pub(crate) struct BenchChat {
    pub(crate) credentials: Credentials,
    pub(crate) device_id: String,
    pub(crate) token: Option<String>,
}

/// Creates `count` chats (device ids `{label}-{i}`) and registers them with `relay_url`
/// when given.
pub(crate) async fn create(
    gms_url: &str,
    relay_url: Option<&str>,
    label: &str,
    count: usize,
) -> Result<Vec<BenchChat>> {
    let gms = GmsClient::new(gms_url, SERVICE);
    let http = reqwest::Client::new();
    futures_util::stream::iter(0..count)
        .map(|i| {
            let (gms, http) = (gms.clone(), http.clone());
            let device_id = format!("{label}-{i}");
            async move {
                let subscription = PushSubscription::new(device_id.clone(), "");
                let (credentials, _) =
                    gms.create("Visitor", async_push_user_data(&subscription)).await?;
                let token = match relay_url {
                    None => None,
                    Some(relay) => Some(register(&http, relay, &credentials, &device_id).await?),
                };
                Ok(BenchChat { credentials, device_id, token })
            }
        })
        .buffered(32)
        .collect::<Vec<Result<BenchChat>>>()
        .await
        .into_iter()
        .collect()
}

async fn register(
    http: &reqwest::Client,
    relay: &str,
    credentials: &Credentials,
    device_id: &str,
) -> Result<String> {
    let body = RegisterSession::new(SERVICE, credentials, Some(device_id));
    let registered: SessionRegistered = http
        .post(format!("{relay}/v1/sessions"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(registered.token)
}
