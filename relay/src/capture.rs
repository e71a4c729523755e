//! The first push body of each chat registered with `capture` (`relay check --capture`),
//! redacted, so an operator can report what their GMS sends. Kept in memory and, with
//! several relays, in Redis, so whichever relay took the push, any relay answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::peers::Peers;
use crate::store::ChatRecord;

/// Chats whose body memory keeps: a capture is one operator's check at a time, so a few
/// suffice, and with bodies of at most `--push-body-limit` (64 KiB by default) this bounds
/// memory to a few MiB. Beyond it the oldest capture is dropped.
const IN_MEMORY: usize = 64;

/// How long Redis keeps a capture: the check reads it within seconds of the push.
const IN_REDIS: Duration = Duration::from_secs(3600);

/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Captures {
    kept: Arc<Mutex<VecDeque<(String, String)>>>,
    peers: Peers,
    tasks: TaskTracker,
}

impl Captures {
    /// Redis writes run on `tasks`, so a push never waits for them.
    pub(crate) fn new(peers: Peers, tasks: TaskTracker) -> Captures {
        Captures { kept: Arc::default(), peers, tasks }
    }

    /// Keeps `body` for the chat unless a body is kept already; the push goes on at once,
    /// whatever happens here. Every secure key the relay holds for the chat is redacted
    /// too, wherever the body puts it.
    pub(crate) fn keep(
        &self,
        chat_id: &str,
        body: &[u8],
        record: &ChatRecord,
        pushed: Option<&str>,
    ) {
        // This relay kept (and offered Redis) one already: a later push is no first.
        if self.lock().iter().any(|(id, _)| id == chat_id) {
            return;
        }
        let proposed = record.proposed.as_ref().map(|p| p.secure_key.as_str());
        let secrets: Vec<&str> = [Some(record.credentials.secure_key.as_str()), proposed, pushed]
            .into_iter()
            .flatten()
            .collect();
        let text = shared::push::redacted_body(body, &secrets);
        {
            let mut kept = self.lock();
            if !kept.iter().any(|(id, _)| id == chat_id) {
                if kept.len() >= IN_MEMORY {
                    kept.pop_front();
                }
                kept.push_back((chat_id.to_owned(), text.clone()));
            }
        }
        if self.peers.shared() {
            let (peers, chat_id) = (self.peers.clone(), chat_id.to_owned());
            self.tasks.spawn(async move {
                if let Err(error) = peers.keep_capture(&chat_id, &text, IN_REDIS).await {
                    tracing::debug!(chat = ?chat_id, %error, "could not keep the captured push in Redis");
                }
            });
        }
    }

    /// The body kept for the chat: Redis's (the first push any relay took) when there is
    /// Redis, else (or when Redis does not answer) this relay's.
    pub(crate) async fn get(&self, chat_id: &str) -> Option<String> {
        match self.peers.capture(chat_id).await {
            Ok(Some(body)) => return Some(body),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(chat = ?chat_id, %error, "could not read the captured push from Redis");
            }
        }
        self.memory(chat_id)
    }

    fn memory(&self, chat_id: &str) -> Option<String> {
        self.lock().iter().find(|(id, _)| id == chat_id).map(|(_, body)| body.clone())
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(String, String)>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::task::TaskTracker;

    use super::{Captures, IN_MEMORY};
    use crate::store::{ChatRecord, Observation, Source};

    fn record(chat_id: &str) -> ChatRecord {
        let seen = Observation {
            secure_key: Some("K-held".into()),
            capture: true,
            ..Observation::new(1, Source::Gms)
        };
        ChatRecord::create(chat_id, &seen, "svc").expect("a record")
    }

    #[tokio::test]
    async fn the_first_body_is_kept_redacted_and_memory_is_bounded() {
        let captures = Captures::new(crate::peers::Peers::alone(), TaskTracker::new());
        assert_eq!(captures.get("C").await, None);
        let first = br#"{"chatId":"C","secureKey":"K-held","note":"K-pushed K-held"}"#;
        captures.keep("C", first, &record("C"), Some("K-pushed"));
        captures.keep("C", br#"{"chatId":"C","second":true}"#, &record("C"), None);
        let kept = captures.get("C").await.expect("kept");
        assert!(kept.contains(r#""chatId":"C""#) && !kept.contains("second"), "{kept}");
        assert!(!kept.contains("K-held") && !kept.contains("K-pushed"), "{kept}");
        for n in 0..IN_MEMORY {
            let id = format!("other-{n}");
            captures.keep(&id, b"{}", &record(&id), None);
        }
        assert_eq!(captures.get("C").await, None, "the oldest went");
        assert!(captures.get(&format!("other-{}", IN_MEMORY - 1)).await.is_some());
    }
}
