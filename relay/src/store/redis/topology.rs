//! How the relays reach Redis: one server (`redis://`), the primary Redis Sentinel names
//! (`redis+sentinel://`), or a Redis Cluster (`--redis-cluster`), and how many replicas
//! each durable write waits for.
//!
//! Sentinel's primary is asked for again at every (re)connection, through redis-rs's own
//! Sentinel client (its async side, whose connections time out; the blocking side's do
//! not): the sentinels answer the primary of the moment and redis-rs checks its `ROLE`, so
//! a connection never lands on a demoted primary for long (Sentinel also closes every
//! client of a server whose role it changes). A Cluster is left to redis-rs's cluster
//! client, which follows slots, redirections and failovers itself.

use std::sync::{Arc, OnceLock};

use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo as _, RedisConnectionInfo};

/// The port a sentinel listens on when the URL names none.
const SENTINEL_PORT: u16 = 26379;

/// How long a durable write waits for its replicas (`WAIT`) before it counts as failed.
pub(crate) const WAIT_MILLIS: u64 = 1000;

/// Where Redis is, and how many replicas must hold a durable write before it counts.
#[derive(Clone)]
pub(crate) struct Topology {
    nodes: Nodes,
    wait: u32,
}

#[derive(Clone)]
enum Nodes {
    /// One server; its address never changes.
    Server(Box<redis::Client>),
    /// The primary the sentinels name now.
    Sentinel(Arc<Sentinel>),
    /// A Redis Cluster, from its seed nodes.
    Cluster(Arc<[ConnectionInfo]>),
}

/// What a `redis+sentinel://` URL says.
struct Sentinel {
    sentinels: Vec<ConnectionAddr>,
    master: String,
    /// The primary's credentials and database.
    primary: RedisConnectionInfo,
    tls: bool,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

impl Topology {
    /// `redis://`/`rediss://` (one server) or `redis+sentinel://`/`rediss+sentinel://`
    /// (`[[user]:password@]host[:port],host[:port]/<master>[/<db>]`, then optionally
    /// `?sentinel_username=…&sentinel_password=…` for sentinels that want their own).
    pub(crate) fn from_url(text: &str) -> Result<Topology, String> {
        let Some(rest) = text
            .strip_prefix("redis+sentinel://")
            .map(|rest| (false, rest))
            .or_else(|| text.strip_prefix("rediss+sentinel://").map(|rest| (true, rest)))
        else {
            let client = redis::Client::open(text).map_err(|e| e.to_string())?;
            return Ok(Topology { nodes: Nodes::Server(Box::new(client)), wait: 0 });
        };
        let (tls, rest) = rest;
        let list = HostList::split(rest)?;
        let (master, db) = match list.path.split_once('/') {
            Some((master, db)) => (master, db),
            None => (list.path, "0"),
        };
        if master.is_empty() || !master.chars().all(|c| c.is_ascii_graphic()) {
            return Err("the URL names no master after the hosts: …/<master>".to_owned());
        }
        let db: i64 = db.parse().map_err(|_| format!("{db:?} is not a database number"))?;
        let scheme = if tls { "rediss" } else { "redis" };
        let sentinels = list
            .hosts
            .iter()
            .map(|host| {
                let info = format!("{scheme}://{}", with_port(host, SENTINEL_PORT))
                    .into_connection_info()
                    .map_err(|e| format!("sentinel {host:?}: {e}"))?;
                Ok(info.addr().clone())
            })
            .collect::<Result<Vec<_>, String>>()?;
        // The credentials are read as redis-rs reads a plain URL's (percent-decoded).
        let userinfo = list.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let first = list.hosts.first().ok_or("no sentinel")?;
        let primary = format!("{scheme}://{userinfo}{}/{db}", with_port(first, SENTINEL_PORT))
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .redis_settings()
            .clone();
        let mut sentinel = Sentinel {
            sentinels,
            master: master.to_owned(),
            primary,
            tls,
            sentinel_username: None,
            sentinel_password: None,
        };
        if let Some(query) = list.query {
            let url = reqwest::Url::parse(&format!("http://query/?{query}"))
                .map_err(|e| format!("the URL's query: {e}"))?;
            for (name, value) in url.query_pairs() {
                match &*name {
                    "sentinel_username" => sentinel.sentinel_username = Some(value.into_owned()),
                    "sentinel_password" => sentinel.sentinel_password = Some(value.into_owned()),
                    other => return Err(format!("unknown parameter {other:?} in the URL")),
                }
            }
        }
        Ok(Topology { nodes: Nodes::Sentinel(Arc::new(sentinel)), wait: 1 })
    }

