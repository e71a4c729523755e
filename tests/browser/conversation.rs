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
    // The formatter comes with the later part: the line shows as text first, then formatted.
    widget.wait_for_text("[data-testid=line] ol > li", "Sign in", 10).await?;
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
    options.widget_config.mask_patterns =
        Some(vec!["card".into(), "###-##-####".into(), "@@-####".into()]);
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
    // Letters beyond ASCII are the browser's Unicode tables' (the wasm carries none): a
    // template's `@` takes Ä and Ω, a card number glued to é is part of a word and stays,
    // one after « is hidden.
    widget.say("ref ÄΩ-1234, code é4111111111111111, «4012888888881881»").await?;
    let expected = "ref ••-••••, code é4111111111111111, «••••••••••••1881»";
    widget.wait_for_text("[data-testid=line]", expected, 10).await?;
    widget.wait_for_text("[data-testid=notice]", "card number", 10).await?;
    let transcript = admin.get(&format!("/sim/chats/{chat_id}")).await?.to_string();
    assert!(transcript.contains("•••• •••• •••• 1111"), "{transcript}");
    assert!(!transcript.contains("4111 1111 1111 1111"), "the number reached GMS: {transcript}");
    assert!(!transcript.contains("123-45-6789"));
    assert!(!transcript.contains("4012888888881881") && !transcript.contains("ÄΩ-1234"));
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

/// The rich content of the line whose fallback text contains `text`: tags, texts, links,
/// images, what its choices send, whether it and the fallback bubble show.
async fn rich_line(browser: &Browser, text: &str) -> Result<serde_json::Value> {
    browser
        .script(
            "const line = Array.from(document.getElementById('gms-chat-widget').shadowRoot
               .querySelectorAll('[data-testid=line]')).find(l => l.querySelector('.gc-bubble')
               ?.textContent.includes(arguments[0]));
             const rich = line.querySelector('[data-testid=rich]');
             const all = Array.from(rich.querySelectorAll('*'));
             return {
               tags: [...new Set(all.map(e => e.tagName.toLowerCase()))].sort(),
               handlers: all.flatMap(e => Array.from(e.attributes).map(a => a.name)).filter(n => n.startsWith('on')),
               shown: !rich.hidden && rich.getClientRects().length > 0,
               bubble: !line.querySelector('.gc-bubble').hidden,
               cards: Array.from(rich.querySelectorAll('.gc-card')).map(c => c.querySelector('.gc-card-title')?.textContent ?? ''),
               replies: Array.from(rich.querySelectorAll('button[data-reply]')).map(b => [b.textContent, b.dataset.reply]),
               links: Array.from(rich.querySelectorAll('a')).map(a => [a.textContent, a.getAttribute('href'), a.rel, a.target]),
               images: Array.from(rich.querySelectorAll('img')).map(i => [i.getAttribute('src'), i.alt, i.loading]),
               rows: Array.from(rich.querySelectorAll('li')).map(l => l.textContent),
               strong: Array.from(rich.querySelectorAll('strong')).map(e => e.textContent),
               carousel: rich.querySelector('.gc-cards')?.getAttribute('tabindex'),
               text: rich.textContent,
               alerted: !!window.alerted
             };",
            json!([text]),
        )
        .await
}

/// Waits until GMS has the visitor's message `text`, linked to the rich message `index`.
async fn answered(admin: &SimAdmin, chat_id: &str, text: &str, index: u64) -> Result<()> {
    let detail = format!("/sim/chats/{chat_id}");
    system_tests::support::until(
        "the visitor's choice at GMS",
        std::time::Duration::from_secs(10),
        async || {
            let chat = admin.get(&detail).await?;
            let sent = chat["transcript"].as_array().into_iter().flatten().find(|e| {
                e["text"] == text && e["from"]["type"] == "Client" && e["type"] == "Message"
            });
            let linked = sent
                .and_then(|e| e["index"].as_u64())
                .map(|i| chat["replies"][i.to_string()].as_u64());
            Ok(system_tests::support::Wait::done_if(
                linked == Some(Some(index)),
                format!("{:?}", chat["replies"]),
            ))
        },
    )
    .await
}

