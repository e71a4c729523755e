//! Chat Server high availability: getting chats restored on a working Chat Server.
//!
//! Restoration can only be triggered from the client side: a request for the chat makes
//! GMS restore it on an available Chat Server, which answers with a new alias. The relay
//! sends that request (a ping) on the visitors' behalf, for every stored chat of a Chat
//! Server that restarted or went away, at a bounded rate, retrying what GMS cannot restore
//! yet until a deadline. A second event for the same Chat Server during a restoration
//! replaces it with a fresh list, so chats already moved are not pinged again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use shared::gms::RetryPolicy;
use shared::relay_api::RestorationProgress;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acker::{Acker, Outcome, Reason};
use crate::otlp::{Kind, Tracer};
use crate::peers::Peers;
use crate::sessions::Sessions;

/// Restoration settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Wait after a shutdown advice before pinging.
    pub(crate) advice_delay: Duration,
    /// Most restoration pings per second.
    pub(crate) rate: u32,
    /// How long failed chats are retried.
    pub(crate) deadline: Duration,
}

/// Schedules restoration pings. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Restorer {
    acker: Acker,
    sessions: Sessions,
    settings: Settings,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    runs: Arc<Mutex<HashMap<String, Run>>>,
    progress: Arc<Mutex<BTreeMap<String, RestorationProgress>>>,
    /// Where restorations under way are noted, for a relay that takes over the watch.
    peers: Peers,
    /// Each restoration is a trace: `restore`, a `restore.round` per round of pings, and in
    /// it a `restore.chat` per chat pinged.
    tracer: Tracer,
}

/// Counts a restoration in `relay_restorations_running` for as long as it lives, however
/// it ends.
struct Running;

impl Running {
    fn start() -> Running {
        metrics::gauge!("relay_restorations_running").increment(1.0);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        metrics::gauge!("relay_restorations_running").decrement(1.0);
    }
}

/// A restoration under way: what stops it, and its task, which a replacing run awaits.
type Run = (CancellationToken, JoinHandle<()>);

impl Restorer {
    /// A restorer that pings through `acker`.
    pub(crate) fn new(
        acker: Acker,
        sessions: Sessions,
        settings: Settings,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        peers: Peers,
        tracer: Tracer,
    ) -> Restorer {
        Restorer {
            acker,
            sessions,
            settings,
            shutdown,
            tasks,
            peers,
            tracer,
            runs: Arc::default(),
            progress: Arc::default(),
        }
    }

    /// A Chat Server announced it is shutting down: ping the chat once it is gone, unless
    /// something else (the health watch) has moved it meanwhile, or a restoration of that
    /// server is under way, which pings the chat itself (and whose ping may not have
    /// landed yet: pinging too would ping it twice for one event).
    pub(crate) fn after_shutdown_advice(&self, chat_id: &str) {
        let Some(alias) = self.sessions.get(chat_id).map(|r| r.credentials.alias) else { return };
        let this = self.clone();
        let chat_id = chat_id.to_owned();
        self.tasks.spawn(async move {
            tokio::select! {
                () = this.shutdown.cancelled() => {}
                () = tokio::time::sleep(this.settings.advice_delay) => {
                    let still_there =
                        this.sessions.get(&chat_id).is_some_and(|r| r.credentials.may_be_on(&alias));
                    if still_there && !this.restoring(&alias) {
                        this.acker.request(&chat_id, Reason::Restore);
                    }
                }
            }
        });
    }

    /// Whether a restoration of `alias` is under way on this relay.
    fn restoring(&self, alias: &str) -> bool {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.get(alias).is_some_and(|(_, task)| !task.is_finished())
    }

    /// A Chat Server restarted or went away: restore every chat it hosted. A restoration
    /// of the same server still under way stops pinging; once its pings in flight have
    /// landed in the store, the new one lists what is still on that server, so no chat is
    /// pinged twice for one event.
    pub(crate) fn restore_server(&self, alias: &str) {
        let run = self.shutdown.child_token();
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = runs.remove(alias);
        if let Some((stop, _)) = &previous {
            stop.cancel();
        }
        let this = self.clone();
        let owned = alias.to_owned();
        let token = run.clone();
        let handle = self.tasks.spawn(async move {
            if let Some((_, previous)) = previous {
                let _ = previous.await;
            }
            this.restore(&owned, token).await;
        });
        runs.insert(alias.to_owned(), (run, handle));
    }

    /// Every Chat Server's latest restoration.
    pub(crate) fn progress(&self) -> BTreeMap<String, RestorationProgress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Updates the progress of `run`, unless a newer run has replaced it.
    fn report(
        &self,
        alias: &str,
        run: &CancellationToken,
        change: impl FnOnce(&mut RestorationProgress),
    ) {
        if run.is_cancelled() {
            return;
        }
        let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        change(progress.entry(alias.to_owned()).or_default());
    }

