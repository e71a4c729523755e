//! Chats as the widget makes them: its service, the user data that subscribes a chat to
//! customhttp push, and the registration with the relay.

use std::time::Duration;

use anyhow::Result;
use shared::gms::{PushSubscription, async_push_user_data};
use shared::relay_api::{RegisterSession, SESSIONS_PATH, SessionRegistered};

use super::Wait;

/// The GMS chat service every test chats on (the relay's and the widget's default).
pub const SERVICE: &str = "customer-support";

/// The user data of an async chat subscribed to customhttp push for `device_id`, with
/// GMS's resend on or off.
pub fn push_user_data(device_id: &str, resend: bool) -> Vec<(String, String)> {
    let mut subscription = PushSubscription::new(device_id, "");
    subscription.resend = resend;
    async_push_user_data(&subscription)
}

/// `POST {SESSIONS_PATH}` with `body` to the relay at `relay_url`. A 503 (the relay's
/// store or Redis briefly unavailable, as on a machine busy with disk writes) is tried
/// again for up to 10 s, as the widget registers again; anything else but a success is an
/// error.
pub async fn register(
    http: &reqwest::Client,
    relay_url: &str,
    body: &RegisterSession,
) -> Result<SessionRegistered> {
    let url = format!("{relay_url}{SESSIONS_PATH}");
    super::until("the relay accepts the registration", Duration::from_secs(10), async || {
        let response = http.post(&url).json(body).send().await?;
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(Wait::Still(response.status()));
        }
        Ok(Wait::Done(response.error_for_status()?.json().await?))
    })
    .await
}
