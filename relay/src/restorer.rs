//! Chat Server high availability: getting chats restored on a working Chat Server.
//!
//! Restoration can only be triggered from the client side: a request for the chat makes
//! GMS restore it on an available Chat Server, which answers with a new alias. The relay
//! sends that request (a ping) on the visitor's behalf.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::acker::{Acker, Reason};

/// Schedules restoration pings. Cheap to clone.
#[derive(Clone)]
pub struct Restorer {
    acker: Acker,
    advice_delay: Duration,
    shutdown: CancellationToken,
}

impl Restorer {
    /// A restorer that pings through `acker`.
    pub fn new(acker: Acker, advice_delay: Duration, shutdown: CancellationToken) -> Restorer {
        Restorer { acker, advice_delay, shutdown }
    }

    /// A Chat Server announced it is shutting down: ping the chat once it is gone.
    pub fn after_shutdown_advice(&self, chat_id: &str) {
        let (acker, delay, shutdown, chat_id) =
            (self.acker.clone(), self.advice_delay, self.shutdown.clone(), chat_id.to_owned());
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(delay) => acker.request(&chat_id, Reason::Restore),
            }
        });
    }
}
