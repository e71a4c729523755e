//! The chat records in Redis, shared by several relays. One hash per chat, its key hash
//! tagged by the chat id (Redis Cluster keeps each chat on one slot); a record is written
//! only over the revision it was read at (a Lua compare-and-set), and every change is
//! announced on the changes channel so the other relays' memories follow. `Keys` names
//! everything the relays keep in Redis, and `kept_key` the secrets they share there;
//! `topology` says where Redis is (one server, Sentinel's primary, a Cluster).
//!
//! Calls block (the relay runs them off the async threads). On one server or Sentinel's
//! primary, the writer's commits have one connection and reads a few of their own, each
//! opened again after any failure (for Sentinel, to the primary the sentinels name then):
//! a read (a browser's subscribe) never queues behind a commit, nor a commit behind reads.
//! A Cluster is reached through redis-rs's async cluster client (`cluster`), which follows
//! slots and failovers itself; the writer and reads each have one.
//!
//! With replicas to wait for (Sentinel and Cluster, `--redis-wait-replicas`), a commit ends
//! with `WAIT` on the connection that wrote it, and fails unless enough replicas hold it:
//! a write a failover could lose is never acknowledged.

mod cluster;
mod topology;

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;

pub(crate) use self::topology::Topology;
use crate::store::{Backend, Change, ChatRecord, Conflict, Stored, Written, now_millis};

/// How long one Redis call may take before the write counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections for reads at most: reads are single commands, so a few keep up with many
/// subscribes while bounding what one relay holds open in Redis.
const READ_CONNECTIONS: usize = 4;

/// The rule of a chat's acknowledgement claim, in Lua, for `PUT` and `CLAIM_ACK`. The claim
/// lives in the chat's hash: `a` counts the pushes it covers (none held unless above 0), `d`
/// is when it lapses (ms since the Unix epoch, by the claiming relay's clock), so a relay
/// that dies mid-ping holds it for `ACK_CLAIM` at most. Given `a`, `d` as read, `now` and
/// `ttl`, sets `claimed` (a new claim, this relay's) and `claim`, the fields to write: a new
/// claim covers one push; a push added to a claim held keeps its lapse.
macro_rules! claim_rule {
    () => {
        r"
local claimed = not (tonumber(a or '0') > 0 and tonumber(d or '0') > now)
local claim = {'a', 1, 'd', now + ttl}
if not claimed then claim = {'a', tonumber(a) + 1} end
"
    };
}

/// Writes a record over the revision it was read at, or answers what is stored instead; the
/// record itself is announced, so other relays take it without reading it back. Pushes'
/// frames written with it go out to the relays following the chat, and the claim on
/// acknowledging those pushes is taken, or the pushes added to it, in the record's own
/// `HSET`: one round trip, whose fsync (with `appendfsync always`) the frames wait for
/// anyway, as they follow the write. KEYS: the chat. ARGV: expected revision, record, new
/// revision, changes channel, publish verb, frames channel, the claim's time to live in ms,
/// now in ms, then the frames. Answers {applied, what is stored} or
/// {1, 'claimed' | 'added' | ''}.
const PUT: &str = concat!(
    r"
local v, a, d = unpack(redis.call('HMGET', KEYS[1], 'v', 'a', 'd'))
if tonumber(v or '0') ~= tonumber(ARGV[1]) then
  return {0, redis.call('HGET', KEYS[1], 'r') or ''}
end
if #ARGV < 9 then
  redis.call('HSET', KEYS[1], 'r', ARGV[2], 'v', ARGV[3])
  redis.call('PUBLISH', ARGV[4], ARGV[2])
  return {1, ''}
end
local now, ttl = tonumber(ARGV[8]), tonumber(ARGV[7])
",
    claim_rule!(),
    r"
redis.call('HSET', KEYS[1], 'r', ARGV[2], 'v', ARGV[3], unpack(claim))
redis.call('PUBLISH', ARGV[4], ARGV[2])
for i = 9, #ARGV do redis.call(ARGV[5], ARGV[6], ARGV[i]) end
if claimed then return {1, 'claimed'} end
return {1, 'added'}
"
);

