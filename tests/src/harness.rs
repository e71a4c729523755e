//! Starting gms-sim and the relay wired to each other, with the widget's host page.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use anyhow::{Context, Result};
use clap::Parser as _;
use shared::widget_config::WidgetConfig;
use tokio_util::sync::CancellationToken;

use crate::support::{RelayArgs, push_url};

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra gms-sim flags, e.g. `["--bot", "--push-resend-delay", "0.2"]`.
    pub sim_args: Vec<String>,
    /// A built widget to serve from the relay, with a host page pointing at gms-sim.
    pub widget_dist: Option<PathBuf>,
    /// The widget's configuration in that host page; `gms_url` is filled in.
    pub widget_config: WidgetConfig,
    /// Extra relay flags, e.g. `["--ping-interval", "0.5"]`.
    pub relay_args: Vec<String>,
    /// Point the relay's health watch at every simulated Chat Server.
    pub watch_chat_servers: bool,
    /// The relay's store with switches a test turns (see `FailingStore`).
    pub store: Option<StoreSwitches>,
    /// The relay in proxy mode (`--gms-proxy`) and GMS private: gms-sim answers no
    /// browser (no CORS for the page's origin) and the host page names no GMS.
    pub proxy: bool,
}

impl Options {
    /// gms-sim with these flags.
    pub fn sim(args: &[&str]) -> Options {
        Options { sim_args: args.iter().map(|s| (*s).to_owned()).collect(), ..Options::default() }
    }

    /// Adds relay flags.
    pub fn relay(mut self, args: &[&str]) -> Options {
        self.relay_args.extend(args.iter().map(|s| (*s).to_owned()));
        self
    }
}

/// gms-sim and the relay, running until dropped or stopped.
pub struct System {
    /// The simulator.
    pub gms: gms_sim::Running,
    /// The relay's base URL.
    pub relay_url: String,
    /// The relay's data directory.
    pub data_dir: PathBuf,
    relay_stop: CancellationToken,
    /// None while the relay is stopped.
    relay_task: Option<tokio::task::JoinHandle<Result<()>>>,
    relay_config: relay::Config,
    relay_addr: std::net::SocketAddr,
    store: Option<StoreSwitches>,
    site: Option<PathBuf>,
}

/// How a test's store misbehaves, switched while the relay runs.
#[derive(Debug, Clone, Default)]
pub struct StoreSwitches {
    /// While set, every write fails: a disk that is full or gone.
    pub fails: Arc<AtomicBool>,
    /// While set, every read of one chat finds nothing: a store that lost the record (a
    /// Redis restarted without its data).
    pub reads_nothing: Arc<AtomicBool>,
    /// While set, every read of one chat fails: a Redis Cluster between a primary's death
    /// and its replica's promotion.
    pub reads_fail: Arc<AtomicBool>,
    /// The store says other relays write it too, so the relay reads it for each chat.
    pub shared: bool,
}

/// The relay's redb store as its `StoreSwitches` make it: failing every write (for the
/// rule that nothing is answered 200 before it is durable), or finding nothing on a read.
pub struct FailingStore {
    inner: relay::store::RedbBackend,
    switches: StoreSwitches,
}

impl relay::store::Backend for FailingStore {
    fn load_all(&self) -> Result<relay::store::Stored> {
        self.inner.load_all()
    }

    fn write(&self, changes: &[relay::store::Change]) -> Result<relay::store::Written> {
        let fails = self.switches.fails.load(Ordering::SeqCst);
        anyhow::ensure!(!fails, "the test store fails on purpose");
        self.inner.write(changes)
    }

    fn read(&self, chat_id: &str) -> Result<Option<relay::store::ChatRecord>> {
        if self.switches.reads_nothing.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let fails = self.switches.reads_fail.load(Ordering::SeqCst);
        anyhow::ensure!(!fails, "the test store's reads fail on purpose");
        self.inner.read(chat_id)
    }

    fn shared(&self) -> bool {
        self.switches.shared
    }
}

/// Runs the relay in-process until `stop` is cancelled.
fn spawn_relay(
    listener: tokio::net::TcpListener,
    config: &relay::Config,
    switches: Option<&StoreSwitches>,
    stop: &CancellationToken,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let config = config.clone();
    let stop = stop.clone().cancelled_owned();
    Ok(match switches {
        None => tokio::spawn(relay::run(listener, config, stop)),
        Some(switches) => {
            let inner = relay::store::RedbBackend::open(&config.data_dir)?;
            let store = Arc::new(FailingStore { inner, switches: switches.clone() });
            tokio::spawn(relay::run_with_store(listener, config, store, stop))
        }
    })
}

