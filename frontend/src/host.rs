//! What the widget asks of the browser beyond its own view: the visual viewport, the
//! page's visibility, connectivity, title and scrolling, file downloads, local times,
//! alerts, its Unicode tables. Each takes callbacks: what an event means is the
//! controller's to say.

use std::cell::Cell;
use std::time::Duration;

use leptos::prelude::{Effect, SetValue, StoredValue, UpdateValue, WithValue};
use leptos::prelude::{document, window_event_listener};
use shared::letters::Kind;
use wasm_bindgen::JsCast;

/// A character's kind by the browser's Unicode tables (`shared::letters::Classify`), which
/// spares the wasm core's (2 KB gzipped of the first open). The properties are the ones
/// core answers: `Alphabetic`, else `Numeric` (general category N).
pub(crate) fn char_kind(c: char) -> Kind {
    thread_local! {
        static LETTER: js_sys::RegExp = js_sys::RegExp::new("^\\p{Alphabetic}$", "u");
        static DIGIT: js_sys::RegExp = js_sys::RegExp::new("^\\p{N}$", "u");
    }
    let mut utf8 = [0; 4];
    let c = &*c.encode_utf8(&mut utf8);
    if LETTER.with(|r| r.test(c)) {
        Kind::Letter
    } else if DIGIT.with(|r| r.test(c)) {
        Kind::Digit
    } else {
        Kind::Other
    }
}

/// Calls `online` whenever the browser comes back online.
pub(crate) fn on_online(online: impl Fn() + 'static) {
    let _ = window_event_listener(leptos::ev::online, move |_| online());
}

/// Follows the page's visibility: `hidden` when it is hidden, and `shown` with how long it
/// was hidden when it shows again (by the wall clock, which keeps running while a phone
/// sleeps).
pub(crate) fn on_visibility(hidden: impl Fn() + 'static, shown: impl Fn(Duration) + 'static) {
    let hidden_at = Cell::new(None::<f64>);
    let _ = window_event_listener(leptos::ev::visibilitychange, move |_| {
        let now = js_sys::Date::now();
        if document().hidden() {
            hidden_at.set(Some(now));
            hidden();
        } else if let Some(since) = hidden_at.get() {
            shown(Duration::from_millis((now - since).max(0.0) as u64));
        }
    });
}

/// Shows `count()` in the page's title ("(2) " before the site's own) while it is above
/// zero, following it. The site's own title is kept meanwhile and put back: the site may
/// change it at other times.
pub(crate) fn count_in_title(count: impl Fn() -> usize + 'static) {
    let site_title = StoredValue::new(None::<String>);
    Effect::new(move |_| match count() {
        0 => {
            if let Some(title) = site_title.try_update_value(Option::take).flatten() {
                document().set_title(&title);
            }
        }
        count => {
            if site_title.with_value(Option::is_none) {
                site_title.set_value(Some(document().title()));
            }
            let own = site_title.with_value(|t| t.clone().unwrap_or_default());
            document().set_title(&format!("({count}) {own}"));
        }
    });
}

/// Keeps the page behind the widget from scrolling while `still()` holds (on a phone the
/// open panel is the page). The page's own setting is kept and put back.
pub(crate) fn hold_page_scroll(still: impl Fn() -> bool + 'static) {
    let page_overflow = StoredValue::new(None::<String>);
    Effect::new(move |_| {
        let Some(body) = document().body() else { return };
        let style = body.style();
        if still() {
            if page_overflow.with_value(Option::is_none) {
                let own = style.get_property_value("overflow").unwrap_or_default();
                page_overflow.set_value(Some(own));
                let _ = style.set_property("overflow", "hidden");
            }
        } else if let Some(own) = page_overflow.try_update_value(Option::take).flatten() {
            let _ = style.set_property("overflow", &own);
        }
    });
}

/// Keeps `--gc-vv-top` and `--gc-vv-height` on `target` equal to the visual viewport's
/// place in the layout viewport, for the page's life. An on-screen keyboard shrinks only
/// the visual viewport, so a full-screen panel sized by these stays above it.
pub(crate) fn follow_visual_viewport(target: &web_sys::HtmlElement) {
    let Some(viewport) = web_sys::window().and_then(|w| w.visual_viewport()) else { return };
    let style = target.style();
    let watched = viewport.clone();
    let update = move || {
        // Whole pixels: formatting fractions would bring float printing into the wasm.
        let px = |value: f64| format!("{}px", value.round() as i64);
        let _ = style.set_property("--gc-vv-top", &px(watched.offset_top()));
        let _ = style.set_property("--gc-vv-height", &px(watched.height()));
    };
    update();
    let callback = wasm_bindgen::closure::Closure::<dyn Fn()>::new(update);
    for event in ["resize", "scroll"] {
        let _ = viewport.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
    }
    callback.forget();
}

/// Offers bytes to the visitor as a file download (a blob URL behind a `download` link).
pub(crate) fn save_file(bytes: &[u8], name: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence(&parts) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Some(link) = document
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        link.set_href(&url);
        link.set_download(name);
        link.click();
    }
    // The download has started from the URL by now; free it a little later all the same.
    leptos::task::spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
}

