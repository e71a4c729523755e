//! The widget in its surroundings: page lifecycle triggers, a phone's width, the host
//! page's language.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use shared::widget_config::WidgetConfig;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::Options;
use system_tests::webdriver::Browser;

use crate::widget::{lines, say, start_chat};
use crate::{system, system_with};

/// Refresh requests the widget itself made, as the browser's resource timing saw them
/// (the relay's acknowledgements go to GMS from the server, so they are not counted).
const WIDGET_REFRESHES: &str = "return performance.getEntriesByType('resource')
    .filter(e => e.name.endsWith('/refresh')).length;";

async fn widget_refreshes(browser: &Browser) -> Result<u64> {
    Ok(browser.script(WIDGET_REFRESHES, json!([])).await?.as_u64().unwrap_or(0))
}

async fn wait_for_refreshes(browser: &Browser, count: u64) -> Result<()> {
    let body = format!("return (() => {{ {WIDGET_REFRESHES} }})() >= arguments[0];");
    browser.wait_for(&format!("{count} widget refreshes"), 10, &body, json!([count])).await?;
    Ok(())
}

/// Makes the page hidden or visible as a tab switch would, with the page's clock moved
/// on by `later_ms` first (headless Chromium never hides its only tab by itself).
pub(crate) async fn set_hidden(browser: &Browser, hidden: bool, later_ms: u64) -> Result<()> {
    browser
        .script(
            "const [hidden, later] = arguments;
             if (!window.__realNow) {
               window.__realNow = Date.now; window.__offset = 0;
               Date.now = () => window.__realNow() + window.__offset;
             }
             window.__offset += later;
             Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
             Object.defineProperty(document, 'visibilityState',
               {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
             document.dispatchEvent(new Event('visibilitychange', {bubbles: true}));",
            json!([hidden, later_ms]),
        )
        .await
        .map(drop)
}

#[tokio::test]
async fn a_long_hide_and_coming_back_online_refresh_once_each_and_a_short_hide_does_not()
-> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start().await?;
    start_chat(&browser, &system, "Jane").await?;
    // A new chat needs no catch-up: the relay's position says whether anything was missed.
    let base = widget_refreshes(&browser).await?;

    set_hidden(&browser, true, 0).await?;
    set_hidden(&browser, false, 5_000).await?;
    browser.script("window.dispatchEvent(new Event('online'));", json!([])).await?;
    wait_for_refreshes(&browser, base + 1).await?;
    set_hidden(&browser, true, 0).await?;
    set_hidden(&browser, false, 61_000).await?;
    wait_for_refreshes(&browser, base + 2).await?;

    // Proving that nothing else comes needs a little time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(widget_refreshes(&browser).await?, base + 2, "the short hide refreshed");
    browser.close().await?;
    system.stop().await
}

#[tokio::test]
async fn on_a_360_pixel_phone_the_panel_fits_and_the_chat_works() -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_phone(360, 740).await?;
    start_chat(&browser, &system, "Jane").await?;
    say(&browser, "hello from a phone").await?;
    browser.wait_for_text("[data-testid=line]", "hello from a phone", 10).await?;
    let layout = browser
        .script(
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             const rect = s => root.querySelector(s).getBoundingClientRect();
             const fits = r => r.left >= 0 && r.right <= innerWidth && r.top >= 0
               && r.bottom <= innerHeight && r.width > 0;
             return {
               width: innerWidth,
               pageScrollsSideways: document.documentElement.scrollWidth > innerWidth,
               panel: fits(rect('[data-testid=panel]')),
               composer: fits(rect('[data-testid=composer]')),
               send: fits(rect('[data-testid=send]')),
               attach: fits(rect('[data-testid=attach]')),
               close: fits(rect('[data-testid=close]')),
               launcherHidden: rect('[data-testid=launcher]').width === 0,
               transcriptScrollsSideways: root.querySelector('[data-testid=transcript]').scrollWidth
                 > root.querySelector('[data-testid=transcript]').clientWidth,
             };",
            json!([]),
        )
        .await?;
    assert_eq!(
        layout,
        json!({"width": 360, "pageScrollsSideways": false, "panel": true, "composer": true,
               "send": true, "attach": true, "close": true, "launcherHidden": true,
               "transcriptScrollsSideways": false}),
    );
    browser.close().await?;
    system.stop().await
}

#[tokio::test]
async fn the_widget_speaks_the_host_pages_language() -> Result<()> {
    let widget_config = WidgetConfig { language: "de-CH".to_owned(), ..WidgetConfig::default() };
    let system = system_with(Options { widget_config, ..Options::sim(&[]) }).await?;
    let browser = Browser::start().await?;
    browser.goto(&format!("{}/", system.relay_url)).await?;
    browser.wait_for_text("[data-testid=launcher]", "Chatten Sie mit uns", 10).await?;
    let lang = browser.widget_attribute(".gc-root", "lang").await?;
    assert_eq!(lang, json!("de"));
    browser.click(&browser.widget_element("[data-testid=launcher]").await?).await?;
    browser.click(&browser.widget_element("[data-testid=prechat-submit]").await?).await?;
    browser
        .wait_for_text("[data-testid=prechat-error]", "Bitte nennen Sie uns Ihren Namen", 5)
        .await?;
    browser.type_into(&browser.widget_element("[data-testid=prechat-name]").await?, "Jana").await?;
    browser.click(&browser.widget_element("[data-testid=prechat-submit]").await?).await?;
    browser.wait_for_text("[data-testid=status]", "Verbunden", 10).await?;
    let chat_id = browser.stored_chat_id().await?;
    let admin = SimAdmin::new(&system.gms.url());
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Ann"})).await?;
    browser.wait_for_text("[data-testid=line]", "Ann ist dem Chat beigetreten", 10).await?;
    assert!(lines(&browser).await?.iter().all(|l| !l.contains("joined")));
    browser.close().await?;
    system.stop().await
}
