//! Accessibility as an independent checker sees it: axe-core (npm `axe-core`, injected into
//! the page; it reads the widget's open shadow root) reports no violation in any state of
//! the widget, and Lighthouse (npm `lighthouse`, with its own Chromium) scores the demo
//! page's accessibility 100. `cargo xtask test` installs both and names axe-core's
//! `axe.min.js` in `AXE_JS` and Lighthouse's command in `LIGHTHOUSE`.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use system_tests::gms_client::SimAdmin;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

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
    WidgetPage::of(browser).at_rest().await?;
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

pub(crate) async fn no_violations(browser: &Browser, state: &str) -> Result<()> {
    let found = violations(browser).await?;
    assert!(found.is_empty(), "axe in state {state:?}:\n{}", found.join("\n"));
    Ok(())
}

engines!(axe_finds_no_violation_in_any_state: Chromium, Firefox, WebKit);
async fn axe_finds_no_violation_in_any_state(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=launcher]").await?;
    no_violations(&browser, "launcher").await?;

    widget.click("[data-testid=launcher]").await?;
    widget.click("[data-testid=prechat-submit]").await?;
    widget.wait_for_text("[data-testid=prechat-error]", "", 5).await?;
    no_violations(&browser, "form with errors").await?;

    let field = widget.element("[data-testid=prechat-name]").await?;
    browser.type_into(&field, "Jane").await?;
    widget.click("[data-testid=prechat-submit]").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 10).await?;
    let chat_id = widget.stored_chat_id().await?;
    admin.agent_says(&chat_id, "Hello, see https://example.com").await?;
    widget.wait_for_text("[data-testid=line]", "Hello", 10).await?;
    // Rich messages: a carousel of cards, a list, and live quick replies.
    for template in ["carousel", "list", "quick-replies"] {
        let path = format!("/sim/chats/{chat_id}/agent/message");
        admin.ok(&path, json!({ "template": template })).await?;
    }
    widget.wait_for_text("[data-testid=rich] button", "What else?", 10).await?;
    no_violations(&browser, "conversation").await?;
    widget.click("[data-testid=emoji]").await?;
    widget.wait_for_text("[data-testid=emoji-picker]", "😀", 10).await?;
    no_violations(&browser, "emoji picker").await?;
    widget.click("[data-testid=emoji]").await?;

    widget.keep_link().await?;
    no_violations(&browser, "link kept").await?;

    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    widget.element("[data-testid=new-chat]").await?;
    no_violations(&browser, "ended").await?;
    browser.close().await?;
    system.stop().await
}

engines!(lighthouse_scores_the_demo_pages_accessibility_100: Chromium;
    not Firefox, WebKit: "Lighthouse runs its own Chromium");
async fn lighthouse_scores_the_demo_pages_accessibility_100(_engine: Engine) -> Result<()> {
    let lighthouse = std::env::var("LIGHTHOUSE").context("LIGHTHOUSE must name lighthouse")?;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    // The panel open (`#gms-chat-open`) on the pre-chat form, with the office closed: the
    // launcher, the form and the hours line are all audited.
    let hours = crate::expectations::hours_file(crate::expectations::CLOSED_UNTIL_2099)?;
    let path = hours.to_string_lossy().into_owned();
    let options = system_tests::harness::Options::default().relay(&["--office-hours", &path]);
    let system = crate::system_with(options).await?;
    let profile = system_tests::harness::scratch_dir("lighthouse-profile")?;
    let run = tokio::process::Command::new(&lighthouse)
        .arg(format!("{}#gms-chat-open", system.page_url()))
        .args(["--only-categories=accessibility", "--output=json", "--output-path=stdout"])
        .args(["--quiet", "--max-wait-for-load=20000"])
        .arg(format!(
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu --user-data-dir={}",
            profile.display()
        ))
        .env("CHROME_PATH", &chromium)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {lighthouse}"))?;
    let _ = std::fs::remove_dir_all(&profile);
    let report: Value = serde_json::from_slice(&run.stdout).with_context(|| {
        format!("lighthouse printed no report: {}", String::from_utf8_lossy(&run.stderr))
    })?;
    let category = &report["categories"]["accessibility"];
    let failing: Vec<String> = category["auditRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|audit_ref| {
            let audit = &report["audits"][audit_ref["id"].as_str()?];
            let failed = audit["score"].as_f64().is_some_and(|s| s < 1.0);
            failed.then(|| format!("{}: {}", audit["id"], audit["title"]))
        })
        .collect();
    assert_eq!(category["score"].as_f64(), Some(1.0), "failing audits: {failing:#?}");
    // The open panel was audited (its dialog's name is checked only where a dialog is).
    let dialog = &report["audits"]["aria-dialog-name"]["scoreDisplayMode"];
    assert_eq!(dialog, "binary", "the panel was not open when Lighthouse looked");
    system.stop().await
}
