use shared::gms::{ChatEvent, Credentials, EventType, Party};
use shared::visitor::{ChatState, Input, Machine, Stored};

use super::{Announcement, Look, announcements, input_of};

fn line(index: u64, nickname: &str, agent: bool, text: &str) -> ChatEvent {
    let party = Party {
        nickname: nickname.into(),
        participant_id: if agent { 2 } else { 1 },
        party_type: if agent { "Agent" } else { "Client" }.into(),
    };
    let mut event = ChatEvent::new(index, EventType::Message, party, 1_700_000_000_000);
    event.text = Some(text.into());
    event
}

fn machine(chat_id: Option<&str>, events: Vec<ChatEvent>) -> Machine {
    let chat = chat_id.map(|id| {
        let credentials = Credentials {
            chat_id: id.into(),
            user_id: "U".into(),
            secure_key: "K".into(),
            alias: "117".into(),
        };
        let mut chat = ChatState::new("svc", credentials);
        chat.apply_events(events);
        chat
    });
    Machine::new(Stored { device_id: "d".into(), chat, ..Stored::default() }, "svc", "")
}

fn between(before: &Machine, after: &Machine) -> Vec<Announcement> {
    announcements(&Look::of(before), &Look::of(after), after)
}

#[test]
fn a_new_agent_line_is_announced_once_with_the_unread_count() {
    let before = machine(Some("C"), vec![line(1, "Ann", true, "hello")]);
    let after = machine(
        Some("C"),
        vec![
            line(1, "Ann", true, "hello"),
            line(2, "Jane", false, "hi"),
            line(3, "Ann", true, "how can I help"),
        ],
    );
    let events = between(&before, &after);
    assert_eq!(
        events,
        [
            Announcement::Message {
                text: "how can I help".into(),
                time: Some(1_700_000_000_000),
                from: "Ann".into()
            },
            Announcement::Unread(2),
        ],
        "the visitor's own line is not a message for the site; the cached one is not new"
    );
    assert_eq!(between(&after, &after), [], "nothing changed, nothing announced");
}

#[test]
fn a_chat_is_announced_when_it_starts_and_when_it_ends() {
    let none = machine(None, vec![]);
    let started = machine(Some("C"), vec![line(1, "Ann", true, "I'm Ann")]);
    let events = between(&none, &started);
    assert_eq!(events.first(), Some(&Announcement::Started));
    assert!(matches!(events.get(1), Some(Announcement::Message { text, .. }) if text == "I'm Ann"));
    let mut ended = started.clone();
    if let Some(chat) = ended.stored.chat.as_mut() {
        chat.ended = true;
    }
    assert_eq!(between(&started, &ended), [Announcement::Ended]);
    assert_eq!(
        between(&started, &none),
        [Announcement::Unread(0), Announcement::Ended],
        "forgotten"
    );
    assert_eq!(between(&ended, &none), [Announcement::Unread(0)], "an ended chat ends once");
    let mut next = machine(Some("D"), vec![]);
    assert_eq!(between(&ended, &next), [Announcement::Started, Announcement::Unread(0)]);
    next.step(Input::SetOpen(true));
    assert_eq!(between(&machine(Some("D"), vec![]), &next), [Announcement::Open]);
}

#[test]
fn a_page_loaded_with_a_running_chat_starts_nothing() {
    let running = machine(Some("C"), vec![line(1, "Ann", true, "hello")]);
    assert_eq!(between(&running, &running.clone()), []);
}

#[test]
fn commands_from_the_host_page_become_inputs() {
    let id = || "d-new".to_owned();
    assert_eq!(input_of("open", "", false, id), Some(Input::SetOpen(true)));
    assert_eq!(input_of("toggle", "", true, id), Some(Input::SetOpen(false)));
    assert_eq!(input_of("close", "", true, id), Some(Input::SetOpen(false)));
    assert_eq!(
        input_of("forget", "", false, id),
        Some(Input::Forget { device_id: "d-new".into() })
    );
    assert_eq!(
        input_of("userData", r#"[["plan","gold"]]"#, false, id),
        Some(Input::UserData(vec![("plan".into(), "gold".into())]))
    );
    assert_eq!(input_of("userData", "{oops", false, id), None);
    assert_eq!(input_of("explode", "", false, id), None);
}

#[test]
fn the_loaders_launcher_speaks_every_language_as_the_widget_does() {
    // The loader draws the launcher before the widget exists; the handover must not
    // change a word (or a direction).
    let loader = include_str!("../../loader.js");
    let rtl_line = loader.lines().find(|l| l.contains("var RTL =")).expect("the RTL table");
    for texts in crate::texts::every_language() {
        let entry = format!("{}: '{}'", texts.lang, texts.open_chat);
        assert!(loader.contains(&entry), "loader.js lacks {entry}");
        let rtl = rtl_line.contains(&format!(" {}: 1", texts.lang));
        assert_eq!(rtl, texts.dir == "rtl", "{}'s direction in loader.js", texts.lang);
    }
}

#[test]
fn the_loader_asks_the_relay_and_reads_resume_links_where_shared_says() {
    // The loader is JavaScript: the paths it shares with the relay are checked here.
    let loader = include_str!("../../loader.js");
    assert!(loader.contains(&format!("'{}'", shared::relay_api::IDENTITY_PATH)));
    let fragment = format!("#{}", shared::relay_api::RESUME_FRAGMENT);
    assert!(loader.contains(&format!("'{fragment}'")), "loader.js reads {fragment}");
    assert!(loader.contains(&format!("hash.slice({})", fragment.len())), "and what follows it");
}
