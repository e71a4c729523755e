//! Chats created in gms-sim the way the widget creates them, optionally registered with
//! the relay.

use anyhow::Result;
use futures_util::StreamExt;
use shared::gms::Credentials;
use shared::relay_api::RegisterSession;
use system_tests::gms_client::GmsClient;
use system_tests::support::{SERVICE, push_user_data, register};

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
                let (credentials, _) =
                    gms.create("Visitor", push_user_data(&device_id, true)).await?;
                let token = match relay_url {
                    None => None,
                    Some(relay) => {
                        let body = RegisterSession::new(SERVICE, &credentials, Some(&device_id));
                        Some(register(&http, relay, &body).await?.token)
                    }
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
