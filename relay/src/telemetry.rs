//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `relay=info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("relay=info,tower_http=warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Every `result` label of `relay_pushes_total`.
const PUSH_RESULTS: [&str; 8] = [
    "accepted",
    "shutdown_advice",
    "device_only",
    "unroutable",
    "no_tokens",
    "unauthorized",
    "malformed",
    "error",
];

/// Every `result` label of `relay_web_push_total`.
pub(crate) const WEB_PUSH_RESULTS: [&str; 9] = [
    "delivered",
    "gone",
    "too_large",
    "retried",
    "refused",
    "failed",
    "dropped",
    "followed",
    "invalid",
];

/// Every `result` label of `relay_identity_total`.
const IDENTITY_RESULTS: [&str; 5] = ["verified", "refused", "unconfigured", "handed_over", "none"];

/// Every `result` label of `relay_resume_total`.
const RESUME_RESULTS: [&str; 4] = ["made", "claimed", "refused", "revoked"];

/// Counts what became of an identity (one of `IDENTITY_RESULTS`): never the identity.
pub(crate) fn count_identity(result: &'static str) {
    metrics::counter!("relay_identity_total", "result" => result).increment(1);
}

/// Counts what became of a resume link (one of `RESUME_RESULTS`): never the token.
pub(crate) fn count_resume(result: &'static str) {
    metrics::counter!("relay_resume_total", "result" => result).increment(1);
}

