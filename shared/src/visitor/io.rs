//! What goes into the visitor's state machine and what comes out of it.

use std::time::Duration;

use crate::gms::{
    Answer, ChatOperation, ChatResponse, Credentials, FileLimits, RetryPolicy, Verdict, Visitor,
};
use crate::relay_api::{
    ChatHandover, Identity, IdentityVerdict, OfficeHours, RegisterSession, ServerFrame,
    SessionRegistered, SurveyAnswer,
};

use super::chat::Stored;

/// Identifies one request, so its answer is applied to the chat it was made for.
pub type RequestId = u64;

/// What the relay connection is doing, as the visitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// No chat, so no connection is needed.
    Idle,
    /// Connecting for the first time.
    Connecting,
    /// Live: new messages arrive by push.
    Connected,
    /// Lost; trying again with backoff.
    Reconnecting,
    /// The browser is offline.
    Offline,
    /// The relay refuses this page (its origin is not allowed): no live updates, and no
    /// reconnecting, until the page is loaded again.
    Refused,
    /// Another tab of this site holds the connection and shares what it receives.
    Shared,
}

/// A problem to show the visitor; the widget words it in the visitor's language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notice {
    /// GMS could not be reached.
    Unreachable,
    /// An HTTP status without an answer.
    Http(u16),
    /// GMS refused the chat's request, with its reason.
    Refused(String),
    /// The chat could not be started, with GMS's reason.
    CouldNotStart(String),
    /// Something the widget itself found (a download that failed): already worded.
    Text(String),
    /// The chat's limits refuse the file the visitor picked.
    FileRefused(FileRefusal),
    /// The file the visitor picked could not be sent: its limits could not be asked for,
    /// or its bytes could not be read.
    FileFailed(NetFailure),
    /// Notifications could not be turned on (no service worker, the push service or the
    /// relay failed).
    NotifyFailed,
    /// The resume link that opened the page leads nowhere (the chat ended, the link was
    /// withdrawn, or it is not one), or the relay could not be asked.
    ResumeFailed,
    /// A link back to the conversation could not be made.
    LinkFailed,
    /// Part of the visitor's line looked like a card number (or matched the site's
    /// `maskPatterns`) and was hidden before it was sent.
    Masked,
}

/// A visitor message on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Local id, for keys and retry.
    pub id: u64,
    /// The text.
    pub text: String,
    /// The rich message it answers, for a choice (`Input::Choose`).
    pub reply_to: Option<u64>,
    /// Why it failed; `None` while sending.
    pub failed: Option<Failure>,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The network failed (the visitor may be offline).
    Offline,
    /// The chat has ended.
    ChatEnded,
    /// Anything else, as a notice.
    Problem(Notice),
}

/// What came back from a GMS request.
#[derive(Debug, Clone, PartialEq)]
pub enum GmsResult {
    /// An envelope (any statusCode: the machine judges it).
    Answer(Box<ChatResponse>),
    /// No usable answer after the retry policy gave up.
    Failed(NetFailure),
}

/// A request that produced no envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetFailure {
    /// No answer.
    Network,
    /// An HTTP status without an envelope.
    Http(u16),
}

impl GmsResult {
    /// The machine's input once a call's attempts are over, whoever made them (the widget
    /// or a chaos visitor): the last envelope, except a statusCode 1 that no attempt was
    /// left for, which counts as no answer.
    pub fn settled(last: Result<ChatResponse, NetFailure>) -> GmsResult {
        match last {
            Ok(response) if response.verdict() == Verdict::Retry => {
                GmsResult::Failed(NetFailure::Network)
            }
            Ok(response) => GmsResult::Answer(Box::new(response)),
            Err(failure) => GmsResult::Failed(failure),
        }
    }
}

impl NetFailure {
    /// What the retry policy makes of it.
    pub fn verdict(self) -> Verdict {
        match self {
            NetFailure::Network => Verdict::of(Answer::Network),
            NetFailure::Http(status) => Verdict::of(Answer::Http(status)),
        }
    }

    /// How it reads to the visitor.
    pub fn notice(self) -> Notice {
        match self {
            NetFailure::Network => Notice::Unreachable,
            NetFailure::Http(status) => Notice::Http(status),
        }
    }
}

/// A file the visitor picked, as the browser describes it: its bytes are read only once
/// the chat's limits allow it (a file far too big never enters the page's memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickedFile {
    /// Its name, extension included.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type, as the browser guessed it (may be empty).
    pub content_type: String,
}

