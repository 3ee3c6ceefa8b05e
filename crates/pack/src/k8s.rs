//! Kubernetes manifests that run a server image: a `Deployment` with its `Service`, a KServe
//! `InferenceService` whose predictor is the image, or a KServe `ClusterServingRuntime` (or
//! `ServingRuntime`) running the image on the model KServe fetches into `/mnt/models`, with an
//! `InferenceService` that uses it. Optionally a `HorizontalPodAutoscaler` (KServe: the
//! InferenceService's own autoscaling fields) and a `PodDisruptionBudget`.
//!
//! They follow the image's contract (`images/README.md`): its entrypoint runs `skiff-server` on
//! the model as user 65532, listening on `$PORT` (HTTP) and `$SKIFF_GRPC_PORT` (gRPC); liveness
//! answers while the model loads and readiness once it has; after SIGTERM readiness turns 503
//! for 5 s, then the listener closes and requests in flight finish. A serving runtime runs
//! `skiff-server` with KServe's arguments instead (`--model_dir`, `--model_name`,
//! `--http_port`, `--grpc_port`).
//!
//! ```
//! use skiff_pack::k8s::{Target, Workload};
//!
//! # fn main() -> skiff_pack::Result<()> {
//! let mut workload = Workload::new("registry.example.com/team/iris:1", None)?;
//! workload.replicas = 2;
//! assert_eq!(workload.name, "iris");
//! let yaml = workload.yaml(Target::Deployment)?;
//! assert!(yaml.contains("kind: Deployment") && yaml.contains("kind: Service"));
//! # Ok(())
//! # }
//! ```

use serde_json::{Value, json};

use crate::{Error, Reference, Result};

/// The image's user and group (`media::SERVER_USER`).
const UID: u32 = 65532;
/// Seconds between SIGTERM and SIGKILL: the server's 5 s drain, then requests in flight.
const TERMINATION_GRACE_SECONDS: u32 = 30;
/// KServe names the predictor's Deployment and Service `NAME-predictor`.
const KSERVE_SUFFIX: &str = "-predictor";
/// The Service's HTTP port, ours and KServe's; gRPC keeps the container's port number.
const SERVICE_HTTP_PORT: u16 = 80;
/// Where KServe's storage initializer (or a modelcar) puts the model for a serving runtime.
pub const KSERVE_MODEL_DIR: &str = "/mnt/models";
/// The gRPC port's name on KServe containers: KServe gives ports whose name holds `h2c` (or
/// `grpc`) `appProtocol: kubernetes.io/h2c` and routes gRPC to them, and its samples use `h2c`.
const KSERVE_GRPC_PORT_NAME: &str = "h2c";
/// What Kubernetes' Service `appProtocol` calls gRPC's transport: HTTP/2 over cleartext.
const H2C: &str = "kubernetes.io/h2c";
/// The `--storage-uri` schemes skiff accepts, each one KServe fetches models from.
pub const STORAGE_URI_SCHEMES: [&str; 5] = ["s3://", "gs://", "https://", "pvc://", "oci://"];
/// Default gRPC port (`SKIFF_GRPC_PORT`, `--grpc_port`).
pub const GRPC_PORT: u16 = 8081;
/// Default CPU utilisation an autoscaler keeps pods at, in percent of the CPU request
/// (`kubectl autoscale`'s and KServe's default).
pub const TARGET_CPU: u32 = 80;

/// Memory to ask for with a GPU: a CUDA context and ONNX Runtime's CUDA libraries take far
/// more host memory than the CPU server's 256Mi default.
pub const GPU_MEMORY: &str = "2Gi";

/// Which objects to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An `apps/v1` `Deployment` and a `ClusterIP` `Service` on port 80.
    Deployment,
    /// A KServe `serving.kserve.io/v1beta1` `InferenceService` in `Standard` (raw Deployment)
    /// mode, the image as its custom predictor container.
    KServe,
    /// A KServe `serving.kserve.io/v1alpha1` `ClusterServingRuntime` whose container runs the
    /// image's server on `/mnt/models`, and an `InferenceService` in `Standard` mode that uses it
    /// on the model at [`Workload::storage_uri`].
    ClusterServingRuntime,
    /// As [`Target::ClusterServingRuntime`], with a `ServingRuntime` in the InferenceService's
    /// namespace.
    ServingRuntime,
}

