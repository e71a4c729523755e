//! GMS 8.5.112 and later need not hand out `userId` and `alias` (gms-sim `--omit-tokens`,
//! as Genesys' GMSLibrary decodes both as optional): a chat registered without them has
//! its pushes forwarded and acknowledged, and is restored when a Chat Server restarts,
//! since it could be on any.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Setup, next_events};
use crate::harness::Options;
use crate::support::SERVICE;
use shared::relay_api::SESSIONS_PATH;

#[tokio::test]
async fn a_chat_gms_gave_no_user_id_nor_alias_is_registered_pushed_and_restored() -> Result<()> {
    let sim = ["--omit-tokens", "--flex-push-content", "session-id,secure-key"];
    let mut options = Options::sim(&sim).relay(&["--health-interval", "0.1"]);
    options.watch_chat_servers = true;
    let setup = Setup::start(options).await?;

    // A registration that names neither (as a widget on such a GMS sends it) is accepted.
    let credentials = setup.chat(false).await?;
    assert_eq!((credentials.user_id.as_str(), credentials.alias.as_str()), ("", ""));
    let body = json!({"service": SERVICE, "chatId": credentials.chat_id, "secureKey": credentials.secure_key});
    let url = format!("{}{SESSIONS_PATH}", setup.system.relay_url);
    let answer = setup.http.post(url).json(&body).send().await?;
    assert_eq!(answer.status(), 200, "{}", answer.text().await?);

    // Pushes reach the subscriber and are acknowledged: the relay's pings send only the
    // tokens it has (gms-sim refuses a userId that is not the chat's, an empty one too).
    let (chat, mut ws, _) = setup.subscribed_chat(false).await?;
    setup.admin.agent_says(&chat.chat_id, "no alias needed").await?;
    let mut lines = Vec::new();
    while !lines.iter().any(|t| t == "no alias needed") {
        lines.extend(next_events(&mut ws).await?.into_iter().filter_map(|e| e.text));
    }
    setup.acknowledged(&chat.chat_id, Duration::from_secs(5)).await?;

    // A restart of the Chat Server it is on (which the relay cannot know) restores it.
    let sim_chat = setup.admin.get(&format!("/sim/chats/{}", chat.chat_id)).await?;
    let server = sim_chat["alias"].as_str().unwrap_or_default().to_owned();
    setup.admin.polled(&server, 2).await?;
    let before = setup.admin.refreshes().await?;
    setup.admin.ok(&format!("/sim/chat-servers/{server}/restart"), json!({})).await?;
    let moving = [chat.chat_id.clone(), credentials.chat_id.clone()];
    super::restored(&setup.admin, &moving, &before, Duration::from_secs(20)).await?;
    setup.system.stop().await
}
