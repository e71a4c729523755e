//! Proxy mode's cost: visitors' lines (`send`) at fixed rates, straight to gms-sim (direct
//! mode) and through the relay's `/v1/chats` (proxy mode), each line timed from its request
//! to GMS's answer; the difference is what the relay adds, and the relay's CPU time per
//! proxied request is what it costs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shared::gms::{ChatOperation, Credentials};
use shared::transcript::TranscriptPosition;
use system_tests::harness::{RelayProcess, relay_binary};
use system_tests::support::SERVICE;
use tokio::sync::Semaphore;

use crate::machine::Usage;
use crate::push::{Pushing, gms_pushing_to_a_relay};
use crate::report::{Percentiles, Report};

/// Requests in flight at once, as many visitors' browsers would have.
const IN_FLIGHT: usize = 256;

/// One chat as each mode's visitor holds it.
struct Chat {
    /// The GMS tokens (direct mode).
    credentials: Credentials,
    /// The chat started through the relay: its id and subscription token (proxy mode).
    proxied: (String, String),
}

/// What a step of one mode measured.
struct Measured {
    latency: Option<Percentiles>,
    ok: usize,
    relay_cpu: Duration,
}

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let (chats, rates, step): (usize, &[u32], Duration) = if report.smoke {
        (10, &[20], Duration::from_secs(1))
    } else {
        (200, &[100, 1000], Duration::from_secs(10))
    };
    let Pushing { gms, relay_url, data_dir, args } = gms_pushing_to_a_relay("bench-proxy").await?;
    let args = args
        .flags(["--gms-proxy", "--proxy-send-rate", "0", "--proxy-other-rate", "0"])
        .flags(["--gms-concurrency", "512"])
        .build();
    let relay = RelayProcess::start(&relay_binary()?, &args).await?;
    let pid = relay.pid().context("relay pid")?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build()?;
    let direct = crate::chats::create(&gms.url(), None, "proxy-direct", chats).await?;
    let mut all = Vec::with_capacity(chats);
    for chat in direct {
        let started: serde_json::Value = http
            .post(format!("{relay_url}{}/{SERVICE}", shared::proxy::CHATS_PATH))
            .header("content-type", shared::form::CONTENT_TYPE)
            .body("nickname=Visitor")
            .send()
            .await?
            .json()
            .await?;
        let id = started["chatId"].as_str().context("a started chat")?.to_owned();
        let token = started["relay"]["token"].as_str().context("its token")?.to_owned();
        all.push(Chat { credentials: chat.credentials, proxied: (id, token) });
    }
    let chats = all;
    for &rate in rates {
        let case = format!("{rate} lines/s, {} chats", chats.len());
        let direct = lines(&http, &gms.url(), None, &chats, rate, step, pid).await?;
        let proxied = lines(&http, &gms.url(), Some(&relay_url), &chats, rate, step, pid).await?;
        let sent = (f64::from(rate) * step.as_secs_f64()) as usize;
        report.add("proxy", &case, "direct: answered", direct.ok as f64, "lines");
        report.add("proxy", &case, "proxy: answered", proxied.ok as f64, "lines");
        if let (Some(d), Some(p)) = (&direct.latency, &proxied.latency) {
            report.add("proxy", &case, "direct p50", d.p50, "ms");
            report.add("proxy", &case, "direct p99", d.p99, "ms");
            report.add("proxy", &case, "proxy p50", p.p50, "ms");
            report.add("proxy", &case, "proxy p99", p.p99, "ms");
            report.add("proxy", &case, "added p50", p.p50 - d.p50, "ms");
            report.add("proxy", &case, "added p99", p.p99 - d.p99, "ms");
        }
        let per_request = proxied.relay_cpu.as_secs_f64() * 1e6 / proxied.ok.max(1) as f64;
        report.add("proxy", &case, "relay CPU per proxied line", per_request, "µs");
        if proxied.ok < sent * 95 / 100 {
            report.note(format!("proxy: at {rate} lines/s only {} of {sent} answered", proxied.ok));
        }
    }
    relay.kill9().await?;
    gms.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    Ok(())
}

/// `rate` lines a second for `step`, spread over the chats: to GMS with each chat's tokens,
/// or through the relay at `relay_url` with its subscription token. Answers the latency of
/// the lines GMS accepted and the relay's CPU time meanwhile.
async fn lines(
    http: &reqwest::Client,
    gms_url: &str,
    relay_url: Option<&str>,
    chats: &[Chat],
    rate: u32,
    step: Duration,
    relay_pid: u32,
) -> Result<Measured> {
    let count = (f64::from(rate) * step.as_secs_f64()) as usize;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let before = Usage::of(relay_pid).context("relay usage")?;
    let started = Instant::now();
    let mut sending = tokio::task::JoinSet::new();
    for k in 0..count {
        tokio::time::sleep_until((started + gap * u32::try_from(k)?).into()).await;
        let permit = permits.clone().acquire_owned().await?;
        let chat = &chats[k % chats.len()];
        let operation = ChatOperation::Send {
            message: format!("line {k}"),
            message_type: None,
            reply_to: None,
            position: TranscriptPosition::None,
        };
        let request = match relay_url {
            None => {
                let encoded = operation.encode(SERVICE, Some(&chat.credentials));
                http.post(format!("{gms_url}{}", encoded.path))
                    .body(encoded.form_body().unwrap_or_default())
            }
            Some(relay) => {
                let (id, token) = &chat.proxied;
                let encoded = operation.encode(SERVICE, Some(&Credentials::id_only(id)));
                let path = shared::proxy::relay_path(&encoded.path);
                http.post(format!("{relay}{path}"))
                    .bearer_auth(token)
                    .body(encoded.form_body().unwrap_or_default())
            }
        }
        .header("content-type", shared::form::CONTENT_TYPE);
        let latencies = latencies.clone();
        sending.spawn(async move {
            let sent = Instant::now();
            let answer = match request.send().await {
                Ok(response) => response.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            if answer.is_some_and(|a| a["statusCode"] == 0)
                && let Ok(mut latencies) = latencies.lock()
            {
                latencies.push(sent.elapsed());
            }
            drop(permit);
        });
    }
    sending.join_all().await;
    let after = Usage::of(relay_pid).context("relay usage")?;
    let mut samples = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(Measured {
        ok: samples.len(),
        latency: Percentiles::of(&mut samples),
        relay_cpu: after.cpu.saturating_sub(before.cpu),
    })
}
