//! The flags of a test relay, in one builder: every test relay, in-process or a process of
//! its own, starts from the same few and adds what its test is about.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use shared::relay_api::PUSH_PATH;

/// The push secret of test systems (the shortest the relay accepts).
pub const TEST_PUSH_SECRET: &str = "test-push-secret";

/// Relay flags that turn the per-address limits off, for loads that come from one machine
/// on purpose (benchmarks, hundreds of chats registered by one test).
pub const NO_CLIENT_LIMITS: [&str; 8] = [
    "--register-rate",
    "0",
    "--register-global-rate",
    "0",
    "--ws-connect-rate",
    "0",
    "--ws-per-address",
    "0",
];

/// Where GMS posts pushes for the relay at `relay_url`, with the test secret.
pub fn push_url(relay_url: &str) -> String {
    format!("{relay_url}{PUSH_PATH}?secret={TEST_PUSH_SECRET}")
}

/// The value of `--chat-server` (the relay's and `relay check`'s) for a Chat Server whose
/// health endpoint listens on `health`, as gms-sim's `chat_servers` name them.
pub fn chat_server(alias: &str, health: SocketAddr) -> String {
    format!("{alias}=http://{health}/health")
}

/// A test relay's flags, without the program name.
#[derive(Debug, Clone)]
pub struct RelayArgs(Vec<String>);

impl RelayArgs {
    /// A relay that listens on `listen` (port 0 picks one), calls GMS at `gms_url`, keeps
    /// its data in `data_dir` and requires the test push secret.
    pub fn new(listen: &str, gms_url: &str, data_dir: &Path) -> RelayArgs {
        let args = ["--listen", listen, "--gms-url", gms_url, "--push-secret", TEST_PUSH_SECRET];
        RelayArgs(args.iter().map(|s| (*s).to_owned()).collect()).flag("--data-dir", data_dir)
    }

    /// Without per-address limits (`NO_CLIENT_LIMITS`).
    pub fn no_client_limits(self) -> RelayArgs {
        self.flags(NO_CLIENT_LIMITS)
    }

    /// Sharing chats with other relays through Redis at `url`.
    pub fn redis(self, url: &str) -> RelayArgs {
        self.flag("--redis-url", url)
    }

    /// Watching the health of each of these Chat Servers (gms-sim's `chat_servers`).
    pub fn watch(mut self, chat_servers: &[(String, SocketAddr)]) -> RelayArgs {
        for (alias, health) in chat_servers {
            self = self.flag("--chat-server", chat_server(alias, *health));
        }
        self
    }

    /// Serving the files of `site` (a widget build with its host page, which the relay
    /// shows at `/`).
    pub fn site(self, site: &Path) -> RelayArgs {
        self.flag("--static-dir", site).flags(["--demo-page"])
    }

    /// One flag and its value.
    pub fn flag(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> RelayArgs {
        self.0.push(name.to_owned());
        self.0.push(value.as_ref().to_string_lossy().into_owned());
        self
    }

    /// More flags, as they are.
    pub fn flags<S: AsRef<str>>(mut self, flags: impl IntoIterator<Item = S>) -> RelayArgs {
        self.0.extend(flags.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// The flags, for the relay binary.
    pub fn build(self) -> Vec<String> {
        self.0
    }

    /// The configuration the relay makes of them, for a relay in this process.
    pub fn config(self) -> Result<relay::Config> {
        use clap::Parser as _;
        Ok(relay::Config::try_parse_from(std::iter::once("relay".to_owned()).chain(self.0))?)
    }
}
