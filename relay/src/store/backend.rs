//! The durability trait every store implements, and what passes through it: everything
//! read at start, the changes written, the conflicts a shared store answers.

use std::collections::HashMap;

use crate::store::ChatRecord;

/// Everything the store holds, read once at start.
#[derive(Debug, Default)]
pub struct Stored {
    pub chats: Vec<ChatRecord>,
    /// Chat Server alias (`app_dbid`) → the `process_os_pid` last seen.
    pub servers: HashMap<String, u64>,
}

/// One change to persist.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace a chat: stored only over `revision - 1` (nothing, for 1). A store
    /// other relays share also hands `frames` (pushes' frames, JSON) to the relays whose
    /// browsers follow the chat and claims the acknowledgement of those pushes, in the
    /// same commit, and says so in `Written::handed`; another store ignores them.
    Put { record: Box<ChatRecord>, frames: Vec<String> },
    /// Forget a chat, whatever its revision.
    Delete(String),
    /// The process id a Chat Server runs as now.
    Server { alias: String, pid: u64 },
}

/// A `Put` that found another revision stored (another relay changed the chat first): it
/// was not applied, and this is what is stored now.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub chat_id: String,
    pub current: Option<ChatRecord>,
}

/// What a write did besides what it was asked.
#[derive(Debug, Default)]
pub struct Written {
    /// The `Put`s not applied.
    pub conflicts: Vec<Conflict>,
    /// The chats whose `frames` went to the other relays, and whether this relay now
    /// holds the claim on acknowledging their pushes (false: the pushes were added to the
    /// claim another acknowledgement holds, which pings once more for them).
    pub handed: Vec<(String, bool)>,
}

/// Where records live. Calls block; the relay runs them off the async threads, except
/// `write_now`.
pub trait Backend: Send + Sync + 'static {
    /// Everything stored.
    fn load_all(&self) -> anyhow::Result<Stored>;
    /// Applies changes; when it returns `Ok`, every change but the conflicting ones
    /// survives a crash. A store only one relay writes never conflicts.
    fn write(&self, changes: &[Change]) -> anyhow::Result<Written>;
    /// `write`, when this store can do it at once on the calling (async) thread: without
    /// waiting for anything but a short write to a local disk. None: call `write`.
    fn write_now(&self, _changes: &[Change]) -> Option<anyhow::Result<Written>> {
        None
    }
    /// One chat as stored now.
    fn read(&self, chat_id: &str) -> anyhow::Result<Option<ChatRecord>>;
    /// Every Chat Server's last process id as stored now.
    fn read_servers(&self) -> anyhow::Result<HashMap<String, u64>> {
        Ok(self.load_all()?.servers)
    }
    /// Whether other relays write this store too, so a relay's memory of it may be behind.
    fn shared(&self) -> bool {
        false
    }
}
