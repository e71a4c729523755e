//! What the relay keeps durably, the chat records and each Chat Server's last pid: the record
//! and its one merge rule (`record`), the trait every store implements (`backend`), and the
//! two stores, redb behind its journal for one relay (the default; `redb`, `journal`) and
//! Redis for several (`redis`).

mod backend;
mod journal;
mod record;
mod redb;
pub(crate) mod redis;

pub use self::backend::{Backend, Change, Conflict, Stored, Written};
pub use self::record::{
    ChatRecord, Observation, ProposedTokens, Source, WebPushSubscription, now_millis,
};
pub use self::redb::RedbBackend;
