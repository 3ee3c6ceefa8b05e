pub mod algorithms;
pub mod eval;
pub mod fit;
pub mod pack;
pub mod predict;
pub mod pull;
pub mod push;
pub mod serve;

use anyhow::Context;

/// A current-thread tokio runtime for the commands that talk to the network.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
