//! Runs model components (`wit/model.wit`'s `model` world, and its `service` world that also
//! serves HTTP) in wasmtime, behind the same [`skiff_runtime::Model`] the server runs ONNX
//! files with. skiff calls their predictor; the `wasi:http` types a service component imports
//! are there for it, and any request it would send out is refused.
//!
//! A component is compiled once, type-checked against its imports once ([`InstancePre`]), and
//! instantiated from a pooling allocator. Instances are kept warm and reused (a component packed
//! without its model loaded parses it in each new instance, see [`preinit`]); an instance that
//! traps is dropped and the next call gets a fresh one. Every call is bounded in time by epoch interruption (the deadline) and
//! every instance in memory by a store limiter. The guest gets WASI with nothing granted: no
//! files, no network, no environment, no arguments; what it writes to stderr is kept (the
//! message of a panic) and reported with the trap.
//!
//! [`InstancePre`]: wasmtime::component::InstancePre

#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod precompiled;
#[cfg(feature = "compiler")]
pub mod preinit;

use std::collections::BTreeMap;
use std::path::Path;
#[cfg(feature = "compiler")]
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use skiff_runtime::{Backend, DataType, IoSpec, Model, Tensor, TensorData as Data};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "model",
    });
}

use bindings::exports::skiff::model::predictor::Metadata;
use bindings::skiff::model::types::TensorData as GuestData;
use bindings::skiff::model::types::{Datatype, Error as GuestError, Tensor as GuestTensor};
use bindings::{Model as Bindings, ModelPre};

/// How components run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentOptions {
    /// The longest one call (a prediction, or the first one's model load) may run.
    pub deadline: Duration,
    /// The most linear memory one instance may hold, in bytes.
    pub memory: usize,
    /// Instances that run calls side by side (default: one per core), kept warm between
    /// calls; more calls at once wait for one to come free. 0 keeps none warm: every call
    /// starts a fresh instance (one at a time).
    pub instances: u32,
    /// Where compiled code is kept between runs (the command line's default is
    /// [`precompiled::default_cache`]); `None`, the default here, compiles at every load.
    #[cfg(feature = "compiler")]
    pub cache: Option<PathBuf>,
}

impl ComponentOptions {
    /// How many instances may exist at once. Calls are CPU-bound, so more than the cores
    /// would only take turns, and one made beyond those kept warm would parse its model again.
    fn most_at_once(&self) -> u32 {
        self.instances.max(1)
    }
}

impl Default for ComponentOptions {
    fn default() -> Self {
        ComponentOptions {
            deadline: Duration::from_secs(10),
            memory: 512 << 20,
            instances: std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
            #[cfg(feature = "compiler")]
            cache: None,
        }
    }
}

/// How often the epoch advances: the deadline's resolution.
const TICK: Duration = Duration::from_millis(5);
/// Bytes of a guest's stderr kept per instance.
const STDERR_KEPT: usize = 16 << 10;

/// Whether `bytes` are a WebAssembly component (not a core module, not ONNX).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm\x0d\0\x01\0")
}

/// Loads the component `bytes`; `source_name` names it in errors and logs. Precompiled code
/// `offered` for it (files beside it, layers of its artifact) is used when it was made from
/// these bytes for this engine; else the code compiled at an earlier load, from
/// [`ComponentOptions::cache`]; else it is compiled, which takes seconds.
pub fn load(
    source_name: &str,
    bytes: &[u8],
    offered: &[precompiled::Offered],
    options: &ComponentOptions,
) -> skiff_runtime::Result<Model> {
    let started = Instant::now();
    let failed = |what: &str, e: wasmtime::Error| skiff_runtime::Error::Unsupported {
        source_name: source_name.to_string(),
        reason: format!("{what}: {}", one_line(&e)),
    };
    if !is_component(bytes) {
        return Err(skiff_runtime::Error::Unsupported {
            source_name: source_name.to_string(),
            reason:
                "it is not a WebAssembly component (pack one with skiff pack --format component)"
                    .into(),
        });
    }
    let engine = engine(options).map_err(|e| failed("cannot set up wasmtime", e))?;
    let component = precompiled::compile(
        &engine,
        source_name,
        bytes,
        offered,
        #[cfg(feature = "compiler")]
        options.cache.as_deref(),
    )
    .map_err(|e| failed("cannot compile it", e))?;
    let linker = wasi_linker(&engine).map_err(|e| failed("cannot link WASI", e))?;
    let pre = linker
        .instantiate_pre(&component)
        .and_then(ModelPre::new)
        .map_err(|e| {
            failed(
                "it is not a skiff:model component (it must export skiff:model/predictor and import only WASI)",
                e,
            )
        })?;
    let backend = ComponentBackend {
        engine: engine.clone(),
        pre,
        options: options.clone(),
        instances: Mutex::new(Instances::default()),
        freed: Condvar::new(),
        source_name: source_name.to_string(),
    };
    tick(&engine);
    let metadata = backend.describe_model()?;
    let spec = |s: &bindings::skiff::model::types::IoSpec| IoSpec {
        name: s.name.clone(),
        datatype: match s.datatype {
            Datatype::Bool => DataType::Bool,
            Datatype::Int32 => DataType::Int32,
            Datatype::Int64 => DataType::Int64,
            Datatype::Fp32 => DataType::Fp32,
            Datatype::Fp64 => DataType::Fp64,
            Datatype::Bytes => DataType::Bytes,
        },
        shape: s.shape.clone(),
    };
    let inputs = metadata.inputs.iter().map(spec).collect();
    let outputs = metadata.outputs.iter().map(spec).collect();
    let properties: BTreeMap<String, String> = metadata.properties.into_iter().collect();
    Ok(Model::from_backend(
        Arc::new(backend),
        inputs,
        outputs,
        properties,
        started.elapsed(),
    ))
}

