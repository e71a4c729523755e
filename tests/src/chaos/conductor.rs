//! Runs one chaos run: starts the system and the visitors, lets the agents talk, strikes
//! the planned faults, brings every visitor back, then checks and reports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use shared::gms::ChatEvent;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::browsers::{self, Widgets};
use super::ledger;
use super::report::{Percentiles, Report};
use super::schedule::{self, Fault, Shape};
use super::system::Chaos;
use super::visitor::{self, Env, Face, Phase};
use crate::gms_client::SimAdmin;

/// How long every visitor has to catch up once the last fault is over.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);
/// How often, on average, the agent writes in each chat.
const AGENT_LINE_EVERY: Duration = Duration::from_secs(15);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// How long faults are struck.
    pub span: Duration,
    pub visitors: usize,
    /// Faults to strike; at least 100.
    pub faults: usize,
    pub relays: usize,
    /// Relays on Redis (always with more than one relay).
    pub redis: bool,
    /// Real widgets in Chromium (needs `widget` and chromedriver).
    pub browsers: usize,
    /// The built widget (`trunk build` output).
    pub widget: Option<PathBuf>,
}

/// Runs it; the report says whether any invariant was violated.
pub async fn run(options: Options) -> Result<Report> {
    let mut chaos = Chaos::start(options.relays, options.redis, options.widget.clone()).await?;
    let result = conduct(&options, &mut chaos).await;
    chaos.stop().await?;
    result
}

