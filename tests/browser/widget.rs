//! The widget as a visitor meets it, in real browsers against the real relay and gms-sim.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use shared::widget_config::WidgetConfig;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::Options;
use system_tests::support::{Wait, until_every};
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::{ENTER, SHIFT, WidgetPage};

use crate::{system, system_with};

fn refreshes(stats: &Value, chat_id: &str) -> u64 {
    stats["chats"][chat_id]["refresh"].as_u64().unwrap_or(0)
}

engines!(the_launcher_opens_the_chat_panel: Chromium, Firefox, WebKit);
async fn the_launcher_opens_the_chat_panel(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    let launcher = widget.element("[data-testid=launcher]").await?;
    browser.click(&launcher).await?;
    widget.element("[data-testid=panel]").await?;
    let expanded = widget.attribute("[data-testid=launcher]", "aria-expanded").await?;
    assert_eq!(expanded, json!("true"));
    browser.close().await?;
    system.stop().await
}

engines!(the_prechat_form_explains_what_is_missing: Chromium, Firefox, WebKit);
async fn the_prechat_form_explains_what_is_missing(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.click("[data-testid=launcher]").await?;
    let submit = widget.element("[data-testid=prechat-submit]").await?;
    browser.click(&submit).await?;
    widget.wait_for_text("[data-testid=prechat-error]", "tell us your name", 5).await?;
    browser.type_into(&widget.element("[data-testid=prechat-name]").await?, "Jane").await?;
    browser.type_into(&widget.element("[data-testid=prechat-email]").await?, "jane@").await?;
    browser.click(&submit).await?;
    widget.wait_for_text("[data-testid=prechat-error]", "valid e-mail", 5).await?;
    let stats = SimAdmin::new(&system.gms.url()).stats().await?;
    assert_eq!(stats["requests"]["create"], Value::Null, "nothing was sent to GMS");
    browser.close().await?;
    system.stop().await
}

