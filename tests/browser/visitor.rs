//! What a new visitor meets: readable buttons, a panel a phone can get out of the way, a
//! word after starting, links and times in messages, an honest connection state and the
//! visitor's own leaving in the transcript.

use anyhow::Result;
use serde_json::json;
use system_tests::gms_client::SimAdmin;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use crate::system;

/// WCAG contrast ratios of each element's text against its own background (or, for
/// transparent links, the panel's white), computed in the page.
const CONTRAST: &str = "
const root = document.getElementById('gms-chat-widget').shadowRoot;
const rgb = s => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
  .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
const ratio = sel => {
  const el = root.querySelector(sel); if (!el) return null;
  const style = getComputedStyle(el);
  let bg = rgb(style.backgroundColor); if (bg.length === 4 && bg[3] === 0) bg = [255, 255, 255];
  const [a, b] = [lum(rgb(style.color)), lum(bg)].sort((x, y) => y - x);
  return Math.round((a + 0.05) / (b + 0.05) * 10) / 10;
};
return Object.fromEntries(arguments[0].map(sel => [sel, ratio(sel)]));";

async fn contrast(browser: &Browser, selectors: &[&str]) -> Result<Vec<(String, f64)>> {
    let ratios = browser.script(CONTRAST, json!([selectors])).await?;
    Ok(selectors.iter().map(|s| ((*s).to_owned(), ratios[*s].as_f64().unwrap_or(0.0))).collect())
}

fn assert_readable(ratios: &[(String, f64)]) {
    for (selector, ratio) in ratios {
        assert!(*ratio >= 4.5, "{selector} has contrast {ratio}:1, below WCAG AA's 4.5:1");
    }
}

engines!(buttons_and_links_are_readable: Chromium, Firefox, WebKit);
async fn buttons_and_links_are_readable(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=launcher]").await?;
    assert_readable(&contrast(&browser, &["[data-testid=launcher]"]).await?);
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=prechat-submit]").await?;
    assert_readable(&contrast(&browser, &["[data-testid=prechat-submit]"]).await?);
    let field = widget.element("[data-testid=prechat-name]").await?;
    browser.type_into(&field, "Jane").await?;
    widget.click("[data-testid=prechat-submit]").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 10).await?;
    let chat_id = widget.stored_chat_id().await?;
    let selectors = ["[data-testid=send]", "[data-testid=end-chat]", "[data-testid=attach]"];
    assert_readable(&contrast(&browser, &selectors).await?);
    admin.agent_says(&chat_id, "bye").await?;
    widget.wait_for_text("[data-testid=line]", "bye", 10).await?;
    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    widget.element("[data-testid=new-chat]").await?;
    assert_readable(&contrast(&browser, &["[data-testid=new-chat]"]).await?);
    browser.close().await?;
    system.stop().await
}

/// Waits until the widget's element with this test id has the focus.
async fn focus_on(browser: &Browser, test_id: &str) -> Result<()> {
    browser
        .wait_for(
            &format!("the focus on {test_id}"),
            5,
            "const el = document.getElementById('gms-chat-widget').shadowRoot.activeElement;
             return el !== null && el.getAttribute('data-testid') === arguments[0];",
            json!([test_id]),
        )
        .await
        .map(drop)
}

engines!(on_a_phone_the_panel_holds_the_page_closes_by_button_or_escape_and_stays_closed:
    Chromium, Firefox, WebKit);
async fn on_a_phone_the_panel_holds_the_page_closes_by_button_or_escape_and_stays_closed(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_phone_in(engine, 360, 740).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    let page_scroll = "return getComputedStyle(document.body).overflow;";
    assert_eq!(browser.script(page_scroll, json!([])).await?, json!("hidden"), "page held still");
    widget.click("[data-testid=close]").await?;
    assert_eq!(browser.script(page_scroll, json!([])).await?, json!("visible"), "and let go");
    assert_eq!(widget.texts("[data-testid=panel]").await?.len(), 0, "closed");
    focus_on(&browser, "launcher").await?;

    widget.click("[data-testid=launcher]").await?;
    let composer = widget.element("[data-testid=composer]").await?;
    browser.type_into(&composer, "\u{E00C}").await?; // Escape
    assert_eq!(widget.texts("[data-testid=panel]").await?.len(), 0, "Escape closes");
    focus_on(&browser, "launcher").await?;

    // Left open, it does not come back open over the page on the next load.
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=panel]").await?;
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=launcher]").await?;
    assert_eq!(widget.texts("[data-testid=panel]").await?.len(), 0);
    browser.close().await?;
    system.stop().await
}

engines!(after_starting_the_visitor_is_told_an_agent_will_answer_here: Chromium, Firefox, WebKit);
async fn after_starting_the_visitor_is_told_an_agent_will_answer_here(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget
        .wait_for_text("[data-testid=waiting]", "you can close this page and come back", 5)
        .await?;
    admin.agent_says(&chat_id, "Hi Jane").await?;
    widget.wait_for_text("[data-testid=line]", "Hi Jane", 10).await?;
    assert!(widget.texts("[data-testid=waiting]").await?.is_empty(), "gone once answered");
    browser.close().await?;
    system.stop().await
}

