//! `examples/ci/`: the pipeline script runs every stage against a real registry on loopback,
//! stops at the quality floor before anything is pushed, and the GitHub Actions workflow that
//! runs the same stages validates against the workflow schema.

use super::{example, python};
use skiff_testing::{Registry, http_text};
use std::path::Path;
use std::process::{Command, Output};

fn pipeline(out: &Path, registry: &Registry, floor: &str) -> Output {
    Command::new("bash")
        .arg(example("ci/pipeline.sh"))
        .env("SKIFF", env!("CARGO_BIN_EXE_skiff"))
        .env("REGISTRY", registry.host())
        .env("REPOSITORY", "team/iris")
        .env("TAG", "ci")
        .env("INSECURE", "1")
        .env("OUT", out)
        .env("ACCURACY_FLOOR", floor)
        .output()
        .unwrap()
}

/// Whether the registry holds the pipeline's tag.
fn pushed(registry: &Registry) -> bool {
    let (status, body) = http_text(&format!(
        "http://{}/v2/team/iris/tags/list",
        registry.host()
    ));
    status == 200 && body.contains("\"ci\"")
}

#[test]
fn the_pipeline_fits_gates_packs_pushes_and_prints_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(None);

    // A floor no model reaches: the pipeline stops at evaluate, with the metric and the
    // floor in one line, and pushes nothing.
    let out = pipeline(&dir.path().join("strict"), &registry, "1.01");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("accuracy 1.0000 is below the floor 1.01"),
        "{stderr}"
    );
    assert!(!dir.path().join("strict/image").exists());
    assert!(!pushed(&registry), "nothing was pushed");

    let out = pipeline(&dir.path().join("ok"), &registry, "0.9");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pushed(&registry), "the image was pushed");
    let image = format!("{}/team/iris:ci", registry.host());
    let manifests = std::fs::read_to_string(dir.path().join("ok/k8s.yaml")).unwrap();
    assert!(manifests.contains("kind: Deployment"), "{manifests}");
    assert!(
        manifests.contains(&format!("image: {image}")),
        "{manifests}"
    );
    assert!(stdout.contains("kind: Deployment"), "manifests are printed");
}

#[test]
fn the_workflow_is_valid_and_runs_stages_the_script_has() {
    let workflow = example("ci/github-actions.yml");
    let check = |path: &Path| {
        let python = python().get_program().to_owned();
        let tool = Path::new(&python).with_file_name("check-jsonschema");
        Command::new(&tool)
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} ({e})", tool.display()))
    };
    let out = check(&workflow);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The check can fail: a misspelt key is refused.
    let text = std::fs::read_to_string(&workflow).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, text.replace("runs-on:", "run-on:")).unwrap();
    assert!(!check(&broken).status.success());

    let script = std::fs::read_to_string(example("ci/pipeline.sh")).unwrap();
    let stages: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run: examples/ci/pipeline.sh "))
        .collect();
    assert_eq!(
        stages,
        ["fit", "evaluate", "pack", "push", "manifests"],
        "every stage is a step, in order"
    );
    assert!(
        script.contains("stages=(fit evaluate pack push manifests)"),
        "the script runs the workflow's stages by default"
    );
}
