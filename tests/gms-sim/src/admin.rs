//! The `/sim` admin API: agent actions, Chat Server lifecycle, faults, statistics.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Sim;
use crate::agent::{AgentAction, AgentError};
use crate::chat::Chat;
use crate::world::{Faults, World};

pub(crate) fn router() -> Router<Sim> {
    Router::new()
        .route("/sim/agent", get(crate::console::page))
        .route("/sim/chats", get(list_chats))
        .route("/sim/chats/{chat_id}", get(chat_detail))
        .route("/sim/chats/{chat_id}/agent/{action}", post(agent_action))
        .route("/sim/chats/{chat_id}/end", post(end_chat))
        .route("/sim/chat-servers", get(list_servers))
        .route("/sim/chat-servers/{alias}/{action}", post(server_action))
        .route("/sim/chat-servers/{alias}/health", post(set_health_body))
        .route("/sim/faults", get(get_faults).post(set_faults))
        .route("/sim/office-hours/{name}", post(set_calendar).delete(unset_calendar))
        .route("/sim/ewt", post(set_ewt))
        .route("/sim/stats", get(stats))
}

fn summary(world: &World, chat: &Chat) -> Value {
    let hosted = world.is_hosted(chat);
    json!({
        "chatId": chat.id,
        "service": chat.service,
        "nickname": chat.client.nickname,
        "alias": chat.alias,
        "hosted": hosted,
        "ended": chat.ended,
        "agent": chat.agent.as_ref().map(|a| a.nickname.clone()),
        "pushSubscribed": chat.push.is_some(),
        "nextPosition": chat.next_position(),
        "pendingPushes": chat.pending_pushes.len(),
    })
}

async fn list_chats(State(sim): State<Sim>) -> Response {
    let chats = sim.with_world(|world, _| {
        let mut chats: Vec<&Chat> = world.chats.values().collect();
        chats.sort_by_key(|c| std::cmp::Reverse(c.last_client_request));
        chats.into_iter().map(|c| summary(world, c)).collect::<Vec<_>>()
    });
    axum::Json(chats).into_response()
}

async fn chat_detail(State(sim): State<Sim>, Path(chat_id): Path<String>) -> Response {
    let detail = sim.with_world(|world, _| {
        let chat = world.chats.get(&chat_id)?;
        let mut value = summary(world, chat);
        value["transcript"] = json!(chat.transcript);
        value["userData"] = json!(chat.user_data);
        value["readPosition"] = json!(chat.read_position);
        value["replies"] = json!(chat.replies);
        Some(value)
    });
    match detail {
        Some(value) => axum::Json(value).into_response(),
        None => (StatusCode::NOT_FOUND, "no such chat").into_response(),
    }
}

/// A refused admin request: status and reason.
type Refusal = (StatusCode, String);

fn json_body(body: &Bytes) -> Result<Value, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")))
}

fn text_field(body: &Value, key: &str) -> Result<String, Refusal> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("`{key}` (a string) is required")))
}

