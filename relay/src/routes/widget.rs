//! The widget's files for sites on other origins: `/widget.js`, the loader with this
//! build's file names and styles filled in (a stable address, cached for minutes), and the
//! build itself (content-hashed names, cached for a year), each with the headers a page on
//! another origin needs: CORS for the module import and the wasm's streaming compile, and
//! `Cross-Origin-Resource-Policy: cross-origin` for pages that isolate themselves.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, Request, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

use crate::AppState;
use crate::error::AppError;

/// Where the loader is served.
pub(crate) const LOADER_PATH: &str = "/widget.js";
/// The loader's template and the styles it carries, as trunk copies them into the build.
const TEMPLATE: &str = "loader.js";
const STYLES: &str = "widget.css";

/// `gms_url`: the default for pages that name no GMS (`--widget-gms-url`), may be empty;
/// `demo_page`: whether the build's example page is served at `/` (`--demo-page`);
/// `proxy`: the relay is in proxy mode, which the loader tells the widget (and then names
/// no GMS at all); `surveys`: it takes ratings of ended chats (`--survey-webhook`).
pub(crate) fn router(
    dir: PathBuf,
    gms_url: String,
    demo_page: bool,
    (proxy, surveys): (bool, bool),
) -> Router<AppState> {
    let gms_url = if proxy { String::new() } else { gms_url };
    let rendered = Mutex::new(None);
    let loader = Arc::new(Loader { dir: dir.clone(), gms_url, proxy, surveys, rendered });
    let mut router = Router::new().route(LOADER_PATH, get(move || serve_loader(loader.clone())));
    if !demo_page {
        let absent = || async { AppError::NotFound };
        router = router.route("/", get(absent)).route("/index.html", get(absent));
    }
    router
        .fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
        .layer(middleware::from_fn(headers))
        .layer(CompressionLayer::new())
}

/// How long a rendered loader is reused: every page view of a busy site asks for it, and a
/// rebuild (`trunk serve`) still shows within this.
const RENDERED_FOR: Duration = Duration::from_secs(1);

struct Loader {
    dir: PathBuf,
    gms_url: String,
    proxy: bool,
    surveys: bool,
    rendered: Mutex<Option<(Instant, Arc<str>)>>,
}

async fn serve_loader(loader: Arc<Loader>) -> Result<Response, AppError> {
    let fresh = loader.rendered.lock().ok().and_then(|r| {
        r.as_ref().filter(|(at, _)| at.elapsed() < RENDERED_FOR).map(|(_, l)| l.clone())
    });
    let text = match fresh {
        Some(text) => text,
        None => {
            let reader = loader.clone();
            let text: Arc<str> = tokio::task::spawn_blocking(move || {
                render(&reader.dir, &reader.gms_url, (reader.proxy, reader.surveys))
            })
            .await
            .map_err(|e| AppError::WidgetNotBuilt(e.to_string()))??
            .into();
            if let Ok(mut rendered) = loader.rendered.lock() {
                *rendered = Some((Instant::now(), text.clone()));
            }
            text
        }
    };
    let javascript = HeaderValue::from_static("text/javascript; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, javascript)], text.to_string()).into_response())
}

fn render(dir: &Path, gms_url: &str, (proxy, surveys): (bool, bool)) -> Result<String, AppError> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| AppError::WidgetNotBuilt(format!("{name}: {e}")))
    };
    let (js, wasm, split) = build_files(dir)?;
    // Compacted by the release build (`cargo xtask widget`).
    let css = read(STYLES)?;
    let values = Filled { js: &js, wasm: &wasm, split: &split, css: &css, gms_url, proxy, surveys };
    fill(&read(TEMPLATE)?, &values)
}

/// What the loader's placeholders become.
pub(crate) struct Filled<'a> {
    /// The glue script's file name.
    pub js: &'a str,
    /// The wasm's file name.
    pub wasm: &'a str,
    /// The split loader the glue imports (`<glue>-split.js`), empty in a build without one
    /// (`trunk serve`): the loader fetches it alongside the glue.
    pub split: &'a str,
    /// The widget's styles.
    pub css: &'a str,
    /// GMS for pages that name none (may be empty).
    pub gms_url: &'a str,
    /// The widget reaches GMS only through this relay.
    pub proxy: bool,
    /// The relay takes ratings of ended chats.
    pub surveys: bool,
}

/// The glue script, the wasm and the split loader of the build (`frontend-<id>.js`,
/// `frontend-<id>_bg.wasm`, `frontend-<id>-split.js` or none);
/// the newest build's when an operator keeps the previous one for pages still using it.
fn build_files(dir: &Path) -> Result<(String, String, String), AppError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| AppError::WidgetNotBuilt(format!("{}: {e}", dir.display())))?;
    let mut names = Vec::new();
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    for entry in entries.filter_map(Result::ok) {
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.ends_with("_bg.wasm") {
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            let modified = modified.unwrap_or(std::time::SystemTime::UNIX_EPOCH);
            if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
                newest = Some((modified, name.clone()));
            }
        }
        names.push(name);
    }
    let (_, wasm) = newest.ok_or_else(|| AppError::WidgetNotBuilt("no *_bg.wasm".to_owned()))?;
    let stem = wasm.trim_end_matches("_bg.wasm");
    let js = format!("{stem}.js");
    if !names.contains(&js) {
        return Err(AppError::WidgetNotBuilt(format!("no {js} next to {wasm}")));
    }
    let split = format!("{stem}-split.js");
    let split = if names.contains(&split) { split } else { String::new() };
    Ok((js, wasm, split))
}

