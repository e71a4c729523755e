//! Fan-out of frames to WebSocket connections, by chat. Knows nothing of axum.
//!
//! Each connection has a bounded queue. Overflow policy: a connection whose queue is full
//! is a slow consumer; it is told to close (with a reconnect code) and loses nothing,
//! because the widget catches up from its transcript position. Other connections are
//! never held up by it.
//!
//! The queue is a deque behind a lock with one `Notify`, not a channel: an idle
//! connection then costs about a hundred bytes instead of a channel's kilobyte (its
//! shared state and first block of slots), which is most of what an idle visitor costs.
//! The hub also paces every connection's pings ([`heartbeat`]), so an idle socket has no
//! timer of its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::time::Duration;

use shared::relay_api::ServerFrame;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The heartbeat's slices: each tick pings one slice of the connections, so pings are
/// spread over the interval (in bursts that one worker wakes once for) rather than all due
/// at once.
const SLICES: u64 = 25;

/// A connection's id within the hub.
pub(crate) type ConnId = u64;

/// What a connection's socket task receives from the hub.
pub(crate) struct Connection {
    /// Its id.
    pub(crate) id: ConnId,
    outbox: Arc<Outbox>,
}

/// What the socket task does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Writes this frame, already serialized.
    Frame(Arc<str>),
    /// Closes: the queue overflowed, so frames were dropped and the widget must catch up.
    Slow,
    /// Pings the peer: its turn in the heartbeat came.
    Ping,
    /// Stops: the hub forgot the connection.
    Closed,
}

impl Connection {
    /// Waits for what to do next. Cancel-safe: a frame leaves the queue only when returned.
    pub(crate) async fn next(&self) -> Next {
        loop {
            {
                let mut queue = self.outbox.lock();
                if queue.slow {
                    return Next::Slow;
                }
                if let Some(frame) = queue.frames.pop_front() {
                    return Next::Frame(frame);
                }
                if queue.closed {
                    return Next::Closed;
                }
                if queue.ping {
                    queue.ping = false;
                    return Next::Ping;
                }
            }
            // A wake-up between the check and this wait is kept as the Notify's permit.
            self.outbox.ready.notified().await;
        }
    }
}

/// Frames waiting for one socket task, which is the only one waiting on `ready`.
struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    capacity: usize,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Arc<str>>,
    slow: bool,
    closed: bool,
    ping: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame; a full queue marks the connection slow.
    fn offer(&self, text: Arc<str>) -> bool {
        let mut queue = self.lock();
        if queue.closed {
            return false;
        }
        if queue.frames.len() >= self.capacity {
            if !queue.slow {
                queue.slow = true;
                metrics::counter!("relay_ws_slow_consumers_total").increment(1);
                self.ready.notify_one();
            }
            metrics::counter!("relay_ws_queue_drops_total").increment(1);
            return false;
        }
        queue.frames.push_back(text);
        drop(queue);
        self.ready.notify_one();
        metrics::counter!("relay_ws_frames_queued_total").increment(1);
        true
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    fn ping(&self) {
        self.lock().ping = true;
        self.ready.notify_one();
    }
}

struct Handle {
    outbox: Arc<Outbox>,
    chats: HashSet<String>,
}

/// The open connections, kept by heartbeat slice (`id % SLICES`) so that a tick visits only
/// its own: a scan of every connection filtered by slice was 8 % of an idle relay's CPU
/// (profiled at 10,000 sockets).
#[derive(Default)]
struct Connections {
    slices: [HashMap<ConnId, Handle>; SLICES as usize],
}

impl Connections {
    fn slice(&self, slice: u64) -> &HashMap<ConnId, Handle> {
        &self.slices[(slice % SLICES) as usize]
    }

    fn slice_of(&mut self, id: ConnId) -> &mut HashMap<ConnId, Handle> {
        &mut self.slices[(id % SLICES) as usize]
    }

    fn get(&self, id: &ConnId) -> Option<&Handle> {
        self.slice(*id).get(id)
    }

    fn get_mut(&mut self, id: &ConnId) -> Option<&mut Handle> {
        self.slice_of(*id).get_mut(id)
    }

    fn insert(&mut self, id: ConnId, handle: Handle) {
        self.slice_of(id).insert(id, handle);
    }

    fn remove(&mut self, id: &ConnId) -> Option<Handle> {
        self.slice_of(*id).remove(id)
    }

    fn len(&self) -> usize {
        self.slices.iter().map(HashMap::len).sum()
    }
}

