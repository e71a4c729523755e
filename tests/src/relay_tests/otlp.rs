//! Traces over OTLP/HTTP (`--otlp-endpoint`): each test runs an OTLP receiver of its own
//! (axum on port 0, `POST /v1/traces`, bodies decoded with opentelemetry-proto's generated
//! types, not the relay's hand-written ones) and drives a real chat through gms-sim. A push
//! is one trace from its receipt through the durable write, the fan-out (this relay's
//! browsers and, with Redis, the other relays) and the acknowledgement to GMS; a
//! registration and a restoration are traces too; every span names its chat by the hash of
//! its id and its relay by `service.instance.id`, and no body ever carries a chat id, a
//! token or a secret. A collector that refuses, hangs or is absent costs spans (counted),
//! never pushes; without the flag nothing is sent.
//!
//! The relays whose metrics a test reads run as processes of their own: the metrics
//! recorder is one per process, shared by every relay started in this one.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message as _;
use serde_json::json;
use shared::gms::Credentials;
use shared::relay_api::{RegisterSession, ServerFrame};
use tokio::sync::mpsc;

use super::{Setup, metric};
use crate::gms_client::{GmsClient, SimAdmin};
use crate::harness::{Options, RedisServer, RelayProcess, free_port, relay_binary, scratch_dir};
use crate::support::{RelayArgs, SERVICE, TEST_PUSH_SECRET, Wait, push_url, register, until};
use crate::ws_client::WsClient;

/// How long a test waits for spans: the relay sends a batch within a second of its first
/// span, and a push's acknowledgement takes a GMS round trip.
const WITHIN: Duration = Duration::from_secs(15);

/// What the collector answers.
const ANSWER_OK: u16 = 200;
/// Not a status: the collector takes the request and never answers.
const HANG: u16 = 0;

/// One request the collector took: its content type, its raw body (searched for secrets)
/// and what it decoded to.
struct Export {
    content_type: String,
    body: Vec<u8>,
    decoded: Result<ExportTraceServiceRequest, String>,
}

/// A span as received, with its resource's attributes (which name the relay).
#[derive(Debug, Clone)]
struct Received {
    resource: Vec<KeyValue>,
    span: Span,
}

/// An OTLP/HTTP receiver: `POST /v1/traces`, protobuf bodies, answered as told.
struct Collector {
    /// Its base URL, for `--otlp-endpoint`.
    url: String,
    answer: Arc<AtomicU16>,
    exports: mpsc::Receiver<Export>,
    /// Every span received so far, in order.
    spans: Vec<Received>,
    /// Every body received so far.
    bodies: Vec<Vec<u8>>,
}

impl Collector {
    async fn start(answer: u16) -> Result<Collector> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let answer = Arc::new(AtomicU16::new(answer));
        // Bounded: a test that stops reading holds the relay's exporter back, which the
        // relay must survive anyway.
        let (sender, exports) = mpsc::channel(1024);
        let status = answer.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (sender, status) = (sender.clone(), status.clone());
                async move {
                    let content_type = headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let decoded =
                        ExportTraceServiceRequest::decode(body.as_ref()).map_err(|e| e.to_string());
                    let export = Export { content_type, body: body.to_vec(), decoded };
                    let _ = sender.send(export).await;
                    match status.load(Ordering::SeqCst) {
                        HANG => std::future::pending().await,
                        code => StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Collector { url, answer, exports, spans: Vec::new(), bodies: Vec::new() })
    }

