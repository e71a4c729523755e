//! One chat across the tabs of a site: every tab shows the same chat in step, one tab
//! holds the relay connection, and another takes over when it closes.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use shared::relay_api::SESSIONS_PATH;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::System;
use system_tests::support::{Wait, until_every};
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use crate::system;

/// The relay's open WebSocket connections, from its `/status`.
async fn relay_connections(system: &System) -> Result<u64> {
    let status: Value = reqwest::get(format!("{}/status", system.relay_url)).await?.json().await?;
    Ok(status["connections"].as_u64().unwrap_or(0))
}

/// Waits until the relay has exactly `count` connections.
pub(crate) async fn connections_become(
    system: &System,
    count: u64,
    within: Duration,
) -> Result<()> {
    let what = format!("the relay holding {count} connections");
    until_every(&what, within, Duration::from_millis(50), async || {
        let now = relay_connections(system).await?;
        Ok(Wait::done_if(now == count, now))
    })
    .await
}

/// Requests to paths ending in `suffix` this tab itself made, as its resource timing saw.
async fn own(browser: &Browser, suffix: &str) -> Result<u64> {
    let count = browser
        .script(
            "return performance.getEntriesByType('resource')
               .filter(e => e.name.endsWith(arguments[0])).length;",
            json!([suffix]),
        )
        .await?;
    Ok(count.as_u64().unwrap_or(0))
}

/// Refreshes and registrations this tab itself made, as its resource timing saw them.
async fn own_requests(browser: &Browser) -> Result<u64> {
    let count = browser
        .script(
            "return performance.getEntriesByType('resource')
               .filter(e => e.name.endsWith('/refresh') || e.name.endsWith('/v1/sessions')).length;",
            json!([]),
        )
        .await?;
    Ok(count.as_u64().unwrap_or(0))
}

engines!(two_tabs_show_one_chat_in_step_over_one_connection: Chromium, Firefox, WebKit);
async fn two_tabs_show_one_chat_in_step_over_one_connection(engine: Engine) -> Result<()> {
    two_tabs(engine, system(&[]).await?).await
}

engines!(through_a_proxy_mode_relay_two_tabs_show_one_chat_in_step: Chromium, Firefox, WebKit);
async fn through_a_proxy_mode_relay_two_tabs_show_one_chat_in_step(engine: Engine) -> Result<()> {
    let options = system_tests::harness::Options { proxy: true, ..Default::default() };
    two_tabs(engine, crate::system_with(options).await?).await
}

/// Two tabs of the site in step over one connection, the second costing nothing.
async fn two_tabs(engine: Engine, system: System) -> Result<()> {
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let first = browser.current_tab().await?;
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    connections_become(&system, 1, Duration::from_secs(5)).await?;

    let second = browser.new_tab().await?;
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=composer]").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 5).await?;

    // An agent line reaches the tab that holds the connection, and the other within 1 s.
    admin.agent_says(&chat_id, "hello to every tab").await?;
    browser.switch_to(&first).await?;
    widget.wait_for_text("[data-testid=line]", "hello to every tab", 10).await?;
    browser.switch_to(&second).await?;
    widget.wait_for_text("[data-testid=line]", "hello to every tab", 1).await?;

    // A message sent in the second tab shows in the first within 1 s.
    widget.say("sent from the second tab").await?;
    widget.wait_for_text("[data-testid=line]", "sent from the second tab", 10).await?;
    browser.switch_to(&first).await?;
    widget.wait_for_text("[data-testid=line]", "sent from the second tab", 1).await?;

    // The panel closed in one tab is closed in both, and the unread count follows.
    widget.click("[data-testid=launcher]").await?;
    admin.agent_says(&chat_id, "while the panel is closed").await?;
    widget.wait_for_text("[data-testid=unread]", "1", 10).await?;
    browser.switch_to(&second).await?;
    widget.wait_for_text("[data-testid=unread]", "1", 1).await?;

    // All along, the second tab cost neither a connection nor a refresh or registration.
    assert_eq!(relay_connections(&system).await?, 1);
    browser.switch_to(&second).await?;
    assert_eq!(own_requests(&browser).await?, 0, "the follower asked GMS or the relay");

    // The end, seen by one tab, is shown by both (the panel opened in both first: a click
    // in one tab while another writes can be undone in Firefox and WebKit, whose tabs see
    // each other's writes later).
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=panel]").await?;
    browser.switch_to(&first).await?;
    widget.element("[data-testid=panel]").await?;
    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    widget.wait_for_text("[data-testid=ended]", "", 10).await?;
    browser.switch_to(&second).await?;
    widget.wait_for_text("[data-testid=ended]", "", 1).await?;
    browser.close().await?;
    system.stop().await
}