impl System {
    /// Binds the relay first (gms-sim needs its URL for CORS and pushes), then starts both.
    pub async fn start(options: Options) -> Result<System> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let relay_addr = listener.local_addr()?;
        let relay_url = format!("http://{relay_addr}");
        // A private GMS allows no browser origin: only a server (the relay) reaches it.
        let cors =
            if options.proxy { "https://no-browser.invalid".to_owned() } else { relay_url.clone() };
        let mut sim_args = vec![
            "gms-sim".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--cors-origin".to_owned(),
            cors,
            "--push-url".to_owned(),
            push_url(&relay_url),
        ];
        sim_args.extend(options.sim_args);
        let gms = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;

        let site = match &options.widget_dist {
            Some(dist) => Some(host_site(
                dist,
                &WidgetConfig {
                    gms_url: if options.proxy { String::new() } else { gms.url() },
                    ..options.widget_config.clone()
                },
            )?),
            None => None,
        };
        let data_dir = scratch_dir("relay-data")?;
        // The listener is bound already: `--listen` is only what the configuration says.
        let mut relay_args = RelayArgs::new(&relay_addr.to_string(), &gms.url(), &data_dir);
        if options.watch_chat_servers {
            relay_args = relay_args.watch(&gms.chat_servers);
        }
        relay_args = relay_args.flags(options.relay_args);
        if options.proxy {
            relay_args = relay_args.flags(["--gms-proxy"]);
        }
        if let Some(site) = &site {
            // The tests' host page is the build's page at `/`.
            relay_args = relay_args.site(site);
        }
        let relay_config = relay_args.config()?;
        let relay_stop = CancellationToken::new();
        let relay_task =
            Some(spawn_relay(listener, &relay_config, options.store.as_ref(), &relay_stop)?);
        Ok(System {
            gms,
            relay_url,
            data_dir,
            relay_stop,
            relay_task,
            relay_config,
            relay_addr,
            store: options.store,
            site,
        })
    }

    /// The widget's host page, which the relay serves at `/`.
    pub fn page_url(&self) -> String {
        format!("{}/", self.relay_url)
    }

    /// Stops the relay gracefully and starts it again on the same address and data.
    pub async fn restart_relay(&mut self) -> Result<()> {
        self.stop_relay().await?;
        self.start_relay().await
    }

    /// Stops the relay gracefully (it can be started again with `start_relay`).
    pub async fn stop_relay(&mut self) -> Result<()> {
        self.relay_stop.cancel();
        match self.relay_task.take() {
            Some(task) => task.await.context("relay task")?,
            None => Ok(()),
        }
    }

    /// Starts the relay again on the same address and data.
    pub async fn start_relay(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.relay_addr).await?;
        self.relay_stop = CancellationToken::new();
        self.relay_task =
            Some(spawn_relay(listener, &self.relay_config, self.store.as_ref(), &self.relay_stop)?);
        Ok(())
    }

    /// Stops the relay and the simulator and removes the host site.
    pub async fn stop(mut self) -> Result<()> {
        self.stop_relay().await?;
        self.gms.stop().await;
        if let Some(site) = self.site {
            let _ = std::fs::remove_dir_all(site);
        }
        let _ = std::fs::remove_dir_all(self.data_dir);
        Ok(())
    }
}

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn scratch_dir(label: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gms-chat-{label}-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Copies the built widget and writes a host page with this configuration, as a website
/// owner would embed it.
pub fn host_site(dist: &Path, config: &WidgetConfig) -> Result<PathBuf> {
    let site = scratch_dir("site")?;
    copy_dir(dist, &site).with_context(|| format!("copying widget build {}", dist.display()))?;
    let index = site.join("index.html");
    let page = std::fs::read_to_string(&index).context("the widget build has no index.html")?;
    let page = config.embed_in(&page).context("index.html has no gms-chat-config element")?;
    std::fs::write(index, page)?;
    Ok(site)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The relay binary, for tests that kill the process. `RELAY_BIN` names it; otherwise it
/// is built with the cargo that runs the tests (a no-op when it is up to date).
pub fn relay_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("RELAY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    let status = std::process::Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", "relay", "--bin", "relay"])
        .status()
        .context("building the relay binary")?;
    anyhow::ensure!(status.success(), "building the relay binary failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    Ok(target.join("debug").join("relay"))
}

/// A free port on 127.0.0.1 (for a process that must come back on the same address).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A relay running as its own process.
pub struct RelayProcess {
    child: tokio::process::Child,
    /// Its base URL.
    pub url: String,
}

impl RelayProcess {
    /// Starts the binary with `args` and waits for its ready line.
    pub async fn start(binary: &Path, args: &[String]) -> Result<RelayProcess> {
        RelayProcess::start_with_env(binary, args, &[]).await
    }

    /// The same with extra environment variables.
    pub async fn start_with_env(
        binary: &Path,
        args: &[String],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<RelayProcess> {
        use tokio::io::AsyncBufReadExt as _;
        let log = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let mut child = tokio::process::Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", log)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the relay")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = lines.next_line().await?.context("the relay exited before its ready line")?;
        let ready: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("ready line {line:?}"))?;
        let listen = ready["listen"].as_str().context("no listen address")?;
        let url = format!("http://{listen}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(RelayProcess { child, url })
    }

    /// Its process id, for reading its memory and CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited (by itself: it was not told to).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits for the orderly shutdown (SIGKILL after 30 s).
    pub async fn terminate(mut self) -> Result<()> {
        let pid = self.child.id().context("the relay already exited")?;
        let sent = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .context("running kill")?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        if tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
            self.child.wait().await?;
            anyhow::bail!("the relay did not stop within 30 s of SIGTERM");
        }
        Ok(())
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill9(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// Relay processes sharing one Redis, each on its own port and data directory, with the
/// test push secret and no per-address limits.
pub struct RelayCluster {
    relays: Vec<Option<RelayProcess>>,
    /// Their base URLs, in the order of the ports.
    pub urls: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl RelayCluster {
    /// One relay per port, each with `extra` flags too.
    pub async fn start(
        redis: &RedisServer,
        gms_url: &str,
        ports: &[u16],
        extra: &[String],
    ) -> Result<RelayCluster> {
        let binary = relay_binary()?;
        let mut cluster = RelayCluster { relays: Vec::new(), urls: Vec::new(), dirs: Vec::new() };
        for port in ports {
            let dir = scratch_dir("relay-cluster")?;
            let args = RelayArgs::new(&format!("127.0.0.1:{port}"), gms_url, &dir)
                .redis(&redis.url())
                .no_client_limits()
                .flags(extra)
                .build();
            cluster.relays.push(Some(RelayProcess::start(&binary, &args).await?));
            cluster.urls.push(format!("http://127.0.0.1:{port}"));
            cluster.dirs.push(dir);
        }
        Ok(cluster)
    }

    /// The process id of relay `k`, while it runs.
    pub fn pid(&self, k: usize) -> Option<u32> {
        self.relays.get(k)?.as_ref()?.pid()
    }

    /// SIGKILL for relay `k`.
    pub async fn kill9(&mut self, k: usize) -> Result<()> {
        let relay = self.relays.get_mut(k).and_then(Option::take).context("no such relay")?;
        relay.kill9().await
    }

    /// Kills every relay left and removes their data.
    pub async fn stop(self) -> Result<()> {
        for relay in self.relays.into_iter().flatten() {
            relay.kill9().await?;
        }
        for dir in self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }
}

/// A real redis-server on a free port of 127.0.0.1, with an append-only file fsynced on
/// every write in its own directory, so a restart (or kill -9) shows what Redis keeps.
pub struct RedisServer {
    child: Option<tokio::process::Child>,
    port: u16,
    dir: PathBuf,
    tls: bool,
}

impl RedisServer {
    pub async fn start() -> Result<RedisServer> {
        let dir = scratch_dir("redis")?;
        let mut server = RedisServer { child: None, port: free_port()?, dir, tls: false };
        server.restart().await?;
        Ok(server)
    }

    /// The same serving TLS only, with a self-signed certificate for 127.0.0.1 whose file
    /// `ca_file` names (clients must trust it).
    pub async fn start_tls() -> Result<RedisServer> {
        let dir = scratch_dir("redis-tls")?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names)?;
        std::fs::write(dir.join("cert.pem"), certified.cert.pem())?;
        std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem())?;
        let mut server = RedisServer { child: None, port: free_port()?, dir, tls: true };
        server.restart().await?;
        Ok(server)
    }

    /// The certificate a TLS server presents.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// `redis://127.0.0.1:<port>/0`, or `rediss://` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts it (again) on the same port and directory; returns once it accepts clients.
    pub async fn restart(&mut self) -> Result<()> {
        use tokio::io::AsyncBufReadExt as _;
        self.kill().await?;
        let redis = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let mut command = tokio::process::Command::new(&redis);
        if self.tls {
            command.args(["--port", "0", "--tls-port", &self.port.to_string()]);
            command.args(["--tls-auth-clients", "no", "--tls-cert-file"]).arg(self.ca_file());
            command.arg("--tls-key-file").arg(self.dir.join("key.pem"));
            command.arg("--tls-ca-cert-file").arg(self.ca_file());
        } else {
            command.args(["--port", &self.port.to_string()]);
        }
        let mut child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {redis} (apt install redis-server)"))?;
        let stdout = child.stdout.take().context("redis-server stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("Ready to accept connections") {
                    // Keep draining its output so it never blocks on a full pipe.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok(());
                }
            }
            anyhow::bail!("redis-server exited before it was ready")
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), ready)
            .await
            .context("redis-server did not get ready in 20 s")??;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Another relay of the same system (same GMS, same flags, its own data directory):
/// with `--redis-url`, a second node of a cluster.
pub struct RelayNode {
    /// Its base URL.
    pub url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl RelayNode {
    /// Stops it gracefully.
    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.task.await.context("relay node task")?
    }
}

impl System {
    /// Starts one more relay like this system's, on its own port and data directory.
    pub async fn add_relay(&self) -> Result<RelayNode> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let config = relay::Config {
            data_dir: scratch_dir("relay-node-data")?,
            ..self.relay_config.clone()
        };
        let stop = CancellationToken::new();
        let task = spawn_relay(listener, &config, None, &stop)?;
        Ok(RelayNode { url, stop, task })
    }
}

