//! Traces over OTLP/HTTP (`--otlp-endpoint`): the spans of a push (its receipt, durable
//! write, fan-out and acknowledgement to GMS), of a registration and of a restoration,
//! POSTed in batches as protobuf to `<endpoint>/v1/traces`.
//!
//! Written here rather than taken from `tracing-opentelemetry` and the OpenTelemetry SDK:
//! a `tracing` layer is one per process, while the tests run several relays in one process,
//! each with its own collector or none; and the SDK with `opentelemetry-otlp` would bring a
//! large tree (and `tonic`) into a relay that makes a handful of span kinds. So each relay
//! makes its spans through its own `Tracer`, and `proto` writes out the few OTLP messages
//! for `prost`'s derive (no `protoc`, no SDK); the system tests decode what is sent with
//! opentelemetry-proto's generated types, which holds one to the other.
//!
//! Off (no endpoint), a `Tracer` holds nothing: every span is a no-op, nothing is hashed
//! and no task runs. On, a span that ends is offered to a bounded queue of `--otlp-queue`
//! spans (2048 by default). Overflow policy: a span that finds the queue full is dropped
//! and counted (`relay_trace_spans_dropped_total{reason="queue_full"}`), never waited for,
//! so a slow or absent collector costs spans, not pushes. One exporter task sends batches
//! of up to `BATCH` spans, within `LINGER` of the first; a batch the collector refuses or
//! does not answer within `EXPORT_TIMEOUT` is dropped and counted, not retried (a trace is
//! worth less than the relay's requests). It stops with the store writer, the last of the
//! relay's tasks, so the acknowledgements drained at shutdown are exported too, and
//! flushes what it can within `FLUSH`.
//!
//! No secret is ever an attribute: a chat is named by `chat_hash` of its id, and attribute
//! values are static words and numbers (and a Chat Server's alias), never text from a
//! request, so no token, key or user hash can become one.

mod proto;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;

/// The most spans in one request.
const BATCH: usize = 512;
/// How long the exporter waits for more spans after the first of a batch.
const LINGER: Duration = Duration::from_secs(1);
/// How long the collector has to answer one request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the exporter may go on once the relay stops.
const FLUSH: Duration = Duration::from_secs(3);
/// The resource's `service.name`.
const SERVICE_NAME: &str = "gms-relay";

/// What a span is to its trace (OTLP's `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Work inside the relay.
    Internal = 1,
    /// A request the relay answers.
    Server = 2,
    /// A request the relay makes (to GMS).
    Client = 3,
    /// A message the relay hands on (to the other relays).
    Producer = 4,
}

/// Makes this relay's spans. Cheap to clone; the default is off.
#[derive(Clone, Default)]
pub(crate) struct Tracer(Option<Arc<Queue>>);

/// Where ended spans wait for the exporter.
struct Queue(mpsc::Sender<proto::Span>);

impl Tracer {
    /// The relay's tracer: off without `--otlp-endpoint`; on, with its exporter's task,
    /// which runs until `stop` and then flushes.
    pub(crate) fn start(
        config: &Config,
        stop: CancellationToken,
    ) -> anyhow::Result<(Tracer, Option<JoinHandle<()>>)> {
        let Some(endpoint) = &config.otlp_endpoint else { return Ok((Tracer::default(), None)) };
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let version = env!("CARGO_PKG_VERSION");
        let text = |value: &str| proto::Value::String(value.to_owned());
        let exporter = Exporter {
            client,
            url: format!("{endpoint}/v1/traces"),
            resource: proto::Resource {
                attributes: vec![
                    proto::KeyValue::new("service.name", text(SERVICE_NAME)),
                    proto::KeyValue::new("service.instance.id", text(config.node())),
                    proto::KeyValue::new("service.version", text(version)),
                ],
            },
            scope: proto::InstrumentationScope {
                name: "relay".to_owned(),
                version: version.into(),
            },
        };
        for reason in ["queue_full", "export_failed", "shutdown"] {
            metrics::counter!("relay_trace_spans_dropped_total", "reason" => reason).increment(0);
        }
        metrics::counter!("relay_trace_spans_exported_total").increment(0);
        let (queue, spans) = mpsc::channel(config.otlp_queue.max(1));
        tracing::info!(queue = config.otlp_queue.max(1), "exporting traces over OTLP/HTTP");
        let task = tokio::spawn(export(exporter, spans, stop));
        Ok((Tracer(Some(Arc::new(Queue(queue)))), Some(task)))
    }

