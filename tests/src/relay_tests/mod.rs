//! The real relay with the real gms-sim, over sockets: push → frame → acknowledgement,
//! authentication, malformed input, registration, the WebSocket hub, durability across
//! kill -9, the periodic ping and graceful shutdown, several relays on Redis (one server,
//! Sentinel's primary through failovers, a Cluster), a chat handed to a verified
//! identity's other devices or through a resume link, and traces exported over OTLP.
//!
//! Named `relay_tests`, not `relay`, so that `relay::…` in these files and in test names
//! is always the crate under test. The files below are scenarios; this one holds what
//! several of them use (`Setup`, the relay binary's start, restorations' pings, the Redis
//! scenarios' `Visitor` and `RedisLoad`).

mod capture;
mod check;
mod durability;
mod ewt;
mod fuzz_http;
mod gateway;
mod ha;
mod health;
mod hostile_gms;
mod hours;
mod identity;
mod lifecycle;
mod otlp;
mod ping;
mod proxy;
mod push;
mod redis;
mod redis_cluster;
mod redis_cluster_mode;
mod redis_ha;
mod redis_sentinel;
mod security;
mod sessions;
mod store;
mod survey;
mod tokens;
mod web_push;
mod widget_files;
mod ws;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use relay::check::CheckConfig;
use serde_json::Value;
use shared::gms::{ChatEvent, ChatOperation, Credentials};
use shared::relay_api::{
    PUSH_PATH, RegisterSession, SESSIONS_PATH, ServerFrame, SessionRegistered,
};
use shared::transcript::TranscriptCursor;

use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{Options, RelayCluster, System, free_port, relay_binary, scratch_dir};
use crate::support::{
    SERVICE, TEST_PUSH_SECRET, Wait, push_url, push_user_data, register, until, until_every,
};
use crate::ws_client::WsClient;

/// A system with clients for each side.
pub(crate) struct Setup {
    pub(crate) system: System,
    pub(crate) gms: GmsClient,
    pub(crate) admin: SimAdmin,
    pub(crate) http: reqwest::Client,
}

impl Setup {
    pub(crate) async fn start(options: Options) -> Result<Setup> {
        let system = System::start(options).await?;
        let gms = GmsClient::new(&system.gms.url(), SERVICE);
        let admin = SimAdmin::new(&system.gms.url());
        Ok(Setup { system, gms, admin, http: reqwest::Client::new() })
    }

    /// A push-subscribed async chat, as the widget creates it.
    pub(crate) async fn chat(&self, resend: bool) -> Result<Credentials> {
        let device = format!("dev-{}", rand_suffix());
        let (credentials, _) = self.gms.create("Jane", push_user_data(&device, resend)).await?;
        Ok(credentials)
    }

    /// `POST {SESSIONS_PATH}` with `body`, as it is.
    pub(crate) async fn post_registration(
        &self,
        body: &RegisterSession,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{SESSIONS_PATH}", self.system.relay_url);
        Ok(self.http.post(url).json(body).send().await?)
    }