    /// Takes the next request, waiting until `deadline`; false if none came.
    async fn take(&mut self, deadline: tokio::time::Instant) -> Result<bool> {
        let Ok(export) = tokio::time::timeout_at(deadline, self.exports.recv()).await else {
            return Ok(false);
        };
        let export = export.context("the collector stopped")?;
        ensure!(
            export.content_type == "application/x-protobuf",
            "an export of content type {:?}",
            export.content_type
        );
        let request =
            export.decoded.map_err(anyhow::Error::msg).context("an undecodable export")?;
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    self.spans.push(Received { resource: resource.clone(), span });
                }
            }
        }
        self.bodies.push(export.body);
        Ok(true)
    }

    /// Receives until `done` holds for every span received so far; fails after `within`,
    /// naming the spans it had.
    async fn until<T>(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&[Received]) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = done(&self.spans) {
                return Ok(found);
            }
            if !self.take(deadline).await? {
                let names: Vec<&str> = self.spans.iter().map(|r| r.span.name.as_str()).collect();
                bail!("{what}: not within {within:?}; spans received: {names:?}");
            }
        }
    }

    /// Takes every request that has come already.
    async fn drain(&mut self) -> Result<()> {
        while self.take(tokio::time::Instant::now()).await? {}
        Ok(())
    }

    /// Asserts that no request comes within `quiet` (what must not happen, given the time
    /// to happen).
    async fn nothing_within(&mut self, quiet: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + quiet;
        ensure!(!self.take(deadline).await?, "spans arrived: {} of them", self.spans.len());
        Ok(())
    }

    /// Asserts that no body received holds any of `secrets`.
    fn holds_none_of(&self, secrets: &[&str]) {
        for body in &self.bodies {
            for secret in secrets {
                let found = body.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "an export carries the secret {secret:?}");
            }
        }
    }
}

/// `chat.id_hash` as an operator computes it: the first 16 hex digits of SHA-256 of the
/// chat id (with OpenSSL, not the relay's code).
fn chat_hash(chat_id: &str) -> String {
    let digest = openssl::sha::sha256(chat_id.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        AnyValue::StringValue(text) => Some(text),
        _ => None,
    }
}

fn flag(attributes: &[KeyValue], key: &str) -> Option<bool> {
    match attr(attributes, key)? {
        AnyValue::BoolValue(flag) => Some(*flag),
        _ => None,
    }
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)? {
        AnyValue::IntValue(count) => Some(*count),
        _ => None,
    }
}

/// The one span named `name` whose parent is `parent`, in its trace.
fn child<'a>(spans: &'a [Received], parent: &Span, name: &str) -> Option<&'a Received> {
    let mut found = spans.iter().filter(|r| {
        r.span.name == name
            && r.span.parent_span_id == parent.span_id
            && r.span.trace_id == parent.trace_id
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Every span named `name` whose parent is `parent`, in its trace.
fn children<'a>(spans: &'a [Received], parent: &Span, name: &str) -> Vec<&'a Received> {
    spans
        .iter()
        .filter(|r| {
            r.span.name == name
                && r.span.parent_span_id == parent.span_id
                && r.span.trace_id == parent.trace_id
        })
        .collect()
}

fn kind(span: &Span) -> SpanKind {
    SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified)
}

/// A root span: a trace id and a span id of their own, no parent.
fn is_root(span: &Span) -> bool {
    span.parent_span_id.is_empty()
        && span.trace_id.len() == 16
        && span.span_id.len() == 8
        && span.trace_id.iter().any(|&b| b != 0)
}

/// A push's trace, once every part of it has arrived.
struct PushTrace<'a> {
    push: &'a Received,
    store: &'a Received,
    fanout: &'a Received,
    local: &'a Received,
    relays: Option<&'a Received>,
    ack: &'a Received,
}

/// The complete traces of the accepted pushes of the chat hashed `hash`.
fn push_traces<'a>(spans: &'a [Received], hash: &str) -> Vec<PushTrace<'a>> {
    spans
        .iter()
        .filter(|r| {
            r.span.name == "push"
                && text(&r.span.attributes, "chat.id_hash") == Some(hash)
                && text(&r.span.attributes, "push.result") == Some("accepted")
        })
        .filter_map(|push| {
            let fanout = child(spans, &push.span, "push.fanout")?;
            Some(PushTrace {
                push,
                store: child(spans, &push.span, "push.store")?,
                local: child(spans, &fanout.span, "fanout.local")?,
                relays: child(spans, &fanout.span, "fanout.relays"),
                fanout,
                ack: child(spans, &push.span, "push.ack")?,
            })
        })
        .collect()
}

/// A registration's trace, once every part of it has arrived.
struct RegisterTrace<'a> {
    register: &'a Received,
    validate: &'a Received,
    store: &'a Received,
}

fn register_trace<'a>(spans: &'a [Received], hash: &str) -> Option<RegisterTrace<'a>> {
    let register = spans.iter().find(|r| {
        r.span.name == "register" && text(&r.span.attributes, "chat.id_hash") == Some(hash)
    })?;
    Some(RegisterTrace {
        register,
        validate: child(spans, &register.span, "register.validate")?,
        store: child(spans, &register.span, "register.store")?,
    })
}