impl Target {
    /// Whether KServe runs the pods (the target writes an `InferenceService`).
    pub fn is_kserve(self) -> bool {
        self != Target::Deployment
    }

    /// Whether the target writes a serving runtime.
    pub fn is_runtime(self) -> bool {
        matches!(self, Target::ClusterServingRuntime | Target::ServingRuntime)
    }
}

/// Scaling on CPU: an `autoscaling/v2` `HorizontalPodAutoscaler`, or KServe's autoscaling
/// fields, from [`Workload::replicas`] pods up to `max_replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscaling {
    /// The most pods to run.
    pub max_replicas: u32,
    /// Average CPU utilisation to keep, in percent of the CPU request.
    pub target_cpu: u32,
}

/// A server image and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The image as a cluster pulls it: `HOST/REPO:TAG` or `HOST/REPO@sha256:...`.
    pub image: String,
    /// Object name and `app.kubernetes.io/name` label: a DNS-1035 label.
    pub name: String,
    /// Pods to run (at least 1), the fewest when autoscaled; KServe's `minReplicas`.
    pub replicas: u32,
    /// Port the server listens on (`PORT`, `--http_port`).
    pub port: u16,
    /// Port the server's gRPC listener uses (`SKIFF_GRPC_PORT`, `--grpc_port`).
    pub grpc_port: u16,
    /// CPU request, a Kubernetes quantity such as `500m`.
    pub cpu: String,
    /// Memory request and limit, a Kubernetes quantity such as `256Mi`.
    pub memory: String,
    /// One NVIDIA GPU, the `nvidia` runtime class and `SKIFF_BACKEND=cuda`: for the GPU image.
    pub gpu: bool,
    /// The serving runtime's name (a DNS-1035 label), which the InferenceService names.
    pub runtime_name: String,
    /// Where KServe fetches the model from for a serving runtime: `s3://`, `gs://`, `https://`,
    /// `pvc://` or `oci://` (a modelcar image). Required by the runtime targets, refused by the
    /// others.
    pub storage_uri: Option<String>,
    /// Scale on CPU between `replicas` and a maximum.
    pub autoscaling: Option<Autoscaling>,
    /// A `policy/v1` `PodDisruptionBudget` letting voluntary disruptions (node drains) take one
    /// pod at a time.
    pub pdb: bool,
    /// The pods' service account: KServe's storage initializer takes `--storage-uri`'s
    /// credentials from its secrets.
    pub service_account: Option<String>,
}

impl Workload {
    /// The image `reference` names (`[docker://]HOST/REPO[:TAG|@sha256:...]`), called `name` or
    /// after the repository's last component; one replica on port 8080 (gRPC 8081) with 500m CPU
    /// and 256Mi memory, no GPU, no autoscaling, no disruption budget. A serving runtime is named
    /// after the repository (the server it runs), or `name` when that makes no valid name.
    pub fn new(reference: &str, name: Option<&str>) -> Result<Workload> {
        let Reference::Registry {
            registry,
            repository,
            tag,
        } = Reference::parse_image(reference)?
        else {
            return Err(Error::Invalid(format!(
                "{reference:?} is not an image in a registry: a cluster pulls [docker://]HOST/REPO[:TAG] (push the image there with skiff push)"
            )));
        };
        let sep = if tag.starts_with("sha256:") { '@' } else { ':' };
        let (name, runtime_name) = match name {
            Some(name) => (
                name.to_string(),
                name_from_repository(&repository).unwrap_or_else(|_| name.to_string()),
            ),
            None => {
                let name = name_from_repository(&repository)?;
                (name.clone(), name)
            }
        };
        Ok(Workload {
            image: format!("{registry}/{repository}{sep}{tag}"),
            runtime_name,
            name,
            replicas: 1,
            port: crate::media::SERVER_PORT,
            grpc_port: GRPC_PORT,
            cpu: "500m".into(),
            memory: "256Mi".into(),
            gpu: false,
            storage_uri: None,
            autoscaling: None,
            pdb: false,
            service_account: None,
        })
    }

