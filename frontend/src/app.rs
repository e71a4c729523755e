//! `<App/>`: the launcher, the panel, the pre-chat form, the transcript and the composer.

use futures_channel::mpsc;
use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::gms::Visitor;
use shared::widget_config::WidgetConfig;

use crate::chat::{ChatState, Line, line, validate_prechat};
use crate::controller::{Command, ConnState, Controller};
use crate::texts::fill;

/// The whole widget.
#[component]
pub fn App(
    /// What the host page configured.
    config: WidgetConfig,
) -> impl IntoView {
    let title = config.title.clone();
    let ctrl = Controller::new(config, crate::storage::load());
    let t = ctrl.texts;
    let (sender, receiver) = mpsc::unbounded();
    ctrl.set_commands(sender);
    spawn_local(crate::connection::run(ctrl, receiver));
    Effect::new(move |_| ctrl.stored.with(crate::storage::save));
    if ctrl.active_chat().is_some() {
        // A returning visitor: the cached transcript shows at once, the connection task
        // registers and refreshes once.
        ctrl.command(Command::Subscribe);
    }
    watch_page(ctrl);

    let open = move || ctrl.stored.with(|s| s.open);
    let toggle = move |_| ctrl.stored.update(|s| s.open = !s.open);
    let unread = move || {
        ctrl.stored.with(|s| if s.open { 0 } else { s.chat.as_ref().map_or(0, |c| c.unread()) })
    };
    // While the panel is open the visitor sees every new line as it comes.
    Effect::new(move |_| {
        let behind = ctrl
            .stored
            .with(|s| s.open && s.chat.as_ref().is_some_and(|c| c.seen != Some(c.next_position)));
        if behind {
            ctrl.stored.update(|s| s.chat.iter_mut().for_each(ChatState::mark_seen));
        }
    });
    let label = move || match (open(), unread()) {
        (true, _) => t.close_chat.to_owned(),
        (false, 0) => t.open_chat.to_owned(),
        (false, n) => format!("{} ({})", t.open_chat, fill(t.unread, &[("count", &n.to_string())])),
    };
    view! {
        <button
            class="gc-launcher"
            data-testid="launcher"
            aria-expanded=move || open().to_string()
            aria-controls="gc-panel"
            aria-label=label
            on:click=toggle
        >
            {move || if open() { t.close_chat } else { t.open_chat }}
            <Show when=move || { unread() > 0 }>
                <span class="gc-badge" data-testid="unread" aria-hidden="true">{unread}</span>
            </Show>
        </button>
        <Show when=open>
            <section id="gc-panel" class="gc-panel" role="dialog" aria-label=title.clone() data-testid="panel">
                <header class="gc-header">
                    <h2>{title.clone()}</h2>
                    <Status ctrl=ctrl/>
                </header>
                <Notice ctrl=ctrl/>
                {move || {
                    if ctrl.stored.with(|s| s.chat.is_some()) {
                        view! { <Conversation ctrl=ctrl/> }.into_any()
                    } else {
                        view! { <Prechat ctrl=ctrl/> }.into_any()
                    }
                }}
            </section>
        </Show>
    }
}

/// Refresh triggers from the page: visible after a long hide, back online, and the idle
/// refresh (every 30 minutes by default).
fn watch_page(ctrl: Controller) {
    let hidden_at = StoredValue::new(None::<f64>);
    let _ = window_event_listener(leptos::ev::online, move |_| {
        ctrl.command(Command::Wake);
        ctrl.refresh();
    });
    let _ = window_event_listener(leptos::ev::visibilitychange, move |_| {
        let hidden = document().hidden();
        let now = js_sys::Date::now();
        if hidden {
            hidden_at.set_value(Some(now));
        } else if hidden_at.get_value().is_some_and(|at| now - at > 60_000.0) {
            ctrl.command(Command::Wake);
            ctrl.refresh();
        }
    });
    let every_ms = ctrl.config().idle_refresh_seconds.max(1).saturating_mul(1000);
    spawn_local(async move {
        loop {
            gloo_timers::future::TimeoutFuture::new(every_ms).await;
            if ctrl.active_chat().is_some() {
                ctrl.refresh();
            }
        }
    });
}

