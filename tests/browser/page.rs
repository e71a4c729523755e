//! The widget in its surroundings: page lifecycle triggers, a phone's width, the host
//! page's language.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use shared::widget_config::WidgetConfig;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::Options;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

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
/// on by `later_ms` first (a test's browser never hides its only tab by itself).
pub(crate) async fn set_hidden(browser: &Browser, hidden: bool, later_ms: u64) -> Result<()> {
    browser
        .script(
            "const [hidden, later] = arguments;
             if (!window.__realNow) {
               window.__realNow = window.Date.now; window.__offset = 0;
               window.Date.now = () => window.__realNow() + window.__offset;
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

engines!(a_long_hide_and_coming_back_online_refresh_once_each_and_a_short_hide_does_not:
    Chromium, Firefox, WebKit);
async fn a_long_hide_and_coming_back_online_refresh_once_each_and_a_short_hide_does_not(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
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

engines!(on_a_360_pixel_phone_the_panel_fits_and_the_chat_works: Chromium, Firefox, WebKit);
async fn on_a_360_pixel_phone_the_panel_fits_and_the_chat_works(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_phone_in(engine, 360, 740).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    widget.say("hello from a phone").await?;
    widget.wait_for_text("[data-testid=line]", "hello from a phone", 10).await?;
    widget.at_rest().await?;
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

engines!(the_widget_speaks_the_host_pages_language: Chromium, Firefox, WebKit);
async fn the_widget_speaks_the_host_pages_language(engine: Engine) -> Result<()> {
    let widget_config = WidgetConfig { language: "de-CH".to_owned(), ..WidgetConfig::default() };
    let system = system_with(Options { widget_config, ..Options::sim(&[]) }).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=launcher]", "Chatten Sie mit uns", 10).await?;
    let lang = widget.attribute(".gc-root", "lang").await?;
    assert_eq!(lang, json!("de"));
    widget.click("[data-testid=launcher]").await?;
    widget.click("[data-testid=prechat-submit]").await?;
    widget
        .wait_for_text("[data-testid=prechat-error]", "Bitte nennen Sie uns Ihren Namen", 5)
        .await?;
    browser.type_into(&widget.element("[data-testid=prechat-name]").await?, "Jana").await?;
    widget.click("[data-testid=prechat-submit]").await?;
    widget.wait_for_text("[data-testid=status]", "Verbunden", 10).await?;
    let chat_id = widget.stored_chat_id().await?;
    let admin = SimAdmin::new(&system.gms.url());
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Ann"})).await?;
    widget.wait_for_text("[data-testid=line]", "Ann ist dem Chat beigetreten", 10).await?;
    assert!(widget.lines().await?.iter().all(|l| !l.contains("joined")));
    browser.close().await?;
    system.stop().await
}

/// Where the widget's parts are on screen, as rectangles, for layout assertions.
const RECTS: &str = "const root = document.getElementById('gms-chat-widget').shadowRoot;
    return Object.fromEntries(arguments[0].map(sel => {
      const r = root.querySelector(sel).getBoundingClientRect();
      return [sel, {left: r.left, right: r.right, top: r.top, bottom: r.bottom}];
    }));";

engines!(in_arabic_on_a_360_pixel_phone_the_layout_is_mirrored: Chromium, Firefox, WebKit);
async fn in_arabic_on_a_360_pixel_phone_the_layout_is_mirrored(engine: Engine) -> Result<()> {
    let widget_config = WidgetConfig { language: "ar-EG".to_owned(), ..WidgetConfig::default() };
    let system = system_with(Options { widget_config, ..Options::sim(&[]) }).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_phone_in(engine, 360, 740).await?;
    let widget = WidgetPage::of(&browser);
    let page = system.page_url();
    browser.goto(&page).await?;
    widget.wait_for_text("[data-testid=launcher]", "تحدث معنا", 10).await?;
    assert_eq!(widget.attribute(".gc-root", "dir").await?, json!("rtl"));
    assert_eq!(widget.attribute(".gc-root", "lang").await?, json!("ar"));
    let launcher = browser.script(RECTS, json!([["[data-testid=launcher]"]])).await?;
    let launcher = &launcher["[data-testid=launcher]"];
    assert!(launcher["left"].as_f64() < Some(40.0), "launcher in the left corner: {launcher}");

    widget.submit_prechat(&page, "ليلى").await?;
    widget.wait_for_text("[data-testid=status]", "متصل", 10).await?;
    let chat_id = widget.stored_chat_id().await?;
    widget.say("مرحبا").await?;
    widget.wait_for_text(".gc-mine", "مرحبا", 10).await?;
    admin.agent_says(&chat_id, "أهلًا بك، كيف أساعدك؟").await?;
    widget.wait_for_text(".gc-theirs", "كيف أساعدك", 10).await?;
    widget.at_rest().await?;
    let parts = [
        "[data-testid=panel]",
        ".gc-mine .gc-bubble",
        ".gc-theirs .gc-bubble",
        "[data-testid=end-chat]",
        "[data-testid=send]",
    ];
    let rects = browser.script(RECTS, json!([parts])).await?;
    let at = |part: &str, side: &str| rects[part][side].as_f64().unwrap_or(f64::NAN);
    assert_eq!((at(parts[0], "left"), at(parts[0], "right")), (0.0, 360.0), "full screen");
    assert!(at(parts[1], "left") < 40.0, "the visitor's bubble on the left: {rects}");
    assert!(at(parts[2], "right") > 320.0, "the agent's bubble on the right: {rects}");
    assert!(at(parts[3], "right") > 320.0, "the first action at the right: {rects}");
    assert!(at(parts[4], "left") < 40.0, "Send at the left end: {rects}");
    let composer_direction = "return getComputedStyle(document.getElementById('gms-chat-widget')
        .shadowRoot.querySelector('[data-testid=composer]')).direction;";
    assert_eq!(browser.script(composer_direction, json!([])).await?, json!("rtl"));
    browser.close().await?;
    system.stop().await
}

engines!(in_hebrew_the_widget_speaks_hebrew_from_the_left_corner: Chromium, Firefox, WebKit);
async fn in_hebrew_the_widget_speaks_hebrew_from_the_left_corner(engine: Engine) -> Result<()> {
    let widget_config = WidgetConfig { language: "he".to_owned(), ..WidgetConfig::default() };
    let system = system_with(Options { widget_config, ..Options::sim(&[]) }).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=launcher]", "דברו איתנו", 10).await?;
    assert_eq!(widget.attribute(".gc-root", "dir").await?, json!("rtl"));
    widget.click("[data-testid=launcher]").await?;
    widget.wait_for_text("[data-testid=prechat-submit]", "התחלת צ'אט", 5).await?;
    widget.at_rest().await?;
    let rects = browser.script(RECTS, json!([["[data-testid=panel]"]])).await?;
    let panel = &rects["[data-testid=panel]"];
    assert_eq!(panel["left"].as_f64(), Some(20.0), "the panel in the left corner: {panel}");
    browser.close().await?;
    system.stop().await
}

engines!(on_a_phone_the_on_screen_keyboard_does_not_hide_the_composer: Chromium;
    not Firefox, WebKit: "CDP page scale emulation stands in for the on-screen keyboard");
async fn on_a_phone_the_on_screen_keyboard_does_not_hide_the_composer(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_phone_in(engine, 360, 740).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    // Headless Chromium has no on-screen keyboard; what one does to the page is shrink the
    // visual viewport inside an unchanged layout viewport, as zooming in does.
    browser.cdp("Emulation.setPageScaleFactor", json!({"pageScaleFactor": 2.0})).await?;
    browser
        .wait_for(
            "the visual viewport to shrink",
            5,
            "return visualViewport.height < innerHeight * 0.75;",
            json!([]),
        )
        .await?;
    browser
        .wait_for(
            "the composer and Send inside the visual viewport",
            5,
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             const top = visualViewport.offsetTop, bottom = top + visualViewport.height + 1;
             return ['[data-testid=composer]', '[data-testid=send]'].every(sel => {
               const r = root.querySelector(sel).getBoundingClientRect();
               return r.height > 0 && r.top >= top && r.bottom <= bottom;
             });",
            json!([]),
        )
        .await?;
    browser.close().await?;
    system.stop().await
}
