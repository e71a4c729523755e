//! The store's calls on a Redis Cluster, through redis-rs's async cluster client, which
//! follows slots, redirections and failovers itself; the store's blocking calls wait for it
//! on the store's Redis runtime (`block_on`). A commit sends each slot's commands as one pipeline to the primary
//! that owns the slot, ended by `WAIT` when replicas must hold it, so the wait is on the
//! very connection that wrote; the slots' pipelines go out together. Every script's keys
//! share one hash tag, so each runs on one slot.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{join_all, try_join_all};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
};
use redis::{FromRedisValue, Value};

use super::topology::{WAIT_MILLIS, block_on};
use super::{CALL_TIMEOUT, Topology, replicated};

/// Longest a call may take in all, with redis-rs's retries while a failover settles: past
/// it the write fails (a push gets 503 and GMS sends it again).
const OVERALL: Duration = Duration::from_secs(4);

/// The writer's connection and the reads' (so reads never queue behind a commit's `WAIT`).
pub(super) struct Link {
    writer: ClusterConnection,
    reads: ClusterConnection,
}

impl Link {
    /// Connects both, so an unreachable cluster stops the relay at start.
    pub(super) fn open(topology: &Topology) -> anyhow::Result<Link> {
        let client = client(topology)?;
        let (writer, reads) = block_on(async move {
            let writer = client.get_async_connection().await?;
            let reads = client.get_async_connection().await?;
            redis::RedisResult::Ok((writer, reads))
        })??;
        Ok(Link { writer, reads })
    }

    /// Runs every command on the primary of its slot key, each slot's as one pipeline ended
    /// by `WAIT` when `wait` replicas must hold them; answers each command's reply in order.
    pub(super) fn write(
        &self,
        commands: &[(String, redis::Cmd)],
        wait: u32,
    ) -> anyhow::Result<Vec<Value>> {
        let mut slots: HashMap<Slot, Vec<usize>> = HashMap::new();
        for (index, (key, _)) in commands.iter().enumerate() {
            slots.entry(Slot::for_key(key)).or_default().push(index);
        }
        let sent = slots.into_iter().map(|(slot, indexes)| {
            let mut pipe = redis::pipe();
            for &index in &indexes {
                if let Some((_, command)) = commands.get(index) {
                    pipe.add_command(command.clone());
                }
            }
            if wait > 0 {
                pipe.cmd("WAIT").arg(wait).arg(WAIT_MILLIS);
            }
            let mut connection = self.writer.clone();
            let route =
                SingleNodeRoutingInfo::SpecificNode(Route::with_slot(slot, SlotAddr::Master));
            async move {
                let count = pipe.len();
                (indexes, connection.route_pipeline(pipe, 0, count, route).await)
            }
        });
        let answered = timed(join_all(sent.collect::<Vec<_>>()))?;
        let mut answers: Vec<Option<Value>> = vec![None; commands.len()];
        for (indexes, result) in answered {
            let mut values = counted(result)?;
            if wait > 0 {
                let held = values.pop().map(redis::from_redis_value::<i64>).transpose()?;
                replicated(held.unwrap_or(0), wait)?;
            }
            for (index, value) in indexes.into_iter().zip(values) {
                if let Some(answer) = answers.get_mut(index) {
                    *answer = Some(value);
                }
            }
        }
        answers
            .into_iter()
            .map(|answer| answer.ok_or_else(|| anyhow::anyhow!("a command went unanswered")))
            .collect()
    }

