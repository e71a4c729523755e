//! The Chat API V2 HTTP surface: content types, faults, CORS, envelope or file replies.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shared::gms::{FilePart, GmsHeader};
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

use crate::Sim;
use crate::config::Config;
use crate::ops::{ApiRequest, Reply};
use crate::world::Injected;

pub(crate) fn router(config: &Config) -> Router<Sim> {
    let limit = usize::try_from(config.upload_max_file_size)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/genesys/2/chat/{service}", post(create))
        .route("/genesys/2/chat/{service}/{chat_id}/{*operation}", post(operation))
        .route("/genesys/1/service/{name}", get(calendar))
        .route("/genesys/1/service/ewt-for-vq", get(ewt_v1))
        .route("/genesys/2/ewt/{mode}", get(ewt_v2))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            Arc::from(config.require_headers.as_slice()),
            gateway,
        ))
        .layer(cors(&config.cors_origins))
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::POST, Method::OPTIONS])
        // Whatever the preflight asks for, `Authorization` and a gateway's key included
        // (a `*` would not cover `Authorization`).
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return layer.allow_origin(Any);
    }
    let list: Vec<HeaderValue> =
        origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    layer.allow_origin(AllowOrigin::list(list))
}

/// An API gateway in front of GMS (Apigee, as Genesys hosts it): a request without every
/// required header never reaches GMS and gets the gateway's 401 and fault body. The CORS
/// layer around it answers preflights, which carry no such header.
async fn gateway(
    State(required): State<Arc<[GmsHeader]>>,
    request: Request,
    next: Next,
) -> Response {
    let carried = |wanted: &GmsHeader| {
        request.headers().get_all(wanted.name.as_str()).iter().any(|v| v == wanted.value.as_str())
    };
    if required.iter().all(carried) {
        return next.run(request).await;
    }
    let fault = serde_json::json!({
        "fault": {
            "faultstring": "Invalid ApiKey",
            "detail": {"errorcode": "oauth.v2.InvalidApiKey"}
        }
    });
    (StatusCode::UNAUTHORIZED, axum::Json(fault)).into_response()
}

async fn create(State(sim): State<Sim>, Path(service): Path<String>, request: Request) -> Response {
    handle(sim, service, None, String::new(), request).await
}

async fn operation(
    State(sim): State<Sim>,
    Path((service, chat_id, operation)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    handle(sim, service, Some(chat_id), operation, request).await
}

async fn handle(
    sim: Sim,
    service: String,
    chat_id: Option<String>,
    operation: String,
    request: Request,
) -> Response {
    let (fields, file) = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request = ApiRequest { service, chat_id, operation, fields, file };
    let stat = request.stat_name();
    let (delay, injected) = sim.with_world(|world, _| {
        world.count_request(&stat, request.chat_id.as_deref());
        let injected = match world.take_fault() {
            Injected::None => None,
            Injected::Http5xx => {
                Some((StatusCode::SERVICE_UNAVAILABLE, "injected fault").into_response())
            }
            Injected::StatusCode1 => {
                let retry = world.refusal(1, &request, 8201, "injected fault: retry");
                Some(axum::Json(retry).into_response())
            }
        };
        (world.faults.delay_ms, injected)
    });
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(response) = injected {
        return response;
    }
    let (reply, omit_tokens) = sim
        .with_world(|world, effects| (world.chat_api(&request, effects), world.config.omit_tokens));
    match reply {
        Reply::Envelope(mut envelope) => {
            if omit_tokens {
                (envelope.user_id, envelope.alias) = (None, None);
            }
            axum::Json(envelope).into_response()
        }
        Reply::File { name, content_type, bytes } => {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            let disposition =
                format!("attachment; filename=\"{}\"", name.replace(['"', '\\', '\r', '\n'], "_"));
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            (headers, bytes).into_response()
        }
        Reply::NotFound => (StatusCode::NOT_FOUND, "no such operation").into_response(),
    }
}

type Fields = Vec<(String, String)>;

/// Reads a form-urlencoded or multipart body; any other content type is 415.
async fn read_body(request: Request) -> Result<(Fields, Option<FilePart>), Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = Bytes::from_request(request, &()).await.map_err(IntoResponse::into_response)?;
        let text = std::str::from_utf8(&body).map_err(|_| bad_request("body is not UTF-8"))?;
        let fields = shared::form::decode(text).map_err(|e| bad_request(&e.to_string()))?;
        return Ok((fields, None));
    }
    if content_type.starts_with("multipart/form-data") {
        let mut multipart =
            Multipart::from_request(request, &()).await.map_err(IntoResponse::into_response)?;
        let mut fields = Vec::new();
        let mut file = None;
        while let Some(field) =
            multipart.next_field().await.map_err(|e| bad_request(&e.to_string()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                let file_name = field.file_name().unwrap_or("file").to_owned();
                let content_type =
                    field.content_type().unwrap_or("application/octet-stream").to_owned();
                let bytes = field.bytes().await.map_err(|e| bad_request(&e.to_string()))?.to_vec();
                file = Some(FilePart { file_name, content_type, bytes });
            } else {
                let value = field.text().await.map_err(|e| bad_request(&e.to_string()))?;
                fields.push((name, value));
            }
        }
        return Ok((fields, file));
    }
    Err((
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "use application/x-www-form-urlencoded or multipart/form-data",
    )
        .into_response())
}

