//! MLflow's model format: a folder with an `MLmodel` file that names the model's flavours,
//! written for an ONNX model as `mlflow.onnx.save_model` writes it (the `onnx` flavour and
//! `python_function` through `mlflow.onnx`), so `mlflow.pyfunc.load_model` loads it and
//! `mlflow models serve` serves it; and read back, for serving what MLflow logged.
//!
//! The folder holds `model.onnx`, `MLmodel` (flavours, a tensor signature of every ONNX input
//! and output, and `metadata`: the model's own `skiff.*` entries plus `skiff.sha256` of
//! `model.onnx`, which [`read_dir`] checks), `conda.yaml`, `python_env.yaml` and
//! `requirements.txt`.

use crate::{Error, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file that makes a folder an MLflow model.
pub const MLMODEL: &str = "MLmodel";
/// The ONNX file's name in the folder, as `mlflow.onnx` names it.
pub const MODEL_FILE: &str = "model.onnx";
/// The `metadata` key holding the SHA-256 (hex) of [`MODEL_FILE`].
pub const SHA256_KEY: &str = "skiff.sha256";
/// The MLflow release whose format skiff writes, and the one its tests run.
pub const MLFLOW_VERSION: &str = "3.17.2";
/// The Python that `python_env.yaml` and `conda.yaml` ask for: the oldest MLflow 3.17 runs on.
const PYTHON_VERSION: &str = "3.10";
/// What the `python_function` flavour needs to load an ONNX model: lower bounds only, so
/// an existing environment with newer releases raises no mismatch warnings.
const REQUIREMENTS: [&str; 4] = ["mlflow>=3.0", "numpy", "onnx>=1.12", "onnxruntime>=1.12"];

/// Where a model logged to a tracking server lives: MLflow 3's logged model, as
/// `mlflow.<flavour>.log_model` records it in the `MLmodel` it uploads.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The logged model's artifact location, `mlflow-artifacts:/EXP/models/m-.../artifacts`.
    pub artifact_path: String,
    /// The logged model's id, `m-...`.
    pub model_id: String,
    /// The run it was logged from.
    pub run_id: String,
}

/// The files of an MLflow model folder for the ONNX model `onnx`, in memory: `(name, bytes)`,
/// `MLmodel` last. `logged` says where a logged model lives; `None` for a folder on disk.
pub fn files(onnx: &[u8], logged: Option<&Logged>) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let description = describe(onnx)?;
    let mut mlmodel = serde_json::Map::new();
    if let Some(logged) = logged {
        mlmodel.insert("artifact_path".into(), json!(logged.artifact_path));
    }
    mlmodel.insert(
        "flavors".into(),
        json!({
            "onnx": {
                "code": null,
                "data": MODEL_FILE,
                "onnx_session_options": null,
                "onnx_version": description.onnx_version,
                "providers": ["CPUExecutionProvider"],
            },
            "python_function": {
                "data": MODEL_FILE,
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.onnx",
                "python_version": PYTHON_VERSION,
            },
        }),
    );
    let mut metadata: serde_json::Map<String, Value> = description
        .metadata
        .iter()
        .filter(|(key, _)| key.starts_with("skiff."))
        .map(|(key, value)| (key.clone(), json!(value)))
        .collect();
    metadata.insert(SHA256_KEY.into(), json!(sha256(onnx)));
    mlmodel.insert("metadata".into(), Value::Object(metadata));
    mlmodel.insert("mlflow_version".into(), json!(MLFLOW_VERSION));
    let uuid = match logged {
        Some(logged) => logged.model_id.clone(),
        None => uuid_hex(onnx),
    };
    mlmodel.insert(
        "model_id".into(),
        logged.map_or(Value::Null, |l| json!(l.model_id)),
    );
    mlmodel.insert("model_size_bytes".into(), json!(onnx.len()));
    mlmodel.insert("model_uuid".into(), json!(uuid));
    mlmodel.insert("prompts".into(), Value::Null);
    if let Some(logged) = logged {
        mlmodel.insert("run_id".into(), json!(logged.run_id));
    }
    if let Some(signature) = description.signature() {
        mlmodel.insert("signature".into(), signature);
    }
    mlmodel.insert("utc_time_created".into(), json!(utc_now()));

    let requirements = REQUIREMENTS.join("\n") + "\n";
    let python_env = json!({
        "python": PYTHON_VERSION,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"],
    });
    let conda = json!({
        "channels": ["conda-forge"],
        "dependencies": [format!("python={PYTHON_VERSION}"), "pip", {"pip": REQUIREMENTS}],
        "name": "mlflow-env",
    });
    Ok(vec![
        (MODEL_FILE, onnx.to_vec()),
        ("requirements.txt", requirements.into_bytes()),
        ("python_env.yaml", yaml(&python_env)?.into_bytes()),
        ("conda.yaml", yaml(&conda)?.into_bytes()),
        (MLMODEL, yaml(&Value::Object(mlmodel))?.into_bytes()),
    ])
}