engines!(the_agent_answers_by_push_without_any_polling: Chromium, Firefox, WebKit);
async fn the_agent_answers_by_push_without_any_polling(engine: Engine) -> Result<()> {
    let system = system(&["--bot", "--bot-delay-ms", "200"]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget.wait_for_text("[data-testid=line]", "I'm Ava", 10).await?;
    widget.say("where is my order").await?;
    widget
        .wait_for_text("[data-testid=line]", "You said: \u{201c}where is my order\u{201d}", 10)
        .await?;

    // Idle: no request at all, from the widget or the relay.
    let before = admin.stats().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = admin.stats().await?;
    assert_eq!(refreshes(&after, &chat_id), refreshes(&before, &chat_id), "something polls");
    // Refreshes: the relay's acknowledgements (one per push at most), its registration
    // check, and the widget's catch-up on connect. Nothing per message beyond that.
    let pushes = after["pushes"]["sent"].as_u64().unwrap_or(0);
    assert!(refreshes(&after, &chat_id) <= pushes + 3, "{after}");
    let seen = widget.lines().await?;
    assert_eq!(
        seen.iter().filter(|l| l.contains("where is my order")).count(),
        2,
        "mine and the echo: {seen:?}"
    );
    browser.close().await?;
    system.stop().await
}

engines!(enter_sends_and_shift_enter_makes_a_new_line: Chromium, Firefox, WebKit);
async fn enter_sends_and_shift_enter_makes_a_new_line(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    let composer = widget.element("[data-testid=composer]").await?;
    browser.type_into(&composer, "first line").await?;
    browser.type_into(&composer, &format!("{SHIFT}{ENTER}")).await?;
    browser.type_into(&composer, &format!("second line{ENTER}")).await?;
    widget.wait_for_text("[data-testid=line]", "second line", 10).await?;
    let sent = widget.lines().await?;
    assert!(sent.iter().any(|l| l.contains("first line\nsecond line")), "{sent:?}");
    let draft = browser
        .script("return document.getElementById('gms-chat-widget').shadowRoot.querySelector('[data-testid=composer]').value;", json!([]))
        .await?;
    assert_eq!(draft, json!(""), "the composer is emptied after sending");
    browser.close().await?;
    system.stop().await
}

engines!(a_reload_restores_the_transcript_and_messages_sent_while_away_appear_once_in_order:
    Chromium, Firefox, WebKit);
async fn a_reload_restores_the_transcript_and_messages_sent_while_away_appear_once_in_order(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget.say("hello").await?;
    // In GMS's transcript before the answer (under load the send could land after it).
    widget.wait_for_text("[data-testid=line]", "hello", 10).await?;
    admin.agent_says(&chat_id, "first answer").await?;
    widget.wait_for_text("[data-testid=line]", "first answer", 10).await?;

    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=line]", "first answer", 10).await?;

    // The visitor leaves; the agent keeps writing.
    browser.goto("about:blank").await?;
    for text in ["away one", "away two", "away three"] {
        admin.agent_says(&chat_id, text).await?;
    }
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=line]", "away three", 10).await?;
    let seen = widget.lines().await?;
    let positions: Vec<usize> = ["hello", "first answer", "away one", "away two", "away three"]
        .iter()
        .map(|text| {
            let hits: Vec<usize> =
                seen.iter().enumerate().filter(|(_, l)| l.contains(text)).map(|(i, _)| i).collect();
            assert_eq!(hits.len(), 1, "{text:?} shown once in {seen:?}");
            hits[0]
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order: {seen:?}");
    browser.close().await?;
    system.stop().await
}

engines!(a_gms_that_hands_out_no_user_id_nor_alias_still_chats_and_resumes:
    Chromium, Firefox, WebKit);
/// GMS 8.5.112 and later need not hand out `userId` nor `alias` (gms-sim `--omit-tokens`,
/// which also refuses a `userId` that is not the chat's, an empty one too): the widget
/// starts the chat, sends, receives by push, and resumes it after a reload.
async fn a_gms_that_hands_out_no_user_id_nor_alias_still_chats_and_resumes(
    engine: Engine,
) -> Result<()> {
    let system = system(&["--omit-tokens", "--flex-push-content", "session-id,secure-key"]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget.say("hello").await?;
    widget.wait_for_text("[data-testid=line]", "hello", 10).await?;
    admin.agent_says(&chat_id, "tokens are optional").await?;
    widget.wait_for_text("[data-testid=line]", "tokens are optional", 10).await?;

    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=line]", "tokens are optional", 10).await?;
    admin.agent_says(&chat_id, "after the reload").await?;
    widget.wait_for_text("[data-testid=line]", "after the reload", 10).await?;
    let transcript = admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert!(transcript.to_string().contains("hello"), "the visitor's line reached GMS");
    browser.close().await?;
    system.stop().await
}

engines!(a_relay_restart_mid_chat_loses_and_duplicates_nothing: Chromium, Firefox, WebKit);
async fn a_relay_restart_mid_chat_loses_and_duplicates_nothing(engine: Engine) -> Result<()> {
    let mut system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.agent_says(&chat_id, "before the restart").await?;
    widget.wait_for_text("[data-testid=line]", "before the restart", 10).await?;
    system.restart_relay().await?;
    admin.agent_says(&chat_id, "during the restart").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 20).await?;
    admin.agent_says(&chat_id, "after the restart").await?;
    widget.wait_for_text("[data-testid=line]", "after the restart", 10).await?;
    widget.wait_for_text("[data-testid=line]", "during the restart", 10).await?;
    let seen = widget.lines().await?;
    for text in ["before the restart", "during the restart", "after the restart"] {
        assert_eq!(seen.iter().filter(|l| l.contains(text)).count(), 1, "{text}: {seen:?}");
    }
    browser.close().await?;
    system.stop().await
}

