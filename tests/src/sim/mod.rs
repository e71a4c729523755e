//! gms-sim over real HTTP: the Chat API, files, push and resend, HA, timers, the admin API.

mod api;
mod files;
mod gateway;
mod ha;
mod push;
mod refusals;
mod timers;

use std::time::Duration;

use anyhow::Result;
use clap::Parser as _;
use shared::gms::{
    ChatOperation, ChatResponse, Credentials, PushSubscription, async_push_user_data,
};
use shared::transcript::TranscriptPosition;

use crate::gms_client::{GmsClient, SimAdmin};
use crate::support::{SERVICE, Wait, until};

/// A running simulator with a client and the admin API.
pub(crate) struct Sim {
    pub(crate) running: gms_sim::Running,
    pub(crate) gms: GmsClient,
    pub(crate) admin: SimAdmin,
}

impl Sim {
    pub(crate) async fn start(extra: &[&str]) -> Result<Sim> {
        let mut args = vec!["gms-sim", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let running = gms_sim::start(gms_sim::Config::try_parse_from(args)?).await?;
        let gms = GmsClient::new(&running.url(), SERVICE);
        let admin = SimAdmin::new(&running.url());
        Ok(Sim { running, gms, admin })
    }

    pub(crate) async fn refresh(
        &self,
        credentials: &Credentials,
        position: u64,
    ) -> Result<ChatResponse> {
        let operation =
            ChatOperation::Refresh { position: TranscriptPosition::from_value(position) };
        self.gms.call(&operation, credentials).await
    }

    /// Refreshes until `done` holds for the response, for asynchronous effects (the bot,
    /// the timers); gives up after `within`.
    pub(crate) async fn refresh_until(
        &self,
        credentials: &Credentials,
        within: Duration,
        done: impl Fn(&ChatResponse) -> bool,
    ) -> Result<ChatResponse> {
        until("the transcript's condition", within, async || {
            let response = self.refresh(credentials, 1).await?;
            Ok(if done(&response) {
                Wait::Done(response)
            } else {
                Wait::Still(format!("{response:?}"))
            })
        })
        .await
    }
}

/// The user data of an async chat subscribed to customhttp push.
pub(crate) fn push_user_data(device_id: &str, resend: bool) -> Vec<(String, String)> {
    let mut subscription = PushSubscription::new(device_id, "gms-cluster");
    subscription.resend = resend;
    async_push_user_data(&subscription)
}
