//! A richer conversation: the formatting of agents' lines (bold, italic, code, lists,
//! links by the safe-link rule), which a hostile agent line cannot turn into markup.

use anyhow::Result;
use serde_json::json;
use system_tests::gms_client::SimAdmin;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

use super::system;

engines!(an_agents_formatting_shows_and_stays_safe: Chromium, Firefox, WebKit);
async fn an_agents_formatting_shows_and_stays_safe(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let standard_response = "Your **order** is *on its way*: `A-17`\n\
        1. Sign in\n2. Open [your orders](https://shop.example/orders)\n\n\
        - [not a link](javascript:alert(1))\n- <img src=x onerror=alert(2)> **<b>x</b>**\n\
        pay at \u{202e}moc.knab//:sptth\u{202c} now";
    admin.agent_says(&chat_id, standard_response).await?;
    widget.wait_for_text("[data-testid=line]", "Sign in", 10).await?;
    let shown = browser
        .script(
            "const line = Array.from(document.getElementById('gms-chat-widget').shadowRoot
               .querySelectorAll('[data-testid=line]')).find(l => l.textContent.includes('Sign in'));
             const bubble = line.querySelector('.gc-bubble');
             const tags = Array.from(bubble.querySelectorAll('*')).map(e => e.tagName.toLowerCase());
             return {
               tags: [...new Set(tags)].sort(),
               strong: Array.from(bubble.querySelectorAll('strong')).map(e => e.textContent),
               em: Array.from(bubble.querySelectorAll('em')).map(e => e.textContent),
               code: Array.from(bubble.querySelectorAll('code')).map(e => e.textContent),
               numbered: Array.from(bubble.querySelectorAll('ol > li')).map(e => e.textContent),
               bullets: Array.from(bubble.querySelectorAll('ul > li')).map(e => e.textContent),
               links: Array.from(bubble.querySelectorAll('a')).map(a => [a.textContent, a.getAttribute('href'), a.rel, a.target]),
               text: bubble.textContent,
               alerted: !!window.alerted
             };",
            json!([]),
        )
        .await?;
    assert_eq!(
        shown["tags"],
        json!(["a", "code", "em", "li", "ol", "p", "strong", "ul"]),
        "{shown}"
    );
    assert_eq!(shown["strong"], json!(["order", "<b>x</b>"]));
    assert_eq!(shown["em"], json!(["on its way"]));
    assert_eq!(shown["code"], json!(["A-17"]));
    assert_eq!(shown["numbered"], json!(["Sign in", "Open your orders"]));
    assert_eq!(
        shown["links"],
        json!([["your orders", "https://shop.example/orders", "noopener noreferrer", "_blank"]])
    );
    let text = shown["text"].as_str().unwrap_or_default();
    assert!(text.contains("[not a link](javascript:alert(1))"), "{text}");
    assert!(text.contains("<img src=x onerror=alert(2)>"), "{text}");
    assert!(!text.contains('\u{202e}'), "no bidi override reaches the page: {text:?}");
    // The visitor's own lines stay as typed.
    widget.say("**not bold** from me").await?;
    widget.wait_for_text("[data-testid=line]", "**not bold** from me", 10).await?;
    browser.close().await?;
    system.stop().await
}

engines!(a_card_number_never_leaves_the_browser: Chromium, Firefox, WebKit);
async fn a_card_number_never_leaves_the_browser(engine: Engine) -> Result<()> {
    let mut options = system_tests::harness::Options::default();
    options.widget_config.mask_patterns = Some(vec!["card".into(), "###-##-####".into()]);
    let system = super::system_with(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget
        .say("my card is 4111 1111 1111 1111 and ssn 123-45-6789, order 4111111111111112")
        .await?;
    let expected = "my card is •••• •••• •••• 1111 and ssn •••-••-••••, order 4111111111111112";
    widget.wait_for_text("[data-testid=line]", expected, 10).await?;
    widget.wait_for_text("[data-testid=notice]", "card number", 10).await?;
    let transcript = admin.get(&format!("/sim/chats/{chat_id}")).await?.to_string();
    assert!(transcript.contains("•••• •••• •••• 1111"), "{transcript}");
    assert!(!transcript.contains("4111 1111 1111 1111"), "the number reached GMS: {transcript}");
    assert!(!transcript.contains("123-45-6789"));
    let stored = browser.script("return localStorage.getItem('gms-chat:v1');", json!([])).await?;
    assert!(!stored.to_string().contains("4111 1111"), "{stored}");
    browser.close().await?;
    system.stop().await
}

engines!(gms_hears_what_the_visitor_has_seen: Chromium;
    not Firefox, WebKit: "the machine decides it; one engine proves the request reaches GMS");
async fn gms_hears_what_the_visitor_has_seen(engine: Engine) -> Result<()> {
    let system = super::system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.agent_says(&chat_id, "Are you there?").await?;
    widget.wait_for_text("[data-testid=line]", "Are you there?", 10).await?;
    let detail = format!("/sim/chats/{chat_id}");
    let read = system_tests::support::until(
        "a read receipt",
        std::time::Duration::from_secs(10),
        async || {
            let chat = admin.get(&detail).await?;
            let said = chat["transcript"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["text"] == "Are you there?");
            let index = said.and_then(|e| e["index"].as_u64());
            let read = chat["readPosition"].as_u64();
            let seen = matches!((read, index), (Some(read), Some(index)) if read >= index);
            Ok(system_tests::support::Wait::done_if(seen, format!("read {read:?}, line {index:?}")))
        },
    );
    read.await?;
    browser.close().await?;
    system.stop().await
}
