//! `relay check`: a first-day smoke test of a deployment, run by an operator against their
//! own GMS and relay. It creates one test chat subscribed to push, registers it with the
//! relay, waits for a push to come through and be acknowledged, then ends the chat;
//! every step prints what it found and, when it fails, what to fix. Given the Chat Servers,
//! it first reads each one's health endpoint as the relay's watcher does; with `--capture`
//! it writes the first push body (redacted by the relay) and the health bodies to files an
//! operator can send, since the exact layouts of a real deployment are not public.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use shared::gms::{
    ChatOperation, ChatResponse, Credentials, PushSubscription, RequestBody, Visitor,
    async_push_user_data,
};
use shared::health::HealthPoll;
use shared::relay_api::{
    CAPTURE, CapturedPush, ClientFrame, RegisterSession, SESSIONS_PATH, ServerFrame,
};
use shared::transcript::TranscriptPosition;
use tokio_tungstenite::tungstenite::Message;

/// What to check.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "relay check",
    bin_name = "relay check",
    about = "Smoke-test GMS, Chat Server push and the relay together"
)]
pub struct CheckConfig {
    /// GMS base URL, as the widget reaches it.
    #[arg(long, env = "RELAY_GMS_URL", default_value = "http://127.0.0.1:8090")]
    pub gms_url: String,

    /// The chat service to create the test chat on.
    #[arg(long, default_value = "customer-support")]
    pub service: String,

    /// The relay's public base URL, as browsers reach it.
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    pub relay_url: String,

    /// `GCTI_GMS_NodeGroup`: the GMS cluster application's name, if the deployment needs it.
    #[arg(long, default_value = "")]
    pub node_group: String,

    /// Seconds to wait for the first push (answer the test chat from an agent desktop, or
    /// let the routing strategy's greeting arrive, meanwhile).
    #[arg(long, default_value = "120", value_parser = crate::config::seconds)]
    pub wait: Duration,

    #[command(flatten)]
    pub gms_headers: crate::config::GmsHeaders,

    /// A Chat Server whose health endpoint to read once, as `<alias>=<health-url>` (the
    /// relay's `--chat-server`); repeatable.
    #[arg(long = "chat-server", env = "RELAY_CHAT_SERVERS", value_delimiter = ',', value_parser = crate::config::parse_chat_server)]
    pub chat_servers: Vec<crate::ChatServer>,

    #[command(flatten)]
    pub health_keys: crate::config::HealthKeyNames,

    /// A directory (created if missing) to write what GMS and Chat Server sent into, for
    /// reporting: `push-body.txt`, the first push body for the test chat with its secure
    /// key redacted by the relay, and `health-<alias>.txt`, each Chat Server's health body.
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,
}

/// The most of a health body written to a capture file.
const HEALTH_CAPTURE_LIMIT: usize = 64 * 1024;

/// One step's result.
struct Step<'a, W: Write> {
    out: &'a mut W,
    passed: usize,
    failed: bool,
}

impl<W: Write> Step<'_, W> {
    fn ok(&mut self, what: &str, detail: &str) {
        self.passed += 1;
        let _ = writeln!(self.out, "ok    {what}: {detail}");
    }

    fn fail(&mut self, what: &str, problem: &str, fixes: &[&str]) {
        self.failed = true;
        let _ = writeln!(self.out, "FAIL  {what}: {problem}");
        for fix in fixes {
            let _ = writeln!(self.out, "      - {fix}");
        }
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "      {text}");
    }

    /// Writes one capture file into the `--capture` directory and says so.
    async fn capture(&mut self, dir: &Path, name: &str, bytes: &[u8]) {
        let path = dir.join(name);
        match tokio::fs::write(&path, bytes).await {
            Ok(()) => {
                let _ = writeln!(self.out, "capture: wrote {}", path.display());
            }
            Err(error) => {
                let _ = writeln!(self.out, "capture: could not write {}: {error}", path.display());
            }
        }
    }
}

