//! What each engine offers of the browser APIs the widget uses, and the widget where one
//! is missing: README.md's table under "Browsers" is what `the_engine_has_the_apis_we_know_of`
//! checks, so a browser update that changes it fails here first.

use anyhow::Result;
use serde_json::{Value, json};
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{Options, System};
use system_tests::host_site::{HostSite, Page};
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use crate::system_with;

/// Whether the page has each API the widget uses, by name.
const PROBE: &str = "
let constructable = false;
try {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync('a { color: red }');
  constructable = 'adoptedStyleSheets' in ShadowRoot.prototype;
} catch (e) { /* none */ }
return {
  webLocks: !!(navigator.locks && navigator.locks.request),
  serviceWorker: 'serviceWorker' in navigator,
  push: 'PushManager' in window,
  notifications: 'Notification' in window,
  visualViewport: 'visualViewport' in window,
  constructableStylesheets: constructable,
  lightDark: CSS.supports('color', 'light-dark(red, blue)'),
};";

/// What each engine has, as README.md's table says.
fn expected(engine: Engine) -> Value {
    let push = engine != Engine::WebKit;
    json!({
        "webLocks": true, "serviceWorker": true, "push": push, "notifications": true,
        "visualViewport": true, "constructableStylesheets": true, "lightDark": true,
    })
}

engines!(the_engine_has_the_apis_we_know_of: Chromium, Firefox, WebKit);
async fn the_engine_has_the_apis_we_know_of(engine: Engine) -> Result<()> {
    let system = crate::system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    browser.goto(&system.page_url()).await?;
    let found = browser.script(PROBE, json!([])).await?;
    assert_eq!(found, expected(engine), "{engine}: update README.md's Browsers table");
    // The notification permission: WebDriver grants it in Chromium and Firefox; WebKit's
    // driver cannot, and MiniBrowser under automation refuses every request.
    let granted = browser.set_permission("notifications", "granted").await;
    let permission = browser.script("return Notification.permission;", json!([])).await?;
    if engine == Engine::WebKit {
        assert!(granted.is_err(), "WebKitWebDriver set a permission: update README.md");
        let asked = browser.script("return Notification.requestPermission();", json!([])).await?;
        assert_eq!((permission, asked), (json!("default"), json!("denied")), "{engine}");
    } else {
        granted?;
        assert_eq!(permission, json!("granted"), "{engine}");
    }
    browser.close().await?;
    system.stop().await
}

engines!(without_push_no_notifications_are_offered_and_the_chat_works: WebKit;
    not Chromium, Firefox: "they have the Push API: web_push.rs");
/// A site that offers notifications (`data-service-worker`) in an engine without the Push
/// API: the panel offers none, and the chat works as anywhere.
async fn without_push_no_notifications_are_offered_and_the_chat_works(
    engine: Engine,
) -> Result<()> {
    let site = HostSite::start().await?;
    let system = system_for(&site).await?;
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Help</title></head>
<body><h1>Help</h1><script src="{relay}/widget.js" async data-gms-url="{gms}"
  data-service-worker="/gms-chat-sw.js"></script></body></html>"#,
        relay = system.relay_url,
        gms = system.gms.url(),
    );
    let page = site.put("/help", Page { html, headers: Vec::new() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&page, "Jane").await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    let offered = widget.texts(".gc-notify:not([hidden]) [data-testid=notify]").await?;
    assert!(offered.is_empty(), "{engine} offers notifications without Push: {offered:?}");
    SimAdmin::new(&system.gms.url()).agent_says(&chat_id, "by push all the same").await?;
    widget.wait_for_text("[data-testid=line]", "by push all the same", 10).await?;
    browser.close().await?;
    system.stop().await
}

/// A page like any site's that takes an API away before the widget's tag runs, as an engine
/// without it would be; answers its URL.
async fn page_without(site: &HostSite, system: &System, removal: &str) -> String {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Help</title></head>
<body><h1>Help</h1><script>{removal}</script>
<script src="{relay}/widget.js" async data-gms-url="{gms}"></script></body></html>"#,
        relay = system.relay_url,
        gms = system.gms.url(),
    );
    site.put("/help", Page { html, headers: Vec::new() })
}

/// A system whose relay and gms-sim take the host site's pages, with the bot answering.
async fn system_for(site: &HostSite) -> Result<System> {
    let options = Options::sim(&["--cors-origin", &site.origin, "--bot", "--bot-delay-ms", "100"])
        .relay(&["--allowed-origin", &site.origin]);
    system_with(options).await
}

