//! Precompiled components: wasmtime's native code for a component, made ahead of time for one
//! target, so that loading it maps a file instead of seconds of Cranelift.
//!
//! A precompiled file is the bytes [`Engine::precompile_component`] made (an ELF object) and
//! a short trailer after them, so that the file maps as it is ([`Component::deserialize_file`]:
//! pages are read as the code runs, nothing is copied). The trailer says what the code was
//! compiled from (the component's sha256) and by what: the target, the wasmtime version and
//! the hash of every engine setting that compiled code depends on
//! ([`Engine::precompile_compatibility_hash`]). A loader takes the code only when all three
//! match its own engine; anything else is ignored with one log line, and the component is
//! compiled instead. Precompiled code runs natively, outside the sandbox the wasm would give,
//! so it is as trusted as the place it came from (the component's own OCI artifact, or a file
//! beside it), like the server binary of an image.
//!
//! Code for a target is compiled for that architecture's baseline (plus SSE4.2 on x86-64, which
//! every x86-64 server of the last fifteen years has), not for the packing machine's CPU, so it
//! runs on any machine of the architecture; wasmtime checks the CPU's features once more when
//! the code is loaded.
//!
//! Built without the `compiler` feature (the static server of edge devices), skiff runs only
//! precompiled code: it cannot compute a target's engine hash, so it leaves the settings check
//! to wasmtime's own when the code loads, and a component with no code for this machine is
//! refused in one line that says how to pack it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// The last bytes of a precompiled file, after its header (JSON) and the header's length (u32,
/// little-endian).
const MAGIC: &[u8; 8] = b"skiffpc2";
/// The first bytes of the files an earlier skiff wrote, the header before the code.
const EARLIER_MAGIC: &[u8; 8] = b"skiffpc1";
/// The longest header a precompiled file may have.
const MOST_HEADER: usize = 64 << 10;
/// The wasmtime that compiles and loads components here.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// What a precompiled file says about its code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// The component the code was compiled from: `sha256:<hex>`.
    pub component: String,
    /// The target triple the code is for.
    pub target: String,
    /// The wasmtime version that compiled it.
    pub wasmtime: String,
    /// The hash of the compiling engine's settings (hex): code loads only into an engine
    /// whose hash is the same.
    pub engine: String,
}

/// The architectures components can be precompiled for, as `--precompile` names them.
pub const ARCHITECTURES: [&str; 2] = ["x86_64", "aarch64"];

/// The target triple code for `architecture` (`x86_64`, `aarch64`, or a whole Linux triple) is
/// compiled for.
pub fn target_triple(architecture: &str) -> Result<String, String> {
    let arch = architecture.split('-').next().unwrap_or_default();
    let arch = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    };
    if !ARCHITECTURES.contains(&arch)
        || (architecture.contains('-') && !architecture.contains("-linux"))
    {
        return Err(format!(
            "cannot precompile for {architecture}: skiff precompiles for Linux on {} (name the architecture, e.g. --precompile x86_64,aarch64)",
            ARCHITECTURES.join(" and ")
        ));
    }
    Ok(format!("{arch}-unknown-linux-gnu"))
}

/// The target this machine loads precompiled code for, if it is one skiff precompiles for.
pub fn host_target() -> Option<String> {
    cfg!(target_os = "linux")
        .then(|| target_triple(std::env::consts::ARCH).ok())
        .flatten()
}

/// The engine settings code is compiled with for `target` (or for this machine, natively):
/// what the loading engine (`crate::engine`) uses too, less its allocator, which compiled code
/// does not depend on.
// CPU features named for a target are checked when the code loads.
#[cfg_attr(feature = "compiler", allow(unsafe_code))]
pub(crate) fn compiler_config(
    #[cfg_attr(not(feature = "compiler"), allow(unused_variables))] target: Option<&str>,
) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    #[cfg(feature = "compiler")]
    if let Some(target) = target {
        config.target(target)?;
        if target.starts_with("x86_64") {
            for flag in [
                "has_sse3",
                "has_ssse3",
                "has_sse41",
                "has_sse42",
                "has_popcnt",
            ] {
                // SAFETY: wasmtime checks these features against the CPU when it loads the code.
                unsafe {
                    config.cranelift_flag_enable(flag);
                }
            }
        }
    }
    Ok(config)
}

