//! The expected wait (`--ewt-queue`): every `--ewt-every`, for each chat service with a
//! queue and browsers on this relay following a chat of it (or, with
//! `--ewt-notify-minutes`, visitors who turned Web Push on), one request to GMS's EWT API
//! however many chats wait, and a `wait` frame to those browsers. The widget shows it until
//! an agent joins; a GMS that answers nothing usable sends nothing. A wait past
//! `--ewt-notify-minutes` is said by Web Push to a visitor who left (`WebPush::long_wait`:
//! once per chat, and not once an agent has joined).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use shared::ewt::{EwtApi, minutes, wait_seconds};
use shared::relay_api::ServerFrame;
use tokio_util::sync::CancellationToken;

use crate::config::EwtQueue;
use crate::gms::Gms;
use crate::peers::Peers;
use crate::sessions::Sessions;
use crate::store::ChatRecord;

/// How long before a chat is offered to Web Push's long-wait notification again (the
/// notification decides: the visitor may still be there, or have been told already).
const OFFER_AGAIN: Duration = Duration::from_secs(600);

/// Asks and tells until `stop`; returns at once without queues.
pub(crate) async fn run(
    queues: Vec<EwtQueue>,
    (api, every, notify_minutes): (EwtApi, Duration, u64),
    (sessions, peers, gms): (Sessions, Peers, Gms),
    stop: CancellationToken,
) {
    if queues.is_empty() {
        return;
    }
    let mut offered: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        offered.retain(|_, at| at.elapsed() < OFFER_AGAIN);
        let followed = peers.hub().chats();
        for EwtQueue { service, queue } in &queues {
            let waiting: Vec<&String> = followed
                .iter()
                .filter(|chat_id| sessions.get(chat_id).is_some_and(|r| &r.service == service))
                .collect();
            // Visitors who may hear of a long wait by Web Push, each offered once in a while
            // (the notification's own checks say whether they are away, told or answered).
            let away: Vec<ChatRecord> = match peers.web_push() {
                Some(_) if notify_minutes > 0 => sessions
                    .ids()
                    .iter()
                    .filter(|chat_id| !offered.contains_key(*chat_id))
                    .filter_map(|chat_id| sessions.get(chat_id))
                    .filter(|r| &r.service == service && r.web_push.is_some())
                    .collect(),
                _ => Vec::new(),
            };
            if waiting.is_empty() && away.is_empty() {
                continue;
            }
            let seconds = match gms.get_json(&api.path(queue), "ewt").await {
                Ok(answer) => wait_seconds(&answer, queue),
                Err(error) => {
                    tracing::debug!(service, queue, %error, "GMS gave no estimated wait");
                    None
                }
            };
            // Without an estimate, the browsers are told so: they stop showing the last one.
            for chat_id in waiting {
                let frame = ServerFrame::Wait { chat_id: chat_id.clone(), seconds };
                peers.hub().publish(chat_id, &frame);
            }
            let Some(seconds) = seconds else { continue };
            metrics::gauge!("relay_ewt_seconds", "service" => service.clone()).set(seconds as f64);
            if let Some(web_push) = peers.web_push().filter(|_| seconds > notify_minutes * 60) {
                for record in away {
                    offered.insert(record.credentials.chat_id.clone(), Instant::now());
                    web_push.long_wait(record, minutes(seconds));
                }
            }
        }
    }
}
