//! Checks of the deployment files in `deploy/`: the systemd unit with `systemd-analyze
//! verify`, the alert rules with `promtool check rules` and their tests with
//! `promtool test rules`, the Kubernetes manifests with `kubernetes-validate --strict`
//! (every file the kustomization lists, and only those), and the container image: the relay
//! built as a static binary for `x86_64-unknown-linux-musl`, packaged by
//! `deploy/Containerfile` and run, where the machine has a container engine.

use anyhow::{Context, Result};

use crate::run::{Counts, check, check_with, output, status};
use crate::setup::Tools;
use crate::workspace;

pub(crate) fn check_all(tools: &Tools, counts: &mut Counts) -> Result<()> {
    let root = workspace::root()?;
    let deploy = root.join("deploy");
    // The unit names the installed binary; verify insists that the binary exists, so a
    // copy that names the freshly built one is verified instead, everything else as is.
    let mut build = tools.command("cargo");
    build.current_dir(&root).args(["build", "--quiet", "-p", "relay", "--bin", "relay"]);
    status(&mut build)?;
    let binary = root.join("target").join("debug").join("relay");
    let unit = std::fs::read_to_string(deploy.join("relay.service"))
        .context("reading deploy/relay.service")?;
    let scratch = std::env::temp_dir().join(format!("gms-relay-unit-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let copy = scratch.join("relay.service");
    let built = format!("ExecStart={}", binary.display());
    std::fs::write(&copy, unit.replace("ExecStart=/usr/local/bin/relay", &built))?;
    let mut verify = tools.command("systemd-analyze");
    verify.arg("verify").arg(&copy);
    check(counts, "systemd unit (systemd-analyze verify)", &mut verify);
    let _ = std::fs::remove_dir_all(&scratch);

    let mut rules = tools.command("promtool");
    rules.current_dir(&deploy).args(["check", "rules", "alerts.yml"]);
    check(counts, "alert rules (promtool check rules)", &mut rules);
    let mut rule_tests = tools.command("promtool");
    rule_tests.current_dir(&deploy).args(["test", "rules", "alerts.test.yml"]);
    check(counts, "alert rule tests (promtool test rules)", &mut rule_tests);

    let kubernetes = deploy.join("kubernetes");
    let listed =
        kustomization_resources(&std::fs::read_to_string(kubernetes.join("kustomization.yaml"))?);
    let mut present: Vec<String> = std::fs::read_dir(&kubernetes)?
        .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    present.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    anyhow::ensure!(
        sorted == present,
        "deploy/kubernetes/kustomization.yaml lists {sorted:?}, the directory holds {present:?}"
    );
    let mut validate = tools.command("kubernetes-validate");
    validate.current_dir(&kubernetes).args(["--strict", "--quiet"]).args(&listed);
    check(counts, "Kubernetes manifests (kubernetes-validate --strict)", &mut validate);

    check_with(counts, "static relay binary (x86_64-unknown-linux-musl)", || {
        static_relay(tools, "dev").map(drop)
    });
    match container_engine(tools) {
        Some(engine) => {
            check_with(counts, &format!("container image ({engine} build and run)"), || {
                let context = stage_image(tools, "dev")?;
                build_and_run(tools, &engine, &context)
            });
        }
        None => println!(
            "==> container image: not built, this machine has no container engine \
             (`docker info` and `podman info` both failed); the static binary is checked above"
        ),
    }
    Ok(())
}

/// `cargo xtask image`: the release relay, static, and its image where an engine runs;
/// elsewhere the staged context and the command to build it on a machine that has one.
pub(crate) fn image() -> Result<()> {
    let tools = crate::setup::ensure_all()?;
    let context = stage_image(&tools, "release")?;
    match container_engine(&tools) {
        Some(engine) => {
            let file = workspace::root()?.join("deploy").join("Containerfile");
            let mut build = tools.command(&engine);
            build.args(["build", "-t", "gms-relay", "-f"]).arg(&file).arg(&context);
            status(&mut build)?;
            println!("built the image gms-relay with {engine}");
        }
        None => println!(
            "no container engine here; the context is {}: build it elsewhere with \
             `docker build -t gms-relay -f deploy/Containerfile {}`",
            context.display(),
            context.display()
        ),
    }
    Ok(())
}

use crate::setup::MUSL_TARGET as MUSL;

/// Builds the relay for musl with `profile` and checks that it is static (no program
/// interpreter, so it runs `FROM scratch`); answers its path.
fn static_relay(tools: &Tools, profile: &str) -> Result<std::path::PathBuf> {
    let root = workspace::root()?;
    let mut build = tools.command("cargo");
    build.current_dir(&root).args(["build", "--quiet", "-p", "relay", "--bin", "relay"]);
    build.args(["--target", MUSL, "--profile", profile]);
    status(&mut build)?;
    let dir = if profile == "dev" { "debug" } else { profile };
    let binary = root.join("target").join(MUSL).join(dir).join("relay");
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    anyhow::ensure!(
        !has_interpreter(&bytes),
        "{} asks for a program interpreter: it is not static",
        binary.display()
    );
    let mut version = std::process::Command::new(&binary);
    version.arg("--version");
    let printed = output(&mut version).context("the static relay does not run")?;
    anyhow::ensure!(printed.starts_with("relay "), "relay --version printed {printed:?}");
    Ok(binary)
}

/// Whether an ELF file names a program interpreter (a `PT_INTERP` program header): a
/// dynamically linked executable does, a static one does not.
fn has_interpreter(elf: &[u8]) -> bool {
    let read = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(bytes.iter().rev().fold(0, |n, b| (n << 8) | u64::from(*b)))
    };
    // 64-bit little-endian ELF: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return true;
    }
    let (Some(phoff), Some(size), Some(count)) = (read(0x20, 8), read(0x36, 2), read(0x38, 2))
    else {
        return true;
    };
    (0..count).any(|i| {
        let header = usize::try_from(phoff + i * size).unwrap_or(usize::MAX);
        read(header, 4) == Some(3)
    })
}

