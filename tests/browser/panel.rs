//! Around the conversation: files both ways and the launcher's unread badge.

use anyhow::Result;
use serde_json::{Value, json};
use shared::widget_config::WidgetConfig;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::Options;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use crate::{system, system_with};

engines!(agent_messages_while_the_panel_is_closed_show_on_the_launcher_until_it_opens:
    Chromium, Firefox, WebKit);
async fn agent_messages_while_the_panel_is_closed_show_on_the_launcher_until_it_opens(
    engine: Engine,
) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Ann"})).await?;
    admin.agent_says(&chat_id, "first").await?;
    widget.wait_for_text("[data-testid=line]", "first", 10).await?;

    let launcher = widget.element("[data-testid=launcher]").await?;
    browser.click(&launcher).await?;
    admin.agent_says(&chat_id, "second").await?;
    admin.agent_says(&chat_id, "third").await?;
    widget.wait_for_text("[data-testid=unread]", "2", 10).await?;
    let label = widget.attribute("[data-testid=launcher]", "aria-label").await?;
    assert_eq!(label, json!("Chat with us (2 new)"));

    // Still unread after a reload: the count lives with the chat in localStorage.
    browser.goto(&system.page_url()).await?;
    widget.wait_for_text("[data-testid=unread]", "2", 10).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.wait_for_text("[data-testid=line]", "third", 10).await?;
    assert!(widget.texts("[data-testid=unread]").await?.is_empty());
    widget.click("[data-testid=launcher]").await?;
    assert!(widget.texts("[data-testid=unread]").await?.is_empty(), "all seen");
    browser.close().await?;
    system.stop().await
}

engines!(the_visitor_sends_a_file_within_the_limits_and_can_download_it: Chromium, Firefox, WebKit);
async fn the_visitor_sends_a_file_within_the_limits_and_can_download_it(
    engine: Engine,
) -> Result<()> {
    let system = system(&["--upload-max-file-size", "2048"]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.start_chat(&system.page_url(), "Jane").await?;
    let files = system_tests::harness::scratch_dir("upload")?;
    let (small, big) = (files.join("note.txt"), files.join("big.txt"));
    std::fs::write(&small, "hello from a file")?;
    std::fs::write(&big, vec![b'x'; 4096])?;
    let uploads = |stats: &Value| stats["requests"]["upload"].as_u64().unwrap_or(0);

    let input = widget.element("[data-testid=file-input]").await?;
    browser.type_into(&input, &big.display().to_string()).await?;
    widget.wait_for_text("[data-testid=notice]", "big.txt is too large: at most 2 KB", 10).await?;
    assert_eq!(uploads(&admin.stats().await?), 0, "a file over the limit is not sent");

    browser.type_into(&input, &small.display().to_string()).await?;
    widget.wait_for_text("[data-testid=line]", "You sent a file: note.txt", 10).await?;
    assert_eq!(uploads(&admin.stats().await?), 1);

    browser.catch_downloads().await?;
    widget.click("[data-testid=download]").await?;
    let expected = b"hello from a file".as_slice();
    browser.caught_download("note.txt", |bytes| bytes == expected).await?;
    browser.close().await?;
    let _ = std::fs::remove_dir_all(files);
    system.stop().await
}

engines!(a_gateway_that_wants_an_apikey_gets_it_on_every_widget_request_files_included:
    Chromium, Firefox, WebKit);
/// GMS behind an API gateway that wants an `apikey` on every request: the page's
/// `gmsHeaders` carries it on the widget's requests (preflighted, as the header makes them),
/// files both ways included, and the relay's `--gms-header` on its own.
async fn a_gateway_that_wants_an_apikey_gets_it_on_every_widget_request_files_included(
    engine: Engine,
) -> Result<()> {
    let widget_config = WidgetConfig {
        gms_headers: [("apikey".to_owned(), "k-test".to_owned())].into(),
        ..WidgetConfig::default()
    };
    let options = Options::sim(&["--require-header", "apikey: k-test"])
        .relay(&["--gms-header", "apikey: k-test"]);
    let system = system_with(Options { widget_config, ..options }).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Ann"})).await?;
    admin.agent_says(&chat_id, "behind the gateway").await?;
    widget.wait_for_text("[data-testid=line]", "behind the gateway", 10).await?;

    let files = system_tests::harness::scratch_dir("gateway-upload")?;
    let note = files.join("note.txt");
    std::fs::write(&note, "past the gateway")?;
    let input = widget.element("[data-testid=file-input]").await?;
    browser.type_into(&input, &note.display().to_string()).await?;
    widget.wait_for_text("[data-testid=line]", "You sent a file: note.txt", 10).await?;
    browser.catch_downloads().await?;
    widget.click("[data-testid=download]").await?;
    let expected = b"past the gateway".as_slice();
    browser.caught_download("note.txt", |bytes| bytes == expected).await?;
    browser.close().await?;
    let _ = std::fs::remove_dir_all(files);
    system.stop().await
}
