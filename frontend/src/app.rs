//! `<App/>`: the launcher, the panel, the pre-chat form, the transcript and the composer.

use leptos::either::{Either, EitherOf4};
use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::prelude::*;
use shared::format::{Block, Inline, blocks, is_plain, without_bidi};
use shared::gms::Visitor;
use shared::relay_api::OfficeHours;
use shared::visitor::{ChatState, Conn, Failure, Input, Machine, NotifyOffer, SurveyStage};

use crate::chat::{
    Line, Segment, day_starts, initials, line, run_starts, segments, transcript_text,
    validate_prechat,
};
use crate::controller::Controller;
use crate::texts::{Texts, fill};

/// The whole widget, over a started controller (`Controller::start`).
#[component]
pub fn App(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let title = ctrl.config().title;
    let opened = ctrl.memo(|m| m.stored.open);
    let open = move || opened.get();
    let launcher = NodeRef::<leptos::html::Button>::new();
    let toggle = move |_| ctrl.input(Input::SetOpen(!opened.get_untracked()));
    // An open panel makes the parts that load on first use likely: fetch them when the
    // browser is idle (at once where it cannot say when).
    Effect::new(move || {
        if opened.get() && request_idle_callback_with_handle(crate::later::prefetch).is_err() {
            crate::later::prefetch();
        }
    });
    // Closing from inside the panel hands the focus back to the launcher.
    let close = move || {
        ctrl.input(Input::SetOpen(false));
        // After the view has updated: on a phone the launcher is hidden while open.
        request_animation_frame(move || {
            if let Some(button) = launcher.get_untracked() {
                let _ = button.focus();
            }
        });
    };
    let escape = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            close();
        }
    };
    let unread = ctrl.memo(|m| {
        if m.stored.open { 0 } else { m.stored.chat.as_ref().map_or(0, ChatState::unread) }
    });
    let unread = move || unread.get();
    let has_chat = ctrl.memo(|m| m.stored.chat.is_some());
    let label = move || match (open(), unread()) {
        (true, _) => t.close_chat.to_owned(),
        (false, 0) => t.open_chat.to_owned(),
        (false, n) => format!("{} ({})", t.open_chat, fill(t.unread, &[("count", &n.to_string())])),
    };
    view! {
        <div class=move || if open() { "gc-open" } else { "" }>
        <button
            class="gc-launcher"
            node_ref=launcher
            data-testid="launcher"
            aria-expanded=move || open().to_string()
            aria-controls="gc-panel"
            aria-label=label
            on:click=toggle
        >
            <svg class="gc-icon" aria-hidden="true" viewBox="0 0 24 24" width="18" height="18">
                <path fill="currentColor" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/>
            </svg>
            {move || if open() { t.close_chat } else { t.open_chat }}
            <Show when=move || { unread() > 0 }>
                <span class="gc-badge" data-testid="unread" aria-hidden="true">{unread}</span>
            </Show>
        </button>
        <Show when=open>
            <section id="gc-panel" class="gc-panel" role="dialog" aria-label=title.clone() data-testid="panel"
                on:keydown=escape>
                // Not a <header>: inside a dialog it would be a second banner landmark of the
                // host page.
                <div class="gc-header">
                    <h2>{title.clone()}</h2>
                    <Status ctrl=ctrl/>
                    <button class="gc-close" data-testid="close" aria-label=t.close_chat
                        on:click=move |_| close()>"×"</button>
                </div>
                <Notice ctrl=ctrl/>
                {move || {
                    if has_chat.get() {
                        Either::Left(view! { <Conversation ctrl=ctrl/> })
                    } else {
                        Either::Right(view! { <Prechat ctrl=ctrl/> })
                    }
                }}
            </section>
        </Show>
        </div>
    }
}

#[component]
fn Status(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let conn = ctrl.memo(|m| m.conn);
    let conn = move || conn.get();
    let label = move || match conn() {
        Conn::Idle => "",
        Conn::Connecting => t.connecting,
        // Another tab holds the connection and this one follows it live.
        Conn::Connected | Conn::Shared => t.connected,
        Conn::Reconnecting => t.reconnecting,
        Conn::Offline => t.offline,
        Conn::Refused => t.no_live_updates,
    };
    let class = move || {
        let name = match conn() {
            Conn::Idle => "idle",
            Conn::Connecting => "connecting",
            Conn::Connected | Conn::Shared => "connected",
            Conn::Reconnecting => "reconnecting",
            Conn::Offline => "offline",
            Conn::Refused => "refused",
        };
        format!("gc-status gc-status-{name}")
    };
    view! { <span class=class data-testid="status" role="status">{label}</span> }
}

