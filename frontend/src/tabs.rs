//! One leader among the tabs of a site, by the Web Locks API: the tab that holds the lock
//! keeps the relay connection; when it closes, the lock passes to a waiting tab at once.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

const LOCK_NAME: &str = "gms-chat-leader";

/// Asks for the leader's lock; `elected` runs once this tab holds it (for as long as the
/// page lives). Answers false where the browser has no Web Locks: then every tab leads.
pub(crate) fn elect_leader(elected: impl FnOnce() + 'static) -> bool {
    let Some(locks) = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"locks".into()).ok())
        .filter(|locks| !locks.is_undefined() && !locks.is_null())
    else {
        return false;
    };
    let Some(request) = js_sys::Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let granted = Closure::once_into_js(move |_lock: wasm_bindgen::JsValue| {
        elected();
        // Never settles: the lock is held until the page goes away.
        js_sys::Promise::new(&mut |_, _| {})
    });
    request.call2(&locks, &LOCK_NAME.into(), &granted).is_ok()
}
