//! The HTTP surface: health, and the built widget when `--static-dir` is set.

mod health;

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;

pub(crate) fn router(state: AppState) -> Router {
    let mut router = health::router();
    if let Some(dir) = &state.config.static_dir {
        // Trunk names assets by content hash, so they can be cached; index.html cannot,
        // which `no-cache` (revalidate every time) covers for both.
        let widget = Router::new()
            .fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            ))
            .layer(CompressionLayer::new());
        router = router.merge(widget);
    }
    router.with_state(state)
}
