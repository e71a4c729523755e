//! Starting gms-sim and the relay wired to each other, with the widget's host page.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use clap::Parser as _;
use shared::widget_config::WidgetConfig;
use tokio_util::sync::CancellationToken;

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra gms-sim flags, e.g. `["--bot", "--push-resend-delay", "0.2"]`.
    pub sim_args: Vec<String>,
    /// A built widget to serve from the relay, with a host page pointing at gms-sim.
    pub widget_dist: Option<PathBuf>,
}

/// gms-sim and the relay, running until dropped or stopped.
pub struct System {
    /// The simulator.
    pub gms: gms_sim::Running,
    /// The relay's base URL.
    pub relay_url: String,
    relay_stop: CancellationToken,
    relay_task: tokio::task::JoinHandle<Result<()>>,
    site: Option<PathBuf>,
}

impl System {
    /// Binds the relay first (gms-sim needs its URL for CORS and pushes), then starts both.
    pub async fn start(options: Options) -> Result<System> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let relay_url = format!("http://{}", listener.local_addr()?);
        let mut sim_args = vec![
            "gms-sim".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--cors-origin".to_owned(),
            relay_url.clone(),
            "--push-url".to_owned(),
            format!("{relay_url}/gms/push"),
        ];
        sim_args.extend(options.sim_args);
        let gms = gms_sim::start(gms_sim::Config::try_parse_from(&sim_args)?).await?;

        let site = match &options.widget_dist {
            Some(dist) => Some(host_site(dist, &gms.url())?),
            None => None,
        };
        let mut relay_args = vec![
            "relay".to_owned(),
            "--gms-url".to_owned(),
            gms.url(),
            "--data-dir".to_owned(),
            scratch_dir("relay-data")?.display().to_string(),
        ];
        if let Some(site) = &site {
            relay_args.push("--static-dir".to_owned());
            relay_args.push(site.display().to_string());
        }
        let config = relay::Config::try_parse_from(&relay_args)?;
        let relay_stop = CancellationToken::new();
        let stop = relay_stop.clone();
        let relay_task = tokio::spawn(relay::run(listener, config, stop.cancelled_owned()));
        Ok(System { gms, relay_url, relay_stop, relay_task, site })
    }

    /// Stops the relay and the simulator and removes the host site.
    pub async fn stop(self) -> Result<()> {
        self.relay_stop.cancel();
        self.relay_task.await.context("relay task")??;
        self.gms.stop().await;
        if let Some(site) = self.site {
            let _ = std::fs::remove_dir_all(site);
        }
        Ok(())
    }
}

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn scratch_dir(label: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gms-chat-{label}-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Copies the built widget and writes a host page configured for this gms-sim, as a
/// website owner would embed it.
pub fn host_site(dist: &Path, gms_url: &str) -> Result<PathBuf> {
    let site = scratch_dir("site")?;
    for entry in std::fs::read_dir(dist)
        .with_context(|| format!("reading widget build {}", dist.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), site.join(entry.file_name()))?;
        }
    }
    let index = site.join("index.html");
    let page = std::fs::read_to_string(&index).context("the widget build has no index.html")?;
    let config = WidgetConfig { gms_url: gms_url.to_owned(), ..WidgetConfig::default() };
    let page = config.embed_in(&page).context("index.html has no gms-chat-config element")?;
    std::fs::write(index, page)?;
    Ok(site)
}