    /// Taking over the watch of a Chat Server: finishes a restoration the previous watcher
    /// started and did not finish (chats it already moved are no longer on that server).
    /// Fails when Redis cannot say, so the takeover is tried again rather than skipped.
    pub(crate) async fn resume_unfinished(
        &self,
        alias: &str,
    ) -> Result<(), crate::peers::PeersError> {
        if self.peers.restoration_unfinished(alias).await? {
            tracing::warn!(alias, "resuming a restoration another relay left unfinished");
            self.restore_server(alias);
        }
        Ok(())
    }

    async fn restore(&self, alias: &str, run: CancellationToken) {
        let _running = Running::start();
        // Ends however the run does: finished, replaced by a newer one, or at shutdown.
        let mut span = self.tracer.span("restore", Kind::Internal);
        span.chat_server(alias);
        self.peers.mark_restoring(alias, true).await;
        let started = Instant::now();
        let mut todo = self.sessions.ids_on(alias);
        let total = todo.len();
        self.report(alias, &run, |p| {
            *p = RestorationProgress {
                runs: p.runs + 1,
                running: true,
                chats: total,
                ..RestorationProgress::default()
            };
        });
        metrics::counter!("relay_restore_chats_total").increment(total as u64);
        span.attr("restore.chats", total);
        tracing::info!(alias, chats = total, "restoring the chats of a Chat Server");
        let spacing = Duration::from_secs(1) / self.settings.rate.max(1);
        let mut rounds = 0;
        let (mut restored, mut gone) = (0_usize, 0_usize);
        loop {
            let mut round = span.child("restore.round", Kind::Internal);
            round.attr("restore.chats", todo.len());
            let mut waits = Vec::with_capacity(todo.len());
            let mut pace = tokio::time::interval(spacing);
            for id in todo {
                tokio::select! {
                    () = run.cancelled() => break,
                    _ = pace.tick() => {}
                }
                // Moved by something else meanwhile (a push's acknowledgement): done.
                if self.sessions.get(&id).is_some_and(|r| !r.credentials.may_be_on(alias)) {
                    restored += 1;
                    self.report(alias, &run, |p| p.restored = restored);
                    continue;
                }
                // The chat's own span, ended with GMS's answer: the restoration's trace
                // names each chat it pinged (by its hash) and what became of it.
                let mut chat = round.child("restore.chat", Kind::Client);
                chat.chat(&id);
                waits.push((id.clone(), self.acker.request_and_wait(&id, Reason::Restore), chat));
                self.report(alias, &run, |p| p.pinged += 1);
            }
            let mut failed = Vec::new();
            // Waited for even when replaced, so what they found is stored before the next
            // run lists the server's chats.
            for (id, wait, mut chat) in waits {
                let outcome = tokio::select! {
                    () = self.shutdown.cancelled() => {
                        span.fail("shutdown");
                        return;
                    }
                    outcome = wait => outcome.unwrap_or(Outcome::Failed),
                };
                chat.attr("restore.outcome", outcome.label());
                if matches!(outcome, Outcome::Failed | Outcome::Refused) {
                    chat.fail("not_restored");
                }
                drop(chat);
                match outcome {
                    Outcome::Ok => restored += 1,
                    Outcome::Gone | Outcome::Unknown => gone += 1,
                    Outcome::Failed | Outcome::Refused => failed.push(id),
                }
                self.report(alias, &run, |p| (p.restored, p.ended) = (restored, gone));
            }
            round.attr("restore.failed", failed.len());
            drop(round);
            if run.is_cancelled() {
                span.attr("restore.replaced", true);
                return;
            }
            if failed.is_empty() || started.elapsed() >= self.settings.deadline {
                let seconds = started.elapsed().as_secs_f64();
                metrics::histogram!("relay_restore_duration_seconds").record(seconds);
                metrics::counter!("relay_restored_total").increment(restored as u64);
                metrics::counter!("relay_restore_failed_total").increment(failed.len() as u64);
                self.report(alias, &run, |p| (p.running, p.failed) = (false, failed.len()));
                span.attr("restore.rounds", rounds + 1);
                span.attr("restore.restored", restored);
                span.attr("restore.ended", gone);
                span.attr("restore.failed", failed.len());
                if !failed.is_empty() {
                    span.fail("restore_deadline");
                }
                tracing::info!(
                    alias,
                    restored,
                    ended = gone,
                    failed = failed.len(),
                    seconds,
                    "restoration finished"
                );
                self.peers.mark_restoring(alias, false).await;
                return;
            }
            tracing::info!(
                alias,
                waiting = failed.len(),
                "GMS cannot restore some chats yet; retrying"
            );
            rounds += 1;
            let wait = RetryPolicy::RECONNECT.wait_after(rounds, crate::gms::random());
            let wait = wait.unwrap_or(Duration::from_secs(30));
            tokio::select! {
                () = run.cancelled() => {
                    span.attr("restore.replaced", true);
                    return;
                }
                () = tokio::time::sleep(wait) => {}
            }
            todo = failed;
        }
    }
}