async fn agent_action(
    State(sim): State<Sim>,
    Path((chat_id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let parsed = json_body(&body).and_then(|body| {
        Ok(match action.as_str() {
            "join" => AgentAction::Join {
                nickname: body
                    .get("nickname")
                    .and_then(Value::as_str)
                    .unwrap_or("Agent")
                    .to_owned(),
            },
            "message" => message(&body)?,
            "typing" => AgentAction::Typing {
                typing: body.get("typing").and_then(Value::as_bool).unwrap_or(true),
            },
            "push-url" => AgentAction::PushUrl { url: text_field(&body, "url")? },
            "leave" => AgentAction::Leave,
            _ => return Err((StatusCode::NOT_FOUND, "unknown agent action".to_owned())),
        })
    });
    match parsed {
        Ok(action) => act(&sim, &chat_id, action),
        Err(refusal) => refusal.into_response(),
    }
}

/// An agent's message: `text`, or a `template`'s (`crate::rich`) with its structured
/// content, or `text` with any `structured` content (an object, or JSON text).
fn message(body: &Value) -> Result<AgentAction, Refusal> {
    let named = match body.get("template").and_then(Value::as_str) {
        Some(name) => Some(crate::rich::template(name).ok_or_else(|| {
            let names = crate::rich::TEMPLATES.join(", ");
            (StatusCode::BAD_REQUEST, format!("unknown template {name:?}; known: {names}"))
        })?),
        None => None,
    };
    let text = match (&named, body.get("text").and_then(Value::as_str)) {
        (_, Some(text)) => text.to_owned(),
        (Some((fallback, _)), None) => (*fallback).to_owned(),
        (None, None) => {
            return Err((StatusCode::BAD_REQUEST, "`text` (a string) is required".into()));
        }
    };
    let structured = match (named, body.get("structured")) {
        (_, Some(Value::String(content))) => Some(content.clone()),
        (_, Some(Value::Null)) | (None, None) => None,
        (_, Some(content)) => Some(content.to_string()),
        (Some((_, content)), None) => Some(content.to_string()),
    };
    Ok(AgentAction::Message { text, structured })
}

async fn end_chat(State(sim): State<Sim>, Path(chat_id): Path<String>) -> Response {
    act(&sim, &chat_id, AgentAction::End)
}

fn act(sim: &Sim, chat_id: &str, action: AgentAction) -> Response {
    match sim.with_world(|world, effects| world.agent(chat_id, action, effects)) {
        Ok(index) => axum::Json(json!({"index": index})).into_response(),
        Err(AgentError::NoSuchChat) => (StatusCode::NOT_FOUND, "no such chat").into_response(),
        Err(AgentError::Ended) => (StatusCode::CONFLICT, "the chat has ended").into_response(),
        Err(AgentError::NotHosted) => (
            StatusCode::CONFLICT,
            "the chat's Chat Server is down or restarted; the session is restored by the next client request",
        )
            .into_response(),
    }
}

fn server_list(world: &World) -> Value {
    json!(
        world
            .servers
            .iter()
            .map(|s| json!({"alias": s.alias, "pid": s.pid, "up": s.up}))
            .collect::<Vec<_>>()
    )
}

async fn list_servers(State(sim): State<Sim>) -> Response {
    axum::Json(sim.with_world(|world, _| server_list(world))).into_response()
}

async fn server_action(
    State(sim): State<Sim>,
    Path((alias, action)): Path<(String, String)>,
) -> Response {
    let done = sim.with_world(|world, effects| {
        let found = match action.as_str() {
            "restart" => world.restart_server(&alias).is_some(),
            "kill" => world.kill_server(&alias),
            "start" => world.start_server(&alias).is_some(),
            "stop" => match world.stop_server(&alias) {
                Some(stop) => {
                    effects.pushes.extend(stop.pushes);
                    true
                }
                None => world.servers.iter().any(|s| s.alias == alias),
            },
            _ => return None,
        };
        tracing::info!(%alias, %action, "chat server lifecycle");
        Some(found.then(|| server_list(world)))
    });
    match done {
        None => (StatusCode::NOT_FOUND, "unknown action: use restart, stop, kill or start")
            .into_response(),
        Some(None) => (StatusCode::NOT_FOUND, "no such chat server").into_response(),
        Some(Some(servers)) => axum::Json(servers).into_response(),
    }
}

/// Sets the layout of a Chat Server's health body: `{"body": "flat" | "nested" |
/// "renamed" | "unreadable" | "text"}`.
async fn set_health_body(
    State(sim): State<Sim>,
    Path(alias): Path<String>,
    body: Bytes,
) -> Response {
    let layout = match json_body(&body).and_then(|body| {
        serde_json::from_value::<crate::health::Layout>(body["body"].clone())
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("body: {e}")))
    }) {
        Ok(layout) => layout,
        Err(refusal) => return refusal.into_response(),
    };
    let found = sim.with_world(|world, _| {
        let server = world.servers.iter_mut().find(|s| s.alias == alias)?;
        server.health_body = layout;
        Some(server_list(world))
    });
    match found {
        Some(servers) => axum::Json(servers).into_response(),
        None => (StatusCode::NOT_FOUND, "no such chat server").into_response(),
    }
}