/// Claims a chat's acknowledgement for a push that wrote nothing (a resend), or for a ping
/// once more, by `claim_rule`; a chat not stored has no claim to share (1: ping). KEYS: the
/// chat. ARGV: the claim's time to live in ms, now in ms. Answers 1 when claimed.
pub(crate) const CLAIM_ACK: &str = concat!(
    r"
local v, a, d = unpack(redis.call('HMGET', KEYS[1], 'v', 'a', 'd'))
if not v then return 1 end
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[1])
",
    claim_rule!(),
    r"
redis.call('HSET', KEYS[1], unpack(claim))
if claimed then return 1 end
return 0
"
);

/// Ends a chat's acknowledgement claim and reads how many pushes it covered, in one command
/// (Redis 7 has no `HGETDEL`): `HINCRBY` by this, far below any count, answers the count
/// minus this and leaves the claim at or below 0, which holds nothing. An answer of exactly
/// this found no claim at all: the chat may have been forgotten meanwhile (by the ping
/// itself, when GMS says it ended), and the `HINCRBY` made a hash of it again
/// (`FORGOTTEN_CLAIM`).
pub(crate) const RELEASE_ACK_BY: i64 = -(1 << 40);

/// Deletes a chat's hash that holds no record: what a release makes of a chat forgotten
/// during its ping. KEYS[1]: the chat.
pub(crate) const FORGOTTEN_CLAIM: &str = r"
if redis.call('HEXISTS', KEYS[1], 'r') == 0 then redis.call('DEL', KEYS[1]) end
return 0
";

/// How long a claim on a chat's acknowledgement lasts if its relay dies mid-ping (GMS
/// resends the push meanwhile, so nothing waits longer than its resend).
pub(crate) const ACK_CLAIM: Duration = Duration::from_secs(10);

/// What a relay publishes on a chat's frames channel: its node id (so it skips its own)
/// and the frame.
pub(crate) fn frame_payload(node: &str, frame_json: &str) -> String {
    format!("{node}\n{frame_json}")
}

/// The command publishing on a chat's frames channel: sharded pub/sub on a Cluster (only
/// the shard of the chat's slot carries it).
pub(crate) fn publish_verb(cluster: bool) -> &'static str {
    if cluster { "SPUBLISH" } else { "PUBLISH" }
}

/// Forgets a chat and says so (the announcement is the chat id alone, where a change
/// announces a record). KEYS[1]: the chat. ARGV: changes channel, chat id.
const DELETE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {1, ''}
";

/// Keeps a Chat Server's pid unless another relay holds the watcher's lease: a watcher that
/// lost the lease (paused, cut off) is fenced off. KEYS: servers, lease. ARGV: alias, pid,
/// this node.
const SERVER: &str = r"
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[3] then return {0, ''} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {1, ''}
";