    /// The first span of a new trace.
    pub(crate) fn span(&self, name: &'static str, kind: Kind) -> Span {
        Span(self.0.as_ref().map(|queue| Live::new(queue.clone(), new_id(), None, name, kind)))
    }
}

/// A span under way: it ends when dropped, and is then offered for export. Off, it is
/// nothing and every method does nothing.
#[derive(Default)]
pub(crate) struct Span(Option<Box<Live>>);

struct Live {
    queue: Arc<Queue>,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    kind: Kind,
    /// Wall-clock start, for the collector; the duration is measured on the monotonic
    /// clock, so a clock step cannot make a span end before it starts.
    start_unix_nanos: u64,
    started: Instant,
    attributes: Vec<proto::KeyValue>,
    error: Option<&'static str>,
}

/// A span attribute's value: a static word, a number or a flag, so that nothing taken
/// from a request (a token, a name someone typed) can become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    /// A word the relay itself says (a result label).
    Word(&'static str),
    /// A count.
    Int(i64),
    /// A flag.
    Flag(bool),
}

impl From<&'static str> for Attr {
    fn from(word: &'static str) -> Attr {
        Attr::Word(word)
    }
}

impl From<bool> for Attr {
    fn from(flag: bool) -> Attr {
        Attr::Flag(flag)
    }
}

impl From<u32> for Attr {
    fn from(count: u32) -> Attr {
        Attr::Int(i64::from(count))
    }
}

