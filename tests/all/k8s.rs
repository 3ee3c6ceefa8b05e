//! `skiff k8s`: the manifests pass Kubernetes' schemas (kubernetes-validate, strict) and KServe's
//! InferenceService and serving runtime CRD schemas, offline, and carry what the image needs to
//! run.

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

/// What every server container that runs the image's entrypoint has, whichever object holds
/// it: the ports set by the environment.
fn assert_server_container(c: &Value, port: u16) {
    assert_hardened(c);
    assert_eq!(c["ports"][0]["containerPort"], port);
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(env(c)["PORT"], port.to_string());
    let grpc = &c["ports"][1];
    assert_eq!(grpc["protocol"], "TCP");
    assert_eq!(
        env(c)["SKIFF_GRPC_PORT"],
        grpc["containerPort"].to_string(),
        "{c}"
    );
    assert!(c.get("command").is_none() && c.get("args").is_none());
}

/// What every server container has: the image, the health probes and a locked-down security
/// context.
fn assert_hardened(c: &Value) {
    assert_eq!(c["image"], IMAGE);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
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
    assert_eq!(
        container["ports"][1],
        json!({"name": "grpc", "containerPort": 8081, "protocol": "TCP"})
    );
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
        service["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "grpc", "port": 8081, "targetPort": "grpc", "protocol": "TCP",
             "appProtocol": "kubernetes.io/h2c"},
        ])
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
        IMAGE,
        "--name",
        "flowers",
        "--port",
        "9000",
        "--grpc-port",
        "9001",
        "--cpu",
        "2",
        "--memory",
        "1Gi",
    ]);
    let [deployment, service] = &docs[..] else {
        panic!("{docs:?}")
    };
    assert_eq!(deployment["metadata"]["name"], "flowers");
    assert_eq!(service["metadata"]["name"], "flowers");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_server_container(container, 9000);
    assert_eq!(container["ports"][1]["containerPort"], 9001);
    assert_eq!(service["spec"]["ports"][1]["port"], 9001);
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
    assert_server_container(container, 8080);
    // HTTP first (KServe's Service maps port 80 to it), gRPC under the name KServe routes.
    assert_eq!(
        container["ports"],
        json!([
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "h2c", "containerPort": 8081, "protocol": "TCP"},
        ])
    );
    assert!(predictor.get("runtimeClassName").is_none());
    assert!(predictor.get("maxReplicas").is_none() && predictor.get("autoScaling").is_none());

    let (_, docs) = manifests(&[IMAGE, "--kserve", "--gpu"]);
    let predictor = &docs[0]["spec"]["predictor"];
    assert_eq!(predictor["runtimeClassName"], "nvidia");
    let container = &predictor["containers"][0];
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(env(container)["SKIFF_BACKEND"], "cuda");
}