async fn conduct(options: &Options, chaos: &mut Chaos) -> Result<Report> {
    let started = Instant::now();
    let env = Arc::new(Env {
        gms_url: chaos.gms.url(),
        relay_url: chaos.proxy.url.clone(),
        service: "customer-support".to_owned(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
    });
    let widgets = match options.browsers {
        0 => None,
        count => Some(Widgets::start(count, &format!("{}/", chaos.proxy.url)).await?),
    };
    let faces: Arc<[Arc<Face>]> = (0..options.visitors).map(|_| Face::new()).collect();
    let widget_faces: Vec<Arc<Face>> = widgets.iter().flat_map(|w| w.faces.clone()).collect();
    let everyone: Arc<[Arc<Face>]> = faces.iter().chain(&widget_faces).cloned().collect();
    let (phase, phase_rx) = watch::channel(Phase::Chaos);
    let mut visitors = Vec::new();
    for (number, face) in faces.iter().enumerate() {
        visitors.push(tokio::spawn(visitor::run(
            env.clone(),
            number,
            options.seed,
            face.clone(),
            phase_rx.clone(),
        )));
    }
    let agent =
        tokio::spawn(agent(chaos.admin.clone(), everyone.clone(), options.seed, phase_rx.clone()));

    let shape = Shape {
        relays: options.relays,
        chat_servers: chaos.gms.chat_servers.len(),
        browsers: options.browsers,
        redis: options.redis || options.relays > 1,
    };
    let planned = schedule::plan(options.seed, options.span, options.faults, shape);
    let mut rng = StdRng::seed_from_u64(options.seed.wrapping_add(1));
    let mut report = Report {
        seed: options.seed,
        visitors: options.visitors,
        browsers: options.browsers,
        relays: options.relays,
        redis: shape.redis,
        ..Report::default()
    };
    let catch_ups = Arc::new(Mutex::new(Vec::new()));
    let mut heals = JoinSet::new();
    for planned in planned {
        tokio::time::sleep_until(started + planned.at).await;
        let at = started.elapsed();
        let offline = match (planned.fault, &widgets) {
            (Fault::BrowserOffline { browser, .. }, Some(widgets)) => {
                Some(widgets.browser(browser)?)
            }
            _ => None,
        };
        let detail = match &offline {
            Some(browser) => {
                browsers::set_offline(browser, true).await.map(|()| "offline".to_owned())
            }
            None => chaos.strike(planned.fault, &mut rng).await,
        }
        .with_context(|| format!("striking {:?} at {:.1} s", planned.fault, at.as_secs_f64()))?;
        let line = format!("[{:>8.1} s] {}: {detail}", at.as_secs_f64(), planned.fault.kind());
        log(&line);
        report.fault_log.push(line);
        *report.faults.entry(planned.fault.kind().to_owned()).or_default() += 1;
        let heal = chaos.heal_request(planned.fault);
        let (admin, faces, catch_ups) = (chaos.admin.clone(), faces.clone(), catch_ups.clone());
        let lasting = planned.fault.lasting();
        heals.spawn(async move {
            tokio::time::sleep(lasting).await;
            if let Some((path, body)) = heal {
                admin.ok(&path, body).await?;
            }
            if let Some(browser) = offline {
                browsers::set_offline(&browser, false).await?;
            }
            let measured = catch_up(&admin, &faces, Duration::from_secs(60)).await?;
            catch_ups.lock().unwrap_or_else(PoisonError::into_inner).extend(measured);
            anyhow::Ok(())
        });
    }
    tokio::time::sleep_until(started + options.span).await;
    while let Some(healed) = heals.join_next().await {
        healed??;
    }
    chaos.heal_all().await?;
    report.catch_up_ms = Percentiles::of(&catch_ups.lock().unwrap_or_else(PoisonError::into_inner));

    // Everyone comes back; the agent writes once more in every chat.
    phase.send_replace(Phase::Return);
    let tally = agent.await.context("the agent task")?;
    report.agent_lines = tally.lines;
    let final_lines = final_lines(&chaos.admin, &faces).await?;
    let (finals, stuck) = wait_caught_up(&faces, &final_lines).await;
    report.final_catch_up_ms = Percentiles::of(&finals);
    report.stuck = stuck;
    report.agent_lines += final_lines.len() as u64;
    if let Some(widgets) = &widgets {
        report.agent_lines += self::final_lines(&chaos.admin, &widget_faces).await?.len() as u64;
        let (shown, stuck, mut violations) = widgets.check(&chaos.admin, CATCH_UP_LIMIT).await?;
        report.browser_lines = shown;
        report.stuck.extend(stuck);
        report.violations.append(&mut violations);
    }
    report.pushes_pending = settle_pushes(&chaos.admin).await?;
    report.minutes = started.elapsed().as_secs_f64() / 60.0;

    phase.send_replace(Phase::Done);
    let mut outcomes = Vec::new();
    for visitor in visitors {
        outcomes.push(visitor.await.context("a visitor task")?);
    }
    let mut connections = 0;
    for (face, outcome) in faces.iter().zip(&outcomes) {
        report.visitor_lines += outcome.sent;
        connections += outcome.connections;
        report.events_delivered += outcome.ledger.shown.len() as u64;
        report.forgotten += *face.ended_frames.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(chat_id) = face.chat_id.get() else {
            report.violations.push("a visitor never got a chat".to_owned());
            continue;
        };
        let detail = chaos.admin.get(&format!("/sim/chats/{chat_id}")).await?;
        let transcript: Vec<ChatEvent> = serde_json::from_value(detail["transcript"].clone())?;
        let verdict = ledger::check(&outcome.ledger, &transcript);
        report.gaps += verdict.missing.len() as u64;
        report.wrong += verdict.wrong.len() as u64;
        report.duplicates += verdict.duplicates;
        report.out_of_order += verdict.out_of_order;
        if !verdict.clean() {
            report.violations.push(format!("chat {chat_id}: {verdict:?}"));
        }
    }

    // Every chat is still running, so every relay must still hold every one.
    let running = everyone.iter().filter(|f| f.chat_id.get().is_some()).count() as u64;
    for (node, held) in chaos.relay_chats().await?.into_iter().enumerate() {
        if held < running {
            report.violations.push(format!("relay {node} holds {held} of {running} running chats"));
        }
    }
    let stats = chaos.admin.stats().await?;
    let count = |path: &[&str]| path.iter().fold(&stats, |v, k| &v[*k]).as_u64().unwrap_or(0);
    report.pushes_sent = count(&["pushes", "sent"]);
    report.pushes_resent = count(&["pushes", "resent"]);
    report.pushes_expired = count(&["pushes", "expired"]);
    report.gms_requests =
        stats["requests"].as_object().map_or(0, |r| r.values().filter_map(|v| v.as_u64()).sum());
    let visitor_hours = options.visitors as f64 * report.minutes / 60.0;
    report.gms_requests_per_visitor_hour = report.gms_requests as f64 / visitor_hours;
    // Every request must be explained by something that happened, not by the clock: a
    // refresh per agent line (the relay's acknowledgement) and per (re)connection (the
    // widget's catch-up), a request per visitor line and per chat, a ping per restored
    // session, one per injected failure (its retry), and the idle refresh and periodic
    // ping (each twice an hour); all doubled for slack.
    let injected = fault_requests(&report);
    let explained = report.agent_lines
        + connections
        + report.visitor_lines
        + options.visitors as u64
        + count(&["restorations"])
        + injected;
    report.gms_budget_per_visitor_hour = 2.0 * (explained as f64 / visitor_hours + 4.0);

    if let Some(widgets) = widgets {
        widgets.close().await;
    }
    judge(&mut report);
    Ok(report)
}

/// The fault log is the run's live output, line by line.
#[allow(clippy::print_stderr, reason = "the fault log is the run's live output")]
fn log(line: &str) {
    eprintln!("{line}");
}

/// Requests the faults themselves answered (each is retried once more).
fn fault_requests(report: &Report) -> u64 {
    // The bursts' sizes are drawn up to 20 requests each.
    20 * (report.faults.get("GMS statusCode 1 burst").copied().unwrap_or(0)
        + report.faults.get("GMS HTTP 503 burst").copied().unwrap_or(0))
}

fn judge(report: &mut Report) {
    let mut violations = Vec::new();
    if report.faults.values().sum::<u64>() < 100 {
        violations.push("fewer than 100 faults were struck".to_owned());
    }
    if !report.stuck.is_empty() {
        violations.push(format!("stuck after the last fault: {:?}", report.stuck));
    }
    if report.pushes_expired > 0 {
        violations.push(format!("{} pushes exhausted their resends", report.pushes_expired));
    }
    if report.pushes_pending > 0 {
        violations.push(format!("{} pushes unacknowledged at the end", report.pushes_pending));
    }
    if report.forgotten > 0 {
        violations.push(format!("the relay forgot {} running chats", report.forgotten));
    }
    if report.gms_requests_per_visitor_hour > report.gms_budget_per_visitor_hour {
        violations.push("GMS requests over the no-polling budget".to_owned());
    }
    violations.append(&mut report.violations);
    report.violations = violations;
}

/// What the agent did.
#[derive(Debug, Default)]
struct Tally {
    lines: u64,
    /// Lines GMS refused because the chat's Chat Server was down or restarted.
    refused: u64,
}

/// The agent: joins each chat once it exists, then writes in a random chat at a steady
/// rate, until the chaos is over.
async fn agent(
    admin: SimAdmin,
    faces: Arc<[Arc<Face>]>,
    seed: u64,
    mut phase: watch::Receiver<Phase>,
) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(2));
    let mut tally = Tally::default();
    let mut joined = std::collections::HashSet::new();
    let every = AGENT_LINE_EVERY / u32::try_from(faces.len().max(1)).unwrap_or(1);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = phase.changed() => return tally,
            _ = tick.tick() => {}
        }
        let face = &faces[rng.random_range(0..faces.len())];
        let Some(chat_id) = face.chat_id.get() else { continue };
        let (path, body) = if joined.contains(chat_id) {
            let text = format!("a{}", tally.lines);
            (format!("/sim/chats/{chat_id}/agent/message"), json!({ "text": text }))
        } else {
            (format!("/sim/chats/{chat_id}/agent/join"), json!({"nickname": "Agent"}))
        };
        match admin.post(&path, body).await {
            Ok((200, _)) => {
                tally.lines += 1;
                joined.insert(chat_id.clone());
            }
            _ => tally.refused += 1,
        }
    }
}

