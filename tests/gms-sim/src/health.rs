//! One Chat Server's health port: JSON with `app_dbid` and `process_os_pid` while the
//! server runs; while it is killed or stopped, connections are closed unanswered.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Sim;

pub(crate) async fn serve(listener: TcpListener, alias: String, sim: Sim) {
    loop {
        let accepted = tokio::select! {
            () = sim.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let Some(body) = sim.with_world(|world, _| {
            let server = world.servers.iter().find(|s| s.alias == alias && s.up)?;
            *world.stats.health_polls.entry(alias.clone()).or_default() += 1;
            let hosted = world.chats.values().filter(|c| !c.ended && c.alias == server.alias && c.pid == server.pid);
            let sessions = hosted.clone().count();
            let subscribed = hosted.filter(|c| c.push.is_some()).count();
            Some(serde_json::json!({
                "app_dbid": server.alias.parse::<u64>().map_or_else(|_| serde_json::json!(server.alias), |n| serde_json::json!(n)),
                "process_os_pid": server.pid,
                "sessions": sessions,
                "flexUsers": sessions,
                "pushSubscribed": subscribed,
                "uptimeSeconds": server.started_at.elapsed().as_secs(),
            }))
        }) else {
            // Down: drop the connection without a word, as a dead process would.
            continue;
        };
        tokio::spawn(async move {
            let mut head = [0_u8; 4096];
            // One read is enough for a GET; the request itself does not matter.
            let _ = stream.read(&mut head).await;
            let body = body.to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
