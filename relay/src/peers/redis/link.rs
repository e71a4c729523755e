//! The bus's connection to Redis, whatever the topology: one server (redis-rs's connection
//! manager reconnects to it and subscribes again), Sentinel's primary, or a Cluster.
//!
//! Sentinel's primary moves at a failover, and the manager only ever reconnects to one
//! address, so there the link holds one multiplexed connection, which the catch-up after a
//! lost connection (`reconnect`) replaces with one to the primary the sentinels name then:
//! the "Redis away" path, not a second one. Sentinel closes every client of a server whose
//! role it changes; a connection that times out or finds a replica (`READONLY`) counts as
//! lost too. A Cluster is left to redis-rs's cluster connection, which follows slots and
//! failovers and moves subscriptions itself; there frames use sharded pub/sub, so a chat's
//! frames travel only on the shard that owns its slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncConnectionConfig, FromRedisValue, PushInfo, PushKind, RedisResult};
use tokio::sync::mpsc::UnboundedSender;

use crate::store::redis::{Topology, publish_verb};

/// How long connecting, and each answer, may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a Cluster call may take with redis-rs's retries while a failover settles.
const OVERALL: Duration = Duration::from_secs(4);

/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(super) struct Link {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Server(ConnectionManager),
    Primary(Arc<Primary>),
    Cluster(ClusterConnection),
}

/// The connection to Sentinel's primary of the moment.
struct Primary {
    topology: Topology,
    current: Mutex<MultiplexedConnection>,
    /// Where pushes go, and where a lost connection is announced.
    pushes: UnboundedSender<PushInfo>,
    /// Set once the connection is announced lost, until `reconnect` replaces it: one
    /// catch-up per loss, however many calls fail meanwhile.
    lost: AtomicBool,
}

