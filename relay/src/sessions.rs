//! The chats the relay knows: an in-memory copy of the store for reads, changed only by a
//! single writer task, and only after the store has the change. The writer groups
//! concurrent changes into one commit (group commit), so throughput does not fall to one
//! fsync per push, and it merges every change into the record as it is at that moment, so
//! concurrent observations of one chat are never lost nor applied out of order.
//!
//! With a store several relays share (Redis), memory may be behind: a write over a revision
//! another relay has replaced comes back as a conflict, memory takes the stored record, and
//! the change is merged into it again. Other relays' changes reach memory through
//! `take_announced`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{Backend, Change, ChatRecord, Observation, Written};

/// Changes waiting for the writer; senders wait when it is full (backpressure to GMS).
const WRITE_QUEUE: usize = 8192;
/// Most changes in one commit.
const MAX_BATCH: usize = 2048;
/// How often a change is merged again after other relays changed its chat first, before it
/// fails (each round means another relay committed in between, so this is never reached in
/// practice).
const CONFLICT_ROUNDS: usize = 8;
/// Most changes in a commit the writer makes on its own thread when the store can
/// (`Backend::write_now`) and another worker thread runs the relay meanwhile
/// (`another_worker`). A batch this small means pushes come one at a time: two thread
/// hand-offs would cost more than the write, and the thread has time to spare. Larger
/// batches mean load, where the async threads are worth more than the hand-offs (writing
/// them here too cost the knee a fifth: 20,000 pushes/s no longer kept up).
const WRITE_NOW_MOST: usize = 2;

/// Why a change could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the session store failed: {0}")]
pub(crate) struct StoreError(String);

/// One change asked of the writer.
enum Op {
    /// Merge an observation into a chat, creating it with `service` when it carries every
    /// token and `create` is set; `frame`, a push's, goes with the write to a shared store.
    Observe {
        chat_id: String,
        seen: Box<Observation>,
        create: Option<String>,
        frame: Option<String>,
    },
    /// Forget a chat.
    Remove { chat_id: String },
    /// A Chat Server's process id.
    Server { alias: String, pid: u64 },
}

/// What the writer answers.
type Reply = Result<Durable, StoreError>;

/// A change made durable.
#[derive(Debug, Clone)]
pub(crate) struct Durable {
    /// The chat's record (None: it does not exist).
    pub(crate) record: Option<ChatRecord>,
    /// For a push's frame: whether the store handed it to the other relays with the write,
    /// and if so whether this relay claimed the push's acknowledgement (`Written::handed`);
    /// None: the frame is still to publish (a store of this relay's own, or a push that
    /// changed nothing to write).
    pub(crate) handed: Option<bool>,
}

/// The durable state, as committed.
#[derive(Default)]
struct State {
    chats: HashMap<String, ChatRecord>,
    /// Push device id → (registered_at, chat id) of its chats, the latest last.
    devices: HashMap<String, BTreeSet<(u64, String)>>,
    /// Verified user hash → (identified_at, chat id) of its chats, the latest last.
    identities: HashMap<String, BTreeSet<(u64, String)>>,
    servers: HashMap<String, u64>,
    /// Reads of everything under way (`reload`), and the chats memory changed meanwhile:
    /// those changes are newer than what the reads return.
    reloads: usize,
    touched: HashSet<String>,
}

impl State {
    fn put(&mut self, record: ChatRecord) {
        let chat_id = record.credentials.chat_id.clone();
        self.touch(&chat_id);
        self.unindex(&chat_id);
        if let Some(device) = &record.device_id {
            self.devices
                .entry(device.clone())
                .or_default()
                .insert((record.registered_at, chat_id.clone()));
        }
        if let Some(hash) = &record.user_hash {
            self.identities
                .entry(hash.clone())
                .or_default()
                .insert((record.identified_at, chat_id.clone()));
        }
        self.chats.insert(chat_id, record);
    }

    /// Takes a record as stored unless memory already holds a later revision of it.
    fn take_stored(&mut self, chat_id: &str, stored: Option<ChatRecord>) {
        match stored {
            Some(record) => {
                if self.chats.get(chat_id).is_none_or(|held| held.revision < record.revision) {
                    self.put(record);
                }
            }
            None => self.delete(chat_id),
        }
    }

