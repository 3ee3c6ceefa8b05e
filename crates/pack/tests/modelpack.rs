//! ModelPack artifacts as other tools see them: the config against the spec's own JSON schema
//! (vendored in crates/pack/modelpack-schema), the manifest against the spec's media types and
//! annotation keys, and a round trip through a real registry with skopeo, oras and skiff's own
//! push and pull. Missing tools fail the test: they are never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skiff_pack::layout::Layout;
use skiff_pack::media;
use skiff_pack::modelpack::{self, ModelPackModel};
use skiff_pack::registry::{PushOptions, pull, push};
use skiff_testing::{Registry, run_tool};

/// Bytes that stand in for a model: the artifact never parses them.
fn onnx() -> Vec<u8> {
    b"\x08\x07\x12\x08skl2onnx stand-in model bytes ".repeat(500)
}

fn write(dir: &Path, onnx: &[u8]) -> PathBuf {
    let layout = dir.join("modelpack");
    let model = ModelPackModel {
        created: "2025-06-01T12:00:00Z".into(),
        authors: vec!["ml-team@example.com".into()],
        family: Some("logistic-regression".into()),
        architecture: Some("linear".into()),
        param_size: Some(modelpack::param_size(15)),
        precision: Some("float32".into()),
        labels: BTreeMap::from([
            (media::SKIFF_MODEL_TASK.into(), "classification".into()),
            (
                media::SKIFF_MODEL_ESTIMATOR.into(),
                "LogisticRegression".into(),
            ),
        ]),
        ..ModelPackModel::new("iris", "1.0.0", onnx)
    };
    modelpack::write_modelpack(&layout, "v1", &model).unwrap();
    layout
}

fn python() -> String {
    std::env::var("SKIFF_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("SKIFF_TEST_PYTHON is not set: point it at a python with tests/requirements.txt installed (jsonschema, check-jsonschema)")
    })
}

fn oras() -> String {
    std::env::var("SKIFF_TEST_ORAS")
        .unwrap_or_else(|_| panic!("SKIFF_TEST_ORAS is not set: point it at the oras CLI (1.3)"))
}

/// Runs a tool and returns its stdout, failing the test with its output when it fails.
fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Validates `config` (JSON) against the vendored ModelPack schema with python's jsonschema
/// (draft 2020-12, `date-time` checked as RFC 3339); returns the errors, one per line.
fn schema_errors(dir: &Path, config: &[u8]) -> String {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("modelpack-schema/config-schema.json");
    let file = dir.join("config.json");
    std::fs::write(&file, config).unwrap();
    let script = r#"
import json, sys, jsonschema
from check_jsonschema.formats.implementations import validate_rfc3339
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
formats = jsonschema.FormatChecker()
formats.checks("date-time")(validate_rfc3339)
validator = jsonschema.Draft202012Validator(schema, format_checker=formats)
for e in validator.iter_errors(json.load(open(sys.argv[2]))):
    print("/".join(map(str, e.absolute_path)) + ": " + e.message)
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run SKIFF_TEST_PYTHON ({e})"));
    String::from_utf8(ok(out, "schema validation")).unwrap()
}

#[test]
fn config_is_valid_against_the_spec_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = write(tmp.path(), &onnx());
    let layout = Layout::open(&layout).unwrap();
    let (_, manifest) = layout.resolve("v1").unwrap();
    let bytes = layout.read_blob(&manifest.config).unwrap();
    assert_eq!(schema_errors(tmp.path(), &bytes), "");

    let config: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(config["descriptor"]["name"], "iris");
    assert_eq!(config["descriptor"]["version"], "1.0.0");
    assert_eq!(config["descriptor"]["createdAt"], "2025-06-01T12:00:00Z");
    assert_eq!(config["descriptor"]["authors"][0], "ml-team@example.com");
    assert_eq!(config["config"]["format"], "onnx");
    assert_eq!(config["config"]["paramSize"], "0.1K");
    assert_eq!(config["modelfs"]["type"], "layers");
    // the diff ID is the sha256 of the uncompressed tar, which is the layer itself
    assert_eq!(
        config["modelfs"]["diffIds"],
        serde_json::json!([manifest.layers[0].digest])
    );

    // the check can fail: a wrong modelfs type and a time that is not RFC 3339 are caught
    let mut broken = config.clone();
    broken["modelfs"]["type"] = "tar".into();
    broken["descriptor"]["createdAt"] = "June 1st".into();
    let errors = schema_errors(tmp.path(), &serde_json::to_vec(&broken).unwrap());
    assert!(errors.contains("modelfs/type"), "{errors}");
    assert!(errors.contains("descriptor/createdAt"), "{errors}");
}