/// Writes the MLflow model folder for `onnx` at `dir`, all at once: built in a folder beside
/// it, then renamed into place. A `dir` that is an MLflow model folder already (a previous
/// export) is replaced, as `-o FILE` replaces a file; one that holds anything else is refused,
/// so a mistyped `-o` loses nothing. Returns the paths written.
pub fn write_dir(dir: &Path, onnx: &[u8]) -> Result<Vec<PathBuf>> {
    let files = files(onnx, None)?;
    let replaces = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if dir.join(MLMODEL).is_file() {
                true
            } else if entries.next().is_some() {
                return Err(Error(format!(
                    "{} exists and is not an MLflow model folder (no {MLMODEL} in it): give -o a \
                     new or empty folder",
                    dir.display()
                )));
            } else {
                false
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory || dir.is_file() => {
            return Err(Error(format!(
                "{} is a file: give -o a folder for the MLflow model",
                dir.display()
            )));
        }
        Err(e) => return Err(Error(format!("cannot read {}: {e}", dir.display()))),
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error(format!("cannot {what} {}: {e}", path.display()))
    };
    std::fs::create_dir_all(&parent).map_err(|e| io("create", &parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp"))
        .tempdir_in(&parent)
        .map_err(|e| io("create a folder in", &parent, e))?;
    for (file, bytes) in &files {
        let path = staging.path().join(file);
        std::fs::write(&path, bytes).map_err(|e| io("write", &path, e))?;
    }
    // the old export moves aside first (rename replaces only an empty folder), and is removed
    // once the new one is in place
    let old = if replaces {
        let aside = tempfile::Builder::new()
            .prefix(&format!(".{name}.old"))
            .tempdir_in(&parent)
            .map_err(|e| io("create a folder in", &parent, e))?;
        std::fs::rename(dir, aside.path()).map_err(|e| io("move aside", dir, e))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, dir) {
        let _ = std::fs::remove_dir_all(&staged);
        if let Some(old) = &old {
            let _ = std::fs::rename(old.path(), dir);
        }
        return Err(io("create", dir, e));
    }
    drop(old);
    Ok(files.iter().map(|(file, _)| dir.join(file)).collect())
}

/// An MLflow model folder with the `onnx` flavour, as [`read_dir`] found it.
#[derive(Debug, Clone)]
pub struct MlModel {
    /// The folder.
    pub dir: PathBuf,
    /// The onnx flavour's model file.
    pub model_file: PathBuf,
    /// Every flavour the `MLmodel` names.
    pub flavors: Vec<String>,
    /// The `MLmodel`'s `metadata`, values as text (JSON for what is not a string).
    pub metadata: BTreeMap<String, String>,
    /// The MLflow release that wrote it, where it says.
    pub mlflow_version: Option<String>,
    /// Whether the model file's SHA-256 was checked against [`SHA256_KEY`] (it matched: a
    /// mismatch is an error).
    pub verified: bool,
}

#[derive(serde::Deserialize)]
struct MlModelFile {
    #[serde(default)]
    flavors: BTreeMap<String, Value>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    mlflow_version: Option<Value>,
}

/// Reads the MLflow model folder `dir`: its `MLmodel`, the onnx flavour's model file, and
/// checks the file against `skiff.sha256` where the metadata has it.
pub fn read_dir(dir: &Path) -> Result<MlModel> {
    let path = dir.join(MLMODEL);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error(format!(
                "{} has no {MLMODEL} file, so it is not an MLflow model: export one with `skiff \
                 export mlflow MODEL.onnx -o DIR` or mlflow.onnx.save_model",
                dir.display()
            )));
        }
        Err(e) => return Err(Error(format!("cannot read {}: {e}", path.display()))),
    };
    let parsed: MlModelFile = serde_saphyr::from_str(&text).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default().to_string();
        Error(format!(
            "{} is not an MLmodel file MLflow writes ({first}): export the model again",
            path.display()
        ))
    })?;
    let flavors: Vec<String> = parsed.flavors.keys().cloned().collect();
    let Some(onnx) = parsed.flavors.get("onnx") else {
        let has = if flavors.is_empty() {
            "no flavours".to_string()
        } else {
            format!("flavours {}", flavors.join(", "))
        };
        return Err(Error(format!(
            "{} holds an MLflow model of {has}; skiff serves the onnx flavour: log it with \
             mlflow.onnx.log_model or `skiff export mlflow`",
            dir.display()
        )));
    };
    let data = onnx["data"].as_str().unwrap_or(MODEL_FILE);
    if Path::new(data).is_absolute() || data.split(['/', '\\']).any(|part| part == "..") {
        return Err(Error(format!(
            "{}: the onnx flavour's data {data:?} points outside the model folder: export the \
             model again",
            path.display()
        )));
    }
    let model_file = dir.join(data);
    let metadata: BTreeMap<String, String> = parsed
        .metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (key, text)
        })
        .collect();
    let verified = match metadata.get(SHA256_KEY) {
        Some(expected) => {
            let bytes = std::fs::read(&model_file).map_err(|e| {
                Error(format!(
                    "cannot read {}, the onnx flavour's model file: {e}",
                    model_file.display()
                ))
            })?;
            let actual = sha256(&bytes);
            if !actual.eq_ignore_ascii_case(expected.trim()) {
                return Err(Error(format!(
                    "{} does not match its MLmodel's {SHA256_KEY} (sha256 {actual}, MLmodel says \
                     {expected}): the file changed after export; export or log the model again",
                    model_file.display()
                )));
            }
            true
        }
        None => {
            if !model_file.is_file() {
                return Err(Error(format!(
                    "{} names {data} as its onnx model, and {} is not a file: copy the whole \
                     model folder",
                    path.display(),
                    model_file.display()
                )));
            }
            false
        }
    };
    let mlflow_version = parsed.mlflow_version.map(|v| match v {
        Value::String(text) => text,
        other => other.to_string(),
    });
    Ok(MlModel {
        dir: dir.to_path_buf(),
        model_file,
        flavors,
        metadata,
        mlflow_version,
        verified,
    })
}

