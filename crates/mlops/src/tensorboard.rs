//! TensorBoard event files.

use crate::{Result, Run};
use std::path::{Path, PathBuf};

/// Writes `run` as TensorBoard events into a new folder under `logdir` (named `name`, else
/// after the command, estimator and time) and returns that folder.
pub fn write_run(logdir: &Path, name: Option<&str>, run: &Run) -> Result<PathBuf> {
    let _ = (logdir, name, run);
    todo!()
}
