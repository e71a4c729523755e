//! What the widget reads from outside, through its own JSON reader (`shared::json`): the
//! relay's frames, localStorage (another tab, or anything the site wrote there), the
//! loader's configuration and `GmsChat.setUserData` pairs. A frame that reads is also fed to
//! the visitor's state machine, and stored state the widget writes back reads the same.
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
    if let Some(stored) = shared::json::from_str::<Stored>(text) {
        let written = shared::json::to_string(&stored);
        assert_eq!(shared::json::from_str::<Stored>(&written).as_ref(), Some(&stored));
        let mut machine = Machine::new(stored.clone(), "svc", "");
        let _ = machine.step(Input::Load);
        let _ = machine.step(Input::StorageChanged(stored));
    }
    if let Some(frame) = shared::json::from_str::<ServerFrame>(text) {
        let _ = running().step(Input::Frame(frame));
    }
    let _ = shared::json::from_str::<Vec<(String, String)>>(text);
});
