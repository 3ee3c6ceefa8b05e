//! Pre-initialised engines: the model parsed and optimised once, at pack time, and kept in the
//! component's initial memory.
//!
//! skiff's component engine parses and optimises its model on its first call, and every fresh
//! instance pays for that again (`wasmtime serve` makes one per request). [`preinitialise`] makes
//! that first call at pack time instead, the way wizer does: the engine is instrumented so that
//! its state can be read back, an instance of it gets the model through its `weights` import and
//! describes it, and the instance's memories and globals become the engine's initial state.
//! Instances of the result start with the model loaded and never ask for the weights, so the
//! weights plugged in afterwards need only carry the model's name.
//!
//! [`preinitialise_module`] does the same for the engine built as a WASI preview-1 command
//! (`skiff pack --format module`), which gets its model on stdin instead.

use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sha2::Digest;
use wasmtime::Engine;
use wasmtime::component::{ComponentNamedList, Instance, Lift, WasmList};
use wasmtime::{Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wizer::{ComponentInstanceState, InstanceState, SnapshotVal, ValType, Wizer};

use crate::bindings::Model as Bindings;
use crate::{Guest, Limits, TICK};

/// The interface the engine imports its model through.
const WEIGHTS: &str = "skiff:model/weights@0.1.0";
/// The longest the model may take to load at pack time.
const DEADLINE: Duration = Duration::from_secs(300);
/// The most memory the engine may use loading it: all a 32-bit wasm memory can hold.
const MEMORY: usize = 4 << 30;

/// The component `engine` (skiff's, importing `skiff:model/weights`) with the model `name`
/// (an ONNX file's `bytes`) loaded into its initial state. Compiling the instrumented engine
/// takes seconds once; `cache` (see [`crate::ComponentOptions::cache`]) keeps it for every
/// later model. A model the engine cannot load is an error naming why.
pub fn preinitialise(
    engine: &[u8],
    name: &str,
    bytes: &[u8],
    cache: Option<&Path>,
) -> Result<Vec<u8>, String> {
    let not_engine = not_engine("component");
    let wizer = Wizer::new();
    let (context, instrumented) = wizer.instrument_component(engine).map_err(not_engine)?;
    let wasmtime = Engine::new(&crate::precompiled::compiler_config(None).map_err(not_engine)?)
        .map_err(not_engine)?;
    let component =
        crate::precompiled::compile(&wasmtime, "the component engine", &instrumented, &[], cache)
            .map_err(not_engine)?;

    let mut linker = crate::wasi_linker(&wasmtime).map_err(not_engine)?;
    let (name, model): (Arc<str>, Arc<[u8]>) = (name.into(), bytes.into());
    let mut weights = linker.instance(WEIGHTS).map_err(not_engine)?;
    weights
        .func_wrap("name", move |_, (): ()| Ok((name.to_string(),)))
        .and_then(|()| weights.func_wrap("get", move |_, (): ()| Ok((model.to_vec(),))))
        .map_err(not_engine)?;

    // Random numbers drawn while loading (hash tables' keys) come from the model's digest,
    // so that packing the same model again gives the same component.
    let seed = sha2::Sha256::digest(bytes);
    let mut store = crate::new_store(&wasmtime, MEMORY, Some(&seed));
    stop_at_deadline(&wasmtime, &mut store);
    let trapped = |store: &Store<Guest>, e: wasmtime::Error| {
        if let Some(stopped) = stopped(&e) {
            return stopped;
        }
        format!(
            "the component engine failed loading the model: {}{}",
            crate::one_line(&e),
            store.data().said()
        )
    };
    let instance = linker
        .instantiate(&mut store, &component)
        .map_err(|e| trapped(&store, e))?;
    // Describing the model loads it; a model that cannot load says why.
    let described = Bindings::new(&mut store, &instance)
        .and_then(|b| b.skiff_model_predictor().call_describe(&mut store))
        .map_err(|e| trapped(&store, e))?;
    if let Err(e) = described {
        return Err(format!(
            "the component engine cannot load the model: {}",
            crate::guest_error(e)
        ));
    }

    let mut state = State {
        store: &mut store,
        instance,
        failed: None,
    };
    let snapshot = now(wizer.snapshot_component(&context, &mut state))
        .ok_or("the engine's state could not be read in one pass")?;
    if let Some(e) = state.failed {
        return Err(not_engine(e));
    }
    snapshot.map_err(not_engine)
}

/// The WASI preview-1 command `engine` (skiff's, `crates/guest/src/module.rs`) with the model
/// `name` (an ONNX file's `bytes`) loaded into its initial state: its `wizer-initialize` export
/// runs once with `name` as its argument and `bytes` on stdin, and the instance's memory and
/// globals become the module's. `cache` keeps the instrumented engine's compiled code, as for
/// [`preinitialise`]. A model the engine cannot load is an error naming why.
pub fn preinitialise_module(
    engine: &[u8],
    name: &str,
    bytes: &[u8],
    cache: Option<&Path>,
) -> Result<Vec<u8>, String> {
    let not_engine = not_engine("module");
    let wizer = Wizer::new();
    let (context, instrumented) = wizer.instrument(engine).map_err(not_engine)?;
    let wasmtime = Engine::new(&crate::precompiled::compiler_config(None).map_err(not_engine)?)
        .map_err(not_engine)?;
    let module =
        crate::precompiled::compile_module(&wasmtime, "the module engine", &instrumented, cache)
            .map_err(not_engine)?;
    let mut linker = wasmtime::Linker::<Command>::new(&wasmtime);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| &mut c.wasi).map_err(not_engine)?;

    let seed = sha2::Sha256::digest(bytes);
    let stderr = MemoryOutputPipe::new(crate::STDERR_KEPT);
    let wasi = crate::wasi_builder(&stderr, Some(&seed))
        .stdin(MemoryInputPipe::new(bytes.to_vec()))
        .args(&["skiff-module", name])
        .build_p1();
    let mut store = Store::new(
        &wasmtime,
        Command {
            wasi,
            limits: Limits {
                memory: MEMORY,
                refused: None,
            },
        },
    );
    store.limiter(|c| &mut c.limits);
    stop_at_deadline(&wasmtime, &mut store);
    let loaded = linker
        .instantiate(&mut store, &module)
        .and_then(|instance| {
            instance
                .get_typed_func::<(), ()>(&mut store, "wizer-initialize")?
                .call(&mut store, ())?;
            Ok(instance)
        });
    let instance = match loaded {
        Ok(instance) => instance,
        Err(e) => {
            if let Some(stopped) = stopped(&e) {
                return Err(stopped);
            }
            // The engine exits when the model does not load, having said why.
            if e.downcast_ref::<wasmtime_wasi::I32Exit>().is_some() {
                let said = String::from_utf8_lossy(&stderr.contents())
                    .trim()
                    .to_string();
                return Err(format!(
                    "the module engine cannot load the model: {}",
                    said.strip_prefix("error: ").unwrap_or(&said)
                ));
            }
            return Err(format!(
                "the module engine failed loading the model: {}{}",
                crate::one_line(&e),
                crate::said(&stderr)
            ));
        }
    };
    let snapshot = now(wizer.snapshot(
        &context,
        &mut Snapshot {
            store: &mut store,
            instance,
        },
    ))
    .ok_or("the engine's state could not be read in one pass")?;
    snapshot.map_err(not_engine)
}