/// One input or output of an ONNX graph as a tensor spec of MLflow's signature.
#[derive(Debug, Clone, PartialEq)]
struct TensorSpec {
    name: String,
    /// numpy's name of the type, or `None` where the type has no numpy counterpart (or the
    /// value is not a tensor).
    dtype: Option<&'static str>,
    shape: Vec<i64>,
}

/// What an ONNX file says about itself: its inputs, outputs and metadata.
struct Description {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    metadata: Vec<(String, String)>,
    onnx_version: &'static str,
}

impl Description {
    /// MLflow's tensor signature: every input and output, or none at all where an input is
    /// not a tensor numpy can hold (MLflow then checks nothing); outputs left out where one is
    /// not such a tensor.
    fn signature(&self) -> Option<Value> {
        let specs = |specs: &[TensorSpec]| -> Option<String> {
            let list: Option<Vec<Value>> = specs
                .iter()
                .map(|s| {
                    Some(json!({
                        "name": s.name,
                        "type": "tensor",
                        "tensor-spec": {"dtype": s.dtype?, "shape": s.shape},
                    }))
                })
                .collect();
            list.map(|l| Value::Array(l).to_string())
        };
        let inputs = specs(&self.inputs)?;
        let outputs = specs(&self.outputs).filter(|_| !self.outputs.is_empty());
        Some(json!({"inputs": inputs, "outputs": outputs, "params": null}))
    }
}

fn describe(onnx: &[u8]) -> Result<Description> {
    use prost::Message;
    use skiff_onnx::proto::{ModelProto, ValueInfoProto, tensor_shape_proto::dimension};
    let model = ModelProto::decode(onnx).map_err(|e| {
        Error(format!(
            "the model is not an ONNX file ({e}): pass a model.onnx that `skiff fit` or another \
             ONNX exporter wrote"
        ))
    })?;
    let Some(graph) = model.graph.as_ref().filter(|g| !g.input.is_empty()) else {
        return Err(Error(
            "the ONNX model has no graph inputs: pass a model.onnx that `skiff fit` or another \
             ONNX exporter wrote"
                .into(),
        ));
    };
    // initializers listed as inputs (older exporters) are not fed by callers
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let spec = |v: &ValueInfoProto| {
        let tensor = v
            .r#type
            .as_ref()
            .and_then(|t| t.value.as_ref())
            .map(|skiff_onnx::proto::type_proto::Value::TensorType(t)| t);
        let shape = tensor
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(dimension::Value::DimValue(n)) if n >= 0 => n,
                        _ => -1,
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec![-1]);
        TensorSpec {
            name: v.name.clone(),
            dtype: tensor.and_then(|t| numpy_dtype(t.elem_type)),
            shape,
        }
    };
    let opset = model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .unwrap_or(skiff_onnx::OPSET);
    Ok(Description {
        inputs: graph
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name.as_str()))
            .map(spec)
            .collect(),
        outputs: graph.output.iter().map(spec).collect(),
        metadata: model
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        onnx_version: onnx_release(opset),
    })
}