    /// `POST {SESSIONS_PATH}`: returns the HTTP status and the body.
    pub(crate) async fn register_raw(&self, credentials: &Credentials) -> Result<(u16, Value)> {
        let body = RegisterSession::new(SERVICE, credentials, None);
        let response = self.post_registration(&body).await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// `DELETE /v1/sessions/{chatId}` with the chat's token: the relay forgets it.
    pub(crate) async fn forget(&self, chat_id: &str, token: &str) -> Result<u16> {
        let url = format!("{}{SESSIONS_PATH}/{chat_id}", self.system.relay_url);
        Ok(self.http.delete(url).bearer_auth(token).send().await?.status().as_u16())
    }

    pub(crate) async fn register(&self, credentials: &Credentials) -> Result<SessionRegistered> {
        let (status, body) = self.register_raw(credentials).await?;
        if status != 200 {
            bail!("registration answered {status}: {body}");
        }
        Ok(serde_json::from_value(body)?)
    }

    /// `count` chats, each created and registered.
    pub(crate) async fn registered_chats(&self, count: usize) -> Result<Vec<Credentials>> {
        let mut all = Vec::with_capacity(count);
        for _ in 0..count {
            let credentials = self.chat(false).await?;
            self.register(&credentials).await?;
            all.push(credentials);
        }
        Ok(all)
    }

    /// A registered chat with a subscribed WebSocket.
    pub(crate) async fn subscribed_chat(
        &self,
        resend: bool,
    ) -> Result<(Credentials, WsClient, SessionRegistered)> {
        let credentials = self.chat(resend).await?;
        let registered = self.register(&credentials).await?;
        let mut ws = WsClient::connect(&self.system.relay_url).await?;
        let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
        anyhow::ensure!(
            matches!(answer, ServerFrame::Subscribed { .. }),
            "subscribe answered {answer:?}"
        );
        Ok((credentials, ws, registered))
    }

    /// Waits until gms-sim has no push waiting for an acknowledgement for the chat.
    pub(crate) async fn acknowledged(&self, chat_id: &str, within: Duration) -> Result<()> {
        until(&format!("every push for {chat_id} acknowledged"), within, async || {
            let chat = self.admin.get(&format!("/sim/chats/{chat_id}")).await?;
            Ok(Wait::done_if(chat["pendingPushes"] == 0, chat))
        })
        .await
    }

    /// POSTs a raw push body to the relay.
    pub(crate) async fn push(&self, query: &str, body: impl Into<reqwest::Body>) -> Result<u16> {
        let url = format!("{}{PUSH_PATH}{query}", self.system.relay_url);
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// `relay check` of this system's GMS and relay, waiting `wait` seconds for the push,
    /// with `extra` flags.
    pub(crate) fn check_config(&self, wait: &str, extra: &[&str]) -> Result<CheckConfig> {
        use clap::Parser as _;
        let gms_url = self.system.gms.url();
        let mut args = vec!["relay check", "--gms-url", &gms_url];
        args.extend(["--relay-url", &self.system.relay_url, "--service", SERVICE]);
        args.extend(["--wait", wait]);
        args.extend(extra);
        Ok(CheckConfig::try_parse_from(args)?)
    }

    pub(crate) async fn metrics(&self) -> Result<String> {
        Ok(self.http.get(format!("{}/metrics", self.system.relay_url)).send().await?.text().await?)
    }
}

/// How a start of the relay binary ended.
pub(crate) enum Started {
    /// It exited before its ready line, with this on stderr.
    Refused(String),
    /// It runs: its ready line, and its stderr so far (kept up to date).
    Running {
        ready: serde_json::Value,
        log: Arc<Mutex<String>>,
        _child: Box<tokio::process::Child>,
    },
}

/// Runs the relay binary with `args` and `env` until it exits or prints its ready line.
pub(crate) async fn start_binary(args: &[&str], env: &[(&str, &str)]) -> Result<Started> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let dir = scratch_dir("relay-start")?;
    let mut child = tokio::process::Command::new(relay_binary()?)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        // A GMS nobody answers at, unless the test names one.
        .args(["--gms-url", "http://127.0.0.1:9"].iter().filter(|_| !args.contains(&"--gms-url")))
        .args(args)
        .env_remove("RELAY_PUSH_SECRET")
        .envs(env.iter().copied())
        .env("RUST_LOG", "relay=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the relay")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut stderr = child.stderr.take().context("stderr")?;
    let log = Arc::new(Mutex::new(String::new()));
    let kept = log.clone();
    let drained = tokio::spawn(async move {
        let mut buffer = [0_u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buffer).await {
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            kept.lock().unwrap_or_else(PoisonError::into_inner).push_str(&text);
        }
    });
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .context("neither a ready line nor an exit within 20 s")??;
    let Some(line) = line else {
        let status = child.wait().await?;
        drained.await?;
        let log = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
        anyhow::ensure!(!status.success(), "the relay exited with success: {log}");
        return Ok(Started::Refused(log));
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Started::Running { ready: serde_json::from_str(&line)?, log, _child: Box::new(child) })
}

/// The next frame that is not a typing or join notice of no interest.
pub(crate) async fn next_events(ws: &mut WsClient) -> Result<Vec<shared::gms::ChatEvent>> {
    match ws.frame(Duration::from_secs(5)).await? {
        ServerFrame::Events { messages, .. } => Ok(messages),
        other => bail!("expected events, got {other:?}"),
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The value of a Prometheus counter line (summed over label sets matching `labels`).
pub(crate) fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(crate) fn test_secret_query() -> String {
    format!("?secret={TEST_PUSH_SECRET}")
}

/// Pings each chat got since `before`.
pub(crate) fn extra(now: &HashMap<String, u64>, before: &HashMap<String, u64>, id: &str) -> u64 {
    now.get(id).copied().unwrap_or(0) - before.get(id).copied().unwrap_or(0)
}

/// Waits until every chat in `moving` has been pinged since `before` (fails after `within`).
pub(crate) async fn restored(
    admin: &SimAdmin,
    moving: &[String],
    before: &HashMap<String, u64>,
    within: Duration,
) -> Result<()> {
    until("every chat restored", within, async || {
        let now = admin.refreshes().await?;
        let left: Vec<&String> = moving.iter().filter(|id| extra(&now, before, id) == 0).collect();
        Ok(Wait::done_if(left.is_empty(), format!("{left:?} never pinged")))
    })
    .await
}

/// A visitor of the Redis scenarios: a chat, its token, its socket, its place in the
/// transcript (the product's `TranscriptCursor`, as the widget keeps it) and the agent lines
/// it has, by index.
pub(crate) struct Visitor {
    pub(crate) credentials: Credentials,
    pub(crate) token: String,
    pub(crate) node: usize,
    pub(crate) ws: WsClient,
    pub(crate) cursor: TranscriptCursor,
    pub(crate) lines: BTreeMap<u64, String>,
    /// The lines that came in frames, by index: one coming in a frame again is a duplicate
    /// (one a refresh brought first is not).
    pub(crate) framed: BTreeSet<u64>,
    pub(crate) duplicates: usize,
    /// `changed` frames received (each cost a refresh): a push whose frame raced the
    /// acknowledgement of an earlier one may cause one.
    pub(crate) changed: usize,
}

impl Visitor {
    /// A visitor of a chat whose widget holds `cursor`, its socket on relay `node`.
    pub(crate) fn new(
        credentials: Credentials,
        token: String,
        node: usize,
        ws: WsClient,
        cursor: TranscriptCursor,
    ) -> Visitor {
        Visitor {
            credentials,
            token,
            node,
            ws,
            cursor,
            lines: BTreeMap::new(),
            framed: BTreeSet::new(),
            duplicates: 0,
            changed: 0,
        }
    }

    /// Reads frames until it holds `count` agent lines (fails after `within`); a `changed`
    /// frame, or one that does not continue its cursor, makes it refresh from GMS, as the
    /// widget does.
    pub(crate) async fn read_lines(
        &mut self,
        gms: &GmsClient,
        count: usize,
        within: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while self.lines.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.ws.frame(left).await? {
                ServerFrame::Events { messages, .. } => {
                    for event in &messages {
                        if let (Some(index), Some(text)) = (event.index, &event.text)
                            && text.starts_with("line ")
                            && !self.framed.insert(index)
                        {
                            self.duplicates += 1;
                        }
                    }
                    // As the protocol asks of a widget: a frame that does not continue
                    // what it holds means a push was lost (GMS counts it acknowledged
                    // once a later one is), so refresh from there.
                    let merge = self.cursor.merge(messages);
                    self.keep(merge.fresh);
                    if merge.gap.is_some() {
                        self.refresh(gms).await?;
                    }
                }
                ServerFrame::Changed { .. } => {
                    self.changed += 1;
                    self.refresh(gms).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What the cursor lacks, from GMS.
    pub(crate) async fn refresh(&mut self, gms: &GmsClient) -> Result<()> {
        let position = self.cursor.refresh_position();
        let response = gms.call(&ChatOperation::Refresh { position }, &self.credentials).await?;
        let merge = self.cursor.apply(&response);
        self.keep(merge.fresh);
        Ok(())
    }

    /// The agent's lines among new events.
    fn keep(&mut self, fresh: Vec<ChatEvent>) {
        for event in fresh {
            if let (Some(index), Some(text)) = (event.index, event.text)
                && text.starts_with("line ")
            {
                self.lines.insert(index, text);
            }
        }
    }
}

/// The Redis high-availability scenarios' load: relay processes on the Redis that
/// `redis` flags name, gms-sim spreading its pushes over them, and a `Visitor` per chat,
/// registered on one relay and following it on the next.
pub(crate) struct RedisLoad {
    pub(crate) sim: gms_sim::Running,
    pub(crate) relays: RelayCluster,
    pub(crate) gms: GmsClient,
    pub(crate) admin: SimAdmin,
    pub(crate) visitors: Vec<Visitor>,
}

impl RedisLoad {
    pub(crate) async fn start(redis: &[String], relays: usize, chats: usize) -> Result<RedisLoad> {
        let ports: Vec<u16> = (0..relays).map(|_| free_port()).collect::<Result<_>>()?;
        // GMS resends a refused push every 0.3 s for a minute and a half.
        let mut sim_args: Vec<String> = ["gms-sim", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(&["--push-resend-delay", "0.3", "--push-resend-attempts", "300"])
            .map(|s| (*s).to_owned())
            .collect();
        for port in &ports {
            sim_args.push("--push-url".to_owned());
            sim_args.push(push_url(&format!("http://127.0.0.1:{port}")));
        }
        let sim = {
            use clap::Parser as _;
            gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?
        };
        let flags = ["--ping-interval", "3600"].map(str::to_owned);
        let nodes = RelayCluster::start_on(redis, &sim.url(), &ports, &flags).await?;
        let gms = GmsClient::new(&sim.url(), SERVICE);
        let admin = SimAdmin::new(&sim.url());
        let http = reqwest::Client::new();
        let mut visitors = Vec::new();
        for n in 0..chats {
            let device = format!("dev-ha-{n}");
            let (credentials, created) = gms.create("Jane", push_user_data(&device, true)).await?;
            let mut cursor = TranscriptCursor::new();
            cursor.apply(&created);
            let body = RegisterSession::new(SERVICE, &credentials, None);
            let registered = register(&http, &nodes.urls[n % relays], &body).await?;
            let node = (n + 1) % relays;
            let mut ws = WsClient::connect(&nodes.urls[node]).await?;
            let answer = ws.subscribe(&credentials.chat_id, &registered.token).await?;
            anyhow::ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "{answer:?}");
            visitors.push(Visitor::new(credentials, registered.token, node, ws, cursor));
        }
        Ok(RedisLoad { sim, relays: nodes, gms, admin, visitors })
    }

    pub(crate) fn chats(&self) -> Vec<String> {
        self.visitors.iter().map(|v| v.credentials.chat_id.clone()).collect()
    }

    /// The agent writes lines `from..to` in every chat, a round every 100 ms: a steady
    /// load that outlasts a failover.
    pub(crate) fn load(&self, from: usize, to: usize) -> tokio::task::JoinHandle<Result<()>> {
        let (admin, chats) = (self.admin.clone(), self.chats());
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            for line in from..to {
                pace.tick().await;
                for chat in &chats {
                    admin.agent_says(chat, &format!("line {line}")).await?;
                }
            }
            Ok(())
        })
    }

    /// Every visitor holds lines `0..upto`, each once (waiting at most `within` each).
    pub(crate) async fn delivered(&mut self, upto: usize, within: Duration) -> Result<()> {
        let expected: Vec<String> = (0..upto).map(|n| format!("line {n}")).collect();
        for visitor in &mut self.visitors {
            visitor.read_lines(&self.gms, upto, within).await.with_context(|| {
                format!("visitor on relay {} holds {:?}", visitor.node, visitor.lines)
            })?;
            assert_eq!(visitor.lines.values().cloned().collect::<Vec<_>>(), expected);
        }
        Ok(())
    }

    /// Waits until gms-sim has no push left unacknowledged.
    pub(crate) async fn acknowledged(&self, within: Duration) -> Result<()> {
        let what = "every push acknowledged";
        until_every(what, within, Duration::from_millis(100), async || {
            let chats = self.admin.get("/sim/chats").await?;
            let waiting = chats.as_array().map_or(0, |all| {
                all.iter().filter(|c| c["pendingPushes"].as_u64() != Some(0)).count()
            });
            Ok(Wait::done_if(waiting == 0, format!("{waiting} chats with pushes unacknowledged")))
        })
        .await
    }

    pub(crate) async fn stop(self) -> Result<()> {
        self.relays.stop().await?;
        self.sim.stop().await;
        Ok(())
    }
}

/// Each chat's stored position, read from Redis over `connection`.
pub(crate) async fn stored_positions(
    connection: &mut impl ::redis::aio::ConnectionLike,
    chats: &[String],
) -> Result<HashMap<String, u64>> {
    let mut positions = HashMap::new();
    for chat in chats {
        let record: Option<String> = ::redis::cmd("HGET")
            .arg(format!("gmschat:{{{chat}}}:chat"))
            .arg("r")
            .query_async(connection)
            .await?;
        let record: serde_json::Value =
            serde_json::from_str(&record.with_context(|| format!("no record of {chat}"))?)?;
        positions.insert(chat.clone(), record["position"].as_u64().context("no position")?);
    }
    Ok(positions)
}

/// What was acknowledged before is stored after, at that position or later.
pub(crate) fn kept(before: &HashMap<String, u64>, after: &HashMap<String, u64>) {
    for (chat, position) in before {
        let now = after.get(chat).copied().unwrap_or(0);
        assert!(now >= *position, "{chat} fell back from {position} to {now}");
    }
}