#[derive(Default)]
struct Inner {
    connections: Connections,
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
        let outbox = Arc::new(Outbox {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
        });
        let handle = Handle { outbox: outbox.clone(), chats: HashSet::new() };
        self.lock().connections.insert(id, handle);
        metrics::gauge!("relay_ws_connections").increment(1.0);
        Connection { id, outbox }
    }

    /// Removes a connection and its subscriptions; answers the chats it subscribed to.
    pub(crate) fn disconnect(&self, id: ConnId) -> Vec<String> {
        let mut inner = self.lock();
        let mut chats = Vec::new();
        if let Some(handle) = inner.connections.remove(&id) {
            handle.outbox.close();
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
            handle.outbox.offer(text);
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
            .filter(|h| h.outbox.offer(text.clone()))
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

    /// Tells the connections of one heartbeat slice to ping their peer.
    fn ping_slice(&self, slice: u64) {
        let inner = self.lock();
        for handle in inner.connections.slice(slice).values() {
            handle.outbox.ping();
        }
    }
}

/// Pings every connection once per `every`, a slice at a time, until `shutdown`. One timer
/// for all sockets: per-socket timers cost an idle relay a third of its CPU in the timer
/// wheel (profiled at 10,000 sockets), and each woke a worker for one ping.
pub(crate) async fn heartbeat(hub: Hub, every: Duration, shutdown: CancellationToken) {
    let period = (every / u32::try_from(SLICES).unwrap_or(1)).max(Duration::from_millis(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate, and no connection is due yet.
    tick.tick().await;
    for slice in (0..SLICES).cycle() {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => hub.ping_slice(slice),
        }
    }
}

fn serialize(frame: &ServerFrame) -> Option<Arc<str>> {
    serde_json::to_string(frame).ok().map(Arc::from)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::FutureExt;
    use shared::relay_api::ServerFrame;

    use super::{Connection, Hub, Next, heartbeat};

    fn changed(chat: &str) -> ServerFrame {
        ServerFrame::Changed { chat_id: chat.to_owned() }
    }

    /// What the socket task would do now, without waiting.
    fn ready(connection: &Connection) -> Option<Next> {
        connection.next().now_or_never()
    }

    fn frame(text: &str) -> Option<Next> {
        Some(Next::Frame(Arc::from(text)))
    }

    #[test]
    fn frames_reach_the_subscribers_of_their_chat_only() {
        let hub = Hub::default();
        let a = hub.connect(8);
        let b = hub.connect(8);
        hub.subscribe(a.id, "c1");
        hub.subscribe(b.id, "c2");
        assert_eq!(hub.publish("c1", &changed("c1")), 1);
        assert_eq!(ready(&a), frame(r#"{"type":"changed","chatId":"c1"}"#));
        assert_eq!(ready(&a), None);
        assert_eq!(ready(&b), None);
        hub.unsubscribe(a.id, "c1");
        assert_eq!(hub.publish("c1", &changed("c1")), 0);
        hub.disconnect(b.id);
        assert_eq!(hub.subscribers("c2"), 0);
        assert_eq!(ready(&b), Some(Next::Closed));
    }

    #[test]
    fn a_full_queue_marks_only_that_connection_slow() {
        let hub = Hub::default();
        let slow = hub.connect(2);
        let fast = hub.connect(8);
        hub.subscribe(slow.id, "c");
        hub.subscribe(fast.id, "c");
        for _ in 0..3 {
            hub.publish("c", &changed("c"));
        }
        // Told to close before it writes what is queued: the widget catches up anyway.
        assert_eq!(ready(&slow), Some(Next::Slow));
        assert_eq!((0..3).filter(|_| matches!(ready(&fast), Some(Next::Frame(_)))).count(), 3);
        assert_eq!(ready(&fast), None);
    }

    #[tokio::test]
    async fn a_waiting_socket_task_wakes_for_a_frame_and_takes_it_once() {
        let hub = Hub::default();
        let connection = hub.connect(8);
        hub.subscribe(connection.id, "c");
        let publisher = hub.clone();
        let waiting = tokio::spawn(async move {
            let next = connection.next().await;
            (next, connection)
        });
        tokio::task::yield_now().await;
        publisher.publish("c", &changed("c"));
        let Ok((next, connection)) = waiting.await else { panic!("the task ended") };
        assert_eq!(next, Next::Frame(Arc::from(r#"{"type":"changed","chatId":"c"}"#)));
        assert_eq!(ready(&connection), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_pings_every_connection_once_per_interval_a_slice_at_a_time() {
        let hub = Hub::default();
        let connections: Vec<Connection> = (0..100).map(|_| hub.connect(8)).collect();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let beating =
            tokio::spawn(heartbeat(hub.clone(), Duration::from_secs(25), shutdown.clone()));
        let pinged = |connections: &[Connection]| {
            connections.iter().filter(|c| ready(c) == Some(Next::Ping)).count()
        };
        // One slice a second: four of the hundred each time, none twice.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(pinged(&connections), 4);
        tokio::time::sleep(Duration::from_secs(24)).await;
        assert_eq!(pinged(&connections), 96);
        assert_eq!(pinged(&connections), 0);
        // The next round pings each of them again.
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(pinged(&connections), 100);
        shutdown.cancel();
        assert!(beating.await.is_ok());
    }
}
