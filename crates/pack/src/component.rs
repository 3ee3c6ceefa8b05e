//! Model components: skiff's prebuilt engine (`crates/guest`, tract for wasm32-wasip2) with a
//! model plugged into its `skiff:model/weights` import, as one component file.
//!
//! No compiler runs: the model becomes a tiny generated component whose only code returns
//! where its data segment holds the name and the ONNX bytes, and wac composes it with the
//! engine. The engine's WASI imports stay imports; its exports are the result's exports.

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};
use wasm_encoder::{
    Alias, CanonicalFunctionSection, CanonicalOption, CodeSection, Component,
    ComponentAliasSection, ComponentExportKind, ComponentExportSection, ComponentInstanceSection,
    ComponentTypeSection, ComponentValType, ConstExpr, DataSection, ExportKind, ExportSection,
    Function, FunctionSection, InstanceSection, Instruction, MemorySection, MemoryType, Module,
    ModuleArg, ModuleSection, PrimitiveValType, TypeSection, ValType,
};

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageManifest};

/// The interface the engine imports its model through.
pub const WEIGHTS_INTERFACE: &str = "skiff:model/weights@0.1.0";
/// The interface a model component exports.
pub const PREDICTOR_INTERFACE: &str = "skiff:model/predictor@0.1.0";

/// Plugs the model `name` (an ONNX file's `bytes`) into `engine`; returns the component.
pub fn compose(engine: &[u8], name: &str, model: &[u8]) -> Result<Vec<u8>> {
    let bad_engine = |e: &dyn std::fmt::Display| {
        Error::Invalid(format!(
            "the component engine is not one skiff can plug a model into: {e} (reinstall skiff, or build it with images/build-guest.sh)"
        ))
    };
    let weights = weights_component(name, model)?;
    let mut graph = CompositionGraph::new();
    let engine = Package::from_bytes("skiff:engine", None, engine.to_vec(), graph.types_mut())
        .map_err(|e| bad_engine(&e))?;
    let engine = graph.register_package(engine).map_err(|e| bad_engine(&e))?;
    let weights = Package::from_bytes("skiff:weights", None, weights, graph.types_mut())
        .map_err(|e| Error::Invalid(format!("cannot read the generated weights component: {e}")))?;
    let weights = graph
        .register_package(weights)
        .map_err(|e| Error::Invalid(format!("cannot use the generated weights component: {e}")))?;
    let exports: Vec<String> = graph.types()[graph[engine].ty()]
        .exports
        .keys()
        .cloned()
        .collect();
    if !exports.iter().any(|e| e == PREDICTOR_INTERFACE) {
        return Err(bad_engine(&format!(
            "it does not export {PREDICTOR_INTERFACE}"
        )));
    }

    let (w, e) = (graph.instantiate(weights), graph.instantiate(engine));
    let plugged = graph
        .alias_instance_export(w, WEIGHTS_INTERFACE)
        .map_err(|e| bad_engine(&e))?;
    graph
        .set_instantiation_argument(e, WEIGHTS_INTERFACE, plugged)
        .map_err(|e| bad_engine(&e))?;
    for export in exports {
        let node = graph
            .alias_instance_export(e, &export)
            .map_err(|e| bad_engine(&e))?;
        graph.export(node, &export).map_err(|e| bad_engine(&e))?;
    }
    graph
        .encode(EncodeOptions {
            define_components: true,
            validate: true,
            processor: None,
        })
        .map_err(|e| bad_engine(&e))
}

/// How a WebAssembly core module starts: the magic, then version 1 (a component's differs).
const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// Code precompiled for a component, as it goes into the component's artifact.
#[derive(Debug, Clone, Copy)]
pub struct Precompiled<'a> {
    /// The target triple the code is for.
    pub target: &'a str,
    /// The wasmtime version that compiled it.
    pub wasmtime: &'a str,
    /// The hash of the compiling engine's settings.
    pub engine: &'a str,
    /// The precompiled file.
    pub file: &'a [u8],
}

