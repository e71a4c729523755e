//! The widget as a visitor meets it.

use serde_json::json;

use crate::system;
use crate::webdriver::Browser;

#[tokio::test]
async fn the_launcher_opens_the_chat_panel() -> anyhow::Result<()> {
    let system = system(&[]).await?;
    let browser = Browser::start().await?;
    browser.goto(&format!("{}/", system.relay_url)).await?;
    let launcher = browser.widget_element("[data-testid=launcher]").await?;
    browser.click(&launcher).await?;
    browser.widget_element("[data-testid=panel]").await?;
    let expanded = browser
        .script(
            "return document.getElementById('gms-chat-widget').shadowRoot
               .querySelector('[data-testid=launcher]').getAttribute('aria-expanded');",
            json!([]),
        )
        .await?;
    assert_eq!(expanded, json!("true"));
    browser.close().await?;
    system.stop().await
}
