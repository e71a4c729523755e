//! Chat API answers, as the relay (serde) and the widget (`ChatResponse::read`) read and
//! judge them.
#![no_main]

use shared::gms::{ChatResponse, FileLimits};

fn judge(response: &ChatResponse) {
    let _ = response.verdict();
    let _ = response.credentials();
    let _ = response.error_summary();
    if let Some(limits) = FileLimits::from_response(response) {
        let _ = limits.allows_file_name("a.pdf");
    }
}

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    if let Ok(response) = ChatResponse::parse(body) {
        judge(&response);
        let _ = serde_json::to_vec(&response);
    }
    if let Some(response) = ChatResponse::read(body) {
        judge(&response);
    }
});
