//! The HTTP surface: push receiver, session registry (with the capture `relay check
//! --capture` reads), the hand-over of a chat to a verified identity or a resume link,
//! WebSocket, health, and the built widget when `--static-dir` is set.

mod capture;
mod health;
mod hours;
mod identity;
mod proxy;
mod push;
mod resume;
mod sessions;
mod survey;
mod web_push;
mod widget;
mod ws;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{delete, get, post};
use shared::relay_api::{
    CAPTURE, HOURS_PATH, IDENTITY_PATH, PUSH_PATH, PUSH_SUBSCRIPTION, RESUME_LINKS, RESUME_PATH,
    SERVICE_WORKER_PATH, SESSIONS_PATH, SURVEY, WS_PATH,
};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::AppState;

pub(crate) fn router(state: AppState) -> Router {
    let push = Router::new()
        .route(PUSH_PATH, post(push::receive))
        .layer(DefaultBodyLimit::max(state.config.push_body_limit));
    let api = Router::new()
        .route(SESSIONS_PATH, post(sessions::register))
        .route(&format!("{SESSIONS_PATH}/{{chat_id}}"), delete(sessions::forget))
        .route(
            &format!("{SESSIONS_PATH}/{{chat_id}}/{PUSH_SUBSCRIPTION}"),
            post(web_push::subscribe).delete(web_push::unsubscribe),
        )
        .route(&format!("{SESSIONS_PATH}/{{chat_id}}/{CAPTURE}"), get(capture::captured))
        .route(&format!("{SESSIONS_PATH}/{{chat_id}}/{SURVEY}"), post(survey::rate))
        .route(
            &format!("{SESSIONS_PATH}/{{chat_id}}/{RESUME_LINKS}"),
            post(resume::make).delete(resume::revoke),
        )
        .route(&format!("{HOURS_PATH}/{{service}}"), get(hours::office_hours))
        .route(IDENTITY_PATH, post(identity::take_over))
        .route(RESUME_PATH, post(resume::claim))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(cors(&state.config.allowed_origins));
    let mut router = Router::new();
    if state.config.proxy.enabled {
        router = router.merge(proxy_routes(&state));
    }
    let mut router = router
        .merge(health::probes())
        .merge(push)
        .merge(api)
        .route(WS_PATH, get(ws::upgrade))
        .route(SERVICE_WORKER_PATH, get(web_push::service_worker));
    if state.config.admin_listen.is_none() {
        router = router.merge(health::admin());
    }
    if let Some(dir) = &state.config.static_dir {
        let gms_url = state.config.widget_gms_url.clone().unwrap_or_default();
        let (demo, proxy) = (state.config.demo_page, state.config.proxy.enabled);
        let modes = (proxy, state.survey.is_some());
        router = router.merge(widget::router(dir.clone(), gms_url, demo, modes));
    }
    router.with_state(state)
}

/// Proxy mode's Chat API: CORS as the rest of the v1 API; bodies bounded by each handler
/// (forms) or streamed against GMS's own limits (uploads).
fn proxy_routes(state: &AppState) -> Router<AppState> {
    use shared::proxy::CHATS_PATH;
    Router::new()
        .route(&format!("{CHATS_PATH}/{{service}}"), post(proxy::start))
        .route(
            &format!("{CHATS_PATH}/{{service}}/{{chat_id}}/{{*operation}}"),
            post(proxy::operation),
        )
        .layer(DefaultBodyLimit::max(32 * 1024))
        .layer(cors(&state.config.allowed_origins))
}

/// What `--admin-listen` serves: the monitoring endpoints and the probes.
pub(crate) fn admin_router(state: AppState) -> Router {
    health::probes().merge(health::admin()).with_state(state)
}

/// Whether a page origin may use the relay; an empty list allows any.
pub(crate) fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a == "*" || a.trim_end_matches('/') == origin)
}

fn cors(allowed: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::POST, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .max_age(Duration::from_secs(600));
    if allowed.is_empty() || allowed.iter().any(|a| a == "*") {
        return layer.allow_origin(Any);
    }
    let list: Vec<HeaderValue> = allowed
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(list))
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins_are_matched_exactly_unless_none_are_configured() {
        assert!(origin_allowed(&[], "https://any.example"));
        let list = vec!["https://shop.example/".to_owned()];
        assert!(origin_allowed(&list, "https://shop.example"));
        assert!(!origin_allowed(&list, "https://shop.example.evil"));
        assert!(!origin_allowed(&list, ""));
    }
}
