//! The browser's side of Web Push: whether the page can offer it, and turning it on (the
//! permission prompt, the site's service worker, the push subscription, the relay).

use shared::visitor::NotifyAnswer;
use shared::widget_config::WidgetConfig;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Notification, NotificationPermission, ServiceWorkerRegistration};

use crate::net;
use crate::texts::Texts;

/// How long a newly registered service worker may take to become active.
const ACTIVATION_WAIT_MS: u32 = 10_000;

/// Whether the page can offer notifications: the site named its service worker, and the
/// browser has service workers, push and notifications and has not blocked them.
pub(crate) fn capable(config: &WidgetConfig) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let has = |target: &JsValue, name: &str| {
        js_sys::Reflect::has(target, &JsValue::from_str(name)).unwrap_or(false)
    };
    !config.service_worker.is_empty()
        && has(&window.navigator(), "serviceWorker")
        && has(&window, "PushManager")
        && has(&window, "Notification")
        && Notification::permission() != NotificationPermission::Denied
}

/// Asks for the permission (first, while the click still counts as the visitor's
/// gesture), subscribes through the site's service worker with the relay's `key`, and
/// hands the subscription to the relay.
pub(crate) async fn turn_on(
    config: &WidgetConfig,
    chat_id: &str,
    token: &str,
    key: &str,
    texts: &Texts,
) -> NotifyAnswer {
    let permission = match Notification::request_permission() {
        Ok(promise) => JsFuture::from(promise).await.ok().and_then(|p| p.as_string()),
        Err(_) => None,
    };
    match permission.as_deref() {
        Some("granted") => {}
        Some("denied") => return NotifyAnswer::Refused,
        _ => return NotifyAnswer::Dismissed,
    }
    let body = match subscribe(&config.service_worker, key).await.and_then(|s| body(&s, texts)) {
        Ok(body) => body,
        Err(error) => {
            leptos::logging::warn!("gms-chat: notifications could not be turned on: {error:?}");
            return NotifyAnswer::Failed;
        }
    };
    match net::push_subscription(config, chat_id, token, Some(&body)).await {
        Ok(()) => NotifyAnswer::On,
        Err(_) => NotifyAnswer::Failed,
    }
}

/// `shared::relay_api::PushSubscriptionBody` as JSON: the browser's own `toJSON()` (its
/// `endpoint` and `keys`) with the page (without its query or fragment) and the titles
/// added, written by the browser's JSON so that no serde code for it weighs on the widget.
fn body(subscription: &JsValue, texts: &Texts) -> Result<String, JsValue> {
    let to_json = js_sys::Reflect::get(subscription, &JsValue::from_str("toJSON"))?;
    let json = to_json.dyn_into::<js_sys::Function>()?.call0(subscription)?;
    let set = |target: &JsValue, key: &str, value: &str| {
        js_sys::Reflect::set(target, &JsValue::from_str(key), &JsValue::from_str(value))
    };
    if let Some(href) = web_sys::window().and_then(|w| w.location().href().ok()) {
        set(&json, "page", shared::visitor::return_page(&href))?;
    }
    let titles = js_sys::Object::new();
    set(&titles, "message", texts.push_message)?;
    set(&titles, "file", texts.push_file)?;
    set(&titles, "ended", texts.push_ended)?;
    set(&titles, "agent", texts.push_agent)?;
    set(&titles, "wait", texts.wait_minutes)?;
    js_sys::Reflect::set(&json, &JsValue::from_str("texts"), &titles)?;
    Ok(js_sys::JSON::stringify(&json)?.into())
}

async fn subscribe(service_worker: &str, key: &str) -> Result<JsValue, JsValue> {
    let window = web_sys::window().ok_or(JsValue::NULL)?;
    let container = window.navigator().service_worker();
    let registration: ServiceWorkerRegistration =
        JsFuture::from(container.register(service_worker)).await?.dyn_into()?;
    // `ready` would wait forever for a page outside the worker's scope: wait for this
    // registration's worker to activate, for a while.
    let mut waited = 0;
    while registration.active().is_none() {
        if waited >= ACTIVATION_WAIT_MS {
            return Err(JsValue::from_str("the service worker did not activate"));
        }
        gloo_timers::future::TimeoutFuture::new(100).await;
        waited += 100;
    }
    let options = web_sys::PushSubscriptionOptionsInit::new();
    options.set_user_visible_only(true);
    options.set_application_server_key(&JsValue::from_str(key));
    JsFuture::from(registration.push_manager()?.subscribe_with_options(&options)?).await
}

/// Opens the panel when the site's service worker says a notification of this chat was
/// clicked (it posts `{type: "gms-chat:open", resume}` to the tab it focuses), handing
/// `open` the notification's resume token, if any; for a `capable` page.
pub(crate) fn follow_clicks(open: impl Fn(Option<String>) + 'static) {
    let Some(window) = web_sys::window() else { return };
    let workers = window.navigator().service_worker();
    let listener = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::MessageEvent)>::new(
        move |event: web_sys::MessageEvent| {
            let field = |name: &str| {
                js_sys::Reflect::get(&event.data(), &JsValue::from_str(name))
                    .ok()
                    .and_then(|v| v.as_string())
            };
            if field("type").as_deref() == Some("gms-chat:open") {
                open(field("resume").filter(|token| !token.is_empty()));
            }
        },
    );
    let _ = workers.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
    // Messages wait until the page says it listens (`startMessages`, which web-sys lacks).
    if let Ok(start) = js_sys::Reflect::get(&workers, &JsValue::from_str("startMessages"))
        .and_then(JsCast::dyn_into::<js_sys::Function>)
    {
        let _ = start.call0(&workers);
    }
    listener.forget();
}
