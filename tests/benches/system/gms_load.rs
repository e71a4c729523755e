//! GMS requests per idle chat-hour: from the relay (its periodic ping of every stored
//! chat), from the widget in a real Chromium (its idle refresh while the page is open),
//! and from a client that short-polls every 5 s, side by side against one gms-sim.
//! The relay's and the widget's 30-minute timers are shortened by `SCALE` and their counts
//! scaled back by the same factor; the short-poller runs at its real 5 s.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use shared::gms::ChatOperation;
use shared::transcript::TranscriptPosition;
use shared::widget_config::WidgetConfig;
use system_tests::gms_client::{GmsClient, SimAdmin};
use system_tests::harness::{Options, System};
use system_tests::support::{NO_CLIENT_LIMITS, SERVICE};
use system_tests::webdriver::Browser;
use system_tests::widget_page::WidgetPage;

use crate::chats::{self, BenchChat};
use crate::report::Report;

/// 30 minutes become 3 seconds.
const SCALE: f64 = 600.0;
const IDLE_TIMER_SECONDS: u32 = 1800;
const POLL_EVERY: Duration = Duration::from_secs(5);

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let (window, relay_chats, polled_chats) = if report.smoke {
        (Duration::from_secs(6), 5, 2)
    } else {
        (Duration::from_secs(60), 100, 20)
    };
    let scaled = f64::from(IDLE_TIMER_SECONDS) / SCALE;
    let widget_config =
        WidgetConfig { idle_refresh_seconds: scaled as u32, ..WidgetConfig::default() };
    let system = System::start(Options {
        widget_dist: Some(crate::widget::dist()?),
        widget_config,
        ..Options::sim(&["--flex-disconnect-timeout", "100000"])
            .relay(&["--ping-interval", &scaled.to_string()])
            .relay(&NO_CLIENT_LIMITS)
    })
    .await?;
    let gms_url = system.gms.url();
    let admin = SimAdmin::new(&gms_url);
    let stored = chats::create(&gms_url, Some(&system.relay_url), "away", relay_chats).await?;
    let polled = chats::create(&gms_url, None, "poll", polled_chats).await?;
    let browser = Browser::start().await?;
    WidgetPage::of(&browser).start_chat(&system.page_url(), "Idle Visitor").await?;

    let before = admin.stats().await?;
    let widget_before = widget_gms_requests(&browser).await?;
    let started = Instant::now();
    let polling = polled
        .iter()
        .map(|chat| short_poll(GmsClient::new(&gms_url, SERVICE), chat, window))
        .collect::<Vec<_>>();
    let polls: u64 = futures_util::future::try_join_all(polling).await?.into_iter().sum();
    tokio::time::sleep_until((started + window).into()).await;
    let after = admin.stats().await?;
    let widget_requests = widget_gms_requests(&browser).await? - widget_before;
    let wall = started.elapsed().as_secs_f64();

    let virtual_hours = wall * SCALE / 3600.0;
    let relay_requests = requests_of(&before, &after, &stored);
    let relay_rate = relay_requests as f64 / relay_chats as f64 / virtual_hours;
    let widget_rate = widget_requests as f64 / virtual_hours;
    let counted_polls = requests_of(&before, &after, &polled);
    anyhow::ensure!(counted_polls >= polls, "gms-sim saw {counted_polls} polls, sent {polls}");
    let poll_rate = counted_polls as f64 / polled_chats as f64 / (wall / 3600.0);
    let case = format!("idle chats, timers ×{SCALE} faster over {wall:.0} s");
    report.add("gms-load", &case, "relay (visitor away)", relay_rate, "req/chat-hour");
    report.add("gms-load", &case, "widget (page open)", widget_rate, "req/chat-hour");
    report.add("gms-load", &case, "relay + widget", relay_rate + widget_rate, "req/chat-hour");
    report.add("gms-load", &case, "short-polling every 5 s", poll_rate, "req/chat-hour");
    report.add(
        "gms-load",
        &case,
        "short-polling ÷ relay + widget",
        poll_rate / (relay_rate + widget_rate),
        "×",
    );
    browser.close().await?;
    system.stop().await
}

/// Requests the page made to GMS, as the browser's resource timing recorded them.
async fn widget_gms_requests(browser: &Browser) -> Result<u64> {
    browser
        .script(
            "return performance.getEntriesByType('resource')
               .filter(e => e.name.includes('/genesys/')).length;",
            json!([]),
        )
        .await?
        .as_u64()
        .context("a count")
}

/// Refreshes a chat every 5 s while `window` lasts, as a short-polling widget would;
/// returns how many requests it sent.
async fn short_poll(gms: GmsClient, chat: &BenchChat, window: Duration) -> Result<u64> {
    let polls = (window.as_secs_f64() / POLL_EVERY.as_secs_f64()) as u64;
    let mut ticks = tokio::time::interval_at((Instant::now() + POLL_EVERY).into(), POLL_EVERY);
    let mut position = 1;
    for _ in 0..polls {
        ticks.tick().await;
        let refresh = ChatOperation::Refresh { position: TranscriptPosition::from_value(position) };
        let response = gms.call(&refresh, &chat.credentials).await?;
        position = response.next_position.unwrap_or(position);
    }
    Ok(polls)
}

/// Requests gms-sim counted for these chats between two `/sim/stats` readings.
fn requests_of(before: &Value, after: &Value, chats: &[BenchChat]) -> u64 {
    let count = |stats: &Value, chat: &BenchChat| {
        stats["chats"][&chat.credentials.chat_id]
            .as_object()
            .map_or(0, |ops| ops.values().filter_map(Value::as_u64).sum::<u64>())
    };
    chats.iter().map(|c| count(after, c).saturating_sub(count(before, c))).sum()
}
