//! The embedded store: one redb file under the data directory, written by this relay alone.

use std::path::Path;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::{Backend, Change, ChatRecord, Stored, Written};

const CHATS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("chats");
const SERVERS: TableDefinition<'_, &str, u64> = TableDefinition::new("chat_servers");

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
        txn.open_table(SERVERS)?;
        txn.commit()?;
        Ok(RedbBackend { db })
    }
}

impl Backend for RedbBackend {
    fn load_all(&self) -> anyhow::Result<Stored> {
        let txn = self.db.begin_read()?;
        let mut stored = Stored::default();
        for entry in txn.open_table(CHATS)?.iter()? {
            let (key, value) = entry?;
            match serde_json::from_slice::<ChatRecord>(value.value()) {
                Ok(record) => stored.chats.push(record),
                // A record this version cannot read is skipped, not fatal: the widget
                // registers its chat again on its next visit.
                Err(error) => {
                    tracing::warn!(chat = key.value(), %error, "unreadable stored chat skipped");
                }
            }
        }
        for entry in txn.open_table(SERVERS)?.iter()? {
            let (alias, pid) = entry?;
            stored.servers.insert(alias.value().to_owned(), pid.value());
        }
        Ok(stored)
    }

    fn write(&self, changes: &[Change]) -> anyhow::Result<Written> {
        let txn = self.db.begin_write()?;
        {
            let mut chats = txn.open_table(CHATS)?;
            let mut servers = txn.open_table(SERVERS)?;
            for change in changes {
                match change {
                    Change::Put { record, .. } => {
                        let value = serde_json::to_vec(record)?;
                        chats.insert(record.credentials.chat_id.as_str(), value.as_slice())?;
                    }
                    Change::Delete(chat_id) => {
                        chats.remove(chat_id.as_str())?;
                    }
                    Change::Server { alias, pid } => {
                        servers.insert(alias.as_str(), *pid)?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(Written::default())
    }

    fn read(&self, chat_id: &str) -> anyhow::Result<Option<ChatRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHATS)?;
        let Some(value) = table.get(chat_id)? else { return Ok(None) };
        Ok(Some(serde_json::from_slice(value.value())?))
    }
}
