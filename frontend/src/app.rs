//! `<App/>`: the launcher and the chat panel.

use leptos::prelude::*;
use shared::widget_config::WidgetConfig;

/// The whole widget.
#[component]
pub fn App(
    /// What the host page configured.
    config: WidgetConfig,
) -> impl IntoView {
    let (open, set_open) = signal(false);
    let title = config.title;
    view! {
        <button
            class="gc-launcher"
            data-testid="launcher"
            aria-expanded=move || open.get().to_string()
            aria-controls="gc-panel"
            on:click=move |_| set_open.update(|o| *o = !*o)
        >
            {move || if open.get() { "Close chat" } else { "Chat with us" }}
        </button>
        <Show when=move || open.get()>
            <section id="gc-panel" class="gc-panel" role="dialog" aria-label=title.clone() data-testid="panel">
                <header class="gc-header"><h2>{title.clone()}</h2></header>
            </section>
        </Show>
    }
}