/// Why the chat's limits refuse a file; the widget words it in the visitor's language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileRefusal {
    /// The chat's allowance of files is used up.
    TooMany,
    /// The file is larger than what may still be sent.
    TooBig {
        /// The file's name.
        name: String,
        /// The most that may be sent, in bytes.
        max: u64,
    },
    /// The file's extension is not one of these.
    TypeNotAllowed(Vec<String>),
}

impl FileRefusal {
    /// Judges a file against the chat's limits: `None` when they allow it. The count is
    /// checked first, then the size (the smaller of the per-file limit and what is left of
    /// the total), then the type.
    pub fn of(limits: &FileLimits, name: &str, size: u64) -> Option<FileRefusal> {
        let used_files = limits.used_upload_max_files.unwrap_or(0);
        if limits.upload_max_files.is_some_and(|max| used_files >= max) {
            return Some(FileRefusal::TooMany);
        }
        let used_bytes = limits.used_upload_max_total_size.unwrap_or(0);
        let max = [
            limits.upload_max_file_size,
            limits.upload_max_total_size.map(|total| total.saturating_sub(used_bytes)),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(max) = max.filter(|max| size > *max) {
            return Some(FileRefusal::TooBig { name: name.to_owned(), max });
        }
        if !limits.allows_file_name(name) {
            return Some(FileRefusal::TypeNotAllowed(limits.upload_file_types.clone()));
        }
        None
    }
}

/// What came back from `POST /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Registered: the subscription token and the relay's position.
    Registered {
        /// Subscription token.
        token: String,
        /// The highest position the relay knows.
        position: u64,
        /// The relay's VAPID public key, when it sends Web Push.
        push_key: Option<String>,
        /// What the relay made of the identity the registration named.
        identity: Option<IdentityVerdict>,
    },
    /// GMS no longer accepts the chat's tokens.
    Refused,
    /// The relay could not be reached or failed: try again with the next connection.
    Failed,
}

impl Registration {
    /// The relay's answer to `POST /v1/sessions`, judged once for the widget and the
    /// chaos visitors: 200 with a registration, 403 (GMS refused the tokens), or a failure
    /// to try again (any other status, an unreadable body; no answer at all is `Failed`).
    pub fn of(status: u16, body: &str) -> Registration {
        match status {
            200 => match crate::json::from_str::<SessionRegistered>(body) {
                Some(SessionRegistered { token, position, vapid_public_key, identity }) => {
                    Registration::Registered {
                        token,
                        position,
                        push_key: vapid_public_key,
                        identity,
                    }
                }
                None => Registration::Failed,
            },
            403 => Registration::Refused,
            _ => Registration::Failed,
        }
    }
}

/// What came back from `POST /v1/identity` or `POST /v1/resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// The chat, to take up here.
    Chat(Box<ChatHandover>),
    /// The identity has no running chat.
    Nothing,
    /// The relay refused: the hash does not verify, the relay verifies no identities, or
    /// the resume token leads nowhere.
    Refused,
    /// The relay could not be reached or failed.
    Failed,
}

impl Handover {
    /// The relay's answer, judged once for the widget and any other runner of the machine.
    pub fn of(status: u16, body: &str) -> Handover {
        match status {
            200 => crate::json::from_str::<ChatHandover>(body)
                .map_or(Handover::Failed, |chat| Handover::Chat(Box::new(chat))),
            204 => Handover::Nothing,
            403 | 404 => Handover::Refused,
            _ => Handover::Failed,
        }
    }
}

/// How turning notifications on ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyAnswer {
    /// The browser is subscribed and the relay has the subscription.
    On,
    /// The visitor (or the browser) refused the permission: never ask again.
    Refused,
    /// The permission prompt was dismissed: ask again only on another click.
    Dismissed,
    /// Something failed on the way.
    Failed,
}

/// What the notification offer in the panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOffer {
    /// Nothing: no running chat, no support (browser, site or relay), or refused before.
    Hidden,
    /// "Notify me when the agent replies".
    Offer,
    /// Asking the browser and the relay.
    Busy,
    /// On, with a way to turn it off.
    On,
}

