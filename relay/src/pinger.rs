//! The periodic ping of every stored chat: it keeps each visitor's flex user below
//! `flex-push-timeout`, finds ended chats, and recovers events whose push was lost.
//! Pings are spread evenly over the interval and never exceed the configured rate.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::acker::{Acker, Reason};
use crate::peers::Peers;
use crate::sessions::Sessions;

/// With several relays, each chat is pinged by whichever relay claims it first in the
/// interval.
pub(crate) async fn run(
    sessions: Sessions,
    acker: Acker,
    peers: Peers,
    interval: Duration,
    rate: u32,
    shutdown: CancellationToken,
) {
    let fastest = Duration::from_secs(1) / rate.max(1);
    loop {
        let ids = sessions.ids();
        if ids.is_empty() {
            if sleep(interval.min(Duration::from_secs(5)), &shutdown).await {
                return;
            }
            continue;
        }
        let spacing = (interval / u32::try_from(ids.len()).unwrap_or(u32::MAX)).max(fastest);
        let round = std::time::Instant::now();
        for id in ids {
            if sleep(spacing, &shutdown).await {
                return;
            }
            // A little under the interval, so this relay's own next round is not refused.
            if !peers.claim_ping(&id, interval.mul_f64(0.9)).await {
                continue;
            }
            acker.request(&id, Reason::Periodic);
        }
        // Above zero when --ping-rate cannot cover every chat within the interval.
        let lag = round.elapsed().saturating_sub(interval);
        metrics::gauge!("relay_ping_round_lag_seconds").set(lag.as_secs_f64());
    }
}

/// Sleeps; true when shutdown came first.
async fn sleep(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
