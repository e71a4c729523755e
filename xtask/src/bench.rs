//! `cargo xtask bench`: the release relay and widget, then the system benchmarks
//! (`tests/benches/system`), which print a table and write `target/bench/results.json`.

use anyhow::Result;

use crate::build::release_builds;
use crate::run::status;
use crate::{setup, workspace};

pub(crate) fn run(args: &[String]) -> Result<()> {
    // `cargo xtask bench -- --only push` passes the `--` along; the benchmark takes the rest.
    let args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    let tools = setup::ensure_all()?;
    let root = workspace::root()?;
    release_builds(&tools, &[])?;
    let target = root.join("target");
    status(
        tools
            .command("cargo")
            .current_dir(&root)
            .args(["bench", "-p", "system-tests", "--bench", "system", "--"])
            .args(args)
            .env("WIDGET_DIST", target.join("widget"))
            // The first open's module as the splitter left it, before wasm-bindgen and
            // wasm-opt, names still in it.
            .env("WIDGET_WASM", target.join("split").join("stage").join("main.wasm"))
            .env("RELAY_BIN", target.join("release").join("relay")),
    )
}
