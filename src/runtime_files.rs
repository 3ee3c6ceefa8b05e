//! Where an installed skiff finds the files it puts into images.
//!
//! The install step (`scripts/install.sh`) builds the static server once and lays it out as
//! `PREFIX/bin/skiff` beside `PREFIX/lib/skiff/linux-amd64/skiff-server`. `SKIFF_RUNTIME_DIR`
//! points elsewhere (tests and development builds use it).

use anyhow::{Result, bail};
use std::path::PathBuf;

/// The platform directory of the server binary that images get.
pub const PLATFORM_DIR: &str = "linux-amd64";
/// The server binary's file name.
pub const SERVER: &str = "skiff-server";

/// The static linux/amd64 server binary, checked to be an executable ELF file.
pub fn server_binary() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("SKIFF_RUNTIME_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
    {
        candidates.push(prefix.join("lib").join("skiff"));
    }
    for dir in &candidates {
        let path = dir.join(PLATFORM_DIR).join(SERVER);
        if path.is_file() {
            let head = std::fs::read(&path).map(|b| b.get(..4) == Some(b"\x7fELF".as_slice()));
            if !matches!(head, Ok(true)) {
                bail!(
                    "{} is not a linux executable: reinstall skiff (scripts/install.sh)",
                    path.display()
                );
            }
            return Ok(path);
        }
    }
    bail!(
        "the static server for images ({PLATFORM_DIR}/{SERVER}) was not found in {}: install skiff with scripts/install.sh, or set SKIFF_RUNTIME_DIR",
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )
}
