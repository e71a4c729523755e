//! Runs one chaos run: starts the system and the visitors, lets the agents talk, strikes
//! the planned faults, brings every visitor back, then checks and reports.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use shared::gms::ChatEvent;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::browsers::{self, Widgets};
use super::report::{Percentiles, Report};
use super::schedule::{self, Fault, Shape, Store};
use super::system::Chaos;
use super::visitor::{self, Env, Face, Outcome, Phase};
use super::{agent, catch_up, ledger};
use crate::support::SERVICE;

/// How long every visitor has to catch up once the last fault is over.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);
/// How long a visitor has to catch up after a fault before it counts as the limit.
const FAULT_CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

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
    /// Where the relays keep their records: a Redis topology, always with several relays.
    pub store: Store,
    /// Real widgets in Chromium (needs `widget` and chromedriver).
    pub browsers: usize,
    /// The built widget (`trunk build` output).
    pub widget: Option<PathBuf>,
    /// gms-sim's `--push-format` (its default when none).
    pub push_format: Option<String>,
    /// The relays in proxy mode: every Chat API request of the visitors and widgets goes
    /// through them (and the suite's load balancer), none to GMS.
    pub proxy: bool,
}

/// Runs it; the report says whether any invariant was violated.
pub async fn run(options: Options) -> Result<Report> {
    let mut chaos = Chaos::start(
        options.relays,
        options.store,
        options.widget.clone(),
        options.push_format.as_deref(),
        options.proxy,
    )
    .await?;
    let result = conduct(&options, &mut chaos).await;
    chaos.stop().await?;
    result
}

/// The visitors of a run: the headless ones and the widgets in Chromium.
struct Cast {
    faces: Arc<[Arc<Face>]>,
    widgets: Option<Widgets>,
    widget_faces: Vec<Arc<Face>>,
}