/// Starts `redis-server` with `args` (a config file first, for a sentinel) and returns once
/// it printed `ready`, its output drained from then on so it never blocks on a full pipe.
async fn spawn_redis(args: &[String], ready: &str) -> Result<tokio::process::Child> {
    use tokio::io::AsyncBufReadExt as _;
    let redis = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let mut child = tokio::process::Command::new(&redis)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {redis} (apt install redis-server)"))?;
    let stdout = child.stdout.take().context("redis-server stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let started = async {
        while let Some(line) = lines.next_line().await? {
            if line.contains(ready) {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Ok(());
            }
        }
        anyhow::bail!("redis-server {args:?} exited before {ready:?}")
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), started)
        .await
        .with_context(|| format!("redis-server {args:?} did not print {ready:?} in 20 s"))??;
    Ok(child)
}

/// One redis-server process of a fixture: how to start it again, and its directory.
struct RedisNode {
    port: u16,
    args: Vec<String>,
    ready: &'static str,
    dir: PathBuf,
    child: Option<tokio::process::Child>,
}

impl RedisNode {
    async fn start(&mut self) -> Result<()> {
        self.child = Some(spawn_redis(&self.args, self.ready).await?);
        Ok(())
    }

    /// SIGKILL, waiting for it to be gone.
    async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port))?;
        Ok(client.get_multiplexed_async_connection().await?)
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A data node's flags: loopback, AOF fsynced on every write, in its own directory.
fn data_node(port: u16, dir: &Path, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
        .iter()
        .chain(&["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir"])
        .map(|s| (*s).to_owned())
        .collect();
    args.push(dir.display().to_string());
    args.extend_from_slice(extra);
    args
}

