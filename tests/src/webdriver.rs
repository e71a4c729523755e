//! A small W3C WebDriver client over reqwest for three engines, each behind its own driver
//! process: Chromium (chromedriver, headless), Firefox (geckodriver, headless) and WebKit
//! (WebKitGTK's WebKitWebDriver driving its MiniBrowser, which has no headless mode, on an
//! Xvfb display of its own). Every browser gets a fresh profile and a free port, and goes
//! with its driver and display when dropped. For what WebDriver does not carry, Chromium
//! also has the DevTools Protocol (`cdp`, `devtools`, `on_new_document`); those fail with
//! an error naming the engine elsewhere. It knows nothing of the widget: `widget_page` does.
//!
//! The programs come from the environment, as `cargo xtask test` sets it, or their Debian
//! places: `CHROMEDRIVER` and `CHROMIUM`, `GECKODRIVER` and `FIREFOX`, `WEBKIT_WEBDRIVER`
//! and `MINIBROWSER`, and `XVFB`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Wait, until_every};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The desktop viewport every engine starts with, in CSS pixels.
const DESKTOP: (u32, u32) = (1280, 900);

/// How long a new session may take: seconds normally, even on a loaded 2-core machine; a
/// driver that takes longer has hung (`Browser::launch` starts another).
const SESSION_START: Duration = Duration::from_secs(60);

/// A browser engine the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Debian's Chromium through chromedriver, headless.
    Chromium,
    /// Debian's Firefox ESR through geckodriver, headless.
    Firefox,
    /// WebKitGTK's MiniBrowser through WebKitWebDriver, on an Xvfb display.
    WebKit,
}

impl Engine {
    /// Every engine, in the order the tests name them.
    pub const ALL: [Engine; 3] = [Engine::Chromium, Engine::Firefox, Engine::WebKit];

    /// The engine's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "Chromium",
            Engine::Firefox => "Firefox",
            Engine::WebKit => "WebKit",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A script that records the page's console calls for `console_log` in the engines whose
/// driver hands no console over (Firefox, WebKit). A page runs it before its own scripts
/// (a test's page puts it first in its head). It keeps one string and uses no Array
/// method, so a page that breaks them cannot break the record.
pub const CONSOLE_HOOK: &str = "(function () {
  if (window.__gmsConsole !== undefined) return;
  window.__gmsConsole = '';
  var levels = {error: 'SEVERE', warn: 'WARNING', info: 'INFO', log: 'INFO'};
  Object.keys(levels).forEach(function (name) {
    var original = console[name];
    console[name] = function () {
      var text = '';
      for (var i = 0; i < arguments.length; i++) text += (i ? ' ' : '') + String(arguments[i]);
      window.__gmsConsole += levels[name] + '\\u0001' + text + '\\u0000';
      return original.apply(console, arguments);
    };
  });
})();";

/// One browser session with the driver behind it (and for WebKit its display).
pub struct Browser {
    engine: Engine,
    http: reqwest::Client,
    session: String,
    driver: String,
    /// The driver, leading a process group of its own that holds the browser it started:
    /// dropping the `Browser` kills the group.
    driver_process: Child,
    /// WebKit's Xvfb, killed after the browser.
    _display: Option<Child>,
    profile: PathBuf,
    /// Chromium's own DevTools address (`host:port`), for what chromedriver does not pass
    /// on: events.
    debugger: Option<String>,
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

/// How a browser starts.
#[derive(Debug, Clone, Copy)]
struct Look {
    /// A phone's viewport, `width` × `height` CSS pixels, rather than the desktop's.
    phone: Option<(u32, u32)>,
    /// The system's colour scheme is dark (`prefers-color-scheme: dark`).
    dark: bool,
}

impl Browser {
    /// A headless desktop Chromium, for the benchmarks and the chaos suite, which use its
    /// DevTools: `start_in(Engine::Chromium)`.
    pub async fn start() -> Result<Browser> {
        Browser::start_in(Engine::Chromium).await
    }

    /// Chromium with a phone's viewport: `start_phone_in(Engine::Chromium, …)`.
    pub async fn start_phone(width: u32, height: u32) -> Result<Browser> {
        Browser::start_phone_in(Engine::Chromium, width, height).await
    }