/// Writes `component` into the layout at `layout_dir` (created when missing) as an OCI wasm
/// artifact, tagged `tag`: a config of media type [`media::WASM_CONFIG`] that lists the
/// component's imports and exports (or says `wasip1` for a core module, which
/// `skiff pack --format module` writes), the component as its first layer ([`media::WASM_LAYER`]),
/// and code `precompiled` for it as one [`media::WASMTIME_PRECOMPILED`] layer per target.
/// `annotations` go on the manifest, beside the title, version and creation time.
pub fn write_artifact(
    layout_dir: &Path,
    tag: &str,
    component: &[u8],
    precompiled: &[Precompiled<'_>],
    mut annotations: BTreeMap<String, String>,
) -> Result<Descriptor> {
    let created = crate::image::created_from_env()?;
    let layout = Layout::create_or_open(layout_dir)?;
    let mut layers = vec![layout.write_blob(media::WASM_LAYER, component)?];
    for code in precompiled {
        let mut layer = layout.write_blob(media::WASMTIME_PRECOMPILED, code.file)?;
        layer.annotations = Some(BTreeMap::from([
            (media::WASMTIME_TARGET.to_string(), code.target.to_string()),
            (
                media::WASMTIME_VERSION.to_string(),
                code.wasmtime.to_string(),
            ),
            (media::WASMTIME_ENGINE.to_string(), code.engine.to_string()),
        ]));
        layers.push(layer);
    }
    let mut config = serde_json::json!({
        "created": created,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
    });
    if component.starts_with(CORE_MODULE) {
        config["os"] = "wasip1".into();
    } else {
        let (imports, exports) = interface_names(component)?;
        config["component"] = serde_json::json!({ "imports": imports, "exports": exports });
    }
    let config = serde_json::to_vec(&config).map_err(|e| Error::json("wasm config", e))?;
    let config = layout.write_blob(media::WASM_CONFIG, &config)?;
    annotations.insert(media::ANNOTATION_CREATED.into(), created);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: Some(annotations),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("wasm manifest", e))?;
    let desc = layout.write_blob(media::OCI_MANIFEST, &bytes)?;
    layout.tag(&desc, tag)?;
    Ok(desc)
}

/// Whether `layer` is code precompiled for a target on `architecture` (`x86_64`, `aarch64`,
/// or OCI's `amd64`, `arm64`).
pub fn is_precompiled_for(layer: &Descriptor, architecture: &str) -> bool {
    let arch = match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    };
    layer.media_type == media::WASMTIME_PRECOMPILED
        && layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(media::WASMTIME_TARGET))
            .is_some_and(|target| target.split('-').next() == Some(arch))
}

/// The code precompiled for `architecture` in the component artifact `tag` of the layout at
/// `layout_dir`, as (what to call it, the blob's file, its size and digest checked); layers a
/// pull for one platform left out are passed by.
pub fn read_precompiled(
    layout_dir: &Path,
    tag: &str,
    architecture: &str,
) -> Result<Vec<(String, std::path::PathBuf)>> {
    let layout = Layout::open(layout_dir)?;
    let (_, manifest) = layout.resolve(tag)?;
    let present = |l: &Descriptor| layout.blob_path(&l.digest).is_ok_and(|p| p.is_file());
    manifest
        .layers
        .iter()
        .filter(|l| is_precompiled_for(l, architecture) && present(l))
        .map(|l| {
            // Checked as a read would, without reading it into memory: a loader maps it.
            let path = layout.blob_path(&l.digest)?;
            crate::layout::verify_file(&path, l)?;
            Ok((
                format!("oci:{}:{tag} layer {}", layout_dir.display(), l.digest),
                path,
            ))
        })
        .collect()
}

