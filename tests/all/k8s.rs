//! `skiff k8s`: the manifests pass Kubernetes' schemas (kubernetes-validate, strict) and KServe's
//! InferenceService CRD schema, offline, and carry what the image needs to run.

use crate::*;
use serde_json::{Value, json};
use std::path::Path;

const IMAGE: &str = "registry.example.com/team/iris:1";

/// `tests/k8s/validate.py` on `yaml`: the documents as JSON, or the validator's error.
fn validate(yaml: &str) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, yaml).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s/validate.py");
    let out = python().arg(script).arg(&file).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `skiff k8s args...`, which must succeed and validate; returns its YAML and documents.
fn manifests(args: &[&str]) -> (String, Vec<Value>) {
    let yaml = ok(run(&[&["k8s"], args].concat()));
    let docs = validate(&yaml).unwrap_or_else(|e| panic!("invalid manifests: {e}\n{yaml}"));
    (yaml, docs)
}

fn env(container: &Value) -> Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// What every server container has, whichever object holds it.
fn assert_server_container(c: &Value, port: u16) {
    assert_eq!(c["image"], IMAGE);
    assert_eq!(c["ports"][0]["containerPort"], port);
    assert_eq!(env(c)["PORT"], port.to_string());
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
    assert!(c.get("command").is_none() && c.get("args").is_none());
    let security = &c["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 65532);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
}

#[test]
fn deployment_and_service() {
    let (_, docs) = manifests(&[IMAGE]);
    let [deployment, service] = &docs[..] else {
        panic!("expected a Deployment and a Service: {docs:?}")
    };
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["metadata"]["name"], "iris");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let labels = json!({"app.kubernetes.io/name": "iris", "app.kubernetes.io/managed-by": "skiff"});
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], labels);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["template"]["metadata"]["labels"], labels);
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 5);
    let container = &pod["containers"][0];
    assert_server_container(container, 8080);
    assert_eq!(container["ports"][0]["name"], "http");
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}})
    );
    assert!(env(container).get("SKIFF_BACKEND").is_none());
    assert!(pod.get("runtimeClassName").is_none());

    assert_eq!(service["kind"], "Service");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["selector"], labels);
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"})
    );
}

#[test]
fn gpu_replicas_and_settings() {
    let out = run(&[
        "k8s",
        &format!("docker://{IMAGE}"),
        "--gpu",
        "--replicas",
        "3",
    ]);
    let note = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        note.contains("images/gpu/README.md"),
        "no note on stderr: {note}"
    );
    let yaml = ok(out);
    assert!(yaml.starts_with("# --gpu:"), "no comment on top:\n{yaml}");
    let docs = validate(&yaml).unwrap_or_else(|e| panic!("invalid manifests: {e}\n{yaml}"));
    let spec = &docs[0]["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["template"]["spec"]["runtimeClassName"], "nvidia");
    let container = &spec["template"]["spec"]["containers"][0];
    assert_server_container(container, 8080);
    assert_eq!(env(container)["SKIFF_BACKEND"], "cuda");
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(container["resources"]["limits"]["memory"], "2Gi");

    let (_, docs) = manifests(&[
        IMAGE, "--name", "flowers", "--port", "9000", "--cpu", "2", "--memory", "1Gi",
    ]);
    let [deployment, service] = &docs[..] else {
        panic!("{docs:?}")
    };
    assert_eq!(deployment["metadata"]["name"], "flowers");
    assert_eq!(service["metadata"]["name"], "flowers");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_server_container(container, 9000);
    assert_eq!(
        container["resources"]["requests"],
        json!({"cpu": "2", "memory": "1Gi"})
    );
}

#[test]
fn kserve_inference_service() {
    let (_, docs) = manifests(&[IMAGE, "--kserve", "--replicas", "2"]);
    let [isvc] = &docs[..] else {
        panic!("expected one InferenceService: {docs:?}")
    };
    assert_eq!(isvc["apiVersion"], "serving.kserve.io/v1beta1");
    assert_eq!(isvc["kind"], "InferenceService");
    assert_eq!(isvc["metadata"]["name"], "iris");
    let predictor = &isvc["spec"]["predictor"];
    assert_eq!(predictor["minReplicas"], 2);
    let container = &predictor["containers"][0];
    assert_eq!(container["name"], "kserve-container");
    assert_eq!(container["ports"][0]["protocol"], "TCP");
    assert_server_container(container, 8080);
    assert!(predictor.get("runtimeClassName").is_none());

    let (_, docs) = manifests(&[IMAGE, "--kserve", "--gpu"]);
    let predictor = &docs[0]["spec"]["predictor"];
    assert_eq!(predictor["runtimeClassName"], "nvidia");
    let container = &predictor["containers"][0];
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(env(container)["SKIFF_BACKEND"], "cuda");
}

/// The validators reject what the API server would: without this the tests above prove nothing.
#[test]
fn validators_reject_broken_manifests() {
    let plain = ok(run(&["k8s", IMAGE]));
    let kserve = ok(run(&["k8s", IMAGE, "--kserve"]));
    let broken = |yaml: &str, from: &str, to: &str, needle: &str| {
        assert!(yaml.contains(from), "{from:?} not in\n{yaml}");
        let error = validate(&yaml.replacen(from, to, 1)).expect_err(to);
        assert!(error.contains(needle), "{to:?}: {error}");
    };
    broken(&plain, "replicas: 1", "replicas: one", "is not of type");
    broken(
        &plain,
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: true\n          readOnlyRoot: true",
        "'readOnlyRoot' was unexpected",
    );
    broken(
        &plain,
        "apiVersion: apps/v1",
        "apiVersion: apps/v2",
        "no schema",
    );
    broken(
        &kserve,
        "containerPort: 8080",
        "containerPort: '8080'",
        "is not of type 'integer'",
    );
    broken(
        &kserve,
        "minReplicas: 1",
        "minReplicas: 1\n    replicas: 1",
        "'replicas' was unexpected",
    );
    broken(
        &kserve,
        "name: kserve-container",
        "nam: kserve-container",
        "'name' is a required property",
    );
    broken(&kserve, "cpu: 500m", "cpu: half", "does not match");
    broken(
        &kserve,
        "  name: iris\nspec:",
        "  name: Iris\nspec:",
        "DNS-1035",
    );
}

#[test]
fn bad_input_is_a_one_line_error() {
    fails_with(
        run(&["k8s", IMAGE, "--name", "Iris_Model"]),
        &["--name", "\"Iris_Model\"", "lower-case"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--name", "2iris"]),
        &["start with a letter"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--kserve", "--name", &"a".repeat(60)]),
        &["at most 53", "-predictor"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--replicas", "0"]),
        &["--replicas 0", "at least 1"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--memory", "256MB"]),
        &["--memory \"256MB\"", "256Mi"],
    );
    fails_with(
        run(&["k8s", "oci:out:v1"]),
        &["not an image in a registry", "skiff push"],
    );
    fails_with(
        run(&["k8s", "registry.example.com/team/3d:1"]),
        &["repository \"team/3d\"", "--name"],
    );
}
