//! `skiff`: fit a model from a CSV file, export it to ONNX, pack it into an image, push it to a
//! registry and serve it. Each command parses its arguments and calls the libraries under
//! `crates/`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;
mod progress;
mod runtime_files;

// `skiff serve` allocates per request on many threads; mimalloc keeps that off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "Classical ML from a CSV file to a running service", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit an estimator on a CSV file and write it as ONNX
    Fit(cmd::fit::Args),
    /// List the estimators with their hyperparameters and defaults
    Algorithms(cmd::algorithms::Args),
    /// Score an ONNX model on a CSV file with true targets
    Eval(cmd::eval::Args),
    /// Cross-validate an estimator on a CSV file: its score on each fold, fitted on the others
    Cv(cmd::cv::Args),
    /// Search hyperparameters by cross-validation and write the best model as ONNX
    Tune(cmd::tune::Args),
    /// Explain a model: permutation importance, partial dependence, SHAP values
    Explain(cmd::explain::Args),
    /// Compare a model's metrics between groups of rows (Fairlearn's MetricFrame and parity)
    Fairness(cmd::fairness::Args),
    /// Differential privacy: private summaries of a CSV file, and privacy budgets
    Dp(cmd::dp::Args),
    /// Write an ONNX model in another tool's format (an MLflow model folder)
    Export(cmd::export::Args),
    /// Predict with an ONNX model on a CSV file
    Predict(cmd::predict::Args),
    /// Serve models over the Open Inference Protocol (KServe v2: REST, and gRPC with --grpc-addr)
    Serve(cmd::serve::Args),
    /// Compare a model's backends: do they agree, and how fast each runs at each batch size
    Bench(cmd::bench::Args),
    /// Pack a model into an OCI image (a local layout or a registry)
    Pack(cmd::pack::Args),
    /// Push an image from a local layout to a registry
    Push(cmd::push::Args),
    /// Pull an image from a registry into a local layout
    Pull(cmd::pull::Args),
    /// Show an image's digest, platforms, labels, annotations and layers without pulling it
    Inspect(cmd::inspect::Args),
    /// Print Kubernetes manifests that serve an image (Deployment and Service, or KServe)
    K8s(cmd::k8s::Args),
    /// Make a key pair for signing images (cosign's format: cosign.key, cosign.pub)
    Keygen(cmd::sign::KeygenArgs),
    /// Sign an image in a registry (cosign-compatible: its .sig tag and a referrer)
    Sign(cmd::sign::SignArgs),
    /// Check an image's signature with a public key (skiff's or cosign's signatures)
    Verify(cmd::sign::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        init_warnings();
    }
    let result = match cli.command {
        Command::Algorithms(args) => cmd::algorithms::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Cv(args) => cmd::cv::run(args),
        Command::Tune(args) => cmd::tune::run(args),
        Command::Fit(args) => cmd::fit::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Dp(args) => cmd::dp::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Fairness(args) => cmd::fairness::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Pack(args) => cmd::pack::run(args),
        Command::Push(args) => cmd::push::run(args),
        Command::Pull(args) => cmd::pull::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::K8s(args) => cmd::k8s::run(args),
        Command::Keygen(args) => cmd::sign::keygen(args),
        Command::Sign(args) => cmd::sign::sign(args),
        Command::Verify(args) => cmd::sign::verify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Warnings of the libraries a command runs quietly otherwise (a component's precompiled code
/// passed by, say) go to stderr, one line each; `serve` sets up its own logs.
fn init_warnings() {
    let directives =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "off,skiff_component=warn".into());
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_new(directives) {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .init();
    }
}

/// The error and its causes on one line, each cause once: many errors already quote their
/// source in their own message.
fn one_line(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    message
}

/// A reader that stopped reading (`skiff predict ... | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