#[component]
fn Status(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let label = move || match ctrl.conn.get() {
        ConnState::Idle => "",
        ConnState::Connecting => t.connecting,
        ConnState::Connected => t.connected,
        ConnState::Reconnecting => t.reconnecting,
        ConnState::Offline => t.offline,
        ConnState::Refused => t.no_live_updates,
    };
    let class =
        move || format!("gc-status gc-status-{}", format!("{:?}", ctrl.conn.get()).to_lowercase());
    view! { <span class=class data-testid="status" role="status">{label}</span> }
}

#[component]
fn Notice(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    view! {
        <Show when=move || ctrl.notice.with(Option::is_some)>
            <p class="gc-notice" role="alert" data-testid="notice">{move || ctrl.notice.get().unwrap_or_default()}</p>
        </Show>
    }
}

#[component]
fn Prechat(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let subject = RwSignal::new(String::new());
    let error = RwSignal::new(None::<(&'static str, &'static str)>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let (n, e, s) = (name.get_untracked(), email.get_untracked(), subject.get_untracked());
        if let Err(problem) = validate_prechat(&n, &e, t) {
            error.set(Some(problem));
            return;
        }
        error.set(None);
        let optional = |v: String| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        ctrl.start(Visitor {
            nickname: Some(n.trim().to_owned()),
            email_address: optional(e),
            subject: optional(s),
            ..Visitor::default()
        });
    };
    let invalid = move |field: &'static str| {
        move || error.with(|e| e.is_some_and(|(f, _)| f == field)).to_string()
    };
    view! {
        <form class="gc-prechat" on:submit=submit novalidate data-testid="prechat">
            <p class="gc-intro">{t.intro}</p>
            <label for="gc-name">{t.your_name}</label>
            <input id="gc-name" data-testid="prechat-name" autocomplete="name" required
                aria-invalid=invalid("name") aria-describedby="gc-form-error"
                prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
            <label for="gc-email">{t.email}" "<span class="gc-optional">{t.optional}</span></label>
            <input id="gc-email" type="email" data-testid="prechat-email" autocomplete="email"
                aria-invalid=invalid("email") aria-describedby="gc-form-error"
                prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev))/>
            <label for="gc-subject">{t.subject}" "<span class="gc-optional">{t.optional}</span></label>
            <input id="gc-subject" data-testid="prechat-subject"
                prop:value=move || subject.get() on:input=move |ev| subject.set(event_target_value(&ev))/>
            <p id="gc-form-error" class="gc-error" data-testid="prechat-error" aria-live="assertive">
                {move || error.get().map(|(_, message)| message).unwrap_or_default()}
            </p>
            <button type="submit" class="gc-primary" data-testid="prechat-submit" disabled=move || ctrl.starting.get()>
                {move || if ctrl.starting.get() { t.starting } else { t.start_chat }}
            </button>
        </form>
    }
}