/// `docker` or `podman`, whichever answers `info` (a client without its daemon does not).
fn container_engine(tools: &Tools) -> Option<String> {
    ["docker", "podman"].into_iter().map(str::to_owned).find(|engine| {
        let mut info = tools.command(engine);
        info.arg("info").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        info.status().is_ok_and(|s| s.success())
    })
}

/// The image's build context: the static relay and the build machine's CA certificates.
fn stage_image(tools: &Tools, profile: &str) -> Result<std::path::PathBuf> {
    let binary = static_relay(tools, profile)?;
    let context = workspace::root()?.join("target").join("image");
    std::fs::create_dir_all(&context)?;
    std::fs::copy(&binary, context.join("relay"))?;
    std::fs::copy("/etc/ssl/certs/ca-certificates.crt", context.join("ca-certificates.crt"))
        .context("the CA certificates (Debian's ca-certificates)")?;
    Ok(context)
}

/// Builds the image and runs it once: `relay --version` from inside it.
fn build_and_run(tools: &Tools, engine: &str, context: &std::path::Path) -> Result<()> {
    let file = workspace::root()?.join("deploy").join("Containerfile");
    let mut build = tools.command(engine);
    build.args(["build", "-t", "gms-relay:test", "-f"]).arg(&file).arg(context);
    status(&mut build)?;
    let mut run = tools.command(engine);
    run.args(["run", "--rm", "gms-relay:test", "--version"]);
    let printed = output(&mut run).context("the image does not run")?;
    anyhow::ensure!(printed.starts_with("relay "), "the image printed {printed:?}");
    Ok(())
}

/// The files a kustomization's `resources:` list names.
fn kustomization_resources(kustomization: &str) -> Vec<String> {
    kustomization
        .lines()
        .skip_while(|line| line.trim_end() != "resources:")
        .skip(1)
        .map_while(|line| line.trim_start().strip_prefix("- ").map(|f| f.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tells_a_static_executable_from_a_dynamic_one() {
        let cargo = std::fs::read(std::env::var("CARGO").expect("cargo runs the tests"))
            .expect("reads cargo");
        assert!(super::has_interpreter(&cargo), "cargo is linked dynamically");
        assert!(super::has_interpreter(b"#!/bin/sh"), "not ELF counts as not static");
        let mut elf = vec![0_u8; 0x40 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20] = 0x40; // program headers right after the ELF header
        elf[0x36] = 56;
        elf[0x38] = 1;
        elf[0x40] = 1; // PT_LOAD
        assert!(!super::has_interpreter(&elf));
        elf[0x40] = 3; // PT_INTERP
        assert!(super::has_interpreter(&elf));
    }

    #[test]
    fn reads_the_resources_of_a_kustomization() {
        let text =
            "kind: Kustomization\nresources:\n  - a.yaml\n  - b.yaml\nimages:\n  - name: x\n";
        assert_eq!(super::kustomization_resources(text), ["a.yaml", "b.yaml"]);
    }
}
