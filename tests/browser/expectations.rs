//! Setting expectations before a chat: the pre-chat form says whether the office is open
//! (the relay's `--office-hours`, from its own file or GMS's Calendar Service) and when it
//! opens, in the visitor's time; a closed office takes chats, or with `closedMode =
//! refuse` does not.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;
use shared::widget_config::ClosedMode;
use system_tests::gms_client::SimAdmin;
use system_tests::harness::{Options, System, scratch_dir};
use system_tests::support::SERVICE;
use system_tests::webdriver::{Browser, Engine};
use system_tests::widget_page::WidgetPage;

/// An `--office-hours` file holding `section` for the widget's service.
pub(crate) fn hours_file(section: &str) -> Result<PathBuf> {
    let file = scratch_dir("office-hours")?.join("hours.ini");
    std::fs::write(&file, format!("[{SERVICE}]\n{section}"))?;
    Ok(file)
}

/// Closed until Monday 2099-01-05 at 9:00 UTC.
pub(crate) const CLOSED_UNTIL_2099: &str = "_bh_regular1 = Mon-Fri 9:00-17:00\n_effective_dates1 = 2099-01-05 to 2099-01-09\n_timezone = UTC\n";

/// Closes the browser, stops the system and removes the hours file.
async fn done(browser: Browser, system: System, file: &Path) -> Result<()> {
    browser.close().await?;
    system.stop().await?;
    let _ = std::fs::remove_dir_all(file.parent().unwrap_or(file));
    Ok(())
}

/// What GMS's Calendar Service answers for `name` from now on (gms-sim's admin API).
async fn set_calendar(admin: &SimAdmin, name: &str, body: serde_json::Value) -> Result<()> {
    let (status, text) = admin.post(&format!("/sim/office-hours/{name}"), body).await?;
    anyhow::ensure!(status == 204, "HTTP {status}: {text}");
    Ok(())
}

/// The options of a system whose relay reads `file` for office hours.
fn with_hours(file: &std::path::Path) -> Options {
    let path = file.to_string_lossy().into_owned();
    Options::default().relay(&["--office-hours", &path])
}

engines!(a_closed_office_says_when_it_answers_and_still_takes_the_chat: Chromium, Firefox, WebKit);
async fn a_closed_office_says_when_it_answers_and_still_takes_the_chat(
    engine: Engine,
) -> Result<()> {
    let file = hours_file(CLOSED_UNTIL_2099)?;
    let system = super::system_with(with_hours(&file)).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.element("[data-testid=launcher]").await?;
    // Nothing is asked on a page view that does not open the chat.
    let asked = browser
        .script(
            "return performance.getEntriesByType('resource').some(e => e.name.includes('/v1/hours'));",
            json!([]),
        )
        .await?;
    assert_eq!(asked, json!(false));
    widget.click("[data-testid=launcher]").await?;
    widget.wait_for_text("[data-testid=hours]", "We're closed; we answer from ", 10).await?;
    let said = widget.texts("[data-testid=hours]").await?.join(" ");
    // The visitor's own time (the browsers here run in UTC): Monday 5 January, 09:00.
    assert!(said.contains("5") && said.contains("09") && said.contains("(your time)"), "{said}");
    assert!(said.contains("You can still write now."), "{said}");
    super::a11y::no_violations(&browser, "closed office").await?;
    widget.fill_prechat("Jane").await?;
    widget.wait_for_text("[data-testid=status]", "Connected", 20).await?;
    assert!(!widget.stored_chat_id().await?.is_empty());
    done(browser, system, &file).await
}