    /// A Cluster's seed nodes: `host:port,host:port`, or with TLS and credentials
    /// `rediss://[[user]:password@]host:port,host:port`.
    pub(crate) fn cluster(text: &str) -> Result<Topology, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some(("redis", rest)) => ("redis", rest),
            Some(("rediss", rest)) => ("rediss", rest),
            Some((other, _)) => return Err(format!("{other}:// is not redis:// nor rediss://")),
            None => ("redis", text),
        };
        let list = HostList::split(rest)?;
        if !list.path.is_empty() || list.query.is_some() {
            return Err("a Cluster has only database 0: nothing follows the hosts".to_owned());
        }
        let userinfo = list.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let seeds = list
            .hosts
            .iter()
            .map(|host| {
                format!("{scheme}://{userinfo}{}", with_port(host, 6379))
                    .into_connection_info()
                    .map_err(|e| format!("seed {host:?}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Topology { nodes: Nodes::Cluster(Arc::from(seeds)), wait: 1 })
    }

    /// Replicas a durable write waits for: `configured`, else none for one server and one
    /// for Sentinel's primary and a Cluster's.
    pub(crate) fn waiting(self, configured: Option<u32>) -> Topology {
        Topology { wait: configured.unwrap_or(self.wait), ..self }
    }

    /// Replicas a durable write waits for (0: it does not wait).
    pub(crate) fn wait(&self) -> u32 {
        self.wait
    }

    /// Whether the primary may move (Sentinel): connections must ask where it is again.
    pub(crate) fn primary_moves(&self) -> bool {
        matches!(self.nodes, Nodes::Sentinel(_))
    }

    /// The seed nodes, when this is a Cluster.
    pub(crate) fn cluster_seeds(&self) -> Option<&[ConnectionInfo]> {
        match &self.nodes {
            Nodes::Cluster(seeds) => Some(seeds),
            _ => None,
        }
    }

    /// A client for the primary: the server, or the one the sentinels name now (checked
    /// with `ROLE`). A Cluster has no one primary.
    pub(crate) async fn primary(&self) -> redis::RedisResult<redis::Client> {
        match &self.nodes {
            Nodes::Server(client) => Ok((**client).clone()),
            Nodes::Sentinel(sentinel) => sentinel.primary().await,
            Nodes::Cluster(_) => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a Redis Cluster has no one primary",
            ))),
        }
    }

    /// `primary` from a blocking thread (the store's): the Sentinel client is async.
    pub(crate) fn blocking_primary(&self) -> anyhow::Result<redis::Client> {
        match &self.nodes {
            Nodes::Server(client) => Ok((**client).clone()),
            _ => {
                let topology = self.clone();
                Ok(block_on(async move { topology.primary().await })??)
            }
        }
    }

    /// A cluster client for these seeds, with `configure`'s settings.
    pub(crate) fn cluster_client(
        &self,
        configure: impl FnOnce(
            redis::cluster::ClusterClientBuilder,
        ) -> redis::cluster::ClusterClientBuilder,
    ) -> redis::RedisResult<redis::cluster::ClusterClient> {
        let seeds = self.cluster_seeds().ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "not a Redis Cluster"))
        })?;
        configure(redis::cluster::ClusterClientBuilder::new(seeds.to_vec())).build()
    }
}

impl Sentinel {
    /// Asks the sentinels, in turn, for the primary, and checks that it is one. A fresh
    /// Sentinel client each time: this runs only at (re)connections, and nothing is shared
    /// between callers.
    async fn primary(&self) -> redis::RedisResult<redis::Client> {
        let mut builder = SentinelClientBuilder::new(
            self.sentinels.iter().cloned(),
            &self.master,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_db(self.primary.db());
        if let Some(username) = self.primary.username() {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = self.primary.password() {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(username) = &self.sentinel_username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if self.tls {
            builder = builder
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
        }
        builder.build()?.async_get_client().await
    }
}

/// Runs `future` to its end on the store's own Redis runtime and waits for it: the store's
/// calls block, redis-rs's Sentinel and Cluster clients are async, and the caller may be a
/// blocking-pool thread or an async one (the start reads everything once in place), on a
/// runtime of either flavour. One thread of its own drives the clients' connections, so
/// waiting here never starts a runtime within a runtime nor starves the one driving them.
pub(crate) fn block_on<F>(future: F) -> anyhow::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("relay-redis")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("starting the Redis runtime: {e}"))?;
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = done.send(future.await);
    });
    answer.recv().map_err(|_| anyhow::anyhow!("the Redis call ended unanswered"))
}

