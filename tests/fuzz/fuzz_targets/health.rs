//! Chat Server health answers, as the relay's watcher reads them.
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    let _ = shared::health::ChatServerHealth::parse(body);
});