engines!(rich_messages_show_every_template_and_send_the_choice_back: Chromium, Firefox, WebKit);
async fn rich_messages_show_every_template_and_send_the_choice_back(engine: Engine) -> Result<()> {
    let system = system(&[]).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    let send = async |template: &str| -> Result<u64> {
        let sent = admin
            .ok(&format!("/sim/chats/{chat_id}/agent/message"), json!({"template": template}))
            .await?;
        sent["index"].as_u64().ok_or_else(|| anyhow::anyhow!("no index: {sent}"))
    };

    // Quick replies: under the fallback text, gone once one is chosen.
    let quick = send("quick-replies").await?;
    widget.wait_for_text("[data-testid=rich] button", "What else?", 10).await?;
    let shown = rich_line(&browser, "Will 3:00 PM").await?;
    assert_eq!(
        shown["replies"],
        json!([
            ["Sounds good.", "Sounds good."],
            ["No, sorry.", "No, sorry."],
            ["What else?", "What else?"]
        ]),
        "{shown}"
    );
    assert_eq!(
        (shown["shown"].clone(), shown["bubble"].clone()),
        (json!(true), json!(true)),
        "{shown}"
    );
    widget.click("[data-testid=rich] [data-reply='No, sorry.']").await?;
    answered(&admin, &chat_id, "No, sorry.", quick).await?;
    widget.wait_for_text("[data-testid=line]", "No, sorry.", 10).await?;
    assert_eq!(
        rich_line(&browser, "Will 3:00 PM").await?["shown"],
        json!(false),
        "a used set goes"
    );

    // A card: image, linked title, formatted text, a button that answers, one that links.
    let card = send("card").await?;
    widget.wait_for_text("[data-testid=rich]", "Blue kettle", 10).await?;
    let shown = rich_line(&browser, "Your order 1042").await?;
    assert_eq!(shown["bubble"], json!(false), "the card takes the fallback's place: {shown}");
    assert_eq!(shown["cards"], json!(["Blue kettle"]));
    assert_eq!(shown["strong"], json!(["Tuesday"]));
    assert_eq!(
        shown["images"],
        json!([["https://picsum.photos/seed/kettle/300/160", "Blue kettle", "lazy"]])
    );
    assert_eq!(
        shown["links"],
        json!([[
            "View the order",
            "https://example.com/orders/1042",
            "noopener noreferrer",
            "_blank"
        ]])
    );
    widget.click("[data-testid=rich] [data-reply='Where is order 1042?']").await?;
    answered(&admin, &chat_id, "Where is order 1042?", card).await?;
    assert_eq!(rich_line(&browser, "Your order 1042").await?["shown"], json!(true), "a card stays");

    // A list, a carousel and a card of buttons.
    send("list").await?;
    widget.wait_for_text("[data-testid=rich] li", "19 EUR a month", 10).await?;
    let shown = rich_line(&browser, "Our plans").await?;
    assert_eq!(
        shown["rows"],
        json!(["Basic9 EUR a month", "Plus19 EUR a month", "Pro39 EUR a month"]),
        "{shown}"
    );
    assert_eq!(shown["links"][0][1], json!("https://example.com/pro"));
    send("carousel").await?;
    widget.wait_for_text("[data-testid=rich]", "Book Loft", 10).await?;
    let shown = rich_line(&browser, "Three rooms").await?;
    assert_eq!(shown["cards"], json!(["Garden", "Tower", "Loft"]), "{shown}");
    assert_eq!(shown["carousel"], json!("0"), "the carousel scrolls by keyboard too");
    send("buttons").await?;
    widget.wait_for_text("[data-testid=rich] button", "Delivery", 10).await?;

    // Hostile content: markup stays text, no script, no unsafe link or image, an unknown
    // template shows its fallback text.
    let hostile = json!({"contentType": "generic", "content": [{
        "title": "<img src=x onerror=\"window.alerted=1\">Evil", "desc": "<script>window.alerted=1</script>**ok**",
        "image": "http://example.com/plain.png", "actions": {"url": "javascript:window.alerted=1"},
        "components": [
            {"type": "button", "text": "Run", "actions": {"url": "javascript:window.alerted=1"}},
            {"type": "button", "text": "<b>Bold</b>", "actions": {"textback": "<i>hi</i>"}},
            {"type": "button", "text": "Data", "actions": {"url": "data:text/html,<script>alert(1)</script>"}}]}]});
    admin
        .ok(
            &format!("/sim/chats/{chat_id}/agent/message"),
            json!({"text": "Hostile fallback", "structured": hostile}),
        )
        .await?;
    widget.wait_for_text("[data-testid=rich]", "Evil", 10).await?;
    let shown = rich_line(&browser, "Hostile fallback").await?;
    let allowed = [
        "a", "br", "button", "code", "div", "em", "img", "li", "ol", "p", "small", "span",
        "strong", "ul",
    ];
    for tag in shown["tags"].as_array().into_iter().flatten() {
        assert!(allowed.contains(&tag.as_str().unwrap_or_default()), "{tag} in {shown}");
    }
    assert_eq!(shown["handlers"], json!([]), "{shown}");
    assert_eq!(shown["images"], json!([]), "http images do not load: {shown}");
    assert_eq!(shown["links"], json!([]), "only http(s) links: {shown}");
    assert_eq!(shown["replies"], json!([["<b>Bold</b>", "<i>hi</i>"]]));
    assert!(
        shown["text"].as_str().unwrap_or_default().contains("<script>window.alerted=1</script>"),
        "{shown}"
    );
    widget.click("[data-testid=rich] [data-reply='<i>hi</i>']").await?;
    widget.wait_for_text("[data-testid=line]", "<i>hi</i>", 10).await?;
    admin
        .ok(
            &format!("/sim/chats/{chat_id}/agent/message"),
            json!({"text": "Pick a date, any date", "structured": {"contentType": "date-picker", "content": [{"title": "x"}]}}),
        )
        .await?;
    widget.wait_for_text("[data-testid=line]", "Pick a date, any date", 10).await?;
    let url = browser.script("return location.href", json!([])).await?;
    assert_eq!(url, json!(system.page_url()), "nothing navigated");
    assert_eq!(browser.script("return !!window.alerted", json!([])).await?, json!(false));
    browser.close().await?;
    system.stop().await
}

