//! The embedded store: a journal and a redb file under the data directory, written by this
//! relay alone. A write is durable once its journal record is (`journal`); the changes are
//! held in memory and committed to redb behind it, by a checkpoint thread, a journal half
//! at a time; opening replays what the journal holds beyond redb's last checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::journal::{self, Entry, Journal};
use crate::store::{Backend, Change, ChatRecord, Stored, Written};

const CHATS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("chats");
const SERVERS: TableDefinition<'_, &str, u64> = TableDefinition::new("chat_servers");
/// `checkpointed`: the last journal generation whose changes redb holds.
const JOURNAL: TableDefinition<'_, &str, u64> = TableDefinition::new("journal");
const CHECKPOINTED: &str = "checkpointed";
/// How long a write waits for the checkpoint of the half it needs before it fails.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(30);
/// How soon a failed checkpoint is tried again.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

/// The embedded store: a returned write survives kill -9.
pub struct RedbBackend {
    db: Arc<Database>,
    journal: Mutex<Journal>,
    behind: Arc<Behind>,
    checkpointer: Option<JoinHandle<()>>,
}

/// The changes the journal holds and redb does not yet, which reads look at first.
#[derive(Default, Clone)]
struct Overlay {
    /// Chat id → its record's JSON (None: deleted).
    chats: HashMap<String, Option<Vec<u8>>>,
    servers: HashMap<String, u64>,
}

impl Overlay {
    fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Put { chat_id, value } => {
                self.chats.insert(chat_id.clone(), Some(value.clone()));
            }
            Entry::Delete { chat_id } => {
                self.chats.insert(chat_id.clone(), None);
            }
            Entry::Server { alias, pid } => {
                self.servers.insert(alias.clone(), *pid);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.chats.is_empty() && self.servers.is_empty()
    }
}

/// What the writer and the checkpoint thread share.
#[derive(Default)]
struct Behind {
    state: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Changes of the generation being written.
    pending: Overlay,
    /// A full generation being committed to redb.
    checkpointing: Option<(u64, Arc<Overlay>)>,
    /// Why the last checkpoint failed, while it is being tried again.
    failed: Option<String>,
    stop: bool,
    /// Tests hold checkpoints back, to stop as a kill -9 during one would.
    #[cfg(test)]
    paused: bool,
}

impl Queue {
    fn paused(&self) -> bool {
        #[cfg(test)]
        return self.paused;
        #[cfg(not(test))]
        false
    }
}

impl Behind {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RedbBackend {
    /// Opens (or creates) `sessions.redb` and `sessions.journal` in `dir`, and brings redb
    /// up to what the journal holds.
    pub fn open(dir: &Path) -> anyhow::Result<RedbBackend> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("sessions.redb");
        let db = Database::create(&path).with_context(|| format!("opening {}", path.display()))?;
        // Read in a write transaction (a read one cannot open a table a new file lacks),
        // then abandoned: the checkpoint below commits, and one commit at start is enough.
        let marker = {
            let txn = db.begin_write()?;
            let marker = txn.open_table(JOURNAL)?.get(CHECKPOINTED)?.map(|g| g.value());
            txn.abort()?;
            marker
        };
        let journal_path = dir.join("sessions.journal");
        // A redb file without the marker is new (or older than the journal): a journal
        // beside it is not its own, and its records must never be read as the new one's.
        if marker.is_none() || !journal_path.exists() {
            journal::make(&journal_path, journal::HALF)
                .with_context(|| format!("making {}", journal_path.display()))?;
        }
        let mut journal = Journal::open(&journal_path)?;
        let checkpointed = marker.unwrap_or(0);
        // At most two generations are beyond the checkpoint: one being committed when the
        // relay stopped, and the one being written.
        let mut replayed = Overlay::default();
        let mut last = checkpointed;
        for generation in [checkpointed.checked_add(1), checkpointed.checked_add(2)] {
            let generation = generation.context("the store's checkpoint marker is corrupt")?;
            let Some(entries) = journal.read(generation)? else { break };
            entries.iter().for_each(|entry| replayed.apply(entry));
            last = generation;
        }
        checkpoint(&db, last, &replayed)?;
        if last > checkpointed {
            tracing::info!(generations = last - checkpointed, "store journal replayed");
        }
        journal.begin(last.checked_add(1).context("the store's checkpoint marker is corrupt")?);
        let db = Arc::new(db);
        let behind = Arc::new(Behind::default());
        let checkpointer = std::thread::Builder::new().name("store-checkpoint".into()).spawn({
            let (db, behind) = (db.clone(), behind.clone());
            move || checkpoints(&db, &behind)
        })?;
        Ok(RedbBackend {
            db,
            journal: Mutex::new(journal),
            behind,
            checkpointer: Some(checkpointer),
        })
    }