/// The hash of `engine`'s settings that compiled code depends on, as hex.
#[cfg(feature = "compiler")]
pub fn engine_hash(engine: &Engine) -> String {
    use std::hash::Hasher;
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = Sha(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex(&hasher.0.finalize())
}

/// The hash of the settings code precompiled for `target` is compiled with.
#[cfg(feature = "compiler")]
pub fn target_engine_hash(target: &str) -> wasmtime::Result<String> {
    Ok(engine_hash(&Engine::new(&compiler_config(Some(target))?)?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Compiles the component `wasm` for `target` (a triple from [`target_triple`]); returns the
/// precompiled file and what its header says.
#[cfg(feature = "compiler")]
pub fn precompile(wasm: &[u8], target: &str) -> Result<(Header, Vec<u8>), String> {
    let engine = compiler_config(Some(target))
        .and_then(|config| Engine::new(&config))
        .map_err(|e| format!("cannot set up wasmtime for {target}: {e}"))?;
    let code = engine
        .precompile_component(wasm)
        .map_err(|e| format!("cannot compile the component for {target}: {e:#}"))?;
    let header = Header {
        component: digest(wasm),
        target: target.to_string(),
        wasmtime: WASMTIME_VERSION.to_string(),
        engine: engine_hash(&engine),
    };
    let file = encode(&header, &code);
    Ok((header, file))
}

/// A precompiled file: `code`, then `header`.
#[cfg(feature = "compiler")]
pub fn encode(header: &Header, code: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("a header serialises");
    let mut file = Vec::with_capacity(code.len() + json.len() + 4 + MAGIC.len());
    file.extend_from_slice(code);
    file.extend_from_slice(&json);
    file.extend_from_slice(&(json.len() as u32).to_le_bytes());
    file.extend_from_slice(MAGIC);
    file
}

/// Splits a precompiled file into its header and its code.
pub fn decode(file: &[u8]) -> Result<(Header, &[u8]), String> {
    let rest = file
        .strip_suffix(MAGIC)
        .ok_or_else(|| not_precompiled(file))?;
    let (rest, len) = rest.split_last_chunk::<4>().ok_or("it is cut short")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MOST_HEADER || rest.len() < len {
        return Err("it is cut short".into());
    }
    let (code, json) = rest.split_at(rest.len() - len);
    Ok((parse_header(json)?, code))
}

/// Reads the header of the precompiled file at `path`, and only that.
pub fn read_header(path: &Path) -> Result<Header, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut read_at = |at: u64, buf: &mut [u8]| {
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(buf))
            .map_err(|e| e.to_string())
    };
    let tail_len = (MAGIC.len() + 4) as u64;
    if size < tail_len {
        return Err("it is cut short".into());
    }
    let mut tail = [0u8; 12];
    read_at(size - tail_len, &mut tail)?;
    if !tail.ends_with(MAGIC) {
        let mut head = [0u8; 8];
        read_at(0, &mut head)?;
        return Err(not_precompiled(&head));
    }
    let len = u32::from_le_bytes(tail[..4].try_into().expect("four bytes")) as u64;
    if len as usize > MOST_HEADER || size < tail_len + len {
        return Err("it is cut short".into());
    }
    let mut json = vec![0u8; len as usize];
    read_at(size - tail_len - len, &mut json)?;
    parse_header(&json)
}

fn parse_header(json: &[u8]) -> Result<Header, String> {
    serde_json::from_slice(json).map_err(|e| format!("its header is broken: {e}"))
}

/// Why a file without the trailer is not taken.
fn not_precompiled(start: &[u8]) -> String {
    if start.starts_with(EARLIER_MAGIC) {
        "an earlier skiff wrote it, in a format this one does not load (pack the component again)"
            .into()
    } else {
        "it is not a skiff precompiled component".into()
    }
}

/// Precompiled code offered for a component: a file, and what to call it in the logs.
#[derive(Debug, Clone)]
pub struct Offered {
    /// Where the code came from: a file, or a layer of an OCI artifact.
    pub origin: String,
    /// The precompiled file (beside the component, or a blob of its artifact).
    pub path: PathBuf,
}

/// The path a precompiled file for `target` beside the component `path` has:
/// `iris.wasm` → `iris.x86_64.cwasm`.
pub fn beside(path: &Path, target: &str) -> PathBuf {
    let arch = target.split('-').next().unwrap_or(target);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.{arch}.cwasm"))
}

/// Gets the component `wasm` ready to run on `engine`: from offered precompiled code that was
/// made from it for this engine, else from compiled code in `cache`, else by compiling it (and
/// keeping the result in `cache`). Says which on the logs. Without the `compiler` feature only
/// offered code will do.
pub(crate) fn compile(
    engine: &Engine,
    source_name: &str,
    wasm: &[u8],
    offered: &[Offered],
    #[cfg(feature = "compiler")] cache: Option<&Path>,
) -> wasmtime::Result<Component> {
    let started = Instant::now();
    if let Some(loaded) = load_offered(engine, source_name, wasm, offered, started)? {
        return Ok(loaded);
    }
    #[cfg(feature = "compiler")]
    return cached_or_compiled(engine, source_name, wasm, cache, started);
    #[cfg(not(feature = "compiler"))]
    {
        let arch = std::env::consts::ARCH;
        wasmtime::bail!(
            "this build of skiff runs only precompiled components, and no code for {arch} came with it: pack it with `skiff pack --format component --precompile {arch}` and keep the .{arch}.cwasm file beside the component"
        )
    }
}

/// What a loader that falls back says when it passes code by.
const INSTEAD: &str = if cfg!(feature = "compiler") {
    "; compiling instead"
} else {
    ""
};

/// The first code in `offered` made from `wasm` for this machine and engine, loaded.
#[allow(unsafe_code)] // native code is loaded only when it was made from `wasm` by this engine
fn load_offered(
    engine: &Engine,
    source_name: &str,
    wasm: &[u8],
    offered: &[Offered],
    started: Instant,
) -> wasmtime::Result<Option<Component>> {
    if offered.is_empty() {
        return Ok(None);
    }
    let component = digest(wasm);
    let host = host_target();
    #[cfg(feature = "compiler")]
    let mut wanted = None;
    for offer in offered {
        let header = match read_header(&offer.path) {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!("ignoring {}: {why}", offer.origin);
                continue;
            }
        };
        if Some(&header.target) != host.as_ref() {
            tracing::debug!(
                "{} is for {}, not this machine",
                offer.origin,
                header.target
            );
            continue;
        }
        if header.component != component {
            tracing::warn!(
                "ignoring {}: it was compiled from another component ({}), not {source_name} ({component}){INSTEAD}",
                offer.origin,
                header.component
            );
            continue;
        }
        if header.wasmtime != WASMTIME_VERSION {
            tracing::warn!(
                "ignoring {}: it was compiled by another engine (wasmtime {}; this skiff runs wasmtime {WASMTIME_VERSION}){INSTEAD}",
                offer.origin,
                header.wasmtime,
            );
            continue;
        }
        // Without a compiler the settings' hash cannot be made here: wasmtime checks the
        // settings when it loads the code.
        #[cfg(feature = "compiler")]
        {
            let wanted = match &mut wanted {
                Some(hash) => hash,
                None => wanted.insert(target_engine_hash(&header.target)?),
            };
            if header.engine != *wanted {
                tracing::warn!(
                    "ignoring {}: it was compiled by another engine (settings {}; this skiff's are {}){INSTEAD}",
                    offer.origin,
                    &header.engine[..12.min(header.engine.len())],
                    &wanted[..12]
                );
                continue;
            }
        }
        // SAFETY: the header says this engine's wasmtime made the code from this very
        // component, and wasmtime checks the version, settings and CPU features once more. The
        // file is mapped: it must not change while the component runs, as with the cache's.
        let mapped = unsafe { Component::deserialize_file(engine, &offer.path) };
        // A file on a mount without execute rights cannot be mapped executable: its code is
        // read and copied instead.
        let loaded = mapped.or_else(|e| {
            tracing::debug!(
                "cannot map {} ({}); reading it",
                offer.origin,
                crate::one_line(&e)
            );
            let file = std::fs::read(&offer.path)?;
            let (_, code) = decode(&file).map_err(wasmtime::Error::msg)?;
            // SAFETY: as above.
            unsafe { Component::deserialize(engine, code) }
        });
        match loaded {
            Ok(loaded) => {
                tracing::info!(
                    "{source_name}: loaded precompiled code from {} in {:.1} ms",
                    offer.origin,
                    started.elapsed().as_secs_f64() * 1e3
                );
                return Ok(Some(loaded));
            }
            Err(e) => tracing::warn!(
                "ignoring {}: wasmtime refused it ({}){INSTEAD}",
                offer.origin,
                crate::one_line(&e)
            ),
        }
    }
    Ok(None)
}

/// The code compiled at an earlier load, from `cache`; else `wasm` compiled now, and kept
/// there.
#[cfg(feature = "compiler")]
#[allow(unsafe_code)] // the cache holds only code this engine compiled
fn cached_or_compiled<C: Code>(
    engine: &Engine,
    source_name: &str,
    wasm: &[u8],
    cache: Option<&Path>,
    started: Instant,
) -> wasmtime::Result<C> {
    let cached = cache.map(|dir| {
        dir.join(format!(
            "{}-{}.cwasm",
            digest(wasm).trim_start_matches("sha256:"),
            &engine_hash(engine)[..16]
        ))
    });
    if let Some(path) = cached.as_deref().filter(|p| p.is_file()) {
        // SAFETY: the cache holds only what this function wrote, named by the component's
        // digest and this engine's settings; wasmtime checks the version and settings again.
        match unsafe { C::deserialize_file(engine, path) } {
            Ok(loaded) => {
                // The least recently used entries go first when the cache is full.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                tracing::info!(
                    "{source_name}: loaded compiled code from the cache ({}) in {:.1} ms",
                    path.display(),
                    started.elapsed().as_secs_f64() * 1e3
                );
                return Ok(loaded);
            }
            Err(e) => {
                tracing::warn!(
                    "ignoring {}: {}; compiling instead",
                    path.display(),
                    crate::one_line(&e)
                );
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let loaded: C = compile_now(engine, source_name, wasm, started)?;
    if let Some(path) = cached {
        let dir = path.parent().unwrap_or(Path::new("."));
        let written = loaded
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|code| {
                std::fs::create_dir_all(dir)
                    .and_then(|()| skiff_data::write_atomic(&path, &code))
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => {
                tracing::debug!("kept the compiled code in {}", path.display());
                trim_cache(dir, CACHE_BYTES);
            }
            Err(e) => tracing::warn!(
                "cannot keep the compiled code in {} ({e}); the next start compiles again",
                path.display()
            ),
        }
    }
    Ok(loaded)
}

/// Compiles `wasm` with Cranelift (seconds for the engine), saying so on the logs.
#[cfg(feature = "compiler")]
fn compile_now<C: Code>(
    engine: &Engine,
    source_name: &str,
    wasm: &[u8],
    started: Instant,
) -> wasmtime::Result<C> {
    tracing::info!(
        "{source_name}: compiling {:.1} MB of wasm (pack it with --precompile to skip this)",
        wasm.len() as f64 / 1e6
    );
    let loaded = C::new(engine, wasm)?;
    tracing::info!(
        "{source_name}: compiled in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(loaded)
}

/// The core module `wasm` compiled, or taken from `cache` as [`compile`] takes components.
#[cfg(feature = "compiler")]
pub(crate) fn compile_module(
    engine: &Engine,
    source_name: &str,
    wasm: &[u8],
    cache: Option<&Path>,
) -> wasmtime::Result<wasmtime::Module> {
    cached_or_compiled(engine, source_name, wasm, cache, Instant::now())
}

/// What the compile cache keeps: wasmtime's compiled components and core modules.
#[cfg(feature = "compiler")]
#[allow(unsafe_code)]
trait Code: Sized {
    fn new(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self>;
    /// # Safety
    /// As [`Component::deserialize_file`].
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self>;
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
}

#[cfg(feature = "compiler")]
#[allow(unsafe_code)]
impl Code for Component {
    fn new(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Component::new(engine, wasm)
    }
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        unsafe { Component::deserialize_file(engine, path) }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }
}

#[cfg(feature = "compiler")]
#[allow(unsafe_code)]
impl Code for wasmtime::Module {
    fn new(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        wasmtime::Module::new(engine, wasm)
    }
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        unsafe { wasmtime::Module::deserialize_file(engine, path) }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        wasmtime::Module::serialize(self)
    }
}

/// The most compiled code the cache keeps (each component's is about 30 MB).
#[cfg(feature = "compiler")]
const CACHE_BYTES: u64 = 1 << 30;

/// Removes the least recently used compiled code from `dir` until it holds at most `limit`
/// bytes.
#[cfg(feature = "compiler")]
fn trim_cache(dir: &Path, limit: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::debug!("removed {} from the cache", path.display());
            total -= len;
        }
    }
}

/// Where compiled components are kept between runs: `$SKIFF_WASM_CACHE`, else
/// `$XDG_CACHE_HOME/skiff/wasmtime` or `~/.cache/skiff/wasmtime`; none without a home.
#[cfg(feature = "compiler")]
pub fn default_cache() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SKIFF_WASM_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .map(|dir| dir.join("skiff").join("wasmtime"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_are_named_as_users_and_oci_name_them() {
        for (name, triple) in [
            ("x86_64", "x86_64-unknown-linux-gnu"),
            ("amd64", "x86_64-unknown-linux-gnu"),
            ("aarch64", "aarch64-unknown-linux-gnu"),
            ("arm64", "aarch64-unknown-linux-gnu"),
            ("aarch64-unknown-linux-musl", "aarch64-unknown-linux-gnu"),
        ] {
            assert_eq!(target_triple(name).unwrap(), triple, "{name}");
        }
        for bad in ["riscv64", "x86_64-apple-darwin", ""] {
            let err = target_triple(bad).unwrap_err();
            assert!(err.contains("--precompile x86_64,aarch64"), "{err}");
        }
    }

    #[test]
    fn a_header_round_trips_and_a_broken_file_is_named() {
        let header = Header {
            component: digest(b"wasm"),
            target: "aarch64-unknown-linux-gnu".into(),
            wasmtime: WASMTIME_VERSION.into(),
            engine: "ab".repeat(32),
        };
        let file = encode(&header, b"\x7fELF code");
        let (back, code) = decode(&file).unwrap();
        assert_eq!(back, header);
        assert_eq!(code, b"\x7fELF code");
        // Read from a file, only its header is read.
        let dir = std::env::temp_dir().join(format!("skiff-precompiled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("iris.aarch64.cwasm");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(read_header(&path).unwrap(), header);
        // What is not one, is cut short, or came from an earlier skiff is named.
        assert!(
            decode(b"\0asm")
                .unwrap_err()
                .contains("not a skiff precompiled")
        );
        let mut earlier = b"skiffpc1".to_vec();
        earlier.extend_from_slice(&file);
        earlier.truncate(earlier.len() - 1);
        std::fs::write(&path, &earlier).unwrap();
        for err in [
            decode(&earlier).unwrap_err(),
            read_header(&path).unwrap_err(),
        ] {
            assert!(err.contains("an earlier skiff wrote it"), "{err}");
        }
        let mut short = file[file.len() - 14..].to_vec();
        short[2..6].copy_from_slice(&1000u32.to_le_bytes());
        std::fs::write(&path, &short[2..]).unwrap();
        assert!(decode(&short[2..]).unwrap_err().contains("cut short"));
        assert!(read_header(&path).unwrap_err().contains("cut short"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_engine_hash_tells_targets_and_settings_apart() {
        let x86 = target_engine_hash("x86_64-unknown-linux-gnu").unwrap();
        let arm = target_engine_hash("aarch64-unknown-linux-gnu").unwrap();
        assert_eq!(x86, target_engine_hash("x86_64-unknown-linux-gnu").unwrap());
        assert_ne!(x86, arm);
        let mut config = compiler_config(Some("x86_64-unknown-linux-gnu")).unwrap();
        config.epoch_interruption(false);
        assert_ne!(engine_hash(&Engine::new(&config).unwrap()), x86);
    }
}
