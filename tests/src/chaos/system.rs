//! The system under chaos: gms-sim in-process, the relays as processes on fixed ports
//! (so they can be killed and come back on the same address), their Redis (one server,
//! Sentinel or a Cluster) when they have one, and the proxy in front of the relays; and how
//! each fault is done to it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::proxy::Proxy;
use super::schedule::{Fault, Store};
use crate::gms_client::SimAdmin;
use crate::harness::{
    RedisClusterNodes, RedisSentinels, RedisServer, RelayProcess, free_port, relay_binary,
    scratch_dir,
};
use crate::support::{RelayArgs, push_url};

/// How pushes are resent: often and long enough that a relay restart or a lost push is
/// repaired by a resend, as Chat Server's resend is meant to.
const RESEND_DELAY: &str = "1";
const RESEND_ATTEMPTS: &str = "60";

/// The relays' Redis, in the topology the run asked for.
pub(crate) enum Redis {
    Server(RedisServer),
    Sentinel(RedisSentinels),
    Cluster(RedisClusterNodes),
}

impl Redis {
    async fn start(store: Store) -> Result<Option<Redis>> {
        Ok(match store {
            Store::Disk => None,
            Store::Server => Some(Redis::Server(RedisServer::start().await?)),
            Store::Sentinel => Some(Redis::Sentinel(RedisSentinels::start().await?)),
            Store::Cluster => Some(Redis::Cluster(RedisClusterNodes::start().await?)),
        })
    }

    /// The relay's flags that name it.
    fn flags(&self) -> Vec<String> {
        match self {
            Redis::Server(server) => vec!["--redis-url".to_owned(), server.url()],
            Redis::Sentinel(sentinels) => vec!["--redis-url".to_owned(), sentinels.url()],
            Redis::Cluster(nodes) => vec!["--redis-cluster".to_owned(), nodes.seeds()],
        }
    }
}

/// Everything the visitors talk to.
pub(crate) struct Chaos {
    pub(crate) gms: gms_sim::Running,
    pub(crate) admin: SimAdmin,
    pub(crate) proxy: Proxy,
    pub(crate) redis: Option<Redis>,
    relays: Vec<Option<RelayProcess>>,
    relay_args: Vec<Vec<String>>,
    relay_ports: Vec<u16>,
    binary: PathBuf,
    aliases: Vec<String>,
    dirs: Vec<PathBuf>,
    stop: CancellationToken,
    /// Relay starts that ended with the process exiting, started again.
    pub(crate) failed_starts: u64,
}

impl Chaos {
    /// Starts `relays` relays (on `store`, which must be a Redis when there are several),
    /// the proxy and gms-sim (laying pushes out as `push_format` says, if given), with a
    /// host page for the widget from `widget_dist`.
    pub(crate) async fn start(
        relays: usize,
        store: Store,
        widget: Option<PathBuf>,
        push_format: Option<&str>,
        gms_proxy: bool,
    ) -> Result<Chaos> {
        let stop = CancellationToken::new();
        let relay_ports = (0..relays).map(|_| free_port()).collect::<Result<Vec<u16>>>()?;
        let upstreams = relay_ports.iter().map(|p| ([127, 0, 0, 1], *p).into()).collect();
        let proxy = Proxy::start(upstreams, stop.clone()).await?;
        anyhow::ensure!(relays == 1 || store != Store::Disk, "several relays need a Redis");
        let redis = Redis::start(store).await?;
        let mut sim_args = vec!["gms-sim", "--listen", "127.0.0.1:0", "--cors-origin", &proxy.url]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<String>>();
        sim_args.extend(
            ["--push-resend-delay", RESEND_DELAY, "--push-resend-attempts", RESEND_ATTEMPTS]
                .map(str::to_owned),
        );
        for port in &relay_ports {
            sim_args
                .extend(["--push-url".to_owned(), push_url(&format!("http://127.0.0.1:{port}"))]);
        }
        if let Some(format) = push_format {
            sim_args.extend(["--push-format".to_owned(), format.to_owned()]);
        }
        let gms = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;
        let admin = SimAdmin::new(&gms.url());
        let site = match &widget {
            Some(dist) => {
                let config = shared::widget_config::WidgetConfig {
                    gms_url: gms.url(),
                    ..shared::widget_config::WidgetConfig::default()
                };
                Some(crate::harness::host_site(dist, &config)?)
            }
            None => None,
        };
        let mut chaos = Chaos {
            aliases: gms.chat_servers.iter().map(|(alias, _)| alias.clone()).collect(),
            admin,
            proxy,
            redis,
            relays: Vec::new(),
            relay_args: Vec::new(),
            relay_ports,
            binary: relay_binary()?,
            dirs: Vec::new(),
            stop,
            failed_starts: 0,
            gms,
        };
        for port in chaos.relay_ports.clone() {
            let dir = scratch_dir("chaos-relay")?;
            let mut args = RelayArgs::new(&format!("127.0.0.1:{port}"), &chaos.gms.url(), &dir)
                .no_client_limits()
                .watch(&chaos.gms.chat_servers);
            if let Some(redis) = &chaos.redis {
                args = args.flags(redis.flags());
            }
            if let Some(site) = &site {
                args = args.site(site);
            }
            if gms_proxy {
                args = args.flags(["--gms-proxy"]);
            }
            chaos.relays.push(None);
            chaos.relay_args.push(args.build());
            chaos.start_relay(chaos.relays.len() - 1).await?;
            chaos.dirs.push(dir);
        }
        chaos.dirs.extend(site);
        Ok(chaos)
    }

