//! The relay serving the widget to other sites: `/widget.js` rendered from the build (the
//! real loader template and styles, a stand-in wasm), with the headers a page on another
//! origin needs, compressed with gzip or brotli, and a clear error for an incomplete build.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use reqwest::header::{ACCEPT_ENCODING, HeaderMap};

use crate::harness::{Options, System, scratch_dir};

const HASH: &str = "0123456789abcdef";
/// A previous build an operator keeps for pages that loaded the old loader.
const OLD_HASH: &str = "fedcba9876543210";

/// A build as trunk lays it out, with the repository's loader and styles, next to the
/// previous build's files.
fn build() -> Result<PathBuf> {
    let dir = scratch_dir("widget-build")?;
    for name in [format!("frontend-{OLD_HASH}.js"), format!("frontend-{OLD_HASH}_bg.wasm")] {
        std::fs::write(dir.join(name), "old")?;
    }
    // Coarse file-system clocks: the new build must be seen as later.
    let old = std::fs::File::open(dir.join(format!("frontend-{OLD_HASH}_bg.wasm")))?;
    old.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("frontend/loader.js"), dir.join("loader.js"))?;
    std::fs::copy(repo.join("frontend/src/widget.css"), dir.join("widget.css"))?;
    std::fs::create_dir_all(dir.join("texts"))?;
    std::fs::copy(repo.join("frontend/texts/de.json"), dir.join("texts/de.json"))?;
    std::fs::write(dir.join(format!("frontend-{HASH}.js")), "export default 1;\n".repeat(300))?;
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend(std::iter::repeat_n(0_u8, 8000));
    std::fs::write(dir.join(format!("frontend-{HASH}_bg.wasm")), wasm)?;
    Ok(dir)
}

async fn get(url: &str, encoding: &str) -> Result<(u16, HeaderMap, Vec<u8>)> {
    let response = reqwest::Client::new().get(url).header(ACCEPT_ENCODING, encoding).send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn the_loader_and_the_build_are_served_for_pages_on_other_origins() -> Result<()> {
    let dist = build()?;
    let dist = dist.to_string_lossy();
    let options = Options::sim(&[]).relay(&[
        "--static-dir",
        &dist,
        "--widget-gms-url",
        "https://gms.example",
    ]);
    let system = System::start(options).await?;
    let base = &system.relay_url;

    let (status, headers, body) = get(&format!("{base}/widget.js"), "gzip").await?;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(header(&headers, "cache-control"), "public, max-age=300", "a stable address");
    let mut loader = String::new();
    flate2::read::GzDecoder::new(body.as_slice()).read_to_string(&mut loader)?;
    assert!(loader.contains(&format!(r#"var JS = "frontend-{HASH}.js";"#)), "{loader}");
    assert!(
        loader.contains(&format!(r#"var WASM = "frontend-{HASH}_bg.wasm";"#)),
        "the newest build"
    );
    assert!(loader.contains(r#"var GMS = "https://gms.example";"#));
    assert!(loader.contains(".gc-launcher"), "the styles travel with the loader");
    assert!(!loader.contains("__GMS_CHAT_"), "every placeholder filled");

    for (file, mime) in [
        (format!("frontend-{HASH}_bg.wasm"), "application/wasm"),
        (format!("frontend-{HASH}.js"), "text/javascript"),
    ] {
        let (status, headers, body) = get(&format!("{base}/{file}"), "br").await?;
        assert_eq!(status, 200, "{file}");
        assert_eq!(header(&headers, "content-type"), mime, "{file}");
        assert_eq!(header(&headers, "content-encoding"), "br", "{file}");
        assert!(body.len() < 2000, "{file}: {} bytes compressed", body.len());
        assert_eq!(header(&headers, "cache-control"), "public, max-age=31536000, immutable");
        assert_eq!(header(&headers, "access-control-allow-origin"), "*", "{file}: CORS");
        assert_eq!(header(&headers, "cross-origin-resource-policy"), "cross-origin", "{file}");
        assert_eq!(header(&headers, "timing-allow-origin"), "*", "{file}");
    }

    // A language file is fetched with the wasm: cached like the loader, which names no hash.
    let (status, headers, _) = get(&format!("{base}/texts/de.json"), "gzip").await?;
    assert_eq!((status, header(&headers, "cache-control")), (200, "public, max-age=300"));
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "access-control-allow-origin"), "*");

    system.stop().await
}

#[tokio::test]
async fn an_incomplete_build_is_named_in_the_error() -> Result<()> {
    let dist = build()?;
    for hash in [HASH, OLD_HASH] {
        std::fs::remove_file(dist.join(format!("frontend-{hash}_bg.wasm")))?;
    }
    let system =
        System::start(Options::sim(&[]).relay(&["--static-dir", &dist.to_string_lossy()])).await?;
    let (status, _, body) = get(&format!("{}/widget.js", system.relay_url), "identity").await?;
    assert_eq!(status, 500);
    let body = String::from_utf8(body).context("a JSON error")?;
    assert!(body.contains("widget_not_built") && body.contains("_bg.wasm"), "{body}");
    system.stop().await
}

#[tokio::test]
async fn errors_are_never_cached_and_the_demo_page_is_served_only_when_asked() -> Result<()> {
    let dist = build()?;
    std::fs::write(dist.join("index.html"), "<!doctype html><title>demo</title>")?;
    let dir = dist.to_string_lossy();
    let production = System::start(Options::sim(&[]).relay(&["--static-dir", &dir])).await?;
    let base = &production.relay_url;
    // A hashed name from another build (a rolling deploy behind a CDN) and a missing file.
    for path in ["/frontend-aaaaaaaaaaaaaaaa_bg.wasm", "/nothing.js", "/", "/index.html"] {
        let (status, headers, _) = get(&format!("{base}{path}"), "identity").await?;
        assert_eq!(status, 404, "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-store", "{path}");
    }
    production.stop().await?;
    let demo =
        System::start(Options::sim(&[]).relay(&["--static-dir", &dir, "--demo-page"])).await?;
    let (status, headers, body) = get(&demo.page_url(), "identity").await?;
    assert_eq!((status, header(&headers, "cache-control")), (200, "no-cache"));
    assert!(String::from_utf8_lossy(&body).contains("demo"));
    demo.stop().await
}
