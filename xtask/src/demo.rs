//! `cargo xtask demo`: the whole system on this machine, with gms-sim in place of GMS.
//! `--nodes N` (N ≥ 2) runs N relays on one local redis-server behind a small load
//! balancer, so a person can kill one relay and watch the chat carry on; with `--sentinel`
//! that Redis is a primary, its replica and three sentinels, so they can also move the
//! primary (`SENTINEL FAILOVER`, or kill it) and watch the relays follow. `--proxy` puts
//! the relays in proxy mode with a private gms-sim (no browser origin allowed): the page
//! reaches GMS only through them, and its storage holds no GMS token.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run::{done, status, step};
use crate::{balancer, setup, workspace};

const PUSH_SECRET: &str = "demo-push-secret";
/// gms-sim stands behind a gateway that wants this header, as hosted GMS does, so the demo
/// shows the relay (`--gms-header`) and the widget (`gmsHeaders` in index.html, which
/// holds the same key) sending it. Not a secret: gms-sim checks nothing else.
const GATEWAY_HEADER: &str = "apikey: demo-key";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let gms_port = port_arg(args, "--gms-port", 8090)?;
    let relay_port = port_arg(args, "--relay-port", 8091)?;
    let nodes = usize::from(port_arg(args, "--nodes", 1)?.max(1));
    let tools = setup::ensure_all()?;
    let root = workspace::root()?;

    let started = step("building the widget (release)");
    crate::widget::build(&tools)?;
    done("widget", started, true);
    let started = step("building gms-sim and the relay");
    status(
        Command::new("cargo").current_dir(&root).args(["build", "-p", "gms-sim", "-p", "relay"]),
    )?;
    done("binaries", started, true);

    let demo = root.join("target").join("demo");
    // The relay serves the release build as it is (a `trunk serve` rebuild included) and tells
    // the page's one tag where GMS is.
    let site = root.join("target").join("widget");
    let gms_url = format!("http://127.0.0.1:{gms_port}");
    let relay_url = format!("http://127.0.0.1:{relay_port}");

    let (interrupted_tx, interrupted) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = interrupted_tx.send(());
    })
    .context("installing the Ctrl-C handler")?;

    let bin = root.join("target").join("debug");
    let mut children = Children::default();
    // One relay serves the page's port itself; several sit behind the balancer on it.
    let relay_ports: Vec<u16> = if nodes == 1 {
        vec![relay_port]
    } else {
        (1..=nodes).map(|k| relay_port + u16::try_from(k).unwrap_or(u16::MAX)).collect()
    };
    let proxy = args.iter().any(|a| a == "--proxy");
    let mut sim = Command::new(bin.join("gms-sim"));
    sim.args(["--listen", &format!("127.0.0.1:{gms_port}"), "--bot"]);
    sim.args(["--require-header", GATEWAY_HEADER]);
    // Office hours from GMS's Calendar Service: open now (the pre-chat form says so).
    sim.args(["--office-hours", "business-hours"]);
    // An expected wait of four minutes until an agent joins (the agent console changes it).
    sim.args(["--ewt-seconds", "240"]);
    if proxy {
        // Private: no browser may call it, only the relays.
        sim.args(["--cors-origin", "https://no-browser.invalid"]);
    } else {
        // The relay's page, and `trunk serve`'s (Trunk.toml) in the frontend dev loop.
        sim.args(["--cors-origin", &relay_url, "--cors-origin", "http://127.0.0.1:8080"]);
    }
    for port in &relay_ports {
        sim.args(["--push-url", &format!("http://127.0.0.1:{port}/gms/push?secret={PUSH_SECRET}")]);
    }
    let gms_sim = children.start(&mut sim, "gms-sim")?;
    let redis_url = if nodes > 1 {
        let port = port_arg(args, "--redis-port", 6390)?;
        if args.iter().any(|a| a == "--sentinel") {
            Some(start_sentinels(&mut children, &demo, port)?)
        } else {
            let dir = demo.join("redis");
            std::fs::create_dir_all(&dir)?;
            children.start_redis(&mut redis_server(port, &dir), "redis-server", READY)?;
            Some(format!("redis://127.0.0.1:{port}/0"))
        }
    } else {
        None
    };
    let hours = demo.join("office-hours.ini");
    std::fs::write(&hours, "[customer-support]\ngms = business-hours\n")?;
    let mut relays = Vec::new();
    for (k, port) in relay_ports.iter().enumerate() {
        let mut relay = Command::new(bin.join("relay"));
        relay
            .args(["--listen", &format!("127.0.0.1:{port}"), "--gms-url", &gms_url])
            .arg("--static-dir")
            .arg(&site)
            .arg("--demo-page")
            .args(["--widget-gms-url", &gms_url])
            .args(["--gms-header", GATEWAY_HEADER])
            .arg("--office-hours")
            .arg(&hours)
            .args(["--ewt-queue", "customer-support=chat"])
            // Web Push on: the page is on the relay's origin, so the relay's own
            // /gms-chat-sw.js is the site's worker (a desktop browser with network gets
            // real notifications through its push service).
            .args(["--vapid-subject", "mailto:demo@example.invalid"])
            .arg("--data-dir")
            .arg(demo.join(format!("relay-data-{}", k + 1)))
            .env("RELAY_PUSH_SECRET", PUSH_SECRET);
        if let Some(redis_url) = &redis_url {
            relay.args(["--redis-url", redis_url, "--node-id", &format!("relay-{}", k + 1)]);
        }
        if proxy {
            relay.arg("--gms-proxy");
        }
        for server in gms_sim["chatServers"].as_array().into_iter().flatten() {
            if let (Some(alias), Some(health)) =
                (server["alias"].as_str(), server["health"].as_str())
            {
                relay.args(["--chat-server", &format!("{alias}=http://{health}/health")]);
            }
        }
        let name = format!("relay-{}", k + 1);
        children.start(&mut relay, &name)?;
        relays.push(name);
    }
    if nodes > 1 {
        let backends = relay_ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
        balancer::start(SocketAddr::from(([127, 0, 0, 1], relay_port)), backends)?;
        println!("==> load balancer on {relay_url} over {}", relays.join(", "));
    }

    println!();
    println!("  visitor page:   {relay_url}/");
    println!("  agent console:  {gms_url}/sim/agent");
    println!("  relay metrics:  {relay_url}/metrics");
    println!();
    println!("  The scripted agent joins every new chat and answers. Press Ctrl-C to stop.");
    if proxy {
        println!("  Proxy mode: the page reaches GMS only through the relay (gms-sim allows no");
        println!("  browser origin); the page's localStorage holds no GMS token.");
    }
    if nodes > 1 {
        println!("  Kill a relay (`kill -9 <pid>`, pids above) mid-chat: the browser reconnects");
        println!("  through the balancer to another, and pushes are resent to the ones left.");
    }
    if redis_url.as_deref().is_some_and(|url| url.starts_with("redis+sentinel")) {
        println!(
            "  Move the Redis primary: `redis-cli -p {SENTINEL_PORT} SENTINEL FAILOVER {MASTER}`"
        );
        println!("  (or kill it): the relays follow the new one and the chat carries on.");
    }
    let _ = interrupted.recv();
    println!();
    children.stop_all();
    Ok(())
}

