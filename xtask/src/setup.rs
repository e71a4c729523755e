//! Installs the toolchain pieces the tests and the demo need, skipping what is present.
//!
//! Everything installs from the package registries this project may reach: rustup for
//! the wasm32 target, crates.io for trunk and wasm-bindgen-cli, npm for binaryen's
//! wasm-opt (Debian's is too old and breaks the wasm), terser (which minifies the widget's
//! JavaScript in release builds: `frontend/minify.sh`), axe-core and Lighthouse (the
//! accessibility checkers of the browser tests), apt for Chromium, chromedriver, redis-server, promtool
//! and systemd-analyze.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run::{done, output, status, step};
use crate::workspace;

const TRUNK_VERSION: &str = "0.21.14";
const BINARYEN_VERSION: &str = "132";
/// terser, the JavaScript minifier of trunk's post-build hook.
const TERSER_VERSION: &str = "5.51.4";
/// axe-core, the accessibility checker the browser tests inject into the page.
const AXE_VERSION: &str = "4.10.2";
/// Lighthouse, whose accessibility category the browser tests require at 100. 12.2.3 runs
/// with Debian's Chromium.
const LIGHTHOUSE_VERSION: &str = "12.2.3";
/// What must be on the machine: a binary on PATH, or a file (an absolute path), and the
/// Debian package that brings it.
const APT_PACKAGES: [(&str, &str); 7] = [
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("redis-server", "redis-server"),
    // promtool checks the relay's /metrics and the alert rules.
    ("promtool", "prometheus"),
    // systemd-analyze verifies the service unit.
    ("systemd-analyze", "systemd"),
    // OpenSSL for the tests' independent check of Web Push (the `ece` and `openssl` crates).
    ("pkg-config", "pkg-config"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
];

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

/// Installs whatever is missing; prints one line per tool.
pub(crate) fn ensure_all() -> Result<Tools> {
    let started = step("setup: checking tools");
    let mut installed = Vec::new();
    if ensure_wasm_target()? {
        installed.push("wasm32 target");
    }
    if ensure_cargo_tool(
        "trunk",
        &format!("trunk {TRUNK_VERSION}"),
        &["trunk", "--version", TRUNK_VERSION, "--locked"],
    )? {
        installed.push("trunk");
    }
    let bindgen = wasm_bindgen_version()?;
    if ensure_cargo_tool(
        "wasm-bindgen",
        &format!("wasm-bindgen {bindgen}"),
        &["wasm-bindgen-cli", "--version", &bindgen],
    )? {
        installed.push("wasm-bindgen-cli");
    }
    let binaryen_bin =
        cache_dir(&format!("binaryen-{BINARYEN_VERSION}"))?.join("node_modules").join(".bin");
    if ensure_wasm_opt(&binaryen_bin)? {
        installed.push("wasm-opt");
    }
    let terser_prefix = cache_dir(&format!("terser-{TERSER_VERSION}"))?;
    let terser_bin = terser_prefix.join("node_modules").join(".bin");
    if ensure_npm_package(
        &terser_prefix,
        &terser_bin.join("terser"),
        &format!("terser@{TERSER_VERSION}"),
    )? {
        installed.push("terser");
    }
    if ensure_apt_packages()? {
        installed.push("apt packages");
    }
    let axe_prefix = cache_dir(&format!("axe-core-{AXE_VERSION}"))?;
    let axe_js = axe_prefix.join("node_modules").join("axe-core").join("axe.min.js");
    if ensure_npm_package(&axe_prefix, &axe_js, &format!("axe-core@{AXE_VERSION}"))? {
        installed.push("axe-core");
    }
    let lighthouse_prefix = cache_dir(&format!("lighthouse-{LIGHTHOUSE_VERSION}"))?;
    let lighthouse = lighthouse_prefix.join("node_modules").join(".bin").join("lighthouse");
    if ensure_npm_package(
        &lighthouse_prefix,
        &lighthouse,
        &format!("lighthouse@{LIGHTHOUSE_VERSION}"),
    )? {
        installed.push("lighthouse");
    }
    let path = format!(
        "{}:{}:{}",
        binaryen_bin.display(),
        terser_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    if installed.is_empty() {
        println!("    nothing to install: every tool is present");
    } else {
        println!("    installed: {}", installed.join(", "));
    }
    done("setup", started, true);
    Ok(Tools { path, axe_js, lighthouse })
}

fn ensure_wasm_target() -> Result<bool> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        println!("    wasm32-unknown-unknown: present");
        return Ok(false);
    }
    status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    Ok(true)
}