/// The emoji picker's shown buttons and the element that has the focus, in the widget.
async fn picker(browser: &Browser) -> Result<serde_json::Value> {
    browser
        .script(
            "const root = document.getElementById('gms-chat-widget').shadowRoot;
             const picker = root.querySelector('[data-testid=emoji-picker]');
             const shown = picker ? Array.from(picker.querySelectorAll('button')).filter(b => !b.hidden) : [];
             const active = root.activeElement;
             return {
               open: !!picker && !picker.hidden,
               shown: shown.slice(0, 5).map(b => b.dataset.emoji),
               count: shown.length,
               focus: active ? (active.dataset.emoji || active.dataset.testid || active.tagName) : null,
               draft: root.querySelector('[data-testid=composer]').value,
               fetched: performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/emoji/'))
             };",
            json!([]),
        )
        .await
}

engines!(the_emoji_picker_loads_when_first_opened_and_works_by_mouse_and_keyboard: Chromium, Firefox, WebKit);
async fn the_emoji_picker_loads_when_first_opened_and_works_by_mouse_and_keyboard(
    engine: Engine,
) -> Result<()> {
    let widget_config = shared::widget_config::WidgetConfig {
        language: "de".to_owned(),
        ..shared::widget_config::WidgetConfig::default()
    };
    let options = system_tests::harness::Options {
        widget_config,
        ..system_tests::harness::Options::sim(&[])
    };
    let system = super::system_with(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    widget.submit_prechat(&system.page_url(), "Jana").await?;
    widget.wait_for_text("[data-testid=status]", "Verbunden", 20).await?;
    let chat_id = widget.stored_chat_id().await?;
    widget.element("[data-testid=composer]").await?;
    assert_eq!(
        picker(&browser).await?["fetched"],
        json!([]),
        "no emoji data before the picker opens"
    );

    widget.click("[data-testid=emoji]").await?;
    widget.wait_for_text("[data-testid=emoji-picker]", "😀", 10).await?;
    let seen = picker(&browser).await?;
    assert_eq!(seen["focus"], json!("emoji-search"), "the search field takes the focus: {seen}");
    assert!(seen["count"].as_u64().unwrap_or_default() > 1000, "{seen}");
    assert_eq!(seen["fetched"].as_array().map(Vec::len), Some(1), "{seen}");
    assert!(seen["fetched"][0].as_str().unwrap_or_default().ends_with("/emoji/de.txt"), "{seen}");

    // Searched by its German name and keywords.
    browser.type_into(&widget.element("[data-testid=emoji-search]").await?, "grinsen").await?;
    let seen = picker(&browser).await?;
    assert!(seen["shown"].as_array().is_some_and(|s| s.contains(&json!("😀"))), "{seen}");
    assert!(seen["count"].as_u64().unwrap_or(999) < 20, "only the matches show: {seen}");
    widget.click("[data-testid=emoji-picker] [data-emoji='😀']").await?;
    assert_eq!(picker(&browser).await?["draft"], json!("😀"));

    // By keyboard: arrows move between the shown emoji, Enter adds one, Escape closes.
    let first = seen["shown"][0].as_str().unwrap_or_default().to_owned();
    let second = seen["shown"][1].as_str().unwrap_or_default().to_owned();
    let button =
        widget.element(&format!("[data-testid=emoji-picker] [data-emoji='{first}']")).await?;
    browser.type_into(&button, "\u{E014}").await?;
    assert_eq!(picker(&browser).await?["focus"], json!(second), "the arrow moved the focus");
    let button =
        widget.element(&format!("[data-testid=emoji-picker] [data-emoji='{second}']")).await?;
    browser.type_into(&button, "\u{E007}").await?;
    assert_eq!(picker(&browser).await?["draft"], json!(format!("😀{second}")));
    browser.type_into(&button, "\u{E00C}").await?;
    let seen = picker(&browser).await?;
    assert_eq!(
        (seen["open"].clone(), seen["focus"].clone()),
        (json!(false), json!("emoji")),
        "{seen}"
    );

    widget.click("[data-testid=send]").await?;
    widget.wait_for_text("[data-testid=line]", &format!("😀{second}"), 10).await?;
    let transcript = admin.get(&format!("/sim/chats/{chat_id}")).await?.to_string();
    assert!(transcript.contains(&format!("😀{second}")), "{transcript}");
    // Opened again, the picker is there at once, from the first fetch.
    widget.click("[data-testid=emoji]").await?;
    let seen = picker(&browser).await?;
    assert_eq!(
        (seen["open"].clone(), seen["fetched"].as_array().map(Vec::len)),
        (json!(true), Some(1))
    );
    browser.close().await?;
    system.stop().await
}
