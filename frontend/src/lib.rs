//! The async chat widget: a Leptos CSR app that talks to GMS directly and to the relay
//! for push, mounted inside a shadow root so the host page and the widget cannot restyle
//! each other.

pub mod app;
pub mod chat;
pub mod connection;
pub mod controller;
mod host;
pub mod net;
mod storage;
mod tabs;
pub mod texts;

pub use app::App;

/// Reads the host page's configuration and mounts the widget.
pub fn mount() {
    let config = host::config();
    let texts = texts::for_language(&config.language);
    let Some(root) = host::shadow_mount_point(texts) else {
        leptos::logging::error!("gms-chat: cannot create the widget's shadow root");
        return;
    };
    host::follow_visual_viewport(&root);
    leptos::mount::mount_to(root, move || leptos::view! { <App config=config/> }).forget();
    // The launcher works from here on; benchmarks read this mark.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("gms-chat:interactive");
    }
}
