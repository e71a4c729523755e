//! GMS customhttp push bodies, as the relay's `/gms/push` reads them.
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    if let Ok(push) = shared::push::PushNotification::parse(body) {
        let _ = push.highest_index();
        let _ = push.proven_next_position();
    }
});
