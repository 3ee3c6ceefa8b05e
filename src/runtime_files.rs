//! Where an installed skiff finds the files it puts into images.
//!
//! The install step (`scripts/install.sh`) builds the static server once and lays it out as
//! `PREFIX/bin/skiff` beside `PREFIX/lib/skiff/linux-amd64/skiff-server` (and
//! `linux-arm64/skiff-server` where it was built for arm64 too). `SKIFF_RUNTIME_DIR` points
//! elsewhere (tests and development builds use it).

use anyhow::{Result, bail};
use skiff_pack::layout::Platform;
use std::path::PathBuf;

/// The server binary's file name.
pub const SERVER: &str = "skiff-server";

/// The static server binary for `platform`, checked to be an ELF file.
pub fn server_binary(platform: &Platform) -> Result<PathBuf> {
    let platform_dir = format!("{}-{}", platform.os, platform.architecture);
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
        let path = dir.join(&platform_dir).join(SERVER);
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
        "the static server for {platform} images ({platform_dir}/{SERVER}) was not found in {}: build it with images/build-server.sh RUNTIME_DIR {platform} and set SKIFF_RUNTIME_DIR, or install skiff with scripts/install.sh",
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )
}