/// `--serving-runtime`: a ClusterServingRuntime running the image's server on `/mnt/models` with
/// KServe's arguments, and an InferenceService that names it and says where the model is.
#[test]
fn serving_runtime() {
    let uri = "s3://models/iris/1";
    let (_, docs) = manifests(&[
        IMAGE,
        "--serving-runtime",
        "--name",
        "flowers",
        "--storage-uri",
        uri,
        "--replicas",
        "2",
    ]);
    let [runtime, isvc] = &docs[..] else {
        panic!("expected a runtime and an InferenceService: {docs:?}")
    };
    assert_eq!(runtime["apiVersion"], "serving.kserve.io/v1alpha1");
    assert_eq!(runtime["kind"], "ClusterServingRuntime");
    // The runtime is the server, named after the image; the InferenceService is the model.
    assert_eq!(runtime["metadata"]["name"], "iris");
    assert!(runtime["metadata"].get("namespace").is_none());
    let spec = &runtime["spec"];
    assert_eq!(
        spec["supportedModelFormats"],
        json!([{"name": "onnx", "version": "1", "autoSelect": true}])
    );
    assert_eq!(spec["protocolVersions"], json!(["v2", "grpc-v2"]));
    assert_eq!(spec["annotations"]["prometheus.kserve.io/port"], "8080");
    let [container] = &spec["containers"].as_array().unwrap()[..] else {
        panic!("{spec}")
    };
    assert_eq!(container["name"], "kserve-container");
    assert_hardened(container);
    assert_eq!(container["command"], json!(["/skiff-server"]));
    assert_eq!(
        container["args"],
        json!([
            "--model_dir=/mnt/models",
            "--model_name={{.Name}}",
            "--http_port=8080",
            "--grpc_port=8081",
        ])
    );
    assert_eq!(
        container["ports"],
        json!([
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "h2c", "containerPort": 8081, "protocol": "TCP"},
        ])
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], 8080);
    // The arguments set the ports: no environment that could disagree with them.
    assert!(container.get("env").is_none(), "{container}");

    assert_eq!(isvc["kind"], "InferenceService");
    assert_eq!(isvc["metadata"]["name"], "flowers");
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Standard"
    );
    let predictor = &isvc["spec"]["predictor"];
    assert_eq!(predictor["minReplicas"], 2);
    assert!(predictor.get("containers").is_none(), "{predictor}");
    assert_eq!(predictor["securityContext"]["runAsUser"], 65532);
    let model = &predictor["model"];
    assert_eq!(model["runtime"], runtime["metadata"]["name"]);
    assert_eq!(model["modelFormat"], json!({"name": "onnx"}));
    assert_eq!(model["protocolVersion"], "v2");
    assert_eq!(model["storageUri"], uri);

    // Every kind of storage KServe fetches from, a namespaced runtime, its own name, a GPU and
    // other ports.
    for uri in [
        "gs://bucket/iris",
        "https://example.com/models/iris.tar.gz",
        "pvc://models/iris",
        "oci://registry.example.com/models/iris-modelcar:1",
    ] {
        let (_, docs) = manifests(&[IMAGE, "--serving-runtime", "--storage-uri", uri]);
        assert_eq!(docs[1]["spec"]["predictor"]["model"]["storageUri"], uri);
    }
    let (_, docs) = manifests(&[
        IMAGE,
        "--serving-runtime",
        "--namespaced-runtime",
        "--runtime-name",
        "skiff-cuda",
        "--storage-uri",
        uri,
        "--gpu",
        "--port",
        "9000",
        "--grpc-port",
        "9001",
        "--service-account",
        "model-reader",
    ]);
    let [runtime, isvc] = &docs[..] else {
        panic!("{docs:?}")
    };
    assert_eq!(
        isvc["spec"]["predictor"]["serviceAccountName"],
        "model-reader"
    );
    assert_eq!(runtime["kind"], "ServingRuntime");
    assert_eq!(runtime["metadata"]["name"], "skiff-cuda");
    assert_eq!(isvc["spec"]["predictor"]["model"]["runtime"], "skiff-cuda");
    assert_eq!(isvc["spec"]["predictor"]["runtimeClassName"], "nvidia");
    let container = &runtime["spec"]["containers"][0];
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(env(container), json!({"SKIFF_BACKEND": "cuda"}));
    let args = container["args"].as_array().unwrap();
    assert!(args.contains(&json!("--http_port=9000")) && args.contains(&json!("--grpc_port=9001")));
    assert_eq!(container["ports"][1]["containerPort"], 9001);
    assert_eq!(
        runtime["spec"]["annotations"]["prometheus.kserve.io/port"],
        "9000"
    );
}

/// `--hpa` and `--pdb`: an autoscaler on CPU and a disruption budget that select the server's
/// pods, or KServe's own autoscaling fields.
#[test]
fn autoscaling_and_disruption_budget() {
    let (_, docs) = manifests(&[
        IMAGE,
        "--hpa",
        "--replicas",
        "2",
        "--max-replicas",
        "6",
        "--target-cpu",
        "70",
        "--pdb",
    ]);
    let [deployment, _service, hpa, pdb] = &docs[..] else {
        panic!("expected a Deployment, a Service, an HPA and a PDB: {docs:?}")
    };
    // The autoscaler owns the replica count: kubectl apply must not reset it.
    assert!(deployment["spec"].get("replicas").is_none(), "{deployment}");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["kind"], "HorizontalPodAutoscaler");
    let spec = &hpa["spec"];
    assert_eq!(
        spec["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]})
    );
    assert_eq!(
        (&spec["minReplicas"], &spec["maxReplicas"]),
        (&json!(2), &json!(6))
    );
    assert_eq!(
        spec["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 70}}}])
    );
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );

    // KServe writes its own HPA from the InferenceService's fields.
    let (_, docs) = manifests(&[IMAGE, "--kserve", "--hpa", "--max-replicas", "4", "--pdb"]);
    let [isvc, pdb] = &docs[..] else {
        panic!("expected an InferenceService and a PDB: {docs:?}")
    };
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"],
        "hpa"
    );
    let predictor = &isvc["spec"]["predictor"];
    assert_eq!(
        (&predictor["minReplicas"], &predictor["maxReplicas"]),
        (&json!(1), &json!(4))
    );
    assert_eq!(
        predictor["autoScaling"]["metrics"][0]["resource"]["target"],
        json!({"type": "Utilization", "averageUtilization": 80})
    );
    // The labels KServe gives the predictor's pods.
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        json!({"serving.kserve.io/inferenceservice": "iris", "component": "predictor"})
    );

    let (_, docs) = manifests(&[
        IMAGE,
        "--serving-runtime",
        "--storage-uri",
        "pvc://models/iris",
        "--hpa",
        "--max-replicas",
        "3",
        "--pdb",
    ]);
    let [_runtime, isvc, pdb] = &docs[..] else {
        panic!("{docs:?}")
    };
    assert_eq!(isvc["spec"]["predictor"]["maxReplicas"], 3);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"]["component"],
        "predictor"
    );
}

