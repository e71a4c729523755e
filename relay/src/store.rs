//! Durable storage of chat records behind a small trait: redb (one file under the data
//! directory) is the embedded default; a Redis backend can implement the same two calls.

use std::path::Path;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use shared::gms::Credentials;

/// What the relay keeps per chat: enough to acknowledge, ping and restore it.
/// This is the store's own format (JSON values), not a wire type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// The GMS chat service.
    pub service: String,
    /// chatId, userId, secureKey and the latest alias.
    pub credentials: Credentials,
    /// `GCTI_GMS_PushDeviceId`, when known.
    #[serde(default)]
    pub device_id: Option<String>,
    /// The highest `nextPosition` seen.
    #[serde(default)]
    pub position: u64,
}

/// One change to persist: the record as it is now, or its removal.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace.
    Put(ChatRecord),
    /// Forget the chat.
    Delete(String),
}

/// Where records live. Calls block; the relay runs them off the async threads.
pub trait Backend: Send + Sync + 'static {
    /// Every stored record, read once at start.
    fn load_all(&self) -> anyhow::Result<Vec<ChatRecord>>;
    /// Applies changes atomically; when it returns `Ok`, they survive a crash.
    fn write(&self, changes: &[Change]) -> anyhow::Result<()>;
}

const CHATS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("chats");

/// The embedded store: redb commits are fsynced, so a returned write survives kill -9.
pub struct RedbBackend {
    db: Database,
}

impl RedbBackend {
    /// Opens (or creates) `sessions.redb` in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<RedbBackend> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("sessions.redb");
        let db = Database::create(&path).with_context(|| format!("opening {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(CHATS)?;
        txn.commit()?;
        Ok(RedbBackend { db })
    }
}

impl Backend for RedbBackend {
    fn load_all(&self) -> anyhow::Result<Vec<ChatRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHATS)?;
        let mut records = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            match serde_json::from_slice::<ChatRecord>(value.value()) {
                Ok(record) => records.push(record),
                // A record this version cannot read is skipped, not fatal: the widget
                // registers its chat again on its next visit.
                Err(error) => {
                    tracing::warn!(chat = key.value(), %error, "unreadable stored chat skipped");
                }
            }
        }
        Ok(records)
    }

    fn write(&self, changes: &[Change]) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(CHATS)?;
            for change in changes {
                match change {
                    Change::Put(record) => {
                        let value = serde_json::to_vec(record)?;
                        table.insert(record.credentials.chat_id.as_str(), value.as_slice())?;
                    }
                    Change::Delete(chat_id) => {
                        table.remove(chat_id.as_str())?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}
