//! The relay binary: logging, configuration, bind, ready line, run; or `relay check`.
use clap::Parser;
use relay::{Config, shutdown_signal, telemetry};

// Every push allocates and frees many small buffers across threads: glibc's malloc (its
// arenas and consolidation) was a fifth of the relay's CPU at 12,000 pushes/s.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    if std::env::args().nth(1).as_deref() == Some("check") {
        let config = relay::check::CheckConfig::parse_from(std::env::args().skip(1));
        let passed = relay::check::run(&config, &mut std::io::stdout()).await?;
        #[allow(clippy::exit, reason = "the check's result is the process's exit status")]
        std::process::exit(if passed { 0 } else { 1 });
    }
    let config = Config::parse();
    // Before binding: a relay that would run unsafely never prints its ready line.
    config.validate().map_err(anyhow::Error::msg)?;
    // Every WebSocket is a descriptor: take all the hard limit allows, as Go servers do.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let ready = serde_json::json!({"ready": true, "listen": listener.local_addr()?.to_string()});
    #[allow(clippy::print_stdout, reason = "the ready line is the binary's stdout contract")]
    {
        println!("{ready}");
    }
    relay::run(listener, config, shutdown_signal()).await
}