engines!(urls_in_agent_messages_are_safe_links_and_messages_show_their_time:
    Chromium, Firefox, WebKit);
async fn urls_in_agent_messages_are_safe_links_and_messages_show_their_time(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let hostile = "Help: https://example.com/help?a=1. Not: javascript:alert(1) \
                   data:text/html,<b>x</b> <a href=\"https://evil.example\">y</a> \
                   https://example.com/\u{202e}gpj.exe";
    admin.agent_says(&chat_id, hostile).await?;
    widget.wait_for_text("[data-testid=line]", "Help:", 10).await?;
    let links = browser
        .script(
            "return [...document.getElementById('gms-chat-widget').shadowRoot
               .querySelectorAll('[data-testid=line] a')]
               .map(a => [a.getAttribute('href'), a.target, a.rel]);",
            json!([]),
        )
        .await?;
    assert_eq!(
        links,
        json!([["https://example.com/help?a=1", "_blank", "noopener noreferrer"]]),
        "only the http(s) URL is a link"
    );
    let markup = browser
        .script(
            "return document.getElementById('gms-chat-widget').shadowRoot
               .querySelectorAll('[data-testid=line] b').length;",
            json!([]),
        )
        .await?;
    assert_eq!(markup, json!(0), "markup stays text");
    widget.say("thanks").await?;
    widget.wait_for_text("[data-testid=line]", "thanks", 10).await?;
    let times = widget.texts("[data-testid=time]").await?;
    assert!(times.len() >= 2 && times.iter().all(|t| t.contains(':')), "{times:?}");
    browser.close().await?;
    system.stop().await
}

/// Records every text the status shows from now on.
const WATCH_STATUS: &str = "
const root = document.getElementById('gms-chat-widget').shadowRoot;
window.__statuses = [];
const record = () => { const s = root.querySelector('[data-testid=status]'); if (s) window.__statuses.push(s.textContent); };
new MutationObserver(record).observe(root, {subtree: true, childList: true, characterData: true});";

engines!(the_status_tells_the_truth_around_the_end_and_a_new_chat: Chromium, Firefox, WebKit);
async fn the_status_tells_the_truth_around_the_end_and_a_new_chat(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    // The agent ends it; the visitor starts again: connected, and said so.
    admin.agent_says(&chat_id, "bye").await?;
    widget.wait_for_text("[data-testid=line]", "bye", 10).await?;
    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    widget.click("[data-testid=new-chat]").await?;
    let field = widget.element("[data-testid=prechat-name]").await?;
    browser.type_into(&field, "Jane").await?;
    widget.click("[data-testid=prechat-submit]").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 10).await?;
    // The visitor ends this one: no "Reconnecting" on the way, and a line says so.
    browser.script(WATCH_STATUS, json!([])).await?;
    widget.click("[data-testid=end-chat]").await?;
    // The survey asks first (the default `survey`): ended without a rating.
    widget.click("[data-testid=survey-skip]").await?;
    widget.wait_for_text("[data-testid=line]", "You left the chat", 10).await?;
    let statuses = browser.script("return window.__statuses;", json!([])).await?;
    let shown: Vec<String> = serde_json::from_value(statuses)?;
    assert!(shown.iter().all(|s| !s.contains("Reconnecting")), "{shown:?}");
    browser.close().await?;
    system.stop().await
}

engines!(the_launcher_has_an_icon_that_costs_no_request: Chromium, Firefox, WebKit);
async fn the_launcher_has_an_icon_that_costs_no_request(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=launcher] svg").await?;
    let name = widget.attribute("[data-testid=launcher]", "aria-label").await?;
    assert_eq!(name, json!("Chat with us"));
    let images = browser
        .script(
            "return performance.getEntriesByType('resource')
               .filter(e => e.initiatorType === 'img' || /\\.(svg|png|jpe?g|gif|webp)$/.test(e.name)).length;",
            json!([]),
        )
        .await?;
    assert_eq!(images, json!(0));
    browser.close().await?;
    system.stop().await
}

engines!(while_the_tab_is_hidden_new_agent_lines_show_in_the_page_title: Chromium, Firefox, WebKit);
async fn while_the_tab_is_hidden_new_agent_lines_show_in_the_page_title(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let title = browser.script("return document.title;", json!([])).await?;
    let title = title.as_str().unwrap_or_default().to_owned();
    crate::page::set_hidden(&browser, true, 0).await?;
    admin.agent_says(&chat_id, "one").await?;
    admin.agent_says(&chat_id, "two").await?;
    widget.wait_for_text("[data-testid=line]", "two", 10).await?;
    let badge = format!("(2) {title}");
    browser
        .wait_for("the badge", 5, "return document.title === arguments[0];", json!([badge]))
        .await?;
    crate::page::set_hidden(&browser, false, 1_000).await?;
    browser
        .wait_for("the site's title", 5, "return document.title === arguments[0];", json!([title]))
        .await?;
    browser.close().await?;
    system.stop().await
}

