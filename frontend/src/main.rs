//! The widget's entry points for the loader: `mount` once, then `command` for every call
//! of the host page's `window.GmsChat` API.
use wasm_bindgen::prelude::wasm_bindgen;

fn main() {
    console_error_panic_hook::set_once();
}

/// Mounts the widget into the loader's root element.
#[wasm_bindgen]
pub fn mount(root: web_sys::HtmlElement, config: &str, texts: &str, emit: js_sys::Function) {
    frontend::mount(root, config, texts, emit);
}

/// Runs one host-page command (`open`, `close`, `toggle`, `userData`, `forget`).
#[wasm_bindgen]
pub fn command(name: &str, data: &str) {
    frontend::embed::command(name, data);
}