/// The names of everything the relays keep in one Redis database. Keys about one chat
/// share its hash tag, those of the Chat Server watch share `{watch}`, so every script's
/// keys live on one Redis Cluster slot.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_owned() }
    }

    /// A chat's record (a hash: `r` the record, `v` its revision, `a` and `d` the claim on
    /// acknowledging its pushes, `claim_rule`).
    pub(crate) fn chat(&self, chat_id: &str) -> String {
        format!("{}{{{chat_id}}}:chat", self.prefix)
    }

    /// The channel on which a chat's frames reach the relays its browsers are connected to.
    pub(crate) fn frames(&self, chat_id: &str) -> String {
        format!("{}{{{chat_id}}}:frames", self.prefix)
    }

    /// The chat id a frames channel is for.
    pub(crate) fn chat_of_frames<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.prefix)?.strip_prefix('{')?.strip_suffix("}:frames")
    }

    /// The channel announcing which chat changed.
    pub(crate) fn changes(&self) -> String {
        format!("{}changes", self.prefix)
    }

    /// Chat Server alias → last process id.
    fn servers(&self) -> String {
        format!("{}{{watch}}:servers", self.prefix)
    }

    /// The subscription tokens' key, when none is configured.
    pub(crate) fn token_key(&self) -> String {
        format!("{}token-key", self.prefix)
    }

    /// The VAPID private key, when none is configured.
    pub(crate) fn vapid_key(&self) -> String {
        format!("{}vapid-key", self.prefix)
    }

    /// The chat's events (by index) a Web Push notification was sent for.
    pub(crate) fn web_pushed(&self, chat_id: &str) -> String {
        format!("{}{{{chat_id}}}:web-pushed", self.prefix)
    }

    /// Set while some relay has pinged the chat this interval.
    pub(crate) fn pinged(&self, chat_id: &str) -> String {
        format!("{}{{{chat_id}}}:pinged", self.prefix)
    }

    /// The first push body kept for a chat registered with `capture` (redacted; it expires).
    pub(crate) fn capture(&self, chat_id: &str) -> String {
        format!("{}{{{chat_id}}}:capture", self.prefix)
    }

    /// Chat Servers whose restoration has started and not finished.
    pub(crate) fn restoring(&self) -> String {
        format!("{}{{watch}}:restoring", self.prefix)
    }

    /// Names the relay that watches the Chat Servers.
    pub(crate) fn watcher_lease(&self) -> String {
        format!("{}{{watch}}:lease", self.prefix)
    }

    fn every_chat(&self) -> String {
        format!("{}{{*}}:chat", self.prefix)
    }
}

/// The Redis store.
pub(crate) struct RedisBackend {
    keys: Keys,
    /// This relay's node id, which the watcher's lease names.
    node: String,
    /// Replicas each commit waits for.
    wait: u32,
    link: Link,
}

/// How the store's calls reach Redis.
enum Link {
    /// One server or Sentinel's primary, over blocking connections.
    Direct(Direct),
    /// A Cluster, over redis-rs's async cluster client.
    Cluster(Box<cluster::Link>),
}

/// Blocking connections to one server or Sentinel's primary.
struct Direct {
    topology: Topology,
    /// The writer's.
    connection: Mutex<Option<redis::Connection>>,
    reads: ReadPool,
}

impl RedisBackend {
    /// Connects once, so a wrong URL or an unreachable server stops the relay at start.
    pub(crate) fn open(
        topology: Topology,
        keys: Keys,
        node: String,
    ) -> anyhow::Result<RedisBackend> {
        let wait = topology.wait();
        let link = if topology.cluster_seeds().is_some() {
            Link::Cluster(Box::new(
                cluster::Link::open(&topology).context("reaching the Redis Cluster")?,
            ))
        } else {
            let direct =
                Direct { topology, connection: Mutex::new(None), reads: ReadPool::default() };
            direct
                .call(|c| redis::cmd("PING").query::<String>(c).map(drop))
                .context("reaching Redis")?;
            Link::Direct(direct)
        };
        Ok(RedisBackend { keys, node, wait, link })
    }

    /// The slot key and the command of each change, in order.
    fn commands(&self, changes: &[Change]) -> anyhow::Result<Vec<(String, redis::Cmd)>> {
        let channel = self.keys.changes();
        let mut commands = Vec::with_capacity(changes.len());
        for change in changes {
            let mut command = redis::cmd("EVAL");
            let key = match change {
                Change::Put { record, frames } => {
                    let chat_id = &record.credentials.chat_id;
                    let key = self.keys.chat(chat_id);
                    let cluster = matches!(self.link, Link::Cluster(_));
                    command
                        .arg(PUT)
                        .arg(1)
                        .arg(&key)
                        .arg(record.revision.saturating_sub(1))
                        .arg(serde_json::to_string(record)?)
                        .arg(record.revision)
                        .arg(&channel)
                        .arg(publish_verb(cluster))
                        .arg(self.keys.frames(chat_id))
                        .arg(u64::try_from(ACK_CLAIM.as_millis()).unwrap_or(u64::MAX))
                        .arg(now_millis());
                    for frame in frames {
                        command.arg(frame_payload(&self.node, frame));
                    }
                    key
                }
                Change::Delete(chat_id) => {
                    let key = self.keys.chat(chat_id);
                    command.arg(DELETE).arg(1).arg(&key).arg(&channel).arg(chat_id);
                    key
                }
                Change::Server { alias, pid } => {
                    let key = self.keys.servers();
                    command
                        .arg(SERVER)
                        .arg(2)
                        .arg(&key)
                        .arg(self.keys.watcher_lease())
                        .arg(alias)
                        .arg(*pid)
                        .arg(&self.node);
                    key
                }
            };
            commands.push((key, command));
        }
        Ok(commands)
    }
}

