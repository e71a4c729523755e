//! Runs the visitor's state machine (`shared::visitor::Machine`) in the page: every event
//! becomes an `Input` (the page's triggers through `host`, other tabs through `storage`
//! and `tabs`, the socket through `connection`), every `Effect` is carried out here
//! (requests, the relay socket, timers, localStorage, reading a picked file), and the view
//! reads the machine through one revision signal.
//! No decision is made here.

use std::cell::RefCell;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::gms::ChatOperation;
use shared::relay_api::{ClientFrame, IDENTITY_PATH, RESUME_PATH, ResumeClaim};
use shared::visitor::{
    Effect, GmsResult, Input, Machine, NetFailure, Notice, PickedFile, TYPING_PAUSE,
};
use shared::widget_config::WidgetConfig;

use crate::net::{self, NetError};
use crate::texts::{Texts, fill};

thread_local! {
    /// The file the visitor picked last, until the machine asks for its bytes.
    static PICKED: RefCell<Option<web_sys::File>> = const { RefCell::new(None) };
}

/// The widget's machine and what runs its effects. `Copy`: every field is an arena handle.
#[derive(Clone, Copy)]
pub struct Controller {
    config: StoredValue<WidgetConfig>,
    /// What the widget says, in the configured language.
    pub texts: &'static Texts,
    machine: StoredValue<Machine>,
    /// Bumped after every step: what the view tracks.
    revision: RwSignal<u64>,
}

impl Controller {
    /// The controller over what localStorage holds (nothing, for a visitor who never
    /// chatted: then nothing is written until they start a chat), with an ended chat kept
    /// past the site's days already gone, before anything shows or announces it.
    pub fn new(config: WidgetConfig, texts: &'static Texts) -> Controller {
        let machine = match crate::storage::load() {
            Some(stored) => Machine::new(stored, &config.service, &config.node_group),
            None => Machine::fresh(
                &crate::storage::new_device_id(),
                &config.service,
                &config.node_group,
            ),
        }
        .with_mask(config.mask(crate::host::char_kind))
        .with_proxy(config.proxy)
        .with_closed_mode(config.closed_mode)
        .with_survey(config.survey, config.surveys);
        let keep = config.keep_ended();
        let ctrl = Controller {
            texts,
            config: StoredValue::new(config),
            machine: StoredValue::new(machine),
            revision: RwSignal::new(0),
        };
        ctrl.input(Input::Expire { now_ms: js_sys::Date::now() as u64, keep });
        ctrl
    }

    /// Starts the widget's life in the page: other tabs' writes, the leader election, Web
    /// Push, the load itself (a returning visitor's cached transcript shows at once; the
    /// machine connects, registers once and catches up once) and the page's triggers.
    pub fn start(self) {
        let ctrl = self;
        crate::storage::on_change(
            move |theirs| ctrl.input(Input::StorageChanged(theirs)),
            move || ctrl.input(Input::Wiped { device_id: crate::storage::new_device_id() }),
        );
        // With Web Locks, one tab of the site holds the relay connection and the others
        // follow it; until this tab holds the lock it follows. Without them every tab leads.
        if crate::tabs::elect_leader(move || ctrl.input(Input::Leader(true))) {
            ctrl.input(Input::Leader(false));
        }
        // On a phone the panel fills the screen: it does not come back open by itself.
        if ctrl.with_untracked(|m| m.stored.open) && crate::host::is_phone() {
            ctrl.input(Input::SetOpen(false));
        }
        let push_capable = crate::web_push::capable(&ctrl.config());
        ctrl.input(Input::PushCapable(push_capable));
        if push_capable {
            crate::web_push::follow_clicks(move |resume| {
                ctrl.input(Input::SetOpen(true));
                if let Some(token) = resume {
                    ctrl.input(Input::Resume(token));
                }
            });
        }
        // The site's logged-in visitor first: their chat may be taken up, or be theirs no more.
        let config = ctrl.config();
        if let Some(identity) = config.identity() {
            let device_id = crate::storage::new_device_id();
            ctrl.input(Input::Identify { identity: Some(identity), device_id });
        }
        ctrl.input(Input::Load);
        if !config.resume.is_empty() {
            ctrl.input(Input::Resume(config.resume));
        }
        ctrl.watch_page();
    }