impl From<usize> for Attr {
    fn from(count: usize) -> Attr {
        Attr::Int(i64::try_from(count).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Attr {
    fn from(count: u64) -> Attr {
        Attr::Int(i64::try_from(count).unwrap_or(i64::MAX))
    }
}

impl Span {
    /// A span inside this one, in its trace.
    pub(crate) fn child(&self, name: &'static str, kind: Kind) -> Span {
        Span(self.0.as_ref().map(|parent| {
            Live::new(parent.queue.clone(), parent.trace_id, Some(parent.span_id), name, kind)
        }))
    }

    /// Whether the span will be exported (tracing is on).
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Names the span's chat, by `chat_hash` of its id.
    pub(crate) fn chat(&mut self, chat_id: &str) {
        if let Some(live) = &mut self.0 {
            let hash = proto::Value::String(chat_hash(chat_id));
            live.attributes.push(proto::KeyValue::new("chat.id_hash", hash));
        }
    }

    /// Names the Chat Server the span is about by its alias (an application DBID, which
    /// the logs show too).
    pub(crate) fn chat_server(&mut self, alias: &str) {
        if let Some(live) = &mut self.0 {
            let alias = proto::Value::String(alias.to_owned());
            live.attributes.push(proto::KeyValue::new("chat_server.alias", alias));
        }
    }

    /// Sets an attribute.
    pub(crate) fn attr(&mut self, key: &'static str, value: impl Into<Attr>) {
        if let Some(live) = &mut self.0 {
            let value = match value.into() {
                Attr::Word(word) => proto::Value::String(word.to_owned()),
                Attr::Int(count) => proto::Value::Int(count),
                Attr::Flag(flag) => proto::Value::Bool(flag),
            };
            live.attributes.push(proto::KeyValue::new(key, value));
        }
    }

    /// Marks the span failed, with the reason's code (a static word, as `relay_refused_total`
    /// labels).
    pub(crate) fn fail(&mut self, reason: &'static str) {
        if let Some(live) = &mut self.0 {
            live.error = Some(reason);
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(live) => write!(f, "Span({})", live.name),
            None => f.write_str("Span(off)"),
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(live) = self.0.take() {
            (*live).end();
        }
    }
}

impl Live {
    fn new(
        queue: Arc<Queue>,
        trace_id: [u8; 16],
        parent: Option<[u8; 8]>,
        name: &'static str,
        kind: Kind,
    ) -> Box<Live> {
        Box::new(Live {
            queue,
            trace_id,
            span_id: new_id(),
            parent,
            name,
            kind,
            start_unix_nanos: unix_nanos(),
            started: Instant::now(),
            attributes: Vec::new(),
            error: None,
        })
    }

    /// Ends the span: it is offered to the queue, and dropped (and counted) when full.
    fn end(self) {
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let start = self.start_unix_nanos;
        let Live { queue, trace_id, span_id, parent, name, kind, attributes, error, .. } = self;
        let span = proto::Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: parent.map(|id| id.to_vec()).unwrap_or_default(),
            name: name.to_owned(),
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start.saturating_add(elapsed),
            attributes,
            status: error.map(|reason| proto::Status {
                message: reason.to_owned(),
                code: proto::STATUS_ERROR,
            }),
        };
        if let Err(refused) = queue.0.try_send(span) {
            let reason = match refused {
                mpsc::error::TrySendError::Full(_) => "queue_full",
                // The exporter has stopped: the relay is shutting down.
                mpsc::error::TrySendError::Closed(_) => "shutdown",
            };
            dropped(reason, 1);
        }
    }
}

/// How a chat is named in a trace: the first 16 hex digits (64 bits) of the SHA-256 of its
/// id. Enough to tell a relay's chats apart and for an operator who knows a chat id to find
/// its traces (`printf %s "$CHAT_ID" | sha256sum | cut -c1-16`), while the id itself, which
/// names the chat in GMS's API, never reaches the collector.
pub(crate) fn chat_hash(chat_id: &str) -> String {
    let digest = Sha256::digest(chat_id.as_bytes());
    digest[..8].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A random id, never all zeros (OTLP's "no id").
fn new_id<const N: usize>() -> [u8; N] {
    let mut id: [u8; N] = rand::random();
    if id.iter().all(|&byte| byte == 0)
        && let Some(last) = id.last_mut()
    {
        *last = 1;
    }
    id
}

fn unix_nanos() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

fn dropped(reason: &'static str, spans: usize) {
    metrics::counter!("relay_trace_spans_dropped_total", "reason" => reason)
        .increment(spans as u64);
}

/// Why a batch was not exported.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    /// No answer (refused, reset, timed out).
    #[error("the collector could not be reached: {0}")]
    Unreachable(reqwest::Error),
    /// An answer other than a success.
    #[error("the collector answered {0}")]
    Refused(reqwest::StatusCode),
}

/// Sends batches to the collector.
struct Exporter {
    client: reqwest::Client,
    url: String,
    resource: proto::Resource,
    scope: proto::InstrumentationScope,
}

impl Exporter {
    async fn send(&self, spans: Vec<proto::Span>) -> Result<(), ExportError> {
        let request = proto::ExportTraceServiceRequest {
            resource_spans: vec![proto::ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![proto::ScopeSpans { scope: Some(self.scope.clone()), spans }],
            }],
        };
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            // The endpoint is the operator's own setting: no need to repeat it every time.
            .map_err(|e| ExportError::Unreachable(e.without_url()))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(ExportError::Refused(status)) }
    }
}

/// The exporter's task: a batch at a time until `stop`, then what is queued, until
/// `FLUSH` after `stop`; what is left then is dropped and counted.
async fn export(
    exporter: Exporter,
    mut spans: mpsc::Receiver<proto::Span>,
    stop: CancellationToken,
) {
    let give_up = async {
        stop.cancelled().await;
        tokio::time::sleep(FLUSH).await;
    };
    tokio::pin!(give_up);
    // Whether the last batch failed: a collector away is said once, and its return too.
    let mut failing = false;
    loop {
        let batch = gather(&mut spans, &stop).await;
        if batch.is_empty() {
            return;
        }
        let size = batch.len();
        tokio::select! {
            biased;
            sent = exporter.send(batch) => match sent {
                Ok(()) => {
                    metrics::counter!("relay_trace_spans_exported_total").increment(size as u64);
                    if std::mem::take(&mut failing) {
                        tracing::info!("the OTLP collector takes spans again");
                    }
                }
                Err(error) => {
                    dropped("export_failed", size);
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, "spans not exported; dropping them until the OTLP collector takes them");
                    }
                }
            },
            () = &mut give_up => {
                spans.close();
                let mut left = size;
                while spans.try_recv().is_ok() {
                    left += 1;
                }
                dropped("shutdown", left);
                tracing::warn!(spans = left, ?FLUSH, "spans not exported before the shutdown allowance ran out");
                return;
            }
        }
    }
}