async fn get_faults(State(sim): State<Sim>) -> Response {
    axum::Json(sim.with_world(|world, _| world.faults)).into_response()
}

/// Sets the faults the body names and leaves the others as they are, so faults of
/// different kinds can be armed independently.
async fn set_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    let changes = match json_body(&body) {
        Ok(Value::Object(changes)) => changes,
        Ok(_) => return (StatusCode::BAD_REQUEST, "faults: not an object").into_response(),
        Err(refusal) => return refusal.into_response(),
    };
    let merged = sim.with_world(|world, _| {
        let mut current = json!(world.faults);
        if let Value::Object(fields) = &mut current {
            fields.extend(changes);
        }
        let faults = serde_json::from_value::<Faults>(current)?;
        world.faults = faults;
        Ok::<_, serde_json::Error>(faults)
    });
    match merged {
        Ok(faults) => axum::Json(faults).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("faults: {e}")).into_response(),
    }
}

async fn stats(State(sim): State<Sim>) -> Response {
    axum::Json(sim.with_world(|world, _| world.stats.clone())).into_response()
}

/// What the Calendar Service answers for an office-hours service from now on:
/// `{"periods": [{"startInMinutes": -60, "endInMinutes": 480}]}` (relative to now, in
/// minutes or, as `startInSeconds`/`endInSeconds`, seconds; none: closed) or
/// `{"error": "..."}`.
async fn set_calendar(State(sim): State<Sim>, Path(name): Path<String>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let now = crate::chat::now_millis();
    let calendar = match (body.get("error").and_then(Value::as_str), body.get("periods")) {
        (Some(error), _) => Err(error.to_owned()),
        (None, Some(Value::Array(periods))) => {
            // Milliseconds from now, given in minutes or seconds.
            let offset = |p: &Value, unit: &str| {
                let at = |key: &str, ms: i64| {
                    p.get(format!("{key}In{unit}")).and_then(Value::as_i64).map(|n| n * ms)
                };
                at("start", if unit == "Minutes" { 60_000 } else { 1000 })
                    .zip(at("end", if unit == "Minutes" { 60_000 } else { 1000 }))
            };
            let read: Option<Vec<(i64, i64)>> = periods
                .iter()
                .map(|p| {
                    let (from, to) = offset(p, "Minutes").or_else(|| offset(p, "Seconds"))?;
                    (from < to).then_some((now + from, now + to))
                })
                .collect();
            match read {
                Some(periods) => Ok(periods),
                None => {
                    let why = "each period needs startInMinutes < endInMinutes (or in seconds)";
                    return (StatusCode::BAD_REQUEST, why).into_response();
                }
            }
        }
        _ => return (StatusCode::BAD_REQUEST, "periods (a list) or error (text)").into_response(),
    };
    sim.with_world(|world, _| world.calendars.insert(name, calendar));
    StatusCode::NO_CONTENT.into_response()
}

async fn unset_calendar(State(sim): State<Sim>, Path(name): Path<String>) -> Response {
    sim.with_world(|world, _| world.calendars.remove(&name));
    StatusCode::NO_CONTENT.into_response()
}

/// What the EWT APIs answer from now on, for every queue: `{"seconds": 240}`, or
/// `{"seconds": null}` for nothing usable.
async fn set_ewt(State(sim): State<Sim>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let seconds = match body.get("seconds") {
        Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(seconds) => Some(seconds),
            None => {
                return (StatusCode::BAD_REQUEST, "seconds: a whole number or null")
                    .into_response();
            }
        },
        None => {
            return (StatusCode::BAD_REQUEST, "seconds: a whole number or null").into_response();
        }
    };
    sim.with_world(|world, _| world.ewt = seconds);
    StatusCode::NO_CONTENT.into_response()
}
