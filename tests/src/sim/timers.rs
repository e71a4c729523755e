use std::time::Duration;

use shared::gms::EventType;

use super::{Sim, push_user_data};
use crate::support::{NotReached, Wait, until};

/// Watches a chat through the admin API (a refresh would count as activity).
async fn ended_within(sim: &Sim, chat_id: &str, within: Duration) -> anyhow::Result<bool> {
    let ended = until(&format!("chat {chat_id} ended"), within, async || {
        let chat = sim.admin.get(&format!("/sim/chats/{chat_id}")).await?;
        Ok(Wait::done_if(chat["ended"] == true, chat))
    })
    .await;
    match ended {
        Ok(()) => Ok(true),
        Err(error) if error.is::<NotReached>() => Ok(false),
        Err(error) => Err(error),
    }
}

#[tokio::test]
async fn an_idle_web_user_is_logged_out_but_a_push_subscribed_one_is_not() -> anyhow::Result<()> {
    let sim =
        Sim::start(&["--flex-disconnect-timeout", "0.3", "--flex-push-timeout", "30"]).await?;
    let (plain, _) = sim.gms.create("Jane", vec![]).await?;
    let (pushed, _) = sim.gms.create("Joe", push_user_data("dev-1", false)).await?;
    assert!(ended_within(&sim, &plain.chat_id, Duration::from_secs(5)).await?);
    assert!(!ended_within(&sim, &pushed.chat_id, Duration::from_millis(600)).await?);
    let transcript = sim.refresh(&plain, 1).await?;
    assert_eq!(transcript.chat_ended, Some(true));
    assert_eq!(
        transcript.messages.last().map(|e| e.event_type.clone()),
        Some(EventType::ParticipantLeft)
    );
    sim.running.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_idle_async_chat_is_alerted_then_closed() -> anyhow::Result<()> {
    let sim = Sim::start(&["--async-idle-alert", "0.2", "--async-idle-close", "0.2"]).await?;
    let (credentials, _) = sim.gms.create("Jane", push_user_data("dev-1", false)).await?;
    assert!(ended_within(&sim, &credentials.chat_id, Duration::from_secs(5)).await?);
    let transcript = sim.refresh(&credentials, 2).await?;
    let types: Vec<EventType> = transcript.messages.iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(types, [EventType::IdleAlert, EventType::IdleClose]);
    sim.running.stop().await;
    Ok(())
}