/// The next batch: the first span, then what comes within `LINGER`, up to `BATCH`. Once
/// `stop` is cancelled, only what is queued already (the queue closes); empty when nothing
/// is left.
async fn gather(
    spans: &mut mpsc::Receiver<proto::Span>,
    stop: &CancellationToken,
) -> Vec<proto::Span> {
    let mut batch = Vec::new();
    if !stop.is_cancelled() {
        tokio::select! {
            biased;
            () = stop.cancelled() => {}
            first = spans.recv() => match first {
                Some(span) => batch.push(span),
                None => return batch,
            },
        }
    }
    let linger = tokio::time::sleep(LINGER);
    tokio::pin!(linger);
    while batch.len() < BATCH {
        if stop.is_cancelled() {
            spans.close();
            match spans.try_recv() {
                Ok(span) => batch.push(span),
                Err(_) => break,
            }
            continue;
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => {}
            () = &mut linger => break,
            next = spans.recv() => match next {
                Some(span) => batch.push(span),
                None => break,
            },
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_is_named_by_the_first_16_hex_digits_of_its_ids_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de ... (FIPS 180-2's example).
        assert_eq!(chat_hash("abc"), "ba7816bf8f01cfea");
        let id = "0123456789ABCDEF";
        let hash = chat_hash(id);
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(!hash.contains(id) && hash != chat_hash("0123456789ABCDEG"));
        assert_eq!(hash, chat_hash(id), "the same chat, the same name in every trace");
    }

    #[test]
    fn off_every_span_is_nothing() {
        let tracer = Tracer::default();
        let mut span = tracer.span("push", Kind::Server);
        span.chat("some-chat");
        span.attr("push.result", "accepted");
        let child = span.child("push.store", Kind::Internal);
        assert!(span.0.is_none() && child.0.is_none());
    }

    #[tokio::test]
    async fn children_share_the_trace_and_name_their_parent_and_a_full_queue_drops() {
        let (sender, mut received) = mpsc::channel(2);
        let tracer = Tracer(Some(Arc::new(Queue(sender))));
        let mut root = tracer.span("push", Kind::Server);
        root.chat("chat-1");
        let mut child = root.child("push.store", Kind::Internal);
        child.fail("store_unavailable");
        drop(child);
        let late = root.child("push.ack", Kind::Client);
        drop(root);
        // The queue holds two: the third span is dropped, and the caller does not wait.
        drop(late);
        let store = received.recv().await.expect("the child");
        let push = received.recv().await.expect("the root");
        assert!(received.try_recv().is_err(), "the third span was dropped");
        assert_eq!((store.name.as_str(), push.name.as_str()), ("push.store", "push"));
        assert_eq!(store.trace_id, push.trace_id);
        assert_eq!(store.parent_span_id, push.span_id);
        assert!(push.parent_span_id.is_empty(), "the root has no parent");
        assert_eq!(store.status.as_ref().map(|s| s.code), Some(proto::STATUS_ERROR));
        assert_eq!(push.kind, Kind::Server as i32);
        assert!(push.end_time_unix_nano >= push.start_time_unix_nano);
        let hash = proto::KeyValue::new("chat.id_hash", proto::Value::String(chat_hash("chat-1")));
        assert_eq!(push.attributes, vec![hash]);
    }
}