#[component]
fn Notice(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let notice = ctrl.memo(|m| m.notice.clone());
    view! {
        <Show when=move || notice.with(Option::is_some)>
            <p class="gc-notice" role="alert" data-testid="notice">
                {move || notice.with(|n| n.as_ref().map(|n| ctrl.describe(n))).unwrap_or_default()}
            </p>
        </Show>
    }
}

#[component]
fn Prechat(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let starting = ctrl.memo(|m| m.starting);
    let refused = ctrl.memo(|m| m.start_refused());
    // The line itself, so the memo is of a type the widget already has (each new one
    // costs the wasm its own copy of the reactive code).
    let hours = ctrl
        .memo(move |m| m.hours().map(|h| hours_text(t, h, m.start_refused())).unwrap_or_default());
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
        ctrl.input(Input::Start(Visitor {
            nickname: Some(n.trim().to_owned()),
            email_address: optional(e),
            subject: optional(s),
            ..Visitor::default()
        }));
    };
    let invalid = move |field: &'static str| {
        move || error.with(|e| e.is_some_and(|(f, _)| f == field)).to_string()
    };
    view! {
        <form class="gc-prechat" on:submit=submit novalidate data-testid="prechat">
            <p class="gc-intro">{t.intro}</p>
            <p class="gc-intro" role="status" data-testid="hours">
                {move || hours.get()}
            </p>
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
            <button type="submit" class="gc-primary" data-testid="prechat-submit"
                disabled=move || starting.get() || refused.get()>
                {move || if starting.get() { t.starting } else { t.start_chat }}
            </button>
        </form>
    }
}

/// What the pre-chat form says of the office hours.
fn hours_text(t: &'static Texts, hours: OfficeHours, refused: bool) -> String {
    let when = hours.next_open.map(crate::host::local_weekday_time);
    match (hours.open, when, refused) {
        (true, _, _) => t.hours_open.to_owned(),
        (false, Some(when), false) => fill(t.hours_closed_write, &[("when", &when)]),
        (false, None, false) => t.hours_closed_later.to_owned(),
        (false, Some(when), true) => fill(t.hours_closed, &[("when", &when)]),
        (false, None, true) => t.hours_closed_now.to_owned(),
    }
}

