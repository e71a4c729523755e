//! The relay's configuration: every flag is also an environment variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Relay configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "relay", version, about = "GMS push relay for the async chat widget")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the ready line tells which).
    #[arg(long, env = "RELAY_LISTEN", default_value = "127.0.0.1:8091")]
    pub listen: SocketAddr,

    /// GMS base URL, e.g. `https://gms.example.com`.
    #[arg(long, env = "RELAY_GMS_URL", default_value = "http://127.0.0.1:8090")]
    pub gms_url: String,

    /// The chat service used for chats the relay learns of from a push before the widget
    /// registered them (a push does not name its service).
    #[arg(long, env = "RELAY_DEFAULT_SERVICE", default_value = "customer-support")]
    pub default_service: String,

    /// Seconds before a GMS request times out.
    #[arg(long, env = "RELAY_GMS_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub gms_timeout: Duration,

    #[command(flatten)]
    pub gms_headers: GmsHeaders,

    #[command(flatten)]
    pub proxy: ProxyConfig,

    /// Directory for the durable session store and the token key.
    #[arg(long, env = "RELAY_DATA_DIR", default_value = "relay-data")]
    pub data_dir: PathBuf,

    /// Shared secret GMS must present on `/gms/push` (`?secret=` or the HTTP Basic
    /// password), at least 16 characters. Required: the relay does not start without one
    /// (an empty value counts as none), unless `--insecure-no-push-secret`. Never logged.
    #[arg(long, env = "RELAY_PUSH_SECRET", hide_env_values = true)]
    pub push_secret: Option<String>,

    /// Accept pushes from anyone, without a secret: for a demo on a laptop only, since
    /// whoever can reach `/gms/push` could then write into any chat whose id they know. A
    /// warning is logged every minute while it is on.
    #[arg(long, env = "RELAY_INSECURE_NO_PUSH_SECRET")]
    pub insecure_no_push_secret: bool,

    /// Networks allowed to post pushes, as CIDRs (e.g. `10.0.0.0/8`); repeatable. Empty
    /// allows any address. It checks the direct peer only: behind a load balancer that is
    /// the balancer, so list GMS's addresses only where GMS connects to the relay itself.
    #[arg(long = "push-allow", env = "RELAY_PUSH_ALLOW", value_delimiter = ',', value_parser = parse_cidr)]
    pub push_allow: Vec<Cidr>,

    /// Largest push body accepted, in bytes.
    #[arg(long, env = "RELAY_PUSH_BODY_LIMIT", default_value = "65536")]
    pub push_body_limit: usize,

    /// Key of the subscription-token HMAC. Without it a random key is kept in the data
    /// directory; set it to share tokens between several relays. Never logged.
    #[arg(long, env = "RELAY_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// The secret a site's backend shares with the relay to vouch for its logged-in
    /// visitors: it sends `userHash = hex(HMAC-SHA256(secret, userId))` with the user id, and
    /// a chat registered with a hash that verifies can be taken over by the same user on
    /// another device (`POST /v1/identity`). At least 32 bytes; without it (or empty)
    /// identities are not verified. Never logged.
    #[arg(long, env = "RELAY_IDENTITY_SECRET", hide_env_values = true)]
    pub identity_secret: Option<IdentitySecret>,

    /// Each chat service's office hours, for the widget to say whether the office is open
    /// and when it opens next (`GET /v1/hours/{service}`): an INI file with a section per
    /// service holding GMS's `office-hours` options (`_bh_regular1 = Mon-Fri 9:00-17:00`,
    /// `_bh_add<n>`, `_holiday<n>`, `_effective_dates<n>`, `_timezone`), or `gms = <name>` to
    /// ask GMS's office-hours service of that name. Without it the widget says nothing of
    /// hours.
    #[arg(long, env = "RELAY_OFFICE_HOURS")]
    pub office_hours: Option<PathBuf>,

    /// The virtual queue whose estimated wait stands for a chat service, as
    /// `<service>=<virtual queue>`; repeatable. While browsers on this relay follow a chat
    /// of that service, GMS's EWT API is asked every `--ewt-every` (once per service,
    /// whatever the number of chats) and the chats' browsers get a `wait` frame, which the
    /// widget shows until an agent joins.
    #[arg(long = "ewt-queue", env = "RELAY_EWT_QUEUES", value_delimiter = ',', value_parser = parse_ewt_queue)]
    pub ewt_queues: Vec<EwtQueue>,

    /// Which GMS EWT API to ask: `v2` (`/genesys/2/ewt/ewt2?vq=…`) or `v1`
    /// (`/genesys/1/service/ewt-for-vq?name=…&aqt=urs2`).
    #[arg(long, env = "RELAY_EWT_API", default_value = "v2", value_parser = parse_ewt_api)]
    pub ewt_api: shared::ewt::EwtApi,

    /// Seconds between two EWT requests for the same service.
    #[arg(long, env = "RELAY_EWT_EVERY", default_value = "30", value_parser = seconds)]
    pub ewt_every: Duration,

    /// When GMS's estimated wait first exceeds this many minutes, a visitor who turned Web
    /// Push on and left is told so ("An agent will answer in about 12 min"), once per chat
    /// and only while no agent has joined (the relay reads the transcript first); 0: never.
    #[arg(long, env = "RELAY_EWT_NOTIFY_MINUTES", default_value = "0")]
    pub ewt_notify_minutes: u64,

    /// Where visitors' ratings of chats that ended before they rated (the agent ended
    /// them) are posted, as JSON signed with `--survey-webhook-secret` and retried with
    /// backoff. Without it, the widget offers its survey only when the visitor ends the
    /// chat (the rating then goes into the chat's GMS user data).
    #[arg(long, env = "RELAY_SURVEY_WEBHOOK")]
    pub survey_webhook: Option<String>,

    /// The HMAC-SHA256 key of the webhook's `X-Gms-Chat-Signature`; at least 16
    /// characters, required with `--survey-webhook`. Never logged.
    #[arg(long, env = "RELAY_SURVEY_WEBHOOK_SECRET", hide_env_values = true)]
    pub survey_webhook_secret: Option<IdentitySecret>,

    /// Page origins allowed to open the WebSocket and call `/v1` (CORS); repeatable.
    /// Empty allows any origin.
    #[arg(long = "allowed-origin", env = "RELAY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds between two pings of the same stored chat.
    #[arg(long, env = "RELAY_PING_INTERVAL", default_value = "1800", value_parser = seconds)]
    pub ping_interval: Duration,

    /// Most periodic pings per second, whatever the number of chats.
    #[arg(long, env = "RELAY_PING_RATE", default_value = "100")]
    pub ping_rate: u32,

    /// Seconds between two refusals of a chat's tokens (statusCode 2 without `chatEnded`)
    /// after which the relay forgets the chat; a single refusal, as during a move between
    /// Chat Servers, only makes it ask again after this long.
    #[arg(long, env = "RELAY_GMS_REFUSAL_APART", default_value = "30", value_parser = seconds)]
    pub gms_refusal_apart: Duration,

    /// Seconds after its registration from which a chat whose events reach the relay only
    /// by its pings counts as missing pushes (`relay_push_missed_total`, `/status`); before
    /// that, its push subscription may not have taken effect yet.
    #[arg(long, env = "RELAY_PUSH_MISSED_AFTER", default_value = "120", value_parser = seconds)]
    pub push_missed_after: Duration,

    /// GMS requests in flight at once: acknowledgements, pings and registrations together.
    #[arg(long, env = "RELAY_GMS_CONCURRENCY", default_value = "32")]
    pub gms_concurrency: usize,

    /// Seconds between WebSocket pings to browsers.
    #[arg(long, env = "RELAY_WS_PING", default_value = "25", value_parser = seconds)]
    pub ws_ping: Duration,

    /// Seconds without a pong before a browser connection is dropped.
    #[arg(long, env = "RELAY_WS_PONG_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub ws_pong_timeout: Duration,

    /// Frames queued per connection before it counts as a slow consumer and is closed.
    #[arg(long, env = "RELAY_WS_QUEUE", default_value = "256")]
    pub ws_queue: usize,

    /// Frames a browser may send per second (and at once) before its socket is closed with
    /// 4029: a widget sends a handful a minute (0: no limit).
    #[arg(long, env = "RELAY_WS_FRAME_RATE", default_value = "20")]
    pub ws_frame_rate: u32,

    /// Chats one socket may follow at once (a browser follows one); beyond, a subscribe is
    /// refused with `too_many_subscriptions` (0: no limit).
    #[arg(long, env = "RELAY_WS_SUBSCRIPTIONS", default_value = "16")]
    pub ws_subscriptions: usize,

    /// Seconds to wait after a Chat Server's shutdown advice before pinging the chat, so
    /// the ping reaches GMS after that server is gone and the chat is restored elsewhere.
    #[arg(long, env = "RELAY_SHUTDOWN_ADVICE_DELAY", default_value = "2", value_parser = seconds)]
    pub shutdown_advice_delay: Duration,

    /// A Chat Server to watch, as `<alias>=<health-url>`; repeatable.
    #[arg(long = "chat-server", env = "RELAY_CHAT_SERVERS", value_delimiter = ',', value_parser = parse_chat_server)]
    pub chat_servers: Vec<ChatServer>,

    /// Seconds between two polls of a Chat Server's health endpoint.
    #[arg(long, env = "RELAY_HEALTH_INTERVAL", default_value = "2", value_parser = seconds)]
    pub health_interval: Duration,

    /// Failed health polls in a row after which a Chat Server counts as gone.
    #[arg(long, env = "RELAY_HEALTH_FAILURES", default_value = "3")]
    pub health_failures: u32,

    #[command(flatten)]
    pub health_keys: HealthKeyNames,

    /// Most restoration pings per second after a Chat Server restart.
    #[arg(long, env = "RELAY_RESTORE_RATE", default_value = "200")]
    pub restore_rate: u32,

    /// Seconds a restoration keeps retrying chats GMS cannot restore yet.
    #[arg(long, env = "RELAY_RESTORE_DEADLINE", default_value = "600", value_parser = seconds)]
    pub restore_deadline: Duration,

    /// Proxies or load balancers (CIDRs) whose `X-Forwarded-For` names the client; without
    /// it, the peer address is the client. Repeatable.
    #[arg(long = "trusted-proxy", env = "RELAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<Cidr>,

    /// Registrations (`POST /v1/sessions`) per minute per client address; each costs GMS a
    /// request. 0 turns the limit off.
    #[arg(long, env = "RELAY_REGISTER_RATE", default_value = "120")]
    pub register_rate: u32,

    /// Registrations per second across every client address together, so a flood from
    /// many addresses cannot reach GMS either. A widget registers whenever it connects (each
    /// page view of a running chat), so the default is sized for 100,000 chats a day at ten
    /// page views each with a peak hour at three times the average (35 a second), plus room.
    /// 0 turns the limit off.
    #[arg(long, env = "RELAY_REGISTER_GLOBAL_RATE", default_value = "50")]
    pub register_global_rate: u32,

    /// WebSocket connections opened per minute per client address. 0 turns the limit off.
    #[arg(long, env = "RELAY_WS_CONNECT_RATE", default_value = "120")]
    pub ws_connect_rate: u32,

    /// Open WebSockets per client address (an office behind one NAT address shares it).
    /// 0 turns the limit off.
    #[arg(long, env = "RELAY_WS_PER_ADDRESS", default_value = "200")]
    pub ws_per_address: usize,

    /// Serve the built widget from this directory: `/widget.js`, the one tag sites add,
    /// and the files it loads.
    #[arg(long, env = "RELAY_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// The GMS address browsers use, given to widgets whose page names none
    /// (`data-gms-url`); without it such a widget calls GMS on the page's own origin.
    #[arg(long, env = "RELAY_WIDGET_GMS_URL")]
    pub widget_gms_url: Option<String>,

    /// Serve the build's example page at `/` (with `--static-dir`): for the demo and tests.
    /// Off, `/` and `/index.html` answer 404, so a production relay shows no test page.
    #[arg(long, env = "RELAY_DEMO_PAGE")]
    pub demo_page: bool,

    /// Serve `/metrics` and `/status` on this address only (e.g. `127.0.0.1:9091`), not on
    /// the public listener; `/healthz` and `/readyz` answer on both.
    #[arg(long, env = "RELAY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Keep the chats and the token key in Redis, so several relays share them:
    /// `redis://[:password@]host:port/db`, `rediss://` for TLS. Without it the embedded
    /// store in the data directory is used (one relay). Never logged.
    #[arg(long, env = "RELAY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<RedisUrl>,

    /// Prefix of every Redis key and channel (several deployments may share a server).
    #[arg(long, env = "RELAY_REDIS_PREFIX", default_value = "gmschat:")]
    pub redis_prefix: String,

    /// Keep them in a Redis Cluster instead, reached through these seed nodes:
    /// `host:port,host:port`, or `rediss://[[user]:password@]host:port,host:port` for TLS
    /// and a password. Frames use sharded pub/sub (Redis 7). Never logged.
    #[arg(long, env = "RELAY_REDIS_CLUSTER", hide_env_values = true, conflicts_with = "redis_url")]
    pub redis_cluster: Option<RedisSeeds>,

    /// Replicas that must hold each durable write (Redis `WAIT`, 1 s) before a push is
    /// answered 200. Default: 1 with Sentinel (`redis+sentinel://`) or a Cluster, 0 for one
    /// server; 0 turns the wait off.
    #[arg(long, env = "RELAY_REDIS_WAIT_REPLICAS")]
    pub redis_wait_replicas: Option<u32>,

    /// This relay's name among several, in logs. Default: the host name and a random
    /// suffix.
    #[arg(long, env = "RELAY_NODE_ID")]
    pub node_id: Option<String>,

    /// Turns on Web Push (notifications of agent lines after the visitor left the site):
    /// the contact push services are given, `mailto:` or `https:`.
    #[arg(long, env = "RELAY_VAPID_SUBJECT", value_parser = parse_vapid_subject)]
    pub vapid_subject: Option<String>,

    /// The VAPID private key (base64url of the 32-byte P-256 scalar). Without it one is
    /// made on first start and kept in the data directory (or in Redis, shared by every
    /// relay). Never logged.
    #[arg(long, env = "RELAY_VAPID_PRIVATE_KEY", hide_env_values = true)]
    pub vapid_private_key: Option<String>,

    /// Whether a notification shows the first words of the agent's line; `false` sends
    /// only the title ("Ann replied"), so no chat text passes through push services.
    #[arg(long, env = "RELAY_WEB_PUSH_PREVIEW", default_value_t = true, action = clap::ArgAction::Set)]
    pub web_push_preview: bool,

    /// How long push services keep an undelivered notification (seconds, at most a day).
    #[arg(long, env = "RELAY_WEB_PUSH_TTL", default_value = "43200", value_parser = web_push_ttl)]
    pub web_push_ttl: Duration,

    /// Push services the relay posts to, as `https://host` or `https://*.domain`;
    /// repeatable. A browser's subscription naming another endpoint is refused, so the
    /// relay cannot be made to post anywhere else.
    #[arg(
        long = "web-push-service",
        env = "RELAY_WEB_PUSH_SERVICES",
        value_delimiter = ',',
        default_values = [
            "https://fcm.googleapis.com",
            "https://*.push.services.mozilla.com",
            "https://*.notify.windows.com",
            "https://*.push.apple.com",
        ]
    )]
    pub web_push_services: Vec<String>,

    /// Export traces over OTLP/HTTP to this collector (protobuf bodies POSTed to
    /// `<URL>/v1/traces`), e.g. `http://127.0.0.1:4318`: a push from receipt to its
    /// acknowledgement, a registration, a restoration. Off without it. No credentials in the
    /// URL: a collector that needs them is reached through a local agent.
    #[arg(long, env = "RELAY_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<String>,

    /// Spans waiting for export at most (at least 1); a span that finds the queue full is
    /// dropped and counted in `relay_trace_spans_dropped_total`.
    #[arg(long, env = "RELAY_OTLP_QUEUE", default_value = "2048")]
    pub otlp_queue: usize,
}

