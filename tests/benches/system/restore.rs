//! Restoration after a Chat Server restart: from the restart to every chat hosted again,
//! with the relay watching the Chat Servers' health and pinging at its default rate.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{Options, System};
use system_tests::support::NO_CLIENT_LIMITS;

use crate::chats;
use crate::report::Report;

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let size = if report.smoke { 100 } else { 10_000 };
    let mut options = Options::sim(&["--flex-disconnect-timeout", "100000"])
        .relay(&["--health-interval", "0.2"])
        .relay(&NO_CLIENT_LIMITS);
    options.watch_chat_servers = true;
    let system = System::start(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let chats = chats::create(&system.gms.url(), Some(&system.relay_url), "restore", size).await?;
    let on_restarted = chats.iter().filter(|c| c.credentials.alias == "117").count();

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
    let restorations = admin.stats().await?["restorations"].as_u64().unwrap_or(0);
    let case = format!("{size} chats, {on_restarted} on the restarted Chat Server");
    report.add("restore", &case, "restart → all restored", took.as_secs_f64(), "s");
    report.add("restore", &case, "restored", restorations as f64, "chats");
    report.add("restore", &case, "rate", on_restarted as f64 / took.as_secs_f64(), "chats/s");
    system.stop().await
}