fn bad_request(reason: &str) -> Response {
    (StatusCode::BAD_REQUEST, reason.to_owned()).into_response()
}

/// GMS's Calendar Service (`GET /genesys/1/service/{name}` of an `office-hours` service):
/// the periods from `start` (now without it) to `end`, or over `number-of-days`, or at
/// `start` alone; an empty list is closed throughout. GMS documents only that the answer
/// lists periods and carries `error`; this is one such layout. An unknown service gets
/// 404 and an error.
async fn calendar(
    State(sim): State<Sim>,
    Path(name): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    use shared::hours::{instant_ms, iso_instant};
    let start =
        query.get("start").and_then(|s| instant_ms(s)).unwrap_or_else(crate::chat::now_millis);
    let days = query.get("number-of-days").and_then(|n| n.parse::<i64>().ok());
    let end = match (query.get("end").and_then(|e| instant_ms(e)), days) {
        (Some(end), _) => end,
        (None, Some(days)) => start.saturating_add(days.saturating_mul(86_400_000)),
        (None, None) => start,
    };
    let answer = sim.with_world(|world, _| {
        world.count_request("office_hours", None);
        world.calendars.get(&name).cloned()
    });
    let (status, body) = match answer {
        None => (
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": format!("service {name} not found")}),
        ),
        Some(Err(error)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": error}))
        }
        Some(Ok(periods)) => {
            let listed: Vec<serde_json::Value> = periods
                .iter()
                .filter(|&&(from, to)| to > start && from <= end)
                .map(|&(from, to)| serde_json::json!({"start": iso_instant(from), "end": iso_instant(to)}))
                .collect();
            (StatusCode::OK, serde_json::json!({"error": null, "periods": listed}))
        }
    };
    (status, axum::Json(body)).into_response()
}

/// GMS's EWT API, v1 (`/genesys/1/service/ewt-for-vq?name=<vq>&aqt=…`): `{"<vq>": seconds}`,
/// or `{}` when the sim has no estimate (`POST /sim/ewt`).
async fn ewt_v1(
    State(sim): State<Sim>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let queues = query.get("name").cloned().unwrap_or_default();
    ewt_answer(&sim, &queues, |seconds| serde_json::json!(seconds))
}

/// GMS's EWT API, v2 (`/genesys/2/ewt/<ewt1|ewt2|ewt3>?vq=<vq,…>`): `{"<vq>": {"ewt":
/// seconds}, …}`, as Genesys Widgets read it, or `{}` without an estimate.
async fn ewt_v2(
    State(sim): State<Sim>,
    Path(_mode): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let queues = query.get("vq").cloned().unwrap_or_default();
    ewt_answer(&sim, &queues, |seconds| serde_json::json!({"ewt": seconds}))
}

fn ewt_answer(sim: &Sim, queues: &str, each: impl Fn(u64) -> serde_json::Value) -> Response {
    let ewt = sim.with_world(|world, _| {
        world.count_request("ewt", None);
        world.ewt
    });
    let mut answer = serde_json::Map::new();
    if let Some(seconds) = ewt {
        for queue in queues.split(',').map(str::trim).filter(|q| !q.is_empty()) {
            answer.insert(queue.to_owned(), each(seconds));
        }
    }
    axum::Json(serde_json::Value::Object(answer)).into_response()
}