/// Checks a push's trace: one trace, each part a child of the push (the fan-out's two of
/// the fan-out), of the kind its work is, and the push accepted and acknowledged.
fn check_push(trace: &PushTrace<'_>, with_redis: bool) {
    let push = &trace.push.span;
    assert!(is_root(push), "the push starts its trace: {push:?}");
    assert_eq!(kind(push), SpanKind::Server, "the push is a request the relay answers");
    for part in [trace.store, trace.fanout, trace.local, trace.ack] {
        assert_eq!(part.span.trace_id, push.trace_id, "{} in the push's trace", part.span.name);
        assert_eq!(part.span.span_id.len(), 8);
        assert!(part.span.end_time_unix_nano >= part.span.start_time_unix_nano);
    }
    assert_eq!(trace.store.span.parent_span_id, push.span_id);
    assert_eq!(trace.fanout.span.parent_span_id, push.span_id);
    assert_eq!(trace.ack.span.parent_span_id, push.span_id);
    assert_eq!(trace.local.span.parent_span_id, trace.fanout.span.span_id);
    assert_eq!(kind(&trace.store.span), SpanKind::Internal);
    assert_eq!(kind(&trace.fanout.span), SpanKind::Internal);
    assert_eq!(kind(&trace.local.span), SpanKind::Internal);
    assert_eq!(kind(&trace.ack.span), SpanKind::Client, "the acknowledgement is a GMS request");
    assert_eq!(text(&trace.ack.span.attributes, "ack.outcome"), Some("ok"));
    assert!(int(&push.attributes, "push.events").is_some_and(|n| n >= 1));
    // The durable write comes before the fan-out, and the answer after both (within a
    // millisecond: a span's start is the wall clock, its length the monotonic one).
    let slack = 1_000_000;
    assert!(trace.store.span.end_time_unix_nano <= trace.fanout.span.start_time_unix_nano + slack);
    assert!(trace.fanout.span.end_time_unix_nano <= push.end_time_unix_nano + slack);
    let failed =
        |span: &Span| span.status.as_ref().is_some_and(|s| s.code == SpanStatus::Error as i32);
    for part in [trace.push, trace.store, trace.fanout, trace.local, trace.ack] {
        assert!(!failed(&part.span), "{} failed: {:?}", part.span.name, part.span.status);
    }
    match (with_redis, trace.relays) {
        (true, Some(relays)) => {
            assert_eq!(relays.span.trace_id, push.trace_id);
            assert_eq!(relays.span.parent_span_id, trace.fanout.span.span_id);
            assert_eq!(kind(&relays.span), SpanKind::Producer, "a message to the other relays");
            assert!(!failed(&relays.span));
        }
        (false, None) => {}
        // The frame went to the other relays in the push's write.
        (true, None) => assert_eq!(
            flag(&trace.store.span.attributes, "store.frame_published"),
            Some(true),
            "with Redis, neither a fanout.relays span nor the frame published by the write"
        ),
        (false, Some(relays)) => panic!("a fanout.relays span without Redis: {:?}", relays.span),
    }
}

/// Checks a registration's trace.
fn check_register(trace: &RegisterTrace<'_>) {
    let register = &trace.register.span;
    assert!(is_root(register), "the registration starts its trace");
    assert_eq!(kind(register), SpanKind::Server);
    assert_eq!(text(&register.attributes, "register.result"), Some("ok"));
    for part in [trace.validate, trace.store] {
        assert_eq!(part.span.trace_id, register.trace_id);
        assert_eq!(part.span.parent_span_id, register.span_id);
    }
    assert_eq!(kind(&trace.validate.span), SpanKind::Client, "GMS is asked");
    assert_eq!(text(&trace.validate.span.attributes, "gms.result"), Some("ok"));
    assert_eq!(kind(&trace.store.span), SpanKind::Internal);
}

/// The resource of every span: the service and the relay (node) that made it.
fn check_resource(received: &Received) -> String {
    assert_eq!(text(&received.resource, "service.name"), Some("gms-relay"));
    let node = text(&received.resource, "service.instance.id").unwrap_or_default();
    assert!(!node.is_empty(), "no service.instance.id: {:?}", received.resource);
    node.to_owned()
}