    /// Does a fault (or starts one that lasts: `heal_request` says what ends it); answers
    /// what was done.
    pub(crate) async fn strike(&mut self, fault: Fault, rng: &mut StdRng) -> Result<String> {
        Ok(match fault {
            Fault::RelayKill { node } => {
                self.relay(node)?.kill9().await?;
                self.start_relay(node).await?;
                format!("relay {node} killed and started")
            }
            Fault::RelayTerm { node } => {
                self.relay(node)?.terminate().await?;
                self.start_relay(node).await?;
                format!("relay {node} stopped and started")
            }
            Fault::SocketsCut { percent } => {
                format!(
                    "{} of the open connections cut ({percent} %)",
                    self.proxy.cut(percent, rng)
                )
            }
            Fault::ChatServerRestart { server } => self.chat_server(server, "restart").await?,
            Fault::ChatServerKill { server, .. } => self.chat_server(server, "kill").await?,
            Fault::ChatServerStop { server, .. } => self.chat_server(server, "stop").await?,
            Fault::GmsStatusCode1 { requests } => {
                self.faults(json!({"statusCode1": requests})).await?
            }
            Fault::GmsHttp5xx { requests } => self.faults(json!({"http5xx": requests})).await?,
            Fault::GmsSlow { delay_ms, .. } => self.faults(json!({"delayMs": delay_ms})).await?,
            Fault::PushDrop { pushes } => self.faults(json!({"pushDrop": pushes})).await?,
            Fault::PushDuplicate { pushes } => {
                self.faults(json!({"pushDuplicate": pushes})).await?
            }
            Fault::PushDelay { delay_ms, .. } => {
                self.faults(json!({"pushDelayMs": delay_ms})).await?
            }
            Fault::PushShuffle { spread_ms, .. } => {
                self.faults(json!({"pushShuffleMs": spread_ms})).await?
            }
            Fault::RedisRestart => {
                let Some(Redis::Server(redis)) = self.redis.as_mut() else {
                    anyhow::bail!("no single redis-server in this run")
                };
                redis.kill().await?;
                redis.restart().await?;
                "redis-server killed and started".to_owned()
            }
            Fault::RedisFailover { kill } => {
                let Some(Redis::Sentinel(sentinels)) = self.redis.as_mut() else {
                    anyhow::bail!("no Redis Sentinel in this run")
                };
                if kill {
                    let old = sentinels.kill_primary().await?;
                    let new = sentinels.moved_from(old).await?;
                    sentinels.restart(old).await?;
                    format!("primary :{old} killed, :{new} promoted, :{old} back as its replica")
                } else {
                    let old = sentinels.primary_port().await?;
                    let new = sentinels.failover().await?;
                    sentinels.in_sync().await?;
                    sentinels.agreed().await?;
                    format!("SENTINEL FAILOVER from :{old} to :{new}, :{old} its replica")
                }
            }
            Fault::ClusterPrimaryKill { shard } => {
                let Some(Redis::Cluster(nodes)) = self.redis.as_mut() else {
                    anyhow::bail!("no Redis Cluster in this run")
                };
                let (killed, successor) = nodes.fail_primary(shard).await?;
                format!("primary :{killed} killed, :{successor} promoted, :{killed} its replica")
            }
            Fault::BrowserOffline { .. } => anyhow::bail!("browsers are the conductor's"),
        })
    }