/// The model in the file at `path`: a component, with the code precompiled for this machine
/// beside it (`iris.x86_64.cwasm` beside `iris.wasm`) where there is some, or else an ONNX file
/// on the backend `backend` picks.
pub fn load_file(
    path: &Path,
    backend: &skiff_runtime::BackendOptions,
    options: &ComponentOptions,
) -> skiff_runtime::Result<Model> {
    let bytes = std::fs::read(path).map_err(|source| skiff_runtime::Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut offered = Vec::new();
    if is_component(&bytes)
        && let Some(target) = precompiled::host_target()
    {
        let beside = precompiled::beside(path, &target);
        if beside.is_file() {
            offered.push(precompiled::Offered {
                origin: beside.display().to_string(),
                path: beside,
            });
        }
    }
    load_any(
        &path.display().to_string(),
        &bytes,
        &offered,
        backend,
        options,
    )
}

/// A model in memory: a component ([`load`], with any precompiled code `offered` for it), or
/// else an ONNX file on the backend `backend` picks; `source_name` names it in errors.
pub fn load_any(
    source_name: &str,
    bytes: &[u8],
    offered: &[precompiled::Offered],
    backend: &skiff_runtime::BackendOptions,
    options: &ComponentOptions,
) -> skiff_runtime::Result<Model> {
    if is_component(bytes) {
        load(source_name, bytes, offered, options)
    } else if bytes.starts_with(b"\0asm\x01\0\0\0") {
        Err(skiff_runtime::Error::Unsupported {
            source_name: source_name.into(),
            reason: "it is a WebAssembly core module (a WASI preview-1 command, as `skiff pack --format module` writes), which skiff does not host: run it with `wasmtime run`, WasmEdge, WAMR or Node.js, or serve the model's component (--format component) or its ONNX file".into(),
        })
    } else {
        Model::load(source_name, bytes, backend)
    }
}

fn engine(options: &ComponentOptions) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    // A model component nests two components (skiff's engine and the model's weights) in
    // one, and holds a few core instances (the engine's module, its shims, the weights) and
    // two memories; the pool reserves address space, not memory, for what it allows.
    let instances = options.most_at_once();
    pool.total_component_instances(instances * 4)
        .total_core_instances(instances * 16)
        .total_memories(instances * 4)
        .total_tables(instances * 16)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_memory_size(options.memory);
    let mut config = precompiled::compiler_config(None)?;
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// A linker with WASI and the `wasi:http` types: all a model component may import.
fn wasi_linker(engine: &Engine) -> wasmtime::Result<Linker<Guest>> {
    let mut linker = Linker::<Guest>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    Ok(linker)
}

/// A store for one instance, granted nothing (no preopened folders, environment, arguments or
/// sockets), its stderr kept and its memory capped at `memory` bytes. Where a `seed` is given,
/// the instance is made to run the same way every time: its random numbers are the seed's
/// bytes over and over, and its clocks stand still.
fn new_store(engine: &Engine, memory: usize, seed: Option<&[u8]>) -> Store<Guest> {
    let stderr = MemoryOutputPipe::new(STDERR_KEPT);
    let wasi = wasi_builder(&stderr, seed).build();
    let mut store = Store::new(
        engine,
        Guest {
            wasi,
            http: WasiHttpCtx::new(),
            offline: Offline,
            table: ResourceTable::new(),
            limits: Limits {
                memory,
                refused: None,
            },
            stderr,
        },
    );
    store.limiter(|g| &mut g.limits);
    store
}

/// WASI for one instance, as [`new_store`] grants it, writing its stderr to `stderr`.
fn wasi_builder(stderr: &MemoryOutputPipe, seed: Option<&[u8]>) -> WasiCtxBuilder {
    let mut wasi = WasiCtx::builder();
    wasi.stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(seed) = seed {
        wasi.secure_random(wasmtime_wasi::Deterministic::new(seed.to_vec()))
            .insecure_random(wasmtime_wasi::Deterministic::new(seed.to_vec()))
            .insecure_random_seed(0)
            .wall_clock(Stopped)
            .monotonic_clock(Stopped);
    }
    wasi
}

/// A clock that always reads 0.
struct Stopped;

impl wasmtime_wasi::HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Advances the engine's epoch every [`TICK`] while the engine lives.
fn tick(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("skiff-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("a thread starts");
}

/// A store's state: the guest's WASI context and its memory limiter.
struct Guest {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: Limits,
    stderr: MemoryOutputPipe,
    offline: Offline,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Guest {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.offline,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl Guest {
    fn said(&self) -> String {
        said(&self.stderr)
    }
}

/// What a guest wrote to `stderr` last (a panic's message), without std's note about
/// RUST_BACKTRACE, on one line: " (the guest said: …)", or nothing if it said nothing.
fn said(stderr: &MemoryOutputPipe) -> String {
    let stderr = stderr.contents();
    let said = String::from_utf8_lossy(&stderr);
    let said: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: "))
        .collect();
    let said = said.join(" ");
    let said: String = said
        .chars()
        .skip(said.chars().count().saturating_sub(300))
        .collect();
    if said.is_empty() {
        String::new()
    } else {
        format!(" (the guest said: {said})")
    }
}

/// `wasi:http` with no way out: every outgoing request is denied.
struct Offline;

impl WasiHttpHooks for Offline {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(std::future::ready(Err(
            wasmtime_wasi_http::Error::HttpRequestDenied,
        )))
    }
}

/// Caps an instance's memory, and remembers that it did.
struct Limits {
    memory: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}

/// One instance, ready to call.
struct Instance {
    store: Store<Guest>,
    bindings: Bindings,
}

struct ComponentBackend {
    engine: Engine,
    pre: ModelPre<Guest>,
    options: ComponentOptions,
    instances: Mutex<Instances>,
    /// Signalled when an instance comes free or is dropped.
    freed: Condvar,
    source_name: String,
}

/// The instances of one model: those idle, and how many exist in all.
#[derive(Default)]
struct Instances {
    warm: Vec<Instance>,
    live: usize,
}

impl std::fmt::Debug for ComponentBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentBackend")
            .field("source_name", &self.source_name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ComponentBackend {
    fn instantiate(&self) -> skiff_runtime::Result<Instance> {
        let mut store = new_store(&self.engine, self.options.memory, None);
        self.arm(&mut store);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.trapped(&store, "cannot start", &e))?;
        Ok(Instance { store, bindings })
    }

    /// Sets the call's deadline (the default, 0, would trap at once).
    fn arm(&self, store: &mut Store<Guest>) {
        let ticks = self.options.deadline.as_nanos() / TICK.as_nanos();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
    }

    /// Runs `call` on a warm instance, or a new one while the pool has room, or else waits for
    /// one to come free. The instance goes back to the warm set unless it trapped.
    fn with_instance<R>(
        &self,
        call: impl FnOnce(&mut Instance) -> wasmtime::Result<R>,
    ) -> skiff_runtime::Result<R> {
        let most = self.options.most_at_once() as usize;
        let warm = {
            let mut all = self.instances.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(instance) = all.warm.pop() {
                    break Some(instance);
                }
                if all.live < most {
                    all.live += 1;
                    break None;
                }
                all = self.freed.wait(all).unwrap_or_else(|e| e.into_inner());
            }
        };
        let mut instance = match warm {
            Some(instance) => instance,
            None => self.instantiate().inspect_err(|_| self.release(None))?,
        };
        self.arm(&mut instance.store);
        instance.store.data_mut().limits.refused = None;
        match call(&mut instance) {
            Ok(result) => {
                self.release(Some(instance));
                Ok(result)
            }
            // A trapped instance cannot be entered again: it is dropped.
            Err(e) => {
                let error = self.trapped(&instance.store, "failed", &e);
                // Its pool slot is free only once it is dropped.
                drop(instance);
                self.release(None);
                Err(error)
            }
        }
    }

    /// Gives an instance back (to the warm set, if it has room), or records that one is gone.
    fn release(&self, instance: Option<Instance>) {
        let mut all = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        match instance {
            Some(instance) if all.warm.len() < self.options.instances as usize => {
                all.warm.push(instance)
            }
            _ => all.live -= 1,
        }
        self.freed.notify_one();
    }

    /// A trap as an error a user can act on.
    fn trapped(
        &self,
        store: &Store<Guest>,
        what: &str,
        e: &wasmtime::Error,
    ) -> skiff_runtime::Error {
        let name = &self.source_name;
        let guest = store.data();
        let message = match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "{name} ran past its deadline of {} ms and was stopped (raise --wasm-deadline-ms if the model needs longer)",
                self.options.deadline.as_millis()
            ),
            _ if guest.limits.refused.is_some() => format!(
                "{name} needed more than its memory limit of {} MiB ({} MiB asked) and was stopped (raise --wasm-memory-mb if the model needs more)",
                self.options.memory >> 20,
                guest.limits.refused.unwrap_or_default().div_ceil(1 << 20)
            ),
            trap => {
                // The trap itself (not the wasm backtrace wasmtime wraps it in), and what the
                // guest said last, without std's note about RUST_BACKTRACE.
                let why = match trap {
                    Some(trap) => trap.to_string(),
                    None => e.root_cause().to_string(),
                };
                format!("{name} {what}: {why}{}", guest.said())
            }
        };
        skiff_runtime::Error::Run(message)
    }

    fn describe_model(&self) -> skiff_runtime::Result<Metadata> {
        let metadata = self.with_instance(|i| {
            i.bindings
                .skiff_model_predictor()
                .call_describe(&mut i.store)
        })?;
        metadata.map_err(|e| skiff_runtime::Error::Unsupported {
            source_name: self.source_name.clone(),
            reason: guest_error(e),
        })
    }
}

