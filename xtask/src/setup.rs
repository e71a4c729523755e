//! Installs the toolchain pieces the tests and the demo need, skipping what is present.
//!
//! [`table`] lists every tool, one row each: its name, how to see it is present at the
//! version we pin, and the one way it installs. Everything installs from the package
//! registries this project may reach: rustup for the wasm32 target, crates.io for
//! wasm-bindgen-cli, geckodriver (Firefox's WebDriver), cargo-fuzz and trunk (only for the
//! development loop, `trunk serve`: `cargo xtask setup` installs it, the tests need it
//! not), npm for binaryen's wasm-opt (Debian's is too old and breaks the wasm), terser
//! (which minifies the widget's JavaScript in its release build, `xtask/src/widget.rs`),
//! axe-core and Lighthouse (the
//! accessibility checkers of the browser tests), apt for the browser tests' engines
//! (Chromium and chromedriver, Firefox ESR, WebKitGTK's WebKitWebDriver with its
//! MiniBrowser, and Xvfb, the display MiniBrowser needs), redis-server, promtool,
//! systemd-analyze and OpenSSL's headers.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run::{done, output, status, step};
use crate::workspace;

const TRUNK_VERSION: &str = "0.21.14";
/// geckodriver, Firefox's WebDriver for the browser tests; 0.37 drives Firefox ESR 153.
const GECKODRIVER_VERSION: &str = "0.37.1";
/// terser, the JavaScript minifier of the widget's release build.
const TERSER_VERSION: &str = "5.51.4";
/// axe-core, the accessibility checker the browser tests inject into the page.
const AXE_VERSION: &str = "4.10.2";
/// Lighthouse, whose accessibility category the browser tests require at 100. 12.2.3 runs
/// with Debian's Chromium.
const LIGHTHOUSE_VERSION: &str = "12.2.3";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The static relay's target (`deploy.rs`).
pub(crate) const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// kubernetes-validate, whose schemas go up to Kubernetes 1.37.
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// Where the tools live and how to put them on PATH.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// PATH with the npm-installed wasm-opt and terser first.
    pub(crate) path: String,
    /// `axe.min.js` of axe-core, for the browser tests (`AXE_JS`).
    pub(crate) axe_js: PathBuf,
    /// Lighthouse's command line, for the browser tests (`LIGHTHOUSE`).
    pub(crate) lighthouse: PathBuf,
}

impl Tools {
    /// A command with the tools' PATH.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", &self.path);
        cmd
    }
}

/// Which tasks want a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// Every task: [`ensure_all`].
    Always,
    /// Only fuzzing, which runs where a nightly toolchain exists: [`ensure_cargo_fuzz`].
    Fuzzing,
    /// Only the development loop (`trunk serve`): [`ensure_development`].
    Development,
}

/// One row of the table.
#[derive(Debug)]
struct Tool {
    /// What its line and the summary call it.
    name: String,
    wanted: Wanted,
    present: Probe,
    install: Install,
}