engines!(a_closed_office_can_refuse_chats_until_it_opens: Chromium, Firefox, WebKit);
async fn a_closed_office_can_refuse_chats_until_it_opens(engine: Engine) -> Result<()> {
    let file = hours_file(CLOSED_UNTIL_2099)?;
    let mut options = with_hours(&file);
    options.widget_config.closed_mode = ClosedMode::Refuse;
    let system = super::system_with(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.wait_for_text("[data-testid=hours]", "We're closed; we open ", 10).await?;
    let disabled = widget.attribute("[data-testid=prechat-submit]", "disabled").await?;
    assert!(!disabled.is_null(), "the start stays disabled while closed: {disabled}");
    let field = widget.element("[data-testid=prechat-name]").await?;
    browser.type_into(&field, "Jane").await?;
    // A script (or an old browser) can submit past a disabled button: the machine refuses too.
    browser
        .script(
            "document.getElementById('gms-chat-widget').shadowRoot
               .querySelector('[data-testid=prechat]').requestSubmit();",
            json!([]),
        )
        .await?;
    super::a11y::no_violations(&browser, "closed office, chats refused").await?;
    let stats = admin.stats().await?;
    assert_eq!(stats["requests"]["create"].as_u64().unwrap_or(0), 0, "{stats}");
    let stored = browser.script("return localStorage.getItem('gms-chat:v1');", json!([])).await?;
    assert_eq!(stored, json!(null), "nothing stored for a visitor who could not start");
    done(browser, system, &file).await
}

engines!(an_open_office_in_gms_says_so: Chromium; not Firefox, WebKit: "the view is the closed test's; one engine proves the GMS source");
async fn an_open_office_in_gms_says_so(engine: Engine) -> Result<()> {
    let file = hours_file("gms = business-hours\n")?;
    let system = super::system_with(with_hours(&file)).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let open = json!({"periods": [{"startInMinutes": -60, "endInMinutes": 480}]});
    set_calendar(&admin, "business-hours", open).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.wait_for_text("[data-testid=hours]", "We're open now.", 10).await?;
    let disabled = widget.attribute("[data-testid=prechat-submit]", "disabled").await?;
    assert!(disabled.is_null(), "{disabled}");
    done(browser, system, &file).await
}

engines!(the_expected_wait_shows_and_updates_until_an_agent_joins: Chromium, Firefox, WebKit);
async fn the_expected_wait_shows_and_updates_until_an_agent_joins(engine: Engine) -> Result<()> {
    let queue = format!("{SERVICE}=chat_vq");
    let relay = ["--ewt-queue", &queue, "--ewt-every", "0.2"];
    let system = super::system_with(Options::default().relay(&relay)).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let set = async |seconds: u64| -> Result<()> {
        let (status, text) = admin.post("/sim/ewt", json!({ "seconds": seconds })).await?;
        anyhow::ensure!(status == 204, "HTTP {status}: {text}");
        Ok(())
    };
    set(230).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget
        .wait_for_text("[data-testid=waiting]", "An agent will answer in about 4 min.", 10)
        .await?;
    super::a11y::no_violations(&browser, "waiting with the expected wait").await?;
    set(61).await?;
    widget
        .wait_for_text("[data-testid=waiting]", "An agent will answer in about 2 min.", 10)
        .await?;
    admin.ok(&format!("/sim/chats/{chat_id}/agent/join"), json!({})).await?;
    admin.agent_says(&chat_id, "Hello, I am here").await?;
    widget.wait_for_text("[data-testid=line]", "Hello, I am here", 10).await?;
    assert!(widget.texts("[data-testid=waiting]").await?.is_empty(), "gone once answered");
    browser.close().await?;
    system.stop().await
}

/// The survey while it shows (it is always there, hidden while not asked).
const SURVEY: &str = "div:not([hidden]) > [data-testid=survey]";

/// Picks the choice of value `n` on the survey's scale.
async fn pick(widget: &WidgetPage<'_>, n: usize) -> Result<()> {
    widget.click(&format!("[data-testid=survey-choice][value='{n}']")).await
}

engines!(the_visitor_rates_then_the_chat_ends: Chromium, Firefox, WebKit);
async fn the_visitor_rates_then_the_chat_ends(engine: Engine) -> Result<()> {
    let mut options = Options::default();
    options.widget_config.survey_url = "https://surveys.example.com/?chat={chatId}".to_owned();
    let system = super::system_with(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    widget.click("[data-testid=end-chat]").await?;
    widget.wait_for_text(SURVEY, "How was your chat?", 10).await?;
    // Not ended yet: the visitor rates first.
    assert_eq!(admin.get(&format!("/sim/chats/{chat_id}")).await?["ended"], false);
    let href = widget.attribute("[data-testid=survey-link]", "href").await?;
    assert_eq!(href, json!(format!("https://surveys.example.com/?chat={chat_id}")));
    super::a11y::no_violations(&browser, "survey before the end").await?;
    pick(&widget, 4).await?;
    let comment = widget.element("[data-testid=survey-comment]").await?;
    browser.type_into(&comment, "Quick <b>and</b> kind").await?;
    widget.click("[data-testid=survey-send]").await?;
    widget.element("[data-testid=ended]").await?;
    let chat = admin.get(&format!("/sim/chats/{chat_id}")).await?;
    assert_eq!(chat["ended"], true);
    assert_eq!(chat["userData"]["SurveyRating"], "4", "{chat}");
    assert_eq!(chat["userData"]["SurveyScale"], "stars");
    assert_eq!(chat["userData"]["SurveyComment"], "Quick <b>and</b> kind");
    // Answered: not asked again, here or after a reload.
    assert!(widget.texts(SURVEY).await?.is_empty());
    browser.goto(&system.page_url()).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.element("[data-testid=new-chat]").await?;
    assert!(widget.texts(SURVEY).await?.is_empty());
    browser.close().await?;
    system.stop().await
}

engines!(a_chat_the_agent_ended_is_rated_through_the_relays_webhook: Chromium;
    not Firefox, WebKit: "the view is the visitor's end test's; one engine proves the webhook path");
async fn a_chat_the_agent_ended_is_rated_through_the_relays_webhook(engine: Engine) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/ratings", listener.local_addr()?);
    let (tx, mut received) = tokio::sync::mpsc::channel::<serde_json::Value>(4);
    let app = axum::Router::new().route(
        "/ratings",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or_default()).await;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let relay = ["--survey-webhook", &hook, "--survey-webhook-secret", "0123456789abcdef"];
    let mut options = Options::default().relay(&relay);
    options.widget_config.survey = shared::widget_config::SurveyKind::Thumbs;
    let system = super::system_with(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    let chat_id = widget.start_chat(&system.page_url(), "Jane").await?;
    admin.agent_says(&chat_id, "All done, goodbye").await?;
    widget.wait_for_text("[data-testid=line]", "goodbye", 10).await?;
    admin.ok(&format!("/sim/chats/{chat_id}/end"), json!({})).await?;
    widget.wait_for_text(SURVEY, "How was your chat?", 10).await?;
    // Never in the way of a new chat.
    widget.element("[data-testid=new-chat]").await?;
    super::a11y::no_violations(&browser, "survey after the agent's end").await?;
    pick(&widget, 1).await?;
    widget.click("[data-testid=survey-send]").await?;
    let rating = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("closed"))?;
    assert_eq!(rating["chatId"], chat_id.as_str());
    assert_eq!((rating["scale"].as_str(), rating["rating"].as_u64()), (Some("thumbs"), Some(1)));
    assert!(widget.texts(SURVEY).await?.is_empty());
    browser.close().await?;
    system.stop().await
}

engines!(a_form_that_refuses_chats_takes_them_when_the_office_opens: Chromium;
    not Firefox, WebKit: "the machine decides it; one engine proves the timer and the relay's cache");
async fn a_form_that_refuses_chats_takes_them_when_the_office_opens(engine: Engine) -> Result<()> {
    let file = hours_file("gms = business-hours\n")?;
    let mut options = with_hours(&file);
    options.widget_config.closed_mode = ClosedMode::Refuse;
    let system = super::system_with(options).await?;
    let admin = SimAdmin::new(&system.gms.url());
    let opening = json!({"periods": [{"startInSeconds": 4, "endInSeconds": 3600}]});
    set_calendar(&admin, "business-hours", opening).await?;
    let browser = Browser::start_in(engine).await?;
    let widget = WidgetPage::of(&browser);
    browser.goto(&system.page_url()).await?;
    widget.click("[data-testid=launcher]").await?;
    widget.wait_for_text("[data-testid=hours]", "We're closed; we open ", 10).await?;
    let disabled = widget.attribute("[data-testid=prechat-submit]", "disabled").await?;
    assert!(!disabled.is_null(), "{disabled}");
    // The form stays open; at the opening it asks again and takes the chat.
    widget.wait_for_text("[data-testid=hours]", "We're open now.", 15).await?;
    let disabled = widget.attribute("[data-testid=prechat-submit]", "disabled").await?;
    assert!(disabled.is_null(), "{disabled}");
    widget.fill_prechat("Jane").await?;
    done(browser, system, &file).await
}