#[component]
fn Conversation(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let list = NodeRef::<leptos::html::Div>::new();
    let lines = move || {
        ctrl.stored.with(|s| {
            s.chat
                .as_ref()
                .map(|c| {
                    c.events
                        .iter()
                        .filter_map(|e| Some((e.index.unwrap_or(0), line(e, t)?)))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let ended = move || ctrl.stored.with(|s| s.chat.as_ref().is_some_and(|c| c.ended));
    let typing = move || ctrl.stored.with(|s| s.chat.as_ref().and_then(|c| c.agent_typing()));
    Effect::new(move |_| {
        ctrl.stored.track();
        ctrl.outbox.track();
        if let Some(el) = list.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    view! {
        <div class="gc-transcript" node_ref=list role="log" aria-live="polite" aria-label=t.conversation data-testid="transcript" tabindex="0">
            <For each=lines key=|(index, _)| *index children=move |(index, line)| view! { <LineView index=index line=line ctrl=ctrl/> }/>
            <For each=move || ctrl.outbox.get() key=|m| (m.id, m.failed.clone()) children=move |m| {
                let id = m.id;
                let failed = m.failed.clone();
                view! {
                    <div class="gc-line gc-mine gc-pending" data-testid="outgoing">
                        <div class="gc-bubble">{m.text}</div>
                        {match failed {
                            None => view! { <span class="gc-meta">{t.sending}</span> }.into_any(),
                            Some(reason) => view! {
                                <span class="gc-meta gc-failed" data-testid="failed">{reason}" "
                                    <button class="gc-link" data-testid="retry" on:click=move |_| ctrl.retry(id)>{t.retry}</button>
                                </span>
                            }.into_any(),
                        }}
                    </div>
                }
            }/>
        </div>
        <p class="gc-typing" data-testid="typing" aria-live="polite">
            {move || typing().map(|who| fill(t.is_typing, &[("who", &who)])).unwrap_or_default()}
        </p>
        {move || if ended() {
            view! {
                <div class="gc-ended" data-testid="ended">
                    <p>{t.chat_ended}</p>
                    <button class="gc-primary" data-testid="new-chat" on:click=move |_| ctrl.new_chat()>{t.new_chat}</button>
                </div>
            }.into_any()
        } else {
            view! { <Composer ctrl=ctrl/> }.into_any()
        }}
    }
}

#[component]
fn LineView(
    /// Transcript index, for tests and screen readers.
    index: u64,
    /// What to show.
    line: Line,
    /// The widget's controller (texts, downloads).
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let you = t.you;
    match line {
        Line::Message { mine, who, text } => view! {
            <div class=if mine { "gc-line gc-mine" } else { "gc-line gc-theirs" } data-testid="line" data-index=index>
                <span class="gc-who">{if mine { you.to_owned() } else { who }}</span>
                <div class="gc-bubble">{text}</div>
            </div>
        }
        .into_any(),
        Line::Link { mine, who, text, url } => view! {
            <div class=if mine { "gc-line gc-mine" } else { "gc-line gc-theirs" } data-testid="line" data-index=index>
                <span class="gc-who">{if mine { you.to_owned() } else { who }}</span>
                <div class="gc-bubble">{match url {
                    Some(url) => view! { <a href=url target="_blank" rel="noopener noreferrer">{text}</a> }.into_any(),
                    None => view! { <span>{text}</span> }.into_any(),
                }}</div>
            </div>
        }
        .into_any(),
        Line::File { mine, text, file_id, name } => view! {
            <div class=if mine { "gc-line gc-mine gc-file" } else { "gc-line gc-theirs gc-file" } data-testid="line" data-index=index>
                <span>{text}" "</span>
                {file_id.map(|id| view! {
                    <button class="gc-link" data-testid="download"
                        on:click=move |_| ctrl.download(id.clone(), name.clone())>{t.download}</button>
                })}
            </div>
        }
        .into_any(),
        Line::System(text) => view! {
            <div class="gc-line gc-system" data-testid="line" data-index=index>{text}</div>
        }
        .into_any(),
    }
}

#[component]
fn Composer(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let draft = RwSignal::new(String::new());
    let picker = NodeRef::<leptos::html::Input>::new();
    let send = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            ctrl.send(&text);
            draft.set(String::new());
        }
    };
    let keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    view! {
        <div class="gc-composer">
            <label for="gc-draft" class="gc-visually-hidden">{t.message}</label>
            <textarea id="gc-draft" rows="2" data-testid="composer" placeholder=t.placeholder
                prop:value=move || draft.get()
                on:input=move |ev| {
                    let text = event_target_value(&ev);
                    ctrl.typed(&text);
                    draft.set(text);
                }
                on:keydown=keydown></textarea>
            <div class="gc-actions">
                <button class="gc-link" data-testid="end-chat" on:click=move |_| ctrl.end()>{t.end_chat}</button>
                // The file input stays out of sight and out of the tab order; the button is
                // what keyboard and screen reader users meet.
                <input type="file" class="gc-visually-hidden" tabindex="-1" aria-hidden="true"
                    data-testid="file-input" node_ref=picker on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        if let Some(file) = input.files().and_then(|files| files.get(0)) {
                            ctrl.upload(file);
                        }
                        input.set_value("");
                    }/>
                <button class="gc-link gc-attach" data-testid="attach" disabled=move || ctrl.uploading.get()
                    on:click=move |_| if let Some(input) = picker.get() { input.click() }>
                    {move || if ctrl.uploading.get() { t.sending_file } else { t.attach_file }}
                </button>
                <button class="gc-primary" data-testid="send" on:click=move |_| send()>{t.send}</button>
            </div>
        </div>
    }
}
