//! The expected wait (`--ewt-queue`): every `--ewt-every`, for each chat service with a
//! queue and browsers on this relay following a chat of it, one request to GMS's EWT API
//! (however many chats wait), and a `wait` frame to those browsers. The widget shows it
//! until an agent joins; a GMS that answers nothing usable sends nothing.

use std::time::Duration;

use shared::ewt::{EwtApi, wait_seconds};
use shared::relay_api::ServerFrame;
use tokio_util::sync::CancellationToken;

use crate::config::EwtQueue;
use crate::gms::Gms;
use crate::peers::Peers;
use crate::sessions::Sessions;

/// Asks and tells until `stop`; returns at once without queues.
pub(crate) async fn run(
    queues: Vec<EwtQueue>,
    api: EwtApi,
    every: Duration,
    (sessions, peers, gms): (Sessions, Peers, Gms),
    stop: CancellationToken,
) {
    if queues.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let followed = peers.hub().chats();
        for EwtQueue { service, queue } in &queues {
            let waiting: Vec<&String> = followed
                .iter()
                .filter(|chat_id| sessions.get(chat_id).is_some_and(|r| &r.service == service))
                .collect();
            if waiting.is_empty() {
                continue;
            }
            let seconds = match gms.get_json(&api.path(queue), "ewt").await {
                Ok(answer) => wait_seconds(&answer, queue),
                Err(error) => {
                    tracing::debug!(service, queue, %error, "GMS gave no estimated wait");
                    None
                }
            };
            let Some(seconds) = seconds else { continue };
            metrics::gauge!("relay_ewt_seconds", "service" => service.clone()).set(seconds as f64);
            for chat_id in waiting {
                let frame = ServerFrame::Wait { chat_id: chat_id.clone(), seconds };
                peers.hub().publish(chat_id, &frame);
            }
        }
    }
}
