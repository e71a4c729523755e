//! A small W3C WebDriver client over reqwest, the chromedriver process behind it, and a
//! DevTools connection for what WebDriver does not carry. It knows nothing of the widget:
//! `widget_page` does.

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Wait, until_every};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver plus one headless Chromium session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: String,
    _chromedriver: Child,
    profile: std::path::PathBuf,
    /// Chromium's own DevTools address (`host:port`), for what chromedriver does not pass
    /// on: events.
    debugger: String,
}

/// A reference to an element in the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Element {
    /// The element a script answered (WebDriver's element reference).
    pub fn of(value: &Value) -> Result<Element> {
        let id = value[ELEMENT_KEY].as_str().with_context(|| format!("not an element: {value}"))?;
        Ok(Element(id.to_owned()))
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless desktop Chromium session.
    pub async fn start() -> Result<Browser> {
        Browser::launch(None).await
    }

    /// The same with a phone's viewport (`width` × `height` CSS pixels, touch).
    pub async fn start_phone(width: u32, height: u32) -> Result<Browser> {
        Browser::launch(Some(json!({"deviceMetrics": {
            "width": width, "height": height, "pixelRatio": 2.0, "touch": true
        }})))
        .await
    }

    async fn launch(mobile_emulation: Option<Value>) -> Result<Browser> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        let mut child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {chromedriver} (apt install chromium-driver)"))?;
        let stdout = child.stdout.take().context("chromedriver stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // chromedriver announces readiness on stdout; read that instead of sleeping.
        loop {
            let Some(line) = lines.next_line().await? else {
                bail!("chromedriver exited before it was ready")
            };
            if line.contains("started successfully") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profile = crate::harness::scratch_dir("chromium-profile")?;
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let mut chrome_options = json!({"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1280,900",
            format!("--user-data-dir={}", profile.display()),
        ]});
        if let Some(emulation) = mobile_emulation {
            chrome_options["mobileEmulation"] = emulation;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": chrome_options,
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let http = reqwest::Client::new();
        let driver = format!("http://127.0.0.1:{port}");
        let created: Value =
            http.post(format!("{driver}/session")).json(&capabilities).send().await?.json().await?;
        let session = created["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no WebDriver session: {created}"))?
            .to_owned();
        let debugger = created["value"]["capabilities"]["goog:chromeOptions"]["debuggerAddress"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Browser { http, session, driver, _chromedriver: child, profile, debugger })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let request = self.http.request(method, url);
        let request = if body.is_null() { request } else { request.json(&body) };
        let response: Value = request.send().await?.json().await?;
        if let Some(error) = response["value"]["error"].as_str() {
            bail!("WebDriver {path}: {error}: {}", response["value"]["message"]);
        }
        Ok(response["value"].clone())
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, command: &str, params: Value) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    /// A DevTools session of its own on the first page: Chromium's socket, since
    /// chromedriver passes commands on but not the events they cause.
    pub async fn devtools(&self) -> Result<DevTools> {
        let version: Value = self
            .http
            .get(format!("http://{}/json/version", self.debugger))
            .send()
            .await?
            .json()
            .await?;
        let url = version["webSocketDebuggerUrl"].as_str().context("no DevTools socket")?;
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        let mut devtools = DevTools { socket, next: 0, session: None, events: Vec::new() };
        devtools.session = Some(devtools.attach("page", "").await?);
        Ok(devtools)
    }

    /// Lets the page download files into `dir` without asking.
    pub async fn allow_downloads(&self, dir: &std::path::Path) -> Result<()> {
        let allow = json!({"behavior": "allow", "downloadPath": dir.display().to_string()});
        if self.cdp("Browser.setDownloadBehavior", allow.clone()).await.is_err() {
            self.cdp("Page.setDownloadBehavior", allow).await?;
        }
        Ok(())
    }

    /// Waits (10 s at most) until a downloaded file exists and `complete` says its bytes
    /// are all there; answers them.
    pub async fn downloaded(
        path: &std::path::Path,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>> {
        let what = format!("{} downloaded", path.display());
        let within = std::time::Duration::from_secs(10);
        until_every(&what, within, std::time::Duration::from_millis(100), async || {
            Ok(match std::fs::read(path) {
                Ok(bytes) if complete(&bytes) => Wait::Done(bytes),
                Ok(bytes) => Wait::Still(format!("{} bytes", bytes.len())),
                Err(error) => Wait::Still(error.to_string()),
            })
        })
        .await
    }

    /// Opens a new tab in the same profile and switches to it; answers its handle.
    pub async fn new_tab(&self) -> Result<String> {
        let opened =
            self.call(reqwest::Method::POST, "/window/new", json!({"type": "tab"})).await?;
        let handle = opened["handle"].as_str().context("no window handle")?.to_owned();
        self.switch_to(&handle).await?;
        Ok(handle)
    }

    /// The handle of the tab commands go to.
    pub async fn current_tab(&self) -> Result<String> {
        let handle = self.call(reqwest::Method::GET, "/window", Value::Null).await?;
        Ok(handle.as_str().context("no window handle")?.to_owned())
    }

    /// Sends the next commands to this tab.
    pub async fn switch_to(&self, handle: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/window", json!({"handle": handle})).await.map(drop)
    }

    /// Closes the current tab (as the visitor closing it would); switch to another after.
    pub async fn close_tab(&self) -> Result<()> {
        self.call(reqwest::Method::DELETE, "/window", Value::Null).await.map(drop)
    }

    /// The browser console's entries since the last call (level and message), CSP
    /// violations and `console.warn` included.
    pub async fn console_log(&self) -> Result<Vec<(String, String)>> {
        let entries =
            self.call(reqwest::Method::POST, "/se/log", json!({"type": "browser"})).await?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let level = e["level"].as_str().unwrap_or_default().to_owned();
                (level, e["message"].as_str().unwrap_or_default().to_owned())
            })
            .collect())
    }

    /// Runs `source` in every new document before the page's own scripts (and outside its
    /// Content-Security-Policy), e.g. to record events from the very start.
    pub async fn on_new_document(&self, source: &str) -> Result<()> {
        self.cdp("Page.addScriptToEvaluateOnNewDocument", json!({"source": source})).await.map(drop)
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await.map(drop)
    }

    /// Runs a script (its body, with `arguments`) and returns its value.
    pub async fn script(&self, body: &str, args: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": body, "args": args}))
            .await
    }

    /// Waits up to `seconds` for a script to return something truthy, polling every 50 ms
    /// as WebDriver's own implicit waits do.
    pub async fn wait_for(
        &self,
        what: &str,
        seconds: u64,
        body: &str,
        args: Value,
    ) -> Result<Value> {
        let within = std::time::Duration::from_secs(seconds);
        until_every(what, within, std::time::Duration::from_millis(50), async || {
            let value = self.script(body, args.clone()).await?;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value.as_str().is_none_or(|s| !s.is_empty());
            Ok(if truthy { Wait::Done(value) } else { Wait::Still(value) })
        })
        .await
    }

    pub async fn click(&self, element: &Element) -> Result<()> {
        self.call(reqwest::Method::POST, &format!("/element/{}/click", element.0), json!({}))
            .await
            .map(drop)
    }

    /// Types into an element through WebDriver's keyboard (`\u{E007}` is Enter,
    /// `\u{E008}` Shift).
    pub async fn type_into(&self, element: &Element, text: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    pub async fn close(self) -> Result<()> {
        let url = format!("{}/session/{}", self.driver, self.session);
        self.http.delete(url).send().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A DevTools Protocol connection to one page, with the events it has seen.
pub struct DevTools {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
    session: Option<String>,
    events: Vec<Value>,
}

impl DevTools {
    /// Sends a command to the page; answers its result and keeps the events that arrive
    /// meanwhile.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.call_on(session.as_deref(), method, params).await
    }

    /// Attaches to the first target of `kind` (`page`, `service_worker`) whose URL starts
    /// with `url`; answers the session to `call_on`.
    pub async fn attach(&mut self, kind: &str, url: &str) -> Result<String> {
        let targets = self.call_on(None, "Target.getTargets", json!({})).await?;
        let target = targets["targetInfos"]
            .as_array()
            .and_then(|t| {
                t.iter().find(|t| {
                    t["type"] == kind && t["url"].as_str().is_some_and(|u| u.starts_with(url))
                })
            })
            .with_context(|| format!("no {kind} target at {url}: {targets}"))?["targetId"]
            .clone();
        let attached = self
            .call_on(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true}))
            .await?;
        attached["sessionId"].as_str().map(str::to_owned).context("no session")
    }

    /// Sends a command to a session (`None`: the browser).
    pub async fn call_on(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value> {
        use futures_util::{SinkExt as _, StreamExt as _};
        self.next += 1;
        let mut message = json!({"id": self.next, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(message.to_string()))
            .await?;
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.socket.next())
                    .await
                    .with_context(|| format!("no answer to {method}"))?
                    .context("DevTools closed")??;
            let Ok(text) = frame.into_text() else { continue };
            let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
            if value["id"] == self.next {
                if let Some(error) = value.get("error") {
                    bail!("{method}: {error}");
                }
                return Ok(value["result"].clone());
            }
            self.events.push(value);
        }
    }

    /// Waits for an event named `method` for which `matches` holds.
    pub async fn event(&mut self, method: &str, matches: impl Fn(&Value) -> bool) -> Result<Value> {
        use futures_util::StreamExt as _;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(found) =
                self.events.iter().find(|e| e["method"] == method && matches(&e["params"]))
            {
                return Ok(found["params"].clone());
            }
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .with_context(|| format!("no {method} event"))?
                .context("DevTools closed")??;
            if let Ok(text) = frame.into_text()
                && let Ok(value) = serde_json::from_str::<Value>(&text)
            {
                self.events.push(value);
            }
        }
    }
}
