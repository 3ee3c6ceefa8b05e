//! Push and pull against a real registry (`docker-registry`, distribution 2.8) on loopback,
//! checked by skopeo. Missing tools fail the test: they are never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use skiff_pack::auth::AuthEnv;
use skiff_pack::image::{ServerBinary, ServerImage, read_model, write_server_image};
use skiff_pack::layout::Layout;
use skiff_pack::oci::Platform;
use skiff_pack::registry::{PushOptions, pull, push};
use skiff_testing::Registry;

/// Packs an image with a dummy executable and dummy model bytes; returns (layout, model).
fn pack(dir: &Path, tag: &str) -> (PathBuf, Vec<u8>) {
    let server = dir.join("skiff-server");
    std::fs::write(&server, b"\x7fELF dummy server, not really runnable").unwrap();
    let model = b"dummy onnx model bytes".repeat(1000);
    let layout = dir.join("image");
    let image = ServerImage {
        servers: vec![ServerBinary {
            platform: Platform::parse("linux/amd64").unwrap(),
            path: &server,
        }],
        model: &model,
        model_name: "iris",
        version: "0.1.0",
        labels: BTreeMap::from([("dev.skiff.model.task".into(), "classification".into())]),
    };
    write_server_image(&layout, tag, &image).unwrap();
    (layout, model)
}

fn insecure(auth_env: AuthEnv) -> PushOptions {
    PushOptions {
        insecure: true,
        auth_env: Some(auth_env),
        ..PushOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_skips_existing_blobs_pull_verifies_and_skopeo_agrees() {
    let registry = Registry::start(None);
    let host = registry.host();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, model) = pack(tmp.path(), "v1");
    let (local, manifest) = Layout::open(&layout).unwrap().resolve("v1").unwrap();
    let blob_bytes: u64 =
        manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
    let opts = insecure(AuthEnv::empty());

    let first = push(&layout, "v1", &host, "skiff/iris", "v1", &opts)
        .await
        .unwrap();
    assert_eq!(first.manifest_digest, local.digest);
    assert_eq!(first.bytes_uploaded, blob_bytes, "{first:?}");
    assert_eq!(first.blobs_skipped, 0);
    assert!(first.manifest_url.contains(&host), "{first:?}");

    let second = push(&layout, "v1", &host, "skiff/iris", "v1", &opts)
        .await
        .unwrap();
    assert_eq!(second.manifest_digest, local.digest);
    assert_eq!(
        second.bytes_uploaded, 0,
        "second push uploaded blobs: {second:?}"
    );
    assert_eq!(second.blobs_skipped, 3, "config and two layers: {second:?}");

    // pull by tag into a fresh layout: same manifest digest, same model
    let pulled = tmp.path().join("pulled");
    let desc = pull(&host, "skiff/iris", "v1", &pulled, "copy", &opts)
        .await
        .unwrap();
    assert_eq!(desc.digest, local.digest);
    assert_eq!(
        Layout::open(&pulled)
            .unwrap()
            .resolve("copy")
            .unwrap()
            .0
            .digest,
        local.digest
    );
    assert_eq!(read_model(&pulled, "copy").unwrap(), model);

    // pull by digest
    let by_digest = tmp.path().join("by-digest");
    let desc = pull(&host, "skiff/iris", &local.digest, &by_digest, "d", &opts)
        .await
        .unwrap();
    assert_eq!(desc.digest, local.digest);

    // skopeo (which verifies every digest) copies it into its own layout unchanged
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let skopeo_dir = tmp.path().join("skopeo");
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/skiff/iris:v1"))
        .arg(format!("oci:{}:v1", skopeo_dir.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run skopeo ({e}): install it with `apt-get install -y skopeo`")
        });
    assert!(
        out.status.success(),
        "skopeo copy failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (copied, _) = Layout::open(&skopeo_dir).unwrap().resolve("v1").unwrap();
    assert_eq!(copied.digest, local.digest);
    assert_eq!(read_model(&skopeo_dir, "v1").unwrap(), model);

    // skopeo reads our layout directly too
    let out = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["config"]["Entrypoint"][0], "/skiff-server");

    // plain http without --insecure: the error says what to do
    let err = push(
        &layout,
        "v1",
        &host,
        "skiff/iris",
        "v1",
        &PushOptions {
            insecure: false,
            auth_env: Some(AuthEnv::empty()),
            ..PushOptions::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains(&host) && err.contains("--insecure"), "{err}");

    // a tag the registry does not have
    let err = pull(
        &host,
        "skiff/iris",
        "nope",
        &tmp.path().join("x"),
        "x",
        &opts,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("has no skiff/iris:nope"), "{err}");
    assert!(
        !tmp.path().join("x").exists(),
        "a failed pull left a layout behind"
    );

    // nothing listening
    drop(registry);
    let err = push(&layout, "v1", &host, "skiff/iris", "v1", &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot connect to registry") && err.contains(&host),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_uses_docker_config() {
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = tmp.path().join("htpasswd");
    skiff_testing::htpasswd(&htpasswd, "user", "pass");
    let registry = Registry::start(Some(&htpasswd));
    let host = registry.host();
    let (layout, model) = pack(tmp.path(), "v1");

    // no credentials: refused, and told how to log in
    let err = push(
        &layout,
        "v1",
        &host,
        "team/iris",
        "v1",
        &insecure(AuthEnv::empty()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&host) && err.contains("401 unauthorized") && err.contains("docker login"),
        "{err}"
    );

    let docker = tmp.path().join("docker");
    let write_config = |user_pass: &str| {
        std::fs::create_dir_all(&docker).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
        std::fs::write(
            docker.join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
    };
    let with_config = insecure(AuthEnv::empty().with("DOCKER_CONFIG", &docker));

    // wrong password: the error names the file the credentials came from
    write_config("user:wrong");
    let err = push(&layout, "v1", &host, "team/iris", "v1", &with_config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401 unauthorized") && err.contains("config.json"),
        "{err}"
    );

    write_config("user:pass");
    let report = push(&layout, "v1", &host, "team/iris", "v1", &with_config)
        .await
        .unwrap();
    assert_eq!(report.blobs_skipped, 0);
    let pulled = tmp.path().join("pulled");
    let desc = pull(&host, "team/iris", "v1", &pulled, "v1", &with_config)
        .await
        .unwrap();
    assert_eq!(desc.digest, report.manifest_digest);
    assert_eq!(read_model(&pulled, "v1").unwrap(), model);

    // anonymous pulls are refused too
    let err = pull(
        &host,
        "team/iris",
        "v1",
        &tmp.path().join("anon"),
        "v1",
        &insecure(AuthEnv::empty()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("401 unauthorized"), "{err}");
}