    /// The manifests for `target`.
    pub fn manifests(&self, target: Target) -> Result<Vec<Value>> {
        self.check(target)?;
        let mut manifests = match target {
            Target::Deployment => vec![self.deployment(), self.service()],
            Target::KServe => vec![self.inference_service()],
            Target::ClusterServingRuntime | Target::ServingRuntime => {
                vec![
                    self.serving_runtime(target),
                    self.runtime_inference_service(),
                ]
            }
        };
        if target == Target::Deployment
            && let Some(autoscaling) = &self.autoscaling
        {
            manifests.push(self.horizontal_pod_autoscaler(autoscaling));
        }
        if self.pdb {
            manifests.push(self.pod_disruption_budget(target));
        }
        Ok(manifests)
    }

    /// The manifests for `target` as YAML documents separated by `---`, behind a comment
    /// naming the image they need when `gpu` is set.
    pub fn yaml(&self, target: Target) -> Result<String> {
        // Plain scalars: a long digest reference reads better on one line than folded.
        let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
        let documents =
            serde_saphyr::to_string_multiple_with_options(&self.manifests(target)?, options)
                .map_err(|e| Error::Invalid(format!("cannot write the manifests as YAML: {e}")))?;
        Ok(if self.gpu {
            format!("# {GPU_NOTE}\n---\n{documents}")
        } else {
            format!("---\n{documents}")
        })
    }

    fn check(&self, target: Target) -> Result<()> {
        let max = if target.is_kserve() {
            63 - KSERVE_SUFFIX.len()
        } else {
            63
        };
        if let Some(problem) = name_problem(&self.name, max) {
            let kserve = match target {
                Target::KServe => " with --kserve, which appends -predictor",
                Target::ClusterServingRuntime | Target::ServingRuntime => {
                    " with --serving-runtime, where KServe appends -predictor"
                }
                Target::Deployment => "",
            };
            return Err(Error::Invalid(format!(
                "name {:?} is not a valid Kubernetes name: it {problem} (pass --name with lower-case letters, digits and '-', starting with a letter and ending with a letter or digit, at most {max} characters{kserve})",
                self.name
            )));
        }
        if self.replicas == 0 {
            return Err(Error::Invalid(
                "--replicas 0: a model server needs at least 1 replica (scale it to 0 with kubectl scale instead)".into(),
            ));
        }
        for (flag, port) in [("--port", self.port), ("--grpc-port", self.grpc_port)] {
            if port == 0 {
                return Err(Error::Invalid(format!(
                    "{flag} 0 is not a port a Kubernetes container can listen on (use 1 to 65535)"
                )));
            }
        }
        if self.port == self.grpc_port {
            return Err(Error::Invalid(format!(
                "--grpc-port {} is --port's too: the HTTP and gRPC listeners need a port each (pass another --grpc-port, e.g. {})",
                self.grpc_port,
                if self.port == GRPC_PORT {
                    GRPC_PORT + 1
                } else {
                    GRPC_PORT
                }
            )));
        }
        if self.grpc_port == SERVICE_HTTP_PORT {
            return Err(Error::Invalid(format!(
                "--grpc-port {SERVICE_HTTP_PORT} is the Service's HTTP port, and the Service exposes gRPC on the container's port number (pass another --grpc-port, e.g. {GRPC_PORT})"
            )));
        }
        if let Some(autoscaling) = &self.autoscaling {
            if autoscaling.max_replicas < self.replicas {
                return Err(Error::Invalid(format!(
                    "--max-replicas {} is below --replicas {}: the autoscaler runs between the two (raise --max-replicas or lower --replicas)",
                    autoscaling.max_replicas, self.replicas
                )));
            }
            if autoscaling.target_cpu == 0 {
                return Err(Error::Invalid(
                    "--target-cpu 0: the autoscaler needs a CPU utilisation to keep, in percent of the CPU request (e.g. 80)".into(),
                ));
            }
        }
        match (&self.storage_uri, target.is_runtime()) {
            (Some(uri), true) => check_storage_uri(uri)?,
            (None, true) => {
                return Err(Error::Invalid(format!(
                    "--serving-runtime needs --storage-uri URI: where KServe fetches the model from into {KSERVE_MODEL_DIR} ({})",
                    STORAGE_URI_SCHEMES.join(", ")
                )));
            }
            (Some(_), false) => {
                return Err(Error::Invalid(
                    "--storage-uri is for --serving-runtime: the other manifests run the model inside the image (add --serving-runtime, or leave --storage-uri out)".into(),
                ));
            }
            (None, false) => {}
        }
        if let Some(account) = &self.service_account
            && !is_subdomain(account)
        {
            return Err(Error::Invalid(format!(
                "--service-account {account:?} is not a Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)"
            )));
        }
        if target.is_runtime()
            && let Some(problem) = name_problem(&self.runtime_name, 63)
        {
            return Err(Error::Invalid(format!(
                "runtime name {:?} is not a valid Kubernetes name: it {problem} (pass --runtime-name with lower-case letters, digits and '-', starting with a letter and ending with a letter or digit, at most 63 characters)",
                self.runtime_name
            )));
        }
        for (flag, value, example) in [
            ("--cpu", &self.cpu, "500m or 2"),
            ("--memory", &self.memory, "256Mi or 1Gi"),
        ] {
            if !is_quantity(value) {
                return Err(Error::Invalid(format!(
                    "{flag} {value:?} is not a Kubernetes quantity (write a number with an optional unit, e.g. {example})"
                )));
            }
        }
        Ok(())
    }