/// numpy's name for ONNX tensor element type `elem`, as MLflow's tensor specs spell it.
/// Strings are `str`: MLflow's serving turns JSON into arrays of the spec's type, and numpy
/// text arrays (what `np.array(["a"])` and `DataFrame.astype(str)` give) match it.
fn numpy_dtype(elem: i32) -> Option<&'static str> {
    Some(match elem {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "str",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        _ => return None,
    })
}

/// The `onnx` release that introduced default-domain opset `opset`: the oldest that reads the
/// model (the flavour's `onnx_version`).
fn onnx_release(opset: i64) -> &'static str {
    match opset {
        ..=17 => "1.12.0",
        18 => "1.13.0",
        19 => "1.14.0",
        20 => "1.15.0",
        21 => "1.16.0",
        22 => "1.17.0",
        23 => "1.18.0",
        _ => "1.19.0",
    }
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// 32 hex digits, as Python's `uuid.uuid4().hex`, from the clock, the process and the model.
fn uuid_hex(onnx: &[u8]) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.update(onnx);
    let mut hex = format!("{:x}", hasher.finalize());
    hex.truncate(32);
    // version 4, variant 10xx, as uuid4 has them
    hex.replace_range(12..13, "4");
    let variant = u8::from_str_radix(&hex[16..17], 16).unwrap_or(0) & 0x3 | 0x8;
    hex.replace_range(16..17, &format!("{variant:x}"));
    hex
}

