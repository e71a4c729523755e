//! Accessibility as an independent checker sees it: axe-core (npm `axe-core`, injected into
//! the page; it reads the widget's open shadow root) reports no violation in any state of
//! the widget. `cargo xtask test` installs axe-core and names its `axe.min.js` in `AXE_JS`.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use system_tests::gms_client::SimAdmin;
use system_tests::webdriver::Browser;

use crate::system;

/// axe's violations within the widget, each as "rule: the first failing element".
async fn violations(browser: &Browser) -> Result<Vec<String>> {
    let present = browser.script("return typeof window.axe !== 'undefined';", json!([])).await?;
    if present != json!(true) {
        let path = std::env::var("AXE_JS").context("AXE_JS must name axe-core's axe.min.js")?;
        let source = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        browser.script(&source, json!([])).await?;
    }
    // Judged at rest: mid-animation (the panel fades in) colours are not what anyone reads.
    let settle = "const root = document.getElementById('gms-chat-widget').shadowRoot;
                  return Promise.all(root.getAnimations().map(a => a.finished)).then(() => true);";
    browser.script(settle, json!([])).await?;
    let result = browser
        .script(
            "return axe.run(document.getElementById('gms-chat-widget'), {resultTypes: ['violations']})
               .then(r => r.violations.map(v => ({id: v.id, help: v.help,
                 target: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})));",
            json!([]),
        )
        .await?;
    Ok(result
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v: &Value| format!("{}: {} at {}", v["id"], v["help"], v["target"]))
        .collect())
}

async fn no_violations(browser: &Browser, state: &str) -> Result<()> {
    let found = violations(browser).await?;
    assert!(found.is_empty(), "axe in state {state:?}:\n{}", found.join("\n"));
    Ok(())
}

#[tokio::test]
async fn axe_finds_no_violation_in_any_state() -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start().await?;
    browser.goto(&format!("{}/", system.relay_url)).await?;
    browser.widget_element("[data-testid=launcher]").await?;
    no_violations(&browser, "launcher").await?;

    browser.click(&browser.widget_element("[data-testid=launcher]").await?).await?;
    browser.click(&browser.widget_element("[data-testid=prechat-submit]").await?).await?;
    browser.wait_for_text("[data-testid=prechat-error]", "", 5).await?;
    no_violations(&browser, "form with errors").await?;

    let field = browser.widget_element("[data-testid=prechat-name]").await?;
    browser.type_into(&field, "Jane").await?;
    browser.click(&browser.widget_element("[data-testid=prechat-submit]").await?).await?;
    browser.wait_for_text("[data-testid=status]", "Connected", 10).await?;
    let chat_id = browser.stored_chat_id().await?;
    admin.agent_says(&chat_id, "Hello, see https://example.com").await?;
    browser.wait_for_text("[data-testid=line]", "Hello", 10).await?;
    no_violations(&browser, "conversation").await?;

    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    browser.widget_element("[data-testid=new-chat]").await?;
    no_violations(&browser, "ended").await?;
    browser.close().await?;
    system.stop().await
}
