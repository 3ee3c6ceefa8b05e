use anyhow::{Result, bail};
use skiff_pack::k8s::{Autoscaling, GPU_MEMORY, GPU_NOTE, TARGET_CPU, Target, Workload};
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// The image in a registry the cluster pulls from: [docker://]HOST/REPO[:TAG|@DIGEST]
    reference: String,
    /// Name of the objects and their app.kubernetes.io/name label; with --serving-runtime, the
    /// InferenceService's, under which the model is served [default: the repository's last
    /// component]
    #[arg(long)]
    name: Option<String>,
    /// Pods to run (KServe: minReplicas); with --hpa, the fewest
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// Port the server listens on in the container
    #[arg(long, default_value_t = skiff_pack::media::SERVER_PORT)]
    port: u16,
    /// Port of the server's gRPC listener (Open Inference Protocol over gRPC), declared on the
    /// container and the Service with appProtocol kubernetes.io/h2c
    #[arg(long, default_value_t = skiff_pack::k8s::GRPC_PORT)]
    grpc_port: u16,
    /// Write a KServe InferenceService instead of a Deployment and a Service
    #[arg(long)]
    kserve: bool,
    /// Write a KServe ClusterServingRuntime that runs the image's server on the model KServe
    /// fetches into /mnt/models, and an InferenceService that uses it (needs --storage-uri)
    #[arg(long)]
    serving_runtime: bool,
    /// With --serving-runtime: a ServingRuntime in the InferenceService's namespace instead of a
    /// cluster-wide ClusterServingRuntime
    #[arg(long)]
    namespaced_runtime: bool,
    /// With --serving-runtime: the runtime's name [default: the repository's last component]
    #[arg(long)]
    runtime_name: Option<String>,
    /// With --serving-runtime: where KServe fetches the model from: s3://BUCKET/PATH (S3 or a
    /// compatible store), gs://BUCKET/PATH (Google Cloud Storage), https://HOST/PATH (a file
    /// or archive over HTTPS, Azure Blob Storage too), pvc://CLAIM/PATH (a PersistentVolumeClaim
    /// in the namespace), oci://HOST/REPO:TAG (a modelcar: an image holding the model under
    /// /models, run beside the server; KServe's storage.enableModelcar must be on). Credentials
    /// come from the secrets of the pods' service account (--service-account), as KServe
    /// documents
    #[arg(long, value_name = "URI")]
    storage_uri: Option<String>,
    /// The pods' service account [default: the namespace's default]
    #[arg(long, value_name = "NAME")]
    service_account: Option<String>,
    /// Scale on CPU from --replicas up to --max-replicas: a HorizontalPodAutoscaler
    /// (autoscaling/v2), or with KServe the InferenceService's own autoscaling fields
    #[arg(long)]
    hpa: bool,
    /// With --hpa: the most pods to run
    #[arg(long)]
    max_replicas: Option<u32>,
    /// With --hpa: the average CPU use to keep, in percent of the CPU request [default: 80]
    #[arg(long, value_name = "PERCENT")]
    target_cpu: Option<u32>,
    /// Add a PodDisruptionBudget (policy/v1) that lets node drains take one pod at a time
    #[arg(long)]
    pdb: bool,
    /// Ask for one NVIDIA GPU and run on CUDA (needs skiff's GPU image)
    #[arg(long)]
    gpu: bool,
    /// CPU request (a Kubernetes quantity)
    #[arg(long, default_value = "500m")]
    cpu: String,
    /// Memory request and limit (a Kubernetes quantity) [default: 256Mi; 2Gi with --gpu]
    #[arg(long)]
    memory: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let target = target(&args)?;
    let mut workload = Workload::new(&args.reference, args.name.as_deref())?;
    workload.replicas = args.replicas;
    workload.port = args.port;
    workload.grpc_port = args.grpc_port;
    workload.cpu = args.cpu;
    workload.gpu = args.gpu;
    workload.storage_uri = args.storage_uri;
    workload.pdb = args.pdb;
    workload.service_account = args.service_account;
    if let Some(runtime_name) = args.runtime_name {
        workload.runtime_name = runtime_name;
    }
    match args.memory {
        Some(memory) => workload.memory = memory,
        None if args.gpu => workload.memory = GPU_MEMORY.into(),
        None => {}
    }
    workload.autoscaling = match (args.hpa, args.max_replicas) {
        (true, Some(max_replicas)) => Some(Autoscaling {
            max_replicas,
            target_cpu: args.target_cpu.unwrap_or(TARGET_CPU),
        }),
        (true, None) => {
            bail!("--hpa needs --max-replicas N: the most pods the autoscaler may run")
        }
        (false, _) if args.max_replicas.is_some() || args.target_cpu.is_some() => {
            bail!("--max-replicas and --target-cpu set an autoscaler: add --hpa")
        }
        (false, _) => None,
    };
    let yaml = workload.yaml(target)?;
    if args.gpu {
        eprintln!("skiff: note: {GPU_NOTE}");
    }
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}

/// The objects the flags ask for.
fn target(args: &Args) -> Result<Target> {
    if args.kserve && args.serving_runtime {
        bail!(
            "--kserve and --serving-runtime are two ways to run on KServe: --kserve runs the model inside the image, --serving-runtime the one at --storage-uri (pass one)"
        );
    }
    if !args.serving_runtime && (args.namespaced_runtime || args.runtime_name.is_some()) {
        bail!(
            "--namespaced-runtime and --runtime-name describe a serving runtime: add --serving-runtime"
        );
    }
    Ok(
        match (args.kserve, args.serving_runtime, args.namespaced_runtime) {
            (true, _, _) => Target::KServe,
            (_, true, true) => Target::ServingRuntime,
            (_, true, false) => Target::ClusterServingRuntime,
            _ => Target::Deployment,
        },
    )
}
