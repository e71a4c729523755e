//! A Chat API V2 client for tests, written from the documented contract (`shared::gms`)
//! and nothing else, plus helpers for gms-sim's admin API.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use shared::gms::{
    Answer, Attempts, ChatOperation, ChatResponse, Credentials, EncodedRequest, Next, RequestBody,
    RetryPolicy, Verdict, Visitor,
};

use crate::support::{Wait, until_every};

/// Talks to one GMS chat service.
#[derive(Clone)]
pub struct GmsClient {
    http: reqwest::Client,
    base: String,
    service: String,
}

/// A raw answer: HTTP status and body.
pub struct Raw {
    pub status: u16,
    pub body: Vec<u8>,
}

impl GmsClient {
    pub fn new(base: &str, service: &str) -> GmsClient {
        GmsClient {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            service: service.to_owned(),
        }
    }

    /// The same client sending `name: value` with every request, as a client of a GMS
    /// behind an API gateway does.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<GmsClient> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes())?,
            reqwest::header::HeaderValue::from_str(value)?,
        );
        self.http = reqwest::Client::builder().default_headers(headers).build()?;
        Ok(self)
    }

    /// Sends an operation and returns the raw answer.
    pub async fn raw(
        &self,
        operation: &ChatOperation,
        credentials: Option<&Credentials>,
    ) -> Result<Raw> {
        let EncodedRequest { path, body, .. } = operation.encode(&self.service, credentials);
        let request = self.http.post(format!("{}{path}", self.base));
        let request = match body {
            RequestBody::Form(fields) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(shared::form::encode(&fields)),
            RequestBody::Multipart { fields, file } => {
                let mut form = reqwest::multipart::Form::new();
                for (key, value) in fields {
                    form = form.text(key, value);
                }
                let part = reqwest::multipart::Part::bytes(file.bytes)
                    .file_name(file.file_name)
                    .mime_str(&file.content_type)?;
                request.multipart(form.part("file", part))
            }
        };
        let response = request.send().await?;
        Ok(Raw { status: response.status().as_u16(), body: response.bytes().await?.to_vec() })
    }

    /// Sends an operation and parses the envelope.
    pub async fn call(
        &self,
        operation: &ChatOperation,
        credentials: &Credentials,
    ) -> Result<ChatResponse> {
        let raw = self.raw(operation, Some(credentials)).await?;
        ChatResponse::parse(&raw.body)
            .with_context(|| format!("HTTP {}: {}", raw.status, String::from_utf8_lossy(&raw.body)))
    }

    /// Creates a chat with a nickname and user data, tried again as `RetryPolicy::GMS` says;
    /// fails unless GMS answers statusCode 0.
    pub async fn create(
        &self,
        nickname: &str,
        user_data: Vec<(String, String)>,
    ) -> Result<(Credentials, ChatResponse)> {
        let operation = ChatOperation::Create {
            visitor: Visitor { nickname: Some(nickname.to_owned()), ..Visitor::default() },
            user_data,
        };
        // As the widget does: statusCode 1, 5xx and network errors are tried again.
        let mut attempts = Attempts::new(RetryPolicy::GMS);
        let response = loop {
            let (result, verdict) = match self.raw(&operation, None).await {
                Ok(raw) => match ChatResponse::parse(&raw.body) {
                    Ok(response) => {
                        let verdict = response.verdict();
                        (Ok(response), verdict)
                    }
                    Err(_) => {
                        (Err(anyhow!("HTTP {}", raw.status)), Verdict::of(Answer::Http(raw.status)))
                    }
                },
                Err(error) => (Err(error), Verdict::of(Answer::Network)),
            };
            match (attempts.after(verdict, rand::random()), result) {
                (Next::Wait(wait), _) => tokio::time::sleep(wait).await,
                (Next::Done(_), Ok(response)) => break response,
                (_, Ok(response)) => bail!("create: {}", response.error_summary()),
                (_, Err(error)) => return Err(error.context("create")),
            }
        };
        let credentials = response
            .credentials()
            .with_context(|| format!("create failed: {}", response.error_summary()))?;
        Ok((credentials, response))
    }
}

/// gms-sim's `/sim` admin API.
#[derive(Clone)]
pub struct SimAdmin {
    http: reqwest::Client,
    base: String,
}

impl SimAdmin {
    pub fn new(base: &str) -> SimAdmin {
        SimAdmin { http: reqwest::Client::new(), base: base.to_owned() }
    }

    /// POSTs JSON to a `/sim` path; returns the HTTP status and the body.
    pub async fn post(&self, path: &str, body: Value) -> Result<(u16, String)> {
        let response = self.http.post(format!("{}{path}", self.base)).json(&body).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// POSTs and insists on 200.
    pub async fn ok(&self, path: &str, body: Value) -> Result<Value> {
        let (status, text) = self.post(path, body).await?;
        if status != 200 {
            bail!("{path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub async fn agent_says(&self, chat_id: &str, text: &str) -> Result<Value> {
        self.ok(&format!("/sim/chats/{chat_id}/agent/message"), serde_json::json!({"text": text}))
            .await
    }

    pub async fn stats(&self) -> Result<Value> {
        self.get("/sim/stats").await
    }

    /// Refresh requests per chat so far (pings and acknowledgements among them).
    pub async fn refreshes(&self) -> Result<std::collections::HashMap<String, u64>> {
        let stats = self.stats().await?;
        let chats = stats["chats"].as_object().cloned().unwrap_or_default();
        Ok(chats.into_iter().map(|(id, ops)| (id, ops["refresh"].as_u64().unwrap_or(0))).collect())
    }

    /// The chats hosted on the Chat Server `alias`.
    pub async fn chats_on(&self, alias: &str) -> Result<Vec<String>> {
        let chats = self.get("/sim/chats").await?;
        Ok(chats
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["alias"] == alias)
            .filter_map(|c| c["chatId"].as_str().map(str::to_owned))
            .collect())
    }

    /// Health polls the Chat Server `alias` has answered so far.
    pub async fn health_polls(&self, alias: &str) -> Result<u64> {
        Ok(self.stats().await?["healthPolls"][alias].as_u64().unwrap_or(0))
    }

    /// Returns once `alias` has answered `more` health polls from now on (a relay watching
    /// it has seen its process); fails after 10 s.
    pub async fn polled(&self, alias: &str, more: u64) -> Result<()> {
        let seen = self.health_polls(alias).await?;
        let what = format!("{more} more health polls of {alias} than {seen}");
        until_every(&what, Duration::from_secs(10), Duration::from_millis(50), async || {
            let polls = self.health_polls(alias).await?;
            Ok(Wait::done_if(polls >= seen + more, polls))
        })
        .await
    }
}
