//! The scripted agent (`--bot`): joins every new chat and answers every message.

use std::time::Duration;

use tokio::sync::mpsc::Receiver;

use crate::Sim;
use crate::agent::AgentAction;

pub(crate) async fn run(mut cues: Receiver<(String, Option<String>)>, sim: Sim, delay: Duration) {
    loop {
        let cue = tokio::select! {
            () = sim.shutdown.cancelled() => return,
            cue = cues.recv() => cue,
        };
        let Some((chat_id, message)) = cue else { return };
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let act = |action: AgentAction| {
                sim.with_world(|world, effects| world.agent(&chat_id, action, effects).is_ok())
            };
            let Some(text) = message else {
                if act(AgentAction::Join { nickname: "Ava".to_owned() }) {
                    act(AgentAction::Message {
                        text: "Hi! I'm Ava, a demo agent. Ask me anything, or close this tab and come back later: I'll still be here.".to_owned(),
                        structured: None,
                    });
                }
                return;
            };
            if !act(AgentAction::Typing { typing: true }) {
                return;
            }
            tokio::time::sleep(delay).await;
            act(AgentAction::Message { text: reply(&text), structured: None });
        });
    }
}

fn reply(text: &str) -> String {
    let lower = text.to_lowercase();
    if lower.contains("link") || lower.contains("url") {
        "Here is our help centre: https://example.com/help".to_owned()
    } else if lower.contains("bye") || lower.contains("thank") {
        "You're welcome! The chat stays open if you need anything else.".to_owned()
    } else {
        format!("You said: \u{201c}{text}\u{201d}. I'm a scripted agent, so that's all I can do.")
    }
}