/// Snapshot of every chat's next position in GMS.
async fn positions(admin: &SimAdmin) -> Result<BTreeMap<String, (u64, u64)>> {
    let chats = admin.get("/sim/chats").await?;
    Ok(chats
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let id = c["chatId"].as_str()?.to_owned();
            Some((id, (c["nextPosition"].as_u64()?, c["pendingPushes"].as_u64().unwrap_or(0))))
        })
        .collect())
}

/// How long each visitor with an open tab that was behind GMS takes to catch up with
/// where GMS is now; a visitor that closes its tab meanwhile is not counted.
async fn catch_up(admin: &SimAdmin, faces: &[Arc<Face>], limit: Duration) -> Result<Vec<Duration>> {
    let positions = positions(admin).await?;
    let since = Instant::now();
    let mut waits = JoinSet::new();
    for face in faces {
        let Some(chat_id) = face.chat_id.get() else { continue };
        let Some(&(target, _)) = positions.get(chat_id) else { continue };
        let progress = *face.progress.borrow();
        if !progress.tab_open || progress.next_position >= target {
            continue;
        }
        let mut watch = face.progress.subscribe();
        waits.spawn(async move {
            let reached = tokio::time::timeout(
                limit,
                watch.wait_for(|p| p.next_position >= target || !p.tab_open),
            )
            .await;
            match reached {
                Ok(Ok(p)) if p.tab_open => Some(since.elapsed()),
                Ok(_) => None,
                Err(_) => Some(limit),
            }
        });
    }
    let mut measured = Vec::new();
    while let Some(waited) = waits.join_next().await {
        measured.extend(waited.ok().flatten());
    }
    Ok(measured)
}