/// Everything that can happen to the visitor's chat.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The page loaded (the stored state is already in the machine).
    Load,
    /// The wall clock as the page loaded (milliseconds since the Unix epoch), and how long
    /// the site keeps an ended chat: an ended chat older than that goes from the browser.
    Expire {
        /// `Date.now()`.
        now_ms: u64,
        /// `keepEndedDays`.
        keep: Duration,
    },
    /// The visitor submitted the pre-chat form.
    Start(Visitor),
    /// The visitor sent a message.
    Send(String),
    /// The visitor chose a quick reply, button or row of the rich message at transcript
    /// `index`: `text` goes out as their message, linked to it.
    Choose {
        /// The rich message's transcript index.
        index: u64,
        /// What the choice sends (`shared::rich::Action::Reply`).
        text: String,
    },
    /// The visitor retried a failed message.
    Retry(u64),
    /// The visitor typed; `text` is the whole draft.
    Typed(String),
    /// `TYPING_PAUSE` passed since the keystroke that asked for it.
    TypingPaused(u64),
    /// The visitor ended the chat.
    End,
    /// The visitor asked for a new chat after the end.
    NewChat,
    /// The visitor opened or closed the panel.
    SetOpen(bool),
    /// The visitor turned alerts on or off.
    SetAlerts(bool),
    /// The page became visible after being hidden this long.
    Visible(Duration),
    /// The browser came back online.
    Online,
    /// The idle timer fired.
    IdleTimer,
    /// The relay socket is open.
    SocketOpened,
    /// The relay socket closed or failed, with the relay's close code if it sent one;
    /// `online` says whether the browser thinks it is online, `random` feeds the jitter.
    SocketClosed {
        /// The close code.
        code: Option<u16>,
        /// `navigator.onLine`.
        online: bool,
        /// A number in [0, 1].
        random: f64,
    },
    /// The reconnect wait asked for with this generation is over.
    ReconnectDue(u64),
    /// A frame from the relay.
    Frame(ServerFrame),
    /// The answer to a GMS request.
    Gms(RequestId, GmsResult),
    /// The answer to a start in proxy mode (`shared::proxy::ChatStarted`): GMS's envelope
    /// without tokens, and the relay's session of the chat when it started.
    Started(RequestId, GmsResult, Option<Box<SessionRegistered>>),
    /// The answer to a registration.
    Registered(RequestId, Registration),
    /// The visitor picked a file to send (one picked while another is on its way replaces
    /// it): the machine asks for the chat's limits first.
    FilePicked(PickedFile),
    /// The bytes of the file `Effect::ReadFile` asked for (`None`: the browser could not
    /// read them).
    FileRead(RequestId, Option<Vec<u8>>),
    /// Something the widget found that the visitor must read.
    Problem(Notice),
    /// Another tab wrote the shared state.
    StorageChanged(Stored),
    /// This tab became, or stopped being, the one that holds the relay connection.
    Leader(bool),
    /// The site asked to forget the visitor (a shared computer): end any active chat and
    /// wipe what the widget stored; `device_id` is the fresh one for a later chat.
    Forget {
        /// A new random push device id.
        device_id: String,
    },
    /// Another tab forgot the visitor (the stored key was removed): reset without telling
    /// GMS again.
    Wiped {
        /// A new random push device id.
        device_id: String,
    },
    /// The site's own user data (`GmsChat.setUserData`): merged into the next chat's, and
    /// sent to a running chat with `updateData`.
    UserData(Vec<(String, String)>),
    /// Whether this page can offer Web Push: the site named its service worker, the browser
    /// has push and notifications, and has not blocked them.
    PushCapable(bool),
    /// The visitor turned notifications on or off.
    Notify(bool),
    /// How turning them on ended.
    NotifyAnswered(NotifyAnswer),
    /// The site named its logged-in visitor (`data-user-id` and `data-user-hash`, or
    /// `GmsChat.identify`), or logged them out (`None`): a chat of another identity leaves
    /// this browser (it goes on elsewhere), and a verified identity's running chat is
    /// taken up here if this browser has none.
    Identify {
        /// Who, as the site vouches.
        identity: Option<Identity>,
        /// A new random push device id, should this browser let go of its chat.
        device_id: String,
    },
    /// The page was opened from a resume link (the token from its fragment).
    Resume(String),
    /// The relay's answer to `FindChat` or `ClaimResume`.
    HandedOver(RequestId, Handover),
    /// The visitor asked for a link back to the conversation; `page` is this page's
    /// address, which the link opens.
    KeepLink {
        /// `location.href`.
        page: String,
    },
    /// The relay's answer to `MakeResumeLink`: the token, or none if it failed.
    LinkMade(RequestId, Option<String>),
    /// The relay's answer to `FetchHours`: the service's office hours now, or none when
    /// the relay has none for it or could not say.
    Hours(Option<OfficeHours>),
    /// The visitor rated the chat in the survey (`rating` on the site's scale).
    Rate {
        /// 1 to 5 stars, or 0 (down) and 1 (up) thumbs.
        rating: u8,
        /// What they added.
        comment: String,
    },
    /// The visitor dismissed the survey.
    SkipSurvey,
    /// `RECEIPT_PAUSE` passed since the read receipt that asked for it.
    ReceiptDue(u64),
    /// The office's opening that `HoursTimer` waited for has come.
    HoursDue,
}