    /// Hands the generation being written to the checkpoint thread and starts the next,
    /// once the previous checkpoint is done.
    fn switch(&self, journal: &mut Journal) -> anyhow::Result<()> {
        let queue = self.behind.lock();
        let (mut queue, waited) = self
            .behind
            .changed
            .wait_timeout_while(queue, CHECKPOINT_WAIT, |queue| queue.checkpointing.is_some())
            .unwrap_or_else(PoisonError::into_inner);
        if waited.timed_out() {
            let why = queue.failed.clone().unwrap_or_else(|| "it is slow".to_owned());
            bail!("the store's checkpoint is behind: {why}");
        }
        let pending = std::mem::take(&mut queue.pending);
        queue.checkpointing = Some((journal.generation, Arc::new(pending)));
        self.behind.changed.notify_all();
        journal.begin(journal.generation + 1);
        Ok(())
    }

    /// Writes one journal record and, once it is durable, hands its entries to memory.
    fn append(&self, journal: &mut Journal, record: &[Entry]) -> anyhow::Result<()> {
        journal.append(&journal::encode(record))?;
        let mut queue = self.behind.lock();
        for entry in record {
            queue.pending.apply(entry);
        }
        Ok(())
    }
}

/// The entries that make `changes`.
fn entries(changes: &[Change]) -> anyhow::Result<Vec<Entry>> {
    let entry = |change: &Change| {
        Ok(match change {
            Change::Put { record, .. } => Entry::Put {
                chat_id: record.credentials.chat_id.clone(),
                value: serde_json::to_vec(record)?,
            },
            Change::Delete(chat_id) => Entry::Delete { chat_id: chat_id.clone() },
            Change::Server { alias, pid } => Entry::Server { alias: alias.clone(), pid: *pid },
        })
    };
    changes.iter().map(entry).collect()
}

/// The checkpoint thread: commits each generation handed to it, until stopped with none.
fn checkpoints(db: &Database, behind: &Behind) {
    loop {
        let (generation, overlay) = {
            let due = |queue: &Queue| queue.checkpointing.is_some() && !queue.paused();
            let queue = behind
                .changed
                .wait_while(behind.lock(), |queue| !due(queue) && !queue.stop)
                .unwrap_or_else(PoisonError::into_inner);
            match (&queue.checkpointing, due(&queue)) {
                (Some((generation, overlay)), true) => (*generation, overlay.clone()),
                _ => return,
            }
        };
        let started = std::time::Instant::now();
        let committed = checkpoint(db, generation, &overlay);
        metrics::histogram!("relay_store_checkpoint_seconds")
            .record(started.elapsed().as_secs_f64());
        let mut queue = behind.lock();
        match committed {
            Ok(()) => {
                queue.checkpointing = None;
                queue.failed = None;
                behind.changed.notify_all();
            }
            Err(error) => {
                let error = format!("{error:#}");
                metrics::counter!("relay_store_failures_total").increment(1);
                tracing::error!(%error, generation, "store checkpoint failed; trying again");
                // Stopping: the next start replays the journal instead.
                if queue.stop {
                    return;
                }
                queue.failed = Some(error);
                let _ = behind.changed.wait_timeout(queue, CHECKPOINT_RETRY);
            }
        }
    }
}