engines!(the_visitor_can_download_the_conversation_as_text: Chromium, Firefox, WebKit);
async fn the_visitor_can_download_the_conversation_as_text(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget.say("my question").await?;
    admin.agent_says(&chat_id, "the answer").await?;
    widget.wait_for_text("[data-testid=line]", "the answer", 10).await?;
    browser.catch_downloads().await?;
    widget.click("[data-testid=save-transcript]").await?;
    let complete = |b: &[u8]| String::from_utf8_lossy(b).contains("the answer");
    let bytes = browser.caught_download("chat-transcript.txt", complete).await?;
    let text = String::from_utf8(bytes)?;
    assert!(text.contains("You: my question"), "{text}");
    assert!(text.contains(": the answer"), "{text}");
    assert!(text.lines().all(|l| l.starts_with('[')), "every line has its time: {text}");
    browser.close().await?;
    system.stop().await
}

engines!(a_run_of_agent_messages_names_the_agent_once_with_an_avatar_under_the_days_date:
    Chromium, Firefox, WebKit);
async fn a_run_of_agent_messages_names_the_agent_once_with_an_avatar_under_the_days_date(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "ann Lee"})).await?;
    for text in ["one", "two"] {
        admin.agent_says(&chat_id, text).await?;
    }
    widget.wait_for_text("[data-testid=line]", "two", 10).await?;
    widget.say("mine").await?;
    widget.wait_for_text("[data-testid=line]", "mine", 10).await?;
    admin.agent_says(&chat_id, "three").await?;
    widget.wait_for_text("[data-testid=line]", "three", 10).await?;
    let shown = browser
        .script(
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             return {
               avatars: [...root.querySelectorAll('[data-testid=avatar]')].map(a => a.innerText),
               names: [...root.querySelectorAll('[data-testid=who]')]
                 .filter(w => !w.classList.contains('gc-visually-hidden')).map(w => w.textContent),
               days: [...root.querySelectorAll('[data-testid=day]')].length,
               dayFirst: root.querySelector('[data-testid=transcript]').firstElementChild
                 .getAttribute('data-testid'),
             };",
            json!([]),
        )
        .await?;
    assert_eq!(
        shown,
        json!({"avatars": ["AL", "AL"], "names": ["ann Lee", "You", "ann Lee"],
               "days": 1, "dayFirst": "day"}),
        "one name per run (Ann's two lines, the visitor's, Ann's next), one day divider on top; \
         the avatar's initials in capitals as the browser writes them"
    );
    browser.close().await?;
    system.stop().await
}

/// Records system notifications and tones the page makes from now on.
const SPY_ALERTS: &str = "
window.__notes = []; window.__tones = 0;
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) { window.__notes.push(options && options.body); super(title, options); }
};
const oscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.__tones += 1; return oscillator.call(this); };";

engines!(alerts_stay_off_until_the_visitor_turns_them_on_and_are_remembered:
    Chromium, Firefox, WebKit);
async fn alerts_stay_off_until_the_visitor_turns_them_on_and_are_remembered(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    // WebKit's driver cannot grant the permission, and MiniBrowser refuses it: there the
    // alert is the tone alone.
    let notifies = engine != Engine::WebKit;
    if notifies {
        browser.set_permission("notifications", "granted").await?;
    }
    browser.script(SPY_ALERTS, json!([])).await?;
    let title = browser.script("return document.title;", json!([])).await?;
    let title = title.as_str().unwrap_or_default().to_owned();

    // Off by default: a line missed while hidden shows in the title only.
    crate::page::set_hidden(&browser, true, 0).await?;
    admin.agent_says(&chat_id, "first while away").await?;
    let badge = format!("(1) {title}");
    browser
        .wait_for("the badge", 10, "return document.title === arguments[0];", json!([badge]))
        .await?;
    let quiet =
        browser.script("return [window.__notes.length, window.__tones];", json!([])).await?;
    assert_eq!(quiet, json!([0, 0]), "no alert without the visitor's consent");
    crate::page::set_hidden(&browser, false, 1_000).await?;

    // Turned on: the next missed line sounds and, where permitted, notifies.
    widget.click("[data-testid=alerts]").await?;
    assert_eq!(widget.attribute("[data-testid=alerts]", "aria-pressed").await?, json!("true"));
    crate::page::set_hidden(&browser, true, 0).await?;
    admin.agent_says(&chat_id, "second while away").await?;
    browser
        .wait_for(
            "the alert",
            10,
            "return window.__notes.some(n => n && n.includes('second while away')) === arguments[0]
               && window.__tones > 0;",
            json!([notifies]),
        )
        .await?;
    let notes = browser.script("return window.__notes.length;", json!([])).await?;
    assert_eq!(notes, json!(u8::from(notifies)), "{engine}: notifications shown");

    // The choice is kept for the next visit.
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=alerts]").await?;
    assert_eq!(widget.attribute("[data-testid=alerts]", "aria-pressed").await?, json!("true"));
    browser.close().await?;
    system.stop().await
}
