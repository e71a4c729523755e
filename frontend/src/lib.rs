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
pub mod texts;

pub use app::App;

/// Reads the host page's configuration and mounts the widget.
pub fn mount() {
    let config = host::config();
    let lang = texts::for_language(&config.language).lang;
    let Some(root) = host::shadow_mount_point(lang) else {
        leptos::logging::error!("gms-chat: cannot create the widget's shadow root");
        return;
    };
    leptos::mount::mount_to(root, move || leptos::view! { <App config=config/> }).forget();
    // The launcher works from here on; benchmarks read this mark.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("gms-chat:interactive");
    }
}

/// Between half and all of `ms`, so many widgets reconnecting at once spread out.
pub fn jittered(ms: u32) -> u32 {
    let factor = 0.5 + js_sys::Math::random() * 0.5;
    (f64::from(ms) * factor) as u32
}