    fn labels(&self) -> Value {
        json!({
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/managed-by": "skiff",
        })
    }

    /// The image's ports, HTTP first (KServe maps its Service's port 80 to the first one),
    /// then gRPC under `grpc_name`.
    fn ports(&self, grpc_name: &str) -> Value {
        json!([
            {"name": "http", "containerPort": self.port, "protocol": "TCP"},
            {"name": grpc_name, "containerPort": self.grpc_port, "protocol": "TCP"},
        ])
    }

    /// The environment that sets the image's ports.
    fn port_env(&self) -> Vec<Value> {
        vec![
            json!({"name": "PORT", "value": self.port.to_string()}),
            json!({"name": "SKIFF_GRPC_PORT", "value": self.grpc_port.to_string()}),
        ]
    }

    /// The server's container: ports, environment, probes, resources and a locked-down
    /// security context. `probe_port` is how the probes name the port.
    fn container(&self, name: &str, ports: Value, probe_port: Value, mut env: Vec<Value>) -> Value {
        let mut limits = json!({"memory": self.memory});
        if self.gpu {
            env.push(json!({"name": "SKIFF_BACKEND", "value": "cuda"}));
            limits["nvidia.com/gpu"] = json!(1);
        }
        let probe = |path: &str, period: u32, failures: u32| {
            json!({
                "httpGet": {"path": path, "port": probe_port},
                "periodSeconds": period,
                "timeoutSeconds": 2,
                "failureThreshold": failures,
            })
        };
        let mut container = json!({
            "name": name,
            "image": self.image,
            "ports": ports,
            // Liveness answers while the model loads, so no startup probe is needed; readiness
            // is false until the model has loaded, and again during the drain.
            "livenessProbe": probe("/v2/health/live", 10, 3),
            "readinessProbe": probe("/v2/health/ready", 5, 2),
            "resources": {
                "requests": {"cpu": self.cpu, "memory": self.memory},
                "limits": limits,
            },
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": UID,
                "runAsGroup": UID,
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        });
        if !env.is_empty() {
            container["env"] = json!(env);
        }
        container
    }