/// A Redis URL, which may hold a password: its `Debug` form shows only the scheme.
#[derive(Clone)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split_once("://").map_or("?", |(scheme, _)| scheme);
        write!(f, "{scheme}://…")
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<RedisUrl, String> {
        crate::store::redis::Topology::from_url(text)
            .map_err(|e| format!("not a Redis URL: {e}"))?;
        Ok(RedisUrl(text.to_owned()))
    }
}

/// A Redis Cluster's seed nodes, which may hold a password: its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct RedisSeeds(pub String);

impl std::fmt::Debug for RedisSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisSeeds(…)")
    }
}

impl std::str::FromStr for RedisSeeds {
    type Err = String;

    fn from_str(text: &str) -> Result<RedisSeeds, String> {
        crate::store::redis::Topology::cluster(text)
            .map_err(|e| format!("not Redis Cluster seed nodes: {e}"))?;
        Ok(RedisSeeds(text.to_owned()))
    }
}

/// A secret of the operator's (the identity secret, the survey webhook's key): its
/// `Debug` form shows nothing of it.
#[derive(Clone)]
pub struct IdentitySecret(String);

impl IdentitySecret {
    /// The secret's bytes, the HMAC key.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentitySecret(..)")
    }
}

impl std::str::FromStr for IdentitySecret {
    type Err = std::convert::Infallible;

