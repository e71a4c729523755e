//! The survey in the visitor's machine: the visitor's end asks first, the rating goes into
//! the chat's user data and then the chat ends; after an end the visitor did not make, the
//! rating goes to the relay (when it takes them); answered or dismissed once per chat.

use super::fixtures::tokens;
use crate::gms::{ChatOperation, ChatResponse};
use crate::relay_api::SurveyAnswer;
use crate::visitor::{ChatState, Effect, GmsResult, Input, Machine, Stored, SurveyStage};
use crate::widget_config::SurveyKind;

fn running(kind: SurveyKind, surveys_taken: bool) -> Machine {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.relay_token = Some("RT".into());
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    Machine::new(stored, "svc", "").with_survey(kind, surveys_taken)
}

fn gms_ops(out: &[Effect]) -> Vec<(u64, ChatOperation)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Gms { id, operation, .. } => Some((*id, operation.clone())),
            _ => None,
        })
        .collect()
}

fn ok() -> GmsResult {
    let body = r#"{"statusCode":0,"chatEnded":false,"nextPosition":1}"#;
    GmsResult::Answer(Box::new(ChatResponse::parse(body.as_bytes()).expect("parses")))
}

#[test]
fn the_visitors_end_asks_first_then_rates_into_user_data_then_ends() {
    let mut m = running(SurveyKind::Stars, false);
    assert!(gms_ops(&m.step(Input::End)).is_empty(), "no disconnect before the rating");
    assert_eq!(m.survey(), Some(SurveyStage::BeforeEnd));
    assert!(
        gms_ops(&m.step(Input::Rate { rating: 9, comment: String::new() })).is_empty(),
        "off the scale"
    );
    let out = m.step(Input::Rate { rating: 4, comment: "  quick and kind ".into() });
    let ops = gms_ops(&out);
    let [(id, ChatOperation::UpdateData { user_data })] = ops.as_slice() else {
        panic!("one updateData: {out:?}")
    };
    assert_eq!(
        user_data,
        &vec![
            ("SurveyScale".to_owned(), "stars".to_owned()),
            ("SurveyRating".to_owned(), "4".to_owned()),
            ("SurveyComment".to_owned(), "quick and kind".to_owned()),
        ]
    );
    assert!(out.contains(&Effect::Save), "answered, in every tab");
    assert_eq!(m.survey(), None);
    let out = m.step(Input::Gms(*id, ok()));
    assert!(matches!(gms_ops(&out).as_slice(), [(_, ChatOperation::Disconnect)]), "{out:?}");
    // A failed updateData ends the chat all the same.
    let mut m = running(SurveyKind::Thumbs, false);
    m.step(Input::End);
    let out = m.step(Input::Rate { rating: 1, comment: String::new() });
    let id = gms_ops(&out)[0].0;
    let failed = GmsResult::Failed(crate::visitor::NetFailure::Network);
    assert!(matches!(
        gms_ops(&m.step(Input::Gms(id, failed))).as_slice(),
        [(_, ChatOperation::Disconnect)]
    ));
}

#[test]
fn dismissing_ends_at_once_and_off_ends_as_before() {
    let mut m = running(SurveyKind::Stars, true);
    m.step(Input::End);
    let out = m.step(Input::SkipSurvey);
    assert!(matches!(gms_ops(&out).as_slice(), [(_, ChatOperation::Disconnect)]));
    assert_eq!(m.survey(), None, "dismissed: not asked again after the end either");
    let mut off = running(SurveyKind::Off, true);
    assert!(matches!(gms_ops(&off.step(Input::End)).as_slice(), [(_, ChatOperation::Disconnect)]));
}

#[test]
fn after_an_end_the_visitor_did_not_make_the_rating_goes_to_the_relay() {
    let mut m = running(SurveyKind::Stars, true);
    m.stored.chat.as_mut().expect("chat").ended = true;
    assert_eq!(m.survey(), Some(SurveyStage::AfterEnd));
    let out = m.step(Input::Rate { rating: 5, comment: String::new() });
    let expected = SurveyAnswer { scale: "stars".into(), rating: 5, comment: String::new() };
    assert!(
        out.contains(&Effect::SendSurvey {
            chat_id: "C".into(),
            token: "RT".into(),
            answer: expected
        }),
        "{out:?}"
    );
    assert_eq!(m.survey(), None);
    // A relay without a webhook: nothing is offered after the end.
    let mut untaken = running(SurveyKind::Stars, false);
    untaken.stored.chat.as_mut().expect("chat").ended = true;
    assert_eq!(untaken.survey(), None);
    // A new chat is never in its way.
    assert!(m.step(Input::NewChat).iter().all(|e| !matches!(e, Effect::SendSurvey { .. })));
    assert_eq!(m.survey(), None);
}