engines!(text_stays_text_and_only_http_links_are_clickable: Chromium, Firefox, WebKit);
async fn text_stays_text_and_only_http_links_are_clickable(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.agent_says(&chat_id, "<b>not bold</b>").await?;
    admin
        .ok(&format!("/sim/chats/{chat_id}/agent/push-url"), json!({"url": "javascript:alert(1)"}))
        .await?;
    admin
        .ok(
            &format!("/sim/chats/{chat_id}/agent/push-url"),
            json!({"url": "https://example.com/help"}),
        )
        .await?;
    widget.wait_for_text("[data-testid=line]", "https://example.com/help", 10).await?;
    let anchors = browser
        .script(
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             return { links: Array.from(root.querySelectorAll('[data-testid=line] a')).map(a => a.getAttribute('href')),
                      bold: root.querySelectorAll('[data-testid=line] b').length };",
            json!([]),
        )
        .await?;
    assert_eq!(anchors, json!({"links": ["https://example.com/help"], "bold": 0}));
    assert!(widget.lines().await?.iter().any(|l| l.contains("<b>not bold</b>")));
    browser.close().await?;
    system.stop().await
}

engines!(a_failed_send_is_marked_and_can_be_retried: Chromium, Firefox, WebKit);
async fn a_failed_send_is_marked_and_can_be_retried(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    // startTyping takes one (typing notices are not retried), send's attempts the rest.
    let attempts = u64::from(shared::gms::RetryPolicy::GMS.attempts);
    admin.ok("/sim/faults", json!({"http5xx": attempts + 1})).await?;
    widget.say("will this arrive").await?;
    widget.wait_for_text("[data-testid=failed]", "error 503", 20).await?;
    widget.click("[data-testid=retry]").await?;
    widget.wait_for_text("[data-testid=line]", "will this arrive", 10).await?;
    assert!(widget.texts("[data-testid=outgoing]").await?.is_empty());
    browser.close().await?;
    system.stop().await
}

engines!(an_agent_typing_is_shown_and_the_agent_ending_the_chat_closes_the_composer:
    Chromium, Firefox, WebKit);
async fn an_agent_typing_is_shown_and_the_agent_ending_the_chat_closes_the_composer(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Ann"})).await?;
    admin.ok(&format!("/sim/chats/{chat_id}/agent/typing"), json!({"typing": true})).await?;
    widget.wait_for_text("[data-testid=typing]", "Ann is typing", 10).await?;
    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    widget.element("[data-testid=ended]").await?;
    widget.wait_for_text("[data-testid=line]", "Ann left the chat", 10).await?;
    assert!(widget.texts("[data-testid=composer]").await?.is_empty());
    assert_eq!(widget.texts("[data-testid=typing]").await?, [""]);
    widget.click("[data-testid=new-chat]").await?;
    widget.element("[data-testid=prechat]").await?;
    browser.close().await?;
    system.stop().await
}

/// What the widget keeps in localStorage, as written (empty when nothing).
async fn stored_text(browser: &Browser) -> Result<String> {
    let text =
        browser.script("return localStorage.getItem('gms-chat:v1') || '';", json!([])).await?;
    Ok(text.as_str().context("text")?.to_owned())
}

engines!(the_visitor_ends_the_chat_and_its_tokens_and_then_its_transcript_leave_the_browser:
    Chromium, Firefox, WebKit);