    fn delete(&mut self, chat_id: &str) {
        self.touch(chat_id);
        self.unindex(chat_id);
        self.chats.remove(chat_id);
    }

    fn touch(&mut self, chat_id: &str) {
        if self.reloads > 0 {
            self.touched.insert(chat_id.to_owned());
        }
    }

    /// Ends one read of everything: memory becomes what was read (when it was), except the
    /// chats changed since the read began, which keep their newer state.
    fn reloaded(&mut self, read: Option<crate::store::Stored>) {
        self.reloads = self.reloads.saturating_sub(1);
        let touched = if self.reloads == 0 {
            std::mem::take(&mut self.touched)
        } else {
            self.touched.clone()
        };
        let Some(read) = read else { return };
        let mut fresh = State::from(read);
        for chat_id in touched {
            match self.chats.remove(&chat_id) {
                Some(record) => fresh.put(record),
                None => fresh.delete(&chat_id),
            }
        }
        fresh.reloads = self.reloads;
        fresh.touched = std::mem::take(&mut self.touched);
        *self = fresh;
    }

    fn unindex(&mut self, chat_id: &str) {
        let Some(old) = self.chats.get(chat_id) else { return };
        let keys = [
            (&mut self.devices, old.device_id.as_ref(), old.registered_at),
            (&mut self.identities, old.user_hash.as_ref(), old.identified_at),
        ];
        for (index, key, at) in keys {
            let Some(key) = key else { continue };
            if let Some(set) = index.get_mut(key) {
                set.remove(&(at, chat_id.to_owned()));
                if set.is_empty() {
                    index.remove(key);
                }
            }
        }
    }
}

impl From<crate::store::Stored> for State {
    fn from(stored: crate::store::Stored) -> State {
        let mut state = State { servers: stored.servers, ..State::default() };
        for record in stored.chats {
            state.put(record);
        }
        state
    }
}

/// Cheap to clone; every clone shares the same state and writer.
#[derive(Clone)]
pub(crate) struct Sessions {
    state: Arc<Mutex<State>>,
    writes: mpsc::Sender<(Op, oneshot::Sender<Reply>)>,
    /// For reads; the writer owns the store, so it closes when the writer ends, however
    /// long clones of `Sessions` live on.
    backend: Weak<dyn Backend>,
    shared: bool,
}

impl Sessions {
    /// Loads everything, then starts the writer. It stops once `stop` is cancelled and
    /// what was queued before is written, so cancel it last.
    pub(crate) fn start(
        backend: Arc<dyn Backend>,
        stop: CancellationToken,
    ) -> anyhow::Result<(Sessions, tokio::task::JoinHandle<()>)> {
        let state = State::from(backend.load_all()?);
        tracing::info!(chats = state.chats.len(), "session store loaded");
        let state = Arc::new(Mutex::new(state));
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let (weak, shared) = (Arc::downgrade(&backend), backend.shared());
        let writer = tokio::spawn(writer(queue, state.clone(), backend, stop));
        Ok((Sessions { state, writes, backend: weak, shared }, writer))
    }

    /// One chat as stored now: read from the store when other relays share it (memory may
    /// not have their latest change yet), from memory otherwise. A read that finds nothing
    /// does not forget a chat memory holds: a chat is forgotten by the relay that forgets
    /// it, whose removal reaches every relay on the changes channel (and any reload), not
    /// on one read's word (a Redis that lost its data must not end running chats).
    pub(crate) async fn current(&self, chat_id: &str) -> Result<Option<ChatRecord>, StoreError> {
        if !self.shared {
            return Ok(self.get(chat_id));
        }
        let owned = chat_id.to_owned();
        let stored = self.read(move |backend| backend.read(&owned)).await?;
        let mut memory = self.lock();
        match stored {
            Some(record) => {
                memory.take_stored(chat_id, Some(record));
                Ok(memory.chats.get(chat_id).cloned())
            }
            None => Ok(memory.chats.get(chat_id).cloned()),
        }
    }

    /// Another relay's announcement on the changes channel: a record as committed (JSON),
    /// or the id of a chat it forgot. Memory takes it unless it holds a later revision.
    pub(crate) fn take_announced(&self, announced: &str) -> Result<(), serde_json::Error> {
        if announced.starts_with('{') {
            let record: ChatRecord = serde_json::from_str(announced)?;
            let chat_id = record.credentials.chat_id.clone();
            self.lock().take_stored(&chat_id, Some(record));
        } else {
            self.lock().take_stored(announced, None);
        }
        Ok(())
    }

