//! Measures the time from a Chat Server restart to every chat restored, with the relay at
//! its default restoration rate: `cargo run --release -p system-tests --example
//! restore_timing -- 1000 10000`. Prints one line per size; chats are spread over two
//! Chat Servers by gms-sim, so about half of them are restored.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use shared::gms::{PushSubscription, async_push_user_data};
use shared::relay_api::RegisterSession;
use system_tests::gms_client::{GmsClient, SimAdmin};
use system_tests::harness::{Options, System};

#[tokio::main]
async fn main() -> Result<()> {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000] } else { sizes };
    for chats in sizes {
        measure(chats).await?;
    }
    Ok(())
}

async fn measure(chats: usize) -> Result<()> {
    let mut options =
        Options::sim(&["--flex-disconnect-timeout", "100000"]).relay(&["--health-interval", "0.2"]);
    options.watch_chat_servers = true;
    let system = System::start(options).await?;
    let gms = GmsClient::new(&system.gms.url(), "customer-support");
    let admin = SimAdmin::new(&system.gms.url());
    let http = reqwest::Client::new();
    let relay = system.relay_url.clone();
    let setup = Instant::now();
    let results: Vec<Result<String>> = futures_util::stream::iter(0..chats)
        .map(|i| {
            let (gms, http, relay) = (gms.clone(), http.clone(), relay.clone());
            async move {
                let subscription = PushSubscription::new(format!("dev-{i}"), "");
                let (c, _) = gms.create("Visitor", async_push_user_data(&subscription)).await?;
                let body = RegisterSession {
                    service: "customer-support".into(),
                    chat_id: c.chat_id.clone(),
                    user_id: c.user_id,
                    secure_key: c.secure_key,
                    alias: c.alias.clone(),
                    device_id: None,
                };
                http.post(format!("{relay}/v1/sessions"))
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(c.alias)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let on_117 =
        results.into_iter().collect::<Result<Vec<_>>>()?.iter().filter(|a| *a == "117").count();
    let prepared = setup.elapsed();

    let restarted = Instant::now();
    admin.ok("/sim/chat-servers/117/restart", serde_json::json!({})).await?;
    loop {
        let list = admin.get("/sim/chats").await?;
        let waiting =
            list.as_array().map_or(0, |l| l.iter().filter(|c| c["hosted"] != true).count());
        if waiting == 0 {
            break;
        }
        if restarted.elapsed() > Duration::from_secs(600) {
            bail!("{waiting} chats not restored after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = restarted.elapsed();
    let stats = admin.stats().await?;
    #[allow(clippy::print_stdout, reason = "a measurement prints its figures")]
    {
        println!(
            "chats={chats} on_restarted_server={on_117} restored={} restart_to_all_restored={:.2}s \
             ({:.0} chats/s; setup {:.1}s)",
            stats["restorations"],
            took.as_secs_f64(),
            on_117 as f64 / took.as_secs_f64(),
            prepared.as_secs_f64()
        );
    }
    system.stop().await
}