impl Direct {
    /// Runs `f` on the connection, opening it first if needed; a failed call drops it.
    fn call<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> anyhow::Result<T> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(self.connect()?);
        }
        let Some(connection) = slot.as_mut() else { anyhow::bail!("no Redis connection") };
        let result = timed(connection, f);
        if result.is_err() {
            *slot = None;
        }
        Ok(result?)
    }

    /// The same on one of the read connections, which the writer's commits never hold. A
    /// read that failed on a connection kept from before is tried once more on a new one
    /// (reads change nothing): after Redis restarts, every kept connection is broken.
    fn read_call<T>(
        &self,
        f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> anyhow::Result<T> {
        loop {
            let mut lease = self.reads.lease(|| self.connect())?;
            let Some(connection) = lease.connection.as_mut() else {
                anyhow::bail!("no Redis connection")
            };
            let result = timed(connection, &f);
            if result.is_ok() {
                return Ok(result?);
            }
            // Dropped rather than given back: the lease frees its place for a new one.
            lease.connection = None;
            if !lease.kept {
                return Ok(result?);
            }
        }
    }

    /// A connection to the server, or to the primary the sentinels name now.
    fn connect(&self) -> anyhow::Result<redis::Connection> {
        let client = self.topology.blocking_primary()?;
        let connection = client.get_connection_with_timeout(CALL_TIMEOUT)?;
        connection.set_read_timeout(Some(CALL_TIMEOUT))?;
        connection.set_write_timeout(Some(CALL_TIMEOUT))?;
        Ok(connection)
    }

    /// Runs the commands in one pipeline, then `WAIT` on the same connection when replicas
    /// must hold them: answers each command's reply.
    fn write(
        &self,
        commands: &[(String, redis::Cmd)],
        wait: u32,
    ) -> anyhow::Result<Vec<redis::Value>> {
        let mut pipe = redis::pipe();
        for (_, command) in commands {
            pipe.add_command(command.clone());
        }
        if wait > 0 {
            pipe.cmd("WAIT").arg(wait).arg(topology::WAIT_MILLIS);
        }
        let mut answers: Vec<redis::Value> = self.call(|c| pipe.query(c))?;
        if wait > 0 {
            let held = answers.pop().map(redis::from_redis_value::<i64>).transpose()?;
            replicated(held.unwrap_or(0), wait)?;
        }
        Ok(answers)
    }
}

/// Fails unless `held` replicas (what `WAIT` answered) are at least `wait`.
fn replicated(held: i64, wait: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        held >= i64::from(wait),
        "the write reached {held} of the {wait} Redis replicas it waits for within {} ms",
        topology::WAIT_MILLIS
    );
    Ok(())
}

/// Runs one call, timed and counted.
fn timed<T>(
    connection: &mut redis::Connection,
    f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
) -> redis::RedisResult<T> {
    let started = Instant::now();
    let result = f(connection);
    metrics::histogram!("relay_redis_command_seconds").record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!("relay_redis_errors_total").increment(1);
    }
    result
}