    /// The page's triggers: visible again (after how long), back online, and the idle
    /// timer (every 30 minutes by default); what they cause is the machine's decision.
    /// While the page is hidden, agent lines missed show in its title and, if the visitor
    /// asked for them, as alerts.
    fn watch_page(self) {
        let ctrl = self;
        // The transcript position when the page was hidden: agent lines from there on are
        // missed until the visitor looks again.
        let hidden_from = RwSignal::new(None::<u64>);
        crate::host::on_online(move || ctrl.input(Input::Online));
        crate::host::on_visibility(
            move || {
                let position = ctrl.with_untracked(|m| m.active_chat().map(|c| c.next_position));
                hidden_from.set(position);
            },
            move |hidden| {
                hidden_from.set(None);
                ctrl.input(Input::Visible(hidden));
            },
        );
        let missed = ctrl.memo(move |m| {
            hidden_from.get().map_or(0, |from| {
                m.stored.chat.as_ref().map_or(0, |chat| chat.agent_lines_since(from))
            })
        });
        // One alert per new line missed.
        let alerted = StoredValue::new(0_usize);
        leptos::prelude::Effect::new(move |_| {
            let count = missed.get();
            let before = alerted.try_update_value(|a| std::mem::replace(a, count)).unwrap_or(0);
            if count > before && ctrl.with_untracked(|m| m.stored.alerts) {
                let last = ctrl.with_untracked(|m| {
                    let chat = m.stored.chat.as_ref()?;
                    let event = chat.events.iter().rev().find(|e| !e.from.is_client())?;
                    let text = event.text.clone().unwrap_or_default();
                    Some(format!("{}: {}", event.from.nickname, text))
                });
                crate::host::alert(&ctrl.config().title, &last.unwrap_or_default());
            }
        });
        crate::host::count_in_title(move || missed.get());
        let opened = ctrl.memo(|m| m.stored.open);
        crate::host::hold_page_scroll(move || opened.get() && crate::host::is_phone());
        let every_ms = ctrl.config().idle_refresh_seconds.max(1).saturating_mul(1000);
        spawn_local(async move {
            loop {
                gloo_timers::future::TimeoutFuture::new(every_ms).await;
                ctrl.input(Input::IdleTimer);
            }
        });
    }

    /// The configuration.
    pub fn config(&self) -> WidgetConfig {
        self.config.get_value()
    }

    /// Reads the machine, tracked: the view re-runs after every step.
    pub fn with<T>(&self, read: impl FnOnce(&Machine) -> T) -> T {
        self.revision.track();
        self.machine.with_value(read)
    }