/// The validators reject what the API server would: without this the tests above prove nothing.
#[test]
fn validators_reject_broken_manifests() {
    let plain = ok(run(&["k8s", IMAGE]));
    let kserve = ok(run(&["k8s", IMAGE, "--kserve"]));
    let scaled = ok(run(&[
        "k8s",
        IMAGE,
        "--hpa",
        "--max-replicas",
        "3",
        "--pdb",
    ]));
    let runtime = ok(run(&[
        "k8s",
        IMAGE,
        "--serving-runtime",
        "--storage-uri",
        "s3://models/iris",
    ]));
    let namespaced = ok(run(&[
        "k8s",
        IMAGE,
        "--serving-runtime",
        "--namespaced-runtime",
        "--storage-uri",
        "s3://models/iris",
    ]));
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
    broken(
        &scaled,
        "maxReplicas: 3",
        "maxReplica: 3",
        "'maxReplicas' is a required property",
    );
    broken(
        &scaled,
        "unhealthyPodEvictionPolicy: AlwaysAllow",
        "unhealthyPodEvictionPolicy: 1",
        "is not of type",
    );
    broken(
        &scaled,
        "apiVersion: autoscaling/v2",
        "apiVersion: autoscaling/v2beta1",
        "no schema",
    );
    for runtime in [&runtime, &namespaced] {
        broken(
            runtime,
            "protocolVersions:",
            "protocolVersion:",
            "'protocolVersion' was unexpected",
        );
        broken(
            runtime,
            "autoSelect: true",
            "autoSelect: \"true\"",
            "is not of type 'boolean'",
        );
        broken(runtime, "  - args:", "  - argv:", "'argv' was unexpected");
        broken(
            runtime,
            "    storageUri: s3",
            "    storageURI: s3",
            "'storageURI' was unexpected",
        );
    }
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
    fails_with(
        run(&["k8s", IMAGE, "--grpc-port", "8080"]),
        &["--grpc-port 8080", "--port", "8081"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--kserve", "--grpc-port", "80"]),
        &["--grpc-port 80", "Service's HTTP port"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--grpc-port", "0"]),
        &["--grpc-port 0", "1 to 65535"],
    );
}

#[test]
fn bad_runtime_and_scaling_flags_are_one_line_errors() {
    let runtime = ["k8s", IMAGE, "--serving-runtime"];
    fails_with(
        run(&runtime),
        &["--serving-runtime needs --storage-uri", "s3://", "oci://"],
    );
    for (uri, needle) in [
        ("http://example.com/iris", "not a location"),
        ("file:///models/iris", "not a location"),
        ("models/iris", "not a location"),
        ("gs://", "names no bucket"),
        ("oci://iris", "modelcar image"),
    ] {
        fails_with(
            run(&[&runtime[..], &["--storage-uri", uri]].concat()),
            &[&format!("--storage-uri {uri:?}"), needle],
        );
    }
    fails_with(
        run(&["k8s", IMAGE, "--storage-uri", "s3://models/iris"]),
        &["--storage-uri is for --serving-runtime"],
    );
    fails_with(
        run(&[
            "k8s",
            IMAGE,
            "--kserve",
            "--serving-runtime",
            "--storage-uri",
            "s3://m/i",
        ]),
        &["--kserve and --serving-runtime", "pass one"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--namespaced-runtime"]),
        &["add --serving-runtime"],
    );
    fails_with(
        run(&[
            &runtime[..],
            &[
                "--storage-uri",
                "s3://m/i",
                "--runtime-name",
                "Skiff_Runtime",
            ],
        ]
        .concat()),
        &["runtime name \"Skiff_Runtime\"", "--runtime-name"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--service-account", "Model_Reader"]),
        &["--service-account \"Model_Reader\"", "lower-case"],
    );
    fails_with(
        run(&["k8s", IMAGE, "--hpa"]),
        &["--hpa needs --max-replicas"],
    );
    fails_with(run(&["k8s", IMAGE, "--max-replicas", "3"]), &["add --hpa"]);
    fails_with(
        run(&[
            "k8s",
            IMAGE,
            "--hpa",
            "--replicas",
            "4",
            "--max-replicas",
            "2",
        ]),
        &["--max-replicas 2 is below --replicas 4"],
    );
    fails_with(
        run(&[
            "k8s",
            IMAGE,
            "--hpa",
            "--max-replicas",
            "2",
            "--target-cpu",
            "0",
        ]),
        &["--target-cpu 0"],
    );
}
