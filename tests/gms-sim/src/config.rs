//! The simulator's flags; each is also an environment variable (`GMS_SIM_*`).

use std::net::SocketAddr;
use std::time::Duration;

/// How pushes are laid out, so receivers' tolerance can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PushFormat {
    /// Tokens and payload at the top level, camelCase (`chatId`, `userId`, `secureKey`, `alias`).
    Flat,
    /// Tokens at the top level under Chat Server's `flex-push-content` names
    /// (`session-id`, `user-id`, `secure-key`, `app-dbid`, the alias as a number).
    Kebab,
    /// `deviceId`, `message` and `type` at the top; tokens, events and `nextPosition`
    /// inside a `payload` object.
    Nested,
    /// The REST envelope (`chatId`, `statusCode`, `chatEnded`, `alias`, `secureKey`,
    /// `userId`, `nextPosition`, `messages`), as the CometD notification's data is, merged
    /// into the top level next to `deviceId`, `message` and `type`.
    Envelope,
    /// `deviceId` and `type` at the top, and the envelope encoded as a JSON string in
    /// `message`.
    EnvelopeString,
    /// Only `{deviceId, message}`, as the GMS push guide documents: no tokens, no payload.
    Minimal,
}

/// Simulator configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gms-sim", version, about = "GMS Chat API V2 + Chat Server simulator")]
pub struct Config {
    /// Address of the GMS listener (port 0 picks a free port; the ready line tells which).
    #[arg(long, env = "GMS_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,

    /// Chat Server aliases (application DBIDs); each gets its own health port.
    #[arg(long, env = "GMS_SIM_CHAT_SERVERS", value_delimiter = ',', default_value = "117,118")]
    pub chat_servers: Vec<String>,

    /// Host for the Chat Server health listeners (each on a free port).
    #[arg(long, env = "GMS_SIM_HEALTH_HOST", default_value = "127.0.0.1")]
    pub health_host: std::net::IpAddr,

    /// Where customhttp pushes are POSTed (GMS `[push] customhttp.url`). Repeated: each
    /// POST (resends too) goes to the next one in turn, as a load balancer in front of
    /// several relays would spread them.
    #[arg(long = "push-url", env = "GMS_SIM_PUSH_URL", value_delimiter = ',')]
    pub push_urls: Vec<String>,

    /// Seconds between resends of an unacknowledged push (Chat Server `flex-push-resend-delay`).
    #[arg(long, env = "GMS_SIM_PUSH_RESEND_DELAY", default_value = "15", value_parser = seconds)]
    pub push_resend_delay: Duration,

    /// Resends after the first delivery (Chat Server `flex-push-resend-attempts`).
    #[arg(long, env = "GMS_SIM_PUSH_RESEND_ATTEMPTS", default_value = "5")]
    pub push_resend_attempts: u32,

    /// The layout of push bodies.
    #[arg(long, env = "GMS_SIM_PUSH_FORMAT", value_enum, default_value = "flat")]
    pub push_format: PushFormat,

