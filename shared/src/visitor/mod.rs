//! The visitor's side of the chat, free of the browser: what is kept ([`chat`]) and the
//! state machine that decides every request and refresh ([`machine`]). The widget runs
//! it in the page; headless visitors in the reliability suite run the same code.

mod chat;
mod io;
mod machine;

pub use chat::{Applied, CACHE_LIMIT, ChatState, STORAGE_KEY, Stored};
pub use io::{
    Conn, Effect, Failure, FileRefusal, GmsResult, Handover, Input, NetFailure, Notice,
    NotifyAnswer, NotifyOffer, Outgoing, PickedFile, Registration, RequestId, SurveyStage,
};
pub use machine::{LONG_HIDE, Machine, RECEIPT_PAUSE, TYPING_PAUSE, return_page};
