//! The ONNX Runtime backend, on its CPU or CUDA execution provider.
//!
//! The ONNX Runtime library is loaded when a model first asks for it, never linked: a skiff
//! without it installed runs everything on tract and pays nothing. It is looked for, in order,
//! at `ORT_DYLIB_PATH`, in the system's library folders, and in a Python `onnxruntime` or
//! `onnxruntime-gpu` package (whose wheels ship `libonnxruntime.so` and, for the GPU one, the
//! CUDA provider beside it) in `$VIRTUAL_ENV` or the first `python3` on `PATH`.

use crate::{BackendOptions, Loaded, Result, pb};

#[cfg(feature = "ort")]
pub(crate) use imp::{load, load_cuda_if_present};

#[cfg(not(feature = "ort"))]
const NOT_BUILT: &str = "this build of skiff has no ONNX Runtime support (cargo feature `ort`): use --backend tract, or a build with the feature";

#[cfg(not(feature = "ort"))]
pub(crate) fn load(
    _source_name: &str,
    _proto: &mut pb::ModelProto,
    _options: &BackendOptions,
) -> Result<Loaded> {
    Err(crate::Error::Backend(NOT_BUILT.into()))
}

#[cfg(not(feature = "ort"))]
pub(crate) fn load_cuda_if_present(
    _source_name: &str,
    _proto: &mut pb::ModelProto,
    _options: &BackendOptions,
) -> std::result::Result<Loaded, String> {
    Err(NOT_BUILT.into())
}