/// A chat as the widget makes it: created in gms-sim, registered with the relay at
/// `register_on`, followed by a browser on each of `follow_on`; the agent joins and says
/// one line, every browser hears it, and gms-sim has every push acknowledged.
struct Chat {
    credentials: Credentials,
    token: String,
}

async fn converse(
    gms: &GmsClient,
    admin: &SimAdmin,
    http: &reqwest::Client,
    register_on: &str,
    follow_on: &[&str],
) -> Result<Chat> {
    let device = format!("dev-otlp-{}", rand::random::<u32>());
    let (credentials, _) =
        gms.create("Jane", crate::support::push_user_data(&device, true)).await?;
    let chat_id = credentials.chat_id.clone();
    let body = RegisterSession::new(SERVICE, &credentials, None);
    let registered = register(http, register_on, &body).await?;
    let mut sockets = Vec::new();
    for url in follow_on {
        let mut ws = WsClient::connect(url).await?;
        let answer = ws.subscribe(&chat_id, &registered.token).await?;
        ensure!(matches!(answer, ServerFrame::Subscribed { .. }), "subscribe: {answer:?}");
        sockets.push(ws);
    }
    admin.agent_says(&chat_id, "Hello Jane").await?;
    for ws in &mut sockets {
        let mut heard = false;
        while !heard {
            if let ServerFrame::Events { messages, .. } = ws.frame(WITHIN).await? {
                heard = messages.iter().any(|e| e.text.as_deref() == Some("Hello Jane"));
            }
        }
    }
    until(&format!("every push for {chat_id} acknowledged"), WITHIN, async || {
        let chat = admin.get(&format!("/sim/chats/{chat_id}")).await?;
        Ok(Wait::done_if(chat["pendingPushes"] == 0, chat))
    })
    .await?;
    for ws in sockets {
        ws.close().await?;
    }
    Ok(Chat { credentials, token: registered.token })
}

impl Chat {
    /// What must never reach a collector.
    fn secrets(&self) -> [&str; 5] {
        let c = &self.credentials;
        [&c.chat_id, &c.secure_key, &c.user_id, &self.token, TEST_PUSH_SECRET]
    }
}

#[tokio::test]
async fn a_push_is_one_trace_from_receipt_through_its_write_fanout_and_acknowledgement()
-> Result<()> {
    let mut collector = Collector::start(ANSWER_OK).await?;
    let node = "relay-otlp-1";
    let setup = Setup::start(Options::sim(&[]).relay(&[
        "--otlp-endpoint",
        &collector.url,
        "--node-id",
        node,
    ]))
    .await?;
    let url = setup.system.relay_url.clone();
    let chat = converse(&setup.gms, &setup.admin, &setup.http, &url, &[&url]).await?;
    let hash = chat_hash(&chat.credentials.chat_id);

    // The agent's join and line: two pushes the browser heard, each a complete trace.
    collector
        .until("the registration's and two heard pushes' traces", WITHIN, |spans| {
            let heard = push_traces(spans, &hash)
                .iter()
                .filter(|t| int(&t.local.span.attributes, "fanout.connections") == Some(1))
                .count();
            (heard >= 2 && register_trace(spans, &hash).is_some()).then_some(())
        })
        .await?;
    let spans = &collector.spans;
    let pushes = push_traces(spans, &hash);
    for trace in &pushes {
        check_push(trace, false);
    }
    let traces: BTreeSet<&Vec<u8>> = pushes.iter().map(|t| &t.push.span.trace_id).collect();
    assert_eq!(traces.len(), pushes.len(), "a trace per push");
    let registration = register_trace(spans, &hash).context("the registration")?;
    check_register(&registration);
    assert!(
        !pushes.iter().any(|t| t.push.span.trace_id == registration.register.span.trace_id),
        "the registration is a trace of its own"
    );
    // Each span names the relay; a push's chat is named by its hash alone.
    for received in spans {
        assert_eq!(check_resource(received), node);
    }
    assert_eq!(text(&pushes[0].push.resource, "service.version"), Some(env!("CARGO_PKG_VERSION")));
    for received in spans.iter().filter(|r| r.span.name == "push" || r.span.name == "register") {
        let named = text(&received.span.attributes, "chat.id_hash");
        assert!(named.is_some_and(|h| h.len() == 16), "{:?}", received.span);
    }
    collector.holds_none_of(&chat.secrets());
    setup.system.stop().await
}

