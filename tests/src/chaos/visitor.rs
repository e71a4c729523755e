//! A headless visitor: the widget's own state machine (`shared::visitor::Machine`) with its
//! effects carried out over real sockets the way the widget carries them out in a page
//! (`frontend/src/controller.rs`, `net.rs`, `connection.rs`): GMS directly, the relay
//! through the proxy, and localStorage as the JSON the widget writes. Closing the tab drops
//! everything but that JSON.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::relay_api::{ClientFrame, ServerFrame};
use shared::visitor::{Effect, Input, Machine, Stored};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::effects::{self, Command};
use super::ledger::Ledger;

/// Where the visitors' requests go.
pub(crate) struct Env {
    pub(crate) gms_url: String,
    /// The proxy in front of the relays.
    pub(crate) relay_url: String,
    pub(crate) service: String,
    pub(crate) http: reqwest::Client,
    /// The relays are in proxy mode: Chat API requests go through them.
    pub(crate) proxy: bool,
}

/// The run's phase, which every visitor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Tabs open and close at the visitor's own pace.
    Chaos,
    /// Every visitor comes back and stays, to show whether anyone is stuck.
    Return,
    /// Close the tab and hand in the ledger.
    Done,
}

/// What the conductor sees of a visitor while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The chat's next transcript position, as the view shows it.
    pub(crate) next_position: u64,
    pub(crate) tab_open: bool,
}

/// One visitor's shared face: its chat, once created, and its progress.
pub(crate) struct Face {
    pub(crate) chat_id: OnceLock<String>,
    pub(crate) progress: watch::Sender<Progress>,
    /// `ended` frames for this chat: the relay forgot it.
    pub(crate) ended_frames: AtomicU64,
}

impl Face {
    pub(crate) fn new() -> Arc<Face> {
        Arc::new(Face {
            chat_id: OnceLock::new(),
            progress: watch::Sender::new(Progress::default()),
            ended_frames: AtomicU64::new(0),
        })
    }
}

/// What a visitor hands in at the end.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) ledger: Ledger,
    /// Tabs opened: the first visit and every return.
    pub(crate) tabs: u64,
    pub(crate) sent: u64,
    pub(crate) failed_sends: u64,
    /// Relay connections opened.
    pub(crate) connections: u64,
}

/// Runs one visitor until the phase is `Done`.
pub(crate) async fn run(
    env: Arc<Env>,
    number: usize,
    seed: u64,
    face: Arc<Face>,
    mut phase: watch::Receiver<Phase>,
) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed ^ (number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut visitor = Visitor { env, number, face, stored: None, outcome: Outcome::default() };
    loop {
        let current = *phase.borrow_and_update();
        match current {
            Phase::Done => break,
            Phase::Chaos => {
                let stay = Duration::from_millis(rng.random_range(5_000..40_000));
                visitor.tab(&mut rng, Some(Instant::now() + stay), &mut phase).await;
                if *phase.borrow() == Phase::Chaos {
                    let away = Duration::from_millis(rng.random_range(1_000..15_000));
                    tokio::select! {
                        () = tokio::time::sleep(away) => {}
                        _ = phase.changed() => {}
                    }
                }
            }
            Phase::Return => visitor.tab(&mut rng, None, &mut phase).await,
        }
    }
    visitor.outcome
}

struct Visitor {
    env: Arc<Env>,
    number: usize,
    face: Arc<Face>,
    /// localStorage: what the widget last wrote.
    stored: Option<String>,
    outcome: Outcome,
}

/// One open tab.
struct Tab {
    machine: Machine,
    inputs: mpsc::Sender<Input>,
    /// Requests, timers and the socket: aborted when the tab closes.
    tasks: JoinSet<()>,
    socket: Option<mpsc::Sender<Command>>,
    rng: StdRng,
}

impl Visitor {
    /// Opens a tab, lives in it until `until` (or the phase says otherwise), closes it.
    async fn tab(
        &mut self,
        rng: &mut StdRng,
        mut until: Option<Instant>,
        phase: &mut watch::Receiver<Phase>,
    ) {
        let service = self.env.service.clone();
        let machine = match self.stored.as_deref().and_then(shared::json::from_str::<Stored>) {
            Some(stored) => Machine::new(stored, &service, ""),
            _ => Machine::fresh(&format!("chaos-device-{}", self.number), &service, ""),
        }
        .with_proxy(self.env.proxy);
        self.outcome.tabs += 1;
        // Bounded: a tab that cannot keep up makes its requests wait, as a busy page would.
        let (inputs, mut received) = mpsc::channel(256);
        let mut tab = Tab {
            machine,
            inputs,
            tasks: JoinSet::new(),
            socket: None,
            rng: StdRng::seed_from_u64(rng.random()),
        };
        self.step(&mut tab, Input::Load);
        self.start_if_needed(&mut tab);
        let mut next_send = Instant::now() + Duration::from_millis(rng.random_range(2_000..20_000));
        let mut next_idle = Instant::now() + Duration::from_secs(1800);
        let far = Instant::now() + Duration::from_secs(86_400);
        loop {
            tokio::select! {
                Some(input) = received.recv() => self.step(&mut tab, input),
                () = tokio::time::sleep_until(next_send) => {
                    self.write(&mut tab);
                    let pause = Duration::from_millis(rng.random_range(5_000..30_000));
                    next_send = Instant::now() + pause;
                }
                () = tokio::time::sleep_until(next_idle) => {
                    self.step(&mut tab, Input::IdleTimer);
                    next_idle = Instant::now() + Duration::from_secs(1800);
                }
                () = tokio::time::sleep_until(until.unwrap_or(far)) => break,
                changed = phase.changed() => {
                    let now = *phase.borrow();
                    if changed.is_err() || now == Phase::Done {
                        break;
                    }
                    // A visitor whose tab is open when everyone comes back stays, so the
                    // final check sees whether a live tab catches up without a new one.
                    until = None;
                }
            }
        }
        self.face.progress.send_modify(|p| p.tab_open = false);
    }

