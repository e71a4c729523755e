//! Frames a browser sends on the relay's WebSocket.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = serde_json::from_str::<shared::relay_api::ClientFrame>(text);
});