    /// Any text: its length is `Config::validate`'s to judge, so the message can say what
    /// to do.
    fn from_str(text: &str) -> Result<IdentitySecret, Self::Err> {
        Ok(IdentitySecret(text.to_owned()))
    }
}

/// The shortest identity secret accepted: an HMAC-SHA256 key of a full block of entropy,
/// as sites generate it (`openssl rand -hex 32` gives 64 characters).
pub(crate) const MIN_IDENTITY_SECRET: usize = 32;

/// The shortest push secret accepted: guessing 16 random characters is out of reach.
pub(crate) const MIN_PUSH_SECRET: usize = 16;

/// The extra headers every GMS request carries, the relay's and `relay check`'s alike.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GmsHeaders {
    /// A header sent with every GMS request, as `NAME: VALUE`, e.g. `apikey: ...` for a GMS
    /// behind an API gateway; repeatable. In the environment one header a line (not
    /// commas, which header values may hold). Values are never logged, and the relay itself
    /// is never sent them.
    #[arg(
        long = "gms-header",
        env = "RELAY_GMS_HEADERS",
        value_delimiter = '\n',
        hide_env_values = true,
        value_parser = shared::gms::GmsHeader::parse
    )]
    pub headers: Vec<shared::gms::GmsHeader>,
}

