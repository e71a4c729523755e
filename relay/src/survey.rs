//! Visitors' ratings of chats that ended before they rated (the agent ended them), handed
//! to the operator's `--survey-webhook`: a JSON `POST` signed with HMAC-SHA256 under
//! `--survey-webhook-secret` (`X-Gms-Chat-Signature: sha256=<hex>`), retried with backoff.
//! The queue is bounded: a full one refuses the rating (503), it never grows unbounded;
//! deliveries queued when the relay stops are lost (said in README).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use shared::relay_api::SurveyAnswer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Ratings waiting for the webhook at most.
const QUEUE: usize = 1000;
/// Attempts per rating: 1 s, 2 s, 4 s … between them, about four minutes in all.
const ATTEMPTS: u32 = 9;
/// The signature's header.
pub(crate) const SIGNATURE: &str = "x-gms-chat-signature";

/// The webhook's queue; cheap to clone.
#[derive(Clone)]
pub(crate) struct Webhook {
    queue: mpsc::Sender<Vec<u8>>,
}

/// The queue is full: the webhook is not keeping up.
#[derive(Debug)]
pub(crate) struct Full;

impl Webhook {
    /// Starts the one delivery task, which stops with `stop`.
    pub(crate) fn start(
        url: String,
        secret: Vec<u8>,
        timeout: Duration,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> anyhow::Result<Webhook> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let (queue, deliveries) = mpsc::channel(QUEUE);
        tasks.spawn(deliver(http, url, secret, deliveries, stop));
        Ok(Webhook { queue })
    }

    /// Queues a rating of `chat_id` (on `service`, when the relay still holds the chat),
    /// made now.
    pub(crate) fn offer(
        &self,
        chat_id: &str,
        service: Option<&str>,
        answer: &SurveyAnswer,
    ) -> Result<(), Full> {
        let body = json!({
            "chatId": chat_id,
            "service": service,
            "scale": answer.scale,
            "rating": answer.rating,
            "comment": answer.comment,
            "ratedAt": crate::store::now_millis(),
        });
        self.queue.try_send(body.to_string().into_bytes()).map_err(|_| {
            metrics::counter!("relay_survey_webhook_total", "result" => "refused").increment(1);
            Full
        })
    }
}

/// The signature of `body` under `secret`, as the header carries it.
pub(crate) fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn deliver(
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    mut deliveries: mpsc::Receiver<Vec<u8>>,
    stop: CancellationToken,
) {
    loop {
        let body = tokio::select! {
            () = stop.cancelled() => return,
            body = deliveries.recv() => match body { Some(body) => body, None => return },
        };
        let signed = signature(&secret, &body);
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            let sent = http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE, &signed)
                .body(body.clone())
                .send()
                .await;
            let delivered = sent.as_ref().is_ok_and(|r| r.status().is_success());
            if delivered {
                metrics::counter!("relay_survey_webhook_total", "result" => "delivered")
                    .increment(1);
                break;
            }
            if attempt == ATTEMPTS {
                metrics::counter!("relay_survey_webhook_total", "result" => "failed").increment(1);
                let status = sent.map(|r| r.status().as_u16()).ok();
                tracing::warn!(?status, "the survey webhook did not take a rating: dropped");
                break;
            }
            metrics::counter!("relay_survey_webhook_total", "result" => "retried").increment(1);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(120));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        let signed = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            signed,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