    /// Pod-level settings shared by the Deployment's pod template and KServe's predictor.
    fn pod_settings(&self) -> Value {
        let mut pod = json!({
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": UID,
                "runAsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        });
        if self.gpu {
            pod["runtimeClassName"] = json!("nvidia");
        }
        if let Some(account) = &self.service_account {
            pod["serviceAccountName"] = json!(account);
        }
        pod
    }

    fn deployment(&self) -> Value {
        let mut pod = self.pod_settings();
        pod["containers"] =
            json!([self.container("server", self.ports("grpc"), json!("http"), self.port_env())]);
        let mut deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {
                "selector": {"matchLabels": self.labels()},
                "template": {
                    "metadata": {
                        "labels": self.labels(),
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": self.port.to_string(),
                            "prometheus.io/path": "/metrics",
                        },
                    },
                    "spec": pod,
                },
            },
        });
        // With an autoscaler, replicas is the autoscaler's to set: a replica count here would
        // reset it on every apply.
        if self.autoscaling.is_none() {
            deployment["spec"]["replicas"] = json!(self.replicas);
        }
        deployment
    }

    fn service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {
                "type": "ClusterIP",
                "selector": self.labels(),
                "ports": [
                    {"name": "http", "port": SERVICE_HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
                    {
                        "name": "grpc",
                        "port": self.grpc_port,
                        "targetPort": "grpc",
                        "protocol": "TCP",
                        "appProtocol": H2C,
                    },
                ],
            },
        })
    }

    fn horizontal_pod_autoscaler(&self, autoscaling: &Autoscaling) -> Value {
        json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name},
                "minReplicas": self.replicas,
                "maxReplicas": autoscaling.max_replicas,
                "metrics": [cpu_metric(autoscaling.target_cpu)],
            },
        })
    }

    fn pod_disruption_budget(&self, target: Target) -> Value {
        let selector = if target.is_kserve() {
            // The labels KServe puts on the predictor's pods.
            json!({"serving.kserve.io/inferenceservice": self.name, "component": "predictor"})
        } else {
            self.labels()
        };
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {
                // One pod at a time, whatever the replica count: a single replica can still be
                // drained, and an unready pod never blocks a drain.
                "maxUnavailable": 1,
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
                "selector": {"matchLabels": selector},
            },
        })
    }

    /// The replica and autoscaling fields of a KServe predictor, and the annotations its
    /// InferenceService needs.
    fn kserve_predictor(&self) -> (Value, Value) {
        let mut predictor = self.pod_settings();
        predictor["minReplicas"] = json!(self.replicas);
        // Knative (KServe's other mode) reserves PORT, allows one port and limits pod settings.
        let mut annotations = json!({"serving.kserve.io/deploymentMode": "Standard"});
        if let Some(autoscaling) = &self.autoscaling {
            predictor["maxReplicas"] = json!(autoscaling.max_replicas);
            predictor["autoScaling"] = json!({"metrics": [cpu_metric(autoscaling.target_cpu)]});
            annotations["serving.kserve.io/autoscalerClass"] = json!("hpa");
        }
        (predictor, annotations)
    }

    fn serving_runtime(&self, target: Target) -> Value {
        let mut container = self.container(
            "kserve-container",
            self.ports(KSERVE_GRPC_PORT_NAME),
            json!(self.port),
            Vec::new(),
        );
        // The image's entrypoint serves the model inside it; a runtime serves KServe's.
        container["command"] = json!([crate::media::SERVER_PATH]);
        container["args"] = json!([
            format!("--model_dir={KSERVE_MODEL_DIR}"),
            // KServe replaces {{.Name}} with the InferenceService's name.
            "--model_name={{.Name}}",
            format!("--http_port={}", self.port),
            format!("--grpc_port={}", self.grpc_port),
        ]);
        json!({
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": if target == Target::ServingRuntime { "ServingRuntime" } else { "ClusterServingRuntime" },
            "metadata": {
                "name": self.runtime_name,
                "labels": {
                    "app.kubernetes.io/name": self.runtime_name,
                    "app.kubernetes.io/managed-by": "skiff",
                },
            },
            "spec": {
                "annotations": {
                    "prometheus.kserve.io/port": self.port.to_string(),
                    "prometheus.kserve.io/path": "/metrics",
                },
                // No priority: KServe refuses a second runtime with onnx at the priority of
                // one already there (its Triton runtime has 1), and one without a priority is
                // only auto-selected where no other runtime is; InferenceServices name this one.
                "supportedModelFormats": [{"name": "onnx", "version": "1", "autoSelect": true}],
                "protocolVersions": ["v2", "grpc-v2"],
                "containers": [container],
            },
        })
    }

    fn runtime_inference_service(&self) -> Value {
        let (mut predictor, annotations) = self.kserve_predictor();
        predictor["model"] = json!({
            "modelFormat": {"name": "onnx"},
            "runtime": self.runtime_name,
            "protocolVersion": "v2",
            "storageUri": self.storage_uri,
        });
        self.inference_service_of(predictor, annotations)
    }

    fn inference_service(&self) -> Value {
        let (mut predictor, annotations) = self.kserve_predictor();
        predictor["containers"] = json!([self.container(
            "kserve-container",
            self.ports(KSERVE_GRPC_PORT_NAME),
            json!(self.port),
            self.port_env()
        )]);
        self.inference_service_of(predictor, annotations)
    }

    /// An InferenceService of this workload with `predictor`.
    fn inference_service_of(&self, predictor: Value, annotations: Value) -> Value {
        json!({
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": self.name,
                "labels": self.labels(),
                "annotations": annotations,
            },
            "spec": {"predictor": predictor},
        })
    }
}