/// Describes every metric with its unit and registers each series the relay knows in
/// advance, so a fresh relay's `/metrics` already lists them all (at zero) with help text.
pub(crate) fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    let counters = [
        ("relay_pushes_total", "Pushes received from GMS, by result."),
        ("relay_push_repeats_total", "Pushes whose events were already known: GMS resends."),
        (
            "relay_pings_total",
            "GMS pings (acknowledgement, periodic, restore), by kind and result.",
        ),
        ("relay_gms_requests_total", "GMS Chat API requests, by operation and result."),
        ("relay_ping_queue_drops_total", "Ping requests dropped because the ping queue was full."),
        (
            "relay_chat_server_events_total",
            "Chat Server restarts and losses seen by the health watch.",
        ),
        (
            "relay_health_polls_total",
            "Chat Server health polls, by alias and result: ok, unreachable (no answer or an \
             error status: counts towards --health-failures), unreadable (a success without \
             the DBID and pid: restarts of that server go unseen).",
        ),
        ("relay_restore_chats_total", "Chats whose restoration was started."),
        ("relay_restored_total", "Chats restored on a working Chat Server."),
        ("relay_restore_failed_total", "Chats still not restored at the restoration deadline."),
        ("relay_store_commits_total", "Commits of the session store (each may hold many changes)."),
        (
            "relay_store_failures_total",
            "Failed commits of the session store, and failed checkpoints of the embedded one.",
        ),
        ("relay_rate_limited_total", "Requests refused by a per-address limit, by endpoint."),
        (
            "relay_refused_total",
            "HTTP requests refused, by reason (the error body's code: bad_secret, \
             bad_request, bad_token, rate_limited, rejected_by_gms, not_found…).",
        ),
        ("relay_ws_frames_queued_total", "Frames queued for WebSocket connections."),
        ("relay_ws_frames_sent_total", "Frames written to WebSocket connections."),
        ("relay_ws_ignored_frames_total", "Unknown or malformed frames received from browsers."),
        ("relay_ws_queue_drops_total", "Frames not queued because a connection's queue was full."),
        (
            "relay_ws_rejected_total",
            "WebSocket connections refused or closed, and subscriptions refused, by reason.",
        ),
        ("relay_ws_slow_consumers_total", "Connections closed for falling behind or not reading."),
        (
            "relay_ws_write_timeouts_total",
            "Connections dropped because a write did not finish in time.",
        ),
        ("relay_redis_errors_total", "Redis commands that failed (several relays on Redis)."),
        (
            "relay_cross_node_frames_total",
            "Frames published to, or received from, other relays through Redis, by direction.",
        ),
        (
            "relay_store_conflicts_total",
            "Record writes that found another relay's change first and were merged again.",
        ),
        (
            "relay_push_missed_total",
            "Pings that found events no push announced, in chats registered long enough \
             before (--push-missed-after): Chat Server is not pushing for them.",
        ),
        (
            "relay_unannounced_events_total",
            "Pings that found events no push had announced (lost pushes): told with `changed`.",
        ),
        (
            "relay_acks_deferred_total",
            "Acknowledgements left to the relay already acknowledging the chat.",
        ),
        (
            "relay_survey_webhook_total",
            "Ratings for the survey webhook, by result: delivered, retried (an attempt failed), \
             failed (attempts used up), refused (queue full).",
        ),
        (
            "relay_web_push_total",
            "Web Push notifications, by result: delivered, gone (subscription removed), \
             too_large (sent again without preview), retried, refused, failed (attempts used \
             up), dropped (queue full), followed (a browser was connected: none sent), \
             invalid (the stored subscription could not be used).",
        ),
        (
            "relay_identity_total",
            "Verified identities, by result: verified, refused (a hash that did not verify) or \
             unconfigured (no --identity-secret) for a registration naming one; handed_over \
             (a running chat given to another device) or none (the identity has no running \
             chat) for a look-up, which counts refused and unconfigured too.",
        ),
        (
            "relay_resume_total",
            "Resume links, by result: made (a link, or a notification's page), claimed (a chat \
             handed over), refused (a claim of an unknown, forged, revoked or ended one), \
             revoked (every link of a chat).",
        ),
        (
            "relay_trace_spans_exported_total",
            "Spans the OTLP collector accepted (--otlp-endpoint).",
        ),
        (
            "relay_trace_spans_dropped_total",
            "Spans not exported, by reason: queue_full (--otlp-queue spans were waiting), \
             export_failed (the collector refused the batch or did not answer), shutdown \
             (left when the relay stopped).",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    // Series whose labels are known in advance start at zero; the others appear when used.
    let labelled = [
        ("relay_pushes_total", "result", &PUSH_RESULTS[..]),
        (
            "relay_rate_limited_total",
            "endpoint",
            &["register", "register_global", "identity", "resume", "survey", "ws", "ws_open"][..],
        ),
        (
            "relay_ws_rejected_total",
            "reason",
            &["origin", "too_many_frames", "too_many_subscriptions", "store_unavailable"][..],
        ),
        ("relay_web_push_total", "result", &WEB_PUSH_RESULTS[..]),
        (
            "relay_survey_webhook_total",
            "result",
            &["delivered", "retried", "failed", "refused"][..],
        ),
        ("relay_identity_total", "result", &IDENTITY_RESULTS[..]),
        ("relay_resume_total", "result", &RESUME_RESULTS[..]),
    ];
    for (name, key, values) in labelled {
        for value in values {
            metrics::counter!(name, key => *value).increment(0);
        }
    }
    for name in [
        "relay_push_repeats_total",
        "relay_push_missed_total",
        "relay_ping_queue_drops_total",
        "relay_restore_chats_total",
        "relay_restored_total",
        "relay_restore_failed_total",
        "relay_store_commits_total",
        "relay_store_failures_total",
        "relay_ws_frames_queued_total",
        "relay_ws_frames_sent_total",
        "relay_ws_ignored_frames_total",
        "relay_ws_queue_drops_total",
        "relay_ws_slow_consumers_total",
        "relay_ws_write_timeouts_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    describe_gauge!("relay_ws_connections", Unit::Count, "Open WebSocket connections.");
    describe_gauge!(
        "relay_ewt_seconds",
        Unit::Seconds,
        "GMS's last estimated wait for each chat service's queue (--ewt-queue)."
    );
    metrics::gauge!("relay_ws_connections").increment(0.0);
    describe_gauge!(
        "relay_restorations_running",
        Unit::Count,
        "Chat Server restorations under way on this node."
    );
    metrics::gauge!("relay_restorations_running").increment(0.0);
    describe_gauge!(
        "relay_watcher_lease_held",
        Unit::Count,
        "1 while this relay holds the Chat Server watcher's lease (several relays on Redis)."
    );
    describe_gauge!(
        "relay_ping_round_lag_seconds",
        Unit::Seconds,
        "How much longer than --ping-interval the last round of periodic pings took."
    );
    let histograms: &[(&'static str, &'static str)] = &[
        ("relay_ack_latency_seconds", "From a push's arrival to its acknowledging ping's answer."),
        ("relay_gms_request_seconds", "Duration of one GMS Chat API request."),
        ("relay_push_to_frame_seconds", "From a push's arrival to its frame being queued."),
        ("relay_restore_duration_seconds", "From a Chat Server event to its chats restored."),
        (
            "relay_store_commit_seconds",
            "Duration of one session store commit (the embedded store: its journal's write).",
        ),
        (
            "relay_store_checkpoint_seconds",
            "Duration of one checkpoint of the embedded store's journal into its redb file.",
        ),
        ("relay_redis_command_seconds", "Duration of one Redis command (or pipeline)."),
        ("relay_web_push_seconds", "Duration of one request to a Web Push service."),
    ];
    for (name, help) in histograms {
        describe_histogram!(*name, Unit::Seconds, *help);
    }
}