impl Link {
    /// Connects with RESP3, so one connection both subscribes and publishes, its pushes
    /// (messages, and `Disconnection` when it is lost) going to `pushes`.
    pub(super) async fn open(
        topology: &Topology,
        pushes: UnboundedSender<PushInfo>,
    ) -> anyhow::Result<Link> {
        let kind = if topology.cluster_seeds().is_some() {
            let client = topology.cluster_client(|builder| {
                builder
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushes)
                    .connection_timeout(TIMEOUT)
                    .response_timeout(TIMEOUT)
                    .overall_response_timeout(Some(OVERALL))
            })?;
            Kind::Cluster(client.get_async_connection().await?)
        } else if topology.primary_moves() {
            let current = Mutex::new(connect(topology, pushes.clone()).await?);
            let lost = AtomicBool::new(false);
            Kind::Primary(Arc::new(Primary { topology: topology.clone(), current, pushes, lost }))
        } else {
            let config = ConnectionManagerConfig::new()
                .set_push_sender(pushes)
                .set_automatic_resubscription()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT))
                .set_max_delay(TIMEOUT);
            let client = resp3(&topology.primary().await?)?;
            Kind::Server(client.get_connection_manager_with_config(config).await?)
        };
        Ok(Link { kind })
    }

    /// Runs one command.
    pub(super) async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> RedisResult<T> {
        match &self.kind {
            Kind::Server(manager) => command.query_async(&mut manager.clone()).await,
            Kind::Primary(primary) => {
                let result = command.query_async(&mut primary.connection()).await;
                if let Err(error) = &result {
                    primary.failed(error);
                }
                result
            }
            Kind::Cluster(cluster) => command.query_async(&mut cluster.clone()).await,
        }
    }

    /// Subscribes to the changes channel (plain pub/sub: every relay hears every change,
    /// on a Cluster from whichever node it subscribed on).
    pub(super) async fn subscribe(&self, channel: String) -> RedisResult<()> {
        match &self.kind {
            Kind::Server(manager) => manager.clone().subscribe(channel).await,
            Kind::Primary(primary) => primary.connection().subscribe(channel).await,
            Kind::Cluster(cluster) => cluster.clone().subscribe(channel).await,
        }
    }

    /// Subscribes to chats' frames channels.
    pub(super) async fn follow(&self, channels: Vec<String>) -> RedisResult<()> {
        match &self.kind {
            Kind::Server(manager) => manager.clone().subscribe(channels).await,
            Kind::Primary(primary) => primary.connection().subscribe(channels).await,
            // One command per channel: each is on a slot of its own.
            Kind::Cluster(cluster) => {
                let each = channels.into_iter().map(|channel| {
                    let mut cluster = cluster.clone();
                    async move { cluster.ssubscribe(channel).await }
                });
                try_join_all(each).await.map(drop)
            }
        }
    }

    /// Unsubscribes from a chat's frames channel.
    pub(super) async fn unfollow(&self, channel: String) -> RedisResult<()> {
        match &self.kind {
            Kind::Server(manager) => manager.clone().unsubscribe(channel).await,
            Kind::Primary(primary) => primary.connection().unsubscribe(channel).await,
            Kind::Cluster(cluster) => cluster.clone().sunsubscribe(channel).await,
        }
    }

    /// Publishes a frame on a chat's frames channel (sharded on a Cluster).
    pub(super) async fn publish(&self, channel: String, payload: String) -> RedisResult<i64> {
        let verb = publish_verb(matches!(self.kind, Kind::Cluster(_)));
        self.query(redis::cmd(verb).arg(channel).arg(payload)).await
    }

    /// How many connections, on any relay, follow a frames channel.
    pub(super) async fn followers(&self, channel: String) -> RedisResult<i64> {
        // A map in RESP3, pairs in RESP2: redis-rs reads both as a map.
        let counts: std::collections::HashMap<String, i64> = match &self.kind {
            // Asked of the primary owning the channel's slot, the only one its subscribers
            // are on.
            Kind::Cluster(cluster) => {
                let route = Route::with_key(channel.as_bytes(), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let mut command = redis::cmd("PUBSUB");
                command.arg("SHARDNUMSUB").arg(&channel);
                let answer = cluster.clone().route_command(command, routing).await?;
                redis::from_redis_value(answer)?
            }
            _ => self.query(redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel)).await?,
        };
        Ok(counts.values().sum())
    }

    /// After a lost connection: connects again where the primary is now (Sentinel), with
    /// nothing subscribed yet. The other topologies reconnect by themselves.
    pub(super) async fn reconnect(&self) -> anyhow::Result<()> {
        let Kind::Primary(primary) = &self.kind else { return Ok(()) };
        let fresh = connect(&primary.topology, primary.pushes.clone()).await?;
        *primary.current.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        primary.lost.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// Whether a pushed message carries a channel's payload (plain or sharded pub/sub).
pub(super) fn is_message(kind: &PushKind) -> bool {
    matches!(kind, PushKind::Message | PushKind::SMessage)
}

impl Primary {
    fn connection(&self) -> MultiplexedConnection {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A call failed: if the connection is gone, hung or on a replica now, announce it lost
    /// (once), which starts the catch-up.
    fn failed(&self, error: &redis::RedisError) {
        let demoted =
            matches!(error.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly));
        let gone = error.is_timeout() || error.is_unrecoverable_error() || demoted;
        if gone && !self.lost.swap(true, Ordering::Relaxed) {
            let _ = self.pushes.send(PushInfo { kind: PushKind::Disconnection, data: Vec::new() });
        }
    }
}

/// A multiplexed RESP3 connection to the primary of the moment, its pushes to `pushes`.
async fn connect(
    topology: &Topology,
    pushes: UnboundedSender<PushInfo>,
) -> anyhow::Result<MultiplexedConnection> {
    let client = resp3(&topology.primary().await?)?;
    let config = AsyncConnectionConfig::new()
        .set_push_sender(pushes)
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT));
    Ok(client.get_multiplexed_async_connection_with_config(&config).await?)
}

/// The same client speaking RESP3, whose pushes arrive on the connection that publishes.
fn resp3(client: &redis::Client) -> RedisResult<redis::Client> {
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings))
}
