//! Fan-out of frames to WebSocket connections, by chat. Knows nothing of axum.
//!
//! Each connection has a bounded queue. Overflow policy: a connection whose queue is full
//! is a slow consumer; it is told to close (with a reconnect code) and loses nothing,
//! because the widget catches up from its transcript position. Other connections are
//! never held up by it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use shared::relay_api::ServerFrame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A connection's id within the hub.
pub(crate) type ConnId = u64;

/// What a connection's socket task receives: serialized frames, and a token that is
/// cancelled when it fell behind.
pub(crate) struct Connection {
    /// Its id.
    pub(crate) id: ConnId,
    /// Frames to send, already serialized.
    pub(crate) frames: mpsc::Receiver<Arc<str>>,
    /// Cancelled when the queue overflowed.
    pub(crate) slow: CancellationToken,
}

struct Handle {
    queue: mpsc::Sender<Arc<str>>,
    slow: CancellationToken,
    chats: HashSet<String>,
}

#[derive(Default)]
struct Inner {
    connections: HashMap<ConnId, Handle>,
    subscribers: HashMap<String, HashSet<ConnId>>,
}

/// The subscription registry. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Hub {
    inner: Arc<Mutex<Inner>>,
    next_id: Arc<AtomicU64>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection with a queue of `capacity` frames.
    pub(crate) fn connect(&self, capacity: usize) -> Connection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, frames) = mpsc::channel(capacity.max(1));
        let slow = CancellationToken::new();
        let handle = Handle { queue, slow: slow.clone(), chats: HashSet::new() };
        self.lock().connections.insert(id, handle);
        metrics::gauge!("relay_ws_connections").increment(1.0);
        Connection { id, frames, slow }
    }

    /// Removes a connection and its subscriptions; answers the chats it subscribed to.
    pub(crate) fn disconnect(&self, id: ConnId) -> Vec<String> {
        let mut inner = self.lock();
        let mut chats = Vec::new();
        if let Some(handle) = inner.connections.remove(&id) {
            for chat in handle.chats {
                if let Some(set) = inner.subscribers.get_mut(&chat) {
                    set.remove(&id);
                    if set.is_empty() {
                        inner.subscribers.remove(&chat);
                    }
                }
                chats.push(chat);
            }
            metrics::gauge!("relay_ws_connections").decrement(1.0);
        }
        chats
    }

    /// Subscribes a connection to a chat.
    pub(crate) fn subscribe(&self, id: ConnId, chat_id: &str) {
        let mut inner = self.lock();
        let Some(handle) = inner.connections.get_mut(&id) else { return };
        handle.chats.insert(chat_id.to_owned());
        inner.subscribers.entry(chat_id.to_owned()).or_default().insert(id);
    }

    /// Whether a connection subscribes to a chat.
    pub(crate) fn is_subscribed(&self, id: ConnId, chat_id: &str) -> bool {
        self.lock().connections.get(&id).is_some_and(|h| h.chats.contains(chat_id))
    }

    /// How many chats a connection subscribes to.
    pub(crate) fn subscriptions(&self, id: ConnId) -> usize {
        self.lock().connections.get(&id).map_or(0, |h| h.chats.len())
    }

    /// Unsubscribes a connection from a chat; answers whether it was subscribed.
    pub(crate) fn unsubscribe(&self, id: ConnId, chat_id: &str) -> bool {
        let mut inner = self.lock();
        let was = inner.connections.get_mut(&id).is_some_and(|h| h.chats.remove(chat_id));
        if let Some(set) = inner.subscribers.get_mut(chat_id) {
            set.remove(&id);
            if set.is_empty() {
                inner.subscribers.remove(chat_id);
            }
        }
        was
    }

    /// Sends a frame to one connection (replies such as `subscribed`).
    pub(crate) fn send_to(&self, id: ConnId, frame: &ServerFrame) {
        let Some(text) = serialize(frame) else { return };
        let inner = self.lock();
        if let Some(handle) = inner.connections.get(&id) {
            offer(handle, text);
        }
    }

    /// Sends a frame to every subscriber of its chat; returns how many got it.
    pub(crate) fn publish(&self, chat_id: &str, frame: &ServerFrame) -> usize {
        let Some(text) = serialize(frame) else { return 0 };
        self.publish_text(chat_id, &text)
    }

    /// The same with a frame already serialized (by another relay).
    pub(crate) fn publish_text(&self, chat_id: &str, text: &Arc<str>) -> usize {
        let inner = self.lock();
        let Some(ids) = inner.subscribers.get(chat_id) else { return 0 };
        ids.iter()
            .filter_map(|id| inner.connections.get(id))
            .filter(|h| offer(h, text.clone()))
            .count()
    }

    /// Every chat some connection subscribes to.
    pub(crate) fn chats(&self) -> Vec<String> {
        self.lock().subscribers.keys().cloned().collect()
    }

    /// How many connections are open.
    pub(crate) fn connections(&self) -> usize {
        self.lock().connections.len()
    }

    /// How many connections subscribe to a chat.
    pub(crate) fn subscribers(&self, chat_id: &str) -> usize {
        self.lock().subscribers.get(chat_id).map_or(0, HashSet::len)
    }
}

fn serialize(frame: &ServerFrame) -> Option<Arc<str>> {
    serde_json::to_string(frame).ok().map(Arc::from)
}

/// Queues a frame; a full queue marks the connection slow.
fn offer(handle: &Handle, text: Arc<str>) -> bool {
    match handle.queue.try_send(text) {
        Ok(()) => {
            metrics::counter!("relay_ws_frames_queued_total").increment(1);
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            if !handle.slow.is_cancelled() {
                metrics::counter!("relay_ws_slow_consumers_total").increment(1);
                handle.slow.cancel();
            }
            metrics::counter!("relay_ws_queue_drops_total").increment(1);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use shared::relay_api::ServerFrame;

    use super::Hub;

    fn changed(chat: &str) -> ServerFrame {
        ServerFrame::Changed { chat_id: chat.to_owned() }
    }

    #[test]
    fn frames_reach_the_subscribers_of_their_chat_only() {
        let hub = Hub::default();
        let mut a = hub.connect(8);
        let mut b = hub.connect(8);
        hub.subscribe(a.id, "c1");
        hub.subscribe(b.id, "c2");
        assert_eq!(hub.publish("c1", &changed("c1")), 1);
        assert_eq!(
            a.frames.try_recv().as_deref().ok(),
            Some(r#"{"type":"changed","chatId":"c1"}"#)
        );
        assert!(b.frames.try_recv().is_err());
        hub.unsubscribe(a.id, "c1");
        assert_eq!(hub.publish("c1", &changed("c1")), 0);
        hub.disconnect(b.id);
        assert_eq!(hub.subscribers("c2"), 0);
    }

    #[test]
    fn a_full_queue_marks_only_that_connection_slow() {
        let hub = Hub::default();
        let slow = hub.connect(2);
        let mut fast = hub.connect(8);
        hub.subscribe(slow.id, "c");
        hub.subscribe(fast.id, "c");
        for _ in 0..3 {
            hub.publish("c", &changed("c"));
        }
        assert!(slow.slow.is_cancelled());
        assert!(!fast.slow.is_cancelled());
        assert_eq!((0..3).filter(|_| fast.frames.try_recv().is_ok()).count(), 3);
    }
}