/// An autoscaling/v2 metric (KServe's has the same shape): average CPU use at `percent` of the
/// request.
fn cpu_metric(percent: u32) -> Value {
    json!({
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}},
    })
}

/// A `--storage-uri` KServe can fetch a model from: one of [`STORAGE_URI_SCHEMES`] with
/// something after it; for `oci://`, an image in a registry.
fn check_storage_uri(uri: &str) -> Result<()> {
    let forms = "s3://BUCKET/PATH, gs://BUCKET/PATH, https://HOST/PATH, pvc://CLAIM/PATH or oci://HOST/REPO:TAG";
    let Some(scheme) = STORAGE_URI_SCHEMES.iter().find(|s| uri.starts_with(*s)) else {
        return Err(Error::Invalid(format!(
            "--storage-uri {uri:?} is not a location skiff writes for KServe (write {forms})"
        )));
    };
    let rest = &uri[scheme.len()..];
    if rest.is_empty() || rest.starts_with('/') {
        return Err(Error::Invalid(format!(
            "--storage-uri {uri:?} names no bucket, host or claim after {scheme} (write {forms})"
        )));
    }
    if rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Error::Invalid(format!(
            "--storage-uri {uri:?} holds a space or control character (percent-encode it, e.g. %20)"
        )));
    }
    if *scheme == "oci://"
        && !matches!(
            Reference::parse_image(&format!("docker://{rest}")),
            Ok(Reference::Registry { .. })
        )
    {
        return Err(Error::Invalid(format!(
            "--storage-uri {uri:?} is not a modelcar image in a registry (write oci://HOST/REPO[:TAG|@DIGEST])"
        )));
    }
    Ok(())
}

/// The note [`Workload::yaml`] puts above GPU manifests.
pub const GPU_NOTE: &str = "--gpu: the image must be skiff's GPU image (a glibc skiff-server with ONNX Runtime GPU, see images/gpu/README.md); the static image runs on CPUs only";