/// The agent's last line in every chat (a chat whose Chat Server went away is restored by
/// its visitor's return, so a refusal is tried again); answers each line's position.
async fn final_lines(admin: &SimAdmin, faces: &[Arc<Face>]) -> Result<Vec<(usize, u64, Instant)>> {
    let mut lines = Vec::new();
    for (number, face) in faces.iter().enumerate() {
        let Some(chat_id) = face.chat_id.get() else { continue };
        let path = format!("/sim/chats/{chat_id}/agent/message");
        let deadline = Instant::now() + CATCH_UP_LIMIT;
        loop {
            let (status, body) = admin.post(&path, json!({"text": "last line"})).await?;
            if status == 200 {
                let index: serde_json::Value = serde_json::from_str(&body)?;
                let index = index["index"].as_u64().context("the agent's line has no index")?;
                lines.push((number, index + 1, Instant::now()));
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "chat {chat_id} refuses the agent: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(lines)
}

/// Waits for every visitor to show its chat's last line; answers the times and the
/// visitors that did not within the limit.
async fn wait_caught_up(
    faces: &[Arc<Face>],
    lines: &[(usize, u64, Instant)],
) -> (Vec<Duration>, Vec<String>) {
    let mut waits = JoinSet::new();
    for &(number, target, since) in lines {
        let mut watch = faces[number].progress.subscribe();
        let chat_id = faces[number].chat_id.get().cloned().unwrap_or_default();
        waits.spawn(async move {
            let reached = tokio::time::timeout_at(
                since + CATCH_UP_LIMIT,
                watch.wait_for(|p| p.next_position >= target),
            )
            .await;
            match reached {
                Ok(Ok(_)) => Ok(since.elapsed()),
                _ => Err(format!("visitor {number} (chat {chat_id})")),
            }
        });
    }
    let (mut times, mut stuck) = (Vec::new(), Vec::new());
    while let Some(waited) = waits.join_next().await {
        match waited {
            Ok(Ok(time)) => times.push(time),
            Ok(Err(who)) => stuck.push(who),
            Err(error) => stuck.push(format!("a waiting task failed: {error}")),
        }
    }
    (times, stuck)
}

/// Waits (up to 30 s: thirty resends) for the relay to acknowledge every push.
async fn settle_pushes(admin: &SimAdmin) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: u64 = positions(admin).await?.values().map(|(_, p)| p).sum();
        if pending == 0 || Instant::now() >= deadline {
            return Ok(pending);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
