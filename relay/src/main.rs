//! The relay binary: logging, configuration, bind, ready line, run.
use clap::Parser;
use relay::{Config, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let config = Config::parse();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let ready = serde_json::json!({"ready": true, "listen": listener.local_addr()?.to_string()});
    #[allow(clippy::print_stdout, reason = "the ready line is the binary's stdout contract")]
    {
        println!("{ready}");
    }
    relay::run(listener, config, shutdown_signal()).await
}
