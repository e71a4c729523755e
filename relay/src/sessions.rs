//! The chats the relay knows: an in-memory copy of the store for reads, changed only by a
//! single writer task, and only after the store has the change. The writer groups
//! concurrent changes into one commit (group commit), so throughput does not fall to one
//! fsync per push, and it merges every change into the record as it is at that moment, so
//! concurrent observations of one chat are never lost nor applied out of order.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{Backend, Change, ChatRecord, Observation};

/// Changes waiting for the writer; senders wait when it is full (backpressure to GMS).
const WRITE_QUEUE: usize = 8192;
/// Most changes in one commit.
const MAX_BATCH: usize = 2048;

/// Why a change could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the session store failed: {0}")]
pub(crate) struct StoreError(String);

/// One change asked of the writer.
enum Op {
    /// Merge an observation into a chat, creating it with `service` when it carries every
    /// token and `create` is set.
    Observe { chat_id: String, seen: Observation, create: Option<String> },
    /// Forget a chat.
    Remove { chat_id: String },
    /// A Chat Server's process id.
    Server { alias: String, pid: u64 },
}

/// What the writer answers: the chat's record once durable (None: it does not exist).
type Reply = Result<Option<ChatRecord>, StoreError>;

/// The durable state, as committed.
#[derive(Default)]
struct State {
    chats: HashMap<String, ChatRecord>,
    /// Push device id → (registered_at, chat id) of its chats, the latest last.
    devices: HashMap<String, BTreeSet<(u64, String)>>,
    servers: HashMap<String, u64>,
}

impl State {
    fn put(&mut self, record: ChatRecord) {
        let chat_id = record.credentials.chat_id.clone();
        self.unindex(&chat_id);
        if let Some(device) = &record.device_id {
            self.devices
                .entry(device.clone())
                .or_default()
                .insert((record.registered_at, chat_id.clone()));
        }
        self.chats.insert(chat_id, record);
    }

    fn delete(&mut self, chat_id: &str) {
        self.unindex(chat_id);
        self.chats.remove(chat_id);
    }

    fn unindex(&mut self, chat_id: &str) {
        let Some(old) = self.chats.get(chat_id) else { return };
        let Some(device) = &old.device_id else { return };
        if let Some(set) = self.devices.get_mut(device) {
            set.remove(&(old.registered_at, chat_id.to_owned()));
            if set.is_empty() {
                self.devices.remove(device);
            }
        }
    }
}

/// Cheap to clone; every clone shares the same state and writer.
#[derive(Clone)]
pub(crate) struct Sessions {
    state: Arc<Mutex<State>>,
    writes: mpsc::Sender<(Op, oneshot::Sender<Reply>)>,
}

impl Sessions {
    /// Loads everything, then starts the writer. It stops once `stop` is cancelled and
    /// what was queued before is written, so cancel it last.
    pub(crate) fn start(
        backend: Arc<dyn Backend>,
        stop: CancellationToken,
    ) -> anyhow::Result<(Sessions, tokio::task::JoinHandle<()>)> {
        let stored = backend.load_all()?;
        tracing::info!(chats = stored.chats.len(), "session store loaded");
        let mut state = State { servers: stored.servers, ..State::default() };
        for record in stored.chats {
            state.put(record);
        }
        let state = Arc::new(Mutex::new(state));
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(writer(queue, state.clone(), backend, stop));
        Ok((Sessions { state, writes }, writer))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of one record.
    pub(crate) fn get(&self, chat_id: &str) -> Option<ChatRecord> {
        self.lock().chats.get(chat_id).cloned()
    }

    /// The chat a push device registered most recently, for pushes that carry no chat id.
    pub(crate) fn by_device(&self, device_id: &str) -> Option<String> {
        self.lock().devices.get(device_id)?.last().map(|(_, chat_id)| chat_id.clone())
    }

    /// The process id last seen for a Chat Server, from before a restart too.
    pub(crate) fn server_pid(&self, alias: &str) -> Option<u64> {
        self.lock().servers.get(alias).copied()
    }

    /// Whether the writer still takes changes.
    pub(crate) fn writer_alive(&self) -> bool {
        !self.writes.is_closed()
    }

    /// How many chats are stored.
    pub(crate) fn len(&self) -> usize {
        self.lock().chats.len()
    }

    /// Every chat id.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().chats.keys().cloned().collect()
    }

    /// Every chat id whose alias is `alias`.
    pub(crate) fn ids_on(&self, alias: &str) -> Vec<String> {
        self.lock()
            .chats
            .values()
            .filter(|r| r.credentials.alias == alias)
            .map(|r| r.credentials.chat_id.clone())
            .collect()
    }

    /// Merges what was observed into a chat (creating it from `create`'s service when the
    /// observation carries every token) and waits until that is durable. Answers the record
    /// as stored, or None for an unknown chat that could not be created.
    pub(crate) async fn observe(
        &self,
        chat_id: &str,
        seen: Observation,
        create: Option<&str>,
    ) -> Reply {
        let op =
            Op::Observe { chat_id: chat_id.to_owned(), seen, create: create.map(str::to_owned) };
        self.ask(op).await
    }

    /// Forgets a chat, durably; answers whether it existed.
    pub(crate) async fn remove(&self, chat_id: &str) -> Result<bool, StoreError> {
        let existed = self.lock().chats.contains_key(chat_id);
        self.ask(Op::Remove { chat_id: chat_id.to_owned() }).await?;
        Ok(existed)
    }

