//! The widget's release build into `target/widget`: cargo, the splitter, wasm-bindgen,
//! wasm-opt and terser, in that order. Trunk cannot run a step between cargo and
//! wasm-bindgen, and code splitting needs one (issue 37): the splitter moves the code only
//! the split points (`frontend/src/later.rs`) reach into modules of their own, which the
//! widget fetches on their first use. `trunk serve` stays the development loop and builds
//! the widget whole (without `--cfg gms_split`, a split point is a plain call).
//!
//! Every file of one build carries one build id (a hash of the linked wasm), not each its
//! own content hash: the glue and the split loader import each other by name. The relay
//! serves every name with a 16-hex-digit part as immutable.

use std::hash::Hasher as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::run::status;
use crate::setup::Tools;
use crate::workspace;

/// Where the release widget is written.
pub(crate) fn dist() -> Result<PathBuf> {
    Ok(workspace::root()?.join("target").join("widget"))
}

/// The cargo target directory of the split build: its own, because its flags differ from
/// trunk's and clippy's wasm builds, which would otherwise rebuild each other's crates.
fn target_dir() -> Result<PathBuf> {
    Ok(workspace::root()?.join("target").join("split"))
}

/// The linked wasm the split build starts from (with relocations, for the splitter).
pub(crate) fn linked_wasm() -> Result<PathBuf> {
    Ok(target_dir()?.join("wasm32-unknown-unknown").join("wasm-release").join("frontend.wasm"))
}

/// The release build of the widget into [`dist`].
pub(crate) fn build(tools: &Tools) -> Result<()> {
    let root = workspace::root()?;
    status(
        tools
            .command("cargo")
            .current_dir(&root)
            .args(["build", "--profile", "wasm-release", "--target", "wasm32-unknown-unknown"])
            .args(["-p", "frontend", "--bin", "frontend"])
            .env("CARGO_TARGET_DIR", target_dir()?)
            // The splitter needs the link's relocations; `gms_split` makes the split points
            // real (later.rs).
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
                "-Clink-arg=--emit-relocs --cfg gms_split",
            ),
    )?;
    let linked = std::fs::read(linked_wasm()?).context("reading the linked wasm")?;
    let id = build_id(&linked);
    let stem = format!("frontend-{id}");
    let work = target_dir()?.join("stage");
    let staging = root.join("target").join("widget.staging");
    for dir in [&work, &staging] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    // The split: the main module (for wasm-bindgen), one module per split point and per
    // code they share, and the JS that loads them.
    let main = work.join("main.wasm");
    let glue = format!("./{stem}.js");
    let loader = format!("./{stem}-split.js");
    let mut options = wasm_split_cli_support::Options::new(&linked);
    options.output_dir = &work;
    options.main_out_path = &main;
    options.main_module = &glue;
    options.link_name = &loader;
    let split = wasm_split_cli_support::transform(options)
        .map_err(|e| anyhow::anyhow!("splitting the widget: {e:?}"))?;

    status(
        tools
            .command("wasm-bindgen")
            .arg(&main)
            .args(["--target", "web", "--keep-lld-exports", "--no-typescript", "--out-name", &stem])
            .arg("--out-dir")
            .arg(&staging),
    )?;
    let mut split_loader = std::fs::read_to_string(work.join(&loader))
        .with_context(|| format!("the splitter wrote no {loader}"))?;
    for module in &split.split_modules {
        let name = file_name(module)?;
        let renamed = format!("{stem}-{name}");
        let literal = format!("\"./{name}\"");
        if !split_loader.contains(&literal) {
            bail!("{loader} does not name {name}");
        }
        split_loader = split_loader.replace(&literal, &format!("\"./{renamed}\""));
        std::fs::copy(module, staging.join(&renamed))?;
    }
    std::fs::write(staging.join(&loader), split_loader)?;

    // wasm-opt each module: the split modules carry no target_features section, so the
    // features Rust's wasm32 target enables are named.
    for entry in std::fs::read_dir(&staging)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            status(
                tools
                    .command("wasm-opt")
                    .arg("-Oz")
                    .args(WASM_FEATURES)
                    .arg(&path)
                    .arg("-o")
                    .arg(&path),
            )?;
        }
    }
    for js in [glue.as_str(), loader.as_str()] {
        let path = staging.join(js);
        status(
            tools
                .command("terser")
                .arg(&path)
                .args(["--module", "--compress", "--mangle", "--output"])
                .arg(&path),
        )?;
    }

    // The loader template, its styles and texts, and the demo page, as trunk copied them.
    let frontend = root.join("frontend");
    let page = std::fs::read_to_string(root.join("index.html"))?;
    let page: Vec<&str> = page.lines().filter(|line| !line.contains("data-trunk")).collect();
    std::fs::write(staging.join("index.html"), page.join("\n") + "\n")?;
    let css = std::fs::read_to_string(frontend.join("src").join("widget.css"))?;
    std::fs::write(staging.join("widget.css"), crate::css::compact(&css))?;
    std::fs::copy(frontend.join("widget.d.ts"), staging.join("widget.d.ts"))?;
    let template = staging.join("loader.js");
    std::fs::copy(frontend.join("loader.js"), &template)?;
    // The relay fills the loader's '__GMS_CHAT_…__' placeholders: they keep their quotes.
    status(
        tools
            .command("terser")
            .arg(&template)
            .args(["--compress", "--mangle", "--format", "quote_style=1", "--output"])
            .arg(&template),
    )?;
    for dir in ["texts", "emoji"] {
        std::fs::create_dir_all(staging.join(dir))?;
        for entry in std::fs::read_dir(frontend.join(dir))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json" || e == "txt") {
                std::fs::copy(&path, staging.join(dir).join(file_name(&path)?))?;
            }
        }
    }

    let dist = dist()?;
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::rename(&staging, &dist)
        .with_context(|| format!("moving the build to {}", dist.display()))
}

/// The wasm features rustc's wasm32-unknown-unknown target enables by default.
const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Sixteen hex digits that change with the linked wasm.
fn build_id(wasm: &[u8]) -> String {
    // SipHash with fixed keys: the same bytes give the same id on every machine.
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(wasm);
    format!("{:016x}", hasher.finish())
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no file name", path.display()))
}
