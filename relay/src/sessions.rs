//! The chats the relay knows: an in-memory map for reads, made durable through a single
//! writer that groups concurrent changes into one commit (group commit), so throughput
//! does not fall to one fsync per push.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{Backend, Change, ChatRecord};

/// Changes waiting for the writer; senders wait when it is full (backpressure to GMS).
const WRITE_QUEUE: usize = 8192;
/// Most changes in one commit.
const MAX_BATCH: usize = 2048;

type Waiter = (String, oneshot::Sender<Result<(), String>>);

/// Why a change could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("the session store failed: {0}")]
pub struct StoreError(String);

/// Cheap to clone; every clone shares the same map and writer.
#[derive(Clone)]
pub struct Sessions {
    chats: Arc<Mutex<HashMap<String, ChatRecord>>>,
    writes: mpsc::Sender<Waiter>,
}

impl Sessions {
    /// Loads every record, then starts the writer (it stops when `shutdown` is cancelled
    /// and the queue is drained).
    pub fn start(
        backend: Arc<dyn Backend>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Sessions> {
        let records = backend.load_all()?;
        tracing::info!(chats = records.len(), "session store loaded");
        let chats: HashMap<String, ChatRecord> =
            records.into_iter().map(|r| (r.credentials.chat_id.clone(), r)).collect();
        let chats = Arc::new(Mutex::new(chats));
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(writer(queue, chats.clone(), backend, shutdown));
        Ok(Sessions { chats, writes })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ChatRecord>> {
        self.chats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of one record.
    pub fn get(&self, chat_id: &str) -> Option<ChatRecord> {
        self.lock().get(chat_id).cloned()
    }

    /// The chat registered with a push device id, for pushes that carry no chat id.
    pub fn by_device(&self, device_id: &str) -> Option<ChatRecord> {
        self.lock().values().find(|r| r.device_id.as_deref() == Some(device_id)).cloned()
    }

    /// Whether the writer still takes changes.
    pub fn writer_alive(&self) -> bool {
        !self.writes.is_closed()
    }

    /// Every chat id.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Every chat id whose alias is `alias`.
    pub fn ids_on(&self, alias: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|r| r.credentials.alias == alias)
            .map(|r| r.credentials.chat_id.clone())
            .collect()
    }

    /// Changes (or creates, from `create`) a record and waits until the change is durable.
    /// `change` returns false to leave the record as it was (nothing is written).
    pub async fn update(
        &self,
        chat_id: &str,
        create: impl FnOnce() -> Option<ChatRecord>,
        change: impl FnOnce(&mut ChatRecord) -> bool,
    ) -> Result<Option<ChatRecord>, StoreError> {
        let updated = {
            let mut chats = self.lock();
            let changed = match chats.get_mut(chat_id) {
                Some(record) => change(record),
                None => match create() {
                    Some(record) => {
                        chats.insert(chat_id.to_owned(), record);
                        true
                    }
                    None => return Ok(None),
                },
            };
            changed.then(|| chats.get(chat_id).cloned()).flatten()
        };
        if updated.is_some() {
            self.persist(chat_id).await?;
        }
        Ok(updated.or_else(|| self.get(chat_id)))
    }

    /// Forgets a chat, durably.
    pub async fn remove(&self, chat_id: &str) -> Result<bool, StoreError> {
        let existed = self.lock().remove(chat_id).is_some();
        if existed {
            self.persist(chat_id).await?;
        }
        Ok(existed)
    }

    async fn persist(&self, chat_id: &str) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.writes
            .send((chat_id.to_owned(), done))
            .await
            .map_err(|_| StoreError("the writer has stopped".to_owned()))?;
        wait.await.map_err(|_| StoreError("the writer has stopped".to_owned()))?.map_err(StoreError)
    }
}

/// Writes the *current* state of every dirty chat, so concurrent updates to one chat can
/// never persist out of order: whatever commits last is what memory holds.
async fn writer(
    mut queue: mpsc::Receiver<Waiter>,
    chats: Arc<Mutex<HashMap<String, ChatRecord>>>,
    backend: Arc<dyn Backend>,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            first = queue.recv() => first,
            () = shutdown.cancelled() => {
                queue.close();
                queue.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut waiters = vec![first];
        while waiters.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(waiter) => waiters.push(waiter),
                Err(_) => break,
            }
        }
        let dirty: HashSet<&str> = waiters.iter().map(|(id, _)| id.as_str()).collect();
        let changes: Vec<Change> = {
            let chats = chats.lock().unwrap_or_else(PoisonError::into_inner);
            dirty
                .into_iter()
                .map(|id| {
                    chats
                        .get(id)
                        .map_or_else(|| Change::Delete(id.to_owned()), |r| Change::Put(r.clone()))
                })
                .collect()
        };
        let backend = backend.clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || backend.write(&changes))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("{e:#}")));
        metrics::histogram!("relay_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("relay_store_commits_total").increment(1);
        if let Err(error) = &result {
            tracing::error!(%error, "session store write failed");
        }
        for (_, done) in waiters {
            let _ = done.send(result.clone());
        }
    }
}