    /// Memory takes everything stored (after a time in which other relays' changes may
    /// have gone unnoticed).
    pub(crate) async fn reload(&self) -> Result<(), StoreError> {
        self.lock().reloads += 1;
        let read = self.read(|backend| backend.load_all()).await;
        let mut state = self.lock();
        match read {
            Ok(stored) => {
                state.reloaded(Some(stored));
                Ok(())
            }
            Err(error) => {
                state.reloaded(None);
                Err(error)
            }
        }
    }

    /// Memory takes the Chat Servers' process ids as stored now (another relay may have
    /// watched them until now).
    pub(crate) async fn refresh_servers(&self) -> Result<(), StoreError> {
        if !self.shared {
            // Memory is the store's copy: nobody else writes it.
            return Ok(());
        }
        let servers = self.read(|backend| backend.read_servers()).await?;
        self.lock().servers = servers;
        Ok(())
    }

    /// Runs a read of the store off the async threads, while the writer still owns it.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Backend) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let backend = self
            .backend
            .upgrade()
            .ok_or_else(|| StoreError("the writer has stopped".to_owned()))?;
        tokio::task::spawn_blocking(move || read(backend.as_ref()))
            .await
            .map_err(|e| StoreError(e.to_string()))?
            .map_err(|e| StoreError(format!("{e:#}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of one record.
    pub(crate) fn get(&self, chat_id: &str) -> Option<ChatRecord> {
        self.lock().chats.get(chat_id).cloned()
    }

    /// Every chat registered with a push device, for pushes that carry no chat id.
    pub(crate) fn on_device(&self, device_id: &str) -> Vec<String> {
        let inner = self.lock();
        let chats = inner.devices.get(device_id).into_iter().flatten();
        chats.map(|(_, chat_id)| chat_id.clone()).collect()
    }

    /// The chats kept under a verified identity (its user hash), the newest first.
    pub(crate) fn of_identity(&self, user_hash: &str) -> Vec<String> {
        let inner = self.lock();
        let chats = inner.identities.get(user_hash).into_iter().flatten().rev();
        chats.map(|(_, chat_id)| chat_id.clone()).collect()
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

    /// Every chat id that may be on the Chat Server `alias`: those whose alias it is, and
    /// those GMS gave no alias (8.5.112 and later), which could be on any.
    pub(crate) fn ids_on(&self, alias: &str) -> Vec<String> {
        self.lock()
            .chats
            .values()
            .filter(|r| r.credentials.may_be_on(alias))
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
    ) -> Result<Option<ChatRecord>, StoreError> {
        self.observe_push(chat_id, seen, create, None).await.map(|durable| durable.record)
    }

    /// `observe` of what a push brought, with its frame (JSON) for a shared store to hand
    /// to the other relays in the same write (`Durable::handed`).
    pub(crate) async fn observe_push(
        &self,
        chat_id: &str,
        seen: Observation,
        create: Option<&str>,
        frame: Option<String>,
    ) -> Reply {
        if frame.is_none()
            && let Some(record) = self.unchanged_by(chat_id, &seen)
        {
            return Ok(Durable { record: Some(record), handed: None });
        }
        let seen = Box::new(seen);
        let (chat_id, create) = (chat_id.to_owned(), create.map(str::to_owned));
        self.ask(Op::Observe { chat_id, seen, create, frame }).await
    }

    /// The chat's record when `seen` would change nothing in it. Memory holds only what was
    /// committed, and records only move forward, so such an observation is durable already
    /// and the writer need not hear of it: every acknowledging ping makes one.
    fn unchanged_by(&self, chat_id: &str, seen: &Observation) -> Option<ChatRecord> {
        let mut record = self.get(chat_id)?;
        (!record.merge(seen)).then_some(record)
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
    let inline = another_worker();
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
        let ops: Vec<&Op> = batch.iter().map(|(op, _)| op).collect();
        let replies = settle(&ops, &state, &backend, inline).await;
        for ((_, done), reply) in batch.into_iter().zip(replies) {
            let _ = done.send(reply);
        }
    }
}

/// Whether the writer may make a write on its own thread: only where another worker thread
/// runs the relay meanwhile. With one (tokio starts one where the process may use less than
/// two CPUs: it rounds a pod's CPU limit down), every write would stop everything else,
/// the pushes that would make the batches grow too, so the writer would never leave a
/// disk's pace: on a disk whose flush takes 0.2 ms, 4,500 of 8,000 pushes/s were accepted,
/// against 7,900 through the blocking pool.
fn another_worker() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|runtime| runtime.metrics().num_workers() > 1)
}

/// Commits a batch's changes, merging again those whose chats other relays changed first;
/// answers each change. A failed commit changes nothing in memory and fails what it held.
/// `inline`: small commits may be made on this thread (`WRITE_NOW_MOST`).
async fn settle(
    ops: &[&Op],
    state: &Mutex<State>,
    backend: &Arc<dyn Backend>,
    inline: bool,
) -> Vec<Reply> {
    let mut replies: Vec<Option<Reply>> = vec![None; ops.len()];
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    for _ in 0..CONFLICT_ROUNDS {
        let round: Vec<&Op> = pending.iter().map(|&i| ops[i]).collect();
        let (changes, mut overlay, answers) = {
            let current = state.lock().unwrap_or_else(PoisonError::into_inner);
            plan(&current, &round)
        };
        let written = if changes.is_empty() {
            Ok(Written::default())
        } else {
            commit(backend, changes, inline).await
        };
        let Written { conflicts, handed } = match written {
            Ok(written) => written,
            Err(error) => {
                for &i in &pending {
                    replies[i] = Some(Err(StoreError(error.clone())));
                }
                pending.clear();
                break;
            }
        };
        {
            let mut current = state.lock().unwrap_or_else(PoisonError::into_inner);
            // What a conflict returns is the store's truth, even at a lower revision (the
            // chat was forgotten and registered again meanwhile).
            for conflict in &conflicts {
                overlay.chats.remove(&conflict.chat_id);
                match conflict.current.clone() {
                    Some(record) => current.put(record),
                    None => current.delete(&conflict.chat_id),
                }
            }
            for (chat_id, record) in overlay.chats {
                match record {
                    Some(record) => current.put(record),
                    None => current.delete(&chat_id),
                }
            }
            current.servers.extend(overlay.servers);
        }
        if !conflicts.is_empty() {
            metrics::counter!("relay_store_conflicts_total").increment(conflicts.len() as u64);
        }
        let conflicted = |i: usize| {
            matches!(ops[i], Op::Observe { chat_id, .. }
                if conflicts.iter().any(|c| &c.chat_id == chat_id))
        };
        // The first push of a chat holds what the write claimed; those after it in the
        // batch came before the same acknowledging ping, so none needs another.
        let mut handed: HashMap<String, bool> = handed.into_iter().collect();
        let mut again = Vec::new();
        for (&i, record) in pending.iter().zip(answers) {
            if conflicted(i) {
                again.push(i);
                continue;
            }
            let handed = match ops[i] {
                Op::Observe { chat_id, frame: Some(_), .. } => {
                    handed.get_mut(chat_id).map(|claimed| std::mem::replace(claimed, false))
                }
                _ => None,
            };
            replies[i] = Some(Ok(Durable { record, handed }));
        }
        pending = again;
        if pending.is_empty() {
            break;
        }
    }
    let gave_up = || Err(StoreError("other relays kept changing the chat".to_owned()));
    replies.into_iter().map(|reply| reply.unwrap_or_else(gave_up)).collect()
}

/// The records and servers a batch changes.
#[derive(Default)]
struct Overlay {
    /// None: deleted.
    chats: HashMap<String, Option<ChatRecord>>,
    servers: HashMap<String, u64>,
}

/// Works out a batch: what to write, what memory becomes, and each change's answer.
fn plan(state: &State, batch: &[&Op]) -> (Vec<Change>, Overlay, Vec<Option<ChatRecord>>) {
    let mut overlay = Overlay::default();
    let mut replies = Vec::with_capacity(batch.len());
    // The revision each changed chat had before the batch: its new one is the next.
    let mut base: HashMap<&str, u64> = HashMap::new();
    let mut frames: HashMap<&str, Vec<String>> = HashMap::new();
    for op in batch {
        let reply = match op {
            Op::Observe { chat_id, seen, create, frame } => {
                if let Some(frame) = frame {
                    frames.entry(chat_id).or_default().push(frame.clone());
                }
                let current = match overlay.chats.get(chat_id) {
                    Some(record) => record.clone(),
                    None => state.chats.get(chat_id).cloned(),
                };
                let revision = *base
                    .entry(chat_id.as_str())
                    .or_insert_with(|| current.as_ref().map_or(0, |r| r.revision));
                match (current, create) {
                    (Some(mut record), _) => {
                        if record.merge(seen) {
                            record.revision = revision + 1;
                            overlay.chats.insert(chat_id.clone(), Some(record.clone()));
                        }
                        Some(record)
                    }
                    (None, Some(service)) => {
                        let created = ChatRecord::create(chat_id, seen, service);
                        if let Some(record) = &created {
                            let record = ChatRecord { revision: revision + 1, ..record.clone() };
                            overlay.chats.insert(chat_id.clone(), Some(record));
                        }
                        created.map(|record| ChatRecord { revision: revision + 1, ..record })
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
            Some(record) => Change::Put {
                record: Box::new(record.clone()),
                frames: frames.remove(chat_id.as_str()).unwrap_or_default(),
            },
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

async fn commit(
    backend: &Arc<dyn Backend>,
    changes: Vec<Change>,
    inline: bool,
) -> Result<Written, String> {
    let started = std::time::Instant::now();
    let now =
        (inline && changes.len() <= WRITE_NOW_MOST).then(|| backend.write_now(&changes)).flatten();
    let result = match now {
        Some(result) => result.map_err(|e| format!("{e:#}")),
        None => {
            let backend = backend.clone();
            tokio::task::spawn_blocking(move || backend.write(&changes))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| format!("{e:#}")))
        }
    };
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
    use super::{Op, State, plan};
    use crate::store::{ChatRecord, Observation, Source};

    #[test]
    fn an_identitys_chats_are_indexed_newest_first_and_leave_the_index_with_it() {
        let chat = |id: &str, hash: &str, at| {
            let seen = Observation {
                secure_key: Some("K".into()),
                user_hash: Some(hash.into()),
                ..Observation::new(at, Source::Gms)
            };
            ChatRecord::create(id, &seen, "svc").expect("record")
        };
        let mut state = State::default();
        state.put(chat("old", "aa", 1));
        state.put(chat("new", "aa", 5));
        state.put(chat("other", "bb", 9));
        let of = |state: &State, hash: &str| -> Vec<String> {
            let chats = state.identities.get(hash).into_iter().flatten().rev();
            chats.map(|(_, id)| id.clone()).collect()
        };
        assert_eq!(of(&state, "aa"), ["new", "old"]);
        // Named again later: the old chat is the identity's newest now.
        state.put(chat("old", "aa", 7));
        assert_eq!(of(&state, "aa"), ["old", "new"]);
        state.put(chat("new", "bb", 8));
        assert_eq!(
            (of(&state, "aa"), of(&state, "bb")),
            (vec!["old".into()], vec!["other".into(), "new".into()])
        );
        state.delete("old");
        assert!(!state.identities.contains_key("aa"), "no empty entry is left");
    }

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
        let later = Observation { position: Some(9), ..Observation::new(2, Source::Push) };
        let remove = Op::Remove { chat_id: "C".into() };
        let observe =
            Op::Observe { chat_id: "C".into(), seen: Box::new(later), create: None, frame: None };
        let batch = [&remove, &observe];
        let (changes, overlay, replies) = plan(&state, &batch);
        assert!(replies.iter().all(Option::is_none), "{replies:?}");
        assert_eq!(changes.len(), 1);
        assert_eq!(overlay.chats.get("C"), Some(&None));
    }
}

#[cfg(test)]
mod shared_store_tests {
    use std::collections::HashMap;
    use std::sync::mpsc as std_mpsc;
    use std::sync::{Arc, Mutex};

    use tokio_util::sync::CancellationToken;

    use super::Sessions;
    use crate::store::{
        Backend, Change, ChatRecord, Conflict, Observation, Source, Stored, Written,
    };

    /// A store with Redis's contract (a put lands only over the revision it was read at)
    /// that a second relay also writes: `behind_its_back` is that relay's change.
    #[derive(Default)]
    struct SharedStore {
        chats: Mutex<HashMap<String, ChatRecord>>,
        /// Armed by `hold_next_load`: the next `load_all` reads, says so, and waits.
        hold: Mutex<Option<(std_mpsc::Sender<()>, std_mpsc::Receiver<()>)>>,
        /// The frames of each applied `Put` that had some (handed over, claim taken).
        frames: Mutex<Vec<Vec<String>>>,
    }

    impl SharedStore {
        /// Holds the next `load_all` between its read and its return: answers a receiver
        /// told when the read is done and a sender that lets it return.
        fn hold_next_load(&self) -> (std_mpsc::Receiver<()>, std_mpsc::Sender<()>) {
            let (read, was_read) = std_mpsc::channel();
            let (release, released) = std_mpsc::channel();
            *self.hold.lock().expect("lock") = Some((read, released));
            (was_read, release)
        }
    }

    impl SharedStore {
        fn behind_its_back(&self, chat_id: &str, change: impl FnOnce(&mut ChatRecord)) {
            let mut chats = self.chats.lock().expect("lock");
            let record = chats.get_mut(chat_id).expect("stored");
            change(record);
            record.revision += 1;
        }
    }

    impl SharedStore {
        fn replaced_behind_its_back(&self, record: ChatRecord) {
            let mut chats = self.chats.lock().expect("lock");
            chats.insert(record.credentials.chat_id.clone(), record);
        }
    }

    impl Backend for SharedStore {
        fn load_all(&self) -> anyhow::Result<Stored> {
            let chats = self.chats.lock().expect("lock").values().cloned().collect();
            if let Some((read, released)) = self.hold.lock().expect("lock").take() {
                let _ = read.send(());
                let _ = released.recv();
            }
            Ok(Stored { chats, ..Stored::default() })
        }

        fn write(&self, changes: &[Change]) -> anyhow::Result<Written> {
            let mut chats = self.chats.lock().expect("lock");
            let mut conflicts = Vec::new();
            let mut handed = Vec::new();
            for change in changes {
                match change {
                    Change::Put { record, frames } => {
                        let chat_id = record.credentials.chat_id.clone();
                        let stored = chats.get(&chat_id).map_or(0, |r| r.revision);
                        if stored + 1 == record.revision {
                            if !frames.is_empty() {
                                self.frames.lock().expect("lock").push(frames.clone());
                                handed.push((chat_id.clone(), true));
                            }
                            chats.insert(chat_id, (**record).clone());
                        } else {
                            conflicts
                                .push(Conflict { current: chats.get(&chat_id).cloned(), chat_id });
                        }
                    }
                    Change::Delete(chat_id) => {
                        chats.remove(chat_id);
                    }
                    Change::Server { .. } => {}
                }
            }
            Ok(Written { conflicts, handed })
        }

        fn read(&self, chat_id: &str) -> anyhow::Result<Option<ChatRecord>> {
            Ok(self.chats.lock().expect("lock").get(chat_id).cloned())
        }

        fn shared(&self) -> bool {
            true
        }
    }

    /// What a registration on Chat Server 117 observes.
    fn registered() -> Observation {
        Observation {
            user_id: Some("U".into()),
            secure_key: Some("K".into()),
            alias: Some("117".into()),
            ..Observation::new(1, Source::Gms)
        }
    }

    #[tokio::test]
    async fn a_change_over_another_relays_change_is_merged_into_it_not_over_it() {
        let store = Arc::new(SharedStore::default());
        let (sessions, _writer) =
            Sessions::start(store.clone(), CancellationToken::new()).expect("start");
        let created = Observation { position: Some(3), ..registered() };
        sessions.observe("C", created, Some("svc")).await.expect("stored");
        // Another relay learns the chat moved to Chat Server 118; this one has not heard.
        store.behind_its_back("C", |r| {
            r.credentials.alias = "118".into();
            r.alias_seen_at = 5;
        });
        let push = Observation { position: Some(7), ..Observation::new(6, Source::Push) };
        let merged = sessions.observe("C", push, None).await.expect("stored").expect("record");

        assert_eq!((merged.credentials.alias.as_str(), merged.position), ("118", 7));
        assert_eq!(merged.revision, 3);
        let stored = store.read("C").expect("read").expect("record");
        assert_eq!(stored, merged);
        assert_eq!(sessions.get("C"), Some(merged), "memory follows the store");
    }

    /// Pushes of a chat written in one batch: one write hands both frames over; the first
    /// push holds the claim the write took, and the second needs no ping of its own (it
    /// came before the same one).
    #[tokio::test]
    async fn pushes_written_together_hand_their_frames_once_and_share_the_claim() {
        let store = Arc::new(SharedStore::default());
        let (sessions, _writer) =
            Sessions::start(store.clone(), CancellationToken::new()).expect("start");
        sessions.observe("C", registered(), Some("svc")).await.expect("stored");
        let push = |p| Observation { position: Some(p), ..Observation::new(p, Source::Push) };
        let (first, second) = tokio::join!(
            sessions.observe_push("C", push(2), None, Some("f2".into())),
            sessions.observe_push("C", push(3), None, Some("f3".into())),
        );
        let handed = (first.expect("stored").handed, second.expect("stored").handed);
        assert_eq!(handed, (Some(true), Some(false)));
        assert_eq!(*store.frames.lock().expect("lock"), vec![vec!["f2", "f3"]]);

        // A push that changes nothing writes nothing: its frame is still to publish.
        let again = sessions.observe_push("C", push(3), None, Some("f3".into())).await;
        assert_eq!(again.expect("stored").handed, None);
        assert_eq!(store.frames.lock().expect("lock").len(), 1);
    }

    /// Every acknowledging ping confirms what is stored: that needs no commit, nor the
    /// writer at all (here stopped, so only a change would fail).
    #[tokio::test]
    async fn an_observation_that_changes_nothing_is_answered_from_memory() {
        let store = Arc::new(SharedStore::default());
        let stop = CancellationToken::new();
        let (sessions, writer) = Sessions::start(store.clone(), stop.clone()).expect("start");
        let created = Observation { position: Some(3), ..registered() };
        let stored = sessions.observe("C", created, Some("svc")).await.expect("stored");
        stop.cancel();
        writer.await.expect("the writer ends");

        let confirmed = Observation { position: Some(2), ..registered() };
        let answered = sessions.observe("C", confirmed, None).await.expect("from memory");
        assert_eq!(answered, stored);
        let moved = Observation { position: Some(4), ..registered() };
        assert!(sessions.observe("C", moved, None).await.is_err(), "a change needs the writer");
    }

    #[tokio::test]
    async fn a_chat_forgotten_and_registered_again_elsewhere_takes_the_change() {
        let store = Arc::new(SharedStore::default());
        let (sessions, _writer) =
            Sessions::start(store.clone(), CancellationToken::new()).expect("start");
        let created = registered();
        sessions.observe("C", created.clone(), Some("svc")).await.expect("stored");
        let again = Observation { position: Some(2), ..Observation::new(2, Source::Gms) };
        sessions.observe("C", again, None).await.expect("stored");
        // Another relay forgot the chat and registered it again: revision 1 once more.
        let fresh =
            ChatRecord { revision: 1, ..ChatRecord::create("C", &created, "svc").expect("record") };
        store.replaced_behind_its_back(fresh);

        let push = Observation { position: Some(9), ..Observation::new(3, Source::Push) };
        let merged = sessions.observe("C", push, None).await.expect("stored").expect("record");
        assert_eq!((merged.revision, merged.position), (2, 9));
    }
    /// Memory reads everything again (at start, after Redis was lost) while other relays
    /// go on changing chats: what they announce during the read outlives the read's older
    /// snapshot, or a relay would never restore (nor ping) a chat registered meanwhile.
    #[tokio::test]
    async fn changes_announced_while_memory_reads_everything_again_are_kept() {
        let store = Arc::new(SharedStore::default());
        let (sessions, _writer) =
            Sessions::start(store.clone(), CancellationToken::new()).expect("start");
        sessions.observe("moved", registered(), Some("svc")).await.expect("stored");
        sessions.observe("forgotten", registered(), Some("svc")).await.expect("stored");

        let (was_read, release) = store.hold_next_load();
        let reload = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.reload().await }
        });
        tokio::task::spawn_blocking(move || was_read.recv()).await.expect("join").expect("read");
        // Another relay registers a chat, moves one and forgets one; each is announced.
        let new = ChatRecord::create("new", &registered(), "svc").expect("record");
        store.replaced_behind_its_back(new.clone());
        store.behind_its_back("moved", |r| r.credentials.alias = "118".into());
        let moved = store.read("moved").expect("read").expect("record");
        store.chats.lock().expect("lock").remove("forgotten");
        for record in [&new, &moved] {
            let json = serde_json::to_string(record).expect("json");
            sessions.take_announced(&json).expect("announced");
        }
        sessions.take_announced("forgotten").expect("announced");
        release.send(()).expect("release");
        reload.await.expect("join").expect("reloaded");

        assert_eq!(sessions.get("new"), Some(new), "a chat registered during the read");
        assert_eq!(sessions.get("moved"), Some(moved), "a chat moved during the read");
        assert_eq!(sessions.get("forgotten"), None, "a chat forgotten during the read");
        assert_eq!(sessions.ids_on("117"), ["new"], "what a restoration of 117 pings");
    }
}

#[cfg(test)]
mod inline_write_tests {
    use std::sync::mpsc as std_mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::Notify;
    use tokio_util::sync::CancellationToken;

    use super::Sessions;
    use crate::store::{Backend, Change, ChatRecord, Observation, Source, Stored, Written};

    /// A store whose every write tells `started`, then waits (at most 5 s) for the test's
    /// word; it notes how each write came (`write_now` or not) and whether the word came.
    struct Gate {
        started: Arc<Notify>,
        word: Mutex<std_mpsc::Receiver<()>>,
        /// (made by `write_now`, the word came in time) for each write.
        writes: Mutex<Vec<(bool, bool)>>,
    }

    impl Gate {
        fn wait(&self, now: bool) -> anyhow::Result<Written> {
            self.started.notify_one();
            let word = self.word.lock().expect("lock").recv_timeout(Duration::from_secs(5));
            self.writes.lock().expect("lock").push((now, word.is_ok()));
            Ok(Written::default())
        }
    }

    impl Backend for Gate {
        fn load_all(&self) -> anyhow::Result<Stored> {
            Ok(Stored::default())
        }

        fn write(&self, _changes: &[Change]) -> anyhow::Result<Written> {
            self.wait(false)
        }

        fn write_now(&self, _changes: &[Change]) -> Option<anyhow::Result<Written>> {
            Some(self.wait(true))
        }

        fn read(&self, _chat_id: &str) -> anyhow::Result<Option<ChatRecord>> {
            Ok(None)
        }
    }

    /// One registration's write on a runtime of `workers` worker threads, the word for it
    /// given by a task of that runtime once the write has started (`ahead`: before it):
    /// answers how it went.
    fn write_with(workers: usize, ahead: bool) -> Vec<(bool, bool)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime");
        let (word, waited) = std_mpsc::channel();
        if ahead {
            word.send(()).expect("kept");
        }
        let started = Arc::new(Notify::new());
        let store = Arc::new(Gate {
            started: started.clone(),
            word: Mutex::new(waited),
            writes: Mutex::default(),
        });
        runtime.block_on(async {
            let (sessions, _writer) =
                Sessions::start(store.clone(), CancellationToken::new()).expect("start");
            let giver = tokio::spawn(async move {
                if !ahead {
                    started.notified().await;
                    word.send(()).expect("the store waits");
                }
            });
            let registered = Observation {
                user_id: Some("U".into()),
                secure_key: Some("K".into()),
                alias: Some("117".into()),
                ..Observation::new(1, Source::Gms)
            };
            sessions.observe("C", registered, Some("svc")).await.expect("stored");
            giver.await.expect("join");
        });
        store.writes.lock().expect("lock").clone()
    }

    #[test]
    fn a_write_never_holds_the_only_worker_thread() {
        // Made on the worker, the write would hold the one thread the word's task needs.
        assert_eq!(write_with(1, false), vec![(false, true)]);
    }

    #[test]
    fn a_small_write_is_made_on_the_writers_thread_when_another_runs_the_relay() {
        // (A task the write itself wakes waits for it even so: tokio's worker keeps the
        // task it woke last for itself. The relay's writes wake none.)
        assert_eq!(write_with(2, true), vec![(true, true)]);
    }
}
