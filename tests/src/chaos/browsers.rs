//! The real widgets of a chaos run: Chromium sessions on the host page (through the
//! proxy, like the headless visitors), whose network the schedule takes offline, and whose
//! rendered transcript is checked at the end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use shared::gms::{ChatEvent, EventType};

use super::visitor::Face;
use crate::webdriver::Browser;
use crate::widget_page::WidgetPage;

/// The widgets, each with its chat.
pub(crate) struct Widgets {
    browsers: Vec<Arc<Browser>>,
    /// Each widget's chat, for the agent.
    pub(crate) faces: Vec<Arc<Face>>,
}

impl Widgets {
    /// Opens `count` browsers on `page_url`, each starting a chat.
    pub(crate) async fn start(count: usize, page_url: &str) -> Result<Widgets> {
        let mut widgets = Widgets { browsers: Vec::new(), faces: Vec::new() };
        for k in 0..count {
            let browser = Browser::start().await?;
            let chat_id =
                WidgetPage::of(&browser).start_chat(page_url, &format!("Browser {k}")).await?;
            browser.cdp("Network.enable", json!({})).await?;
            let face = Face::new();
            let _ = face.chat_id.set(chat_id);
            widgets.faces.push(face);
            widgets.browsers.push(Arc::new(browser));
        }
        Ok(widgets)
    }

    /// The browser that a `BrowserOffline` fault names.
    pub(crate) fn browser(&self, k: usize) -> Result<Arc<Browser>> {
        self.browsers.get(k).cloned().context("no such browser")
    }

    /// Waits for each widget to show the agent's last line; answers the ones that did not
    /// within `limit`, and whether each showed every message of its chat once, in order.
    pub(crate) async fn check(
        &self,
        admin: &crate::gms_client::SimAdmin,
        limit: Duration,
    ) -> Result<(u64, Vec<String>, Vec<String>)> {
        let (mut shown, mut stuck, mut violations) = (0, Vec::new(), Vec::new());
        for (k, (browser, face)) in self.browsers.iter().zip(&self.faces).enumerate() {
            let chat_id = face.chat_id.get().context("a widget without a chat")?;
            if WidgetPage::of(browser)
                .wait_for_text("[data-testid=line]", "last line", limit.as_secs())
                .await
                .is_err()
            {
                stuck.push(format!("browser {k} (chat {chat_id})"));
            }
            let indexes: Vec<u64> = serde_json::from_value(
                browser
                    .script(
                        "const root = document.getElementById('gms-chat-widget').shadowRoot;
                         return Array.from(root.querySelectorAll('[data-testid=line]'))
                           .map(e => Number(e.dataset.index));",
                        json!([]),
                    )
                    .await?,
            )?;
            shown += indexes.len() as u64;
            let detail = admin.get(&format!("/sim/chats/{chat_id}")).await?;
            let transcript: Vec<ChatEvent> = serde_json::from_value(detail["transcript"].clone())?;
            let messages: Vec<u64> = transcript
                .iter()
                .filter(|e| e.event_type == EventType::Message)
                .filter_map(|e| e.index)
                .collect();
            let in_order = indexes.windows(2).all(|w| w[0] < w[1]);
            let missing: Vec<&u64> = messages.iter().filter(|i| !indexes.contains(i)).collect();
            if !in_order || !missing.is_empty() {
                violations.push(format!(
                    "browser {k} (chat {chat_id}): lines {indexes:?}, messages not shown {missing:?}"
                ));
            }
        }
        Ok((shown, stuck, violations))
    }

    /// Closes every browser.
    pub(crate) async fn close(self) {
        for browser in self.browsers {
            if let Ok(browser) = Arc::try_unwrap(browser) {
                let _ = browser.close().await;
            }
        }
    }
}

/// Takes a browser offline or back online (DevTools network emulation: requests fail and
/// the page hears `offline`, then `online`).
pub(crate) async fn set_offline(browser: &Browser, offline: bool) -> Result<()> {
    browser
        .cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await
        .map(drop)
}
