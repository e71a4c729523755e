//! What the system tests, tests/browser, the benches and the chaos suite share: the one
//! polling wait, the one builder of a test relay's flags, and chats as the widget makes
//! them.

mod chat;
mod relay_args;
mod wait;

pub use chat::{SERVICE, push_user_data, register};
pub use relay_args::{NO_CLIENT_LIMITS, RelayArgs, TEST_PUSH_SECRET, chat_server, push_url};
pub use wait::{NotReached, POLL, Wait, until, until_every};
