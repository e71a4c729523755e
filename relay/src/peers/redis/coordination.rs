//! What relays sharing Redis coordinate beyond frames: who acknowledges a chat's pushes
//! now, who pings it this interval, who watches the Chat Servers (a lease), which
//! restorations are unfinished, and the push body `relay check --capture` asked to keep.
//! Each is a key with an expiry or a small Lua script, so a relay that dies holds nothing
//! for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Bus;
use crate::store::now_millis;
use crate::store::redis::{ACK_CLAIM, CLAIM_ACK, FORGOTTEN_CLAIM, RELEASE_ACK_BY};

/// Takes or renews the lease. KEYS[1]: the lease. ARGV: this node, time to live in ms.
const LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
";

/// Gives the lease up if this node holds it. KEYS[1]: the lease. ARGV: this node.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Claims a chat's events for Web Push: answers the indexes no relay had claimed.
/// KEYS[1]: the chat's set of claimed indexes. ARGV: its time to live in ms, the indexes.
const CLAIM_WEB_PUSH: &str = r"
local fresh = {}
for i = 2, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then fresh[#fresh + 1] = tonumber(ARGV[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return fresh
";

/// How long a chat's Web Push claims outlive its last notification.
const WEB_PUSH_CLAIMS: Duration = Duration::from_secs(30 * 24 * 3600);

/// Who acknowledges a chat's push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckClaim {
    /// This relay: it pings, then asks `release_ack` whether to ping once more.
    Claimed,
    /// A relay (this one, or another) is acknowledging the chat and will ping once more
    /// for this push.
    Deferred,
    /// Redis did not answer: ping anyway (a ping too many beats a push unacknowledged).
    Unavailable,
}

impl Bus {
    /// Claims a chat's events for Web Push cluster-wide; answers those claimed now, so
    /// whichever relays take a push (and its resends), each event is notified once.
    pub(crate) async fn claim_web_push(
        &self,
        chat_id: &str,
        indexes: &[u64],
    ) -> Result<Vec<u64>, super::PeersError> {
        let ttl = u64::try_from(WEB_PUSH_CLAIMS.as_millis()).unwrap_or(u64::MAX);
        let mut command = redis::cmd("EVAL");
        command.arg(CLAIM_WEB_PUSH).arg(1).arg(self.keys.web_pushed(chat_id)).arg(ttl);
        for index in indexes {
            command.arg(index);
        }
        self.query(&command).await.map_err(|e| self.failed(&e))
    }

    /// Whether a browser follows the chat on any relay: each relay subscribes to a chat's
    /// frames exactly while one of its browsers does, and a relay that dies loses its
    /// subscriptions with its connection.
    pub(crate) async fn followed(&self, chat_id: &str) -> Result<bool, super::PeersError> {
        let followers = self
            .timed(self.link.followers(self.keys.frames(chat_id)))
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(followers > 0)
    }

