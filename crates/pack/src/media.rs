//! Media types and annotation keys, in one place.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, tar + gzip.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker image manifest (schema 2), accepted on pull.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list, accepted on pull.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker layer, tar + gzip.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Content of the `oci-layout` file's `imageLayoutVersion`.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

/// Annotation: human readable title.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Annotation: version of the packaged software.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Annotation: creation time (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation: description.
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
/// Annotation: source repository URL.
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// Annotation: source control revision (the commit skiff was built from).
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
/// Annotation: tag of a manifest in an image layout's index.json.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// skiff annotation: the served model name.
pub const SKIFF_MODEL_NAME: &str = "dev.skiff.model.name";
/// skiff annotation: the model's task (classification, regression, clustering).
pub const SKIFF_MODEL_TASK: &str = "dev.skiff.model.task";
/// skiff annotation: the estimator that produced the model.
pub const SKIFF_MODEL_ESTIMATOR: &str = "dev.skiff.model.estimator";
/// skiff annotation: the model's inputs, compact JSON `[{"name", "datatype", "shape"}]`.
pub const SKIFF_MODEL_INPUTS: &str = "dev.skiff.model.inputs";
/// skiff annotation: the model's outputs, compact JSON `[{"name", "datatype", "shape"}]`.
pub const SKIFF_MODEL_OUTPUTS: &str = "dev.skiff.model.outputs";
/// skiff annotation: metrics measured at training time, compact JSON `{"name": value}`.
pub const SKIFF_MODEL_METRICS: &str = "dev.skiff.model.metrics";
/// skiff annotation: path of the model inside the image.
pub const SKIFF_MODEL_PATH: &str = "dev.skiff.model.path";
/// skiff annotation: the skiff version that packed the image.
pub const SKIFF_VERSION: &str = "dev.skiff.version";

/// Path of the server executable inside the image.
pub const SERVER_PATH: &str = "/skiff-server";
/// Path of the ONNX model inside the image.
pub const MODEL_PATH: &str = "/model/model.onnx";
/// Port the server's REST API listens on inside the image.
pub const SERVER_PORT: u16 = 8080;
/// Port the server's gRPC API listens on inside the image (KServe's).
pub const GRPC_PORT: u16 = 8081;
/// User the server runs as (uid:gid; distroless `nonroot`).
pub const SERVER_USER: &str = "65532:65532";

/// The config of a WebAssembly component artifact (the CNCF wasm OCI layout, as runwasi, wkg
/// and oci-wasm read it).
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The layer of a WebAssembly component artifact: the component itself.
pub const WASM_LAYER: &str = "application/wasm";
/// A layer of a component artifact with wasmtime's native code for the component, compiled
/// ahead of time for one target (`skiff pack --precompile`); tools that know only
/// [`WASM_LAYER`] pass it by.
pub const WASMTIME_PRECOMPILED: &str = "application/vnd.dev.skiff.wasmtime.precompiled.v1";
/// On a [`WASMTIME_PRECOMPILED`] layer: the target triple its code is for.
pub const WASMTIME_TARGET: &str = "dev.skiff.wasmtime.target";
/// On a [`WASMTIME_PRECOMPILED`] layer: the wasmtime version that compiled it.
pub const WASMTIME_VERSION: &str = "dev.skiff.wasmtime.version";
/// On a [`WASMTIME_PRECOMPILED`] layer: the hash of the compiling engine's settings.
pub const WASMTIME_ENGINE: &str = "dev.skiff.wasmtime.engine";

/// An SPDX JSON document (the image's SBOM), as media type of its layer and artifact type of
/// its manifest.
pub const SPDX_JSON: &str = "application/spdx+json";

/// Whether `media_type` is a multi-platform index (OCI's or docker's).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is a single-platform image manifest (OCI's or docker's).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The empty descriptor's media type: the config of an artifact that has none (image-spec 1.1).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The content of the empty blob, `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";
/// The `OCI-Subject` header a registry with the referrers API answers a manifest push with.
pub const OCI_SUBJECT_HEADER: &str = "oci-subject";
/// An in-toto statement (provenance), as artifact type and layer media type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// Annotation of an in-toto layer: the statement's predicate type.
pub const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// cosign: the layer of a signature manifest, holding the signed "simple signing" payload (the
/// JSON naming the image's manifest digest). Its annotation [`COSIGN_SIGNATURE_ANNOTATION`]
/// carries the signature.
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// cosign: the annotation on a [`COSIGN_SIMPLE_SIGNING`] layer holding the base64 ASN.1 DER
/// ECDSA signature of the layer's bytes.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// cosign: the config media type (hence the artifact type) of a signature manifest attached as
/// an OCI 1.1 referrer (`cosign sign --registry-referrers-mode=oci-1-1`).
pub const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Sigstore bundle 0.3: the artifact type and layer media type of the signature cosign 3 attaches
/// as a referrer by default (a DSSE envelope of an in-toto statement).
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Artifact type of a CNCF ModelPack model manifest (modelpack/model-spec `docs/spec.md`).
pub const MODELPACK_MANIFEST: &str = "application/vnd.cncf.model.manifest.v1+json";
/// Config of a ModelPack artifact: the model's descriptor, config and `modelfs` diff IDs.
pub const MODELPACK_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
/// ModelPack weight layer: the weight file itself, neither archived nor compressed.
pub const MODELPACK_WEIGHT_RAW: &str = "application/vnd.cncf.model.weight.v1.raw";
/// ModelPack weight layer: an uncompressed tar holding the weight file (what skiff writes).
pub const MODELPACK_WEIGHT_TAR: &str = "application/vnd.cncf.model.weight.v1.tar";
/// ModelPack weight layer: a gzip-compressed tar holding the weight file.
pub const MODELPACK_WEIGHT_TAR_GZIP: &str = "application/vnd.cncf.model.weight.v1.tar+gzip";
/// ModelPack weight layer: a zstd-compressed tar holding the weight file.
pub const MODELPACK_WEIGHT_TAR_ZSTD: &str = "application/vnd.cncf.model.weight.v1.tar+zstd";
/// ModelPack layer annotation: the file's path, relative to the model's root folder.
pub const MODELPACK_FILEPATH: &str = "org.cncf.model.filepath";
/// ModelPack layer annotation: the file's metadata, JSON `{name, mode, uid, gid, size, mtime, typeflag}`.
pub const MODELPACK_FILE_METADATA: &str = "org.cncf.model.file.metadata+json";
/// ModelPack layer annotation: `"true"` when the layer's media type was guessed, not checked.
pub const MODELPACK_MEDIATYPE_UNTESTED: &str = "org.cncf.model.file.mediatype.untested";
