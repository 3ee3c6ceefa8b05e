//! What an image carries about itself: the SBOM, the build provenance and signatures, attached as
//! OCI referrers, kept by push and pull, and seen by the tools people check them with (oras,
//! cosign, spdx-tools), in a registry without the referrers API (Debian's distribution 2.8,
//! through the referrers tag schema) and in one with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use skiff_testing::Registry;

use crate::{iris_model, ok, pack_json, run};

/// A tool the tests read from an environment variable that scripts/test.sh sets.
fn tool(var: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: run the tests through scripts/test.sh, which installs it")
    }))
}

/// `oras discover --format json` of an image in a registry (plain HTTP) or a layout.
fn oras_discover(target: &str, layout: bool) -> Value {
    let mut cmd = Command::new(tool("SKIFF_TEST_ORAS"));
    cmd.args(["discover", "--format", "json"]);
    if layout {
        cmd.arg("--oci-layout");
    } else {
        cmd.arg("--plain-http");
    }
    let out = cmd.arg(target).output().expect("oras runs");
    assert!(
        out.status.success(),
        "oras discover {target} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The artifact types of the referrers `oras discover` found.
fn artifact_types(discovered: &Value) -> Vec<String> {
    let mut types: Vec<String> = discovered["referrers"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["artifactType"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    types.sort();
    types
}

/// `skiff inspect --json` of an image.
fn inspect(image: &str) -> Value {
    serde_json::from_str(&ok(run(&["inspect", image, "--insecure", "--json"]))).unwrap()
}

/// The referrer of `artifact_type` in a layout: its manifest and its one layer's bytes.
fn layout_referrer(layout: &Path, subject: &str, artifact_type: &str) -> (Value, Vec<u8>) {
    let read = |digest: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap()
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    for entry in index["manifests"].as_array().unwrap() {
        if entry["artifactType"] != artifact_type {
            continue;
        }
        let manifest: Value =
            serde_json::from_slice(&read(entry["digest"].as_str().unwrap())).unwrap();
        if manifest["subject"]["digest"] == subject {
            let layer = read(manifest["layers"][0]["digest"].as_str().unwrap());
            return (manifest, layer);
        }
    }
    panic!(
        "no {artifact_type} referrer of {subject} in {}",
        layout.display()
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    skiff_pack::oci::sha256_digest(bytes)
        .strip_prefix("sha256:")
        .unwrap()
        .to_string()
}

#[test]
fn provenance_names_every_input_by_digest_and_travels_with_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let layout = dir.path().join("img");
    let packed = pack_json(
        &model,
        &format!("oci:{}:v1", layout.display()),
        &["--provenance"],
    );
    let digest = packed["digest"].as_str().unwrap();

    // The statement names the image and what it was made of, each by the digest anyone can
    // recompute: the model file and the server binary packed.
    let (manifest, statement) = layout_referrer(&layout, digest, "application/vnd.in-toto+json");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let statement: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.strip_prefix("sha256:").unwrap()
    );
    let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let dep = |name: &str| {
        deps.iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {deps:?}"))["digest"]["sha256"]
            .clone()
    };
    assert_eq!(dep("model"), sha256_hex(&std::fs::read(&model).unwrap()));
    let server = crate::image::runtime_dir().join("linux-amd64/skiff-server");
    assert_eq!(
        dep("server linux/amd64"),
        sha256_hex(&std::fs::read(server).unwrap())
    );

    // oras sees it in the layout, and in both kinds of registry after a push; a pull brings it
    // back, and inspect lists it.
    let types = artifact_types(&oras_discover(&format!("{}:v1", layout.display()), true));
    assert!(
        types.contains(&"application/vnd.in-toto+json".to_string()),
        "{types:?}"
    );
    for (registry, has_api) in [
        (Registry::start(None), false),
        (Registry::start_oci11(), true),
    ] {
        let remote = format!("docker://{}/iris:v1", registry.host());
        let pushed: Value = serde_json::from_str(&ok(run(&[
            "push",
            &format!("oci:{}:v1", layout.display()),
            &remote,
            "--insecure",
            "--json",
        ])))
        .unwrap();
        assert_eq!(pushed["digest"], digest);
        let listed = artifact_types(&oras_discover(
            &format!("{}/iris:v1", registry.host()),
            false,
        ));
        assert_eq!(listed, types, "referrers in the registry");
        // The referrers tag schema's list only where the registry lacks the API.
        let (_, tags) = skiff_testing::http_json(
            "GET",
            &format!("http://{}/v2/iris/tags/list", registry.host()),
            None,
        );
        let fallback = digest.replacen(':', "-", 1);
        assert_eq!(
            tags["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == &fallback),
            !has_api,
            "tags {tags}"
        );
        let inspected = inspect(&remote);
        let referrers: Vec<&str> = inspected["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["artifactType"].as_str().unwrap())
            .collect();
        assert!(
            referrers.contains(&"application/vnd.in-toto+json"),
            "{inspected}"
        );

        let back = dir
            .path()
            .join(format!("back-{}", registry.host().replace(':', "-")));
        ok(run(&[
            "pull",
            &remote,
            "-o",
            &format!("oci:{}:v1", back.display()),
            "--insecure",
        ]));
        let (_, pulled) = layout_referrer(&back, digest, "application/vnd.in-toto+json");
        assert_eq!(
            serde_json::from_slice::<Value>(&pulled).unwrap(),
            statement,
            "the statement pulled back"
        );
    }
}