    /// Every key matching `pattern`, from every primary (`SCAN` is per node).
    pub(super) fn keys(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        let pattern = pattern.to_owned();
        let scan = move |cursor: u64| {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
            scan
        };
        let mut connection = self.reads.clone();
        let keys = timed(async move {
            let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
            let Value::Map(nodes) = connection.route_command(scan(0), every).await? else {
                anyhow::bail!("SCAN on every primary answered no map");
            };
            let mut keys = Vec::new();
            for (node, answer) in nodes {
                let node: String = redis::from_redis_value(node)?;
                let (mut cursor, found): (u64, Vec<String>) = redis::from_redis_value(answer)?;
                keys.extend(found);
                let (host, port) = node
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)))
                    .ok_or_else(|| anyhow::anyhow!("no address in {node:?}"))?;
                while cursor != 0 {
                    let at = SingleNodeRoutingInfo::ByAddress { host: host.clone(), port };
                    let answer =
                        connection.route_command(scan(cursor), RoutingInfo::SingleNode(at)).await?;
                    let found: Vec<String>;
                    (cursor, found) = redis::from_redis_value(answer)?;
                    keys.extend(found);
                }
            }
            Ok(keys)
        })?;
        counted(keys)
    }

    /// One read.
    pub(super) fn query<T: FromRedisValue + Send + 'static>(
        &self,
        command: &redis::Cmd,
    ) -> anyhow::Result<T> {
        let (mut connection, command) = (self.reads.clone(), command.clone());
        Ok(counted(timed(async move { command.query_async(&mut connection).await })?)?)
    }

    /// Reads on any slots, sent together; answered in order.
    pub(super) fn query_each<T: FromRedisValue + Send + 'static>(
        &self,
        commands: Vec<redis::Cmd>,
    ) -> anyhow::Result<Vec<T>> {
        let reads: Vec<_> = commands
            .into_iter()
            .map(|command| {
                let mut connection = self.reads.clone();
                async move { command.query_async::<T>(&mut connection).await }
            })
            .collect();
        Ok(counted(timed(try_join_all(reads))?)?)
    }
}

/// `set` on the primary of `key`'s slot, then `WAIT` there when it set a new value and
/// replicas must hold it; answers what `set` answered (`SET … GET`: the value before).
pub(super) fn set_and_wait(
    topology: &Topology,
    key: &str,
    set: &redis::Cmd,
) -> anyhow::Result<Option<Vec<u8>>> {
    let client = client(topology)?;
    let wait = topology.wait();
    let (key, set) = (key.to_owned(), set.clone());
    timed(async move {
        let mut connection = client.get_async_connection().await?;
        let mut pipe = redis::pipe();
        pipe.add_command(set);
        if wait > 0 {
            pipe.cmd("WAIT").arg(wait).arg(WAIT_MILLIS);
        }
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(&key, SlotAddr::Master));
        let count = pipe.len();
        let mut values = connection.route_pipeline(pipe, 0, count, route).await?;
        let held = if wait > 0 { values.pop() } else { None };
        let before: Option<Vec<u8>> = redis::from_redis_value(values.pop().unwrap_or(Value::Nil))?;
        if let (None, Some(held)) = (&before, held) {
            replicated(redis::from_redis_value(held)?, wait)?;
        }
        Ok(before)
    })?
}

/// The store's cluster client: calls time out as the blocking connections' do, and give
/// up within `OVERALL` whatever redis-rs retries.
fn client(topology: &Topology) -> anyhow::Result<redis::cluster::ClusterClient> {
    Ok(topology.cluster_client(|builder| {
        builder
            .connection_timeout(CALL_TIMEOUT)
            .response_timeout(CALL_TIMEOUT)
            .overall_response_timeout(Some(OVERALL))
    })?)
}

/// Counts a failed call in `relay_redis_errors_total`, as the blocking connections' are.
fn counted<T, E>(result: Result<T, E>) -> Result<T, E> {
    if result.is_err() {
        metrics::counter!("relay_redis_errors_total").increment(1);
    }
    result
}

/// Runs `future` from the store's blocking thread, bounded by `OVERALL` (plus `WAIT`'s
/// own time), timed as the blocking connections' calls are (a timeout counts as failed).
fn timed<F>(future: F) -> anyhow::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let started = std::time::Instant::now();
    let bound = OVERALL + Duration::from_millis(WAIT_MILLIS);
    let result = block_on(tokio::time::timeout(bound, future))?;
    metrics::histogram!("relay_redis_command_seconds").record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!("relay_redis_errors_total").increment(1);
    }
    result.map_err(|_| anyhow::anyhow!("Redis Cluster did not answer within {bound:?}"))
}