fn ensure_cargo_tool(binary: &str, expected: &str, install: &[&str]) -> Result<bool> {
    let found = output(Command::new(binary).arg("--version")).unwrap_or_default();
    if found.trim().starts_with(expected) {
        println!("    {binary}: {}", found.trim());
        return Ok(false);
    }
    println!("    {binary}: installing {expected} (found {:?})", found.trim());
    // trunk's release profile asks for fat LTO in one codegen unit: ten minutes on two
    // cores for a build tool whose speed does not matter here.
    status(
        Command::new("cargo")
            .arg("install")
            .args(install)
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    )?;
    Ok(true)
}

/// cargo-fuzz, for `cargo xtask fuzz` (only asked for where nightly exists).
pub(crate) fn ensure_cargo_fuzz() -> Result<bool> {
    ensure_cargo_tool(
        "cargo-fuzz",
        "cargo-fuzz 0.13",
        &["cargo-fuzz", "--version", "0.13.2", "--locked"],
    )
}

/// The wasm-bindgen version pinned in Cargo.lock: the CLI must match it exactly.
pub(crate) fn wasm_bindgen_version() -> Result<String> {
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

/// A directory of ours under the user's cache, for tools installed from npm.
fn cache_dir(name: &str) -> Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(cache.join("gms-async-chat").join(name))
}

/// Installs an npm package under `prefix` unless `marker` (one of its files) exists.
fn ensure_npm_package(
    prefix: &std::path::Path,
    marker: &std::path::Path,
    spec: &str,
) -> Result<bool> {
    if marker.exists() {
        println!("    {spec}: present");
        return Ok(false);
    }
    std::fs::create_dir_all(prefix)?;
    println!("    {spec}: installing from npm");
    status(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(prefix)
            .arg(spec),
    )?;
    Ok(true)
}

fn ensure_wasm_opt(bin: &std::path::Path) -> Result<bool> {
    let wasm_opt = bin.join("wasm-opt");
    let found = output(Command::new(&wasm_opt).arg("--version")).unwrap_or_default();
    if found.contains(&format!("version {BINARYEN_VERSION}")) {
        println!("    wasm-opt: {}", found.trim());
        return Ok(false);
    }
    let prefix = bin.parent().and_then(|p| p.parent()).context("binaryen prefix")?;
    std::fs::create_dir_all(prefix)?;
    println!("    wasm-opt: installing binaryen@{BINARYEN_VERSION} from npm");
    status(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(prefix)
            .arg(format!("binaryen@{BINARYEN_VERSION}")),
    )?;
    Ok(true)
}

fn ensure_apt_packages() -> Result<bool> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(probe, _)| match probe.strip_prefix('/') {
            Some(_) => !std::path::Path::new(probe).exists(),
            None => output(Command::new("which").arg(probe)).is_none(),
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        println!(
            "    chromium, chromedriver, redis-server, promtool, systemd-analyze, OpenSSL: present"
        );
        return Ok(false);
    }
    let is_root = output(Command::new("id").arg("-u")).is_some_and(|id| id.trim() == "0");
    if !is_root {
        bail!(
            "missing Debian packages: {}; install them with `sudo apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    println!("    apt: installing {}", missing.join(" "));
    status(Command::new("apt-get").args(["update", "-q"]))?;
    status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )?;
    Ok(true)
}
