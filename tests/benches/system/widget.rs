//! The widget's weight: raw and gzipped bytes of every file it downloads, and the time
//! from navigation to a working launcher in headless Chromium (median of 10), with the
//! HTTP cache disabled (a first visit) and enabled (a returning visitor).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;
use system_tests::harness::{Options, System};
use system_tests::webdriver::Browser;

use crate::report::{Report, median};

/// The built widget (`WIDGET_DIST`, set by xtask after `trunk build --release`).
pub(crate) fn dist() -> Result<PathBuf> {
    std::env::var_os("WIDGET_DIST")
        .map(PathBuf::from)
        .context("WIDGET_DIST must name the built widget (cargo xtask bench sets it)")
}

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    weigh(report)?;
    let runs = if report.smoke { 2 } else { 10 };
    let system = System::start(Options { widget_dist: Some(dist()?), ..Options::sim(&[]) }).await?;
    let browser = Browser::start().await?;
    browser.cdp("Network.enable", json!({})).await?;
    for (cache_disabled, case) in [(true, "first visit (no cache)"), (false, "returning (cached)")]
    {
        browser.cdp("Network.setCacheDisabled", json!({"cacheDisabled": cache_disabled})).await?;
        if !cache_disabled {
            time_to_interactive(&browser, &system.relay_url).await?;
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(time_to_interactive(&browser, &system.relay_url).await?);
        }
        let case = format!("{case}, median of {runs}");
        report.add("widget", &case, "navigation → launcher live", median(&mut times), "ms");
    }
    browser.close().await?;
    system.stop().await
}

/// Milliseconds from navigation start to the widget's `gms-chat:interactive` mark.
async fn time_to_interactive(browser: &Browser, relay_url: &str) -> Result<f64> {
    browser.goto("about:blank").await?;
    browser.goto(&format!("{relay_url}/")).await?;
    let value = browser
        .wait_for(
            "the widget's interactive mark",
            20,
            "const mark = performance.getEntriesByName('gms-chat:interactive')[0];
             return mark ? mark.startTime : null;",
            json!([]),
        )
        .await?;
    value.as_f64().context("a time")
}

/// Every file of the build, raw and as `gzip -9` would send it.
fn weigh(report: &mut Report) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dist()?)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let (mut raw_total, mut gz_total) = (0, 0);
    for file in files {
        let bytes = std::fs::read(&file)?;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&bytes)?;
        let gz = encoder.finish()?.len();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = name.rsplit('.').next().unwrap_or_default().to_owned();
        report.add("widget", &format!("{kind} file"), "raw", bytes.len() as f64, "bytes");
        report.add("widget", &format!("{kind} file"), "gzip -9", gz as f64, "bytes");
        raw_total += bytes.len();
        gz_total += gz;
    }
    report.add("widget", "everything downloaded", "raw", raw_total as f64, "bytes");
    report.add("widget", "everything downloaded", "gzip -9", gz_total as f64, "bytes");
    Ok(())
}