/// Redis Sentinel on loopback: a primary and one replica (real redis-servers with AOF),
/// watched by three sentinels with a quorum of 2 and short timeouts, so a failover takes
/// about three seconds. The sentinels' own periods are shortened with `SENTINEL DEBUG` and
/// TILT is kept off (a loaded test machine's stalls would otherwise stop failovers).
pub struct RedisSentinels {
    /// The primary and the replica, by index; which is the primary changes.
    servers: Vec<RedisNode>,
    sentinels: Vec<RedisNode>,
}

/// The name the sentinels watch the primary under.
pub const SENTINEL_MASTER: &str = "gmschat";

impl RedisSentinels {
    /// Starts the primary, its replica (once in sync) and the sentinels, and returns once
    /// every sentinel knows the replica and the other two sentinels.
    pub async fn start() -> Result<RedisSentinels> {
        let mut servers = Vec::new();
        for k in 0..2 {
            let dir = scratch_dir("redis-sentinel-data")?;
            let port = free_port()?;
            let extra = match servers.first() {
                Some(RedisNode { port: primary, .. }) if k > 0 => {
                    vec!["--replicaof".to_owned(), "127.0.0.1".to_owned(), primary.to_string()]
                }
                _ => Vec::new(),
            };
            let args = data_node(port, &dir, &extra);
            let mut node =
                RedisNode { port, args, ready: "Ready to accept connections", dir, child: None };
            node.start().await?;
            servers.push(node);
        }
        let fixture = RedisSentinels { servers, sentinels: Vec::new() };
        fixture.in_sync().await?;
        let primary = fixture.servers.first().context("no primary")?.port;
        let mut fixture = fixture;
        for _ in 0..3 {
            let dir = scratch_dir("redis-sentinel")?;
            let port = free_port()?;
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                     sentinel failover-timeout {SENTINEL_MASTER} 3000\n\
                     sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
                    dir.display()
                ),
            )?;
            let args = vec![conf.display().to_string(), "--sentinel".to_owned()];
            let mut node = RedisNode { port, args, ready: "+monitor master", dir, child: None };
            node.start().await?;
            let mut connection = node.connection().await?;
            redis::cmd("SENTINEL")
                .arg("DEBUG")
                .arg(&["info-period", "300", "publish-period", "300", "ask-period", "300"][..])
                .arg(&["ping-period", "300", "tilt-trigger", "60000"][..])
                .exec_async(&mut connection)
                .await?;
            fixture.sentinels.push(node);
        }
        fixture.agreed().await?;
        Ok(fixture)
    }

    /// Waits until every sentinel knows the other two and sees each running replica as a
    /// healthy one (`slave`, its link to the primary up): only then can they agree on a
    /// failover, and a `SENTINEL FAILOVER` find a replica to promote.
    pub async fn agreed(&self) -> Result<()> {
        let what = "every sentinel knowing the replica and the other sentinels";
        let replicas = self.servers.iter().filter(|s| s.child.is_some()).count() - 1;
        crate::support::until(what, std::time::Duration::from_secs(30), async || {
            let mut seen = Vec::new();
            for sentinel in &self.sentinels {
                let mut connection = sentinel.connection().await?;
                let known: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
                    .arg("REPLICAS")
                    .arg(SENTINEL_MASTER)
                    .query_async(&mut connection)
                    .await?;
                let others: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
                    .arg("SENTINELS")
                    .arg(SENTINEL_MASTER)
                    .query_async(&mut connection)
                    .await?;
                let healthy = known
                    .iter()
                    .filter(|r| r.get("flags").is_some_and(|f| f == "slave"))
                    .filter(|r| r.get("master-link-status").is_some_and(|l| l == "ok"))
                    .count();
                seen.push((healthy, others.len()));
            }
            let done = seen.iter().all(|&(healthy, others)| healthy == replicas && others == 2);
            Ok(crate::support::Wait::done_if(done, format!("(replicas, sentinels): {seen:?}")))
        })
        .await
    }

    /// `redis+sentinel://` naming the three sentinels and the primary's name.
    pub fn url(&self) -> String {
        let hosts: Vec<String> =
            self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis+sentinel://{}/{SENTINEL_MASTER}", hosts.join(","))
    }

    /// The port of the primary the first sentinel that answers names.
    pub async fn primary_port(&self) -> Result<u16> {
        let mut last = None;
        for sentinel in &self.sentinels {
            let Ok(mut connection) = sentinel.connection().await else { continue };
            let answer: redis::RedisResult<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(SENTINEL_MASTER)
                .query_async(&mut connection)
                .await;
            match answer {
                Ok((_, port)) => return Ok(port),
                Err(error) => last = Some(error),
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no sentinel answers"), anyhow::Error::from))
    }

    /// A connection to the primary now.
    pub async fn primary(&self) -> Result<redis::aio::MultiplexedConnection> {
        let port = self.primary_port().await?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    /// `SENTINEL FAILOVER`; returns once every sentinel names the new primary and it acts
    /// as one.
    pub async fn failover(&self) -> Result<u16> {
        self.agreed().await?;
        let old = self.primary_port().await?;
        let mut connection = self.sentinels.first().context("no sentinel")?.connection().await?;
        // Sentinel refuses a failover of a primary it moved less than twice its
        // failover-timeout ago (INPROG, or an aborted attempt): asked again until it moves.
        let mut last = None;
        for _ in 0..5 {
            let asked: redis::RedisResult<()> = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(SENTINEL_MASTER)
                .exec_async(&mut connection)
                .await;
            match asked {
                Ok(()) => match self.moved_within(old, std::time::Duration::from_secs(10)).await {
                    Ok(port) => return Ok(port),
                    Err(error) => last = Some(error),
                },
                Err(error) => last = Some(error.into()),
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("SENTINEL FAILOVER never moved the primary")))
    }

    /// Kills the primary (SIGKILL); returns its port.
    pub async fn kill_primary(&mut self) -> Result<u16> {
        let port = self.primary_port().await?;
        let server =
            self.servers.iter_mut().find(|s| s.port == port).context("the primary is unknown")?;
        server.kill().await?;
        Ok(port)
    }

    /// Starts the server on `port` again (with its own data): the sentinels make it a
    /// replica of the primary of the moment. Returns once the primary has it in sync.
    pub async fn restart(&mut self, port: u16) -> Result<()> {
        let server = self.servers.iter_mut().find(|s| s.port == port).context("no such server")?;
        server.start().await?;
        self.in_sync().await?;
        self.agreed().await
    }

    /// Waits until every sentinel names a primary other than `old` and that one is a
    /// primary; returns its port.
    pub async fn moved_from(&self, old: u16) -> Result<u16> {
        self.moved_within(old, std::time::Duration::from_secs(30)).await
    }

    async fn moved_within(&self, old: u16, within: std::time::Duration) -> Result<u16> {
        let what = format!("the sentinels naming a primary other than :{old}");
        crate::support::until(&what, within, async || {
            let mut named = Vec::new();
            for sentinel in &self.sentinels {
                let mut connection = sentinel.connection().await?;
                let (_, port): (String, u16) = redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(SENTINEL_MASTER)
                    .query_async(&mut connection)
                    .await?;
                named.push(port);
            }
            let new = named.first().copied().filter(|&p| p != old && named.iter().all(|&n| n == p));
            if let Some(port) = new {
                let server = self.servers.iter().find(|s| s.port == port);
                if let Some(server) = server {
                    let role: Vec<redis::Value> =
                        redis::cmd("ROLE").query_async(&mut server.connection().await?).await?;
                    if role.first() == Some(&redis::Value::BulkString(b"master".to_vec())) {
                        return Ok(crate::support::Wait::Done(port));
                    }
                }
            }
            Ok(crate::support::Wait::Still(format!("{named:?}")))
        })
        .await
    }

    /// Waits until the primary has every other running server as a replica in sync.
    pub async fn in_sync(&self) -> Result<()> {
        let what = "the replica in sync with the primary";
        crate::support::until(what, std::time::Duration::from_secs(30), async || {
            let mut seen = Vec::new();
            for server in self.servers.iter().filter(|s| s.child.is_some()) {
                // A server just brought back is reconfigured by the sentinels, which close
                // its clients: a broken connection means not yet, not a failure.
                let info: Result<String> = async {
                    let mut connection = server.connection().await?;
                    Ok(redis::cmd("INFO").arg("replication").query_async(&mut connection).await?)
                }
                .await;
                let info = match info {
                    Ok(info) => info,
                    Err(error) => return Ok(crate::support::Wait::Still(error.to_string())),
                };
                if info.contains("role:slave") {
                    seen.push(
                        info.contains("master_link_status:up")
                            && !info.contains("master_sync_in_progress:1"),
                    );
                }
            }
            let done = seen.len() + 1 == self.servers.iter().filter(|s| s.child.is_some()).count()
                && seen.iter().all(|&up| up);
            Ok(crate::support::Wait::done_if(done, format!("replicas in sync: {seen:?}")))
        })
        .await
    }
}

impl RelayCluster {
    /// One relay process per port on the Redis that `redis` flags name (e.g. `--redis-url
    /// redis+sentinel://…` or `--redis-cluster …`), each with `extra` flags too.
    pub async fn start_on(
        redis: &[String],
        gms_url: &str,
        ports: &[u16],
        extra: &[String],
    ) -> Result<RelayCluster> {
        let binary = relay_binary()?;
        let mut cluster = RelayCluster { relays: Vec::new(), urls: Vec::new(), dirs: Vec::new() };
        for port in ports {
            let dir = scratch_dir("relay-cluster")?;
            let args = RelayArgs::new(&format!("127.0.0.1:{port}"), gms_url, &dir)
                .no_client_limits()
                .flags(redis)
                .flags(extra)
                .build();
            cluster.relays.push(Some(RelayProcess::start(&binary, &args).await?));
            cluster.urls.push(format!("http://127.0.0.1:{port}"));
            cluster.dirs.push(dir);
        }
        Ok(cluster)
    }
}

/// A Redis Cluster on loopback: three primaries and three replicas (real redis-servers with
/// AOF, `cluster-node-timeout` 1 s, so a replica takes over a killed primary in about two
/// seconds), made with `redis-cli --cluster create --cluster-replicas 1`.
pub struct RedisClusterNodes {
    nodes: Vec<RedisNode>,
}

impl RedisClusterNodes {
    /// Starts six nodes, makes them one cluster, and returns once every node sees it whole
    /// and every replica is in sync.
    pub async fn start() -> Result<RedisClusterNodes> {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let dir = scratch_dir("redis-cluster-node")?;
            let port = free_port()?;
            let extra: Vec<String> = ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain(["--cluster-port".to_owned(), free_port()?.to_string()])
                .chain([
                    "--cluster-config-file".to_owned(),
                    dir.join("nodes.conf").display().to_string(),
                ])
                .collect();
            let args = data_node(port, &dir, &extra);
            let mut node =
                RedisNode { port, args, ready: "Ready to accept connections", dir, child: None };
            node.start().await?;
            nodes.push(node);
        }
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned());
        let created = tokio::process::Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .await
            .with_context(|| format!("running {cli} --cluster create"))?;
        anyhow::ensure!(
            created.status.success(),
            "{cli} --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = RedisClusterNodes { nodes };
        cluster.whole().await?;
        Ok(cluster)
    }

    /// The seed nodes, as `--redis-cluster` takes them: every node.
    pub fn seeds(&self) -> String {
        let nodes: Vec<String> =
            self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        nodes.join(",")
    }

    /// A cluster client's connection, for what a test reads or writes itself.
    pub async fn connection(&self) -> Result<redis::cluster_async::ClusterConnection> {
        let seeds: Vec<String> =
            self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect();
        Ok(redis::cluster::ClusterClient::new(seeds)?.get_async_connection().await?)
    }

    /// The port of the primary that owns `key`'s slot now.
    pub async fn primary_of(&self, key: &str) -> Result<u16> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let Ok(mut connection) = node.connection().await else { continue };
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut connection).await?;
            if role.first() != Some(&redis::Value::BulkString(b"master".to_vec())) {
                continue;
            }
            // Only the slot's owner answers for the key; the others redirect.
            let owned: redis::RedisResult<i64> =
                redis::cmd("EXISTS").arg(key).query_async(&mut connection).await;
            if owned.is_ok() {
                return Ok(node.port);
            }
        }
        anyhow::bail!("no primary owns {key}")
    }

    /// Kills the node on `port` (SIGKILL).
    pub async fn kill(&mut self, port: u16) -> Result<()> {
        let node = self.nodes.iter_mut().find(|n| n.port == port).context("no such node")?;
        node.kill().await
    }

    /// Starts the node on `port` again, with its data and cluster configuration: it rejoins
    /// as its slots' new primary's replica. Returns once the cluster is whole again.
    pub async fn restart(&mut self, port: u16) -> Result<()> {
        let node = self.nodes.iter_mut().find(|n| n.port == port).context("no such node")?;
        node.start().await?;
        self.whole().await
    }

    /// Waits until every running node sees the cluster `ok` with three primaries serving
    /// every slot, and every running replica is in sync.
    pub async fn whole(&self) -> Result<()> {
        let what = "the Redis Cluster whole, its replicas in sync";
        crate::support::until(what, std::time::Duration::from_secs(30), async || {
            let mut seen = Vec::new();
            let mut done = true;
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                let mut connection = node.connection().await?;
                let info: String =
                    redis::cmd("CLUSTER").arg("INFO").query_async(&mut connection).await?;
                let replication: String =
                    redis::cmd("INFO").arg("replication").query_async(&mut connection).await?;
                let ok = info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains("cluster_size:3");
                let synced = !replication.contains("role:slave")
                    || (replication.contains("master_link_status:up")
                        && !replication.contains("master_sync_in_progress:1"));
                done &= ok && synced;
                seen.push(format!(":{} ok={ok} synced={synced}", node.port));
            }
            Ok(crate::support::Wait::done_if(done, seen.join(", ")))
        })
        .await
    }

    /// The ports of the running primaries, in port order.
    pub async fn primaries(&self) -> Result<Vec<u16>> {
        let mut primaries = Vec::new();
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let mut connection = node.connection().await?;
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut connection).await?;
            if role.first() == Some(&redis::Value::BulkString(b"master".to_vec())) {
                primaries.push(node.port);
            }
        }
        primaries.sort_unstable();
        Ok(primaries)
    }

    /// Kills the `shard`th primary (modulo their number), waits until every running node
    /// has marked it failed and handed its slots to its replica, then starts it again as
    /// that replica's replica. Returns the killed port and its successor's.
    pub async fn fail_primary(&mut self, shard: usize) -> Result<(u16, u16)> {
        let primaries = self.primaries().await?;
        anyhow::ensure!(!primaries.is_empty(), "no primary runs");
        let killed = primaries[shard % primaries.len()];
        let mut connection = self.connection_to(killed).await?;
        let id: String = redis::cmd("CLUSTER").arg("MYID").query_async(&mut connection).await?;
        self.kill(killed).await?;
        let what = format!("the slots of :{killed} served by its replica");
        let successor =
            crate::support::until(&what, std::time::Duration::from_secs(30), async || {
                let mut successors = Vec::new();
                for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                    let mut connection = node.connection().await?;
                    let nodes: String =
                        redis::cmd("CLUSTER").arg("NODES").query_async(&mut connection).await?;
                    // `<id> <addr> <flags> <primary id> …`: the failed node's former replica is
                    // now a primary, and the failed node holds no slots any more.
                    let lines: Vec<Vec<&str>> =
                        nodes.lines().map(|l| l.split(' ').collect()).collect();
                    let failed = lines.iter().any(|f| {
                        f.first() == Some(&id.as_str())
                            && f.get(2).is_some_and(|flags| flags.split(',').any(|x| x == "fail"))
                            && f.len() == 8
                    });
                    successors.push(failed.then_some(()).and_then(|()| {
                        lines.iter().find_map(|f| {
                            let promoted = f.get(2).is_some_and(|flags| flags.contains("master"))
                                && f.len() > 8
                                && !f.get(2).is_some_and(|flags| flags.contains("fail"));
                            let port = f.get(1)?.split(['@', ',']).next()?.rsplit(':').next()?;
                            let port: u16 = port.parse().ok()?;
                            (promoted && !primaries.contains(&port)).then_some(port)
                        })
                    }));
                }
                let first = successors.first().copied().flatten();
                let agreed = first.is_some() && successors.iter().all(|s| *s == first);
                Ok(match (agreed, first) {
                    (true, Some(port)) => crate::support::Wait::Done(port),
                    _ => crate::support::Wait::Still(format!("{successors:?}")),
                })
            })
            .await?;
        self.restart(killed).await?;
        Ok((killed, successor))
    }

    async fn connection_to(&self, port: u16) -> Result<redis::aio::MultiplexedConnection> {
        self.nodes.iter().find(|n| n.port == port).context("no such node")?.connection().await
    }

    /// Waits until the slots of the primary on `killed` are served by another node.
    pub async fn failed_over(&self, killed: u16, key: &str) -> Result<u16> {
        let what = format!("another primary serving what :{killed} served");
        crate::support::until(&what, std::time::Duration::from_secs(30), async || {
            let port = self.primary_of(key).await;
            match port {
                Ok(port) if port != killed => Ok(crate::support::Wait::Done(port)),
                other => Ok(crate::support::Wait::Still(format!("{other:?}"))),
            }
        })
        .await
    }
}
