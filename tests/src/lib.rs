//! System tests and their harness: the real gms-sim and the real relay, in-process on
//! port 0, talked to over real sockets. The browser tests (tests/browser) drive the real
//! widget in Chromium against the same harness.

/// The chaos suite: seeded faults against relays, Redis and gms-sim while visitors chat.
pub mod chaos;
/// A Chat API V2 client written from the contract alone, and gms-sim's admin API.
pub mod gms_client;
/// gms-sim and the relay started wired to each other, relay processes, redis-server.
pub mod harness;
/// A customer's website on an origin of its own, serving the pages a test writes.
pub mod host_site;
/// A Web Push service that checks the relay's requests with crypto of its own.
pub mod push_service;
/// A customhttp push receiver that records every push gms-sim sends.
pub mod push_sink;
/// What every test shares: the polling wait, a test relay's flags, chats as made.
pub mod support;
/// A W3C WebDriver client for headless Chromium, and a DevTools connection.
pub mod webdriver;
/// The widget as a page object over the WebDriver client: what a visitor sees and does.
pub mod widget_page;
/// A WebSocket client of the relay, as a browser connects.
pub mod ws_client;

/// Scenarios of the relay (the crate `relay`) with gms-sim, over real sockets.
#[cfg(test)]
mod relay_tests;
/// Scenarios of gms-sim alone, over real HTTP.
#[cfg(test)]
mod sim;
