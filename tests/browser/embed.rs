//! The widget embedded as a customer's site embeds it: one tag on a page of its own origin
//! (the relay and GMS on two others), a strict Content-Security-Policy, the host-page API
//! and events, theming, consent-first storage and a hostile page.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{Options, System};
use system_tests::host_site::{HostSite, Page};
use system_tests::support::{Wait, until_every};
use system_tests::webdriver::{Browser, CONSOLE_HOOK, Engine};
use system_tests::widget_page::WidgetPage;

use crate::system_with;

/// gms-sim and the relay, both letting the site's origin in, and the site.
async fn embedded(sim_args: &[&str]) -> Result<(System, HostSite)> {
    let site = HostSite::start().await?;
    let mut args = vec!["--cors-origin", site.origin.as_str()];
    args.extend(sim_args);
    let options = Options::sim(&args).relay(&["--allowed-origin", &site.origin]);
    Ok((system_with(options).await?, site))
}

/// A page of the site with the one tag (`attributes` added to it) and `head` in its head.
fn page(system: &System, attributes: &str, head: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example shop</title>{head}</head>
<body><header><h1>Example shop</h1></header><main><p>Products.</p></main>
<script src="{relay}/widget.js" async data-gms-url="{gms}" {attributes}></script></body></html>"#,
        relay = system.relay_url,
        gms = system.gms.url(),
    )
}

/// A head whose first script records the console for `Browser::console_log`, then `head`.
fn console_hook(head: &str) -> String {
    format!("<script>{CONSOLE_HOOK}</script>{head}")
}

/// Waits for the loader's `ready` (its launcher drawn, its API answering).
async fn ready(browser: &Browser) -> Result<()> {
    browser
        .wait_for(
            "the loader",
            15,
            "return performance.getEntriesByName('gms-chat:interactive').length > 0;",
            json!([]),
        )
        .await
        .map(drop)
}

/// What the page fetched from `origin`: (URL, bytes transferred).
async fn fetched_from(browser: &Browser, origin: &str) -> Result<Vec<(String, f64)>> {
    let entries = browser
        .script(
            "return performance.getEntriesByType('resource')
               .filter(e => e.name.startsWith(arguments[0])).map(e => [e.name, e.transferSize]);",
            json!([origin]),
        )
        .await?;
    Ok(serde_json::from_value(entries)?)
}

async fn launcher_rect(browser: &Browser) -> Result<Value> {
    browser
        .script(
            "const r = document.getElementById('gms-chat-widget').shadowRoot
               .querySelector('[data-testid=launcher]').getBoundingClientRect();
             return [r.left, r.top, r.width, r.height];",
            json!([]),
        )
        .await
}

engines!(one_tag_on_another_origin_costs_a_small_script_until_opened_then_chats_by_push:
    Chromium, Firefox, WebKit);
async fn one_tag_on_another_origin_costs_a_small_script_until_opened_then_chats_by_push(
    engine: Engine,
) -> Result<()> {
    let (system, site) = embedded(&["--bot", "--bot-delay-ms", "200"]).await?;
    let url = site.put("/", Page { html: page(&system, "", ""), ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    let fetched = fetched_from(&browser, &system.relay_url).await?;
    let names: Vec<&str> = fetched.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [format!("{}/widget.js", system.relay_url)],
        "a page view loads the loader only"
    );
    // Its size as the page measures it: Chromium reports a cross-origin script's size
    // under Timing-Allow-Origin; Firefox and WebKit, as Fetch says for a response the page
    // cannot read (a classic script without `crossorigin`), report none.
    if engine == Engine::Chromium {
        let bytes: f64 = fetched.iter().map(|(_, size)| size).sum();
        assert!(bytes > 0.0 && bytes <= 8.0 * 1024.0, "{bytes} bytes for a page view");
    }

    let closed = launcher_rect(&browser).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=panel]").await?;
    let focused = browser
        .script(
            "const a = document.getElementById('gms-chat-widget').shadowRoot.activeElement;
             return a && a.dataset.testid;",
            json!([]),
        )
        .await?;
    assert_eq!(focused, json!("launcher"), "the focus stays on the launcher after the handover");
    let wasm = fetched_from(&browser, &system.relay_url).await?;
    assert!(wasm.iter().any(|(name, _)| name.ends_with("_bg.wasm")), "{wasm:?}");
    browser.script("GmsChat.close();", json!([])).await?;
    browser
        .wait_for("the panel to close", 5, "return !document.getElementById('gms-chat-widget').shadowRoot.querySelector('[data-testid=panel]');", json!([]))
        .await?;
    assert_eq!(
        launcher_rect(&browser).await?,
        closed,
        "the widget's launcher is where the loader's was"
    );

    widget.click("[data-testid=launcher]").await?;
    widget.fill_prechat("Jane").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 20).await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    widget.say("across origins").await?;
    widget
        .wait_for_text("[data-testid=line]", "You said: \u{201c}across origins\u{201d}", 10)
        .await?;
    browser.close().await?;
    system.stop().await
}

