//! GMS Chat API V2: requests, responses and the user data that subscribes a chat to push.
//!
//! What the code relies on, with its evidence and the choices made where sources are
//! silent, is in `docs/protocol.md` ("GMS Chat API V2 as used here" and "What is known
//! about real GMS deployments").

mod header;
mod policy;
mod request;
mod response;
mod user_data;

pub use header::{GmsHeader, checked_headers};
pub use policy::{Answer, Attempts, Next, RetryPolicy, Verdict};
pub use request::{ChatOperation, Credentials, EncodedRequest, FilePart, RequestBody, Visitor};
pub use response::{
    ChatError, ChatEvent, ChatResponse, EventType, FileLimits, Party, ResponseError,
};
pub use user_data::{PushSubscription, async_push_user_data};

/// The path prefix of every Chat API V2 operation.
pub const CHAT_API_PREFIX: &str = "/genesys/2/chat";

/// Longest service name or chat id accepted from outside.
pub const MAX_ID_LEN: usize = 128;

/// Whether `id` can be a GMS service name or chat id: letters, digits, `-` and `_`, one to
/// `MAX_ID_LEN` of them. Both become path segments of GMS URLs, where `.` and `..` (which
/// percent-encoding leaves as they are) would name another path.
pub fn is_gms_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `text` of the `Notice` event that carries the file limits.
pub const FILE_LIMITS_NOTICE: &str = "file-client-cfg-get";