/// A name from a repository's last component: `team/my_model.v2` gives `my-model-v2`.
fn name_from_repository(repository: &str) -> Result<String> {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let mut name = String::new();
    for c in last
        .chars()
        .map(|c| if c == '.' || c == '_' { '-' } else { c })
    {
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    match name_problem(&name, 63) {
        None => Ok(name),
        Some(problem) => Err(Error::Invalid(format!(
            "cannot name the workload after repository {repository:?}: {name:?} {problem} (pass --name NAME)"
        ))),
    }
}

/// What keeps `name` from being a DNS-1035 label of at most `max` characters (Service and
/// InferenceService names must be one).
fn name_problem(name: &str, max: usize) -> Option<String> {
    let bad = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    if name.is_empty() {
        Some("is empty".into())
    } else if name.len() > max {
        Some(format!("has {} characters", name.len()))
    } else if let Some(c) = bad {
        Some(format!("contains {c:?}"))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("does not start with a letter".into())
    } else if name.ends_with('-') {
        Some("ends with '-'".into())
    } else {
        None
    }
}

/// A DNS-1123 subdomain, the names most Kubernetes objects (service accounts among them) take.
fn is_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A Kubernetes resource quantity: a decimal number, then a binary (`Ki`..`Ei`) or decimal
/// (`n`, `u`, `m`, `k`, `M`..`E`) suffix or an exponent (`e3`).
fn is_quantity(s: &str) -> bool {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number_ok =
        number.matches('.').count() <= 1 && number.contains(|c: char| c.is_ascii_digit());
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .map(|rest| rest.strip_prefix(['+', '-']).unwrap_or(rest))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    let unit = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    );
    number_ok && (unit || exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_matches_the_image() {
        assert_eq!(crate::media::SERVER_USER, format!("{UID}:{UID}"));
    }

    #[test]
    fn references() {
        for (reference, image) in [
            (
                "registry.example.com/team/iris:1",
                "registry.example.com/team/iris:1",
            ),
            ("docker://localhost:5000/iris", "localhost:5000/iris:latest"),
            (
                &format!("docker://r.io/a/iris@sha256:{}", "0".repeat(64)),
                &format!("r.io/a/iris@sha256:{}", "0".repeat(64)),
            ),
        ] {
            let workload = Workload::new(reference, None).unwrap();
            assert_eq!(
                (workload.image.as_str(), workload.name.as_str()),
                (image, "iris")
            );
        }
        for bad in ["oci:out:v1", "iris:1", "docker://iris", ""] {
            assert!(Workload::new(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            name_from_repository("team/my_model.v2").unwrap(),
            "my-model-v2"
        );
        assert_eq!(name_from_repository("a__b").unwrap(), "a-b");
        let err = name_from_repository("team/2d").unwrap_err().to_string();
        assert!(
            err.contains("does not start with a letter") && err.contains("--name"),
            "{err}"
        );
        assert_eq!(name_problem("iris-1", 63), None);
        assert!(name_problem(&"a".repeat(64), 63).is_some());
        assert!(name_problem("Iris", 63).is_some());
        assert!(name_problem("iris-", 63).is_some());
        let long = Workload {
            name: "a".repeat(60),
            ..Workload::new("r.io/iris", None).unwrap()
        };
        assert!(long.manifests(Target::Deployment).is_ok());
        let err = long.manifests(Target::KServe).unwrap_err().to_string();
        assert!(
            err.contains("at most 53") && err.contains("-predictor"),
            "{err}"
        );
    }

    #[test]
    fn storage_uris() {
        for ok in [
            "s3://models/iris",
            "gs://bucket/iris/1",
            "https://example.com/iris.tar.gz",
            "pvc://models/iris",
            "pvc://models",
            "oci://registry.example.com/models/iris-modelcar:1",
        ] {
            assert!(check_storage_uri(ok).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("http://example.com/iris", "not a location"),
            ("file:///models", "not a location"),
            ("S3://models/iris", "not a location"),
            ("/mnt/models", "not a location"),
            ("s3://", "names no bucket"),
            ("pvc:///iris", "names no bucket"),
            ("gs://bucket/my model", "space"),
            ("oci://iris", "modelcar image"),
        ] {
            let err = check_storage_uri(bad).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn runtime_names() {
        let workload = Workload::new("r.io/team/skiff-onnx:1", Some("iris")).unwrap();
        assert_eq!(
            (workload.name.as_str(), workload.runtime_name.as_str()),
            ("iris", "skiff-onnx")
        );
        // A repository that makes no name leaves the runtime the one given.
        let workload = Workload::new("r.io/team/3d:1", Some("iris")).unwrap();
        assert_eq!(workload.runtime_name, "iris");
    }

    #[test]
    fn subdomains() {
        for ok in ["default", "model-reader", "sa.v1", "a"] {
            assert!(is_subdomain(ok), "{ok}");
        }
        for bad in ["", "Reader", "a..b", "-a", "a-", "a_b", &"a".repeat(254)] {
            assert!(!is_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for ok in [
            "500m", "2", "0.5", "1.5Gi", "256Mi", "1e3", "1E+2", "100k", ".5",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "half", "256MB", "-1", "1e", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn yaml_scalars_read_back_as_written() {
        let workload = Workload::new("r.io/iris", None).unwrap();
        let yaml = workload.yaml(Target::Deployment).unwrap();
        assert!(yaml.starts_with("---\n"), "{yaml}");
        assert!(yaml.contains("prometheus.io/scrape: \"true\""), "{yaml}");
        assert!(yaml.contains("value: \"8080\""), "{yaml}");
        let digest = format!("r.io/iris@sha256:{}", "0".repeat(64));
        let yaml = Workload::new(&digest, None)
            .unwrap()
            .yaml(Target::KServe)
            .unwrap();
        assert!(yaml.contains(&format!("image: {digest}\n")), "{yaml}");
    }
}
