//! The widget in parts (issue 37): what a visitor rarely needs comes in a module of its own
//! (`frontend/src/later.rs`), fetched when the panel opens and the browser is idle, so its
//! first use does not wait; once fetched it works offline; a part that cannot be fetched
//! says so in the panel, the content falls back to text, and the next use fetches it again.

use anyhow::{Context, Result};
use serde_json::json;
use system_tests::gms_client::SimAdmin;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use super::system;

/// The widget's files fetched so far whose name contains `part`.
async fn fetched(browser: &Browser, part: &str) -> Result<usize> {
    let count = browser
        .script(
            "return performance.getEntriesByType('resource')
               .filter(e => e.name.includes(arguments[0]) && e.responseEnd > 0).length;",
            json!([part]),
        )
        .await?;
    count.as_u64().and_then(|n| usize::try_from(n).ok()).context("a count")
}

engines!(a_later_part_is_fetched_when_the_panel_opens_and_its_first_use_does_not_wait: Chromium;
    not Firefox, WebKit: "offline by CDP network emulation; the parts' loading is the same code in every engine (the rich and emoji tests use it)");
async fn a_later_part_is_fetched_when_the_panel_opens_and_its_first_use_does_not_wait(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    // Prefetched with nothing used: the open panel made the part likely.
    browser
        .wait_for(
            "the part prefetched",
            10,
            "return performance.getEntriesByType('resource')
               .some(e => e.name.includes('-split_later.wasm') && e.responseEnd > 0);",
            json!([]),
        )
        .await?;
    // Its first use: the emoji picker appears at the click (its data comes after).
    let waited = browser
        .script(
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             const start = performance.now();
             root.querySelector('[data-testid=emoji]').click();
             return new Promise(done => {
               const look = () => root.querySelector('[data-testid=emoji-picker]')
                 ? done(performance.now() - start) : setTimeout(look, 1);
               look();
             });",
            json!([]),
        )
        .await?
        .as_f64()
        .context("a time")?;
    assert!(waited < 150.0, "the first use waited {waited} ms for its part");
    widget.wait_for_text("[data-testid=emoji-picker]", "😀", 10).await?;
    widget.click("[data-testid=emoji]").await?;

    // Offline, the loaded part still works: the picker opens again, a rating form shows.
    browser
        .cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await?;
    widget.click("[data-testid=emoji]").await?;
    widget.wait_for_text("[data-testid=emoji-picker]", "😀", 5).await?;
    widget.click("[data-testid=end-chat]").await?;
    widget.element("[data-testid=survey-send]").await?;
    assert_eq!(fetched(&browser, "-split_later.wasm").await?, 1, "fetched once");
    browser.close().await?;
    system.stop().await
}

/// A browser that cannot fetch the later part (Chromium: by CDP).
async fn with_the_part_blocked(engine: Engine) -> Result<Browser> {
    let browser = Browser::start_in(engine).await?;
    browser.cdp("Network.enable", json!({})).await?;
    browser.cdp("Network.setBlockedURLs", json!({"urls": ["*-split_later.wasm"]})).await?;
    Ok(browser)
}

engines!(a_part_that_cannot_be_fetched_says_so_and_is_fetched_again_on_the_next_use: Chromium;
    not Firefox, WebKit: "blocks the part's file by CDP; the fallback is the same code in every engine");
async fn a_part_that_cannot_be_fetched_says_so_and_is_fetched_again_on_the_next_use(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = with_the_part_blocked(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let path = format!("/sim/chats/{chat_id}/agent/message");
    admin.ok(&path, json!({"template": "card"})).await?;
    // The fallback text shows, and the panel says why the rest does not.
    widget.wait_for_text("[data-testid=line]", "Your order 1042", 10).await?;
    widget.wait_for_text("[data-testid=notice]", "could not be loaded", 10).await?;
    let bubble = browser
        .script(
            "const line = Array.from(document.getElementById('gms-chat-widget').shadowRoot
               .querySelectorAll('[data-testid=line]')).find(l => l.textContent.includes('Your order 1042'));
             return !line.querySelector('.gc-bubble').hidden && line.querySelector('[data-testid=rich]').hidden;",
            json!([]),
        )
        .await?;
    assert_eq!(bubble, json!(true), "the fallback text shows in place of the card");

    // The next use fetches it again.
    browser.cdp("Network.setBlockedURLs", json!({"urls": []})).await?;
    admin.ok(&path, json!({"template": "list"})).await?;
    widget.wait_for_text("[data-testid=rich] li", "19 EUR a month", 10).await?;
    browser.close().await?;
    system.stop().await
}

engines!(an_agents_line_shows_as_text_until_its_formatting_loads: Chromium;
    not Firefox, WebKit: "blocks the part's file by CDP; the fallback is the same code in every engine");
async fn an_agents_line_shows_as_text_until_its_formatting_loads(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = with_the_part_blocked(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    // A line without markup needs no part; one with markup shows as its text, without
    // the bidirectional controls the formatter would drop, and the panel says why.
    admin.agent_says(&chat_id, "Hello, see https://shop.example/help").await?;
    widget.wait_for_text("[data-testid=line] a", "https://shop.example/help", 10).await?;
    admin.agent_says(&chat_id, "Your **order** ships \u{202e}today\u{202c}").await?;
    widget.wait_for_text("[data-testid=line]", "Your **order** ships today", 10).await?;
    widget.wait_for_text("[data-testid=notice]", "could not be loaded", 10).await?;
    // Once the part can be fetched, the next line is formatted.
    browser.cdp("Network.setBlockedURLs", json!({"urls": []})).await?;
    admin.agent_says(&chat_id, "All **done**").await?;
    widget.wait_for_text("[data-testid=line] strong", "done", 10).await?;
    browser.close().await?;
    system.stop().await
}

engines!(a_rating_form_that_cannot_be_fetched_does_not_stand_in_the_way_of_the_end: Chromium;
    not Firefox, WebKit: "blocks the part's file by CDP; the fallback is the same code in every engine");
async fn a_rating_form_that_cannot_be_fetched_does_not_stand_in_the_way_of_the_end(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let browser = with_the_part_blocked(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    // The visitor's end asks for a rating first; without its form the chat ends anyway.
    widget.click("[data-testid=end-chat]").await?;
    widget.element("[data-testid=new-chat]").await?;
    let chat = SimAdmin::new(&system.gms.url()).get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["ended"], json!(true), "{chat}");
    browser.close().await?;
    system.stop().await
}
