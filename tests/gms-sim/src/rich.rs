//! Rich messages as a bot or an agent sends them through Chat Server: a fallback text and
//! the structured content in the event's `eventAttributes` (`shared::rich` cites the
//! format). The console and `POST /sim/chats/{id}/agent/message` with `template` send these
//! examples, one per template the widget renders; `structured` sends any content as given.

use serde_json::{Value, json};

/// The templates' names, as the console lists them.
pub(crate) const TEMPLATES: [&str; 5] = ["quick-replies", "buttons", "card", "list", "carousel"];

/// The event attributes that carry the structured `content` (JSON text: an object, or a
/// string that holds one, as GMS may send either).
pub(crate) fn attributes(content: &str) -> String {
    let content = serde_json::from_str::<Value>(content)
        .unwrap_or_else(|_| Value::String(content.to_owned()));
    json!({"structured-content": {"genesys-chat": {"content": content}}}).to_string()
}

/// The fallback text and the structured content of the template `name`.
pub(crate) fn template(name: &str) -> Option<(&'static str, Value)> {
    let card = |title: &str, desc: &str, image: &str, buttons: Value| {
        json!({"id": title, "title": title, "desc": desc,
               "image": image, "imageText": title, "components": buttons})
    };
    let button = |text: &str, textback: &str| json!({"type": "button", "id": text, "text": text, "actions": {"textback": textback}});
    Some(match name {
        "quick-replies" => (
            "Will 3:00 PM tomorrow work for you?",
            json!({"contentType": "quick-replies", "content": [
                {"id": 1, "type": "quick-reply", "action": "message", "text": "Sounds good."},
                {"id": 2, "type": "quick-reply", "action": "message", "text": "No, sorry."},
                {"id": 3, "type": "quick-reply", "action": "message", "text": "What else?"}]}),
        ),
        "buttons" => (
            "How can we help? Reply with: Billing, Delivery, or see https://example.com/help",
            json!({"contentType": "generic", "content": [{"id": "help", "desc": "How can we help?",
                "components": [button("Billing", "Billing"), button("Delivery", "Delivery"),
                    {"type": "button", "id": "faq", "text": "Our help pages",
                     "actions": {"url": "https://example.com/help"}}]}]}),
        ),
        "card" => (
            "Your order 1042: a blue kettle, arriving Tuesday.",
            json!({"contentType": "generic", "content": [card(
                "Blue kettle", "Order 1042 arrives on **Tuesday**.",
                "https://picsum.photos/seed/kettle/300/160",
                json!([button("Track it", "Where is order 1042?"),
                       {"type": "button", "id": "view", "text": "View the order",
                        "actions": {"url": "https://example.com/orders/1042"}}]))]}),
        ),
        "list" => (
            "Our plans: Basic (9 EUR), Plus (19 EUR), Pro (39 EUR).",
            json!({"contentType": "list-vertical", "content": [{"id": "plans",
                "title": "Our plans", "desc": "Pick the one that suits you",
                "components": [
                    {"type": "list-item", "id": "basic", "title": "Basic", "desc": "9 EUR a month",
                     "actions": {"textback": "Basic"}},
                    {"type": "list-item", "id": "plus", "title": "Plus", "desc": "19 EUR a month",
                     "actions": {"textback": "Plus"}},
                    {"type": "list-item", "id": "pro", "title": "Pro", "desc": "39 EUR a month",
                     "actions": {"url": "https://example.com/pro"}}]}]}),
        ),
        "carousel" => (
            "Three rooms are free: Garden, Tower, Loft.",
            json!({"contentType": "generic", "content": [
                card("Garden", "Ground floor, quiet", "https://picsum.photos/seed/garden/300/160",
                    json!([button("Book Garden", "Book the Garden room")])),
                card("Tower", "Top floor, the view", "https://picsum.photos/seed/tower/300/160",
                    json!([button("Book Tower", "Book the Tower room")])),
                card("Loft", "Two beds", "https://picsum.photos/seed/loft/300/160",
                    json!([button("Book Loft", "Book the Loft room")]))]}),
        ),
        _ => return None,
    })
}