#[tokio::test]
async fn with_redis_a_pushs_trace_holds_its_publish_to_the_other_relays() -> Result<()> {
    let redis = RedisServer::start().await?;
    let mut collector = Collector::start(ANSWER_OK).await?;
    let setup = Setup::start(Options::sim(&[]).relay(&[
        "--redis-url",
        &redis.url(),
        "--ping-interval",
        "3600",
        "--otlp-endpoint",
        &collector.url,
    ]))
    .await?;
    // gms-sim pushes to the first relay; the chat is registered on the second, and a
    // browser follows it on each.
    let other = setup.system.add_relay().await?;
    let first = setup.system.relay_url.clone();
    let chat =
        converse(&setup.gms, &setup.admin, &setup.http, &other.url, &[&first, &other.url]).await?;
    let hash = chat_hash(&chat.credentials.chat_id);
    collector
        .until("two pushes' traces with their publish to the other relays", WITHIN, |spans| {
            // gms-sim's pushes bring new lines, so their writes publish their frames.
            let published = push_traces(spans, &hash)
                .iter()
                .filter(|t| flag(&t.store.span.attributes, "store.frame_published") == Some(true))
                .filter(|t| int(&t.local.span.attributes, "fanout.connections") == Some(1))
                .count();
            (published >= 2 && register_trace(spans, &hash).is_some()).then_some(())
        })
        .await?;
    let spans = &collector.spans;
    let pushes = push_traces(spans, &hash);
    for trace in &pushes {
        check_push(trace, true);
    }
    // Two relays, two names: the registration came from the second, the pushes to the first.
    let registration = register_trace(spans, &hash).context("the registration")?;
    check_register(&registration);
    let registered_by = check_resource(registration.register);
    let pushed_to: BTreeSet<String> = pushes.iter().map(|t| check_resource(t.push)).collect();
    assert_eq!(pushed_to.len(), 1, "every push on the relay gms-sim pushes to: {pushed_to:?}");
    assert!(!pushed_to.contains(&registered_by), "each relay names itself: {registered_by}");
    collector.holds_none_of(&chat.secrets());
    other.stop().await?;
    setup.system.stop().await
}

#[tokio::test]
async fn a_restoration_is_one_trace_naming_each_chat_it_pinged() -> Result<()> {
    let mut collector = Collector::start(ANSWER_OK).await?;
    let mut options = Options::sim(&[]).relay(&[
        "--health-interval",
        "0.1",
        "--health-failures",
        "3",
        "--restore-rate",
        "1000",
        "--otlp-endpoint",
        &collector.url,
    ]);
    options.watch_chat_servers = true;
    let setup = Setup::start(options).await?;
    let chats = setup.registered_chats(6).await?;
    let moving: BTreeSet<String> =
        chats.iter().filter(|c| c.alias == "117").map(|c| chat_hash(&c.chat_id)).collect();
    ensure!(
        !moving.is_empty(),
        "no chat on 117: {:?}",
        chats.iter().map(|c| &c.alias).collect::<Vec<_>>()
    );
    setup.admin.ok("/sim/chat-servers/117/restart", json!({})).await?;

    let restore = collector
        .until("the restoration's trace", WITHIN, |spans| {
            spans
                .iter()
                .find(|r| {
                    r.span.name == "restore"
                        && text(&r.span.attributes, "chat_server.alias") == Some("117")
                })
                .cloned()
        })
        .await?;
    let root = &restore.span;
    assert!(is_root(root), "the restoration starts its trace");
    assert_eq!(kind(root), SpanKind::Internal);
    assert_eq!(int(&root.attributes, "restore.chats"), Some(moving.len() as i64));
    assert_eq!(int(&root.attributes, "restore.restored"), Some(moving.len() as i64));
    assert_eq!(int(&root.attributes, "restore.failed"), Some(0));
    check_resource(&restore);
    // Each round inside it, each chat pinged inside its round, named by its hash.
    let spans = &collector.spans;
    let rounds = children(spans, root, "restore.round");
    ensure!(!rounds.is_empty(), "no restore.round in the restoration's trace");
    let mut pinged = BTreeSet::new();
    for round in &rounds {
        assert_eq!(kind(&round.span), SpanKind::Internal);
        for chat in children(spans, &round.span, "restore.chat") {
            assert_eq!(kind(&chat.span), SpanKind::Client, "a ping of GMS");
            let hash = text(&chat.span.attributes, "chat.id_hash").context("an unnamed chat")?;
            if text(&chat.span.attributes, "restore.outcome") == Some("ok") {
                pinged.insert(hash.to_owned());
            }
        }
    }
    assert_eq!(pinged, moving, "each chat on 117 restored, named by its id's hash");
    for chat in &chats {
        let secrets = [&chat.chat_id, &chat.secure_key, &chat.user_id, TEST_PUSH_SECRET];
        collector.holds_none_of(&secrets);
    }
    setup.system.stop().await
}

