//! Kubernetes manifests that run a server image: a `Deployment` with its `Service`, or a KServe
//! `InferenceService` whose predictor is the image.
//!
//! They follow the image's contract (`images/README.md`): its entrypoint runs `skiff-server` on
//! the model as user 65532, listening on `$PORT`; liveness answers while the model loads and
//! readiness once it has; after SIGTERM readiness turns 503 for 5 s, then the listener closes
//! and requests in flight finish.
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
}

/// A server image and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The image as a cluster pulls it: `HOST/REPO:TAG` or `HOST/REPO@sha256:...`.
    pub image: String,
    /// Object name and `app.kubernetes.io/name` label: a DNS-1035 label.
    pub name: String,
    /// Pods to run (at least 1); KServe's `minReplicas`.
    pub replicas: u32,
    /// Port the server listens on (`PORT`).
    pub port: u16,
    /// CPU request, a Kubernetes quantity such as `500m`.
    pub cpu: String,
    /// Memory request and limit, a Kubernetes quantity such as `256Mi`.
    pub memory: String,
    /// One NVIDIA GPU, the `nvidia` runtime class and `SKIFF_BACKEND=cuda`: for the GPU image.
    pub gpu: bool,
}

impl Workload {
    /// The image `reference` names (`[docker://]HOST/REPO[:TAG|@sha256:...]`), called `name` or
    /// after the repository's last component; one replica on port 8080 with 500m CPU and 256Mi
    /// memory, no GPU.
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
        let name = match name {
            Some(name) => name.to_string(),
            None => name_from_repository(&repository)?,
        };
        Ok(Workload {
            image: format!("{registry}/{repository}{sep}{tag}"),
            name,
            replicas: 1,
            port: crate::media::SERVER_PORT,
            cpu: "500m".into(),
            memory: "256Mi".into(),
            gpu: false,
        })
    }

    /// The manifests for `target`.
    pub fn manifests(&self, target: Target) -> Result<Vec<Value>> {
        self.check(target)?;
        Ok(match target {
            Target::Deployment => vec![self.deployment(), self.service()],
            Target::KServe => vec![self.inference_service()],
        })
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
        let max = match target {
            Target::Deployment => 63,
            Target::KServe => 63 - KSERVE_SUFFIX.len(),
        };
        if let Some(problem) = name_problem(&self.name, max) {
            let kserve = match target {
                Target::KServe => " with --kserve, which appends -predictor",
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
        if self.port == 0 {
            return Err(Error::Invalid(
                "--port 0 is not a port a Kubernetes container can listen on (use 1 to 65535)"
                    .into(),
            ));
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

    /// The server's container: ports, environment, probes, resources and a locked-down
    /// security context. `probe_port` is how the probes name the port.
    fn container(&self, name: &str, ports: Value, probe_port: Value) -> Value {
        let mut env = vec![json!({"name": "PORT", "value": self.port.to_string()})];
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
        json!({
            "name": name,
            "image": self.image,
            "ports": ports,
            "env": env,
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
        })
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
        pod
    }

    fn deployment(&self) -> Value {
        let ports = json!([{"name": "http", "containerPort": self.port, "protocol": "TCP"}]);
        let mut pod = self.pod_settings();
        pod["containers"] = json!([self.container("server", ports, json!("http"))]);
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {
                "replicas": self.replicas,
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
        })
    }

    fn service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {
                "type": "ClusterIP",
                "selector": self.labels(),
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        })
    }

    fn inference_service(&self) -> Value {
        let ports = json!([{"containerPort": self.port, "protocol": "TCP"}]);
        let mut predictor = self.pod_settings();
        predictor["minReplicas"] = json!(self.replicas);
        predictor["containers"] =
            json!([self.container("kserve-container", ports, json!(self.port))]);
        json!({
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": self.name,
                "labels": self.labels(),
                // Knative (KServe's other mode) reserves PORT and limits pod settings.
                "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
            },
            "spec": {"predictor": predictor},
        })
    }
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
