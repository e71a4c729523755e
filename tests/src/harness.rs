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
    /// While set, every write of the relay's store fails (see `FailingStore`).
    pub store_fails: Option<Arc<AtomicBool>>,
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
    store_fails: Option<Arc<AtomicBool>>,
    site: Option<PathBuf>,
}

/// The relay's redb store, failing every write while its switch is on: a disk that is
/// full or gone, for the rule that nothing is answered 200 before it is durable.
pub struct FailingStore {
    inner: relay::store::RedbBackend,
    fails: Arc<AtomicBool>,
}

impl relay::store::Backend for FailingStore {
    fn load_all(&self) -> Result<relay::store::Stored> {
        self.inner.load_all()
    }

    fn write(&self, changes: &[relay::store::Change]) -> Result<Vec<relay::store::Conflict>> {
        anyhow::ensure!(!self.fails.load(Ordering::SeqCst), "the test store fails on purpose");
        self.inner.write(changes)
    }

    fn read(&self, chat_id: &str) -> Result<Option<relay::store::ChatRecord>> {
        self.inner.read(chat_id)
    }
}

/// Runs the relay in-process until `stop` is cancelled.
fn spawn_relay(
    listener: tokio::net::TcpListener,
    config: &relay::Config,
    store_fails: Option<&Arc<AtomicBool>>,
    stop: &CancellationToken,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let config = config.clone();
    let stop = stop.clone().cancelled_owned();
    Ok(match store_fails {
        None => tokio::spawn(relay::run(listener, config, stop)),
        Some(fails) => {
            let inner = relay::store::RedbBackend::open(&config.data_dir)?;
            let store = Arc::new(FailingStore { inner, fails: fails.clone() });
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
        let mut sim_args = vec![
            "gms-sim".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--cors-origin".to_owned(),
            relay_url.clone(),
            "--push-url".to_owned(),
            push_url(&relay_url),
        ];
        sim_args.extend(options.sim_args);
        let gms = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;

        let site = match &options.widget_dist {
            Some(dist) => Some(host_site(
                dist,
                &WidgetConfig { gms_url: gms.url(), ..options.widget_config.clone() },
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
        if let Some(site) = &site {
            // The tests' host page is the build's page at `/`.
            relay_args = relay_args.site(site);
        }
        let relay_config = relay_args.config()?;
        let relay_stop = CancellationToken::new();
        let relay_task =
            Some(spawn_relay(listener, &relay_config, options.store_fails.as_ref(), &relay_stop)?);
        Ok(System {
            gms,
            relay_url,
            data_dir,
            relay_stop,
            relay_task,
            relay_config,
            relay_addr,
            store_fails: options.store_fails,
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
        self.relay_task = Some(spawn_relay(
            listener,
            &self.relay_config,
            self.store_fails.as_ref(),
            &self.relay_stop,
        )?);
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
