//! The wire contract of the async chat, defined once and free of IO.
//!
//! Everything that crosses a process boundary is here: the GMS Chat API V2 requests and
//! responses ([`gms`]), transcript positions ([`transcript`]), GMS customhttp push
//! notifications ([`push`]), Chat Server health bodies ([`health`]) and the relay's own v1
//! API for browsers ([`relay_api`]); and the rules the widget and its headless twins share:
//! the visitor's machine ([`visitor`]) and what a line of text becomes on screen
//! ([`format`]). The crate has no async, no clock and no randomness, so it builds for the
//! host and for wasm32 and every rule in it is a plain unit test.
//!
//! Receivers are tolerant: unknown fields and unknown event types are kept or ignored, never
//! rejected. Protocol changes are additive.
#![deny(missing_docs)]

pub mod ewt;
pub mod form;
pub mod format;
pub mod gms;
pub mod health;
pub mod hours;
pub mod json;
mod json_search;
pub mod letters;
pub mod mask;
pub mod proxy;
pub mod push;
pub mod relay_api;
pub mod rich;
pub mod transcript;
pub mod visitor;
pub mod widget_config;

#[cfg(test)]
mod tests;

/// Version of the relay's browser protocol (`/v1/...`). Bumped only for incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
