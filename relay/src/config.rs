//! The relay's configuration: every flag is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

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

    /// Directory for the durable session store.
    #[arg(long, env = "RELAY_DATA_DIR", default_value = "relay-data")]
    pub data_dir: PathBuf,

    /// Shared secret GMS must present on `/gms/push` (`?secret=` or HTTP Basic password).
    /// Never logged.
    #[arg(long, env = "RELAY_PUSH_SECRET", hide_env_values = true)]
    pub push_secret: Option<String>,

    /// A Chat Server to watch, as `<alias>=<health-url>`; repeatable.
    #[arg(long = "chat-server", env = "RELAY_CHAT_SERVERS", value_delimiter = ',')]
    pub chat_servers: Vec<String>,

    /// Serve the built widget from this directory (so a site embeds it from one origin).
    #[arg(long, env = "RELAY_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
}