/// The names a component imports and exports (its top level only).
fn interface_names(component: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    use wasmparser::{Parser, Payload};
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    let bad = |e: wasmparser::BinaryReaderError| {
        Error::Invalid(format!("the component cannot be read: {e}"))
    };
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(bad)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import.map_err(bad)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export.map_err(bad)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

/// A component exporting [`WEIGHTS_INTERFACE`]: `name() -> string` and `get() -> list<u8>`.
///
/// Its core module's memory holds, from address 0: the (pointer, length) pair `name` returns,
/// the pair `get` returns, the name, the model. Each function only returns its pair's address;
/// the canonical ABI lifts the rest, so there is no allocator and nothing to free.
fn weights_component(name: &str, model: &[u8]) -> Result<Vec<u8>> {
    const PAGE: usize = 65536;
    let too_large = || {
        Error::Invalid(format!(
            "the model is {} bytes; a component holds models up to 4 GiB",
            model.len()
        ))
    };
    let name_at = 16usize;
    let model_at = name_at + name.len();
    let end = model_at.checked_add(model.len()).ok_or_else(too_large)?;
    let u32_of = |n: usize| u32::try_from(n).map_err(|_| too_large());
    let mut data = Vec::with_capacity(end);
    for n in [name_at, name.len(), model_at, model.len()] {
        data.extend_from_slice(&u32_of(n)?.to_le_bytes());
    }
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(model);
    let pages = u64::try_from(end.div_ceil(PAGE)).map_err(|_| too_large())?;

    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    module.section(&types);
    let mut functions = FunctionSection::new();
    functions.function(0);
    functions.function(0);
    module.section(&functions);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: pages,
        maximum: Some(pages),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("name", ExportKind::Func, 0);
    exports.export("get", ExportKind::Func, 1);
    module.section(&exports);
    let mut code = CodeSection::new();
    for pair_at in [0, 8] {
        let mut f = Function::new([]);
        f.instruction(&Instruction::I32Const(pair_at));
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    module.section(&code);
    let mut segments = DataSection::new();
    segments.active(0, &ConstExpr::i32_const(0), data);
    module.section(&segments);

    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    let mut instances = InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    component.section(&instances);
    let mut aliases = ComponentAliasSection::new();
    for (kind, export) in [
        (ExportKind::Func, "name"),
        (ExportKind::Func, "get"),
        (ExportKind::Memory, "memory"),
    ] {
        aliases.alias(Alias::CoreInstanceExport {
            instance: 0,
            kind,
            name: export,
        });
    }
    component.section(&aliases);
    let mut types = ComponentTypeSection::new();
    types.defined_type().list(PrimitiveValType::U8); // type 0: list<u8>
    types
        .function()
        .params(Vec::<(&str, ComponentValType)>::new())
        .result(Some(ComponentValType::Primitive(PrimitiveValType::String))); // type 1
    types
        .function()
        .params(Vec::<(&str, ComponentValType)>::new())
        .result(Some(ComponentValType::Type(0))); // type 2
    component.section(&types);
    let mut canon = CanonicalFunctionSection::new();
    canon.lift(0, 1, [CanonicalOption::Memory(0), CanonicalOption::UTF8]);
    canon.lift(1, 2, [CanonicalOption::Memory(0)]);
    component.section(&canon);
    let mut instance = ComponentInstanceSection::new();
    instance.export_items([
        ("name", ComponentExportKind::Func, 0),
        ("get", ComponentExportKind::Func, 1),
    ]);
    component.section(&instance);
    let mut export = ComponentExportSection::new();
    export.export(WEIGHTS_INTERFACE, ComponentExportKind::Instance, 0, None);
    component.section(&export);
    Ok(component.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_component_is_valid_and_exports_the_interface() {
        let bytes = weights_component("iris", b"\x08\x07onnx").unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&bytes)
            .unwrap();
        let mut exports = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
            if let wasmparser::Payload::ComponentExportSection(reader) = payload.unwrap() {
                for export in reader {
                    exports.push(export.unwrap().name.name.to_string());
                }
            }
        }
        assert_eq!(exports, [WEIGHTS_INTERFACE]);
    }

    #[test]
    fn something_that_is_not_an_engine_is_refused() {
        let not_engine = weights_component("x", b"y").unwrap();
        let err = compose(&not_engine, "iris", b"model")
            .unwrap_err()
            .to_string();
        assert!(err.contains("component engine"), "{err}");
        assert!(err.contains("images/build-guest.sh"), "{err}");
    }
}