/// Proxy mode: the relay as the browser's only way to GMS (`routes::proxy`).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyConfig {
    /// Serve the widget's GMS operations under `/v1/chats`, so GMS stays private and the
    /// browser never holds a GMS token: the relay starts each chat (adding the push
    /// subscription itself), keeps its tokens and passes on only the operations the widget
    /// uses, for the chats it started or holds. Off by default.
    #[arg(long = "gms-proxy", env = "RELAY_GMS_PROXY")]
    pub enabled: bool,

    /// The chat services a browser may start chats on in proxy mode; repeatable. None given:
    /// `--default-service` only.
    #[arg(long = "gms-proxy-service", env = "RELAY_GMS_PROXY_SERVICES", value_delimiter = ',')]
    pub services: Vec<String>,

    /// In proxy mode, tell GMS the visitor's address in `X-Forwarded-For` (read as the
    /// per-client limits read it, through `--trusted-proxy`); GMS otherwise sees the relay's.
    #[arg(long = "gms-forward-client-ip", env = "RELAY_GMS_FORWARD_CLIENT_IP")]
    pub forward_client_ip: bool,

    /// The GMS node group of the chats the relay starts (`GCTI_GMS_NodeGroup`; none when
    /// empty), as the widget's `nodeGroup` in direct mode.
    #[arg(long = "gms-node-group", env = "RELAY_GMS_NODE_GROUP", default_value = "")]
    pub node_group: String,

    /// Visitor lines per minute per chat in proxy mode (0: no limit).
    #[arg(long = "proxy-send-rate", env = "RELAY_PROXY_SEND_RATE", default_value = "30")]
    pub send_rate: u32,

    /// Typing notices (started and stopped) per minute per chat in proxy mode (0: no limit).
    #[arg(long = "proxy-typing-rate", env = "RELAY_PROXY_TYPING_RATE", default_value = "60")]
    pub typing_rate: u32,

    /// File uploads per minute per chat in proxy mode (0: no limit).
    #[arg(long = "proxy-upload-rate", env = "RELAY_PROXY_UPLOAD_RATE", default_value = "6")]
    pub upload_rate: u32,

    /// Every other proxied request (refreshes, user data, limits, downloads, the end) per
    /// minute per chat (0: no limit): a widget makes a few an hour.
    #[arg(long = "proxy-other-rate", env = "RELAY_PROXY_OTHER_RATE", default_value = "120")]
    pub other_rate: u32,
}