    /// What ends a lasting fault, done on gms-sim's admin API (which a heal task owns).
    pub(crate) fn heal_request(&self, fault: Fault) -> Option<(String, Value)> {
        let start = |server: usize| {
            let alias = &self.aliases[server % self.aliases.len()];
            (format!("/sim/chat-servers/{alias}/start"), json!({}))
        };
        match fault {
            Fault::ChatServerKill { server, .. } | Fault::ChatServerStop { server, .. } => {
                Some(start(server))
            }
            Fault::GmsSlow { .. } => Some(("/sim/faults".to_owned(), json!({"delayMs": 0}))),
            Fault::PushDelay { .. } => Some(("/sim/faults".to_owned(), json!({"pushDelayMs": 0}))),
            Fault::PushShuffle { .. } => {
                Some(("/sim/faults".to_owned(), json!({"pushShuffleMs": 0})))
            }
            _ => None,
        }
    }

    /// Ends every fault that may still be armed, after the last heal has run.
    pub(crate) async fn heal_all(&self) -> Result<()> {
        let zero = json!({"statusCode1": 0, "http5xx": 0, "delayMs": 0, "pushDrop": 0,
            "pushDuplicate": 0, "pushDelayMs": 0, "pushShuffleMs": 0});
        self.faults(zero).await?;
        let servers = self.admin.get("/sim/chat-servers").await?;
        for server in servers.as_array().into_iter().flatten() {
            if server["up"] == false
                && let Some(alias) = server["alias"].as_str()
            {
                self.admin.ok(&format!("/sim/chat-servers/{alias}/start"), json!({})).await?;
            }
        }
        Ok(())
    }

    /// How many chats each relay holds (`/status`).
    pub(crate) async fn relay_chats(&self) -> Result<Vec<u64>> {
        let mut held = Vec::new();
        for port in &self.relay_ports {
            let status: Value =
                reqwest::get(format!("http://127.0.0.1:{port}/status")).await?.json().await?;
            held.push(status["chats"].as_u64().context("/status has no chat count")?);
        }
        Ok(held)
    }

    /// Stops everything and removes the relays' data.
    pub(crate) async fn stop(mut self) -> Result<()> {
        self.stop.cancel();
        for relay in self.relays.drain(..).flatten() {
            relay.kill9().await?;
        }
        self.gms.stop().await;
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }

    fn relay(&mut self, node: usize) -> Result<RelayProcess> {
        self.relays.get_mut(node).and_then(Option::take).context("that relay is not running")
    }

    /// Starts relay `node` and waits until it serves: its ready line comes once it is bound,
    /// before it has opened its store, and a fault then (redis-server restarting) makes it
    /// exit. One that exits is started again after 2 s, as the systemd unit's
    /// `Restart=on-failure` does, and counted.
    async fn start_relay(&mut self, node: usize) -> Result<()> {
        let status = format!("http://127.0.0.1:{}/status", self.relay_ports[node]);
        for _ in 0..5 {
            let mut relay = RelayProcess::start(&self.binary, &self.relay_args[node]).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !relay.exited() && tokio::time::Instant::now() < deadline {
                if reqwest::get(&status).await.is_ok_and(|r| r.status().is_success()) {
                    self.relays[node] = Some(relay);
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.failed_starts += 1;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        anyhow::bail!("relay {node} did not start in five tries")
    }

    async fn chat_server(&self, server: usize, action: &str) -> Result<String> {
        let alias = &self.aliases[server % self.aliases.len()];
        self.admin.ok(&format!("/sim/chat-servers/{alias}/{action}"), json!({})).await?;
        Ok(format!("Chat Server {alias}: {action}"))
    }

    async fn faults(&self, body: Value) -> Result<String> {
        self.admin.ok("/sim/faults", body.clone()).await?;
        Ok(format!("gms-sim faults {body}"))
    }
}
