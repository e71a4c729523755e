//! Where the widget's bytes go: the first open's wasm (the release build's main module as
//! the splitter left it) run through wasm-bindgen and `wasm-opt -Oz -g`, keeping function
//! names; each
//! function's code is counted for the crate its demangled name belongs to (for a trait
//! impl, the trait's crate: serde's derives count as serde, `Debug` impls as core), and
//! the data segments as one group. Gzip sizes are each group compressed alone, so they add
//! up to more than the file's.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use wasmparser::{Name, NameSectionReader, Parser, Payload};

/// One group: its name, raw code bytes and gzip -9 bytes alone.
pub(crate) struct Contributor {
    pub(crate) group: String,
    pub(crate) raw: usize,
    pub(crate) gz: usize,
}

/// The groups of `artifact` (the cargo-built `frontend.wasm`), largest gzipped first.
pub(crate) fn contributors(artifact: &Path) -> Result<Vec<Contributor>> {
    let work = system_tests::harness::scratch_dir("wasm-profile")?;
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-dir"])
        .arg(&work)
        .arg(artifact))?;
    let bound = work.join(
        artifact.file_stem().map(|s| format!("{}_bg.wasm", s.to_string_lossy())).context("name")?,
    );
    let named = work.join("named.wasm");
    // The module's target_features section tells wasm-opt which features it uses.
    run(Command::new("wasm-opt").args(["-Oz", "-g"]).arg(&bound).arg("-o").arg(&named))?;
    let bytes = std::fs::read(&named)?;
    let _ = std::fs::remove_dir_all(&work);
    groups(&bytes)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn groups(wasm: &[u8]) -> Result<Vec<Contributor>> {
    let mut imported = 0_u32;
    let mut bodies: Vec<&[u8]> = Vec::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut data: Vec<u8> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(&wasm[body.range()]),
            Payload::DataSection(reader) => {
                for segment in reader {
                    data.extend_from_slice(segment?.data);
                }
            }
            Payload::CustomSection(section) if section.name() == "name" => {
                let reader = NameSectionReader::new(wasmparser::BinaryReader::new(
                    section.data(),
                    section.data_offset(),
                ));
                for name in reader {
                    if let Name::Function(map) = name? {
                        for naming in map {
                            let naming = naming?;
                            names.insert(naming.index, naming.name.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut code: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, body) in bodies.iter().enumerate() {
        let index = imported + u32::try_from(i)?;
        let group = names.get(&index).map_or("(unnamed)".to_owned(), |n| crate_of(n));
        code.entry(group).or_default().extend_from_slice(body);
    }
    code.insert("(data: strings, tables, styles)".to_owned(), data);
    let mut out: Vec<Contributor> = code
        .into_iter()
        .map(|(group, bytes)| Ok(Contributor { group, raw: bytes.len(), gz: gzip(&bytes)? }))
        .collect::<Result<_>>()?;
    out.sort_by_key(|c| std::cmp::Reverse(c.gz));
    Ok(out)
}

/// The crate a function belongs to, from its mangled name.
fn crate_of(mangled: &str) -> String {
    let name = format!("{:#}", rustc_demangle::demangle(mangled));
    // `<Type as Trait>::method`: the trait's crate; `<Type>::method`: the type's.
    let path = match name.strip_prefix('<') {
        Some(rest) => match rest.split_once(" as ") {
            Some((_, tr)) => tr,
            None => rest,
        },
        None => name.as_str(),
    };
    let path = path
        .trim_start_matches(['&', '*', '(', '['])
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    match path.split_once("::") {
        // v0 names carry a disambiguator: `core[c5930c85a12de822]`.
        Some((krate, _)) if !krate.is_empty() => {
            krate.trim_start_matches('<').split('[').next().unwrap_or(krate).to_owned()
        }
        _ => "(runtime: wasm-bindgen shims, compiler builtins)".to_owned(),
    }
}

fn gzip(bytes: &[u8]) -> Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}
