//! A website on its own origin that embeds the widget, as a customer's site would: pages
//! the test writes, each with the headers it chooses (a Content-Security-Policy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

/// One page: its HTML and extra response headers.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The document.
    pub html: String,
    /// Extra headers, e.g. `("content-security-policy", "...")`.
    pub headers: Vec<(String, String)>,
}

type Pages = Arc<Mutex<HashMap<String, Page>>>;

/// The site's server, on 127.0.0.1 and a port of its own (another origin than the relay's
/// and GMS's), until dropped.
pub struct HostSite {
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    pages: Pages,
    stop: CancellationToken,
}

impl HostSite {
    /// Binds a free port and serves whatever pages are put.
    pub async fn start() -> Result<HostSite> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let pages: Pages = Arc::default();
        let app = axum::Router::new().fallback(serve).with_state(pages.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped).await;
        });
        Ok(HostSite { origin, pages, stop })
    }

    /// Serves `html` at `path` with these extra headers; answers the page's URL.
    pub fn put(&self, path: &str, page: Page) -> String {
        if let Ok(mut pages) = self.pages.lock() {
            pages.insert(path.to_owned(), page);
        }
        format!("{}{path}", self.origin)
    }
}

impl Drop for HostSite {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(State(pages): State<Pages>, request: Request) -> Response {
    let page = pages.lock().ok().and_then(|p| p.get(request.uri().path()).cloned());
    let Some(page) = page else { return StatusCode::NOT_FOUND.into_response() };
    let mut response = page.html.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in page.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
        {
            headers.insert(name, value);
        }
    }
    response
}