fn checkpoint(db: &Database, generation: u64, overlay: &Overlay) -> anyhow::Result<()> {
    let txn = db.begin_write()?;
    {
        let mut chats = txn.open_table(CHATS)?;
        for (chat_id, value) in &overlay.chats {
            match value {
                Some(value) => chats.insert(chat_id.as_str(), value.as_slice())?,
                None => chats.remove(chat_id.as_str())?,
            };
        }
        let mut servers = txn.open_table(SERVERS)?;
        for (alias, pid) in &overlay.servers {
            servers.insert(alias.as_str(), *pid)?;
        }
        txn.open_table(JOURNAL)?.insert(CHECKPOINTED, generation)?;
    }
    txn.commit()?;
    Ok(())
}

impl Drop for RedbBackend {
    /// Commits what the journal alone holds, so the next start replays nothing, and lets go
    /// of the redb file (one opener at a time) before returning.
    fn drop(&mut self) {
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let due = {
            let queue = self.behind.lock();
            !queue.pending.is_empty() && queue.failed.is_none()
        };
        if due && let Err(error) = self.switch(&mut journal) {
            tracing::warn!(%error, "no last checkpoint: the next start replays the journal");
        }
        drop(journal);
        self.behind.lock().stop = true;
        self.behind.changed.notify_all();
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

impl Backend for RedbBackend {
    fn load_all(&self) -> anyhow::Result<Stored> {
        // redb's read begins under the lock, so the overlays and it are of one moment (a
        // checkpoint commits before it leaves `checkpointing`).
        let (pending, checkpointing, txn) = {
            let queue = self.behind.lock();
            let checkpointing = queue.checkpointing.as_ref().map(|(_, overlay)| overlay.clone());
            (queue.pending.clone(), checkpointing, self.db.begin_read()?)
        };
        let mut chats: HashMap<String, Vec<u8>> = HashMap::new();
        for entry in txn.open_table(CHATS)?.iter()? {
            let (key, value) = entry?;
            chats.insert(key.value().to_owned(), value.value().to_vec());
        }
        let mut servers = HashMap::new();
        for entry in txn.open_table(SERVERS)?.iter()? {
            let (alias, pid) = entry?;
            servers.insert(alias.value().to_owned(), pid.value());
        }
        for overlay in checkpointing.as_deref().into_iter().chain([&pending]) {
            for (chat_id, value) in &overlay.chats {
                match value {
                    Some(value) => chats.insert(chat_id.clone(), value.clone()),
                    None => chats.remove(chat_id),
                };
            }
            servers.extend(overlay.servers.iter().map(|(alias, pid)| (alias.clone(), *pid)));
        }
        let mut stored = Stored { servers, ..Stored::default() };
        for (chat_id, value) in chats {
            match serde_json::from_slice::<ChatRecord>(&value) {
                Ok(record) => stored.chats.push(record),
                // A record this version cannot read is skipped, not fatal: the widget
                // registers its chat again on its next visit.
                Err(error) => {
                    tracing::warn!(chat = chat_id, %error, "unreadable stored chat skipped");
                }
            }
        }
        Ok(stored)
    }

    fn write(&self, changes: &[Change]) -> anyhow::Result<Written> {
        let entries = entries(changes)?;
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(size) =
            entries.iter().map(journal::encoded_len).find(|&size| size > journal.capacity())
        {
            bail!("a change of {size} bytes is larger than the store's journal");
        }
        // A batch takes as many records as it needs; each is applied to memory once
        // durable, so the half it lies in is checkpointed with it. A batch of several
        // records that fails after the first (a disk error) leaves those durable although
        // the write failed, as a crash before the 200 would: GMS resends, and the merge
        // makes the same record again.
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            let mut size = 0;
            let mut count = 0;
            for entry in rest {
                let len = journal::encoded_len(entry);
                if count > 0 && size + len > journal.capacity() {
                    break;
                }
                size += len;
                count += 1;
            }
            if !journal.fits(size) {
                self.switch(&mut journal)?;
            }
            let (record, after) = rest.split_at(count);
            self.append(&mut journal, record)?;
            rest = after;
        }
        Ok(Written::default())
    }

    /// The common case, a batch that fits in the journal's current half, is one small
    /// synchronous write: cheaper on the async thread than two thread hand-offs.
    fn write_now(&self, changes: &[Change]) -> Option<anyhow::Result<Written>> {
        let entries = match entries(changes) {
            Ok(entries) => entries,
            Err(error) => return Some(Err(error)),
        };
        let mut journal = self.journal.try_lock().ok()?;
        let size = entries.iter().map(journal::encoded_len).sum();
        if !journal.fits(size) {
            return None;
        }
        Some(self.append(&mut journal, &entries).map(|()| Written::default()))
    }

    fn read(&self, chat_id: &str) -> anyhow::Result<Option<ChatRecord>> {
        let held = {
            let queue = self.behind.lock();
            let overlays = [Some(&queue.pending), queue.checkpointing.as_ref().map(|(_, o)| &**o)];
            overlays.into_iter().flatten().find_map(|overlay| overlay.chats.get(chat_id).cloned())
        };
        let value = match held {
            Some(held) => held,
            None => {
                let txn = self.db.begin_read()?;
                let table = txn.open_table(CHATS)?;
                table.get(chat_id)?.map(|value| value.value().to_vec())
            }
        };
        value.map(|value| serde_json::from_slice(&value).map_err(Into::into)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::RedbBackend;
    use crate::store::journal::make;
    use crate::store::{Backend, Change, ChatRecord, Observation, Source};

    /// A data directory whose journal has halves of four blocks, so a fifth write switches.
    fn small(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("redb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Made with its marker first: a redb file without one gets a journal of its own.
        drop(RedbBackend::open(&dir).expect("opens"));
        make(&dir.join("sessions.journal"), 4 * 4096).expect("journal");
        dir
    }

    fn record(chat: &str, position: u64) -> ChatRecord {
        let seen = Observation {
            secure_key: Some("K".into()),
            position: Some(position),
            ..Observation::new(1, Source::Gms)
        };
        ChatRecord::create(chat, &seen, "svc").expect("record")
    }

    fn put(chat: &str, position: u64) -> Change {
        Change::Put { record: Box::new(record(chat, position)), frames: Vec::new() }
    }

    /// (name, number) pairs, sorted.
    type Pairs = Vec<(String, u64)>;

    /// Every chat's position and every server's pid, as `load_all` and `read` see them.
    fn held(store: &RedbBackend, chats: &[&str]) -> (Pairs, Pairs) {
        let stored = store.load_all().expect("loads");
        let mut loaded: Vec<_> =
            stored.chats.iter().map(|r| (r.credentials.chat_id.clone(), r.position)).collect();
        loaded.sort();
        let read: Vec<_> = chats
            .iter()
            .filter_map(|chat| store.read(chat).expect("reads"))
            .map(|r| (r.credentials.chat_id.clone(), r.position))
            .collect();
        assert_eq!(loaded, read, "load_all and read agree");
        let mut servers: Vec<_> = stored.servers.into_iter().collect();
        servers.sort();
        (loaded, servers)
    }

    /// Stops as kill -9 would leave it: no last checkpoint.
    fn crash(store: RedbBackend) {
        store.behind.lock().failed = Some("crashed on purpose".into());
        drop(store);
    }

    fn checkpointed(dir: &Path) -> u64 {
        let db = redb::Database::open(dir.join("sessions.redb")).expect("redb");
        let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
        let table = txn.open_table(super::JOURNAL).expect("table");
        table.get(super::CHECKPOINTED).expect("get").map_or(0, |g| g.value())
    }

    #[test]
    fn writes_survive_a_crash_across_halves_and_the_newest_wins() {
        let dir = small("crash");
        let store = RedbBackend::open(&dir).expect("opens");
        // Eleven writes: two halves handed to the checkpoint, the third being written.
        for position in 1..=10 {
            store.write(&[put("a", position)]).expect("writes");
        }
        store
            .write(&[put("b", 1), Change::Server { alias: "117".into(), pid: 7 }])
            .expect("writes");
        store.write(&[Change::Delete("missing".into())]).expect("writes");
        let expected = (vec![("a".into(), 10), ("b".into(), 1)], vec![("117".into(), 7)]);
        assert_eq!(held(&store, &["a", "b", "missing"]), expected);
        crash(store);
        assert_eq!(checkpointed(&dir), 2, "the half being written was not checkpointed");

        let store = RedbBackend::open(&dir).expect("replays");
        assert_eq!(held(&store, &["a", "b", "missing"]), expected, "replayed");
        store.write(&[Change::Delete("b".into())]).expect("writes");
        drop(store);
        let before = checkpointed(&dir);
        let store = RedbBackend::open(&dir).expect("reopens");
        let expected = (vec![("a".into(), 10)], vec![("117".into(), 7)]);
        assert_eq!(held(&store, &["a", "b"]), expected);
        drop(store);
        assert_eq!(checkpointed(&dir), before, "an orderly stop left nothing to replay");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_crash_during_a_checkpoint_replays_both_generations_in_order() {
        let dir = small("paused");
        let store = RedbBackend::open(&dir).expect("opens");
        store.behind.lock().paused = true;
        for position in 1..=4 {
            store.write(&[put("a", position)]).expect("writes");
        }
        // The half is full: generation 1 goes to a checkpoint that never comes.
        store.write(&[put("b", 1)]).expect("writes");
        store.write(&[put("a", 9)]).expect("writes");
        store.write(&[Change::Delete("b".into())]).expect("writes");
        assert_eq!(held(&store, &["a", "b"]).0, [("a".to_owned(), 9)]);
        crash(store);
        assert_eq!(checkpointed(&dir), 0, "generation 1 was never checkpointed");
        let store = RedbBackend::open(&dir).expect("replays");
        assert_eq!(held(&store, &["a", "b"]).0, [("a".to_owned(), 9)], "1, then 2");
        drop(store);
        assert_eq!(checkpointed(&dir), 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_journal_beside_a_new_redb_file_is_not_replayed() {
        let dir = small("foreign");
        let store = RedbBackend::open(&dir).expect("opens");
        store.write(&[put("a", 1)]).expect("writes");
        crash(store);
        std::fs::remove_file(dir.join("sessions.redb")).expect("removes");
        let store = RedbBackend::open(&dir).expect("opens");
        assert_eq!(held(&store, &["a"]), (Vec::new(), Vec::new()));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_write_that_needs_the_next_half_is_left_to_the_blocking_path() {
        let dir = small("now");
        let store = RedbBackend::open(&dir).expect("opens");
        for position in 1..=4 {
            let written = store.write_now(&[put("a", position)]).expect("fits in the half");
            written.expect("writes");
        }
        assert!(store.write_now(&[put("a", 5)]).is_none(), "a switch may wait for a checkpoint");
        store.write(&[put("a", 5)]).expect("writes");
        store.write_now(&[put("a", 6)]).expect("fits in the next half").expect("writes");
        crash(store);
        let store = RedbBackend::open(&dir).expect("replays");
        assert_eq!(held(&store, &["a"]).0, [("a".to_owned(), 6)]);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_batch_larger_than_a_half_takes_several_records() {
        let dir = small("large");
        let store = RedbBackend::open(&dir).expect("opens");
        // Each record is over a block: a batch of nine spans more than a half.
        let padded = |chat: String| {
            let mut record = record(&chat, 3);
            record.service = "s".repeat(5000);
            Change::Put { record: Box::new(record), frames: Vec::new() }
        };
        let chats: Vec<String> = (0..9).map(|i| format!("chat-{i}")).collect();
        store.write(&chats.iter().cloned().map(padded).collect::<Vec<_>>()).expect("writes");
        let names: Vec<&str> = chats.iter().map(String::as_str).collect();
        assert_eq!(held(&store, &names).0.len(), 9);
        crash(store);
        let store = RedbBackend::open(&dir).expect("replays");
        assert_eq!(held(&store, &names).0.len(), 9);
        let huge = {
            let mut record = record("huge", 1);
            record.service = "s".repeat(5 * 4096);
            Change::Put { record: Box::new(record), frames: Vec::new() }
        };
        let error = store.write(&[huge]).expect_err("larger than a half");
        assert!(error.to_string().contains("larger than the store's journal"), "{error}");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