impl ProxyConfig {
    /// Whether a browser may start a chat on `service`.
    pub(crate) fn offers(&self, service: &str, default_service: &str) -> bool {
        if self.services.is_empty() {
            return service == default_service;
        }
        self.services.iter().any(|s| s == service)
    }
}

/// The names of the fields in a Chat Server's health body, the relay's and `relay check`'s
/// alike.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthKeyNames {
    /// The name of the application DBID in a Chat Server's health body, searched at any
    /// depth (also in camelCase and kebab-case).
    #[arg(long, env = "RELAY_HEALTH_DBID_KEY", default_value = "app_dbid")]
    pub health_dbid_key: String,

    /// The name of the process id in a Chat Server's health body, searched likewise.
    #[arg(long, env = "RELAY_HEALTH_PID_KEY", default_value = "process_os_pid")]
    pub health_pid_key: String,
}

impl HealthKeyNames {
    /// The names as the health body's reader takes them.
    pub(crate) fn keys(&self) -> shared::health::HealthKeys {
        shared::health::HealthKeys {
            dbid: self.health_dbid_key.clone(),
            pid: self.health_pid_key.clone(),
        }
    }
}

impl Config {
    /// Refuses a configuration that would run unsafely by omission: the relay fails closed
    /// when someone forgets a line of its environment file.
    pub fn validate(&self) -> Result<(), String> {
        // The heartbeat pings a slice of the sockets every `ws_ping / 25`: zero would be a
        // ping per socket every few milliseconds, not "no pings".
        if self.ws_ping.is_zero() || self.ws_pong_timeout.is_zero() {
            return Err("--ws-ping and --ws-pong-timeout must be more than 0 seconds: browsers' \
                        sockets need a heartbeat, which proxies also take as activity (25 and \
                        10 by default)"
                .to_owned());
        }
        if let Some(url) = self.survey_webhook.as_deref().filter(|u| !u.is_empty()) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("--survey-webhook {url:?} is not an http(s) URL"));
            }
            let secret = self.survey_webhook_secret.as_ref().map_or(0, |s| s.bytes().len());
            if secret < MIN_PUSH_SECRET {
                return Err(format!(
                    "--survey-webhook needs RELAY_SURVEY_WEBHOOK_SECRET (or --survey-webhook-secret) \
                     of at least {MIN_PUSH_SECRET} characters, the key the webhook verifies \
                     X-Gms-Chat-Signature with (e.g. `openssl rand -hex 16`)"
                ));
            }
        }
        if let Some(secret) = self.identity_secret()
            && secret.len() < MIN_IDENTITY_SECRET
        {
            return Err(format!(
                "the identity secret (RELAY_IDENTITY_SECRET) has {} bytes: at least \
                 {MIN_IDENTITY_SECRET} are needed (e.g. `openssl rand -hex 32`), the same your \
                 site's backend computes userHash with",
                secret.len()
            ));
        }
        match self.push_secret() {
            None if self.insecure_no_push_secret => Ok(()),
            None => Err(format!(
                "no push secret: set RELAY_PUSH_SECRET (or --push-secret) to a random string of \
                 at least {MIN_PUSH_SECRET} characters (e.g. `openssl rand -hex 16`) and give GMS \
                 the same in customhttp.url as ?secret=...; only for a demo on a laptop, \
                 --insecure-no-push-secret accepts pushes from anyone"
            )),
            Some(secret) if secret.chars().count() < MIN_PUSH_SECRET => Err(format!(
                "the push secret (RELAY_PUSH_SECRET) has {} characters: at least \
                 {MIN_PUSH_SECRET} are needed (e.g. `openssl rand -hex 16`)",
                secret.chars().count()
            )),
            Some(_) => Ok(()),
        }
    }

    /// The identity secret's bytes; None when none is set (an empty value counts as none,
    /// as a template's placeholder).
    pub(crate) fn identity_secret(&self) -> Option<&[u8]> {
        let secret = self.identity_secret.as_ref()?;
        (!secret.0.trim().is_empty()).then(|| secret.bytes())
    }

    /// The secret pushes must present; None only with `--insecure-no-push-secret`.
    pub fn push_secret(&self) -> Option<&str> {
        self.push_secret.as_deref().filter(|s| !s.trim().is_empty())
    }

    /// The same configuration with its node id settled: as configured, or the host name
    /// with a random suffix (once, so every part of the relay uses the same).
    pub fn with_node_id(mut self) -> Config {
        if self.node_id.is_none() {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "relay".to_owned());
            self.node_id = Some(format!("{host}-{:08x}", rand::random::<u32>()));
        }
        self
    }

    /// The node id (settled by `with_node_id`).
    pub fn node(&self) -> &str {
        self.node_id.as_deref().unwrap_or("relay")
    }
}