async fn the_visitor_ends_the_chat_and_its_tokens_and_then_its_transcript_leave_the_browser(
    engine: Engine,
) -> Result<()> {
    // A site that keeps no ended chat: the transcript goes with the next page view.
    let config = WidgetConfig { keep_ended_days: 0, ..WidgetConfig::default() };
    let system = system_with(Options { widget_config: config, ..Options::sim(&[]) }).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let stored: Value = serde_json::from_str(&stored_text(&browser).await?)?;
    let credentials = &stored["chat"]["credentials"];
    let user_id = credentials["userId"].as_str().context("a user id")?.to_owned();
    let secure_key = credentials["secureKey"].as_str().context("a secure key")?.to_owned();
    widget.click("[data-testid=end-chat]").await?;
    // The survey asks first (the default `survey`): ended without a rating.
    widget.click("[data-testid=survey-skip]").await?;
    widget.element("[data-testid=ended]").await?;
    let chat = SimAdmin::new(&system.gms.url()).get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["ended"], true);
    // The tokens go with the end; the transcript stays for the visitor to read.
    browser
        .wait_for(
            "the ended chat to be stored without its tokens",
            10,
            "const s = JSON.parse(localStorage.getItem('gms-chat:v1'));
             const c = s.chat.credentials;
             return s.chat.ended && !('userId' in c) && !('secureKey' in c) && s.chat.events.length > 0;",
            json!([]),
        )
        .await?;
    let text = stored_text(&browser).await?;
    assert!(!text.contains(&user_id) && !text.contains(&secure_key), "{text}");
    widget.wait_for_text("[data-testid=line]", "You left the chat", 10).await?;
    // The next page view, past the site's 0 days: nothing of the chat is left.
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=launcher]").await?;
    assert_eq!(stored_text(&browser).await?, "");
    browser.close().await?;
    system.stop().await
}

engines!(the_visitor_typing_is_announced_once_and_withdrawn_after_a_pause:
    Chromium, Firefox, WebKit);
async fn the_visitor_typing_is_announced_once_and_withdrawn_after_a_pause(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let composer = widget.element("[data-testid=composer]").await?;
    browser.type_into(&composer, "I am wri").await?;
    browser.type_into(&composer, "ting").await?;
    let typing = |event: &'static str| {
        let admin = &admin;
        let chat_id = &chat_id;
        async move {
            let chat = admin.get(&format!("/sim/chats/{chat_id}")).await?;
            let count = chat["transcript"]
                .as_array()
                .map_or(0, |events| events.iter().filter(|e| e["type"] == event).count());
            anyhow::Ok(count)
        }
    };
    let what = "a stopTyping after the pause";
    until_every(what, Duration::from_secs(10), Duration::from_millis(100), async || {
        let stopped = typing("TypingStopped").await?;
        Ok(Wait::done_if(stopped > 0, stopped))
    })
    .await?;
    assert_eq!(typing("TypingStarted").await?, 1, "one startTyping for a burst of keys");
    assert_eq!(typing("TypingStopped").await?, 1);
    browser.close().await?;
    system.stop().await
}

engines!(a_page_whose_origin_the_relay_refuses_is_told_once_and_does_not_retry:
    Chromium, Firefox, WebKit);
async fn a_page_whose_origin_the_relay_refuses_is_told_once_and_does_not_retry(
    engine: Engine,
) -> Result<()> {
    // The relay serves the page but allows another origin only.
    let options = system_tests::harness::Options::sim(&[])
        .relay(&["--allowed-origin", "https://shop.example"]);
    let system = crate::system_with(options).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    // Counted in the page: the relay's metrics are the test process's, shared by the
    // relays of the tests running beside this one.
    browser
        .script(
            "window.__sockets = 0;
             const Real = window.WebSocket;
             window.WebSocket = function (url, protocols) {
               window.__sockets += 1;
               return protocols === undefined ? new Real(url) : new Real(url, protocols);
             };
             window.WebSocket.prototype = Real.prototype;",
            json!([]),
        )
        .await?;
    widget.click("[data-testid=launcher]").await?;
    widget.fill_prechat("Jane").await?;
    widget
        .wait_for_text("[data-testid=status]", "Live updates are not available on this page", 10)
        .await?;
    let sockets = browser.script("return window.__sockets;", json!([])).await?;
    assert_eq!(sockets, json!(1), "one refusal, then no reconnection");
    browser.close().await?;
    system.stop().await
}