/// gms-sim pushing to a relay process of its own (whose metrics are its own).
struct Solo {
    sim: gms_sim::Running,
    relay: RelayProcess,
    dir: PathBuf,
    gms: GmsClient,
    admin: SimAdmin,
    http: reqwest::Client,
}

impl Solo {
    async fn start(flags: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<Solo> {
        use clap::Parser as _;
        let port = free_port()?;
        let relay_url = format!("http://127.0.0.1:{port}");
        let sim_args = ["gms-sim", "--listen", "127.0.0.1:0", "--push-url", &push_url(&relay_url)];
        let sim = gms_sim::start(gms_sim::Config::try_parse_from(sim_args)?).await?;
        let dir = scratch_dir("relay-otlp")?;
        let args = RelayArgs::new(&format!("127.0.0.1:{port}"), &sim.url(), &dir).flags(flags);
        let relay = RelayProcess::start_with_env(&relay_binary()?, &args.build(), env).await?;
        let (gms, admin) = (GmsClient::new(&sim.url(), SERVICE), SimAdmin::new(&sim.url()));
        Ok(Solo { sim, relay, dir, gms, admin, http: reqwest::Client::new() })
    }

    async fn converse(&self) -> Result<Chat> {
        let url = self.relay.url.as_str();
        converse(&self.gms, &self.admin, &self.http, url, &[url]).await
    }

    async fn metrics(&self) -> Result<String> {
        let url = format!("{}/metrics", self.relay.url);
        Ok(self.http.get(url).send().await?.error_for_status()?.text().await?)
    }

    /// Waits until the relay's metrics satisfy `done`.
    async fn metrics_until(&self, what: &str, done: impl Fn(&str) -> bool) -> Result<String> {
        until(what, WITHIN, async || {
            let text = self.metrics().await?;
            let trace_lines: Vec<&str> =
                text.lines().filter(|l| l.starts_with("relay_trace_spans")).collect();
            Ok(if done(&text) { Wait::Done(text) } else { Wait::Still(trace_lines.join("; ")) })
        })
        .await
    }

    async fn stop(self) -> Result<()> {
        self.relay.kill9().await?;
        self.sim.stop().await;
        let _ = std::fs::remove_dir_all(self.dir);
        Ok(())
    }
}

/// The spans a registration and the agent's two pushes make at least: the registration and
/// its two parts, and each push with its write, fan-out, local fan-out and acknowledgement.
const CONVERSATION_SPANS: f64 = 3.0 + 2.0 * 5.0;

fn dropped(metrics: &str, reason: &str) -> f64 {
    metric(metrics, "relay_trace_spans_dropped_total", &[&format!("reason=\"{reason}\"")])
}

fn exported(metrics: &str) -> f64 {
    metric(metrics, "relay_trace_spans_exported_total", &[])
}

#[tokio::test]
async fn a_collector_that_refuses_or_is_absent_costs_spans_never_pushes() -> Result<()> {
    // Refusing: every batch reaches it (and decodes), is answered 500, and is dropped.
    let mut refusing = Collector::start(500).await?;
    let solo = Solo::start(&["--otlp-endpoint", &refusing.url], &[]).await?;
    solo.converse().await?;
    refusing
        .until("the refused spans", WITHIN, |spans| {
            (spans.len() as f64 >= CONVERSATION_SPANS).then_some(())
        })
        .await?;
    let metrics = solo
        .metrics_until("the refused spans counted", |m| {
            dropped(m, "export_failed") >= CONVERSATION_SPANS
        })
        .await?;
    assert_eq!(exported(&metrics), 0.0, "nothing counted exported");
    for name in ["relay_trace_spans_exported_total", "relay_trace_spans_dropped_total"] {
        assert!(metrics.contains(&format!("# HELP {name} ")), "{name} has no help");
        assert!(metrics.contains(&format!("# TYPE {name} counter")), "{name} is no counter");
    }
    // Counted as sent: what the collector received and refused, not more.
    refusing.drain().await?;
    let counted = dropped(&metrics, "export_failed");
    assert!(
        counted <= refusing.spans.len() as f64,
        "{counted} dropped, {} sent",
        refusing.spans.len()
    );
    assert_eq!(dropped(&metrics, "queue_full"), 0.0);
    // Once it takes them again, the next spans are exported.
    refusing.answer.store(ANSWER_OK, Ordering::SeqCst);
    let chat = solo.converse().await?;
    let hash = chat_hash(&chat.credentials.chat_id);
    refusing
        .until("the next chat's pushes traced", WITHIN, |spans| {
            (push_traces(spans, &hash).len() >= 2).then_some(())
        })
        .await?;
    solo.metrics_until("spans exported again", |m| exported(m) >= 1.0).await?;
    solo.stop().await?;

    // Absent: nothing listens there.
    let absent = format!("http://127.0.0.1:{}", free_port()?);
    let solo = Solo::start(&["--otlp-endpoint", &absent], &[]).await?;
    solo.converse().await?;
    let metrics = solo
        .metrics_until("the unsent spans counted", |m| {
            dropped(m, "export_failed") >= CONVERSATION_SPANS
        })
        .await?;
    assert_eq!(exported(&metrics), 0.0);
    // Pushes went on as ever: every one accepted and acknowledged.
    assert!(metric(&metrics, "relay_pushes_total", &["result=\"accepted\""]) >= 2.0);
    assert!(metric(&metrics, "relay_pings_total", &["kind=\"ack\"", "result=\"ok\""]) >= 1.0);
    solo.stop().await
}

#[tokio::test]
async fn a_full_queue_drops_spans_without_holding_pushes_back() -> Result<()> {
    // The collector takes the first batch and never answers: the exporter waits on it (up
    // to its timeout) while the queue of one span fills.
    let mut hanging = Collector::start(HANG).await?;
    let solo = Solo::start(&["--otlp-endpoint", &hanging.url, "--otlp-queue", "1"], &[]).await?;
    // A registration alone, whose spans make the first batch.
    let (credentials, _) =
        solo.gms.create("Jane", crate::support::push_user_data("dev-otlp-queue", true)).await?;
    let body = RegisterSession::new(SERVICE, &credentials, None);
    register(&solo.http, &solo.relay.url, &body).await?;
    hanging.until("the first batch", WITHIN, |spans| (!spans.is_empty()).then_some(())).await?;
    // Meanwhile a whole conversation: its pushes are answered and acknowledged at once,
    // and its spans beyond the one the queue holds are dropped.
    solo.converse().await?;
    let metrics = solo
        .metrics_until("the spans of a full queue counted", |m| {
            dropped(m, "queue_full") >= CONVERSATION_SPANS - 1.0
        })
        .await?;
    assert_eq!(exported(&metrics), 0.0, "the collector answered nothing");
    solo.stop().await
}

#[tokio::test]
async fn without_the_flag_nothing_is_sent_and_no_trace_counter_shown() -> Result<()> {
    let mut collector = Collector::start(ANSWER_OK).await?;
    // OpenTelemetry's own variables point at the collector: the relay does not read them.
    let endpoint = std::ffi::OsString::from(&collector.url);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_os_str()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_os_str()),
        ("OTEL_TRACES_EXPORTER", std::ffi::OsStr::new("otlp")),
    ];
    let solo = Solo::start(&[], &env).await?;
    solo.converse().await?;
    // A relay with the flag sends its first batch within a second of its first span.
    collector.nothing_within(Duration::from_secs(2)).await?;
    let metrics = solo.metrics().await?;
    let counters: Vec<&str> = metrics.lines().filter(|l| l.contains("relay_trace_spans")).collect();
    assert_eq!(counters, Vec::<&str>::new(), "no trace counters without --otlp-endpoint");
    assert!(metric(&metrics, "relay_pushes_total", &["result=\"accepted\""]) >= 2.0);
    solo.stop().await
}
