//! The real relay with the real gms-sim, over sockets: push → frame → acknowledgement,
//! authentication, malformed input, registration, the WebSocket hub, durability across
//! kill -9, the periodic ping and graceful shutdown, and several relays on Redis.

mod capture;
mod check;
mod durability;
mod fuzz_http;
mod gateway;
mod ha;
mod health;
mod hostile_gms;
mod lifecycle;
mod ping;
mod push;
mod redis;
mod redis_cluster;
mod redis_ha;
mod security;
mod sessions;
mod store;
mod tokens;
mod web_push;
mod widget_files;
mod ws;

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;
use shared::gms::{Credentials, PushSubscription, async_push_user_data};
use shared::relay_api::{RegisterSession, ServerFrame, SessionRegistered};

use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{Options, System};
use crate::ws_client::WsClient;

pub(crate) const SERVICE: &str = "customer-support";

/// A system with clients for each side.
pub(crate) struct Setup {
    pub(crate) system: System,
    pub(crate) gms: GmsClient,
    pub(crate) admin: SimAdmin,
    pub(crate) http: reqwest::Client,
}

impl Setup {
    pub(crate) async fn start(options: Options) -> Result<Setup> {
        let system = System::start(options).await?;
        let gms = GmsClient::new(&system.gms.url(), SERVICE);
        let admin = SimAdmin::new(&system.gms.url());
        Ok(Setup { system, gms, admin, http: reqwest::Client::new() })
    }

    /// A push-subscribed async chat, as the widget creates it.
    pub(crate) async fn chat(&self, resend: bool) -> Result<Credentials> {
        let mut subscription = PushSubscription::new(format!("dev-{}", rand_suffix()), "");
        subscription.resend = resend;
        let (credentials, _) = self.gms.create("Jane", async_push_user_data(&subscription)).await?;
        Ok(credentials)
    }

    /// `POST /v1/sessions` with `body`, as it is.
    pub(crate) async fn post_registration(
        &self,
        body: &RegisterSession,
    ) -> Result<reqwest::Response> {
        let url = format!("{}/v1/sessions", self.system.relay_url);
        Ok(self.http.post(url).json(body).send().await?)
    }

    /// `POST /v1/sessions`: returns the HTTP status and the body.
    pub(crate) async fn register_raw(&self, credentials: &Credentials) -> Result<(u16, Value)> {
        let body = RegisterSession::new(SERVICE, credentials, None);
        let response = self.post_registration(&body).await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub(crate) async fn register(&self, credentials: &Credentials) -> Result<SessionRegistered> {
        let (status, body) = self.register_raw(credentials).await?;
        if status != 200 {
            bail!("registration answered {status}: {body}");
        }
        Ok(serde_json::from_value(body)?)
    }

    /// `count` chats, each created and registered.
    pub(crate) async fn registered_chats(&self, count: usize) -> Result<Vec<Credentials>> {
        let mut all = Vec::with_capacity(count);
        for _ in 0..count {
            let credentials = self.chat(false).await?;
            self.register(&credentials).await?;
            all.push(credentials);
        }
        Ok(all)
    }

    /// A registered chat with a subscribed WebSocket.
    pub(crate) async fn subscribed_chat(
        &self,
        resend: bool,
    ) -> Result<(Credentials, WsClient, SessionRegistered)> {
        let credentials = self.chat(resend).await?;
        let registered = self.register(&credentials).await?;
        let mut ws = WsClient::connect(&self.system.relay_url).await?;
        let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
        anyhow::ensure!(
            matches!(answer, ServerFrame::Subscribed { .. }),
            "subscribe answered {answer:?}"
        );
        Ok((credentials, ws, registered))
    }

    /// Waits until gms-sim has no push waiting for an acknowledgement for the chat.
    pub(crate) async fn acknowledged(&self, chat_id: &str, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let chat = self.admin.get(&format!("/sim/chats/{chat_id}")).await?;
            if chat["pendingPushes"] == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("pushes for {chat_id} still unacknowledged: {chat}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs a raw push body to the relay.
    pub(crate) async fn push(&self, query: &str, body: impl Into<reqwest::Body>) -> Result<u16> {
        let url = format!("{}/gms/push{query}", self.system.relay_url);
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    pub(crate) async fn metrics(&self) -> Result<String> {
        Ok(self.http.get(format!("{}/metrics", self.system.relay_url)).send().await?.text().await?)
    }
}

/// The next frame that is not a typing or join notice of no interest.
pub(crate) async fn next_events(ws: &mut WsClient) -> Result<Vec<shared::gms::ChatEvent>> {
    match ws.frame(Duration::from_secs(5)).await? {
        ServerFrame::Events { messages, .. } => Ok(messages),
        other => bail!("expected events, got {other:?}"),
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The value of a Prometheus counter line (summed over label sets matching `labels`).
pub(crate) fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(crate) fn test_secret_query() -> String {
    format!("?secret={}", crate::harness::TEST_PUSH_SECRET)
}