#[component]
fn Conversation(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let list = NodeRef::<leptos::html::Div>::new();
    let lines = ctrl.memo(move |m| {
        m.stored
            .chat
            .as_ref()
            .map(|c| {
                let shown: Vec<_> = c
                    .events
                    .iter()
                    .filter_map(|e| Some((e.index.unwrap_or(0), line(e, t)?, e.utc_time)))
                    .collect();
                let lines: Vec<Line> = shown.iter().map(|(_, line, _)| line.clone()).collect();
                let times: Vec<Option<i64>> = shown.iter().map(|(_, _, at)| *at).collect();
                let days = day_starts(&times, crate::host::local_date);
                shown
                    .into_iter()
                    .zip(run_starts(&lines))
                    .zip(days)
                    .map(|(((index, line, at), first), day)| (index, line, at, first, day))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    let ended = ctrl.memo(|m| m.stored.chat.as_ref().is_some_and(|c| c.ended));
    let ended = move || ended.get();
    let typing = ctrl.memo(|m| m.stored.chat.as_ref().and_then(ChatState::agent_typing));
    let typing = move || typing.get();
    let outbox = ctrl.memo(|m| m.outbox.clone());
    // Until someone else has said or done anything, the visitor learns that the request
    // arrived and that they may leave and come back.
    let waiting =
        ctrl.memo(|m| m.active_chat().is_some_and(|c| c.events.iter().all(|e| e.from.is_client())));
    // And how long, when GMS estimates it (a memo of the text: a type the widget has).
    let wait = ctrl.memo(move |m| {
        let minutes = m.expected_wait().map(|n| n.to_string());
        minutes.map(|n| fill(t.wait_minutes, &[("minutes", &n)])).unwrap_or_default()
    });
    Effect::new(move |_| {
        lines.track();
        outbox.track();
        if let Some(el) = list.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    view! {
        <div class="gc-transcript" node_ref=list role="log" aria-live="polite" aria-label=t.conversation data-testid="transcript" tabindex="0">
            <For each=move || lines.get() key=|(index, ..)| *index children=move |(index, line, at, first, day)| view! {
                {day.map(|day| view! { <p class="gc-day" role="separator" data-testid="day">{day}</p> })}
                <LineView index=index line=line at=at first=first ctrl=ctrl/>
            }/>
            <Show when=move || waiting.get()>
                <p class="gc-waiting" data-testid="waiting">{t.waiting}" "{move || wait.get()}</p>
            </Show>
            <For each=move || outbox.get() key=|m| (m.id, m.failed.clone()) children=move |m| {
                let id = m.id;
                let failed = m.failed.clone();
                view! {
                    <div class="gc-line gc-mine gc-pending" data-testid="outgoing">
                        <div class="gc-bubble">{m.text}</div>
                        {match failed {
                            None => Either::Left(view! { <span class="gc-meta">{t.sending}</span> }),
                            Some(failure) => Either::Right(view! {
                                <span class="gc-meta gc-failed" data-testid="failed">{failure_text(ctrl, &failure)}" "
                                    <button class="gc-link" data-testid="retry" on:click=move |_| ctrl.input(Input::Retry(id))>{t.retry}</button>
                                </span>
                            }),
                        }}
                    </div>
                }
            }/>
        </div>
        <p class="gc-typing" data-testid="typing" aria-live="polite">
            {move || typing().map(|who| fill(t.is_typing, &[("who", &who)])).unwrap_or_default()}
        </p>
        <Survey ctrl=ctrl/>
        {move || if ended() {
            Either::Left(view! {
                <div class="gc-ended" data-testid="ended">
                    <p>{t.chat_ended}</p>
                    <button class="gc-primary" data-testid="new-chat" on:click=move |_| ctrl.input(Input::NewChat)>{t.new_chat}</button>
                    <button class="gc-link" data-testid="save-transcript" on:click=move |_| crate::later::spawn(ctrl, crate::later::save_transcript(ctrl))>{t.save_transcript}</button>
                </div>
            })
        } else {
            Either::Right(view! { <NotifyChoice ctrl=ctrl/> <KeepLink ctrl=ctrl/> <Composer ctrl=ctrl/> })
        }}
    }
}

/// "Notify me when the agent replies": Web Push, offered once the chat runs and everything
/// supports it (with the reason first when the office is closed); the browser's permission
/// prompt comes only from this click.
#[component]
fn NotifyChoice(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let offer = ctrl.memo(shared::visitor::Machine::notify_offer);
    // A chat started while the office is closed waits for its opening: the offer says so.
    let closed = ctrl.memo(|m| m.hours().is_some_and(|h| !h.open));
    let on = move || offer.get() == NotifyOffer::On;
    // Always rendered, hidden while there is nothing to offer: cheaper in the wasm than a
    // view that comes and goes.
    view! {
        <p class="gc-notify" hidden=move || offer.get() == NotifyOffer::Hidden>
            {move || if on() { t.notify_on } else { "" }}" "
            <button class="gc-link" data-testid="notify" aria-pressed=move || on().to_string()
                disabled=move || offer.get() == NotifyOffer::Busy
                on:click=move |_| ctrl.input(Input::Notify(!on()))>
                {move || match offer.get() {
                    NotifyOffer::On => t.notify_off,
                    NotifyOffer::Busy => t.notify_busy,
                    _ if closed.get() => t.notify_offer_closed,
                    _ => t.notify_offer,
                }}
            </button>
        </p>
    }
}

/// The rating when a chat ends: stars or thumbs, an optional comment and the site's own
/// survey; dismissable, and never in the way of a new chat (the ended view stays below).
/// Always there and `hidden` while not asked, its form is markup (`chat::survey_html`):
/// as typed views it weighed 4 KB more.
#[component]
fn Survey(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let asking = ctrl.memo(|m| m.survey().is_some());
    let before_end = ctrl.memo(|m| m.survey() == Some(SurveyStage::BeforeEnd));
    let host = NodeRef::<leptos::html::Div>::new();
    // The form and its answer come from a part that loads when a survey is first asked for.
    Effect::new(move || {
        let (Some(host), true, before_end) = (host.get(), asking.get(), before_end.get()) else {
            return;
        };
        crate::later::spawn(ctrl, async move {
            let shown = crate::later::survey(ctrl, host.into(), before_end).await;
            if shown.is_err() {
                // No form to rate with: the rating must not stand in the way of the end.
                ctrl.input(Input::SkipSurvey);
            }
            shown
        });
    });
    view! { <div hidden=move || !asking.get() node_ref=host></div> }
}

/// "Keep a link to this conversation": a way back for a visitor whose browser forgets the
/// site (Safari after seven days) or who moves to another device. The link carries a
/// resume token in its fragment; it is shown only in this page, never stored.
#[component]
fn KeepLink(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let offered = ctrl.memo(|m| m.active_chat().is_some_and(|c| c.relay_token.is_some()));
    let busy = ctrl.memo(Machine::making_link);
    let link = ctrl.memo(|m| m.resume_link().unwrap_or_default().to_owned());
    let copied = RwSignal::new(false);
    let mailto = move || {
        let encode = |text: &str| String::from(js_sys::encode_uri_component(text));
        format!("mailto:?subject={}&body={}", encode(t.email_subject), encode(&link.get()))
    };
    // Both states always rendered, one hidden: cheaper in the wasm than views that come
    // and go.
    view! {
        <div class="gc-notify" hidden=move || !offered.get()>
            <button class="gc-link" data-testid="keep-link" hidden=move || !link.get().is_empty()
                disabled=move || busy.get()
                on:click=move |_| ctrl.input(Input::KeepLink { page: crate::host::page_url() })>
                {t.keep_link}
            </button>
            <p hidden=move || link.get().is_empty()>
                {t.link_intro}
                <input class="gc-link-field" readonly data-testid="resume-link"
                    aria-label=t.keep_link prop:value=move || link.get()/>
                // Without the Clipboard API the field is there to copy from by hand.
                <button class="gc-link" data-testid="copy-link"
                    on:click=move |_| copied.set(crate::host::copy_text(&link.get_untracked()))>
                    {move || if copied.get() { t.link_copied } else { t.copy_link }}
                </button>" "
                <a class="gc-link" data-testid="email-link" href=mailto>{t.email_link}</a>
            </p>
        </div>
    }
}

/// Hands the conversation to the visitor as a plain-text file (from `later`).
pub(crate) fn save_transcript(ctrl: Controller) {
    let text = ctrl.with_untracked(|m| {
        m.stored
            .chat
            .as_ref()
            .map(|c| transcript_text(&c.events, ctrl.texts, crate::host::local_date_time))
    });
    if let Some(text) = text {
        crate::host::save_file(text.as_bytes(), "chat-transcript.txt");
    }
}

/// Why a message was not sent, in the widget's language.
fn failure_text(ctrl: Controller, failure: &Failure) -> String {
    match failure {
        Failure::Offline => ctrl.texts.not_sent_offline.to_owned(),
        Failure::ChatEnded => ctrl.texts.chat_ended.to_owned(),
        Failure::Problem(notice) => ctrl.describe(notice),
    }
}

/// Who said a line: their name and, for others, an avatar with their initials, on the
/// first line of a run; later lines keep the name for screen readers only.
#[component]
fn Speaker(
    /// The visitor's own line.
    mine: bool,
    /// The other party's name.
    who: String,
    /// First of a run.
    first: bool,
    /// How the visitor is named.
    you: &'static str,
) -> impl IntoView {
    let name = if mine { you.to_owned() } else { who };
    let avatar = (first && !mine).then(|| {
        view! { <span class="gc-avatar" aria-hidden="true" data-testid="avatar">{initials(&name)}</span> }
    });
    let class = if first { "gc-who" } else { "gc-who gc-visually-hidden" };
    view! { <span class="gc-speaker">{avatar}<span class=class data-testid="who">{name}</span></span> }
}

#[component]
fn LineView(
    /// Transcript index, for tests and screen readers.
    index: u64,
    /// What to show.
    line: Line,
    /// When it happened (ms since the epoch), if GMS said.
    at: Option<i64>,
    /// It starts a run of lines by the same speaker: their name (and avatar) shows.
    first: bool,
    /// The widget's controller (texts, downloads).
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let you = t.you;
    match line {
        Line::Message { mine, who, text, rich } => {
            // An agent's line is formatted; the visitor's own stays plain text with links,
            // as does an agent's line without markup (`shared::format::is_plain`). The
            // formatter loads with the later part: until it has run, or if it cannot be
            // fetched, the line shows as plain text.
            let bubble = NodeRef::<leptos::html::Div>::new();
            let plain_line = mine || is_plain(&text);
            let plain = if plain_line { segments(&text) } else { Vec::new() };
            if !plain_line {
                bubble.on_load(move |element| {
                    element.set_text_content(Some(&without_bidi(&text)));
                    crate::later::spawn(ctrl, crate::later::format_into(element.into(), text));
                });
            }
            // A rich message's content is built by a part that loads on first use; until
            // then, or if it cannot be shown, the fallback text is. Then cards and lists
            // take the text's place (`Some(false)`), and quick replies show under it
            // (`Some(true)`) while they are live.
            let shown = RwSignal::new(None::<bool>);
            let content = NodeRef::<leptos::html::Div>::new();
            let has_rich = rich.is_some();
            // Only a rich line follows the liveness: a memo per line would read the
            // transcript once per line at every step.
            let live = has_rich.then(|| ctrl.memo(move |m| m.live_choices() == Some(index)));
            if let Some(rich) = rich {
                content.on_load(move |element| {
                    crate::later::spawn(ctrl, async move {
                        shown
                            .set(crate::later::rich_into(ctrl, index, element.into(), rich).await?);
                        Ok(())
                    });
                });
            }
            EitherOf4::A(view! {
                <div class=if mine { "gc-line gc-mine" } else { "gc-line gc-theirs" } data-testid="line" data-index=index>
                    <Speaker mine=mine who=who first=first you=you/>
                    <div class="gc-bubble" node_ref=bubble hidden=move || shown.get() == Some(false)>{plain.into_iter().map(|segment| match segment {
                        Segment::Text(text) => Either::Left(view! { <span>{text}</span> }),
                        Segment::Link(url) => {
                            let shown = url.clone();
                            Either::Right(view! { <a href=url target="_blank" rel="noopener noreferrer">{shown}</a> })
                        }
                    }).collect_view()}</div>
                    {has_rich.then(|| view! {
                        <div class="gc-rich" data-testid="rich" node_ref=content
                            hidden=move || shown.get().is_none_or(|under| under && !live.is_some_and(|l| l.get()))></div>
                    })}
                    {at.map(|ms| view! { <time class="gc-time" data-testid="time">{crate::host::local_time(ms)}</time> })}
                </div>
            })
        }
        Line::Link { mine, who, text, url } => EitherOf4::B(view! {
            <div class=if mine { "gc-line gc-mine" } else { "gc-line gc-theirs" } data-testid="line" data-index=index>
                <Speaker mine=mine who=who first=first you=you/>
                <div class="gc-bubble">{match url {
                    Some(url) => Either::Left(view! { <a href=url target="_blank" rel="noopener noreferrer">{text}</a> }),
                    None => Either::Right(view! { <span>{text}</span> }),
                }}</div>
            </div>
        }),
        Line::File { mine, text, file_id, name } => EitherOf4::C(view! {
            <div class=if mine { "gc-line gc-mine gc-file" } else { "gc-line gc-theirs gc-file" } data-testid="line" data-index=index>
                <span>{text}" "</span>
                {file_id.map(|id| view! {
                    <button class="gc-link" data-testid="download"
                        on:click=move |_| crate::later::spawn(ctrl, crate::later::download(ctrl, id.clone(), name.clone()))>{t.download}</button>
                })}
            </div>
        }),
        Line::System(text) => EitherOf4::D(view! {
            <div class="gc-line gc-system" data-testid="line" data-index=index>{text}</div>
        }),
    }
}

/// Fills `bubble` with an agent's line and its formatting (`shared::format`), built as DOM
/// nodes: every piece of text a text node, every link by the safe-link rule. (As Leptos
/// views, the recursive runs cost the wasm ten times more.) Reached from the later part
/// only (`later::format_into`, rich messages' cards), so it loads with it.
pub(crate) fn format_into(bubble: &web_sys::Element, text: &str) {
    /// A new `tag` element at the end of `parent`.
    fn child(parent: &web_sys::Element, tag: &str) -> Option<web_sys::Element> {
        let element = parent.owner_document()?.create_element(tag).ok()?;
        parent.append_child(&element).ok()?;
        Some(element)
    }
    fn runs(parent: &web_sys::Element, list: Vec<Inline>) {
        for run in list {
            let (tag, inner, text) = match run {
                Inline::Text(text) => ("", Vec::new(), text),
                Inline::Strong(inner) => ("strong", inner, String::new()),
                Inline::Emphasis(inner) => ("em", inner, String::new()),
                Inline::Code(text) => ("code", Vec::new(), text),
                Inline::Link { text, url } => {
                    if let Some(a) = child(parent, "a") {
                        let _ = a.set_attribute("href", &url);
                        let _ = a.set_attribute("target", "_blank");
                        let _ = a.set_attribute("rel", "noopener noreferrer");
                        let _ = a.append_with_str_1(&text);
                    }
                    continue;
                }
                Inline::Break => ("br", Vec::new(), String::new()),
            };
            let target = if tag.is_empty() { Some(parent.clone()) } else { child(parent, tag) };
            if let Some(target) = target {
                let _ = target.append_with_str_1(&text);
                runs(&target, inner);
            }
        }
    }
    fn list(parent: &web_sys::Element, tag: &str, start: Option<u32>, items: Vec<Vec<Inline>>) {
        let Some(list) = child(parent, tag) else { return };
        if let Some(start) = start {
            let _ = list.set_attribute("start", &start.to_string());
        }
        for item in items {
            if let Some(li) = child(&list, "li") {
                runs(&li, item);
            }
        }
    }
    for block in blocks(text, crate::host::char_kind) {
        match block {
            Block::Paragraph(inline) => {
                if let Some(paragraph) = child(bubble, "p") {
                    runs(&paragraph, inline);
                }
            }
            Block::Bullets(items) => list(bubble, "ul", None, items),
            Block::Numbered { start, items } => list(bubble, "ol", Some(start), items),
        }
    }
}

#[component]
fn Composer(
    /// The widget's controller.
    ctrl: Controller,
) -> impl IntoView {
    let t = ctrl.texts;
    let draft = RwSignal::new(String::new());
    let alerts = ctrl.memo(|m| m.stored.alerts);
    let uploading = ctrl.memo(Machine::uploading);
    let picker = NodeRef::<leptos::html::Input>::new();
    let send = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            ctrl.input(Input::Send(text));
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
                    ctrl.input(Input::Typed(text.clone()));
                    draft.set(text);
                }
                on:keydown=keydown></textarea>
            <div class="gc-actions">
                <button class="gc-link" data-testid="end-chat" on:click=move |_| ctrl.input(Input::End)>{t.end_chat}</button>
                <button class="gc-link" data-testid="save-transcript" on:click=move |_| crate::later::spawn(ctrl, crate::later::save_transcript(ctrl))>{t.save_transcript}</button>
                <button class="gc-link" data-testid="alerts" aria-pressed=move || alerts.get().to_string()
                    on:click=move |_| {
                        let on = !alerts.get_untracked();
                        if on {
                            crate::host::ask_notification_permission();
                        }
                        ctrl.input(Input::SetAlerts(on));
                    }>
                    {move || if alerts.get() { t.alerts_on } else { t.alerts_off }}
                </button>
                // The file input stays out of sight and out of the tab order; the button is
                // what keyboard and screen reader users meet.
                <input type="file" class="gc-visually-hidden" tabindex="-1" aria-hidden="true"
                    data-testid="file-input" node_ref=picker on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        if let Some(file) = input.files().and_then(|files| files.get(0)) {
                            ctrl.pick(file);
                        }
                        input.set_value("");
                    }/>
                // The picker is the part that loads on first use: it opens and closes itself.
                <button class="gc-link" data-testid="emoji" aria-label=t.emoji title=t.emoji aria-expanded="false"
                    on:click=move |ev| crate::later::spawn(ctrl, crate::later::emoji(ctrl, event_target(&ev), draft))>"🙂"</button>
                <button class="gc-link gc-attach" data-testid="attach" disabled=move || uploading.get()
                    on:click=move |_| if let Some(input) = picker.get() { input.click() }>
                    {move || if uploading.get() { t.sending_file } else { t.attach_file }}
                </button>
                <button class="gc-primary" data-testid="send" on:click=move |_| send()>{t.send}</button>
            </div>
        </div>
    }
}
