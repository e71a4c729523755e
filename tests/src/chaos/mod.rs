//! The chaos suite: headless visitors (the widget's own state machine over real sockets)
//! and real widgets in Chromium chat with agents through gms-sim and the relays while a
//! seeded schedule of faults hits every part; at the end each visitor's log is checked
//! against GMS's transcripts. `cargo xtask chaos` runs it long, `cargo xtask test` runs a
//! short fixed seed, RELIABILITY.md has the method and the figures.

mod agent;
mod browsers;
mod catch_up;
mod conductor;
mod effects;
pub mod ledger;
pub mod proxy;
pub mod report;
pub mod schedule;
mod system;
mod visitor;

pub use conductor::{Options, run};