/// The loader with its placeholders replaced; each must be there, so a template and a
/// relay that disagree fail loudly instead of serving a loader that loads nothing.
pub(crate) fn fill(template: &str, values: &Filled<'_>) -> Result<String, AppError> {
    let quoted = |value: &str| serde_json::to_string(value).unwrap_or_default();
    let mut out = template.to_owned();
    for (placeholder, value) in [
        ("'__GMS_CHAT_JS__'", quoted(values.js)),
        ("'__GMS_CHAT_WASM__'", quoted(values.wasm)),
        ("'__GMS_CHAT_SPLIT__'", quoted(values.split)),
        ("'__GMS_CHAT_CSS__'", quoted(values.css)),
        ("'__GMS_CHAT_GMS_URL__'", quoted(values.gms_url)),
        ("'__GMS_CHAT_PROXY__'", values.proxy.to_string()),
        ("'__GMS_CHAT_SURVEYS__'", values.surveys.to_string()),
    ] {
        if !out.contains(placeholder) {
            return Err(AppError::WidgetNotBuilt(format!("{TEMPLATE} has no {placeholder}")));
        }
        out = out.replace(placeholder, &value);
    }
    Ok(out)
}

/// Trunk names build files by content hash (`frontend-0123456789abcdef_bg.wasm`), so they
/// are cached for a year; the loader and the language files for five minutes (a new build
/// reaches every page within that); anything else (the demo page) is revalidated on every load.
async fn headers(request: Request<axum::body::Body>, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let cache = cache_control(&path, response.status());
    let declarations = path.ends_with(".d.ts") && response.status().is_success();
    let headers = response.headers_mut();
    if declarations {
        // TypeScript declarations for integrators, not an MPEG stream (the .ts guess).
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // Public files, fetched without credentials by any site that embeds the widget.
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    // Lets the site measure what the widget costs its pages (resource timing sizes).
    headers.insert("timing-allow-origin", HeaderValue::from_static("*"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Only a successful answer may be kept: an error (a 404 for a hashed file during a
/// rolling deploy, a 500 for an incomplete build) kept by a CDN for a year would break the
/// widget for a year.
fn cache_control(path: &str, status: axum::http::StatusCode) -> &'static str {
    if !status.is_success() && status != axum::http::StatusCode::NOT_MODIFIED {
        "no-store"
    } else if is_hashed_asset(path) {
        "public, max-age=31536000, immutable"
    } else if path == LOADER_PATH || path.starts_with("/texts/") || path.starts_with("/emoji/") {
        "public, max-age=300"
    } else {
        "no-cache"
    }
}

fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name.split(['-', '_', '.'])
        .any(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::{Filled, cache_control, fill, is_hashed_asset};

    #[test]
    fn only_successful_answers_may_be_cached() {
        let hashed = "/frontend-0123456789abcdef_bg.wasm";
        assert_eq!(cache_control(hashed, StatusCode::OK), "public, max-age=31536000, immutable");
        assert_eq!(
            cache_control(hashed, StatusCode::NOT_MODIFIED),
            "public, max-age=31536000, immutable"
        );
        for status in [StatusCode::NOT_FOUND, StatusCode::INTERNAL_SERVER_ERROR] {
            for path in [hashed, "/widget.js", "/texts/de.json", "/other"] {
                assert_eq!(cache_control(path, status), "no-store", "{path} {status}");
            }
        }
    }

    #[test]
    fn only_content_hashed_assets_are_immutable() {
        assert!(is_hashed_asset("/frontend-abc808f872ae67ac_bg.wasm"));
        assert!(is_hashed_asset("/frontend-abc808f872ae67ac.js"));
        assert!(!is_hashed_asset("/index.html"));
        assert!(!is_hashed_asset("/widget.js"));
        assert!(!is_hashed_asset("/"));
    }

    #[test]
    fn the_loader_gets_the_builds_names_and_styles_as_string_literals() {
        let template = "var JS = '__GMS_CHAT_JS__'; var W = '__GMS_CHAT_WASM__'; \
                        var X = '__GMS_CHAT_SPLIT__'; \
                        var C = '__GMS_CHAT_CSS__'; var G = '__GMS_CHAT_GMS_URL__'; \
                        var P = '__GMS_CHAT_PROXY__'; var S = '__GMS_CHAT_SURVEYS__';";
        let values = Filled {
            js: "f-1.js",
            wasm: "f-1_bg.wasm",
            split: "f-1-split.js",
            css: "a { content: \"'\" }\n",
            gms_url: "",
            proxy: true,
            surveys: false,
        };
        assert_eq!(
            fill(template, &values).expect("fills"),
            r#"var JS = "f-1.js"; var W = "f-1_bg.wasm"; var X = "f-1-split.js"; var C = "a { content: \"'\" }\n"; var G = ""; var P = true; var S = false;"#
        );
        assert!(fill("var JS = '__GMS_CHAT_JS__';", &values).is_err(), "a placeholder missing");
    }
}