/// A watched Chat Server: its alias (application DBID) and health URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatServer {
    /// The alias GMS returns for chats it hosts.
    pub alias: String,
    /// Its health endpoint.
    pub health_url: String,
}

pub(crate) fn parse_chat_server(text: &str) -> Result<ChatServer, String> {
    let (alias, url) =
        text.split_once('=').ok_or_else(|| format!("{text:?} is not <alias>=<health-url>"))?;
    let (alias, url) = (alias.trim(), url.trim());
    if alias.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{text:?} is not <alias>=<http(s) health-url>"));
    }
    Ok(ChatServer { alias: alias.to_owned(), health_url: url.to_owned() })
}

/// `--ewt-queue`: a chat service and the virtual queue whose wait stands for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwtQueue {
    /// The chat service.
    pub service: String,
    /// The virtual queue GMS's EWT API knows.
    pub queue: String,
}

pub(crate) fn parse_ewt_queue(text: &str) -> Result<EwtQueue, String> {
    let (service, queue) = text
        .split_once('=')
        .map(|(s, q)| (s.trim(), q.trim()))
        .filter(|(s, q)| !s.is_empty() && !q.is_empty())
        .ok_or_else(|| format!("{text:?} is not <service>=<virtual queue>"))?;
    Ok(EwtQueue { service: service.to_owned(), queue: queue.to_owned() })
}