/// When the survey is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyStage {
    /// The visitor asked to end: rate first (into the chat's GMS user data), then end.
    BeforeEnd,
    /// The chat ended (the agent's end, or the visitor's elsewhere): the rating goes to the
    /// relay's survey webhook.
    AfterEnd,
}

/// What the machine asks its runner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A Chat API request, answered with `Input::Gms(id, ..)`.
    Gms {
        /// Its id.
        id: RequestId,
        /// The chat service.
        service: String,
        /// The request.
        operation: ChatOperation,
        /// The chat's tokens (none for create).
        credentials: Option<Credentials>,
        /// The chat's subscription token, which authorises it in proxy mode (none for a
        /// start).
        token: Option<String>,
        /// How often to try.
        policy: RetryPolicy,
    },
    /// `POST /v1/sessions`, answered with `Input::Registered(id, ..)`.
    Register {
        /// Its id.
        id: RequestId,
        /// The body.
        body: RegisterSession,
        /// In proxy mode, the chat's subscription token, which authorises a registration
        /// without GMS tokens (the relay holds them).
        token: Option<String>,
    },
    /// `DELETE /v1/sessions/{chatId}` with the subscription token; nobody waits for it.
    Forget {
        /// The chat.
        chat_id: String,
        /// Its subscription token.
        token: String,
    },
    /// Open the relay socket; answered with `SocketOpened` or `SocketClosed`.
    OpenSocket,
    /// Close the relay socket (no chat needs it any more).
    CloseSocket,
    /// Send a subscribe frame.
    Subscribe {
        /// The chat.
        chat_id: String,
        /// Its subscription token.
        token: String,
    },
    /// Wait, then answer `ReconnectDue(generation)`.
    ReconnectAfter {
        /// How long.
        wait: Duration,
        /// Which wait this is; earlier ones are stale.
        generation: u64,
    },
    /// Wait `TYPING_PAUSE`, then answer `TypingPaused(generation)`.
    TypingTimer(u64),
    /// Wait `RECEIPT_PAUSE`, then answer `ReceiptDue(generation)`.
    ReceiptTimer(u64),
    /// Wait until this instant (ms since the epoch: the office's next opening), then answer
    /// `HoursDue`.
    HoursTimer(u64),
    /// Read the bytes of the file the visitor picked last; answered with
    /// `Input::FileRead(id, ..)`.
    ReadFile {
        /// Its id.
        id: RequestId,
    },
    /// Ask the browser for notification permission (now, while the click still counts as
    /// the visitor's gesture), subscribe with `key`, and hand the subscription to the
    /// relay; answered with `NotifyAnswered`.
    SubscribePush {
        /// The chat.
        chat_id: String,
        /// Its subscription token.
        token: String,
        /// The relay's VAPID public key.
        key: String,
    },
    /// Tell the relay to stop notifying; nobody waits for it.
    UnsubscribePush {
        /// The chat.
        chat_id: String,
        /// Its subscription token.
        token: String,
    },
    /// `POST /v1/identity`: the identity's running chat, answered with `HandedOver`.
    FindChat {
        /// Its id.
        id: RequestId,
        /// Who.
        identity: Identity,
    },
    /// `POST /v1/resume`: the chat of a resume token, answered with `HandedOver`.
    ClaimResume {
        /// Its id.
        id: RequestId,
        /// The token.
        token: String,
    },
    /// Hand the relay the rating of a chat that ended (`POST {SESSIONS_PATH}/{chatId}/survey`).
    SendSurvey {
        /// The chat.
        chat_id: String,
        /// Its subscription token.
        token: String,
        /// The rating.
        answer: SurveyAnswer,
    },
    /// Ask the relay whether the chat service is open now (`GET /v1/hours/{service}`),
    /// answered with `Input::Hours`.
    FetchHours {
        /// The chat service.
        service: String,
    },
    /// `POST /v1/sessions/{chatId}/resume-links`, answered with `LinkMade`.
    MakeResumeLink {
        /// Its id.
        id: RequestId,
        /// The chat.
        chat_id: String,
        /// Its subscription token.
        token: String,
    },
    /// Persist `Machine::stored` (merged with what other tabs wrote).
    Save,
    /// Remove everything the widget stored in the browser.
    Wipe,
    /// Something for the developer console.
    Log(String),
}
