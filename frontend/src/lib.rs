//! The async chat widget: a Leptos CSR app that talks to GMS directly and to the relay
//! for push, mounted inside a shadow root so the host page and the widget cannot restyle
//! each other.

pub mod app;
mod host;

pub use app::App;

/// Reads the host page's configuration and mounts the widget.
pub fn mount() {
    let config = host::config();
    let Some(root) = host::shadow_mount_point() else {
        leptos::logging::error!("gms-chat: cannot create the widget's shadow root");
        return;
    };
    leptos::mount::mount_to(root, move || leptos::view! { <App config=config/> }).forget();
}