engines!(without_web_locks_every_tab_leads_and_chats: Chromium, Firefox, WebKit);
/// Without Web Locks (Safari before 15.4) no tab can be the one leader: each tab holds its
/// own connection, and an agent's line reaches both.
async fn without_web_locks_every_tab_leads_and_chats(engine: Engine) -> Result<()> {
    let site = HostSite::start().await?;
    let system = system_for(&site).await?;
    let removal = "delete Navigator.prototype.locks;";
    let page = page_without(&site, &system, removal).await;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let first = browser.current_tab().await?;
    let chat_id = widget.start_chat(&page, "Jane").await?;
    let locks = browser.script("return typeof navigator.locks;", json!([])).await?;
    assert_eq!(locks, json!("undefined"), "{engine}: the page took Web Locks away");
    browser.new_tab().await?;
    browser.goto(&page).await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 10).await?;
    // Each tab holds a connection of its own.
    crate::tabs::connections_become(&system, 2, std::time::Duration::from_secs(10)).await?;
    SimAdmin::new(&system.gms.url()).agent_says(&chat_id, "to each tab").await?;
    widget.wait_for_text("[data-testid=line]", "to each tab", 10).await?;
    browser.switch_to(&first).await?;
    widget.wait_for_text("[data-testid=line]", "to each tab", 10).await?;
    widget.say("still mine to send").await?;
    widget.wait_for_text("[data-testid=line]", "still mine to send", 10).await?;
    browser.close().await?;
    system.stop().await
}

engines!(without_visual_viewport_the_phone_panel_still_chats: Firefox, WebKit;
    not Chromium: "chromedriver's own clicks read the visualViewport this test takes away");
/// Without `visualViewport` (no engine the widget supports lacks it today, but a
/// WebView may) the phone-sized panel follows the layout viewport and chats as anywhere.
async fn without_visual_viewport_the_phone_panel_still_chats(engine: Engine) -> Result<()> {
    let site = HostSite::start().await?;
    let system = system_for(&site).await?;
    let removal = "delete window.visualViewport; delete Window.prototype.visualViewport;";
    let page = page_without(&site, &system, removal).await;
    let browser = Browser::start_phone_in(engine, 360, 740).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&page, "Jane").await?;
    let gone = browser.script("return 'visualViewport' in window;", json!([])).await?;
    assert_eq!(gone, json!(false), "{engine}: the page took visualViewport away");
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    SimAdmin::new(&system.gms.url()).agent_says(&chat_id, "on a small screen").await?;
    widget.wait_for_text("[data-testid=line]", "on a small screen", 10).await?;
    // The panel, at rest, stays inside the phone's screen.
    widget.at_rest().await?;
    let panel = browser
        .script(
            "const r = document.getElementById('gms-chat-widget').shadowRoot
               .querySelector('.gc-panel').getBoundingClientRect();
             return [r.width > 0, r.top >= 0, Math.round(r.bottom) <= innerHeight];",
            json!([]),
        )
        .await?;
    assert_eq!(panel, json!([true, true, true]), "{engine}: the panel inside the screen");
    browser.close().await?;
    system.stop().await
}

engines!(without_constructable_stylesheets_the_widget_is_styled: Chromium, Firefox, WebKit);
/// Without constructable stylesheets (Safari before 16.4) the loader puts its styles in a
/// style element of the shadow root: the launcher and the panel look as anywhere.
async fn without_constructable_stylesheets_the_widget_is_styled(engine: Engine) -> Result<()> {
    let site = HostSite::start().await?;
    let system = system_for(&site).await?;
    let removal = "delete ShadowRoot.prototype.adoptedStyleSheets;";
    let page = page_without(&site, &system, removal).await;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&page).await?;
    widget.element("[data-testid=launcher]").await?;
    let styled = "const shadow = document.getElementById('gms-chat-widget').shadowRoot;
         const launcher = getComputedStyle(shadow.querySelector('.gc-launcher'));
         return ['adoptedStyleSheets' in shadow, shadow.querySelectorAll('style').length,
                 launcher.position, launcher.borderTopLeftRadius];";
    let found = browser.script(styled, json!([])).await?;
    assert_eq!(found, json!([false, 1, "fixed", "999px"]), "{engine}");
    widget.start_chat(&page, "Jane").await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    let panel = browser
        .script(
            "return getComputedStyle(document.getElementById('gms-chat-widget').shadowRoot
               .querySelector('.gc-panel')).position;",
            json!([]),
        )
        .await?;
    assert_eq!(panel, json!("fixed"), "{engine}: the panel is styled");
    browser.close().await?;
    system.stop().await
}
