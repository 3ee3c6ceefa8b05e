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

/// The manifest `oras manifest fetch` gets for `target` (HOST/REPO:TAG, plain HTTP).
fn oras_manifest(target: &str) -> Value {
    let out = Command::new(tool("SKIFF_TEST_ORAS"))
        .args(["manifest", "fetch", "--plain-http", target])
        .output()
        .expect("oras runs");
    assert!(
        out.status.success(),
        "oras manifest fetch {target}: {}",
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

/// `skiff ARGS...` with `COSIGN_PASSWORD` set, as signing needs.
fn with_password(args: &[&str], dir: &Path) -> std::process::Output {
    crate::skiff()
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", "correct horse")
        .output()
        .expect("skiff runs")
}

/// `cosign ARGS...` in `dir`, with the password of the test's keys.
fn cosign(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(tool("SKIFF_TEST_COSIGN"))
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", "correct horse")
        .output()
        .expect("cosign runs")
}

#[test]
fn the_sbom_is_valid_spdx_naming_the_servers_crates_and_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let layout = dir.path().join("img");
    let packed = pack_json(
        &model,
        &format!("oci:{}:v1", layout.display()),
        &["--platform", "linux/amd64,linux/arm64"],
    );
    let digest = packed["digest"].as_str().unwrap();
    let (manifest, sbom) = layout_referrer(&layout, digest, "application/spdx+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/spdx+json");

    // The SPDX project's own tools accept it.
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, &sbom).unwrap();
    let python = std::env::var("SKIFF_TEST_PYTHON").expect("SKIFF_TEST_PYTHON");
    let out = Command::new(python)
        .args(["-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.to_lowercase().contains("invalid"),
        "{said}"
    );

    // It names the model and both servers by digest, and the crates linked into them.
    let doc: Value = serde_json::from_slice(&sbom).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages = doc["packages"].as_array().unwrap();
    let checksums: Vec<&str> = packages
        .iter()
        .flat_map(|p| p["checksums"].as_array().into_iter().flatten())
        .map(|c| c["checksumValue"].as_str().unwrap())
        .collect();
    let model_hex = sha256_hex(&std::fs::read(&model).unwrap());
    assert!(
        checksums.contains(&model_hex.as_str()),
        "the model's digest"
    );
    for platform in ["linux-amd64", "linux-arm64"] {
        let server = crate::image::runtime_dir()
            .join(platform)
            .join("skiff-server");
        let hex = sha256_hex(&std::fs::read(server).unwrap());
        assert!(
            checksums.contains(&hex.as_str()),
            "the {platform} server's digest"
        );
    }
    let tract = packages
        .iter()
        .find(|p| p["name"] == "tract-core")
        .expect("tract-core is linked into the server");
    assert!(
        tract["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:cargo/tract-core@")
    );
    assert_ne!(tract["licenseDeclared"], "NOASSERTION");

    // Packing again gives the same SBOM; --no-sbom leaves it out.
    let again = dir.path().join("again");
    pack_json(
        &model,
        &format!("oci:{}:v1", again.display()),
        &["--platform", "linux/amd64,linux/arm64"],
    );
    assert_eq!(
        layout_referrer(&again, digest, "application/spdx+json").1,
        sbom
    );
    let bare = dir.path().join("bare");
    pack_json(
        &model,
        &format!("oci:{}:v1", bare.display()),
        &["--no-sbom"],
    );
    assert_eq!(
        inspect(&format!("oci:{}:v1", bare.display()))["referrers"],
        serde_json::json!([])
    );
}

#[test]
fn signatures_verify_with_skiff_and_cosign_and_tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let image = format!("docker://{}/iris:v1", registry.host());
    let plain = format!("{}/iris:v1", registry.host());
    pack_json(&model, &image, &[]);

    ok(with_password(&["keygen"], dir.path()));
    assert!(
        with_password(&["keygen"], dir.path()).status.code() == Some(1),
        "keygen keeps existing keys"
    );
    let signed: Value = serde_json::from_str(&ok(with_password(
        &[
            "sign",
            &image,
            "--key",
            "cosign.key",
            "--insecure",
            "--json",
        ],
        dir.path(),
    )))
    .unwrap();
    let digest = signed["digest"].as_str().unwrap().to_string();
    let verify = |image: &str, key: &str| {
        crate::skiff()
            .args(["verify", image, "--key", key, "--insecure", "--json"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let verified: Value = serde_json::from_str(&ok(verify(&image, "cosign.pub"))).unwrap();
    assert_eq!(verified["digest"], digest.as_str());

    // cosign verifies skiff's signature, and skiff verifies cosign's (its default, sigstore
    // bundle, form) on another image.
    let out = cosign(
        &[
            "verify",
            "--key",
            "cosign.pub",
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            &plain,
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "cosign verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = format!("docker://{}/other:v1", registry.host());
    let other_digest = pack_json(&model, &other, &["--no-sbom", "--name", "other"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = cosign(
        &["generate-key-pair", "--output-key-prefix", "theirs"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "cosign generate-key-pair: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cosign(
        &[
            "sign",
            "--key",
            "theirs.key",
            "--use-signing-config=false",
            "--tlog-upload=false",
            "--allow-http-registry",
            "-y",
            &format!("{}/other@{other_digest}", registry.host()),
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "cosign sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(verify(&other, "theirs.pub"));
    crate::fails_with(verify(&other, "cosign.pub"), &["not by this key"]);

    // A manifest with one byte changed under the signed tag: its digest is not the signed one.
    let manifest = oras_manifest(&plain);
    let mut tampered = manifest.clone();
    tampered["annotations"]["dev.skiff.model.name"] = "irit".into();
    let file = dir.path().join("tampered.json");
    std::fs::write(&file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let out = Command::new(tool("SKIFF_TEST_ORAS"))
        .args([
            "manifest",
            "push",
            "--plain-http",
            "--media-type",
            "application/vnd.oci.image.manifest.v1+json",
            &plain,
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::fails_with(verify(&image, "cosign.pub"), &["is not signed"]);
    // ... and the server refuses it, in one line, before serving anything.
    let out = crate::skiff()
        .args([
            "serve",
            &image,
            "--insecure",
            "--verify-key",
            "cosign.pub",
            "--addr",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    crate::fails_with(out, &["is not signed"]);

    // The signed digest still serves, checked first; pulled, its signature comes along.
    let by_digest = format!("docker://{}/iris@{digest}", registry.host());
    let server = crate::serve::Server::start(
        &by_digest,
        &[
            "--insecure",
            "--verify-key",
            dir.path().join("cosign.pub").to_str().unwrap(),
        ],
    );
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    assert!(
        server.log_text().contains("verified the signature"),
        "{}",
        server.log_text()
    );
    let back = dir.path().join("back");
    ok(run(&[
        "pull",
        &by_digest,
        "-o",
        &format!("oci:{}:v1", back.display()),
        "--insecure",
    ]));
    ok(verify(&format!("oci:{}:v1", back.display()), "cosign.pub"));
}

#[test]
fn a_modelpack_artifact_goes_through_a_registry_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let image = format!("docker://{}/models/iris:v1", registry.host());
    pack_json(&model, &image, &["--format", "modelpack", "--provenance"]);
    let inspected = inspect(&image);
    assert_eq!(inspected["platforms"], serde_json::json!([]));
    let manifest = oras_manifest(&format!("{}/models/iris:v1", registry.host()));
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.model.config.v1+json"
    );
    let types = artifact_types(&oras_discover(
        &format!("{}/models/iris:v1", registry.host()),
        false,
    ));
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );

    // Served from the registry, and from a folder as an image volume mounts it.
    let server = crate::serve::Server::start(&image, &["--insecure"]);
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    drop(server);
    let back = dir.path().join("back");
    ok(run(&[
        "pull",
        &image,
        "-o",
        &format!("oci:{}:v1", back.display()),
        "--insecure",
    ]));
    let layer = back.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap(),
    );
    let volume = dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&layer)
        .arg("-C")
        .arg(&volume)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(volume.join("model.onnx")).unwrap(),
        std::fs::read(&model).unwrap()
    );
    let port = skiff_testing::free_port();
    let mut command = crate::skiff();
    command
        .args([
            "serve",
            "--name",
            "iris",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--model-dir",
        ])
        .arg(&volume);
    let mut server = crate::serve::Server::launch(command, port, None);
    server.wait_for_200("/v2/health/ready");
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
}