/// At most `READ_CONNECTIONS` read connections, opened when needed and kept while they work.
#[derive(Default)]
struct ReadPool {
    state: Mutex<PoolState>,
    /// Signalled whenever a connection, or the room for one, is given back.
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<redis::Connection>,
    /// Connections in use or idle, and places taken by connections being opened.
    open: usize,
}

/// One read connection in use; dropping it gives the connection back, or its place when the
/// connection was dropped.
struct Lease<'a> {
    pool: &'a ReadPool,
    connection: Option<redis::Connection>,
    /// Whether the connection was idle in the pool (rather than opened for this lease).
    kept: bool,
}

impl ReadPool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, a new one from `connect` while there is room, or the first one
    /// given back within the call timeout.
    fn lease(
        &self,
        connect: impl FnOnce() -> anyhow::Result<redis::Connection>,
    ) -> anyhow::Result<Lease<'_>> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut state = self.lock();
        loop {
            if let Some(connection) = state.idle.pop() {
                return Ok(Lease { pool: self, connection: Some(connection), kept: true });
            }
            if state.open < READ_CONNECTIONS {
                state.open += 1;
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            anyhow::ensure!(!left.is_zero(), "every Redis read connection stayed busy");
            state = self.freed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        drop(state);
        // Opened unlocked: a slow connect holds up no other read. A failed one frees its place.
        let mut lease = Lease { pool: self, connection: None, kept: false };
        lease.connection = Some(connect()?);
        Ok(lease)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        match self.connection.take() {
            Some(connection) => state.idle.push(connection),
            None => state.open = state.open.saturating_sub(1),
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

fn parse(chat_id: &str, value: &str) -> Option<ChatRecord> {
    match serde_json::from_str(value) {
        Ok(record) => Some(record),
        Err(error) => {
            // A record this version cannot read is skipped: the widget registers again.
            tracing::warn!(chat = chat_id, %error, "unreadable stored chat skipped");
            None
        }
    }
}

impl Backend for RedisBackend {
    fn load_all(&self) -> anyhow::Result<Stored> {
        let pattern = self.keys.every_chat();
        let servers = self.keys.servers();
        let (keys, servers) = match &self.link {
            Link::Direct(direct) => direct.read_call(|c| {
                let keys: Vec<String> = redis::cmd("SCAN")
                    .cursor_arg(0)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .clone()
                    .iter(c)?
                    .collect::<redis::RedisResult<_>>()?;
                let servers: std::collections::HashMap<String, u64> =
                    redis::cmd("HGETALL").arg(&servers).query(c)?;
                Ok((keys, servers))
            })?,
            Link::Cluster(cluster) => {
                (cluster.keys(&pattern)?, cluster.query(redis::cmd("HGETALL").arg(&servers))?)
            }
        };
        let mut stored = Stored { servers, ..Stored::default() };
        for batch in keys.chunks(500) {
            let reads = batch.iter().map(|key| {
                let mut read = redis::cmd("HGET");
                read.arg(key).arg("r");
                read
            });
            let values: Vec<Option<String>> = match &self.link {
                Link::Direct(direct) => direct.read_call(|c| {
                    let mut pipe = redis::pipe();
                    for read in reads.clone() {
                        pipe.add_command(read);
                    }
                    pipe.query(c)
                })?,
                // Each on its own slot: sent together, answered in order.
                Link::Cluster(cluster) => cluster.query_each(reads.collect())?,
            };
            for (key, value) in batch.iter().zip(values) {
                let chat_id = key.rsplit_once('{').map_or(key.as_str(), |(_, rest)| rest);
                let chat_id = chat_id.strip_suffix("}:chat").unwrap_or(chat_id);
                if let Some(record) = value.as_deref().and_then(|v| parse(chat_id, v)) {
                    stored.chats.push(record);
                }
            }
        }
        Ok(stored)
    }

    fn write(&self, changes: &[Change]) -> anyhow::Result<Written> {
        let commands = self.commands(changes)?;
        let answers = match &self.link {
            Link::Direct(direct) => direct.write(&commands, self.wait)?,
            Link::Cluster(cluster) => cluster.write(&commands, self.wait)?,
        };
        anyhow::ensure!(
            answers.len() == changes.len(),
            "Redis answered {} of {}",
            answers.len(),
            changes.len()
        );
        let mut written = Written::default();
        for (change, answer) in changes.iter().zip(answers) {
            let (applied, current): (i64, String) = redis::from_redis_value(answer)?;
            match change {
                Change::Put { record, .. } if applied == 0 => {
                    let chat_id = &record.credentials.chat_id;
                    written.conflicts.push(Conflict {
                        chat_id: chat_id.clone(),
                        current: (!current.is_empty()).then(|| parse(chat_id, &current)).flatten(),
                    });
                }
                Change::Put { record, frames } if !frames.is_empty() => {
                    let claimed = current == "claimed";
                    written.handed.push((record.credentials.chat_id.clone(), claimed));
                }
                Change::Server { alias, .. } if applied == 0 => {
                    tracing::warn!(
                        alias,
                        "not the watcher any more: the Chat Server's pid was not kept"
                    );
                }
                _ => {}
            }
        }
        Ok(written)
    }

    fn read(&self, chat_id: &str) -> anyhow::Result<Option<ChatRecord>> {
        let mut command = redis::cmd("HGET");
        command.arg(self.keys.chat(chat_id)).arg("r");
        let value: Option<String> = match &self.link {
            Link::Direct(direct) => direct.read_call(|c| command.query(c))?,
            Link::Cluster(cluster) => cluster.query(&command)?,
        };
        Ok(value.as_deref().and_then(|v| parse(chat_id, v)))
    }

    fn read_servers(&self) -> anyhow::Result<std::collections::HashMap<String, u64>> {
        let mut command = redis::cmd("HGETALL");
        command.arg(self.keys.servers());
        match &self.link {
            Link::Direct(direct) => direct.read_call(|c| command.query(c)),
            Link::Cluster(cluster) => cluster.query(&command),
        }
    }

    fn shared(&self) -> bool {
        true
    }
}

/// A secret every relay shares: the one in Redis under `key`, made by `fresh` and stored by
/// the first relay to start (and, where writes wait for replicas, held by them before it
/// is used: a failover must not bring another key up). Blocks.
pub(crate) fn kept_key(
    topology: &Topology,
    key: &str,
    fresh: impl FnOnce() -> Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    let fresh = fresh();
    let mut set = redis::cmd("SET");
    set.arg(key).arg(&fresh).arg("NX").arg("GET");
    let kept: Option<Vec<u8>> = if topology.cluster_seeds().is_some() {
        cluster::set_and_wait(topology, key, &set)?
    } else {
        let client = topology.blocking_primary()?;
        let mut connection = client.get_connection_with_timeout(CALL_TIMEOUT)?;
        connection
            .set_read_timeout(Some(CALL_TIMEOUT + Duration::from_millis(topology::WAIT_MILLIS)))?;
        let kept: Option<Vec<u8>> = set.query(&mut connection)?;
        if kept.is_none() && topology.wait() > 0 {
            let held: i64 = redis::cmd("WAIT")
                .arg(topology.wait())
                .arg(topology::WAIT_MILLIS)
                .query(&mut connection)?;
            replicated(held, topology.wait())?;
        }
        kept
    };
    let kept = kept.unwrap_or(fresh);
    anyhow::ensure!(kept.len() >= 32, "{key} in Redis is too short to be a key");
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn a_chats_keys_share_its_hash_tag_and_its_frames_channel_names_it() {
        let keys = Keys::new("gmschat:");
        assert_eq!(keys.chat("00AB"), "gmschat:{00AB}:chat");
        assert_eq!(keys.frames("00AB"), "gmschat:{00AB}:frames");
        assert_eq!(keys.chat_of_frames(&keys.frames("00AB")), Some("00AB"));
        assert_eq!(keys.chat_of_frames("other:{00AB}:frames"), None);
        assert_eq!(keys.chat_of_frames(&keys.changes()), None);
    }
}
