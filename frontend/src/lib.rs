//! The async chat widget: a Leptos CSR app that talks to GMS directly and to the relay
//! for push. The loader (`loader.js`, served as `/widget.js`) makes its shadow root and
//! styles, then mounts it there, so the host page and the widget cannot restyle each other.

pub mod app;
pub mod chat;
pub mod connection;
pub mod controller;
pub mod embed;
mod emoji;
mod host;
mod later;
pub mod net;
mod rich;
mod storage;
mod survey;
mod tabs;
pub mod texts;
mod web_push;

pub use app::App;
use shared::widget_config::WidgetConfig;

/// Mounts the widget into `root` (the loader's `.gc-root`, inside its shadow root) with the
/// loader's checked configuration and the language file it fetched (empty for English);
/// `emit(name, detail)` tells the host page what happens.
pub fn mount(
    root: web_sys::HtmlElement,
    config_json: &str,
    texts_json: &str,
    emit: js_sys::Function,
) {
    let mut config = WidgetConfig::from_json(config_json);
    // Once, here, not on every request; the problems never hold a header's value.
    let problems = config.check_gms_headers();
    if !problems.is_empty() {
        leptos::logging::warn!("gms-chat: gmsHeaders ignored: {}", problems.join("; "));
    }
    let texts = texts::from_language_file(texts_json);
    host::follow_visual_viewport(&root);
    leptos::mount::mount_to(root, move || {
        let ctrl = controller::Controller::new(config, texts);
        // The host page hears from here on: a chat expired just now was never announced.
        embed::link(ctrl, emit);
        ctrl.start();
        leptos::view! { <App ctrl=ctrl/> }
    })
    .forget();
}