    /// A value derived from the machine that notifies only when it changes, so a view that
    /// depends on it is not rebuilt on every step (a keystroke is a step too).
    pub fn memo<T>(&self, read: impl Fn(&Machine) -> T + Send + Sync + 'static) -> Memo<T>
    where
        T: PartialEq + Send + Sync + 'static,
    {
        let this = *self;
        Memo::new(move |_| this.with(&read))
    }

    /// Reads the machine without tracking.
    pub fn with_untracked<T>(&self, read: impl FnOnce(&Machine) -> T) -> T {
        self.machine.with_value(read)
    }

    /// Feeds one input to the machine and runs the effects it asks for.
    pub fn input(&self, input: Input) {
        let effects = self.machine.try_update_value(|m| m.step(input)).unwrap_or_default();
        self.revision.update(|r| *r += 1);
        for effect in effects {
            self.run(effect);
        }
    }

    /// A part that loads on first use (`crate::later`) could not be fetched: the panel
    /// says so; the next use fetches it again.
    pub fn part_unavailable(&self) {
        self.input(Input::Problem(Notice::Text(self.texts.part_unavailable.to_owned())));
    }

    fn run(&self, effect: Effect) {
        let this = *self;
        match effect {
            Effect::Gms { id, service, operation, credentials, token, policy } => {
                spawn_local(async move {
                    let config = this.config();
                    let to = net::To {
                        service: &service,
                        credentials: credentials.as_ref(),
                        token: token.as_deref(),
                    };
                    // Through the relay, a start's answer is also the chat's registration.
                    if config.proxy && matches!(operation, ChatOperation::Create { .. }) {
                        let (result, session) = net::start(&config, &to, &operation, policy).await;
                        this.input(Input::Started(id, gms_result(result), session.map(Box::new)));
                    } else {
                        let result = net::gms(&config, &to, &operation, policy).await;
                        this.input(Input::Gms(id, gms_result(result)));
                    }
                });
            }
            Effect::Register { id, body, token } => spawn_local(async move {
                let registration = net::register(&this.config(), &body, token.as_deref()).await;
                this.input(Input::Registered(id, registration));
            }),
            Effect::Forget { chat_id, token } => spawn_local(async move {
                net::forget(&this.config(), &chat_id, &token).await;
            }),
            Effect::SubscribePush { chat_id, token, key } => spawn_local(async move {
                let config = this.config();
                let answer =
                    crate::web_push::turn_on(&config, &chat_id, &token, &key, this.texts).await;
                this.input(Input::NotifyAnswered(answer));
            }),
            Effect::UnsubscribePush { chat_id, token } => spawn_local(async move {
                let _ = net::push_subscription(&this.config(), &chat_id, &token, None).await;
            }),
            Effect::OpenSocket => {
                crate::connection::open(&self.config().relay_url, move |input| this.input(input));
            }
            Effect::CloseSocket => crate::connection::close(),
            Effect::Subscribe { chat_id, token } => {
                crate::connection::send(&ClientFrame::Subscribe { chat_id, token });
            }
            Effect::ReconnectAfter { wait, generation } => spawn_local(async move {
                gloo_timers::future::sleep(wait).await;
                this.input(Input::ReconnectDue(generation));
            }),
            Effect::HoursTimer(at) => {
                // A timer longer than the browser's longest (about 24 days) is not set: a
                // form open that long is opened again before.
                let wait = at as f64 - js_sys::Date::now();
                if (0.0..2_000_000_000.0).contains(&wait) {
                    spawn_local(async move {
                        gloo_timers::future::TimeoutFuture::new(wait as u32).await;
                        this.input(Input::HoursDue);
                    });
                }
            }
            Effect::ReceiptTimer(generation) => spawn_local(async move {
                gloo_timers::future::sleep(shared::visitor::RECEIPT_PAUSE).await;
                this.input(Input::ReceiptDue(generation));
            }),
            Effect::TypingTimer(generation) => spawn_local(async move {
                gloo_timers::future::sleep(TYPING_PAUSE).await;
                this.input(Input::TypingPaused(generation));
            }),
            Effect::ReadFile { id } => {
                let file = PICKED.with(|picked| picked.borrow_mut().take());
                spawn_local(async move {
                    let bytes = match file {
                        Some(file) => wasm_bindgen_futures::JsFuture::from(file.array_buffer())
                            .await
                            .ok()
                            .map(|buffer| js_sys::Uint8Array::new(&buffer).to_vec()),
                        None => None,
                    };
                    this.input(Input::FileRead(id, bytes));
                });
            }
            Effect::FindChat { id, identity } => spawn_local(async move {
                let body = shared::json::to_string(&identity);
                let handover = net::handover(&this.config(), IDENTITY_PATH, &body).await;
                this.input(Input::HandedOver(id, handover));
            }),
            Effect::ClaimResume { id, token } => spawn_local(async move {
                let body = shared::json::to_string(&ResumeClaim { resume_token: token });
                let handover = net::handover(&this.config(), RESUME_PATH, &body).await;
                this.input(Input::HandedOver(id, handover));
            }),
            Effect::MakeResumeLink { id, chat_id, token } => spawn_local(async move {
                let link = net::resume_link(&this.config(), &chat_id, &token).await;
                this.input(Input::LinkMade(id, link));
            }),
            Effect::SendSurvey { chat_id, token, answer } => {
                let config = this.config();
                crate::later::spawn(
                    this,
                    crate::later::send_survey(config, chat_id, token, answer),
                );
            }
            Effect::FetchHours { service } => spawn_local(async move {
                let hours = net::office_hours(&this.config(), &service).await;
                this.input(Input::Hours(hours));
            }),
            Effect::Save => {
                let merged = self.machine.with_value(|m| crate::storage::save(&m.stored));
                if let Some(merged) = merged {
                    // Another tab's write had not arrived yet: take it in, after this step.
                    spawn_local(async move { this.input(Input::StorageChanged(merged)) });
                }
            }
            Effect::Wipe => crate::storage::wipe(),
            Effect::Log(message) => leptos::logging::warn!("gms-chat relay: {message}"),
        }
    }

    /// What a notice says, in the widget's language.
    pub fn describe(&self, notice: &Notice) -> String {
        let t = self.texts;
        match notice {
            Notice::Unreachable => t.unreachable.to_owned(),
            Notice::Http(status) => fill(t.http_error, &[("status", &status.to_string())]),
            Notice::Refused(reason) => fill(t.refused, &[("reason", reason)]),
            Notice::CouldNotStart(reason) => fill(t.could_not_start, &[("reason", reason)]),
            Notice::Text(text) => text.clone(),
            Notice::FileRefused(refusal) => crate::chat::file_refusal(refusal, t),
            Notice::FileFailed(failure) => {
                fill(t.file_failed, &[("reason", &self.describe(&failure.notice()))])
            }
            Notice::NotifyFailed => t.notify_failed.to_owned(),
            Notice::ResumeFailed => t.resume_failed.to_owned(),
            Notice::LinkFailed => t.link_failed.to_owned(),
            Notice::Masked => t.masked.to_owned(),
        }
    }

    /// The visitor picked a file: the machine judges it against the chat's limits before
    /// asking for its bytes (`Effect::ReadFile`).
    pub fn pick(&self, file: web_sys::File) {
        let picked =
            PickedFile { name: file.name(), size: file.size() as u64, content_type: file.type_() };
        PICKED.with(|slot| *slot.borrow_mut() = Some(file));
        self.input(Input::FilePicked(picked));
    }

    /// Fetches a chat file and hands it to the browser as a download.
    pub fn download(&self, file_id: String, name: String) {
        let Some(chat) = self.machine.with_value(|m| m.active_chat().cloned()) else { return };
        let this = *self;
        spawn_local(async move {
            let token = chat.relay_token.as_deref();
            let to =
                net::To { service: &chat.service, credentials: Some(&chat.credentials), token };
            match net::download(&this.config(), &to, &file_id).await {
                Ok(bytes) => crate::host::save_file(&bytes, &name),
                Err(error) => this.input(Input::Problem(Notice::Text(error.describe(this.texts)))),
            }
        });
    }
}

/// The machine's view of a request's outcome.
fn gms_result(result: Result<shared::gms::ChatResponse, NetError>) -> GmsResult {
    GmsResult::settled(result.map_err(|error| match error {
        NetError::Http(status) => NetFailure::Http(status),
        NetError::Network(_) | NetError::Refused(_) => NetFailure::Network,
    }))
}