    /// Without a chat (none yet, or the start failed under the faults), the visitor
    /// submits the pre-chat form (again).
    fn start_if_needed(&mut self, tab: &mut Tab) {
        if tab.machine.stored.chat.is_none() && !tab.machine.starting {
            let nickname = Some(format!("Visitor {}", self.number));
            let visitor = shared::gms::Visitor { nickname, ..Default::default() };
            self.step(tab, Input::Start(visitor));
        }
    }

    /// The visitor writes a line, after retrying what failed before; without a chat it
    /// starts one instead.
    fn write(&mut self, tab: &mut Tab) {
        if tab.machine.stored.chat.is_none() {
            self.start_if_needed(tab);
            return;
        }
        let failed: Vec<u64> =
            tab.machine.outbox.iter().filter(|m| m.failed.is_some()).map(|m| m.id).collect();
        for id in failed {
            self.outcome.failed_sends += 1;
            self.step(tab, Input::Retry(id));
        }
        self.outcome.sent += 1;
        let text = format!("v{}-{}", self.number, self.outcome.sent);
        self.step(tab, Input::Send(text));
    }

    fn step(&mut self, tab: &mut Tab, input: Input) {
        let before = tab.machine.stored.chat.as_ref().map_or(1, |c| c.next_position);
        if input == Input::SocketOpened {
            self.outcome.connections += 1;
        }
        if let Input::Frame(ServerFrame::Ended { chat_id }) = &input
            && self.face.chat_id.get() == Some(chat_id)
        {
            self.face.ended_frames.fetch_add(1, Ordering::Relaxed);
        }
        let effects = tab.machine.step(input);
        if let Some(chat) = &tab.machine.stored.chat {
            let _ = self.face.chat_id.set(chat.credentials.chat_id.clone());
            self.outcome.ledger.record(before, chat);
            let progress = Progress { next_position: chat.next_position, tab_open: true };
            self.face.progress.send_if_modified(|p| std::mem::replace(p, progress) != progress);
        }
        for effect in effects {
            self.run(tab, effect);
        }
    }

    fn run(&mut self, tab: &mut Tab, effect: Effect) {
        let inputs = tab.inputs.clone();
        let env = self.env.clone();
        let random: u64 = tab.rng.random();
        match effect {
            Effect::Gms { id, service, operation, credentials, policy, token } => {
                tab.tasks.spawn(async move {
                    let to = effects::To {
                        service: &service,
                        credentials: credentials.as_ref(),
                        token: token.as_deref(),
                    };
                    let input = effects::gms(&env, &to, &operation, policy, random).await;
                    let _ = inputs.send(input(id)).await;
                });
            }
            Effect::Register { id, body, token } => {
                tab.tasks.spawn(async move {
                    let registration = effects::register(&env, &body, token.as_deref()).await;
                    let _ = inputs.send(Input::Registered(id, registration)).await;
                });
            }
            Effect::OpenSocket => {
                if tab.socket.as_ref().is_some_and(|s| !s.is_closed()) {
                    return;
                }
                let (commands, receiver) = mpsc::channel(16);
                tab.socket = Some(commands);
                let url = shared::relay_api::ws_url(&env.relay_url);
                tab.tasks.spawn(effects::socket(url, receiver, inputs, random));
            }
            Effect::CloseSocket => {
                if let Some(socket) = tab.socket.take() {
                    let _ = socket.try_send(Command::Close);
                }
            }
            Effect::Subscribe { chat_id, token } => {
                if let Some(socket) = &tab.socket {
                    // Overflow policy: a frame that does not fit is lost, as on a socket
                    // that closes; the machine subscribes again on the next connection.
                    let _ =
                        socket.try_send(Command::Send(ClientFrame::Subscribe { chat_id, token }));
                }
            }
            Effect::ReconnectAfter { wait, generation } => {
                tab.tasks.spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = inputs.send(Input::ReconnectDue(generation)).await;
                });
            }
            Effect::TypingTimer(generation) => {
                tab.tasks.spawn(async move {
                    tokio::time::sleep(shared::visitor::TYPING_PAUSE).await;
                    let _ = inputs.send(Input::TypingPaused(generation)).await;
                });
            }
            Effect::Save => self.stored = Some(shared::json::to_string(&tab.machine.stored)),
            Effect::Wipe => self.stored = None,
            // Not asked of a visitor that never forgets the chat, turns on notifications,
            // picks a file, is identified, keeps a link, reads the office hours, rates, or
            // opens the panel (which sends read receipts).
            Effect::Forget { .. }
            | Effect::SubscribePush { .. }
            | Effect::UnsubscribePush { .. }
            | Effect::ReadFile { .. }
            | Effect::FindChat { .. }
            | Effect::ClaimResume { .. }
            | Effect::MakeResumeLink { .. }
            | Effect::FetchHours { .. }
            | Effect::SendSurvey { .. }
            | Effect::ReceiptTimer(_)
            | Effect::HoursTimer(_)
            | Effect::Log(_) => {}
        }
    }
}