pub(crate) fn parse_ewt_api(text: &str) -> Result<shared::ewt::EwtApi, String> {
    match text {
        "v1" => Ok(shared::ewt::EwtApi::V1),
        "v2" => Ok(shared::ewt::EwtApi::V2),
        other => Err(format!("{other:?} is not an EWT API: v1 or v2")),
    }
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, an IPv6 network, or a bare address (a single host).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        parse_cidr(text)
    }

    /// Whether `addr` is inside the network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_eq(&net.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_eq(&net.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let bits = usize::from(prefix);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xff_u8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (addr, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
    let network: IpAddr = addr.parse().map_err(|_| format!("{text:?} is not an IP network"))?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    let prefix = if prefix.is_empty() {
        max
    } else {
        prefix.parse().map_err(|_| format!("bad prefix in {text:?}"))?
    };
    if prefix > max {
        return Err(format!("prefix /{prefix} is too long for {network}"));
    }
    Ok(Cidr { network, prefix })
}

fn parse_vapid_subject(text: &str) -> Result<String, String> {
    if text.starts_with("mailto:") || text.starts_with("https://") {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is neither a mailto: nor an https: URL"))
    }
}

/// An OTLP/HTTP collector's base URL: http(s), without credentials (the relay logs where it
/// exports, and keeps no secret in its configuration's `Debug`).
fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the OTLP endpoint carries no credentials".to_owned());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn web_push_ttl(text: &str) -> Result<Duration, String> {
    let ttl = seconds(text)?;
    // The VAPID signature expires with the TTL, and push services refuse one valid for
    // more than 24 hours.
    if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(23 * 3600) {
        return Err(format!("{text} seconds is outside 60..=82800"));
    }
    Ok(ttl)
}