    /// Tokens put into pushes, like Chat Server `flex-push-content`
    /// (`app-dbid`, `secure-key`, `session-id`, `user-id`). The Genesys default is
    /// `session-id,user-id`; the simulator sends all four unless told otherwise, as the
    /// seed's deployment requires.
    #[arg(
        long,
        env = "GMS_SIM_FLEX_PUSH_CONTENT",
        value_delimiter = ',',
        default_value = "app-dbid,secure-key,session-id,user-id"
    )]
    pub flex_push_content: Vec<String>,

    /// Seconds without a request after which a web user is logged out (`flex-disconnect-timeout`).
    #[arg(long, env = "GMS_SIM_FLEX_DISCONNECT_TIMEOUT", default_value = "45", value_parser = seconds)]
    pub flex_disconnect_timeout: Duration,

    /// Replaces `flex-disconnect-timeout` for push-subscribed users (`flex-push-timeout`).
    #[arg(long, env = "GMS_SIM_FLEX_PUSH_TIMEOUT", default_value = "86400", value_parser = seconds)]
    pub flex_push_timeout: Duration,

    /// Seconds without major activity before an async chat gets an idle alert (`async-idle-alert`).
    #[arg(long, env = "GMS_SIM_ASYNC_IDLE_ALERT", default_value = "86400", value_parser = seconds)]
    pub async_idle_alert: Duration,

    /// Seconds after the alert before the async chat is closed (`async-idle-close`).
    #[arg(long, env = "GMS_SIM_ASYNC_IDLE_CLOSE", default_value = "3600", value_parser = seconds)]
    pub async_idle_close: Duration,

    /// Browser origins allowed to call the Chat API (CORS); `*` allows any.
    #[arg(long = "cors-origin", env = "GMS_SIM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// A header every Chat API request must carry, as `NAME: VALUE` (repeatable; in the
    /// environment one a line), as an API gateway in front of GMS asks for its key
    /// (`apikey: ...`). A request without it gets 401 and an Apigee fault body; the CORS
    /// preflight allows it.
    #[arg(
        long = "require-header",
        env = "GMS_SIM_REQUIRE_HEADERS",
        value_delimiter = '\n',
        hide_env_values = true,
        value_parser = shared::gms::GmsHeader::parse
    )]
    pub require_headers: Vec<shared::gms::GmsHeader>,

    /// An `office-hours` service the Calendar Service knows from the start, open now and
    /// for eight hours, then eight hours a day for a week (the demo's); repeatable. The
    /// admin API sets any service's periods (`POST /sim/office-hours/{name}`).
    #[arg(long = "office-hours")]
    pub office_hours: Vec<String>,

    /// What the EWT APIs answer for every queue at start, in seconds (none: nothing
    /// usable); the agent console and `POST /sim/ewt` change it.
    #[arg(long = "ewt-seconds")]
    pub ewt_seconds: Option<u64>,

    /// Answer as GMS 8.5.112 and later may: no `userId` and no `alias` in any answer or
    /// push envelope (Genesys' GMSLibrary decodes both as optional). Requests without them
    /// are accepted, as they always are.
    #[arg(long, env = "GMS_SIM_OMIT_TOKENS")]
    pub omit_tokens: bool,

    /// Run a scripted agent that joins every new chat and answers.
    #[arg(long, env = "GMS_SIM_BOT")]
    pub bot: bool,

    /// Milliseconds the scripted agent waits before joining or answering.
    #[arg(long, env = "GMS_SIM_BOT_DELAY_MS", default_value = "1200")]
    pub bot_delay_ms: u64,

    /// Max files per chat (`upload-max-files`).
    #[arg(long, env = "GMS_SIM_UPLOAD_MAX_FILES", default_value = "3")]
    pub upload_max_files: u64,

    /// Max bytes per file (`upload-max-file-size`).
    #[arg(long, env = "GMS_SIM_UPLOAD_MAX_FILE_SIZE", default_value = "2097152")]
    pub upload_max_file_size: u64,

    /// Max bytes per chat (`upload-max-total-size`).
    #[arg(long, env = "GMS_SIM_UPLOAD_MAX_TOTAL_SIZE", default_value = "5242880")]
    pub upload_max_total_size: u64,

    /// Allowed extensions, colon-separated (`upload-file-types`).
    #[arg(long, env = "GMS_SIM_UPLOAD_FILE_TYPES", default_value = "jpg:jpeg:png:gif:pdf:txt")]
    pub upload_file_types: String,

    /// Downloads allowed per file (`download-attempts`).
    #[arg(long, env = "GMS_SIM_DOWNLOAD_ATTEMPTS", default_value = "5")]
    pub download_attempts: u64,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=1.0e7).contains(&value) {
        return Err(format!("{text} seconds is out of range"));
    }
    Ok(Duration::from_secs_f64(value))
}

impl Config {
    /// Defaults suitable for tests: port 0 everywhere, no push URL.
    pub fn for_tests() -> Config {
        <Config as clap::Parser>::parse_from(["gms-sim", "--listen", "127.0.0.1:0"])
    }
}