/// One scheme's hosts, credentials, path and query: `[userinfo@]h1,h2[/path][?query]`.
struct HostList<'a> {
    userinfo: Option<&'a str>,
    hosts: Vec<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> HostList<'a> {
    fn split(rest: &'a str) -> Result<HostList<'a>, String> {
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // The last `@`: the hosts hold none, a password might.
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let hosts: Vec<&str> = hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
        if hosts.is_empty() {
            return Err("no host:port".to_owned());
        }
        Ok(HostList { userinfo, hosts, path: path.trim_end_matches('/'), query })
    }
}

/// `host` with `port` appended unless it names one (`[::1]:6379` does, `[::1]` does not).
fn with_port(host: &str, port: u16) -> String {
    let named = match host.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => host.contains(':'),
    };
    if named { host.to_owned() } else { format!("{host}:{port}") }
}

#[cfg(test)]
mod tests {
    use super::{Nodes, Topology};

    #[test]
    fn a_sentinel_url_names_the_sentinels_the_master_and_the_primarys_credentials() {
        let topology =
            Topology::from_url("redis+sentinel://:s%40cret@10.0.0.1,10.0.0.2:26380/mymaster/2")
                .expect("parses");
        assert_eq!(topology.wait(), 1);
        let Nodes::Sentinel(sentinel) = &topology.nodes else { panic!("not Sentinel") };
        let addrs: Vec<String> = sentinel.sentinels.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, ["10.0.0.1:26379", "10.0.0.2:26380"]);
        assert_eq!(sentinel.master, "mymaster");
        assert_eq!(sentinel.primary.password(), Some("s@cret"));
        assert_eq!(sentinel.primary.db(), 2);
        assert!(!sentinel.tls);
        assert_eq!(sentinel.sentinel_password, None);

        let tls = Topology::from_url(
            "rediss+sentinel://h:1/m?sentinel_password=p%26q&sentinel_username=ops",
        )
        .expect("parses");
        let Nodes::Sentinel(sentinel) = &tls.nodes else { panic!("not Sentinel") };
        assert!(sentinel.tls);
        assert_eq!(sentinel.sentinel_password.as_deref(), Some("p&q"));
        assert_eq!(sentinel.sentinel_username.as_deref(), Some("ops"));
        assert_eq!(tls.clone().waiting(Some(2)).wait(), 2);

        for bad in [
            "redis+sentinel://h1,h2",
            "redis+sentinel://h1/",
            "redis+sentinel:///m",
            "redis+sentinel://h/m/x",
            "redis+sentinel://h/m?other=1",
        ] {
            assert!(Topology::from_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_plain_url_is_one_server_that_waits_for_no_replica() {
        let topology = Topology::from_url("redis://:pw@127.0.0.1:6379/0").expect("parses");
        assert!(matches!(topology.nodes, Nodes::Server(_)));
        assert_eq!(topology.wait(), 0);
        assert!(Topology::from_url("http://x").is_err());
    }

    #[test]
    fn cluster_seeds_are_host_port_pairs_under_one_scheme_and_password() {
        let topology = Topology::cluster("127.0.0.1:7000, 127.0.0.1:7001,[::1]").expect("parses");
        let seeds = topology.cluster_seeds().expect("a cluster");
        let addrs: Vec<String> = seeds.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:7000", "127.0.0.1:7001", "::1:6379"]);
        let secured = Topology::cluster("rediss://:pw@a:1,b:2").expect("parses");
        let seeds = secured.cluster_seeds().expect("a cluster");
        assert!(seeds.iter().all(|s| s.redis_settings().password() == Some("pw")));
        assert!(matches!(seeds[1].addr(), redis::ConnectionAddr::TcpTls { .. }));
        for bad in ["", "a:1/0", "http://a:1", "a:x"] {
            assert!(Topology::cluster(bad).is_err(), "{bad:?} accepted");
        }
    }
}
