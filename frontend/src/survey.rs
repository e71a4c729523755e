//! The survey's form in the panel, loaded with the later part (`later::survey`) when a
//! survey is first asked for: its markup (`chat::survey_html`) and its answer, a rating or
//! a dismissal, handed to the machine. The main module keeps only the form's host.

use shared::visitor::Input;
use shared::widget_config::SurveyKind;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

use crate::controller::Controller;

/// Fills `host` with the form for the chat being rated (`before_end`: the visitor's own end
/// waits for it); the host's submit, bound once, rates or dismisses.
pub(crate) fn show(ctrl: Controller, host: &web_sys::Element, before_end: bool) {
    let config = ctrl.config();
    let chat_id = ctrl.with_untracked(|m| {
        m.stored.chat.as_ref().map(|c| c.credentials.chat_id.clone()).unwrap_or_default()
    });
    let link = config.survey_url.replace("{chatId}", &shared::form::encode_component(&chat_id));
    let thumbs = config.survey == SurveyKind::Thumbs;
    host.set_inner_html(&crate::chat::survey_html(ctrl.texts, thumbs, before_end, &link));
    if host.has_attribute("data-bound") {
        return;
    }
    let _ = host.set_attribute("data-bound", "");
    // The form's submit bubbles to the host: the dismiss button is the submitter named
    // `skip`. The host lives as long as the panel, so its one listener is never dropped.
    let submit = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        event.prevent_default();
        let event: web_sys::SubmitEvent = event.unchecked_into();
        if event.submitter().is_some_and(|b| b.get_attribute("name").as_deref() == Some("skip")) {
            ctrl.input(Input::SkipSurvey);
            return;
        }
        let form = event.target().map(|t| t.unchecked_into::<web_sys::HtmlFormElement>());
        let Some(data) = form.and_then(|f| web_sys::FormData::new_with_form(&f).ok()) else {
            return;
        };
        let field = |name| data.get(name).as_string().unwrap_or_default();
        let Ok(rating) = field("rating").parse::<u8>() else { return };
        ctrl.input(Input::Rate { rating, comment: field("comment") });
    });
    let _ = host.add_event_listener_with_callback("submit", submit.as_ref().unchecked_ref());
    submit.forget();
}