    /// Starts `engine`'s driver on a free port and opens a desktop session (a 1280 × 900
    /// viewport) with a fresh profile.
    pub async fn start_in(engine: Engine) -> Result<Browser> {
        Browser::launch(engine, Look { phone: None, dark: false }).await
    }

    /// The same with a phone's viewport of `width` × `height` CSS pixels. Chromium
    /// emulates the phone (touch, pixel ratio 2); Firefox and WebKit size their window to
    /// that viewport exactly (Firefox's profile lifts its toolbar's minimum width, and
    /// MiniBrowser runs full screen, without one), with neither touch nor a pixel ratio.
    pub async fn start_phone_in(engine: Engine, width: u32, height: u32) -> Result<Browser> {
        Browser::launch(engine, Look { phone: Some((width, height)), dark: false }).await
    }

    /// A desktop session whose system prefers a dark colour scheme: Chromium emulates the
    /// media feature (in the first tab), Firefox's profile says so and MiniBrowser runs in
    /// its dark mode.
    pub async fn start_dark_in(engine: Engine) -> Result<Browser> {
        Browser::launch(engine, Look { phone: None, dark: true }).await
    }

    /// Starts the driver and opens a session, once more with a fresh driver if that fails:
    /// WebKitWebDriver once never answered a new session in a full run (120 s, before any
    /// page), and passed when run again: the harness's trouble, not the test's.
    #[allow(clippy::print_stderr, reason = "the test's output says it was started again")]
    async fn launch(engine: Engine, look: Look) -> Result<Browser> {
        match Browser::launch_once(engine, look).await {
            Ok(browser) => Ok(browser),
            Err(error) => {
                eprintln!("{engine} did not start ({error:#}); starting it again");
                Browser::launch_once(engine, look).await
            }
        }
    }

