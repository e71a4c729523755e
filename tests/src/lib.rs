//! System tests and their harness: the real gms-sim and the real relay, in-process on
//! port 0, talked to over real sockets. The browser tests (tests/browser) drive the real
//! widget in Chromium against the same harness.

pub mod chaos;
pub mod gms_client;
pub mod harness;
pub mod host_site;
pub mod push_service;
pub mod push_sink;
pub mod support;
pub mod webdriver;
pub mod widget_page;
pub mod ws_client;

#[cfg(test)]
mod relay;
#[cfg(test)]
mod sim;
