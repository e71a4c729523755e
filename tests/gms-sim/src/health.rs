//! One Chat Server's health port: JSON with `app_dbid` and `process_os_pid` while the
//! server runs; while it is killed or stopped, connections are closed unanswered.
//!
//! The real body is not public, so the layout can be switched through `/sim/chat-servers/
//! {alias}/health`: the two fields at the top (`flat`), deep inside (`nested`), under
//! other names (`renamed`), or a 200 the relay cannot read (`unreadable`: JSON without them; `text`: not JSON at all).

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Sim;

/// How a health body is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Layout {
    /// Every field at the top level.
    #[default]
    Flat,
    /// The identity two levels down, the figures in their own object.
    Nested,
    /// The identity under other names, `dbid` and `pid`, for a relay told those names.
    Renamed,
    /// JSON without `app_dbid` and `process_os_pid`.
    Unreadable,
    /// Plain text.
    Text,
}

pub(crate) async fn serve(listener: TcpListener, alias: String, sim: Sim) {
    loop {
        let accepted = tokio::select! {
            () = sim.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let Some((content_type, body)) = sim.with_world(|world, _| {
            let server = world.servers.iter().find(|s| s.alias == alias && s.up)?;
            *world.stats.health_polls.entry(alias.clone()).or_default() += 1;
            let hosted = world
                .chats
                .values()
                .filter(|c| !c.ended && c.alias == server.alias && c.pid == server.pid);
            let sessions = hosted.clone().count();
            let subscribed = hosted.filter(|c| c.push.is_some()).count();
            let dbid =
                server.alias.parse::<u64>().map_or_else(|_| json!(server.alias), |n| json!(n));
            let figures = json!({
                "sessions": sessions,
                "flexUsers": sessions,
                "pushSubscribed": subscribed,
                "uptimeSeconds": server.started_at.elapsed().as_secs(),
            });
            let body = match server.health_body {
                Layout::Flat => {
                    let mut body = figures;
                    body["app_dbid"] = dbid;
                    body["process_os_pid"] = json!(server.pid);
                    body
                }
                Layout::Nested => json!({
                    "application": {"app_dbid": dbid, "process": {"process_os_pid": server.pid}},
                    "kpi": figures,
                }),
                Layout::Renamed => {
                    json!({"app": {"dbid": dbid, "pid": server.pid}, "kpi": figures})
                }
                Layout::Unreadable => json!({"status": "OK", "kpi": figures}),
                Layout::Text => return Some(("text/plain", "OK".to_owned())),
            };
            Some(("application/json", Value::to_string(&body)))
        }) else {
            // Down: drop the connection without a word, as a dead process would.
            continue;
        };
        let shutdown = sim.shutdown.clone();
        tokio::spawn(async move {
            let answer = async {
                let mut head = [0_u8; 4096];
                // One read is enough for a GET; the request itself does not matter.
                let _ = stream.read(&mut head).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = answer => {}
            }
        });
    }
}