async fn conduct(options: &Options, chaos: &mut Chaos) -> Result<Report> {
    let started = Instant::now();
    let env = Arc::new(Env {
        gms_url: chaos.gms.url(),
        relay_url: chaos.proxy.url.clone(),
        service: SERVICE.to_owned(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
        proxy: options.proxy,
    });
    let widgets = match options.browsers {
        0 => None,
        count => Some(Widgets::start(count, &format!("{}/", chaos.proxy.url)).await?),
    };
    let widget_faces: Vec<Arc<Face>> = widgets.iter().flat_map(|w| w.faces.clone()).collect();
    let cast =
        Cast { faces: (0..options.visitors).map(|_| Face::new()).collect(), widgets, widget_faces };
    let everyone: Arc<[Arc<Face>]> = cast.faces.iter().chain(&cast.widget_faces).cloned().collect();
    let (phase, phase_rx) = watch::channel(Phase::Chaos);
    let visitors: Vec<_> = cast
        .faces
        .iter()
        .enumerate()
        .map(|(number, face)| {
            let run =
                visitor::run(env.clone(), number, options.seed, face.clone(), phase_rx.clone());
            tokio::spawn(run)
        })
        .collect();
    let agent = tokio::spawn(agent::talk(
        chaos.admin.clone(),
        everyone.clone(),
        options.seed,
        phase_rx.clone(),
    ));

    let shape = Shape {
        relays: options.relays,
        chat_servers: chaos.gms.chat_servers.len(),
        browsers: options.browsers,
        store: options.store,
    };
    let mut report = Report {
        seed: options.seed,
        visitors: options.visitors,
        browsers: options.browsers,
        relays: options.relays,
        store: shape.store,
        proxy: options.proxy,
        ..Report::default()
    };
    let injected = strike_all(options, shape, chaos, &cast, started, &mut report).await?;

    // Everyone comes back; the agent writes once more in every chat.
    phase.send_replace(Phase::Return);
    let tally = agent.await.context("the agent task")?;
    report.agent_lines = tally.lines;
    report.agent_refused = tally.refused;
    come_back(chaos, &cast, &mut report).await?;
    report.minutes = started.elapsed().as_secs_f64() / 60.0;

    phase.send_replace(Phase::Done);
    let mut outcomes = Vec::new();
    for visitor in visitors {
        outcomes.push(visitor.await.context("a visitor task")?);
    }
    check_ledgers(chaos, &cast.faces, &outcomes, &mut report).await?;
    // Every chat is still running, so every relay must still hold every one.
    let running = everyone.iter().filter(|f| f.chat_id.get().is_some()).count() as u64;
    for (node, held) in chaos.relay_chats().await?.into_iter().enumerate() {
        if held < running {
            report.violations.push(format!("relay {node} holds {held} of {running} running chats"));
        }
    }
    report.relay_failed_starts = chaos.failed_starts;
    let connections: u64 = outcomes.iter().map(|o| o.connections).sum();
    gms_load(chaos, options.visitors, connections + injected, &mut report).await?;
    if let Some(widgets) = cast.widgets {
        widgets.close().await;
    }
    judge(&mut report);
    Ok(report)
}

/// Strikes every planned fault at its time, heals the lasting ones when they are over and
/// times the visitors' catch-up after each; answers the Chat API requests the faults
/// failed on purpose.
async fn strike_all(
    options: &Options,
    shape: Shape,
    chaos: &mut Chaos,
    cast: &Cast,
    started: Instant,
    report: &mut Report,
) -> Result<u64> {
    let mut rng = StdRng::seed_from_u64(options.seed.wrapping_add(1));
    let catch_ups = Arc::new(Mutex::new(Vec::new()));
    let mut heals = JoinSet::new();
    let mut injected = 0;
    for planned in schedule::plan(options.seed, options.span, options.faults, shape) {
        tokio::time::sleep_until(started + planned.at).await;
        let at = started.elapsed();
        let offline = match (planned.fault, &cast.widgets) {
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
        if let Fault::GmsStatusCode1 { requests } | Fault::GmsHttp5xx { requests } = planned.fault {
            injected += u64::from(requests);
        }
        let line = format!("[{:>8.1} s] {}: {detail}", at.as_secs_f64(), planned.fault.kind());
        log(&line);
        report.fault_log.push(line);
        *report.faults.entry(planned.fault.kind().to_owned()).or_default() += 1;
        let heal = chaos.heal_request(planned.fault);
        let (admin, faces, catch_ups) =
            (chaos.admin.clone(), cast.faces.clone(), catch_ups.clone());
        let lasting = planned.fault.lasting();
        heals.spawn(async move {
            tokio::time::sleep(lasting).await;
            if let Some((path, body)) = heal {
                admin.ok(&path, body).await?;
            }
            if let Some(browser) = offline {
                browsers::set_offline(&browser, false).await?;
            }
            let measured = catch_up::catch_up(&admin, &faces, FAULT_CATCH_UP_LIMIT).await?;
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
    Ok(injected)
}

/// The last line in every chat, and how long every visitor and widget takes to show it.
async fn come_back(chaos: &Chaos, cast: &Cast, report: &mut Report) -> Result<()> {
    let lines = agent::last_lines(&chaos.admin, &cast.faces, CATCH_UP_LIMIT).await?;
    let (finals, stuck) = catch_up::wait_caught_up(&cast.faces, &lines, CATCH_UP_LIMIT).await;
    report.final_catch_up_ms = Percentiles::of(&finals);
    report.stuck = stuck;
    report.agent_lines += lines.len() as u64;
    if let Some(widgets) = &cast.widgets {
        let lines = agent::last_lines(&chaos.admin, &cast.widget_faces, CATCH_UP_LIMIT).await?;
        report.agent_lines += lines.len() as u64;
        let (shown, stuck, mut violations) = widgets.check(&chaos.admin, CATCH_UP_LIMIT).await?;
        report.browser_lines = shown;
        report.stuck.extend(stuck);
        report.violations.append(&mut violations);
    }
    report.pushes_pending = catch_up::settle_pushes(&chaos.admin).await?;
    Ok(())
}

/// Each headless visitor's log against its chat's transcript in gms-sim.
async fn check_ledgers(
    chaos: &Chaos,
    faces: &[Arc<Face>],
    outcomes: &[Outcome],
    report: &mut Report,
) -> Result<()> {
    for (face, outcome) in faces.iter().zip(outcomes) {
        report.visitor_lines += outcome.sent;
        report.visitor_retries += outcome.failed_sends;
        report.events_delivered += outcome.ledger.shown.len() as u64;
        report.forgotten += face.ended_frames.load(std::sync::atomic::Ordering::Relaxed);
        report.tabs += outcome.tabs;
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
    Ok(())
}

/// The pushes and GMS requests gms-sim counted, and the no-polling budget: every request
/// must be explained by something that happened, not by the clock. That is a refresh per
/// agent line (the relay's acknowledgement) and per relay connection (the widget's
/// catch-up), a request per visitor line and per chat, a ping per restored session, one
/// per failure injected (its retry), plus the idle refresh and the periodic ping (each
/// twice an hour); all doubled for slack. `also` is the connections and injected failures.
async fn gms_load(chaos: &Chaos, visitors: usize, also: u64, report: &mut Report) -> Result<()> {
    let stats = chaos.admin.stats().await?;
    let count = |path: &[&str]| path.iter().fold(&stats, |v, k| &v[*k]).as_u64().unwrap_or(0);
    report.pushes_sent = count(&["pushes", "sent"]);
    report.pushes_resent = count(&["pushes", "resent"]);
    report.pushes_expired = count(&["pushes", "expired"]);
    report.gms_requests_by_operation = serde_json::from_value(stats["requests"].clone())?;
    report.gms_requests = report.gms_requests_by_operation.values().sum();
    let visitor_hours = visitors as f64 * report.minutes / 60.0;
    report.gms_requests_per_visitor_hour = report.gms_requests as f64 / visitor_hours;
    let explained = report.agent_lines
        + report.visitor_lines
        + visitors as u64
        + count(&["restorations"])
        + also;
    report.gms_budget_per_visitor_hour = 2.0 * (explained as f64 / visitor_hours + 4.0);
    Ok(())
}

/// The fault log is the run's live output, line by line.
#[allow(clippy::print_stderr, reason = "the fault log is the run's live output")]
fn log(line: &str) {
    eprintln!("{line}");
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