/// Runs every step in order, stopping at the first failure of the test chat's steps (the
/// Chat Servers' health steps come first and stop nothing); answers whether all passed.
pub async fn run(config: &CheckConfig, out: &mut impl Write) -> anyhow::Result<bool> {
    // No redirects, as the relay's own GMS client: a chat's tokens go to GMS only.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // GMS's requests carry the operator's headers (an API gateway's key); the relay's do
    // not, as no one but GMS is given them.
    let gms_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(crate::gms::header_map(&config.gms_headers.headers)?)
        .build()?;
    if let Some(dir) = &config.capture {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating the --capture directory {}", dir.display()))?;
    }
    let mut step = Step { out, passed: 0, failed: false };
    let gms = config.gms_url.trim_end_matches('/');
    let relay = config.relay_url.trim_end_matches('/');
    let steps = 5 + config.chat_servers.len();

    // 0. Each Chat Server's health endpoint reads (the relay's restart detection). The push
    // does not depend on it, so a failure here does not stop the check.
    for server in &config.chat_servers {
        health_step(&http, server, config, &mut step).await;
    }

    // 1. GMS creates a chat subscribed to customhttp push.
    let device_id = format!("relay-check-{:08x}", rand::rng().random::<u32>());
    let subscription = PushSubscription::new(device_id.clone(), config.node_group.clone());
    let create = ChatOperation::Create {
        visitor: Visitor {
            nickname: Some("relay check".to_owned()),
            subject: Some("relay check: please answer or ignore".to_owned()),
            ..Visitor::default()
        },
        user_data: async_push_user_data(&subscription),
    };
    let what = "GMS creates a chat with push";
    let credentials = match gms_call(&gms_http, gms, &config.service, &create, None).await {
        Ok(response) => match response.credentials().filter(|_| response.status_code == 0) {
            Some(credentials) => {
                step.ok(
                    what,
                    &format!("chat {} on Chat Server {}", credentials.chat_id, credentials.alias),
                );
                credentials
            }
            None => {
                step.fail(what, &format!("GMS refused: {}", response.error_summary()), &[
                    "a statusCode 1 (240) means no Chat Server can take chats: check that they run and that GMS is connected to them",
                    "check the chat service's section `chat.<service>` in the GMS application options",
                ]);
                return Ok(false);
            }
        },
        Err(problem) => {
            step.fail(
                what,
                &problem,
                &[
                    "check --gms-url and that this machine reaches GMS (firewall, TLS)",
                    "HTTP 404: the service name is wrong or GMS has no `chat.<service>` section",
                ],
            );
            return Ok(false);
        }
    };

    // 2. The relay accepts it (it validates the tokens with its own GMS).
    let what = "the relay registers the chat";
    let mut body = RegisterSession::new(&config.service, &credentials, Some(&device_id));
    // Only for a capture: the relay keeps the chat's first push body for it.
    body.capture = config.capture.is_some();
    let registered = http.post(format!("{relay}{SESSIONS_PATH}")).json(&body).send().await;
    let token = match registered {
        Ok(response) if response.status().is_success() => {
            let answer: shared::relay_api::SessionRegistered = response.json().await?;
            step.ok(what, "the relay validated the tokens with GMS");
            answer.token
        }
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            step.fail(
                what,
                &format!("HTTP {status}: {text}"),
                &[
                    "403: the relay's --gms-url must be the same GMS as --gms-url here",
                    "502: the relay cannot reach GMS from where it runs",
                    "429: this address used its --register-rate; wait a minute",
                ],
            );
            end_chat(&gms_http, gms, &config.service, &credentials).await;
            return Ok(false);
        }
        Err(error) => {
            step.fail(
                what,
                &format!("no answer: {error}"),
                &["check --relay-url, and that the relay runs and its /readyz answers 200"],
            );
            end_chat(&gms_http, gms, &config.service, &credentials).await;
            return Ok(false);
        }
    };

    // 3. A push for the chat reaches the relay and comes out on its WebSocket.
    let what = "a push arrives through the relay";
    let acks_before = ack_counts(&http, relay).await;
    step.note(&format!(
        "waiting up to {} s: answer the chat \"relay check\" from an agent desktop, or let a greeting arrive",
        config.wait.as_secs()
    ));
    match first_push(relay, &credentials.chat_id, &token, config.wait).await {
        Ok(frame) => {
            step.ok(what, &frame);
            if let Some(dir) = &config.capture {
                match captured_push(&http, relay, &credentials.chat_id, &token).await {
                    Ok(push) => step.capture(dir, "push-body.txt", push.as_bytes()).await,
                    Err(why) => {
                        let _ = writeln!(step.out, "capture: no push body written: {why}");
                    }
                }
            }
        }
        Err(problem) if someone_else_wrote(&gms_http, gms, &config.service, &credentials).await => {
            // Something happened in the chat and GMS knows it, but no push came: Chat
            // Server does not push for this chat.
            step.fail(what, &format!("{problem}, though GMS has events in the chat from others"), &[
                "Chat Server 8.5.315.05 or later keeps an idle web visitor's push subscription (older ones log them out after flex-disconnect-timeout)",
                "Chat Server: flex-push-enabled=true and flex-push-on-join=true",
                "--node-group must name the GMS cluster application Chat Server pushes through",
                "Chat Server: flex-push-content must list session-id (and app-dbid, secure-key, user-id)",
                "GMS: `customhttp.url` is this relay's /gms/push?secret=<its push secret>, and GMS reaches it",
            ]);
            end_chat(&gms_http, gms, &config.service, &credentials).await;
            return Ok(false);
        }
        Err(problem) => {
            step.fail(what, &problem, &[
                "GMS: `[chat] enable_notification_mode=true`, and `[push] pushEnabled` lists customhttp",
                "GMS: `customhttp.url` is this relay's /gms/push?secret=<its push secret> (GMS turns no user:secret@ into a Basic header); GMS must reach it",
                "Chat Server: flex-push-enabled=true, flex-push-on-join=true, a large flex-push-timeout",
                "--node-group must name the GMS cluster application (Chat Server log: \"no gms node found in group\")",
                "the relay's log shows refused pushes (401 secret, 403 --push-allow, 413 --push-body-limit)",
            ]);
            end_chat(&gms_http, gms, &config.service, &credentials).await;
            return Ok(false);
        }
    }

    // 4. The relay acknowledged it to GMS.
    let what = "the relay acknowledges the push";
    match acknowledged(&http, relay, acks_before).await {
        Ok(()) => step.ok(what, "its ping to GMS was answered"),
        Err(problem) => step.fail(what, &problem, &[
            "\"refused\" or \"stopped\": GMS refused the tokens the push carried: flex-push-content must list app-dbid, secure-key, session-id, user-id",
            "\"failed\": the relay cannot reach GMS (its --gms-url, firewall)",
        ]),
    }

    // 5. The test chat ends and the relay forgets it.
    let what = "the test chat ends";
    if end_chat(&gms_http, gms, &config.service, &credentials).await {
        let _ = http
            .delete(format!("{relay}{SESSIONS_PATH}/{}", credentials.chat_id))
            .bearer_auth(&token)
            .send()
            .await;
        step.ok(what, "disconnected and forgotten by the relay");
    } else {
        step.fail(what, "GMS did not end it", &["end it from the agent desktop"]);
    }
    let (passed, failed) = (step.passed, step.failed);
    let _ = writeln!(step.out, "{passed} of {steps} steps passed");
    Ok(!failed)
}