engines!(a_visitor_who_never_chats_leaves_nothing_in_the_browser: Chromium, Firefox, WebKit);
async fn a_visitor_who_never_chats_leaves_nothing_in_the_browser(engine: Engine) -> Result<()> {
    let (system, site) = embedded(&[]).await?;
    let url = site.put("/", Page { html: page(&system, "", ""), ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=prechat-name]").await?;
    widget.click("[data-testid=close]").await?;
    browser.script("GmsChat.toggle(); GmsChat.toggle();", json!([])).await?;
    browser.goto(&url).await?;
    ready(&browser).await?;
    let stored = browser
        .script(
            "return indexedDB.databases().then(dbs => ({local: localStorage.length,
               session: sessionStorage.length, cookies: document.cookie, databases: dbs.length}));",
            json!([]),
        )
        .await?;
    assert_eq!(stored, json!({"local": 0, "session": 0, "cookies": "", "databases": 0}));
    let names: Vec<String> =
        fetched_from(&browser, &system.relay_url).await?.into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names.len(),
        1,
        "without a chat the next page view loads the loader only: {names:?}"
    );
    browser.close().await?;
    system.stop().await
}

engines!(a_strict_content_security_policy_gets_a_working_widget_and_no_violation:
    Chromium, Firefox, WebKit);
