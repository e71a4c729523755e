//! The one policy for calling GMS, shared by the relay, the widget and the test and
//! benchmark clients: what an answer means, and how long to wait before trying again.
//! Pure: callers do the sleeping and hand in the random number the jitter needs.

use core::time::Duration;

use super::ChatResponse;

/// What came back from one Chat API request.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// An envelope, whatever the HTTP status.
    Envelope(&'a ChatResponse),
    /// An HTTP status without an envelope.
    Http(u16),
    /// No answer: the network failed or timed out.
    Network,
}

/// What an answer means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// statusCode 0 on a live chat.
    Ok,
    /// The chat has ended (`chatEnded` with statusCode 0 or 2): nothing more to do for it.
    Ended,
    /// Worth trying again: statusCode 1, HTTP 5xx or 429, or no answer.
    Retry,
    /// Refused for good: statusCode 2 on a live chat (wrong tokens, bad request), or an
    /// HTTP 4xx without an envelope.
    Stop,
}

impl Verdict {
    /// Classifies one answer.
    pub fn of(answer: Answer<'_>) -> Verdict {
        match answer {
            Answer::Envelope(response) => {
                let ended = response.chat_ended == Some(true);
                match response.status_code {
                    0 if ended => Verdict::Ended,
                    0 => Verdict::Ok,
                    1 => Verdict::Retry,
                    _ if ended => Verdict::Ended,
                    _ => Verdict::Stop,
                }
            }
            Answer::Http(status) if status >= 500 || status == 429 => Verdict::Retry,
            Answer::Http(_) => Verdict::Stop,
            Answer::Network => Verdict::Retry,
        }
    }
}

/// How often and how patiently to try again: exponential backoff from `first`, capped at
/// `max`, each wait jittered down to between half and all of it so that many clients
/// failing together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure, before jitter.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl RetryPolicy {
    /// A Chat API request: an acknowledgement, a visitor's message.
    pub const GMS: RetryPolicy =
        RetryPolicy { attempts: 5, first: Duration::from_millis(250), max: Duration::from_secs(5) };

    /// One attempt: for notices that are stale by the time a retry would land (typing).
    pub const ONCE: RetryPolicy = RetryPolicy { attempts: 1, ..RetryPolicy::GMS };

    /// Something that must eventually work again (a lost connection, chats GMS cannot
    /// restore yet): never gives up, waits up to 30 s.
    pub const RECONNECT: RetryPolicy = RetryPolicy {
        attempts: u32::MAX,
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };

    /// The wait after `failures` failures in a row (1 for the first), jittered by
    /// `random` in [0, 1]; None when no attempt is left.
    pub fn wait_after(&self, failures: u32, random: f64) -> Option<Duration> {
        if failures == 0 || failures >= self.attempts {
            return None;
        }
        let doublings = (failures - 1).min(31);
        let base = self.first.saturating_mul(1_u32 << doublings).min(self.max);
        Some(base.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0)))
    }
}

/// One call's attempts under a `RetryPolicy`: after each attempt's verdict, whether the
/// call is over or how long to wait before the next one. The widget, the relay, `relay
/// check` and the test clients all loop through it, so they retry alike by construction.
#[derive(Debug, Clone, Copy)]
pub struct Attempts {
    policy: RetryPolicy,
    failures: u32,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The answer stands: it is not worth trying again.
    Done(Verdict),
    /// Try again after this wait.
    Wait(Duration),
    /// Worth trying again, but no attempt is left: the call failed.
    GiveUp,
}

impl Attempts {
    /// The attempts of one call.
    pub fn new(policy: RetryPolicy) -> Attempts {
        Attempts { policy, failures: 0 }
    }

    /// Judges an attempt by its verdict; `random` in [0, 1] jitters the wait.
    pub fn after(&mut self, verdict: Verdict, random: f64) -> Next {
        if verdict != Verdict::Retry {
            return Next::Done(verdict);
        }
        self.failures += 1;
        self.policy.wait_after(self.failures, random).map_or(Next::GiveUp, Next::Wait)
    }
}