/// Reads one Chat Server's health endpoint once, without redirects or GMS's headers (the
/// relay's watcher sends none either), and judges it as the watcher does.
async fn health_step<W: Write>(
    http: &reqwest::Client,
    server: &crate::ChatServer,
    config: &CheckConfig,
    step: &mut Step<'_, W>,
) {
    let what = format!("Chat Server {:?}'s health endpoint", server.alias);
    let keys = config.health_keys.keys();
    let (status, body) = match crate::watcher::fetch(http, &server.health_url).await {
        Ok(answer) => answer,
        Err(error) => {
            step.fail(&what, &format!("unreachable: {error}"), &[
                "check the URL in --chat-server <alias>=<health-url>: the Chat Server's port with id `health`",
                "the relay's host (and this one) must reach that port: firewall",
            ]);
            return;
        }
    };
    match HealthPoll::judge(status, &body, &keys) {
        HealthPoll::Ok(health) => {
            step.ok(
                &what,
                &format!(
                    "app_dbid {:?}, process_os_pid {}",
                    health.app_dbid, health.process_os_pid
                ),
            );
            if health.app_dbid != server.alias {
                step.note(&format!(
                    "the body names app_dbid {:?}, not the alias given: the relay restores the chats GMS gives the alias {:?}, so use the alias GMS answers with",
                    health.app_dbid, server.alias
                ));
            }
        }
        HealthPoll::Unreachable(reason) => step.fail(
            &what,
            &format!("unreachable: {reason}"),
            &["an error status: check the path in --chat-server <alias>=<health-url>"],
        ),
        HealthPoll::Unreadable(error) => {
            let looks = format!("the body is {}", shared::health::outline(&body));
            let names = format!(
                "name its fields with --health-dbid-key and --health-pid-key (now {:?} and {:?}; \
                 found at any depth, also in camelCase and kebab-case), here and on the relay",
                keys.dbid, keys.pid
            );
            step.fail(&what, &format!("unreadable: {}", error.0), &[
                &looks,
                &names,
                "until then the relay cannot see this Chat Server restart (it is not taken for down)",
            ]);
        }
    }
    // Whatever the verdict, the body is what to report (an error page too).
    if let Some(dir) = &config.capture {
        let kept = body.get(..HEALTH_CAPTURE_LIMIT).unwrap_or(&body);
        step.capture(dir, &format!("health-{}.txt", file_name(&server.alias)), kept).await;
    }
}