/// Whether the page is as narrow as a phone (where the panel fills the screen).
pub(crate) fn is_phone() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(max-width: 480px)").ok().flatten())
        .is_some_and(|query| query.matches())
}

/// A moment as the visitor reads the time of day, in their locale and time zone.
pub(crate) fn local_time(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"hour".into(), &"2-digit".into());
    let _ = js_sys::Reflect::set(&options, &"minute".into(), &"2-digit".into());
    date.to_locale_time_string_with_options("default", &options).into()
}

/// A moment days ahead as the visitor reads it, weekday first (`Tue 8 Dec, 09:00`), in
/// their locale and time zone: when the office opens.
pub(crate) fn local_weekday_time(ms: u64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let options = js_sys::Object::new();
    let parts = [
        ("weekday", "short"),
        ("day", "numeric"),
        ("month", "short"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
    ];
    for (key, value) in parts {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date.to_locale_string("default", &options).into()
}

/// A moment with its date, as the visitor reads it, for the transcript file.
pub(crate) fn local_date_time(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED).into()
}

/// The day of a moment, as the visitor reads a date, for the transcript's day dividers.
pub(crate) fn local_date(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let options = js_sys::Object::new();
    for (key, value) in [("day", "numeric"), ("month", "long"), ("year", "numeric")] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date.to_locale_date_string("default", &options).into()
}

/// Asks the browser for permission to show notifications (the visitor just asked for
/// alerts); where there is no Notifications API, nothing happens.
pub(crate) fn ask_notification_permission() {
    let Some(notification) = notification_class() else { return };
    if let Ok(request) = js_sys::Reflect::get(&notification, &"requestPermission".into())
        .and_then(wasm_bindgen::JsCast::dyn_into::<js_sys::Function>)
    {
        let _ = request.call0(&notification);
    }
}

/// Tells the visitor a line arrived while the page was hidden: a short tone, and a system
/// notification when the browser allows them. No file is loaded for either.
pub(crate) fn alert(title: &str, body: &str) {
    beep();
    let Some(notification) = notification_class() else { return };
    let granted = js_sys::Reflect::get(&notification, &"permission".into())
        .ok()
        .and_then(|p| p.as_string())
        .is_some_and(|p| p == "granted");
    if !granted {
        return;
    }
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"body".into(), &body.into());
    let _ = js_sys::Reflect::set(&options, &"tag".into(), &"gms-chat".into());
    if let Ok(constructor) = wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(notification) {
        let args = js_sys::Array::of2(&title.into(), &options);
        let _ = js_sys::Reflect::construct(&constructor, &args);
    }
}

fn notification_class() -> Option<wasm_bindgen::JsValue> {
    let window = web_sys::window()?;
    js_sys::Reflect::get(&window, &"Notification".into()).ok().filter(|n| n.is_function())
}

/// A soft 150 ms tone through Web Audio.
fn beep() {
    let Some(window) = web_sys::window() else { return };
    let Ok(class) = js_sys::Reflect::get(&window, &"AudioContext".into()) else { return };
    let Ok(class) = wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(class) else { return };
    let Ok(context) = js_sys::Reflect::construct(&class, &js_sys::Array::new()) else { return };
    let call = |target: &wasm_bindgen::JsValue, name: &str, args: &js_sys::Array| {
        js_sys::Reflect::get(target, &name.into())
            .and_then(wasm_bindgen::JsCast::dyn_into::<js_sys::Function>)
            .and_then(|f| f.apply(target, args))
    };
    let Ok(oscillator) = call(&context, "createOscillator", &js_sys::Array::new()) else { return };
    let Ok(destination) = js_sys::Reflect::get(&context, &"destination".into()) else { return };
    let _ = call(&oscillator, "connect", &js_sys::Array::of1(&destination));
    let now = js_sys::Reflect::get(&context, &"currentTime".into())
        .ok()
        .and_then(|t| t.as_f64())
        .unwrap_or(0.0);
    let _ = call(&oscillator, "start", &js_sys::Array::of1(&now.into()));
    let _ = call(&oscillator, "stop", &js_sys::Array::of1(&(now + 0.15).into()));
}

/// This page's address.
pub(crate) fn page_url() -> String {
    web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default()
}

/// Puts `text` on the clipboard through the Clipboard API; answers whether it was asked
/// (the browser may still refuse, without a way to know at once).
pub(crate) fn copy_text(text: &str) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let clipboard = js_sys::Reflect::get(&window.navigator(), &"clipboard".into());
    let Some(clipboard) = clipboard.ok().filter(|c| !c.is_undefined()) else { return false };
    let write = js_sys::Reflect::get(&clipboard, &"writeText".into());
    let Ok(write) = write.and_then(wasm_bindgen::JsCast::dyn_into::<js_sys::Function>) else {
        return false;
    };
    write.call1(&clipboard, &text.into()).is_ok()
}
