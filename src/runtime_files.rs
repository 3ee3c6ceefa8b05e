//! Where an installed skiff finds the files it puts into images.
//!
//! The install step (`scripts/install.sh`) builds the static server once and lays it out as
//! `PREFIX/bin/skiff` beside `PREFIX/lib/skiff/linux-amd64/skiff-server` (and
//! `linux-arm64/skiff-server` where it was built for arm64 too), the component engine as
//! `PREFIX/lib/skiff/wasm32-wasip2/skiff-guest.wasm` and the same engine as a WASI preview-1
//! command as `PREFIX/lib/skiff/wasm32-wasip1/skiff-module.wasm`. `SKIFF_RUNTIME_DIR` points elsewhere
//! (tests and development builds use it).

use anyhow::{Result, bail};
use skiff_pack::oci::Platform;
use std::path::PathBuf;

/// The server binary's file name.
pub const SERVER: &str = "skiff-server";

/// The engine of model components (wasm32-wasip2), into which `skiff pack --format component`
/// plugs a model.
pub const ENGINE: &str = "wasm32-wasip2/skiff-guest.wasm";

/// The same engine as a WASI preview-1 command (a core module), into which `skiff pack --format
/// module` loads a model.
pub const MODULE_ENGINE: &str = "wasm32-wasip1/skiff-module.wasm";

/// Where runtime files are looked for: `SKIFF_RUNTIME_DIR`, then `PREFIX/lib/skiff` beside the
/// installed `PREFIX/bin/skiff`.
fn runtime_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("SKIFF_RUNTIME_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
    {
        dirs.push(prefix.join("lib").join("skiff"));
    }
    dirs
}

fn searched(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The first runtime file `relative` that exists and starts with `magic`.
fn find(relative: &str, magic: &[u8], what: &str) -> Result<Option<PathBuf>> {
    for dir in runtime_dirs() {
        let path = dir.join(relative);
        if path.is_file() {
            let head = std::fs::read(&path).map(|b| b.starts_with(magic));
            if !matches!(head, Ok(true)) {
                bail!(
                    "{} is not {what}: reinstall skiff (scripts/install.sh)",
                    path.display()
                );
            }
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The static server binary for `platform`, checked to be an ELF file.
pub fn server_binary(platform: &Platform) -> Result<PathBuf> {
    let platform_dir = format!("{}-{}", platform.os, platform.architecture);
    let relative = format!("{platform_dir}/{SERVER}");
    match find(&relative, b"\x7fELF", "a linux executable")? {
        Some(path) => Ok(path),
        None => bail!(
            "the static server for {platform} images ({relative}) was not found in {}: build it with images/build-server.sh RUNTIME_DIR {platform} and set SKIFF_RUNTIME_DIR, or install skiff with scripts/install.sh",
            searched(&runtime_dirs())
        ),
    }
}

/// The component engine, checked to be a WebAssembly component.
pub fn component_engine() -> Result<PathBuf> {
    engine(
        "component",
        ENGINE,
        b"\0asm\x0d\0\x01\0",
        "a WebAssembly component",
    )
}

/// The module engine, checked to be a WebAssembly core module.
pub fn module_engine() -> Result<PathBuf> {
    engine(
        "module",
        MODULE_ENGINE,
        b"\0asm\x01\0\0\0",
        "a WebAssembly module",
    )
}

/// The `kind` engine `relative`, starting with `magic` (the version and layer that tell a
/// component from a core module).
fn engine(kind: &str, relative: &str, magic: &[u8], what: &str) -> Result<PathBuf> {
    match find(relative, magic, what)? {
        Some(path) => Ok(path),
        None => bail!(
            "the {kind} engine ({relative}) was not found in {}: build it with images/build-guest.sh RUNTIME_DIR and set SKIFF_RUNTIME_DIR, or install skiff with scripts/install.sh",
            searched(&runtime_dirs())
        ),
    }
}
