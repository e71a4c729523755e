//! Reading the relay's Prometheus endpoint.

use std::time::Duration;

use anyhow::Result;
use system_tests::support::{Wait, until_every};

/// The relay's `/metrics` text.
pub(crate) async fn scrape(http: &reqwest::Client, relay_url: &str) -> Result<String> {
    Ok(http.get(format!("{relay_url}/metrics")).send().await?.text().await?)
}

/// Waits until the relay's own gauge counts every connection.
pub(crate) async fn wait_for_connections(relay_url: &str, size: usize) -> Result<()> {
    let http = reqwest::Client::new();
    let what = format!("the relay holding {size} connections");
    until_every(&what, Duration::from_secs(60), Duration::from_millis(200), async || {
        let metrics = scrape(&http, relay_url).await?;
        let held = metric(&metrics, "relay_ws_connections").unwrap_or(0.0);
        Ok(Wait::done_if(held >= size as f64, held))
    })
    .await
}

/// The value of an unlabelled Prometheus metric (or a summary's `_sum`/`_count`).
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}