/// An alias as part of a file name: anything but letters, digits, `-`, `_` and `.` becomes
/// `_`.
fn file_name(alias: &str) -> String {
    alias
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

/// The push body the relay kept for the test chat, redacted, or why there is none. Asked
/// for a few seconds: with several relays, the one that took the push may still be
/// handing it to Redis.
async fn captured_push(
    http: &reqwest::Client,
    relay: &str,
    chat_id: &str,
    token: &str,
) -> Result<String, String> {
    let url = format!("{relay}{SESSIONS_PATH}/{chat_id}/{CAPTURE}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let response = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("no answer from the relay: {e}"))?;
        match response.status().as_u16() {
            200 => {
                let captured: CapturedPush = response.json().await.map_err(|e| e.to_string())?;
                return Ok(captured.push);
            }
            404 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            404 => {
                return Err("the relay kept none for the chat: a relay older than this check, \
                            or several relays without Redis where another took the push"
                    .to_owned());
            }
            status => return Err(format!("the relay answered HTTP {status}")),
        }
    }
}

/// One Chat API request, its envelope or what went wrong.
async fn gms_call(
    http: &reqwest::Client,
    gms: &str,
    service: &str,
    operation: &ChatOperation,
    credentials: Option<&Credentials>,
) -> Result<ChatResponse, String> {
    let request = operation.encode(service, credentials);
    let RequestBody::Form(fields) = &request.body else {
        return Err("the check sends no files".to_owned());
    };
    let response = http
        .post(format!("{gms}{}", request.path))
        .header(reqwest::header::CONTENT_TYPE, shared::form::CONTENT_TYPE)
        .body(shared::form::encode(fields))
        .send()
        .await
        .map_err(|e| format!("no answer from GMS: {e}"))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    ChatResponse::parse(&body).map_err(|_| match ChatResponse::foreign_error(&body) {
        Some(message) => format!("HTTP {status} without a Chat API answer: {message:?}"),
        None => format!("HTTP {status} without a Chat API answer"),
    })
}

/// Whether the chat's transcript holds an event from someone other than the visitor (an
/// agent, a bot, the system's greeting).
async fn someone_else_wrote(
    http: &reqwest::Client,
    gms: &str,
    service: &str,
    credentials: &Credentials,
) -> bool {
    let everything = ChatOperation::Refresh { position: TranscriptPosition::All };
    let answer = gms_call(http, gms, service, &everything, Some(credentials)).await;
    answer.is_ok_and(|r| r.messages.iter().any(|event| !event.from.is_client()))
}

async fn end_chat(
    http: &reqwest::Client,
    gms: &str,
    service: &str,
    credentials: &Credentials,
) -> bool {
    let ended = gms_call(http, gms, service, &ChatOperation::Disconnect, Some(credentials)).await;
    ended.is_ok_and(|r| r.status_code == 0 || r.chat_ended == Some(true))
}

/// Subscribes and waits for the first frame a push causes.
async fn first_push(
    relay: &str,
    chat_id: &str,
    token: &str,
    wait: Duration,
) -> Result<String, String> {
    let url = shared::relay_api::ws_url(relay);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("cannot open the relay's WebSocket: {e}"))?;
    let subscribe = ClientFrame::Subscribe { chat_id: chat_id.to_owned(), token: token.to_owned() };
    let text = serde_json::to_string(&subscribe).map_err(|e| e.to_string())?;
    socket.send(Message::text(text)).await.map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| format!("no push within {} s", wait.as_secs()))?;
        let Some(Ok(Message::Text(text))) = message else {
            match message {
                Some(Ok(_)) => continue,
                _ => return Err("the relay closed the WebSocket".to_owned()),
            }
        };
        match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(ServerFrame::Events { messages, .. }) => {
                return Ok(format!("{} event(s), with their payload", messages.len()));
            }
            Ok(ServerFrame::Changed { .. }) => {
                return Ok("a push without payload (push_notification_include_payload is off: the widget refreshes)".to_owned());
            }
            Ok(ServerFrame::Error { message, .. }) => return Err(message),
            _ => {}
        }
    }
}

/// `relay_pings_total{kind="ack"}` by result, from the relay's metrics.
async fn ack_counts(http: &reqwest::Client, relay: &str) -> Vec<(String, f64)> {
    let Ok(response) = http.get(format!("{relay}/metrics")).send().await else { return vec![] };
    let text = response.text().await.unwrap_or_default();
    ["ok", "refused", "stopped", "failed"]
        .iter()
        .map(|result| {
            let label = format!("result=\"{result}\"");
            let sum = text
                .lines()
                .filter(|l| {
                    l.starts_with("relay_pings_total")
                        && l.contains("kind=\"ack\"")
                        && l.contains(&label)
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            ((*result).to_owned(), sum)
        })
        .collect()
}

/// Waits (30 s at most) until an acknowledgement's result shows in the relay's metrics.
async fn acknowledged(
    http: &reqwest::Client,
    relay: &str,
    before: Vec<(String, f64)>,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = ack_counts(http, relay).await;
        for ((result, was), (_, is)) in before.iter().zip(&now) {
            if is > was {
                return if result == "ok" {
                    Ok(())
                } else {
                    Err(format!("the acknowledging ping {result}"))
                };
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err("no acknowledgement within 30 s (another relay node may have taken it: run the check against each node)".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