    /// Claims this interval's periodic ping of a chat for this relay: false when another
    /// relay pinged it within `interval` (so the cluster pings each chat once). Without
    /// Redis the ping goes ahead: a ping too many is better than a chat left unpinged.
    pub(crate) async fn claim_ping(&self, chat_id: &str, interval: Duration) -> bool {
        let claimed: redis::RedisResult<Option<String>> = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.pinged(chat_id))
                    .arg(&*self.node)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1)),
            )
            .await;
        !matches!(claimed, Ok(None))
    }

    /// Claims the acknowledgement of a chat's push for this relay, or adds the push to the
    /// claim of the relay acknowledging the chat now (this one too): a burst of pushes
    /// spread over several relays costs about one ping, as it does on one relay.
    pub(crate) async fn claim_ack(&self, chat_id: &str) -> AckClaim {
        let claimed: redis::RedisResult<i64> = self
            .query(
                redis::cmd("EVAL")
                    .arg(CLAIM_ACK)
                    .arg(1)
                    .arg(self.keys.chat(chat_id))
                    .arg(u64::try_from(ACK_CLAIM.as_millis()).unwrap_or(u64::MAX))
                    .arg(now_millis()),
            )
            .await;
        match claimed {
            Ok(1) => AckClaim::Claimed,
            Ok(_) => AckClaim::Deferred,
            Err(_) => AckClaim::Unavailable,
        }
    }

    /// Ends the claim: true when pushes were added to it meanwhile, so one more ping is
    /// due (after claiming again). One command (two in a rare race): whoever's claim it is
    /// by now (this one's lapsed, another relay's taken since), every push added to a claim
    /// is seen by the one `release_ack` that ends it, whose ping comes after; so no push
    /// goes unpinged.
    pub(crate) async fn release_ack(&self, chat_id: &str) -> bool {
        let key = self.keys.chat(chat_id);
        let left: redis::RedisResult<i64> =
            self.query(redis::cmd("HINCRBY").arg(&key).arg("a").arg(RELEASE_ACK_BY)).await;
        let covered = left.map(|left| left - RELEASE_ACK_BY);
        if matches!(covered, Ok(0)) {
            // The chat was forgotten during the ping (by it, or by another relay), and the
            // release made a hash of it again. Rare: worth a command.
            let tidied: redis::RedisResult<i64> =
                self.query(redis::cmd("EVAL").arg(FORGOTTEN_CLAIM).arg(1).arg(&key)).await;
            if let Err(error) = tidied {
                tracing::debug!(chat = chat_id, %error, "could not delete a forgotten chat's claim");
            }
        }
        matches!(covered, Ok(2..))
    }

    /// Keeps a chat's captured push body for `ttl` unless one is kept already: the first
    /// push any relay took wins. A failure leaves readiness alone: a capture is a
    /// diagnostic, not the relay's work.
    pub(crate) async fn keep_capture(
        &self,
        chat_id: &str,
        body: &str,
        ttl: Duration,
    ) -> Result<(), super::PeersError> {
        let _: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.capture(chat_id))
                    .arg(body)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs().max(1)),
            )
            .await
            .map_err(|e| super::PeersError(e.to_string()))?;
        Ok(())
    }

    /// The captured push body kept for a chat, if any relay kept one.
    pub(crate) async fn capture(&self, chat_id: &str) -> Result<Option<String>, super::PeersError> {
        self.query(redis::cmd("GET").arg(self.keys.capture(chat_id)))
            .await
            .map_err(|e| super::PeersError(e.to_string()))
    }

    /// Notes that a Chat Server's restoration started (`true`) or finished, so a relay
    /// that takes over the watch after this one died finishes it.
    pub(crate) async fn mark_restoring(&self, alias: &str, running: bool) {
        let command = if running { "SADD" } else { "SREM" };
        let done: redis::RedisResult<i64> =
            self.query(redis::cmd(command).arg(self.keys.restoring()).arg(alias)).await;
        if let Err(error) = done {
            tracing::warn!(alias, %error, "could not note the restoration's state in Redis");
        }
    }

    /// Whether a Chat Server's restoration was started and never finished.
    pub(crate) async fn restoration_unfinished(
        &self,
        alias: &str,
    ) -> Result<bool, super::PeersError> {
        self.query(redis::cmd("SISMEMBER").arg(self.keys.restoring()).arg(alias))
            .await
            .map_err(|e| self.failed(&e))
    }

    /// Keeps trying to hold the Chat Server watcher's lease, renewing it every third of
    /// `ttl`; `held` says whether this relay holds it now. A relay that dies stops
    /// renewing, and another takes over once the lease has expired.
    pub(crate) async fn hold_watcher_lease(
        self,
        ttl: Duration,
        held: Arc<AtomicBool>,
        stop: CancellationToken,
    ) {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(3);
        loop {
            let holds: redis::RedisResult<i64> = self
                .query(
                    redis::cmd("EVAL")
                        .arg(LEASE)
                        .arg(1)
                        .arg(self.keys.watcher_lease())
                        .arg(&*self.node)
                        .arg(ttl_ms),
                )
                .await;
            if let Err(error) = &holds {
                tracing::warn!(%error, "could not take or renew the watcher lease");
            }
            let holds = matches!(holds, Ok(1));
            if holds != held.swap(holds, Ordering::Relaxed) {
                tracing::info!(node = %self.node, holds, "Chat Server watcher lease");
            }
            metrics::gauge!("relay_watcher_lease_held").set(if holds { 1.0 } else { 0.0 });
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(ttl / 3) => {}
            }
        }
        // Leaving: let another relay take over at once rather than after the expiry.
        if held.swap(false, Ordering::Relaxed) {
            let _: redis::RedisResult<i64> = self
                .query(
                    redis::cmd("EVAL")
                        .arg(RELEASE)
                        .arg(1)
                        .arg(self.keys.watcher_lease())
                        .arg(&*self.node),
                )
                .await;
        }
    }
}