/// The demo's Sentinel-monitored primary, and the first sentinel's port.
const MASTER: &str = "demo";
const SENTINEL_PORT: u16 = 26390;

/// What redis-server prints once it accepts connections.
const READY: &str = "Ready to accept";

/// redis-server on `port`, with its append-only file in `dir`.
fn redis_server(port: u16, dir: &std::path::Path) -> Command {
    let mut redis = Command::new("redis-server");
    redis.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
    redis.args(["--appendonly", "yes", "--dir"]).arg(dir);
    redis
}

/// A primary on `port`, its replica on the next port and three sentinels (quorum 2,
/// 2 s to decide a primary is down) from `SENTINEL_PORT`; answers the relays' Redis URL.
fn start_sentinels(children: &mut Children, demo: &std::path::Path, port: u16) -> Result<String> {
    let replica_port = port + 1;
    for (name, at) in [("primary", port), ("replica", replica_port)] {
        let dir = demo.join(format!("redis-{name}"));
        std::fs::create_dir_all(&dir)?;
        let mut redis = redis_server(at, &dir);
        // The replica is ready once it holds the primary's data: the relays' writes wait
        // for it (`--redis-wait-replicas`), and one refused at start stops a relay.
        let mut ready = READY;
        if at == replica_port {
            redis.args(["--replicaof", "127.0.0.1", &port.to_string()]);
            ready = "sync: Finished with success";
        }
        children.start_redis(&mut redis, &format!("redis {name}"), ready)?;
    }
    let mut sentinels = Vec::new();
    for k in 0..3 {
        let at = SENTINEL_PORT + k;
        let dir = demo.join(format!("sentinel-{k}"));
        std::fs::create_dir_all(&dir)?;
        // A sentinel rewrites its own file as it learns the topology: a fresh one each run.
        let conf = dir.join("sentinel.conf");
        let text = format!(
            "port {at}\nbind 127.0.0.1\nsentinel monitor {MASTER} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {MASTER} 2000\n\
             sentinel failover-timeout {MASTER} 10000\n"
        );
        std::fs::write(&conf, text)?;
        let mut sentinel = Command::new("redis-server");
        sentinel.arg(&conf).arg("--sentinel");
        // A sentinel is ready once it monitors the primary.
        children.start_redis(&mut sentinel, &format!("sentinel {}", k + 1), "+monitor master")?;
        sentinels.push(format!("127.0.0.1:{at}"));
    }
    Ok(format!("redis+sentinel://{}/{MASTER}", sentinels.join(",")))
}

