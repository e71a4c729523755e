//! The gms-sim binary: parse flags, start, print the ready line, run until Ctrl-C.
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("gms_sim=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let running = gms_sim::start(gms_sim::Config::parse()).await?;
    #[allow(clippy::print_stdout, reason = "the ready line is the binary's stdout contract")]
    {
        println!("{}", running.ready_line());
    }
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    Ok(())
}
