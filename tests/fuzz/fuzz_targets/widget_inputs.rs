//! What the widget reads from outside: the relay's frames (through the one-pass reader),
//! localStorage (another tab, or anything the site wrote there), and the loader's
//! configuration. A frame that reads is also fed to the visitor's state machine.
#![no_main]

use shared::gms::Credentials;
use shared::relay_api::ServerFrame;
use shared::visitor::{ChatState, Input, Machine, Stored};

/// A page with chat `C` running (the seeds' frames name it).
fn running() -> Machine {
    let credentials = Credentials {
        chat_id: "C".into(),
        user_id: "U".into(),
        secure_key: "K".into(),
        alias: "117".into(),
    };
    let stored = Stored { chat: Some(ChatState::new("svc", credentials)), ..Stored::default() };
    let mut machine = Machine::new(stored, "svc", "");
    let _ = machine.step(Input::Load);
    let _ = machine.step(Input::SocketOpened);
    machine
}

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = shared::widget_config::WidgetConfig::from_json(text);
    if let Ok(stored) = serde_json::from_str::<Stored>(text) {
        let mut machine = Machine::new(stored.clone(), "svc", "");
        let _ = machine.step(Input::Load);
        let _ = machine.step(Input::StorageChanged(stored));
    }
    if let Ok(frame) = serde_json::from_str::<ServerFrame>(text) {
        let _ = running().step(Input::Frame(frame));
    }
});
