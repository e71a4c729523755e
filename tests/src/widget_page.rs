//! The widget as a page object: what a visitor sees in it and does with it, in the tab a
//! `Browser` has open, so tests say what they mean rather than how the widget is built.
//!
//! The widget lives in an open shadow root, so its elements are found with a script and
//! then clicked and typed into through WebDriver's real input actions.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::webdriver::{Browser, Element};

/// WebDriver's Enter key.
pub const ENTER: &str = "\u{E007}";
/// WebDriver's Shift key.
pub const SHIFT: &str = "\u{E008}";

/// The widget in the browser's current tab.
#[derive(Clone, Copy)]
pub struct WidgetPage<'a> {
    browser: &'a Browser,
}

impl<'a> WidgetPage<'a> {
    /// The widget of whatever page `browser`'s current tab shows.
    pub fn of(browser: &'a Browser) -> WidgetPage<'a> {
        WidgetPage { browser }
    }

    /// Waits (20 s at most) for an element inside the widget.
    pub async fn element(&self, selector: &str) -> Result<Element> {
        let found = self
            .browser
            .wait_for(
                selector,
                20,
                "const host = document.getElementById('gms-chat-widget');
                 return host && host.shadowRoot ? host.shadowRoot.querySelector(arguments[0]) : null;",
                json!([selector]),
            )
            .await?;
        Element::of(&found)
    }

    /// Waits for the element, then clicks it.
    pub async fn click(&self, selector: &str) -> Result<()> {
        self.browser.click(&self.element(selector).await?).await
    }

    /// The text of every element matching `selector` in the widget.
    pub async fn texts(&self, selector: &str) -> Result<Vec<String>> {
        let value = self
            .browser
            .script(
                "const root = document.getElementById('gms-chat-widget').shadowRoot;
                 return Array.from(root.querySelectorAll(arguments[0])).map(e => e.textContent);",
                json!([selector]),
            )
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    /// An attribute of the first element matching `selector` in the widget (null if absent).
    pub async fn attribute(&self, selector: &str, name: &str) -> Result<Value> {
        self.browser
            .script(
                "return document.getElementById('gms-chat-widget').shadowRoot
                   .querySelector(arguments[0]).getAttribute(arguments[1]);",
                json!([selector, name]),
            )
            .await
    }

    /// Waits until some element matching `selector` contains `text`.
    pub async fn wait_for_text(&self, selector: &str, text: &str, seconds: u64) -> Result<()> {
        self.browser
            .wait_for(
                &format!("{selector} containing {text:?}"),
                seconds,
                "const host = document.getElementById('gms-chat-widget');
                 if (!host || !host.shadowRoot) return false;
                 return Array.from(host.shadowRoot.querySelectorAll(arguments[0])).some(e => e.textContent.includes(arguments[1]));",
                json!([selector, text]),
            )
            .await
            .map(drop)
    }

    /// The chat id the widget stored, once it has one.
    pub async fn stored_chat_id(&self) -> Result<String> {
        let id = self
            .browser
            .wait_for(
                "a stored chat",
                10,
                "const s = JSON.parse(localStorage.getItem('gms-chat:v1') || '{}');
                 return s.chat ? s.chat.credentials.chatId : null;",
                json!([]),
            )
            .await?;
        Ok(id.as_str().context("chat id")?.to_owned())
    }

    /// As a visitor: opens the host page, opens the panel, gives a name, starts the chat
    /// and waits until it is connected to the relay; answers the stored chat id.
    pub async fn start_chat(&self, page_url: &str, name: &str) -> Result<String> {
        self.submit_prechat(page_url, name).await?;
        self.wait_for_text("[data-testid=status]", "Connected", 20).await?;
        self.stored_chat_id().await
    }

    /// As a visitor: opens the host page and the panel, gives a name and starts the chat;
    /// returns once the conversation shows, whatever the relay connection does.
    pub async fn submit_prechat(&self, page_url: &str, name: &str) -> Result<()> {
        self.browser.goto(page_url).await?;
        self.click("[data-testid=launcher]").await?;
        self.fill_prechat(name).await
    }

    /// In the open panel's pre-chat form: gives a name and starts the chat; returns once
    /// the conversation shows.
    pub async fn fill_prechat(&self, name: &str) -> Result<()> {
        let field = self.element("[data-testid=prechat-name]").await?;
        self.browser.type_into(&field, name).await?;
        self.click("[data-testid=prechat-submit]").await?;
        self.element("[data-testid=composer]").await.map(drop)
    }

    /// Types `text` into the composer and sends it with Enter.
    pub async fn say(&self, text: &str) -> Result<()> {
        let composer = self.element("[data-testid=composer]").await?;
        self.browser.type_into(&composer, &format!("{text}{ENTER}")).await
    }

    /// Waits until the widget's animations (the panel's entrance) have finished, so that
    /// positions and colours are judged at rest: WebKit under Xvfb draws few frames, and
    /// may still be moving the panel when a test looks.
    pub async fn at_rest(&self) -> Result<()> {
        self.browser
            .script(
                "const root = document.getElementById('gms-chat-widget').shadowRoot;
                 return Promise.all(root.getAnimations().map(a => a.finished)).then(() => true);",
                json!([]),
            )
            .await
            .map(drop)
    }

    /// Clicks "Keep a link to this conversation" and answers the link once it is shown.
    pub async fn keep_link(&self) -> Result<String> {
        self.click("[data-testid=keep-link]").await?;
        let link = self
            .browser
            .wait_for(
                "the resume link",
                10,
                "const field = document.getElementById('gms-chat-widget').shadowRoot
                   .querySelector('[data-testid=resume-link]');
                 return field && !field.closest('[hidden]') && field.value;",
                json!([]),
            )
            .await?;
        Ok(link.as_str().context("the resume link is a text")?.to_owned())
    }

    /// The transcript's lines, as shown.
    pub async fn lines(&self) -> Result<Vec<String>> {
        self.texts("[data-testid=line]").await
    }
}