/// How a pre-initialisation fails when the `kind` engine itself is at fault.
fn not_engine(kind: &str) -> impl Fn(wasmtime::Error) -> String + Copy + '_ {
    move |e| {
        format!(
            "the {kind} engine cannot be pre-initialised: {} (reinstall skiff, or build it with images/build-guest.sh)",
            crate::one_line(&e)
        )
    }
}

/// Makes calls in `store` trap once the model has loaded for longer than [`DEADLINE`].
fn stop_at_deadline<T>(engine: &Engine, store: &mut Store<T>) {
    crate::tick(engine);
    store.set_epoch_deadline((DEADLINE.as_nanos() / TICK.as_nanos()) as u64);
    store.epoch_deadline_trap();
}

/// What to say when `e` is the trap of [`stop_at_deadline`].
fn stopped(e: &wasmtime::Error) -> Option<String> {
    matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)).then(|| {
        format!(
            "the model took more than {} s to load and was stopped",
            DEADLINE.as_secs()
        )
    })
}

/// What the module engine's instance holds: WASI preview 1, its memory capped.
struct Command {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// The module engine's instance, read for its snapshot.
struct Snapshot<'a> {
    store: &'a mut Store<Command>,
    instance: wasmtime::Instance,
}

impl InstanceState for Snapshot<'_> {
    async fn global_get(&mut self, name: &str, _: ValType) -> SnapshotVal {
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer names the globals it exported");
        match global.get(&mut *self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => unreachable!("wizer exports no {other:?} global"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer names the memories it exported");
        contents(memory.data(&*self.store))
    }
}

/// The instance being snapshotted, read through the accessors wizer instrumented it with.
struct State<'a> {
    store: &'a mut Store<Guest>,
    instance: Instance,
    /// The first accessor that failed (wizer's interface has no room for errors).
    failed: Option<wasmtime::Error>,
}

impl State<'_> {
    /// Calls the accessor `func` of the exported instance `instance`.
    fn call<R>(&mut self, instance: &str, func: &str) -> Option<R>
    where
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let called = (|| {
            let exported = self
                .instance
                .get_export_index(&mut *self.store, None, instance)
                .ok_or_else(|| wasmtime::format_err!("no export {instance}"))?;
            let func = self
                .instance
                .get_export_index(&mut *self.store, Some(&exported), func)
                .ok_or_else(|| wasmtime::format_err!("no export {instance}#{func}"))?;
            let func = self
                .instance
                .get_typed_func::<(), R>(&mut *self.store, func)?;
            func.call(&mut *self.store, ())
        })();
        match called {
            Ok(r) => Some(r),
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }

    fn scalar<T: Lift + Default + Send + Sync + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> T {
        self.call::<(T,)>(instance, func)
            .map(|(v,)| v)
            .unwrap_or_default()
    }
}

impl ComponentInstanceState for State<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<(WasmList<u8>,)>(instance, func) {
            Some((list,)) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.scalar(instance, func)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.scalar(instance, func)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.scalar::<f32>(instance, func).to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.scalar::<f64>(instance, func).to_bits()
    }
}

/// The output of `future`, which never waits (every call it makes returns at once); `None` if
/// it would.
fn now<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
