//! A customhttp receiver for tests: records every push and answers with a chosen status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A running receiver.
pub struct PushSink {
    /// Where to point `--push-url`.
    pub url: String,
    status: Arc<AtomicU16>,
    received: mpsc::UnboundedReceiver<(Instant, Value)>,
}

impl PushSink {
    pub async fn start() -> Result<PushSink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/push", listener.local_addr()?);
        let status = Arc::new(AtomicU16::new(200));
        #[allow(
            clippy::disallowed_methods,
            reason = "a test receiver must record everything it is sent"
        )]
        let (tx, rx) = mpsc::unbounded_channel();
        let answer = status.clone();
        let app = axum::Router::new().route(
            "/push",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                let answer = answer.clone();
                async move {
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = tx.send((Instant::now(), value));
                    StatusCode::from_u16(answer.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(PushSink { url, status, received: rx })
    }

    /// The HTTP status the sink answers with from now on.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// The next push, waiting up to `within`.
    pub async fn next(&mut self, within: Duration) -> Result<(Instant, Value)> {
        tokio::time::timeout(within, self.received.recv())
            .await
            .context("no push arrived in time")?
            .context("push sink closed")
    }

    /// Asserts that no push arrives within `quiet`.
    pub async fn none_within(&mut self, quiet: Duration) -> Result<()> {
        match tokio::time::timeout(quiet, self.received.recv()).await {
            Err(_) => Ok(()),
            Ok(push) => anyhow::bail!("unexpected push: {push:?}"),
        }
    }
}
