//! Proxy mode (`--gms-proxy`) with a private GMS: gms-sim refuses every browser origin, so
//! the widget can only work through the relay, and no GMS token or address ever reaches
//! the page, its storage or the relay's answers.

use anyhow::{Context, Result};
use serde_json::json;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::Options;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use crate::system_with;

/// What the page holds that could be a GMS token or address: its storage, its HTML and
/// the configuration the loader gave the widget.
async fn leaks(browser: &Browser, gms_url: &str) -> Result<Vec<String>> {
    let page = browser
        .script(
            "return [localStorage.getItem('gms-chat:v1') || '',
                     document.documentElement.outerHTML];",
            json!([]),
        )
        .await?;
    let mut found = Vec::new();
    for text in page.as_array().context("two texts")?.iter().filter_map(|t| t.as_str()) {
        for secret in ["secureKey", "userId", "\"alias\"", gms_url] {
            if text.contains(secret) {
                found.push(secret.to_owned());
            }
        }
    }
    Ok(found)
}

engines!(through_a_proxy_mode_relay_the_whole_chat_works_and_no_gms_token_reaches_the_page:
    Chromium, Firefox, WebKit);
async fn through_a_proxy_mode_relay_the_whole_chat_works_and_no_gms_token_reaches_the_page(
    engine: Engine,
) -> Result<()> {
    let options = Options {
        proxy: true,
        watch_chat_servers: true,
        ..Options::sim(&["--upload-max-file-size", "2048"])
    };
    let mut system = system_with(options).await?;
    let gms_url = system.gms.url();
    let admin = SimAdmin::new(&gms_url);
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);

    // Start, the agent's answer by push, the visitor's line.
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.agent_says(&chat_id, "hello through the relay").await?;
    widget.wait_for_text("[data-testid=line]", "hello through the relay", 10).await?;
    widget.say("my order is late").await?;
    widget.wait_for_text("[data-testid=line]", "my order is late", 10).await?;
    let chat = admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert!(chat["transcript"].to_string().contains("my order is late"), "{chat}");
    assert_eq!(chat["pushSubscribed"], true);
    assert_eq!(leaks(&browser, &gms_url).await?, Vec::<String>::new());

    // A file up, and down again.
    let files = system_tests::harness::scratch_dir("proxy-upload")?;
    let note = files.join("note.txt");
    std::fs::write(&note, "hello from a file")?;
    let input = widget.element("[data-testid=file-input]").await?;
    browser.type_into(&input, &note.display().to_string()).await?;
    widget.wait_for_text("[data-testid=line]", "You sent a file: note.txt", 10).await?;
    browser.catch_downloads().await?;
    widget.click("[data-testid=download]").await?;
    let expected = b"hello from a file".as_slice();
    browser.caught_download("note.txt", |bytes| bytes == expected).await?;

    // A reload, and the tab closed while the agent writes, then opened again.
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=line]", "hello through the relay", 10).await?;
    browser.goto("about:blank").await?;
    admin.agent_says(&chat_id, "while you were away").await?;
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=line]", "while you were away", 10).await?;

    // The relay restarted, then the chat's Chat Server: the chat goes on.
    system.restart_relay().await?;
    admin.agent_says(&chat_id, "after the relay's restart").await?;
    widget.wait_for_text("[data-testid=line]", "after the relay's restart", 20).await?;
    let alias = admin.get(&format!("/sim/chats/{chat_id}")).await?["alias"]
        .as_str()
        .context("the chat's Chat Server")?
        .to_owned();
    admin.ok(&format!("/sim/chat-servers/{alias}/restart"), json!({})).await?;
    // The visitor's next line, through the relay, restores the session elsewhere (or the
    // relay's own ping does first).
    widget.say("still here").await?;
    widget.wait_for_text("[data-testid=line]", "still here", 10).await?;
    admin.agent_says(&chat_id, "after the Chat Server's restart").await?;
    widget.wait_for_text("[data-testid=line]", "after the Chat Server's restart", 20).await?;

    // The end, and nothing of GMS left behind.
    widget.click("[data-testid=end-chat]").await?;
    // The survey asks first (the default `survey`): ended without a rating.
    widget.click("[data-testid=survey-skip]").await?;
    widget.element("[data-testid=ended]").await?;
    widget.wait_for_text("[data-testid=line]", "You left the chat", 10).await?;
    assert_eq!(admin.get(&format!("/sim/chats/{chat_id}")).await?["ended"], true);
    let seen = widget.lines().await?;
    for text in ["hello through the relay", "while you were away", "after the relay's restart"] {
        assert_eq!(seen.iter().filter(|l| l.contains(text)).count(), 1, "{text}: {seen:?}");
    }
    assert_eq!(leaks(&browser, &gms_url).await?, Vec::<String>::new());
    browser.close().await?;
    let _ = std::fs::remove_dir_all(files);
    system.stop().await
}