fn port_arg(args: &[String], name: &str, default: u16) -> Result<u16> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("{name} needs a number")),
    }
}

/// Child processes, stopped with SIGINT (as Ctrl-C would) and SIGKILL after 10 s, in
/// reverse order.
#[derive(Default)]
struct Children(Vec<(String, Child)>);

impl Children {
    /// Starts redis-server (or a sentinel) and waits for the line that says it is ready.
    fn start_redis(&mut self, cmd: &mut Command, name: &str, ready: &str) -> Result<()> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .context("starting redis-server (apt install redis-server)")?;
        let stdout = child.stdout.take().context("redis-server stdout")?;
        self.0.push((name.to_owned(), child));
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains(ready));
        if !ready {
            self.stop_all();
            bail!("{name} exited before it was ready");
        }
        std::thread::spawn(move || lines.for_each(drop));
        println!("==> {name} ready");
        Ok(())
    }

    /// Starts a server and waits for its ready line, which it returns.
    fn start(&mut self, cmd: &mut Command, name: &str) -> Result<serde_json::Value> {
        let mut child =
            cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        self.0.push((name.to_owned(), child));
        let mut lines = BufReader::new(stdout).lines();
        let ready = match lines.next() {
            Some(Ok(line)) => serde_json::from_str::<serde_json::Value>(&line)
                .with_context(|| format!("{name} printed {line:?} instead of its ready line"))?,
            _ => {
                self.stop_all();
                bail!("{name} exited before it was ready");
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        println!("==> {name} ready (pid {}): {ready}", self.0.last().map_or(0, |(_, c)| c.id()));
        Ok(ready)
    }

    fn stop_all(&mut self) {
        for (name, child) in self.0.iter_mut().rev() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        println!("==> {name} stopped ({status})");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        #[allow(
                            clippy::disallowed_methods,
                            reason = "a synchronous CLI polling its child; no runtime to block"
                        )]
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        println!("==> {name} killed after 10 s");
                        break;
                    }
                }
            }
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}