#[cfg(feature = "ort")]
mod imp {
    use super::*;
    use crate::backend::{Backend, BackendKind, GraphOptimization};
    use crate::{DataType, Error, IoSpec, Tensor, TensorData, rewrite};
    use ort::ep::{self, ExecutionProvider};
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::session::Session;
    use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights, SessionBuilder};
    use ort::value::{DynValue, TensorElementType, ValueType};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    /// The loaded library and the environment every session shares, or why there is none.
    fn environment()
    -> std::result::Result<&'static (PathBuf, ort::environment::Environment), String> {
        static ENV: OnceLock<
            std::result::Result<(PathBuf, ort::environment::Environment), String>,
        > = OnceLock::new();
        ENV.get_or_init(|| {
            let path = find_library()?;
            let env = ort::init_from(&path)
                .map_err(|e| format!("cannot load ONNX Runtime: {e}"))?
                .with_name("skiff")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", path.display()))?;
            tracing::debug!("ONNX Runtime loaded from {}", path.display());
            Ok((path, env))
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    const NOT_FOUND: &str = "ONNX Runtime is not installed: pip install onnxruntime (or onnxruntime-gpu for CUDA), or set ORT_DYLIB_PATH to libonnxruntime.so";

    fn find_library() -> std::result::Result<PathBuf, String> {
        if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "ORT_DYLIB_PATH={} is not a file: point it at libonnxruntime.so",
                    path.display()
                ))
            };
        }
        let mut folders: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default();
        folders.extend(
            [
                "/usr/local/lib",
                "/usr/lib",
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu",
                "/opt/onnxruntime/lib",
            ]
            .map(PathBuf::from),
        );
        if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
            folders.extend(python_packages(&PathBuf::from(venv).join("lib")));
        }
        if let Some(found) = folders.iter().find_map(|f| library_in(f)) {
            return Ok(found);
        }
        python_onnxruntime()
            .and_then(|f| library_in(&f))
            .ok_or_else(|| NOT_FOUND.to_string())
    }

    /// `lib/python3.*/site-packages/onnxruntime/capi` under a virtual environment's `lib`.
    fn python_packages(lib: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(lib) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join("site-packages/onnxruntime/capi"))
            .collect()
    }

    /// The `onnxruntime/capi` folder of the package the first `python3` on `PATH` would
    /// import, found without importing it.
    fn python_onnxruntime() -> Option<PathBuf> {
        const FIND: &str = "import importlib.util as u\ns = u.find_spec('onnxruntime')\nprint(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
        let out = std::process::Command::new("python3")
            .args(["-I", "-c", FIND])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let folder = String::from_utf8(out.stdout).ok()?;
        let folder = folder.trim();
        (out.status.success() && !folder.is_empty()).then(|| Path::new(folder).join("capi"))
    }

    /// `libonnxruntime.so`, or else a versioned `libonnxruntime.so.1.N.M`, in `folder`.
    fn library_in(folder: &Path) -> Option<PathBuf> {
        let exact = folder.join("libonnxruntime.so");
        if exact.is_file() {
            return Some(exact);
        }
        let mut versioned: Vec<PathBuf> = std::fs::read_dir(folder)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("libonnxruntime.so.")
            })
            .map(|e| e.path())
            .collect();
        versioned.sort();
        versioned.pop()
    }

    /// Loads the model on CUDA when ONNX Runtime has the provider and a device answers; the
    /// error says why not (for the log: `auto` then runs the model on tract).
    pub(crate) fn load_cuda_if_present(
        source_name: &str,
        proto: &mut pb::ModelProto,
        options: &BackendOptions,
    ) -> std::result::Result<Loaded, String> {
        let options = BackendOptions {
            backend: BackendKind::Cuda,
            ..options.clone()
        };
        load(source_name, proto, &options).map_err(|e| e.to_string())
    }

    /// Loads the model into ONNX Runtime on the provider `options.backend` names (CPU for
    /// `ort`, CUDA for `cuda`).
    pub(crate) fn load(
        source_name: &str,
        proto: &mut pb::ModelProto,
        options: &BackendOptions,
    ) -> Result<Loaded> {
        let backend_error = |e: String| Error::Backend(e);
        let (library, env) = environment().map_err(backend_error)?;
        let cuda = options.backend == BackendKind::Cuda;
        if cuda && !ep::CUDA::is_available().unwrap_or(false) {
            return Err(Error::Backend(format!(
                "the ONNX Runtime at {} has no CUDA provider: pip install onnxruntime-gpu (or point ORT_DYLIB_PATH at its libonnxruntime.so), or use --backend ort or tract",
                library.display()
            )));
        }
        // ONNX Runtime returns ZipMap's maps as they are; skiff's clients get the probability
        // matrix under the same name, as from tract.
        rewrite::remove_zipmaps(proto.graph.as_mut().expect("checked by the caller")).map_err(
            |reason| Error::Unsupported {
                source_name: source_name.to_string(),
                reason,
            },
        )?;
        let bytes = prost::Message::encode_to_vec(&*proto);
        let instances = options.instances.unwrap_or(if cuda {
            1
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        });
        if instances == 0 {
            return Err(Error::Backend("instances must be at least 1".into()));
        }
        let weights = PrepackedWeights::new();
        let sessions = (0..instances)
            .map(|_| session(env, &bytes, options, &weights))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                if cuda {
                    Error::Backend(format!(
                        "CUDA cannot run {source_name}: {e} (is a GPU visible? nvidia-smi tells; --backend ort or tract runs on the CPU)"
                    ))
                } else {
                    Error::Unsupported {
                        source_name: source_name.to_string(),
                        reason: format!("ONNX Runtime: {e}"),
                    }
                }
            })?;
        let first = &sessions[0];
        let specs = |outlets: &[ort::value::Outlet]| {
            outlets
                .iter()
                .map(|o| io_spec(o.name(), o.dtype()))
                .collect::<std::result::Result<Vec<_>, String>>()
                .map_err(|reason| Error::Unsupported {
                    source_name: source_name.to_string(),
                    reason,
                })
        };
        let inputs = specs(first.inputs())?;
        let outputs = specs(first.outputs())?;
        let describe = if cuda {
            format!("onnxruntime-cuda:{}", options.cuda_device)
        } else {
            "onnxruntime-cpu".to_string()
        };
        let backend = OrtBackend {
            output_names: outputs.iter().map(|o| o.name.clone()).collect(),
            input_names: inputs.iter().map(|i| i.name.clone()).collect(),
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            io_binding: options.io_binding,
            describe,
        };
        Ok((Arc::new(backend), inputs, outputs))
    }

    fn session(
        env: &ort::environment::Environment,
        bytes: &[u8],
        options: &BackendOptions,
        weights: &PrepackedWeights,
    ) -> std::result::Result<Session, String> {
        let level = match options.graph_optimization.unwrap_or(GraphOptimization::All) {
            GraphOptimization::Disable => GraphOptimizationLevel::Disable,
            GraphOptimization::Basic => GraphOptimizationLevel::Level1,
            GraphOptimization::Extended => GraphOptimizationLevel::Level2,
            GraphOptimization::All => GraphOptimizationLevel::All,
        };
        let threads = options.intra_op_threads.unwrap_or(1).max(1);
        let mut builder: SessionBuilder = Session::builder(env)
            .and_then(|b| Ok(b.with_no_environment_execution_providers()?))
            .and_then(|b| Ok(b.with_intra_threads(threads)?))
            .and_then(|b| Ok(b.with_optimization_level(level)?))
            .and_then(|b| Ok(b.with_prepacked_weights(weights)?))
            .map_err(|e| e.to_string())?;
        if options.backend == BackendKind::Cuda {
            let cuda = ep::CUDA::default()
                .with_device_id(options.cuda_device as i32)
                .build()
                .error_on_failure();
            builder = builder
                .with_execution_providers([cuda])
                .map_err(|e| e.to_string())?;
        }
        builder.commit_from_memory(bytes).map_err(|e| e.to_string())
    }

    fn io_spec(name: &str, dtype: &ValueType) -> std::result::Result<IoSpec, String> {
        let ValueType::Tensor { ty, shape, .. } = dtype else {
            return Err(format!("{name:?} is not a tensor ({dtype})"));
        };
        let datatype = match ty {
            TensorElementType::Bool => DataType::Bool,
            TensorElementType::Int32 => DataType::Int32,
            TensorElementType::Int64 => DataType::Int64,
            TensorElementType::Float32 => DataType::Fp32,
            TensorElementType::Float64 => DataType::Fp64,
            TensorElementType::String => DataType::Bytes,
            other => return Err(format!("{name:?} has element type {other:?}")),
        };
        Ok(IoSpec {
            name: name.to_string(),
            datatype,
            shape: shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
        })
    }

    /// Sessions of one model that run requests side by side: ONNX Runtime runs one session from
    /// many threads, but `ort` asks for exclusive access to run one, so each runs one request at
    /// a time.
    #[derive(Debug)]
    struct OrtBackend {
        sessions: Vec<Mutex<Session>>,
        next: AtomicUsize,
        input_names: Vec<String>,
        output_names: Vec<String>,
        io_binding: bool,
        describe: String,
    }

    impl Backend for OrtBackend {
        fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
            let values = inputs
                .into_iter()
                .map(to_ort)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::BadInput(e.to_string()))?;
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let n = self.sessions.len();
            // A free session if there is one; else wait for the next in turn.
            let mut session = (0..n)
                .find_map(|i| self.sessions[(start + i) % n].try_lock().ok())
                .unwrap_or_else(|| {
                    self.sessions[start % n]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                });
            let run = |e: ort::Error| Error::Run(e.to_string());
            if self.io_binding {
                let mut binding = session.create_binding().map_err(run)?;
                for (name, value) in self.input_names.iter().zip(&values) {
                    binding.bind_input(name, value).map_err(run)?;
                }
                let host = MemoryInfo::new(
                    AllocationDevice::CPU,
                    0,
                    AllocatorType::Device,
                    MemoryType::Default,
                )
                .map_err(run)?;
                for name in &self.output_names {
                    binding.bind_output_to_device(name, &host).map_err(run)?;
                }
                let outputs = session.run_binding(&binding).map_err(run)?;
                self.output_names
                    .iter()
                    .map(|name| from_ort(name, &outputs[name.as_str()]))
                    .collect()
            } else {
                let outputs = session
                    .run(
                        self.input_names
                            .iter()
                            .map(String::as_str)
                            .zip(values.iter())
                            .collect::<Vec<_>>(),
                    )
                    .map_err(run)?;
                self.output_names
                    .iter()
                    .map(|name| from_ort(name, &outputs[name.as_str()]))
                    .collect()
            }
        }

        fn describe(&self) -> String {
            self.describe.clone()
        }
    }

    fn to_ort(tensor: Tensor) -> ort::Result<DynValue> {
        let shape: Vec<i64> = tensor.shape.iter().map(|&d| d as i64).collect();
        Ok(match tensor.data {
            TensorData::Bool(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
            TensorData::Int32(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
            TensorData::Int64(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
            TensorData::Fp32(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
            TensorData::Fp64(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
            TensorData::Bytes(v) => {
                ort::value::Tensor::from_string_array((shape, v.as_slice()))?.into_dyn()
            }
        })
    }

    fn from_ort(name: &str, value: &DynValue) -> Result<Tensor> {
        let run = |e: ort::Error| Error::Run(format!("output {name:?}: {e}"));
        let ValueType::Tensor { ty, .. } = value.dtype() else {
            return Err(Error::Run(format!(
                "output {name:?} is not a tensor ({})",
                value.dtype()
            )));
        };
        let (shape, data) = match ty {
            TensorElementType::String => {
                let (shape, v) = value.try_extract_strings().map_err(run)?;
                (shape.to_vec(), TensorData::Bytes(v))
            }
            TensorElementType::Bool => {
                let (shape, v) = value.try_extract_tensor::<bool>().map_err(run)?;
                (shape.to_vec(), TensorData::Bool(v.to_vec()))
            }
            TensorElementType::Int32 => {
                let (shape, v) = value.try_extract_tensor::<i32>().map_err(run)?;
                (shape.to_vec(), TensorData::Int32(v.to_vec()))
            }
            TensorElementType::Int64 => {
                let (shape, v) = value.try_extract_tensor::<i64>().map_err(run)?;
                (shape.to_vec(), TensorData::Int64(v.to_vec()))
            }
            TensorElementType::Float32 => {
                let (shape, v) = value.try_extract_tensor::<f32>().map_err(run)?;
                (shape.to_vec(), TensorData::Fp32(v.to_vec()))
            }
            TensorElementType::Float64 => {
                let (shape, v) = value.try_extract_tensor::<f64>().map_err(run)?;
                (shape.to_vec(), TensorData::Fp64(v.to_vec()))
            }
            other => {
                return Err(Error::Run(format!(
                    "output {name:?} has unsupported element type {other:?}"
                )));
            }
        };
        Ok(Tensor {
            shape: shape.iter().map(|&d| d as usize).collect(),
            data,
        })
    }
}
