//! Chat Server health bodies the relay cannot read: a 200 without the fields is no outage
//! (no restoration, no chat pinged), it is counted as `unreadable`, and restart detection
//! works again once the body is readable, in another layout too.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::Setup;
use crate::harness::Options;
use crate::support::{NO_CLIENT_LIMITS, Wait, until};

const CHATS: usize = 20;

/// Metrics are one registry for every relay in this process, so each test has aliases of
/// its own: `<first>` and the other one.
fn options(aliases: &str, extra_relay: &[&str]) -> Options {
    let mut options = Options::sim(&["--chat-servers", aliases])
        .relay(&["--health-interval", "0.1", "--health-failures", "3"])
        .relay(extra_relay)
        .relay(&NO_CLIENT_LIMITS);
    options.watch_chat_servers = true;
    options
}

/// This relay's restorations of `alias`'s chats, from `/status` (null before the first).
async fn restoration(setup: &Setup, alias: &str) -> Result<Value> {
    let url = format!("{}/status", setup.system.relay_url);
    let status: Value = setup.http.get(url).send().await?.json().await?;
    Ok(status["restorations"][alias].clone())
}

async fn health_body(setup: &Setup, alias: &str, layout: &str) -> Result<()> {
    setup.admin.ok(&format!("/sim/chat-servers/{alias}/health"), json!({"body": layout})).await?;
    Ok(())
}

fn polls(metrics: &str, alias: &str, result: &str) -> f64 {
    let labels = [format!("alias=\"{alias}\""), format!("result=\"{result}\"")];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    super::metric(metrics, "relay_health_polls_total", &labels)
}

#[tokio::test]
async fn an_unreadable_health_body_is_no_outage_and_a_readable_one_detects_restarts_again()
-> Result<()> {
    let setup = Setup::start(options("317,318", &["--restore-rate", "1000"])).await?;
    let chats = setup.registered_chats(CHATS).await?;
    setup.admin.polled("317", 2).await?;
    let before = setup.admin.refreshes().await?;

    // Far more polls than --health-failures, in both unreadable forms.
    health_body(&setup, "317", "unreadable").await?;
    setup.admin.polled("317", 10).await?;
    health_body(&setup, "317", "text").await?;
    setup.admin.polled("317", 10).await?;
    // The watcher is one poll behind gms-sim's count at most: one more settles it.
    setup.admin.polled("317", 1).await?;
    assert_eq!(restoration(&setup, "317").await?, Value::Null, "no restoration started");
    assert_eq!(setup.admin.refreshes().await?, before, "no chat pinged");
    let metrics = setup.metrics().await?;
    assert!(polls(&metrics, "317", "unreadable") >= 20.0, "{metrics}");
    assert_eq!(polls(&metrics, "317", "unreachable"), 0.0);
    assert!(polls(&metrics, "317", "ok") >= 1.0);
    assert!(polls(&metrics, "318", "ok") >= 20.0, "the other server is read as before");
    assert_eq!(
        super::metric(&metrics, "relay_chat_server_events_total", &["alias=\"317\""]),
        0.0,
        "no Chat Server event"
    );

    // Readable again, in another layout: a restart is detected and restored.
    health_body(&setup, "317", "nested").await?;
    setup.admin.polled("317", 3).await?;
    let on_317 = chats.iter().filter(|c| c.alias == "317").count();
    setup.admin.ok("/sim/chat-servers/317/restart", json!({})).await?;
    let progress = until("the restart restored", Duration::from_secs(30), async || {
        let progress = restoration(&setup, "317").await?;
        let done = progress["runs"] == 1 && progress["running"] == false;
        Ok(if done { Wait::Done(progress) } else { Wait::Still(progress) })
    })
    .await?;
    assert_eq!(progress["chats"], on_317, "{progress}");
    assert_eq!(progress["failed"], 0, "{progress}");
    let after = setup.admin.refreshes().await?;
    for chat in &chats {
        let extra = after.get(&chat.chat_id).copied().unwrap_or(0)
            - before.get(&chat.chat_id).copied().unwrap_or(0);
        assert_eq!(
            extra,
            u64::from(chat.alias == "317"),
            "chat on {} pinged {extra} times",
            chat.alias
        );
    }
    let metrics = setup.metrics().await?;
    assert!(
        super::metric(&metrics, "relay_chat_server_events_total", &["kind=\"restarted\""]) >= 1.0
    );
    setup.system.stop().await
}

#[tokio::test]
async fn health_key_names_are_configurable() -> Result<()> {
    let setup =
        Setup::start(options("417,418", &["--health-dbid-key", "dbid", "--health-pid-key", "pid"]))
            .await?;
    health_body(&setup, "417", "renamed").await?;
    setup.admin.polled("417", 3).await?;
    setup.admin.polled("417", 1).await?;
    let metrics = setup.metrics().await?;
    assert!(polls(&metrics, "417", "ok") >= 3.0, "{metrics}");
    // The default names are now unknown to this relay: the flat body is unreadable.
    assert!(polls(&metrics, "418", "unreadable") >= 3.0, "{metrics}");
    assert_eq!(polls(&metrics, "418", "ok"), 0.0);
    assert_eq!(restoration(&setup, "418").await?, Value::Null);
    setup.system.stop().await
}