/// Now, as MLflow writes `utc_time_created`: `YYYY-MM-DD HH:MM:SS.ffffff`.
fn utc_now() -> String {
    let now: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
    now.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// `value` as YAML, every string quoted: PyYAML, which MLflow reads these files with, takes
/// YAML 1.1's plain `3.10` for a number and `2026-01-01 10:00:00` for a date.
fn yaml(value: &Value) -> Result<String> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false, quote_all: true };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| Error(format!("cannot write YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_onnx::{Dim, ElemType, Graph, Model};

    /// A model with a numeric input, a text input and a label output, like a table's.
    fn table_model() -> Vec<u8> {
        let mut g = Graph::new("t");
        g.input(
            "bill_length_mm",
            ElemType::Float,
            &[Dim::batch(), Dim::Fixed(1)],
        );
        g.input("island", ElemType::String, &[Dim::batch(), Dim::Fixed(1)]);
        g.node("Identity", &["bill_length_mm"], &["score"], vec![]);
        g.output("score", ElemType::Float, &[Dim::batch(), Dim::Fixed(1)]);
        Model::new(g)
            .metadata("skiff.algorithm", "test")
            .metadata("other.key", "left out")
            .to_bytes()
    }

    #[test]
    fn the_signature_names_every_input_and_output_with_numpy_types() {
        let d = describe(&table_model()).unwrap();
        let sig = d.signature().unwrap();
        let inputs: Value = serde_json::from_str(sig["inputs"].as_str().unwrap()).unwrap();
        assert_eq!(
            inputs,
            json!([
                {"name": "bill_length_mm", "type": "tensor",
                 "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}},
                {"name": "island", "type": "tensor",
                 "tensor-spec": {"dtype": "str", "shape": [-1, 1]}},
            ])
        );
        let outputs: Value = serde_json::from_str(sig["outputs"].as_str().unwrap()).unwrap();
        assert_eq!(outputs[0]["name"], "score");
    }

    #[test]
    fn a_written_folder_reads_back_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let onnx = table_model();
        let written = write_dir(&dir, &onnx).unwrap();
        assert_eq!(written.len(), 5);
        let text = std::fs::read_to_string(dir.join(MLMODEL)).unwrap();
        // PyYAML would read these unquoted as a number and a date
        assert!(text.contains("python_version: '3.10'"), "{text}");
        assert!(text.contains("utc_time_created: '"), "{text}");
        let model = read_dir(&dir).unwrap();
        assert!(model.verified);
        assert_eq!(model.model_file, dir.join(MODEL_FILE));
        assert_eq!(model.flavors, ["onnx", "python_function"]);
        assert_eq!(model.metadata["skiff.algorithm"], "test");
        assert_eq!(model.metadata[SHA256_KEY], sha256(&onnx));
        assert!(!model.metadata.contains_key("other.key"));
        assert_eq!(model.mlflow_version.as_deref(), Some(MLFLOW_VERSION));
        assert_eq!(std::fs::read(&model.model_file).unwrap(), onnx);
        // nothing left beside it
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn an_export_replaces_an_export_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        write_dir(&dir, &table_model()).unwrap();
        write_dir(&dir, &table_model()).unwrap();
        assert!(read_dir(&dir).unwrap().verified);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        let other = tmp.path().join("notes");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("todo.txt"), "keep me").unwrap();
        let err = write_dir(&other, &table_model()).unwrap_err().to_string();
        assert!(err.contains("is not an MLflow model folder"), "{err}");
        assert_eq!(
            std::fs::read_to_string(other.join("todo.txt")).unwrap(),
            "keep me"
        );
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = write_dir(&file, &table_model()).unwrap_err().to_string();
        assert!(err.contains("is a file"), "{err}");
    }

    #[test]
    fn a_changed_model_file_is_named_in_one_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        write_dir(&dir, &table_model()).unwrap();
        std::fs::write(dir.join(MODEL_FILE), b"not the model").unwrap();
        let err = read_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("model.onnx does not match"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn folders_without_the_onnx_flavour_say_what_they_hold() {
        let tmp = tempfile::tempdir().unwrap();
        let err = read_dir(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("has no MLmodel file"), "{err}");
        std::fs::write(
            tmp.path().join(MLMODEL),
            "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    \
             pickled_model: model.pkl\nmlflow_version: 3.17.2\n",
        )
        .unwrap();
        let err = read_dir(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("flavours python_function, sklearn; skiff serves the onnx flavour"),
            "{err}"
        );
        std::fs::write(tmp.path().join(MLMODEL), "flavors: [unclosed\n").unwrap();
        let err = read_dir(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("is not an MLmodel file"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_model_mlflow_wrote_reads_without_a_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        // as mlflow.onnx.save_model 3.17 writes it
        std::fs::write(
            tmp.path().join(MLMODEL),
            "flavors:\n  onnx:\n    code: null\n    data: model.onnx\n    onnx_version: 1.23.2\n    \
             providers:\n    - CUDAExecutionProvider\n    - CPUExecutionProvider\n  \
             python_function:\n    data: model.onnx\n    loader_module: mlflow.onnx\n    \
             python_version: 3.11.7\nmetadata:\n  a: b\n  n: 3\nmlflow_version: 3.17.2\n\
             model_id: null\nutc_time_created: '2026-12-05 15:18:38.438624'\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join(MODEL_FILE), table_model()).unwrap();
        let model = read_dir(tmp.path()).unwrap();
        assert!(!model.verified);
        assert_eq!(model.metadata["a"], "b");
        assert_eq!(model.metadata["n"], "3");
        assert_eq!(model.mlflow_version.as_deref(), Some("3.17.2"));
    }

    #[test]
    fn logged_models_record_where_they_live() {
        let logged = Logged {
            artifact_path: "mlflow-artifacts:/1/models/m-abc/artifacts".into(),
            model_id: "m-abc".into(),
            run_id: "r1".into(),
        };
        let files = files(&table_model(), Some(&logged)).unwrap();
        let (_, mlmodel) = files.iter().find(|(n, _)| *n == MLMODEL).unwrap();
        let parsed: BTreeMap<String, Value> =
            serde_saphyr::from_str(std::str::from_utf8(mlmodel).unwrap()).unwrap();
        assert_eq!(parsed["model_id"], "m-abc");
        assert_eq!(parsed["model_uuid"], "m-abc");
        assert_eq!(parsed["run_id"], "r1");
        assert_eq!(parsed["artifact_path"], logged.artifact_path);
    }

    #[test]
    fn uuids_look_like_uuid4() {
        let a = uuid_hex(b"x");
        assert_eq!(a.len(), 32);
        assert_eq!(&a[12..13], "4");
        assert!("89ab".contains(&a[16..17]), "{a}");
        assert_ne!(a, uuid_hex(b"x"));
    }
}