/// How to see that a tool is present.
#[derive(Debug)]
enum Probe {
    /// `rustup target list --installed` lists the target.
    RustTarget(&'static str),
    /// `<program> --version` succeeds and prints a line starting with `expected`, the
    /// version we pin; the line is what the tool's line shows.
    Version { program: PathBuf, expected: String },
    /// The file exists: a header, or a file of an npm package, whose directory is named
    /// after its version (see [`Npm`]).
    File(PathBuf),
    /// `which` finds the binary on PATH.
    OnPath(&'static str),
}

/// The one way a tool installs.
#[derive(Debug)]
enum Install {
    /// `rustup target add`.
    RustTarget(&'static str),
    /// `cargo install <krate> --version <version>`, with `--locked` if `locked`.
    Cargo { krate: &'static str, version: String, locked: bool },
    /// `npm install` into the package's own directory.
    Npm(Npm),
    /// `pip install <package>==<version>` for the user, into the Python on PATH.
    Pip { package: &'static str, version: &'static str },
    /// A Debian package. Every missing one of a run of apt rows goes into one `apt-get
    /// install`, after one `apt-get update`.
    Apt(&'static str),
}

/// An npm package at its pinned version, installed under a cache directory named after
/// both, so a file of it being there proves the version, and a new pin installs beside the
/// old one instead of being mistaken for it.
#[derive(Debug, Clone)]
struct Npm {
    spec: String,
    prefix: PathBuf,
}

impl Npm {
    fn new(package: &str, version: &str) -> Result<Self> {
        Ok(Self {
            spec: format!("{package}@{version}"),
            prefix: cache_dir(&format!("{package}-{version}"))?,
        })
    }

    /// A file of the installed packages, relative to `node_modules`.
    fn file(&self, relative: &str) -> PathBuf {
        self.prefix.join("node_modules").join(relative)
    }

    /// The directory of the package's commands.
    fn bin(&self) -> PathBuf {
        self.file(".bin")
    }
}

/// Every tool in the order it is checked, and the [`Tools`] that point at them.
fn table() -> Result<(Vec<Tool>, Tools)> {
    let binaryen_version = binaryen_version()?;
    let binaryen = Npm::new("binaryen", &binaryen_version)?;
    let terser = Npm::new("terser", TERSER_VERSION)?;
    let axe = Npm::new("axe-core", AXE_VERSION)?;
    let lighthouse = Npm::new("lighthouse", LIGHTHOUSE_VERSION)?;
    let tools = Tools {
        path: format!(
            "{}:{}:{}",
            binaryen.bin().display(),
            terser.bin().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        axe_js: axe.file("axe-core/axe.min.js"),
        lighthouse: lighthouse.bin().join("lighthouse"),
    };
    let bindgen = wasm_bindgen_version()?;
    let row = |name: &str, present, install| Tool {
        name: name.to_owned(),
        wanted: Wanted::Always,
        present,
        install,
    };
    let npm = |npm: &Npm, present| Tool {
        name: npm.spec.clone(),
        wanted: Wanted::Always,
        present: Probe::File(present),
        install: Install::Npm(npm.clone()),
    };
    let apt = |name: &str, present, package| row(name, present, Install::Apt(package));
    let table = vec![
        row(WASM_TARGET, Probe::RustTarget(WASM_TARGET), Install::RustTarget(WASM_TARGET)),
        Tool {
            name: "trunk".to_owned(),
            wanted: Wanted::Development,
            present: Probe::version("trunk", &format!("trunk {TRUNK_VERSION}")),
            install: Install::Cargo {
                krate: "trunk",
                version: TRUNK_VERSION.to_owned(),
                locked: true,
            },
        },
        row(
            "wasm-bindgen",
            Probe::version("wasm-bindgen", &format!("wasm-bindgen {bindgen}")),
            Install::Cargo { krate: "wasm-bindgen-cli", version: bindgen, locked: false },
        ),
        row(
            "geckodriver",
            Probe::version("geckodriver", &format!("geckodriver {GECKODRIVER_VERSION}")),
            Install::Cargo {
                krate: "geckodriver",
                version: GECKODRIVER_VERSION.to_owned(),
                locked: true,
            },
        ),
        row(
            "wasm-opt",
            Probe::Version {
                program: binaryen.bin().join("wasm-opt"),
                expected: format!("wasm-opt version {binaryen_version}"),
            },
            Install::Npm(binaryen),
        ),
        npm(&terser, terser.bin().join("terser")),
        // The browser tests' three engines, each with its WebDriver (Firefox's is
        // geckodriver, above); MiniBrowser has no headless mode and draws on Xvfb.
        apt("chromium", Probe::OnPath("chromium"), "chromium"),
        apt("chromedriver", Probe::OnPath("chromedriver"), "chromium-driver"),
        apt("firefox-esr", Probe::OnPath("firefox-esr"), "firefox-esr"),
        apt("WebKitWebDriver", Probe::OnPath("WebKitWebDriver"), "webkit2gtk-driver"),
        apt("Xvfb", Probe::OnPath("Xvfb"), "xvfb"),
        // redis-server's package brings redis-cli, which makes the tests' Redis Cluster;
        // Sentinel is redis-server's own `--sentinel` mode.
        apt("redis-server", Probe::OnPath("redis-server"), "redis-server"),
        // promtool checks the relay's /metrics and the alert rules.
        apt("promtool", Probe::OnPath("promtool"), "prometheus"),
        // systemd-analyze verifies the service unit.
        apt("systemd-analyze", Probe::OnPath("systemd-analyze"), "systemd"),
        // OpenSSL for the tests' independent check of Web Push (the `ece` and `openssl`
        // crates).
        apt("pkg-config", Probe::OnPath("pkg-config"), "pkg-config"),
        apt(
            "OpenSSL headers",
            Probe::File(PathBuf::from("/usr/include/openssl/ssl.h")),
            "libssl-dev",
        ),
        // The relay as a static binary for its FROM-scratch image: the musl target, and
        // musl-gcc for the crates that compile C.
        row(MUSL_TARGET, Probe::RustTarget(MUSL_TARGET), Install::RustTarget(MUSL_TARGET)),
        apt("musl-gcc", Probe::OnPath("musl-gcc"), "musl-tools"),
        // kubernetes-validate checks the Kubernetes manifests against the schemas it ships,
        // offline.
        row(
            "kubernetes-validate",
            Probe::version("kubernetes-validate", KUBERNETES_VALIDATE_VERSION),
            Install::Pip { package: "kubernetes-validate", version: KUBERNETES_VALIDATE_VERSION },
        ),
        npm(&axe, tools.axe_js.clone()),
        npm(&lighthouse, tools.lighthouse.clone()),
        Tool {
            name: "cargo-fuzz".to_owned(),
            wanted: Wanted::Fuzzing,
            // Any 0.13 will do; a fresh install gets 0.13.2.
            present: Probe::version("cargo-fuzz", "cargo-fuzz 0.13"),
            install: Install::Cargo {
                krate: "cargo-fuzz",
                version: "0.13.2".to_owned(),
                locked: true,
            },
        },
    ];
    Ok((table, tools))
}

/// Installs whatever every task needs and is missing; prints one line per tool.
pub(crate) fn ensure_all() -> Result<Tools> {
    let started = step("setup: checking tools");
    let (table, tools) = table()?;
    let installed = ensure(&table, Wanted::Always)?;
    if installed.is_empty() {
        println!("    nothing to install: every tool is present");
    } else {
        println!("    installed: {}", installed.join(", "));
    }
    done("setup", started, true);
    Ok(tools)
}

/// Everything [`ensure_all`] installs, and trunk for the development loop: `cargo xtask
/// setup`.
pub(crate) fn ensure_development() -> Result<Tools> {
    let tools = ensure_all()?;
    ensure(&table()?.0, Wanted::Development)?;
    Ok(tools)
}

/// cargo-fuzz, for `cargo xtask fuzz` (only asked for where nightly exists).
pub(crate) fn ensure_cargo_fuzz() -> Result<()> {
    ensure(&table()?.0, Wanted::Fuzzing).map(drop)
}

/// Walks the rows `wanted` asks for: prints each present one and installs each missing one;
/// answers the names of those it installed.
fn ensure(table: &[Tool], wanted: Wanted) -> Result<Vec<&str>> {
    let mut installed = Vec::new();
    // The missing rows of a run of apt rows, installed together when the run ends: one
    // `apt-get update` for them all.
    let mut apt: Vec<&Tool> = Vec::new();
    for tool in table.iter().filter(|tool| tool.wanted == wanted) {
        let is_apt = matches!(tool.install, Install::Apt(_));
        if !is_apt {
            installed.extend(install_apt_rows(&mut apt)?);
        }
        match tool.present.look() {
            Seen::Present(shown) => println!("    {}: {shown}", tool.name),
            Seen::Missing(_) if is_apt => apt.push(tool),
            Seen::Missing(found) => {
                tool.install.run(&tool.name, &found)?;
                installed.push(tool.name.as_str());
            }
        }
    }
    installed.extend(install_apt_rows(&mut apt)?);
    Ok(installed)
}

/// Installs the packages of the apt rows in `rows` in one go and empties it; answers the
/// rows' names.
fn install_apt_rows<'t>(rows: &mut Vec<&'t Tool>) -> Result<Vec<&'t str>> {
    let rows = std::mem::take(rows);
    let packages: Vec<&str> = rows
        .iter()
        .filter_map(|tool| match tool.install {
            Install::Apt(package) => Some(package),
            _ => None,
        })
        .collect();
    if !packages.is_empty() {
        install_apt(&packages)?;
    }
    Ok(rows.iter().map(|tool| tool.name.as_str()).collect())
}

/// What a probe saw.
#[derive(Debug)]
enum Seen {
    /// Present; what the tool's line shows (its version where the probe reads one).
    Present(String),
    /// Missing, or at another version: what was found instead.
    Missing(String),
}

impl Probe {
    fn version(program: &str, expected: &str) -> Self {
        Self::Version { program: PathBuf::from(program), expected: expected.to_owned() }
    }

    fn look(&self) -> Seen {
        let present = || Seen::Present("present".to_owned());
        let missing = || Seen::Missing(String::new());
        match self {
            Self::RustTarget(target) => {
                let installed =
                    output(Command::new("rustup").args(["target", "list", "--installed"]))
                        .unwrap_or_default();
                let listed = installed.lines().any(|l| l.trim() == *target);
                if listed { present() } else { missing() }
            }
            Self::Version { program, expected } => {
                let found = output(Command::new(program).arg("--version")).unwrap_or_default();
                let found = found.trim().to_owned();
                if found.starts_with(expected.as_str()) {
                    Seen::Present(found)
                } else {
                    Seen::Missing(found)
                }
            }
            Self::File(path) => {
                if path.exists() {
                    present()
                } else {
                    missing()
                }
            }
            Self::OnPath(binary) => match output(Command::new("which").arg(binary)) {
                Some(_) => present(),
                None => missing(),
            },
        }
    }
}

impl Install {
    /// Installs the tool called `name`, of which `found` was found instead.
    fn run(&self, name: &str, found: &str) -> Result<()> {
        match self {
            Self::RustTarget(target) => {
                status(Command::new("rustup").args(["target", "add", target]))
            }
            Self::Cargo { krate, version, locked } => {
                println!("    {name}: installing {krate} {version} (found {found:?})");
                let mut cargo = Command::new("cargo");
                cargo.args(["install", krate, "--version", version]);
                if *locked {
                    cargo.arg("--locked");
                }
                // trunk's release profile asks for fat LTO in one codegen unit: ten minutes
                // on two cores for a build tool whose speed does not matter here.
                cargo
                    .env("CARGO_PROFILE_RELEASE_LTO", "false")
                    .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16");
                status(&mut cargo)
            }
            Self::Npm(npm) => {
                std::fs::create_dir_all(&npm.prefix)?;
                println!("    {name}: installing {} from npm", npm.spec);
                status(
                    Command::new("npm")
                        .args(["install", "--no-audit", "--no-fund", "--prefix"])
                        .arg(&npm.prefix)
                        .arg(&npm.spec),
                )
            }
            Self::Pip { package, version } => {
                println!("    {name}: installing {package} {version} from PyPI (found {found:?})");
                status(
                    Command::new("python3")
                        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                        .arg(format!("{package}=={version}")),
                )?;
                // Under pyenv the new command is reached through a shim that only
                // `pyenv rehash` makes (`python3 -m pip` does not run pip's rehash hook);
                // without pyenv there is nothing to do.
                if output(Command::new("pyenv").arg("--version")).is_some() {
                    status(Command::new("pyenv").arg("rehash"))?;
                }
                Ok(())
            }
            Self::Apt(package) => install_apt(&[package]),
        }
    }
}

/// Installs Debian packages as root; otherwise names them and what to run.
fn install_apt(packages: &[&str]) -> Result<()> {
    let is_root = output(Command::new("id").arg("-u")).is_some_and(|id| id.trim() == "0");
    if !is_root {
        bail!(
            "missing Debian packages: {}; install them with `sudo apt-get install {}`",
            packages.join(", "),
            packages.join(" ")
        );
    }
    println!("    apt: installing {}", packages.join(" "));
    status(Command::new("apt-get").args(["update", "-q"]))?;
    status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages),
    )
}

/// The wasm-bindgen version pinned in Cargo.lock: the CLI must match it exactly.
fn wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(workspace::root()?.join("Cargo.lock"))
        .context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(version.trim_matches('"').to_owned());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

/// The binaryen version Trunk.toml pins, the one place it is written: trunk builds offline,
/// so it uses a wasm-opt on PATH only at exactly that version, and ours must follow it.
fn binaryen_version() -> Result<String> {
    let trunk = std::fs::read_to_string(workspace::root()?.join("Trunk.toml"))
        .context("reading Trunk.toml")?;
    binaryen_pin(&trunk)
        .map(str::to_owned)
        .context("Trunk.toml pins no binaryen: no wasm_opt = \"version_N\"")
}

/// `N` of Trunk.toml's `wasm_opt = "version_N"`.
fn binaryen_pin(trunk_toml: &str) -> Option<&str> {
    trunk_toml.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        (key.trim() == "wasm_opt").then(|| value.strip_prefix("version_"))?
    })
}

/// A directory of ours under the user's cache, for tools installed from npm.
fn cache_dir(name: &str) -> Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(cache.join("gms-async-chat").join(name))
}

#[cfg(test)]
mod tests {
    use super::{binaryen_pin, binaryen_version, wasm_bindgen_version};

    #[test]
    fn reads_the_binaryen_pin_of_trunk_toml() {
        let trunk =
            "[build]\ndist = \"target/widget\"\n\n[tools]\n# a comment\nwasm_opt = \"version_7\"\n";
        assert_eq!(binaryen_pin(trunk), Some("7"));
        assert_eq!(binaryen_pin("[tools]\nwasm_opt = \"7\"\n"), None);
        assert_eq!(binaryen_pin("[tools]\nwasm_bindgen = \"version_7\"\n"), None);
    }

    #[test]
    fn the_workspace_has_both_pins() {
        assert!(binaryen_version().is_ok_and(|v| !v.is_empty()));
        assert!(wasm_bindgen_version().is_ok_and(|v| !v.is_empty()));
    }
}
