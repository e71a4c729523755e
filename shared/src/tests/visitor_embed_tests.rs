//! What the machine does for the embedding page: nothing stored before the visitor starts a
//! chat, `forget()` for shared computers, and the site's own user data.

use super::fixtures::tokens;
use crate::gms::{ChatOperation, ChatResponse, Visitor};
use crate::visitor::{ChatState, Effect, GmsResult, Input, Machine, Stored};

fn created() -> GmsResult {
    let json = r#"{"statusCode":0,"chatId":"N","userId":"U","secureKey":"K","alias":"117","nextPosition":2}"#;
    GmsResult::Answer(Box::new(ChatResponse::parse(json.as_bytes()).expect("parses")))
}

fn saves(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| **e == Effect::Save).count()
}

fn create_user_data(effects: &[Effect]) -> Option<(u64, Vec<(String, String)>)> {
    effects.iter().find_map(|e| match e {
        Effect::Gms { id, operation: ChatOperation::Create { user_data, .. }, .. } => {
            Some((*id, user_data.clone()))
        }
        _ => None,
    })
}

fn with_chat() -> Machine {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.relay_token = Some("T".into());
    Machine::new(Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() }, "svc", "")
}

#[test]
fn nothing_is_stored_until_the_visitor_starts_a_chat() {
    let mut m = Machine::fresh("d-1", "svc", "");
    let browsing =
        [Input::Load, Input::SetOpen(true), Input::SetAlerts(true), Input::SetOpen(false)];
    for input in browsing {
        let what = format!("{input:?}");
        assert_eq!(saves(&m.step(input)), 0, "{what} wrote to the visitor's browser");
    }
    let (id, user_data) =
        create_user_data(&m.step(Input::Start(Visitor::default()))).expect("create");
    assert!(user_data.contains(&("GCTI_GMS_PushDeviceId".into(), "d-1".into())));
    assert_eq!(saves(&m.step(Input::Gms(id, created()))), 1, "the chat is kept from its start");
    assert_eq!(saves(&m.step(Input::SetOpen(true))), 1, "and every change after it");
}

#[test]
fn a_browser_that_stored_something_keeps_it_current_even_without_a_chat() {
    // After "new chat" the record has no chat, yet its panel state must follow the visitor.
    let mut m =
        Machine::new(Stored { device_id: "d".into(), open: true, ..Stored::default() }, "svc", "");
    assert_eq!(saves(&m.step(Input::SetOpen(false))), 1);
}

#[test]
fn forget_ends_the_chat_tells_the_relay_and_wipes_the_storage() {
    let mut m = with_chat();
    m.step(Input::SetOpen(true));
    let out = m.step(Input::Forget { device_id: "d-2".into() });
    assert!(
        out.iter().any(|e| matches!(e, Effect::Gms { operation: ChatOperation::Disconnect, .. })),
        "{out:?}"
    );
    assert!(out.contains(&Effect::Forget { chat_id: "C".into(), token: "T".into() }));
    assert!(out.contains(&Effect::Wipe));
    assert_eq!(saves(&out), 0, "nothing is written back");
    assert_eq!(m.stored, Stored { device_id: "d-2".into(), ..Stored::default() });
    assert!(m.outbox.is_empty() && m.notice.is_none());
    assert_eq!(saves(&m.step(Input::SetOpen(true))), 0, "a forgotten browser is a fresh one");
    let (_, user_data) =
        create_user_data(&m.step(Input::Start(Visitor::default()))).expect("create");
    assert!(user_data.contains(&("GCTI_GMS_PushDeviceId".into(), "d-2".into())), "a new device id");
}

#[test]
fn another_tab_forgetting_resets_this_one_without_a_second_disconnect() {
    let mut m = with_chat();
    let out = m.step(Input::Wiped { device_id: "d-3".into() });
    assert!(
        !out.iter().any(|e| matches!(e, Effect::Gms { .. } | Effect::Forget { .. } | Effect::Save))
    );
    assert!(m.stored.chat.is_none());
    assert!(m.step(Input::Wiped { device_id: "d-4".into() }).is_empty(), "twice is once");
}

#[test]
fn forget_without_a_chat_only_wipes() {
    let mut m = Machine::fresh("d-1", "svc", "");
    assert_eq!(m.step(Input::Forget { device_id: "d-2".into() }), vec![Effect::Wipe]);
}

#[test]
fn the_sites_user_data_goes_with_the_next_chat_and_updates_a_running_one() {
    let mut m = Machine::fresh("d-1", "svc", "");
    let data = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    assert!(m.step(Input::UserData(data(&[("plan", "gold"), ("order", "1")]))).is_empty());
    m.step(Input::UserData(data(&[("order", "42"), ("GCTI_GMS_PushDeviceId", "spoofed")])));
    let (id, user_data) =
        create_user_data(&m.step(Input::Start(Visitor::default()))).expect("create");
    assert!(user_data.contains(&("plan".into(), "gold".into())));
    assert!(user_data.contains(&("order".into(), "42".into())), "merged, the later value wins");
    assert!(!user_data.contains(&("order".into(), "1".into())));
    let device: Vec<_> = user_data.iter().filter(|(k, _)| k == "GCTI_GMS_PushDeviceId").collect();
    assert_eq!(device, [&("GCTI_GMS_PushDeviceId".to_owned(), "d-1".to_owned())], "push keys win");
    m.step(Input::Gms(id, created()));
    let out = m.step(Input::UserData(data(&[("page", "/checkout")])));
    let update = out.iter().find_map(|e| match e {
        Effect::Gms { operation: ChatOperation::UpdateData { user_data }, .. } => Some(user_data),
        _ => None,
    });
    assert_eq!(update, Some(&data(&[("page", "/checkout")])), "{out:?}");
}