#[test]
fn manifest_uses_the_spec_media_types_and_annotations() {
    // as modelpack/model-spec specs-go/v1 (mediatype.go, annotations.go) spells them
    const ARTIFACT: &str = "application/vnd.cncf.model.manifest.v1+json";
    const CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
    const WEIGHT_TAR: &str = "application/vnd.cncf.model.weight.v1.tar";
    const FILEPATH: &str = "org.cncf.model.filepath";
    const FILE_METADATA: &str = "org.cncf.model.file.metadata+json";
    const UNTESTED: &str = "org.cncf.model.file.mediatype.untested";

    let tmp = tempfile::tempdir().unwrap();
    let model = onnx();
    let dir = write(tmp.path(), &model);
    let layout = Layout::open(&dir).unwrap();
    let (desc, manifest) = layout.resolve("v1").unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&desc).unwrap()).unwrap();
    assert_eq!(json["schemaVersion"], 2);
    assert_eq!(
        json["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(json["artifactType"], ARTIFACT);
    assert_eq!(json["config"]["mediaType"], CONFIG);
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], WEIGHT_TAR);
    let annotations = &layers[0]["annotations"];
    assert_eq!(annotations[FILEPATH], modelpack::MODEL_FILE);
    assert_eq!(annotations[UNTESTED], "false");
    let metadata: serde_json::Value =
        serde_json::from_str(annotations[FILE_METADATA].as_str().unwrap()).unwrap();
    assert_eq!(
        metadata,
        serde_json::json!({
            "name": "model.onnx", "mode": 0o644, "uid": 0, "gid": 0,
            "size": model.len(), "mtime": "2025-06-01T12:00:00Z", "typeflag": b'0',
        })
    );
    assert_eq!(
        json["annotations"][media::SKIFF_MODEL_ESTIMATOR],
        "LogisticRegression"
    );
    assert_eq!(
        json["annotations"]["org.opencontainers.image.created"],
        "2025-06-01T12:00:00Z"
    );
    // index.json names the artifact type too, as `oras discover` and registries show it
    let index = layout.index().unwrap();
    assert_eq!(index.manifests[0].artifact_type.as_deref(), Some(ARTIFACT));
    assert!(modelpack::is_modelpack(&manifest));
    assert_eq!(modelpack::read_model(&layout, &manifest).unwrap(), model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_a_registry_with_skopeo_oras_and_skiff() {
    let registry = Registry::start(None);
    let host = registry.host();
    let tmp = tempfile::tempdir().unwrap();
    let model = onnx();
    let dir = write(tmp.path(), &model);
    let (local, manifest) = Layout::open(&dir).unwrap().resolve("v1").unwrap();
    let oras = oras();

    // skopeo pushes the layout as it is (it verifies every digest on the way)
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let policy = policy.display().to_string();
    let src = format!("oci:{}:v1", dir.display());
    let dest = format!("docker://{host}/models/iris:v1");
    ok(
        run_tool(
            "skopeo",
            "skopeo",
            &[
                "--policy",
                &policy,
                "copy",
                "--dest-tls-verify=false",
                &src,
                &dest,
            ],
        ),
        "skopeo copy",
    );

    // oras sees the same manifest, the same digest, and the model's layer
    let fetched = ok(
        run_tool(
            &oras,
            "oras",
            &[
                "manifest",
                "fetch",
                "--plain-http",
                &format!("{host}/models/iris:v1"),
            ],
        ),
        "oras manifest fetch",
    );
    assert_eq!(
        skiff_pack::oci::sha256_digest(&fetched),
        local.digest,
        "the registry holds another manifest: {}",
        String::from_utf8_lossy(&fetched)
    );
    let layer_file = tmp.path().join("layer.tar");
    ok(
        run_tool(
            &oras,
            "oras",
            &[
                "blob",
                "fetch",
                "--plain-http",
                "--output",
                &layer_file.display().to_string(),
                &format!("{host}/models/iris@{}", manifest.layers[0].digest),
            ],
        ),
        "oras blob fetch",
    );
    let mut archive = tar::Archive::new(std::fs::File::open(&layer_file).unwrap());
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some(modelpack::MODEL_FILE));
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut unpacked).unwrap();
    assert_eq!(unpacked, model);

    // oras copies it back into a layout of its own, which skiff reads
    let oras_dir = tmp.path().join("oras");
    ok(
        run_tool(
            &oras,
            "oras",
            &[
                "cp",
                "--from-plain-http",
                "--to-oci-layout",
                &format!("{host}/models/iris:v1"),
                &format!("{}:v1", oras_dir.display()),
            ],
        ),
        "oras cp",
    );
    let oras_layout = Layout::open(&oras_dir).unwrap();
    let (copied, copied_manifest) = oras_layout.resolve("v1").unwrap();
    assert_eq!(copied.digest, local.digest);
    assert_eq!(
        modelpack::read_model(&oras_layout, &copied_manifest).unwrap(),
        model
    );

    // skiff's own pull and push move the artifact unchanged
    let opts = PushOptions {
        insecure: true,
        auth_env: Some(skiff_pack::auth::AuthEnv::empty()),
        ..PushOptions::default()
    };
    let pulled_dir = tmp.path().join("pulled");
    let pulled = pull(&host, "models/iris", "v1", &pulled_dir, "v1", &opts)
        .await
        .unwrap();
    assert_eq!(pulled.digest, local.digest);
    let pulled_layout = Layout::open(&pulled_dir).unwrap();
    let (_, pulled_manifest) = pulled_layout.resolve("v1").unwrap();
    assert_eq!(
        modelpack::read_model(&pulled_layout, &pulled_manifest).unwrap(),
        model
    );
    let pushed = push(&dir, "v1", &host, "models/iris-again", "v2", &opts)
        .await
        .unwrap();
    assert_eq!(pushed.manifest_digest, local.digest);
    let fetched = ok(
        run_tool(
            &oras,
            "oras",
            &[
                "manifest",
                "fetch",
                "--plain-http",
                &format!("{host}/models/iris-again:v2"),
            ],
        ),
        "oras manifest fetch",
    );
    assert_eq!(skiff_pack::oci::sha256_digest(&fetched), local.digest);
}
