//! Checks of the deployment files in `deploy/`: the systemd unit with `systemd-analyze
//! verify`, the alert rules with `promtool check rules` and their tests with
//! `promtool test rules`, and the Kubernetes manifests with `kubernetes-validate --strict`
//! (every file the kustomization lists, and only those).

use anyhow::{Context, Result};

use crate::run::{Counts, check, status};
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
    let listed = kustomization_resources(&std::fs::read_to_string(
        kubernetes.join("kustomization.yaml"),
    )?);
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
    fn reads_the_resources_of_a_kustomization() {
        let text = "kind: Kustomization\nresources:\n  - a.yaml\n  - b.yaml\nimages:\n  - name: x\n";
        assert_eq!(super::kustomization_resources(text), ["a.yaml", "b.yaml"]);
    }
}