    /// Keeps a Chat Server's process id, durably.
    pub(crate) async fn record_server_pid(&self, alias: &str, pid: u64) -> Result<(), StoreError> {
        self.ask(Op::Server { alias: alias.to_owned(), pid }).await.map(|_| ())
    }

    async fn ask(&self, op: Op) -> Reply {
        let stopped = || StoreError("the writer has stopped".to_owned());
        let (done, wait) = oneshot::channel();
        self.writes.send((op, done)).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

/// Applies batches of changes: each is merged into the records as the batch leaves them,
/// the results are committed together, and only then do reads see them. A failed commit
/// changes nothing in memory and fails every change of the batch.
async fn writer(
    mut queue: mpsc::Receiver<(Op, oneshot::Sender<Reply>)>,
    state: Arc<Mutex<State>>,
    backend: Arc<dyn Backend>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            first = queue.recv() => first,
            () = stop.cancelled() => {
                queue.close();
                queue.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let (changes, overlay, replies) = {
            let current = state.lock().unwrap_or_else(PoisonError::into_inner);
            plan(&current, &batch)
        };
        let result = if changes.is_empty() { Ok(()) } else { commit(&backend, changes).await };
        if result.is_ok() {
            let mut current = state.lock().unwrap_or_else(PoisonError::into_inner);
            for (chat_id, record) in overlay.chats {
                match record {
                    Some(record) => current.put(record),
                    None => current.delete(&chat_id),
                }
            }
            current.servers.extend(overlay.servers);
        }
        for ((_, done), reply) in batch.into_iter().zip(replies) {
            let _ = done.send(result.clone().map_err(StoreError).and(Ok(reply)));
        }
    }
}

/// The records and servers a batch changes.
#[derive(Default)]
struct Overlay {
    /// None: deleted.
    chats: HashMap<String, Option<ChatRecord>>,
    servers: HashMap<String, u64>,
}

/// Works out a batch: what to write, what memory becomes, and each change's answer.
fn plan(
    state: &State,
    batch: &[(Op, oneshot::Sender<Reply>)],
) -> (Vec<Change>, Overlay, Vec<Option<ChatRecord>>) {
    let mut overlay = Overlay::default();
    let mut replies = Vec::with_capacity(batch.len());
    for (op, _) in batch {
        let reply = match op {
            Op::Observe { chat_id, seen, create } => {
                let current = match overlay.chats.get(chat_id) {
                    Some(record) => record.clone(),
                    None => state.chats.get(chat_id).cloned(),
                };
                match (current, create) {
                    (Some(mut record), _) => {
                        if record.merge(seen) {
                            overlay.chats.insert(chat_id.clone(), Some(record.clone()));
                        }
                        Some(record)
                    }
                    (None, Some(service)) => {
                        let created = ChatRecord::create(chat_id, seen, service);
                        if let Some(record) = &created {
                            overlay.chats.insert(chat_id.clone(), Some(record.clone()));
                        }
                        created
                    }
                    (None, None) => None,
                }
            }
            Op::Remove { chat_id } => {
                if state.chats.contains_key(chat_id) || overlay.chats.contains_key(chat_id) {
                    overlay.chats.insert(chat_id.clone(), None);
                }
                None
            }
            Op::Server { alias, pid } => {
                if state.servers.get(alias) != Some(pid) {
                    overlay.servers.insert(alias.clone(), *pid);
                }
                None
            }
        };
        replies.push(reply);
    }
    let mut changes: Vec<Change> = overlay
        .chats
        .iter()
        .map(|(chat_id, record)| match record {
            Some(record) => Change::Put(record.clone()),
            None => Change::Delete(chat_id.clone()),
        })
        .collect();
    changes.extend(
        overlay
            .servers
            .iter()
            .map(|(alias, pid)| Change::Server { alias: alias.clone(), pid: *pid }),
    );
    (changes, overlay, replies)
}

async fn commit(backend: &Arc<dyn Backend>, changes: Vec<Change>) -> Result<(), String> {
    let backend = backend.clone();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || backend.write(&changes))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("{e:#}")));
    metrics::histogram!("relay_store_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("relay_store_commits_total").increment(1);
    if let Err(error) = &result {
        metrics::counter!("relay_store_failures_total").increment(1);
        tracing::error!(%error, "session store write failed");
    }
    result
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::{Op, State, plan};
    use crate::store::{ChatRecord, Observation, Source};

    #[test]
    fn a_chat_removed_earlier_in_a_batch_is_gone_for_the_rest_of_it() {
        let seen = Observation {
            user_id: Some("U".into()),
            secure_key: Some("K".into()),
            alias: Some("117".into()),
            ..Observation::new(1, Source::Gms)
        };
        let mut state = State::default();
        state.put(ChatRecord::create("C", &seen, "svc").expect("record"));
        let op = |op| (op, oneshot::channel().0);
        let later = Observation { position: Some(9), ..Observation::new(2, Source::Push) };
        let batch = [
            op(Op::Remove { chat_id: "C".into() }),
            op(Op::Observe { chat_id: "C".into(), seen: later, create: None }),
        ];
        let (changes, overlay, replies) = plan(&state, &batch);
        assert!(replies.iter().all(Option::is_none), "{replies:?}");
        assert_eq!(changes.len(), 1);
        assert_eq!(overlay.chats.get("C"), Some(&None));
    }
}