    async fn launch_once(engine: Engine, look: Look) -> Result<Browser> {
        let profile = crate::harness::scratch_dir(&format!("{}-profile", engine.name()))?;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let mut display = None;
        let (mut command, capabilities) = match engine {
            Engine::Chromium => chromium(port, &profile, look),
            Engine::Firefox => firefox(port, &profile, look)?,
            Engine::WebKit => {
                let (xvfb, number) = xvfb().await?;
                display = Some(xvfb);
                webkit(port, &profile, number, look)
            }
        };
        let program = format!("{:?}", command.as_std().get_program());
        let driver_process = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {program} for {engine} (cargo xtask setup)"))?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
        let driver = format!("http://127.0.0.1:{port}");
        // Half-made, the browser is already what drop cleans up.
        let mut browser = Browser {
            engine,
            http,
            session: String::new(),
            driver,
            driver_process,
            _display: display,
            profile,
            debugger: None,
        };
        browser.ready(&program).await?;
        let created: Value = browser
            .http
            .post(format!("{}/session", browser.driver))
            .json(&json!({"capabilities": {"alwaysMatch": capabilities}}))
            .timeout(SESSION_START)
            .send()
            .await?
            .json()
            .await?;
        browser.session = created["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no {engine} WebDriver session: {created}"))?
            .to_owned();
        browser.debugger =
            created["value"]["capabilities"]["goog:chromeOptions"]["debuggerAddress"]
                .as_str()
                .map(str::to_owned);
        if engine == Engine::Chromium {
            if look.dark {
                let dark = json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]});
                browser.cdp("Emulation.setEmulatedMedia", dark).await?;
            }
        } else {
            let (width, height) = look.phone.unwrap_or(DESKTOP);
            browser.fit_viewport(width, height).await?;
        }
        Ok(browser)
    }

    /// Waits (30 s at most) until the driver's `/status` says it is ready for a session.
    async fn ready(&mut self, program: &str) -> Result<()> {
        let status = format!("{}/status", self.driver);
        let (http, process) = (&self.http, &mut self.driver_process);
        let what = format!("{program} ready");
        until_every(&what, Duration::from_secs(30), Duration::from_millis(50), async || {
            if let Some(exit) = process.try_wait()? {
                bail!("{program} exited before it was ready: {exit}");
            }
            let answer = match http.get(&status).send().await {
                Ok(response) => response.json::<Value>().await?,
                Err(error) => return Ok(Wait::Still(error.to_string())),
            };
            Ok(Wait::done_if(answer["value"]["ready"] == true, answer.to_string()))
        })
        .await
    }

    /// Sizes the window so that the page's viewport is `width` × `height`: whatever the
    /// window's own parts take is measured and added.
    async fn fit_viewport(&self, width: u32, height: u32) -> Result<()> {
        let want = (i64::from(width), i64::from(height));
        let mut window = want;
        let mut seen = Value::Null;
        for _ in 0..3 {
            let rect = json!({"width": window.0, "height": window.1});
            self.call(reqwest::Method::POST, "/window/rect", rect).await?;
            seen = self.script("return [innerWidth, innerHeight];", json!([])).await?;
            let inner = (seen[0].as_i64().unwrap_or(0), seen[1].as_i64().unwrap_or(0));
            if inner == want {
                return Ok(());
            }
            window = (window.0 + want.0 - inner.0, window.1 + want.1 - inner.1);
        }
        let engine = self.engine;
        bail!("{engine}: no window gives a {width} × {height} viewport: the last was {seen}")
    }

    /// The engine this browser runs.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let request = self.http.request(method, url);
        let request = if body.is_null() { request } else { request.json(&body) };
        let response: Value = request.send().await?.json().await?;
        if let Some(error) = response["value"]["error"].as_str() {
            bail!("{} WebDriver {path}: {error}: {}", self.engine, response["value"]["message"]);
        }
        Ok(response["value"].clone())
    }

    /// Fails unless this is Chromium, naming what needs it and why.
    fn chromium_only(&self, what: &str) -> Result<()> {
        if self.engine != Engine::Chromium {
            bail!("{what} needs Chromium's DevTools Protocol, which {} does not have", self.engine);
        }
        Ok(())
    }

    /// A Chrome DevTools Protocol command, through chromedriver (Chromium only).
    pub async fn cdp(&self, command: &str, params: Value) -> Result<Value> {
        self.chromium_only(&format!("cdp({command})"))?;
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    /// A DevTools session of its own on the first page: Chromium's socket, since
    /// chromedriver passes commands on but not the events they cause (Chromium only).
    pub async fn devtools(&self) -> Result<DevTools> {
        self.chromium_only("devtools()")?;
        let debugger = self.debugger.as_deref().context("Chromium named no DevTools address")?;
        let version: Value =
            self.http.get(format!("http://{debugger}/json/version")).send().await?.json().await?;
        let url = version["webSocketDebuggerUrl"].as_str().context("no DevTools socket")?;
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        let mut devtools = DevTools { socket, next: 0, session: None, events: Vec::new() };
        devtools.session = Some(devtools.attach("page", "").await?);
        Ok(devtools)
    }

    /// Lets the page download files into `dir` without asking (Chromium only; see
    /// `catch_downloads` for every engine).
    pub async fn allow_downloads(&self, dir: &Path) -> Result<()> {
        self.chromium_only("allow_downloads")?;
        let allow = json!({"behavior": "allow", "downloadPath": dir.display().to_string()});
        if self.cdp("Browser.setDownloadBehavior", allow.clone()).await.is_err() {
            self.cdp("Page.setDownloadBehavior", allow).await?;
        }
        Ok(())
    }

    /// Waits (10 s at most) until a downloaded file exists and `complete` says its bytes
    /// are all there; answers them.
    pub async fn downloaded(path: &Path, complete: impl Fn(&[u8]) -> bool) -> Result<Vec<u8>> {
        let what = format!("{} downloaded", path.display());
        let within = Duration::from_secs(10);
        until_every(&what, within, Duration::from_millis(100), async || {
            Ok(match std::fs::read(path) {
                Ok(bytes) if complete(&bytes) => Wait::Done(bytes),
                Ok(bytes) => Wait::Still(format!("{} bytes", bytes.len())),
                Err(error) => Wait::Still(error.to_string()),
            })
        })
        .await
    }

    /// From now on, catches what the current page offers for download through a
    /// `download` link to a blob (how web apps save what they made). Chromium downloads
    /// it for real into the profile; Firefox and WebKit, whose drivers cannot allow a
    /// download, note each such link's name and address on its click instead, and the
    /// download itself does not happen. Call again after a navigation.
    pub async fn catch_downloads(&self) -> Result<()> {
        if self.engine == Engine::Chromium {
            let dir = self.profile.join("downloads");
            std::fs::create_dir_all(&dir)?;
            return self.allow_downloads(&dir).await;
        }
        self.script(
            "if (window.__gmsDownloads) return;
             window.__gmsDownloads = {};
             const click = HTMLAnchorElement.prototype.click;
             HTMLAnchorElement.prototype.click = function () {
               if (this.download && this.href.startsWith('blob:')) {
                 window.__gmsDownloads[this.download] = this.href;
                 return;
               }
               return click.call(this);
             };",
            json!([]),
        )
        .await
        .map(drop)
    }

    /// Waits (10 s at most) for the download named `name` that `catch_downloads` caught,
    /// until `complete` says its bytes are all there; answers them.
    pub async fn caught_download(
        &self,
        name: &str,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>> {
        if self.engine == Engine::Chromium {
            return Browser::downloaded(&self.profile.join("downloads").join(name), complete).await;
        }
        let what = format!("{name} offered for download");
        until_every(&what, Duration::from_secs(10), Duration::from_millis(100), async || {
            let bytes = self
                .script(
                    "const url = (window.__gmsDownloads || {})[arguments[0]];
                     if (!url) return null;
                     return fetch(url).then(r => r.arrayBuffer())
                       .then(b => Array.from(new Uint8Array(b)));",
                    json!([name]),
                )
                .await?;
            let Some(bytes) = bytes.as_array() else { return Ok(Wait::Still("none".into())) };
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Ok(if complete(&bytes) {
                Wait::Done(bytes)
            } else {
                Wait::Still(format!("{} bytes", bytes.len()))
            })
        })
        .await
    }

    /// Sets a permission (`notifications`…) to `granted`, `denied` or `prompt` for the
    /// current page's origin, through WebDriver's Set Permission (Chromium, Firefox;
    /// WebKitWebDriver has no such command).
    pub async fn set_permission(&self, name: &str, state: &str) -> Result<()> {
        if self.engine == Engine::WebKit {
            bail!("WebKit: WebKitWebDriver cannot set permissions (MiniBrowser denies them)");
        }
        let body = json!({"descriptor": {"name": name}, "state": state});
        self.call(reqwest::Method::POST, "/permissions", body).await.map(drop)
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

    /// The console's entries since the last call (level and message). Chromium's driver
    /// hands over the browser's own log, CSP violations included; elsewhere this reads
    /// what the page's `CONSOLE_HOOK` recorded (the page's own console calls), and fails
    /// on a page that did not run it.
    pub async fn console_log(&self) -> Result<Vec<(String, String)>> {
        if self.engine != Engine::Chromium {
            let text = self
                .script(
                    "const text = window.__gmsConsole;
                     if (typeof text !== 'string') return null;
                     window.__gmsConsole = '';
                     return text;",
                    json!([]),
                )
                .await?;
            let Some(text) = text.as_str() else {
                bail!("{}: console_log needs the page to run webdriver::CONSOLE_HOOK", self.engine)
            };
            return Ok(text
                .split('\u{0}')
                .filter_map(|entry| entry.split_once('\u{1}'))
                .map(|(level, message)| (level.to_owned(), message.to_owned()))
                .collect());
        }
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
    /// Content-Security-Policy), e.g. to record events from the very start (Chromium
    /// only: elsewhere the page itself runs such a script first).
    pub async fn on_new_document(&self, source: &str) -> Result<()> {
        self.chromium_only("on_new_document")?;
        self.cdp("Page.addScriptToEvaluateOnNewDocument", json!({"source": source})).await.map(drop)
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await.map(drop)
    }

    /// Runs a script (its body, with `arguments`) and returns its value (a promise's once
    /// it settles).
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
        let within = Duration::from_secs(seconds);
        until_every(what, within, Duration::from_millis(50), async || {
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

    /// Ends the session: the browser quits (its driver, display and profile go on drop).
    pub async fn close(self) -> Result<()> {
        let url = format!("{}/session/{}", self.driver, self.session);
        self.http.delete(url).send().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: the driver and the browser it started, whatever state a failed
        // test left them in. The display goes after them, with its field.
        if let Some(group) = self.driver_process.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A program named by `variable`, else `default`.
fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// chromedriver and its capabilities: headless Chromium in `profile`, a phone emulated
/// (a dark scheme is emulated once the session is open).
fn chromium(port: u16, profile: &Path, look: Look) -> (Command, Value) {
    let mut command = Command::new(program("CHROMEDRIVER", "chromedriver"));
    command.arg(format!("--port={port}"));
    let (width, height) = DESKTOP;
    let mut options = json!({"binary": program("CHROMIUM", "/usr/bin/chromium"), "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
        format!("--user-data-dir={}", profile.display()),
    ]});
    if let Some((width, height)) = look.phone {
        options["mobileEmulation"] = json!({"deviceMetrics": {
            "width": width, "height": height, "pixelRatio": 2.0, "touch": true
        }});
    }
    let capabilities = json!({
        "browserName": "chrome", "goog:chromeOptions": options,
        "goog:loggingPrefs": {"browser": "ALL"}
    });
    (command, capabilities)
}

/// geckodriver and its capabilities: headless Firefox on `profile`, whose toolbar may be
/// as narrow as a phone, its system dark if asked.
fn firefox(port: u16, profile: &Path, look: Look) -> Result<(Command, Value)> {
    let chrome = profile.join("chrome");
    std::fs::create_dir_all(&chrome)?;
    std::fs::write(
        chrome.join("userChrome.css"),
        ":root, #navigator-toolbox, #nav-bar, #TabsToolbar, #urlbar-container \
         { min-width: 0 !important; }\n",
    )?;
    let mut command = Command::new(program("GECKODRIVER", "geckodriver"));
    // BiDi's port would default to 9222 for every driver at once.
    command.args(["--port", &port.to_string(), "--websocket-port", "0"]);
    let mut capabilities = json!({
        "browserName": "firefox",
        "moz:firefoxOptions": {
            "binary": program("FIREFOX", "/usr/bin/firefox-esr"),
            "args": ["-headless", "-profile", profile.display().to_string()],
            "prefs": {
                // userChrome.css above.
                "toolkit.legacyUserProfileCustomizations.stylesheets": true,
                // Focus and blur as in a focused window, which headless has not.
                "focusmanager.testmode": true,
            },
        },
    });
    if look.dark {
        let prefs = &mut capabilities["moz:firefoxOptions"]["prefs"];
        prefs["ui.systemUsesDarkTheme"] = json!(1);
    }
    Ok((command, capabilities))
}

/// WebKitWebDriver and its capabilities: MiniBrowser on display `:number`, its data in
/// `profile`, full screen (so no toolbar: the window is the viewport), dark if asked.
fn webkit(port: u16, profile: &Path, number: u32, look: Look) -> (Command, Value) {
    let mut command = Command::new(program("WEBKIT_WEBDRIVER", "WebKitWebDriver"));
    command
        .arg(format!("--port={port}"))
        .env("DISPLAY", format!(":{number}"))
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        .env("HOME", profile)
        .env("XDG_CONFIG_HOME", profile.join("config"))
        .env("XDG_DATA_HOME", profile.join("data"))
        .env("XDG_CACHE_HOME", profile.join("cache"));
    let mut args = vec!["--automation", "--full-screen"];
    if look.dark {
        args.push("--dark-mode");
    }
    let capabilities = json!({
        "browserName": "MiniBrowser",
        "webkitgtk:browserOptions": {"binary": minibrowser(), "args": args},
    });
    (command, capabilities)
}

/// MiniBrowser: `MINIBROWSER`, else WebKitGTK 4.1's under /usr/lib/<arch>.
fn minibrowser() -> String {
    if let Ok(path) = std::env::var("MINIBROWSER") {
        return path;
    }
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("webkit2gtk-4.1").join("MiniBrowser"))
        .find(|path| path.exists())
        .map_or_else(|| "MiniBrowser".to_owned(), |path| path.display().to_string())
}

/// An Xvfb server on a free display, which it names once it accepts connections.
async fn xvfb() -> Result<(Child, u32)> {
    let program = program("XVFB", "Xvfb");
    let mut xvfb = Command::new(&program)
        .args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program} (apt install xvfb)"))?;
    let stdout = xvfb.stdout.take().context("Xvfb's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .context("Xvfb named no display within 20 s")??
        .context("Xvfb exited before it named its display")?;
    let number = line.trim().parse().with_context(|| format!("Xvfb's display: {line:?}"))?;
    Ok((xvfb, number))
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
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
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
