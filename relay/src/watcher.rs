//! Watches each configured Chat Server's health endpoint and keeps `app_dbid` →
//! `process_os_pid`. A new pid means the process restarted; a run of failed polls means it
//! is gone. Either way its chats must be restored, which the restorer does. A success whose
//! body lacks the fields (`unreadable`) is neither: the process answers, so it is no outage,
//! but its pid is unknown, so restarts go unseen until the body is readable again; the
//! relay warns once and counts every poll in `relay_health_polls_total{alias, result}`.

use std::time::Duration;

use shared::health::{ChatServerHealth, HealthKeys, HealthPoll, POLL_RESULTS};
use tokio_util::sync::CancellationToken;

use crate::config::{ChatServer, Config};
use crate::peers::Lease;
use crate::restorer::Restorer;
use crate::sessions::Sessions;

/// What one poll concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to do.
    Steady,
    /// The process id changed: a restart.
    Restarted,
    /// The failure threshold was reached: the server is gone.
    Gone,
}

/// How every Chat Server is polled.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Between two polls.
    pub(crate) interval: Duration,
    /// Failed polls in a row that mean gone.
    pub(crate) failures: u32,
    /// The names of the fields in a health body.
    pub(crate) keys: HealthKeys,
}

impl Settings {
    pub(crate) fn new(config: &Config) -> Settings {
        Settings {
            interval: config.health_interval,
            failures: config.health_failures,
            keys: config.health_keys.keys(),
        }
    }
}

/// The watch state of one Chat Server, free of IO so the rules are unit-tested.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watch {
    pid: Option<u64>,
    failures: u32,
    /// The last answer was a body without the fields.
    unreadable: bool,
}

impl Watch {
    /// A watch that starts from the pid last seen, if any.
    pub(crate) fn resume(pid: Option<u64>) -> Watch {
        Watch { pid, failures: 0, unreadable: false }
    }

    /// A successful poll.
    pub(crate) fn answered(&mut self, health: &ChatServerHealth) -> Verdict {
        self.failures = 0;
        self.unreadable = false;
        let previous = self.pid.replace(health.process_os_pid);
        match previous {
            Some(pid) if pid != health.process_os_pid => Verdict::Restarted,
            _ => Verdict::Steady,
        }
    }

    /// A success whose body lacks the fields: never a restart or an outage. The process
    /// answered, so a run of failures ends; the pid kept stays, so a restart meanwhile is
    /// seen once the body is readable. True for the first of a run: the one to warn about.
    pub(crate) fn unreadable(&mut self) -> bool {
        self.failures = 0;
        !std::mem::replace(&mut self.unreadable, true)
    }

    /// Whether the last answer was unreadable.
    pub(crate) fn is_unreadable(&self) -> bool {
        self.unreadable
    }

    /// A failed poll (no answer, or an error status).
    pub(crate) fn failed(&mut self, threshold: u32) -> Verdict {
        self.failures += 1;
        if self.failures == threshold.max(1) {
            // The pid is forgotten: whatever answers next is a new process, not a restart.
            self.pid = None;
            Verdict::Gone
        } else {
            Verdict::Steady
        }
    }
}

/// Polls one Chat Server until shutdown.
pub(crate) async fn run(
    server: ChatServer,
    settings: Settings,
    restorer: Restorer,
    sessions: Sessions,
    lease: Lease,
    shutdown: CancellationToken,
) {
    let Settings { interval, failures: threshold, keys } = settings;
    for result in POLL_RESULTS {
        polls(&server.alias, result).increment(0);
    }
    // No redirects: a health port answers itself, and following one would count whatever
    // it points at as this Chat Server.
    let http = match reqwest::Client::builder()
        .timeout(interval.max(Duration::from_millis(500)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(alias = %server.alias, %error, "cannot build the health client");
            return;
        }
    };
    // Set when watching begins (the first tick alone, or when the lease is taken): from
    // the pid kept in the store, which was this relay's own before its restart or the
    // previous watcher's, so a Chat Server that restarted meanwhile is noticed at once.
    let (mut known, mut watch, mut watching) = (None, Watch::default(), false);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // With several relays only the lease holder watches; the others keep their view
        // current, so whoever takes over notices a restart that happened meanwhile.
        if !lease.held() {
            watching = false;
            continue;
        }
        if !watching {
            // Taking over: resume from the pid the previous watcher kept.
            if let Err(error) = sessions.refresh_servers().await {
                tracing::warn!(alias = %server.alias, %error, "could not read the Chat Servers' pids");
                continue;
            }
            if let Err(error) = restorer.resume_unfinished(&server.alias).await {
                tracing::warn!(alias = %server.alias, %error, "could not read whether a restoration is unfinished");
                continue;
            }
            known = sessions.server_pid(&server.alias);
            watch = Watch::resume(known);
            watching = true;
        }
        let answer = tokio::select! {
            () = shutdown.cancelled() => return,
            answer = poll(&http, &server.health_url, &keys) => answer,
        };
        polls(&server.alias, answer.result()).increment(1);
        let verdict = match answer {
            HealthPoll::Ok(health) => {
                if watch.is_unreadable() {
                    tracing::info!(alias = %server.alias, "Chat Server health body readable again: restart detection is back");
                }
                if health.app_dbid != server.alias {
                    tracing::warn!(alias = %server.alias, app_dbid = ?health.app_dbid, "health endpoint reports another app_dbid");
                }
                let verdict = watch.answered(&health);
                let pid = health.process_os_pid;
                if known != Some(pid) && keep_pid(&sessions, &server.alias, pid).await {
                    known = Some(pid);
                }
                verdict
            }
            HealthPoll::Unreadable(reason) => {
                if watch.unreadable() {
                    tracing::warn!(
                        alias = %server.alias,
                        reason = ?reason.0,
                        dbid_key = ?keys.dbid,
                        pid_key = ?keys.pid,
                        "Chat Server health body has no app_dbid or process_os_pid under these \
                         names (--health-dbid-key, --health-pid-key): its restarts go unseen \
                         until the body is readable; not counted as failures"
                    );
                }
                Verdict::Steady
            }
            HealthPoll::Unreachable(reason) => {
                tracing::debug!(alias = %server.alias, ?reason, "health poll failed");
                watch.failed(threshold)
            }
        };
        let kind = match verdict {
            Verdict::Steady => continue,
            Verdict::Restarted => "restarted",
            Verdict::Gone => "gone",
        };
        tracing::warn!(alias = %server.alias, kind, "Chat Server restarted or gone: restoring its chats");
        metrics::counter!("relay_chat_server_events_total", "alias" => server.alias.clone(), "kind" => kind).increment(1);
        restorer.restore_server(&server.alias);
    }
}

