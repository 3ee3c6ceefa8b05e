use anyhow::Result;
use skiff_pack::k8s::{GPU_MEMORY, GPU_NOTE, Target, Workload};
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// The image in a registry the cluster pulls from: [docker://]HOST/REPO[:TAG|@DIGEST]
    reference: String,
    /// Name of the objects and their app.kubernetes.io/name label [default: the repository's
    /// last component]
    #[arg(long)]
    name: Option<String>,
    /// Pods to run (KServe: minReplicas)
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// Port the server listens on in the container
    #[arg(long, default_value_t = skiff_pack::media::SERVER_PORT)]
    port: u16,
    /// Write a KServe InferenceService instead of a Deployment and a Service
    #[arg(long)]
    kserve: bool,
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
    let mut workload = Workload::new(&args.reference, args.name.as_deref())?;
    workload.replicas = args.replicas;
    workload.port = args.port;
    workload.cpu = args.cpu;
    workload.gpu = args.gpu;
    match args.memory {
        Some(memory) => workload.memory = memory,
        None if args.gpu => workload.memory = GPU_MEMORY.into(),
        None => {}
    }
    let target = if args.kserve {
        Target::KServe
    } else {
        Target::Deployment
    };
    let yaml = workload.yaml(target)?;
    if args.gpu {
        eprintln!("skiff: note: {GPU_NOTE}");
    }
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}
