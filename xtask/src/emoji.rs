//! `cargo xtask emoji`: writes the emoji picker's data, `frontend/emoji/<lang>.txt`, from
//! the npm package emojibase-data (MIT; names and keywords from Unicode CLDR), pinned
//! below. The files are committed; run this only to move to a newer version.
//!
//! One line per emoji, `<emoji>\t<name>\t<keywords>`, in Unicode's order, and `#<group>`
//! before each group: the picker searches names and keywords in the visitor's language.
//! Emoji newer than Unicode 13.1 (2020) are left out, since older systems draw them as
//! boxes; so are skin-tone and flag variants, regional indicators and components.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::run::status;
use crate::workspace;

/// The package read.
const PACKAGE: &str = "emojibase-data@17.0.0";
/// The languages written: the widget's, where emojibase has them (not Arabic or Hebrew,
/// whose pages get English names).
const LANGUAGES: [&str; 5] = ["en", "de", "es", "fr", "nl"];
/// emojibase's groups left out: components (2) and flags (9).
const LEFT_OUT: [u64; 2] = [2, 9];

pub(crate) fn run() -> Result<()> {
    let root = workspace::root()?;
    let work = root.join("target").join("emoji");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    status(Command::new("npm").current_dir(&work).args(["pack", "--silent", PACKAGE]))?;
    let tarball = std::fs::read_dir(&work)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .context("npm pack wrote no tarball")?;
    status(Command::new("tar").current_dir(&work).arg("xzf").arg(&tarball))?;
    let out = root.join("frontend").join("emoji");
    std::fs::create_dir_all(&out)?;
    for language in LANGUAGES {
        let dir = work.join("package").join(language);
        let read = |name: &str| -> Result<Value> {
            let text = std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("{language}/{name}"))?;
            Ok(serde_json::from_str(&text)?)
        };
        let text = lines(&read("data.json")?, &read("messages.json")?);
        std::fs::write(out.join(format!("{language}.txt")), text)?;
    }
    Ok(())
}

/// The data file of one language.
fn lines(data: &Value, messages: &Value) -> String {
    let mut kept: Vec<&Value> = data
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["group"].as_u64().is_some_and(|g| !LEFT_OUT.contains(&g)))
        .filter(|e| e["version"].as_f64().is_some_and(|v| v <= 13.1))
        .collect();
    kept.sort_by_key(|e| e["order"].as_u64());
    let mut out = String::new();
    let mut group = None;
    for emoji in kept {
        if group != emoji["group"].as_u64() {
            group = emoji["group"].as_u64();
            let name = group
                .and_then(|g| messages["groups"].get(usize::try_from(g).ok()?)?["message"].as_str())
                .unwrap_or_default();
            let _ = writeln!(out, "#{name}");
        }
        let tags: Vec<&str> = emoji["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .take(4)
            .collect();
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        let _ = writeln!(
            out,
            "{}\t{}\t{}",
            emoji["emoji"].as_str().unwrap_or_default(),
            clean(emoji["label"].as_str().unwrap_or_default()),
            clean(&tags.join(" "))
        );
    }
    out
}