engines!(when_the_tab_holding_the_connection_closes_another_takes_over: Chromium, Firefox, WebKit);
async fn when_the_tab_holding_the_connection_closes_another_takes_over(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let leader = browser.current_tab().await?;
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(browser.new_tab().await?);
        browser.goto(&system.page_url()).await?;
        widget.element("[data-testid=composer]").await?;
    }
    connections_become(&system, 1, Duration::from_secs(5)).await?;

    browser.switch_to(&leader).await?;
    browser.close_tab().await?;
    browser.switch_to(&others[0]).await?;
    // What the agent says at once reaches the remaining tabs within 2 s: another tab has
    // taken the connection over (nothing else would fetch it: there is no polling).
    admin.agent_says(&chat_id, "right after the first tab closed").await?;
    widget.wait_for_text("[data-testid=line]", "right after the first tab closed", 2).await?;
    // And it is connected: the next line arrives by push, in both tabs.
    admin.agent_says(&chat_id, "by push to the new leader").await?;
    for tab in &others {
        browser.switch_to(tab).await?;
        widget.wait_for_text("[data-testid=line]", "by push to the new leader", 10).await?;
    }
    connections_become(&system, 1, Duration::from_secs(5)).await?;
    let mut asked = Vec::new();
    for tab in &others {
        browser.switch_to(tab).await?;
        asked.push((own(&browser, SESSIONS_PATH).await?, own(&browser, "/refresh").await?));
    }
    asked.sort_unstable();
    // One tab asked nothing; the new leader registered once and caught up: once, or twice
    // when the relay learned of the line between its registration and its subscription.
    let [follower, leader] = asked[..] else { anyhow::bail!("two tabs: {asked:?}") };
    assert_eq!(follower, (0, 0), "the follower asked GMS or the relay: {asked:?}");
    assert_eq!(leader.0, 1, "one registration: {asked:?}");
    assert!((1..=2).contains(&leader.1), "catch-up refreshes: {asked:?}");
    browser.close().await?;
    system.stop().await
}

engines!(a_reload_costs_one_registration_and_one_catch_up_refresh: Chromium, Firefox, WebKit);
async fn a_reload_costs_one_registration_and_one_catch_up_refresh(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let refreshes = || async {
        let stats = admin.stats().await?;
        Ok::<u64, anyhow::Error>(stats["chats"][&chat_id]["refresh"].as_u64().unwrap_or(0))
    };
    let before = refreshes().await?;
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 10).await?;
    browser
        .wait_for(
            "the reload's requests",
            10,
            "return performance.getEntriesByType('resource')
               .filter(e => e.name.endsWith('/refresh') || e.name.endsWith('/v1/sessions'))
               .length >= 2;",
            json!([]),
        )
        .await?;
    // Proving that nothing more comes needs a little time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(own_requests(&browser).await?, 2, "one registration, one refresh");
    // GMS saw the relay's validation of the registration and the widget's catch-up.
    assert_eq!(refreshes().await? - before, 2);
    browser.close().await?;
    system.stop().await
}