async fn a_strict_content_security_policy_gets_a_working_widget_and_no_violation(
    engine: Engine,
) -> Result<()> {
    let (system, site) = embedded(&["--bot", "--bot-delay-ms", "100"]).await?;
    let relay = &system.relay_url;
    let csp = format!(
        "default-src 'self'; script-src 'self' {relay} 'wasm-unsafe-eval'; connect-src {relay} {ws} {gms}; style-src 'self'; img-src 'self' data:",
        ws = relay.replace("http://", "ws://"),
        gms = system.gms.url(),
    );
    // The page's first script, from its own origin as the policy allows, records every
    // violation from the start.
    let recorder = "window.violations = [];
        document.addEventListener('securitypolicyviolation',
          e => window.violations[window.violations.length] = e.violatedDirective + ' ' + e.blockedURI);";
    let javascript = vec![("content-type".to_owned(), "text/javascript".to_owned())];
    site.put("/violations.js", Page { html: recorder.to_owned(), headers: javascript });
    let html = page(&system, "", r#"<script src="/violations.js"></script>"#);
    let url = site.put("/", Page { html, headers: vec![("content-security-policy".into(), csp)] });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.fill_prechat("Jane").await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    widget.say("under a strict policy").await?;
    widget.wait_for_text("[data-testid=line]", "under a strict policy\u{201d}", 10).await?;
    let violations = browser.script("return window.violations;", json!([])).await?;
    assert_eq!(violations, json!([]));
    // Chromium's driver hands over the browser's own console, which names what the policy
    // refused too; the other engines' consoles are out of WebDriver's reach, and the events
    // above are their check.
    if engine == Engine::Chromium {
        let console = browser.console_log().await?;
        let refused: Vec<_> = console
            .iter()
            .filter(|(_, m)| m.contains("Content Security Policy") || m.contains("Refused"))
            .collect();
        assert!(refused.is_empty(), "{refused:?}");
    }
    browser.close().await?;
    system.stop().await
}

/// The README's two-line stub, then a page script that listens to every event and sets
/// user data before the loader has run.
const STUB_AND_LISTENERS: &str = r"<script>
window.GmsChat=window.GmsChat||{q:[]};['open','close','toggle','on','off','setUserData','forget'].forEach(function(m){GmsChat[m]=GmsChat[m]||function(){GmsChat.q.push([m,arguments])}});
</script><script>
window.heard = [];
['ready','open','close','started','message','unread','ended'].forEach(function (name) {
  GmsChat.on(name, function (detail) { heard.push([name, detail === undefined ? null : detail]); });
});
window.unheard = 0;
window.dropped = function () { unheard++; };
GmsChat.on('message', dropped);
GmsChat.off('message', dropped);
GmsChat.setUserData({plan: 'gold', visits: 3});
</script>";

/// Waits up to 5 s until gms-sim's view of the chat satisfies `done`.
async fn sim_chat_becomes(
    admin: &SimAdmin,
    chat_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<()> {
    let within = std::time::Duration::from_secs(5);
    until_every(what, within, std::time::Duration::from_millis(50), async || {
        let chat = admin.get(&format!("/sim/chats/{chat_id}")).await?;
        Ok(Wait::done_if(done(&chat), chat))
    })
    .await
}

async fn heard(browser: &Browser) -> Result<Vec<Value>> {
    let value = browser.script("return window.heard.map(h => h[0]);", json!([])).await?;
    Ok(value.as_array().cloned().unwrap_or_default())
}

async fn wait_heard(browser: &Browser, name: &str, count: usize) -> Result<()> {
    browser
        .wait_for(
            &format!("{count} {name} event(s)"),
            10,
            "return window.heard.filter(h => h[0] === arguments[0]).length >= arguments[1];",
            json!([name, count]),
        )
        .await
        .map(drop)
}

engines!(the_host_page_api_drives_the_widget_and_hears_its_events: Chromium, Firefox, WebKit);
async fn the_host_page_api_drives_the_widget_and_hears_its_events(engine: Engine) -> Result<()> {
    let (system, site) = embedded(&["--bot", "--bot-delay-ms", "100"]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let url =
        site.put("/", Page { html: page(&system, "", STUB_AND_LISTENERS), ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    wait_heard(&browser, "ready", 1).await?;
    browser.script("GmsChat.open();", json!([])).await?;
    widget.element("[data-testid=panel]").await?;
    wait_heard(&browser, "open", 1).await?;
    browser.script("GmsChat.close();", json!([])).await?;
    wait_heard(&browser, "close", 1).await?;
    browser.script("GmsChat.toggle();", json!([])).await?;
    wait_heard(&browser, "open", 2).await?;

    widget.fill_prechat("Jane").await?;
    wait_heard(&browser, "started", 1).await?;
    wait_heard(&browser, "message", 1).await?;
    let greeting =
        browser.script("return window.heard.find(h => h[0] === 'message')[1];", json!([])).await?;
    assert!(greeting["text"].as_str().is_some_and(|t| t.contains("I'm Ava")), "{greeting}");
    assert_eq!(greeting["from"], json!("Ava"));
    assert!(greeting["time"].as_f64().is_some(), "{greeting}");
    let chat_id = widget.stored_chat_id().await?;
    let detail = admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(detail["userData"]["plan"], json!("gold"), "{detail}");
    assert_eq!(detail["userData"]["visits"], json!("3"));

    browser.script("GmsChat.setUserData({page: '/checkout'});", json!([])).await?;
    sim_chat_becomes(&admin, &chat_id, "sent with updateData", |chat| {
        chat["userData"]["page"] == json!("/checkout")
    })
    .await?;

    browser.script("GmsChat.close();", json!([])).await?;
    wait_heard(&browser, "close", 2).await?;
    admin.agent_says(&chat_id, "are you still there?").await?;
    wait_heard(&browser, "message", 2).await?;
    browser
        .wait_for(
            "one unread",
            10,
            "return window.heard.some(h => h[0] === 'unread' && h[1] === 1);",
            json!([]),
        )
        .await?;
    assert_eq!(browser.script("return window.unheard;", json!([])).await?, json!(0), "off() works");

    browser.script("GmsChat.forget();", json!([])).await?;
    wait_heard(&browser, "ended", 1).await?;
    let keys = browser.script("return localStorage.length;", json!([])).await?;
    assert_eq!(keys, json!(0), "forget() wipes what the widget stored");
    sim_chat_becomes(&admin, &chat_id, "forget() ends the chat in GMS", |chat| {
        chat["ended"] == json!(true)
    })
    .await?;
    let order = heard(&browser).await?;
    assert_eq!(order.first(), Some(&json!("ready")), "{order:?}");
    browser.close().await?;
    system.stop().await
}

engines!(calls_made_while_the_chat_loads_end_where_they_would_have: Chromium, Firefox, WebKit);
async fn calls_made_while_the_chat_loads_end_where_they_would_have(engine: Engine) -> Result<()> {
    let (system, site) = embedded(&[]).await?;
    let url =
        site.put("/", Page { html: page(&system, "", STUB_AND_LISTENERS), ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    wait_heard(&browser, "ready", 1).await?;
    // All before the wasm can arrive: open, then closed again.
    browser
        .script("GmsChat.toggle(); GmsChat.toggle(); GmsChat.open(); GmsChat.close();", json!([]))
        .await?;
    browser
        .wait_for(
            "the chat to load",
            15,
            "return performance.getEntriesByName('gms-chat:handover').length > 0;",
            json!([]),
        )
        .await?;
    let state = browser
        .script(
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             return [!!root.querySelector('[data-testid=panel]'), window.heard.map(h => h[0])];",
            json!([]),
        )
        .await?;
    assert_eq!(state, json!([false, ["ready"]]), "it arrives closed, having opened for no one");
    browser.script("GmsChat.toggle();", json!([])).await?;
    widget.element("[data-testid=panel]").await?;
    browser.close().await?;
    system.stop().await
}

engines!(the_site_themes_the_widget_dark_with_its_own_accent_and_corner: Chromium, Firefox, WebKit);
async fn the_site_themes_the_widget_dark_with_its_own_accent_and_corner(
    engine: Engine,
) -> Result<()> {
    let (system, site) = embedded(&[]).await?;
    let style =
        "<style>#gms-chat-widget { --gms-chat-accent: rgb(0, 90, 60); --gms-chat-radius: 4px;
        --gms-chat-font: monospace; --gms-chat-launcher-size: 64px; }</style>";
    let html = page(&system, r#"data-theme="dark" data-position="left""#, style);
    let url = site.put("/", Page { html, ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    let computed = "const root = document.getElementById('gms-chat-widget').shadowRoot;
        const style = s => getComputedStyle(root.querySelector(s));
        const panel = root.querySelector('[data-testid=panel]');
        const launcher = root.querySelector('[data-testid=launcher]').getBoundingClientRect();
        return {launcher: style('[data-testid=launcher]').backgroundColor,
                font: style('[data-testid=launcher]').fontFamily, height: launcher.height,
                left: launcher.left,
                panel: panel && style('[data-testid=panel]').backgroundColor,
                radius: panel && style('[data-testid=panel]').borderTopLeftRadius};";
    let before = browser.script(computed, json!([])).await?;
    assert_eq!(before["launcher"], json!("rgb(0, 90, 60)"), "the loader's launcher is themed");
    assert_eq!((&before["font"], &before["height"]), (&json!("monospace"), &json!(64)), "{before}");
    assert!(before["left"].as_f64().is_some_and(|l| l < 100.0), "left corner: {before}");
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=panel]").await?;
    let open = browser.script(computed, json!([])).await?;
    assert_eq!(open["launcher"], json!("rgb(0, 90, 60)"));
    assert_eq!(open["panel"], json!("rgb(27, 30, 37)"), "dark");
    assert_eq!(open["radius"], json!("4px"));
    crate::a11y::no_violations(&browser, "dark theme, custom accent").await?;

    browser.close().await?;

    // `auto` follows the visitor's system setting.
    let html = page(&system, r#"data-theme="auto""#, "");
    let auto = site.put("/auto", Page { html, ..Page::default() });
    let browser = Browser::start_dark_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&auto).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=panel]").await?;
    let dark = browser.script(computed, json!([])).await?;
    assert_eq!(dark["panel"], json!("rgb(27, 30, 37)"), "auto in a dark system");
    crate::a11y::no_violations(&browser, "auto theme, dark system").await?;
    browser.close().await?;
    system.stop().await
}

engines!(invalid_settings_get_one_warning_each_and_the_defaults: Chromium, Firefox, WebKit);
async fn invalid_settings_get_one_warning_each_and_the_defaults(engine: Engine) -> Result<()> {
    let (system, site) = embedded(&[]).await?;
    // A header value that is not text: the key is ignored, and its values (credentials)
    // stay out of the console.
    let attributes = r#"data-theme="purple" data-language="xx" data-frobnicate="1" data-idle-refresh-seconds="soon" data-relay-url="ftp://x" data-gms-headers='{"apikey":"s3cret","n":1}'"#;
    let html = page(&system, attributes, &console_hook(""));
    let url = site.put("/", Page { html, ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    let warnings: Vec<String> = browser
        .console_log()
        .await?
        .into_iter()
        .filter(|(_, m)| m.contains("gms-chat:"))
        .map(|(_, m)| m)
        .collect();
    for name in [
        "data-theme",
        "data-language",
        "data-frobnicate",
        "data-idle-refresh-seconds",
        "data-relay-url",
        "data-gms-headers",
    ] {
        let count = warnings.iter().filter(|w| w.contains(name)).count();
        assert_eq!(count, 1, "{name} in {warnings:?}");
    }
    assert_eq!(warnings.len(), 6, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("invalid data-gms-headers")), "{warnings:?}");
    assert!(warnings.iter().all(|w| !w.contains("s3cret")), "{warnings:?}");
    let root = browser
        .script(
            "const r = document.getElementById('gms-chat-widget').shadowRoot.querySelector('.gc-root');
             return [r.getAttribute('data-theme'), r.getAttribute('lang')];",
            json!([]),
        )
        .await?;
    assert_eq!(root, json!(["light", "en"]));
    // The invalid relay URL fell back to the loader's own origin: the chat still opens.
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=prechat-name]").await?;
    browser.close().await?;
    system.stop().await
}

/// User content a sanitizer let through: a comment holding an element with the
/// configuration's id, naming another relay and title, and an image named to stand in for
/// `document.currentScript` (DOM clobbering) with a script address and settings of its own.
const COMMENT: &str = r#"<div class="comment"><p>Great shop!</p>
<div id="gms-chat-config">{"relayUrl":"http://127.0.0.1:9","title":"Pwned"}</div>
<img name="currentScript" alt="" src="http://127.0.0.1:9/widget.js" data-relay-url="http://127.0.0.1:9" data-title="Pwned"></div>"#;

engines!(configuration_comes_only_from_the_sites_json_script_and_the_tag:
    Chromium, Firefox, WebKit);
async fn configuration_comes_only_from_the_sites_json_script_and_the_tag(
    engine: Engine,
) -> Result<()> {
    let (system, site) = embedded(&[]).await?;
    // The comment comes first in the page, the site's own configuration after it.
    let html = page(&system, "", &console_hook("")).replace(
        "<main>",
        &format!(
            r#"<main>{COMMENT}<script type="application/json" id="gms-chat-config">{{"title":"Shop help"}}</script>"#
        ),
    );
    let url = site.put("/", Page { html, ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.fill_prechat("Jane").await?;
    // The chat's tokens went to the tag's own relay, and the site's title is shown.
    widget.wait_for_text("[data-testid=status]", "Connected", 20).await?;
    assert_eq!(widget.texts(".gc-panel h2").await?, ["Shop help"]);
    let warnings: Vec<String> = browser
        .console_log()
        .await?
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("gms-chat-config"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    browser.close().await?;
    system.stop().await
}

/// Global CSS that would wreck a naive widget, a header claiming the highest z-index over
/// the whole page, Array methods replaced with wrong ones, and a `window.GmsChat` of the
/// page's own. All Array methods are broken but `push` and `some`, which the drivers and
/// the test's own scripts need, and in WebKit `join`, `map` and `includes`, with which
/// WebKitWebDriver runs every script in the page.
fn hostile(engine: Engine) -> String {
    let spared: &[&str] = match engine {
        Engine::WebKit => &["join", "map", "includes"],
        Engine::Chromium | Engine::Firefox => &[],
    };
    let undefined = "function () { return undefined; }";
    let broken = [
        ("forEach", "function () {}"),
        ("indexOf", "function () { return -1; }"),
        ("includes", "function () { return false; }"),
        ("join", "function () { return ''; }"),
        ("concat", "function () { return []; }"),
        ("map", undefined),
        ("filter", undefined),
        ("slice", undefined),
        ("splice", undefined),
        ("reverse", undefined),
        ("sort", undefined),
        ("find", undefined),
        ("every", undefined),
        ("reduce", undefined),
    ];
    let overrides: String = broken
        .iter()
        .filter(|(name, _)| !spared.contains(name))
        .map(|(name, body)| format!("Array.prototype.{name} = {body};\n"))
        .collect();
    format!(
        r"<style>
* {{ box-sizing: content-box !important; font-size: 30px !important; }}
div {{ display: none; }}
header {{ position: fixed; inset: 0; z-index: 2147483647; background: rgba(255, 255, 255, .4); }}
</style><script>
window.GmsChat = {{ mine: true }};
Object.prototype.polluted = 'yes';
Array.prototype.toJSON = function () {{ return 'hostile'; }};
{overrides}</script>"
    )
}

engines!(a_hostile_page_cannot_break_the_widget: Chromium, Firefox, WebKit);
async fn a_hostile_page_cannot_break_the_widget(engine: Engine) -> Result<()> {
    let (system, site) = embedded(&["--bot", "--bot-delay-ms", "100"]).await?;
    let html = page(&system, "", &console_hook(&hostile(engine)));
    let url = site.put("/", Page { html, ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&url).await?;
    ready(&browser).await?;
    let check = "const host = document.getElementById('gms-chat-widget');
        const launcher = host.shadowRoot.querySelector('[data-testid=launcher]');
        const r = launcher.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === host;
        // A string: the drivers' own serialising needs the Array methods this page broke.
        return `${top} ${getComputedStyle(launcher).fontSize} ${getComputedStyle(host).display} ${window.GmsChat.mine === true}`;";
    let state = browser.script(check, json!([])).await?;
    // On top of the page's header, its own font size, shown, and the page's GmsChat kept.
    assert_eq!(state, json!("true 15px block true"));
    widget.click("[data-testid=launcher]").await?;
    widget.fill_prechat("Jane").await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    widget.say("still works").await?;
    widget.wait_for_text("[data-testid=line]", "still works\u{201d}", 10).await?;
    let state = browser.script(check, json!([])).await?;
    assert_eq!(state, json!("true 15px block true"), "with the chat running");
    let warned =
        browser.console_log().await?.into_iter().any(|(_, m)| m.contains("window.GmsChat"));
    assert!(warned, "the page is told its GmsChat was left alone");
    let stored =
        widget.stored_chat_id().await.context("the chat is kept despite Array.prototype.toJSON")?;
    assert!(!stored.is_empty());
    browser.close().await?;
    system.stop().await
}

engines!(the_tags_gms_headers_reach_a_gateway_in_front_of_gms_across_origins:
    Chromium, Firefox, WebKit);
/// The tag's `data-gms-headers` (JSON in an attribute) reaches a gateway in front of GMS,
/// on another origin than the page's: the preflight the header causes is answered.
async fn the_tags_gms_headers_reach_a_gateway_in_front_of_gms_across_origins(
    engine: Engine,
) -> Result<()> {
    let site = HostSite::start().await?;
    let sim = ["--cors-origin", site.origin.as_str(), "--bot", "--bot-delay-ms", "200"];
    let gateway = ["--require-header", "apikey: k-tag"];
    let options = Options::sim(&[&sim[..], &gateway[..]].concat()).relay(&[
        "--allowed-origin",
        &site.origin,
        "--gms-header",
        "apikey: k-tag",
    ]);
    let system = system_with(options).await?;
    let html = page(&system, r#"data-gms-headers='{"apikey": "k-tag"}'"#, "");
    let url = site.put("/", Page { html, ..Page::default() });
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&url, "Jane").await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    browser.close().await?;
    system.stop().await
}