pub(crate) fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=1.0e7).contains(&value) {
        return Err(format!("{text} seconds is out of range"));
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::{parse_chat_server, parse_cidr};

    #[test]
    fn ewt_queues_are_service_equals_queue() {
        let queue = super::parse_ewt_queue(" web = chat_vq ").expect("valid");
        assert_eq!((queue.service.as_str(), queue.queue.as_str()), ("web", "chat_vq"));
        for bad in ["web", "=q", "web=", ""] {
            assert!(super::parse_ewt_queue(bad).is_err(), "{bad}");
        }
        assert!(super::parse_ewt_api("v3").is_err());
    }

    #[test]
    fn chat_servers_are_alias_equals_url() {
        let server = parse_chat_server("117=http://10.0.0.5:7000/health").expect("valid");
        assert_eq!(
            (server.alias.as_str(), server.health_url.as_str()),
            ("117", "http://10.0.0.5:7000/health")
        );
        assert!(parse_chat_server("117").is_err());
        assert!(parse_chat_server("=http://x/health").is_err());
        assert!(parse_chat_server("117=ftp://x").is_err());
    }

    #[test]
    fn a_short_identity_secret_is_refused_and_none_shows_in_debug() {
        use clap::Parser as _;
        let config = |secret: &str| {
            super::Config::try_parse_from([
                "relay",
                "--push-secret",
                "a-push-secret-long-enough",
                "--identity-secret",
                secret,
            ])
            .expect("parses")
        };
        let short = config("only-31-bytes-of-identity-secre");
        let refused = short.validate().expect_err("too short");
        assert!(refused.contains("31 bytes") && refused.contains("RELAY_IDENTITY_SECRET"));
        assert!(!refused.contains("only-31"), "the message never shows it: {refused}");
        let long = config("exactly-32-bytes-of-the-secret!!");
        assert_eq!(long.validate(), Ok(()));
        assert_eq!(long.identity_secret(), Some(b"exactly-32-bytes-of-the-secret!!".as_slice()));
        assert!(!format!("{long:?}").contains("exactly-32"), "Debug shows no secret");
        let empty = config("  ");
        assert_eq!((empty.validate(), empty.identity_secret()), (Ok(()), None));
    }

    #[test]
    fn a_heartbeat_of_zero_seconds_is_refused() {
        use clap::Parser as _;
        let config = |extra: &[&str]| {
            let base = ["relay", "--push-secret", "a-push-secret-long-enough"];
            super::Config::try_parse_from(base.iter().chain(extra)).expect("parses")
        };
        assert!(config(&["--ws-ping", "0"]).validate().expect_err("zero").contains("--ws-ping"));
        assert!(config(&["--ws-pong-timeout", "0"]).validate().is_err());
        assert_eq!(config(&["--ws-ping", "0.2", "--ws-pong-timeout", "0.2"]).validate(), Ok(()));
    }

    #[test]
    fn a_survey_webhook_needs_an_http_url_and_a_secret_that_debug_never_shows() {
        use clap::Parser as _;
        let config = |extra: &[&str]| {
            let base = ["relay", "--push-secret", "a-push-secret-long-enough"];
            super::Config::try_parse_from(base.iter().chain(extra)).expect("parses")
        };
        let hook = "https://surveys.example.com/in";
        let refused = config(&["--survey-webhook", hook]).validate().expect_err("no secret");
        assert!(refused.contains("RELAY_SURVEY_WEBHOOK_SECRET"), "{refused}");
        let short = config(&["--survey-webhook", hook, "--survey-webhook-secret", "short"]);
        assert!(short.validate().is_err());
        let ftp = ["--survey-webhook", "ftp://x/", "--survey-webhook-secret", "0123456789abcdef"];
        assert!(config(&ftp).validate().expect_err("not http").contains("http(s)"));
        let good =
            config(&["--survey-webhook", hook, "--survey-webhook-secret", "0123456789abcdef"]);
        assert_eq!(good.validate(), Ok(()));
        assert!(!format!("{good:?}").contains("0123456789abcdef"), "Debug shows no secret");
    }

    #[test]
    fn cidrs_match_their_networks_only() {
        let lan = parse_cidr("10.1.0.0/16").expect("valid");
        assert!(lan.contains("10.1.200.3".parse().expect("ip")));
        assert!(!lan.contains("10.2.0.1".parse().expect("ip")));
        assert!(lan.contains("::ffff:10.1.0.9".parse().expect("ip")), "v4-mapped v6 peers match");
        let odd = parse_cidr("192.168.0.0/23").expect("valid");
        assert!(odd.contains("192.168.1.255".parse().expect("ip")));
        assert!(!odd.contains("192.168.2.0".parse().expect("ip")));
        let host = parse_cidr("127.0.0.1").expect("a bare address is a /32");
        assert!(host.contains("127.0.0.1".parse().expect("ip")));
        assert!(!host.contains("127.0.0.2".parse().expect("ip")));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("banana/8").is_err());
    }
}