impl Backend for ComponentBackend {
    fn run(&self, inputs: Vec<Tensor>) -> skiff_runtime::Result<Vec<Tensor>> {
        let inputs: Vec<GuestTensor> = inputs.into_iter().map(to_guest).collect();
        let outputs = self.with_instance(|i| {
            i.bindings
                .skiff_model_predictor()
                .call_predict(&mut i.store, &inputs)
        })?;
        match outputs {
            Ok(outputs) => outputs.into_iter().map(from_guest).collect(),
            Err(GuestError::BadInput(m)) => Err(skiff_runtime::Error::BadInput(m)),
            Err(GuestError::Failed(m)) => Err(skiff_runtime::Error::Run(m)),
        }
    }

    fn describe(&self) -> String {
        "wasmtime".to_string()
    }

    fn inline(&self) -> bool {
        // WASI calls block on a runtime of their own: never on an async worker thread.
        false
    }
}

fn to_guest(t: Tensor) -> GuestTensor {
    GuestTensor {
        // by position: the model's inputs, in order
        name: String::new(),
        shape: t.shape.iter().map(|&d| d as u64).collect(),
        data: match t.data {
            Data::Bool(v) => GuestData::Bool(v),
            Data::Int32(v) => GuestData::Int32(v),
            Data::Int64(v) => GuestData::Int64(v),
            Data::Fp32(v) => GuestData::Fp32(v),
            Data::Fp64(v) => GuestData::Fp64(v),
            Data::Bytes(v) => GuestData::Bytes(v),
        },
    }
}

fn from_guest(t: GuestTensor) -> skiff_runtime::Result<Tensor> {
    let shape = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            skiff_runtime::Error::Run(format!("output shape {:?} is too large", t.shape))
        })?;
    let data = match t.data {
        GuestData::Bool(v) => Data::Bool(v),
        GuestData::Int32(v) => Data::Int32(v),
        GuestData::Int64(v) => Data::Int64(v),
        GuestData::Fp32(v) => Data::Fp32(v),
        GuestData::Fp64(v) => Data::Fp64(v),
        GuestData::Bytes(v) => Data::Bytes(v),
    };
    Tensor::new(shape, data)
        .map_err(|e| skiff_runtime::Error::Run(format!("output {:?}: {e}", t.name)))
}

fn guest_error(e: GuestError) -> String {
    match e {
        GuestError::BadInput(m) | GuestError::Failed(m) => m,
    }
}

fn one_line(e: &wasmtime::Error) -> String {
    let text: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    text.join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