/// Keeps a Chat Server's pid durably, so a restart while the relay is down is noticed.
async fn keep_pid(sessions: &Sessions, alias: &str, pid: u64) -> bool {
    let kept = sessions.record_server_pid(alias, pid).await;
    if let Err(error) = &kept {
        tracing::warn!(alias, %error, "could not keep the Chat Server's pid");
    }
    kept.is_ok()
}

/// `relay_health_polls_total` for one Chat Server and result.
fn polls(alias: &str, result: &'static str) -> metrics::Counter {
    metrics::counter!("relay_health_polls_total", "alias" => alias.to_owned(), "result" => result)
}

/// One poll; a body that cannot be read in full counts as no answer.
async fn poll(http: &reqwest::Client, url: &str, keys: &HealthKeys) -> HealthPoll {
    match fetch(http, url).await {
        Ok((status, body)) => HealthPoll::judge(status, &body, keys),
        Err(error) => HealthPoll::Unreachable(error),
    }
}

/// A health endpoint's status and whole body, or why there is none (`relay check` reads
/// the same way, and keeps the body).
pub(crate) async fn fetch(
    http: &reqwest::Client,
    url: &str,
) -> Result<(u16, axum::body::Bytes), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use shared::health::ChatServerHealth;

    use super::{Verdict, Watch};

    fn health(pid: u64) -> ChatServerHealth {
        ChatServerHealth { app_dbid: "117".into(), process_os_pid: pid }
    }

    #[test]
    fn a_new_pid_is_a_restart_and_the_first_pid_is_not() {
        let mut watch = Watch::default();
        assert_eq!(watch.answered(&health(10)), Verdict::Steady);
        assert_eq!(watch.answered(&health(10)), Verdict::Steady);
        assert_eq!(watch.answered(&health(11)), Verdict::Restarted);
        assert_eq!(watch.answered(&health(11)), Verdict::Steady);
    }

    #[test]
    fn a_pid_kept_from_before_the_relays_restart_is_compared() {
        let mut watch = Watch::resume(Some(10));
        assert_eq!(watch.answered(&health(11)), Verdict::Restarted);
        let mut same = Watch::resume(Some(10));
        assert_eq!(same.answered(&health(10)), Verdict::Steady);
    }

    #[test]
    fn the_threshold_of_failures_in_a_row_means_gone_once() {
        let mut watch = Watch::default();
        watch.answered(&health(10));
        assert_eq!(watch.failed(3), Verdict::Steady);
        assert_eq!(watch.answered(&health(10)), Verdict::Steady, "a success resets the count");
        assert_eq!(watch.failed(3), Verdict::Steady);
        assert_eq!(watch.failed(3), Verdict::Steady);
        assert_eq!(watch.failed(3), Verdict::Gone);
        assert_eq!(watch.failed(3), Verdict::Steady, "reported once per outage");
        assert_eq!(
            watch.answered(&health(12)),
            Verdict::Steady,
            "coming back is a new process, already handled"
        );
    }

    #[test]
    fn an_unreadable_body_is_never_a_restart_or_an_outage() {
        let mut watch = Watch::default();
        assert!(watch.unreadable(), "the first of a run is warned about");
        for _ in 0..10 {
            assert!(!watch.unreadable(), "once per run");
            assert_eq!(watch.failed(3), Verdict::Steady, "an answer ends a run of failures");
        }
        assert!(watch.is_unreadable());
        assert_eq!(watch.answered(&health(10)), Verdict::Steady, "the first pid learnt");
        assert!(!watch.is_unreadable());
        assert!(watch.unreadable(), "a new run is warned about again");
        assert_eq!(watch.answered(&health(10)), Verdict::Steady);
    }

    #[test]
    fn a_restart_while_the_body_was_unreadable_is_seen_once_it_is_readable() {
        let mut watch = Watch::resume(Some(10));
        watch.unreadable();
        watch.unreadable();
        assert_eq!(watch.answered(&health(11)), Verdict::Restarted);
    }

    #[test]
    fn failures_around_unreadable_answers_do_not_add_up() {
        let mut watch = Watch::default();
        watch.answered(&health(10));
        assert_eq!(watch.failed(3), Verdict::Steady);
        assert_eq!(watch.failed(3), Verdict::Steady);
        watch.unreadable();
        assert_eq!(watch.failed(3), Verdict::Steady);
        assert_eq!(watch.failed(3), Verdict::Steady);
        assert_eq!(watch.failed(3), Verdict::Gone, "three in a row after the last answer");
    }
}
