//! The protocol over gRPC: KServe's `inference.GRPCInferenceService` (proto/), on tonic, over
//! the state the REST routes serve from: the same repository, decoding and checks, `execute`,
//! permits, metrics and shutdown.
//!
//! A request's tensors come as typed `contents` or as `raw_input_contents` (little-endian
//! elements; BYTES as a 4-byte little-endian length and the bytes, per element, as Triton).
//! Raw inputs become the REST path's binary data (a `binary_data_size` per input), typed ones
//! its JSON elements, so both meet the same checks; the answer is raw when the request was.

use super::{AppState, Shared, execute, permit};
use crate::protocol::{self, ApiError, FlatData, RequestInput};
use http::StatusCode;
use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use pb::model_infer_request::InferInputTensor;
use pb::model_infer_response::InferOutputTensor;
use pb::model_metadata_response::TensorMetadata;
use pb::*;
use skiff_runtime::{IoSpec, Model, Tensor, TensorData};
use std::future::Future;
use std::sync::atomic::Ordering;
use tonic::{Code, Request, Response, Status};

/// The messages, client and service of the protocol's gRPC form (package `inference`),
/// generated from `proto/grpc_predict_v2.proto` by build.rs: KServe's `grpc_predict_v2.proto`
/// with Triton's model repository RPCs. The client takes any tonic transport.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("inference");
}

/// The gRPC status of an error the REST path answers with an HTTP status: the one mapping
/// both protocols share.
impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let code = match e.status {
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
                Code::ResourceExhausted
            }
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => Code::DeadlineExceeded,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => Code::Unimplemented,
            status if status.is_client_error() => Code::InvalidArgument,
            _ => Code::Internal,
        };
        Status::new(code, e.message)
    }
}

/// Serves the gRPC service on `listener` until `stop` completes, then stops accepting and
/// returns once the requests in flight are answered.
pub(super) async fn serve(
    state: Shared,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limit = state.options.max_body_bytes;
    let service = GrpcInferenceServiceServer::new(Grpc { state })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        // tonic refuses a message over the limit with OUT_OF_RANGE; gRPC servers say
        // RESOURCE_EXHAUSTED (as the REST path's 413), which is what clients check for.
        .layer(tower::util::MapResponseLayer::new(too_large_is_exhausted))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop)
        .await
        .map_err(std::io::Error::other)
}

/// Rewrites the OUT_OF_RANGE of tonic's message size limit as RESOURCE_EXHAUSTED; the service
/// itself never answers OUT_OF_RANGE.
fn too_large_is_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    const OUT_OF_RANGE: &str = "11";
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|s| s.as_bytes() == OUT_OF_RANGE.as_bytes())
    {
        let code = (Code::ResourceExhausted as i32).to_string();
        headers.insert(
            "grpc-status",
            http::HeaderValue::from_str(&code).expect("digits"),
        );
    }
    response
}

struct Grpc {
    state: Shared,
}

/// A version field: empty means the newest.
fn version(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.state.ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.get_ref();
        let ready = self
            .state
            .repo()
            .get(&request.name, version(&request.version))
            .is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "skiff".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: protocol::EXTENSIONS.iter().map(|e| e.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.get_ref();
        let repo = self.state.repo();
        let (_, model) = repo.get(&request.name, version(&request.version))?;
        let versions = repo.versions(&request.name)?;
        let tensors = |specs: &[IoSpec]| {
            specs
                .iter()
                .map(|s| TensorMetadata {
                    name: s.name.clone(),
                    datatype: s.datatype.as_str().into(),
                    shape: s.shape.clone(),
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: request.name.clone(),
            versions: versions.iter().map(u64::to_string).collect(),
            platform: "onnx_onnxv1".into(),
            inputs: tensors(model.inputs()),
            outputs: tensors(model.outputs()),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let state = &self.state;
        let started = std::time::Instant::now();
        let _in_flight = state.metrics.start();
        let request = request.into_inner();
        let (model, version) =
            state.metric_labels(&request.model_name, version(&request.model_version));
        let result = infer(state, request).await;
        // Metrics count gRPC answers under the HTTP status REST gives the same outcome.
        state.account(
            &model,
            &version,
            result.as_ref().err(),
            started,
            "gRPC infer",
        );
        result.map(Response::new).map_err(Status::from)
    }

    async fn repository_index(
        &self,
        request: Request<RepositoryIndexRequest>,
    ) -> Result<Response<RepositoryIndexResponse>, Status> {
        let ready = request.get_ref().ready;
        let models = super::control::index(&self.state, ready)
            .into_iter()
            .map(|e| repository_index_response::ModelIndex {
                name: e.name,
                version: e.version.map(|v| v.to_string()).unwrap_or_default(),
                state: e.state.to_string(),
                reason: e.reason.to_string(),
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        request: Request<RepositoryModelLoadRequest>,
    ) -> Result<Response<RepositoryModelLoadResponse>, Status> {
        let request = request.get_ref();
        if !request.parameters.is_empty() {
            return Err(Status::invalid_argument(super::control::NO_LOAD_PARAMETERS));
        }
        super::control::load_model(&self.state, &request.model_name).await?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<RepositoryModelUnloadRequest>,
    ) -> Result<Response<RepositoryModelUnloadResponse>, Status> {
        super::control::unload_model(&self.state, &request.get_ref().model_name).await?;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}

async fn infer(
    state: &AppState,
    request: ModelInferRequest,
) -> Result<ModelInferResponse, ApiError> {
    if state.closing.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is shutting down: send the request to another replica",
        ));
    }
    let repo = state.repo();
    let name = request.model_name;
    let (version, model) = repo.get(&name, version(&request.model_version))?;
    let _permit =
        permit(state).map_err(|e| ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.message))?;
    let wanted = wanted_outputs(&name, model, &request.outputs)?;
    let raw = !request.raw_input_contents.is_empty();
    let (inputs, binary) = request_inputs(request.inputs, request.raw_input_contents)?;
    let (tensors, elements) =
        protocol::decode_inputs(&name, model, inputs, &binary, state.options.max_elements)?;
    drop(binary);
    let results = execute(state, &name, version, model, tensors, elements).await?;
    Ok(response(
        name, version, request.id, model, wanted, raw, results,
    ))
}

/// The outputs a request asks for, checked against the model's; all when it names none.
fn wanted_outputs(
    name: &str,
    model: &Model,
    outputs: &[model_infer_request::InferRequestedOutputTensor],
) -> Result<Option<Vec<String>>, ApiError> {
    if outputs.is_empty() {
        return Ok(None);
    }
    let mut wanted = Vec::with_capacity(outputs.len());
    for output in outputs {
        if !model.outputs().iter().any(|o| o.name == output.name) {
            return Err(ApiError::bad_request(format!(
                "model {name:?} has no output {:?} (outputs: {})",
                output.name,
                model
                    .outputs()
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        wanted.push(output.name.clone());
    }
    Ok(Some(wanted))
}

/// The request's inputs as the REST path's: raw contents become binary data after the JSON
/// header (returned), typed contents become `data`.
pub(crate) fn request_inputs(
    inputs: Vec<InferInputTensor>,
    mut raw: Vec<Vec<u8>>,
) -> Result<(Vec<RequestInput>, Vec<u8>), ApiError> {
    if raw.is_empty() {
        let inputs = inputs
            .into_iter()
            .map(typed_input)
            .collect::<Result<_, _>>()?;
        return Ok((inputs, Vec::new()));
    }
    if raw.len() != inputs.len() {
        return Err(ApiError::bad_request(format!(
            "request has {} inputs but {} raw_input_contents: send one raw_input_contents \
             entry per input, in the order of the inputs",
            inputs.len(),
            raw.len()
        )));
    }
    let mut converted = Vec::with_capacity(inputs.len());
    for (input, bytes) in inputs.into_iter().zip(&raw) {
        if input.contents.as_ref().is_some_and(|c| filled(c).is_some()) {
            return Err(ApiError::bad_request(format!(
                "input {:?} has contents and the request has raw_input_contents: send every \
                 input one way",
                input.name
            )));
        }
        let mut parameters = serde_json::Map::new();
        parameters.insert("binary_data_size".into(), bytes.len().into());
        converted.push(RequestInput {
            name: input.name,
            shape: input.shape,
            datatype: input.datatype,
            parameters,
            data: None,
        });
    }
    // One input (the usual case) hands over its bytes; several are laid end to end.
    let binary = if raw.len() == 1 {
        raw.pop().unwrap_or_default()
    } else {
        raw.concat()
    };
    Ok((converted, binary))
}

/// The name of the one typed contents field that holds elements, if any (the first when
/// several do).
fn filled(c: &InferTensorContents) -> Option<&'static str> {
    [
        (!c.bool_contents.is_empty(), "bool_contents"),
        (!c.int_contents.is_empty(), "int_contents"),
        (!c.int64_contents.is_empty(), "int64_contents"),
        (!c.uint_contents.is_empty(), "uint_contents"),
        (!c.uint64_contents.is_empty(), "uint64_contents"),
        (!c.fp32_contents.is_empty(), "fp32_contents"),
        (!c.fp64_contents.is_empty(), "fp64_contents"),
        (!c.bytes_contents.is_empty(), "bytes_contents"),
    ]
    .into_iter()
    .find_map(|(full, field)| full.then_some(field))
}

/// The typed contents field of a datatype, as the protocol assigns them.
fn contents_field(datatype: &str) -> Option<&'static str> {
    Some(match datatype {
        "BOOL" => "bool_contents",
        "INT8" | "INT16" | "INT32" => "int_contents",
        "INT64" => "int64_contents",
        "UINT8" | "UINT16" | "UINT32" => "uint_contents",
        "UINT64" => "uint64_contents",
        "FP32" => "fp32_contents",
        "FP64" => "fp64_contents",
        "BYTES" => "bytes_contents",
        _ => return None,
    })
}

fn typed_input(input: InferInputTensor) -> Result<RequestInput, ApiError> {
    let name = input.name;
    let contents = input.contents.unwrap_or_default();
    // An unknown datatype has no field: the shared decoding names the datatypes served.
    let expected = contents_field(&input.datatype);
    let data = match (expected, filled(&contents)) {
        (Some(expected), Some(found)) if expected != found => {
            return Err(ApiError::bad_request(format!(
                "input {name:?} is {}: send its elements in contents.{expected}, not \
                 contents.{found}",
                input.datatype
            )));
        }
        (Some(expected), None) if input.shape.iter().all(|&d| d != 0) => {
            return Err(ApiError::bad_request(format!(
                "input {name:?} has no elements: send them in contents.{expected} or in \
                 raw_input_contents"
            )));
        }
        _ => {
            let c = contents;
            match expected {
                Some("bool_contents") => FlatData::bools(c.bool_contents),
                Some("int_contents") => FlatData::ints(c.int_contents.into_iter().map(i64::from)),
                Some("int64_contents") => FlatData::ints(c.int64_contents),
                Some("uint_contents") => {
                    FlatData::uints(c.uint_contents.into_iter().map(u64::from))
                }
                Some("uint64_contents") => FlatData::uints(c.uint64_contents),
                Some("fp32_contents") => {
                    FlatData::floats(c.fp32_contents.into_iter().map(f64::from))
                }
                Some("fp64_contents") => FlatData::floats(c.fp64_contents),
                Some(_) => FlatData::strings(
                    c.bytes_contents
                        .into_iter()
                        .map(|b| {
                            String::from_utf8(b).map_err(|_| {
                                ApiError::bad_request(format!(
                                    "input {name:?}: BYTES element is not UTF-8"
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                None => FlatData::default(),
            }
        }
    };
    Ok(RequestInput {
        name,
        shape: input.shape,
        datatype: input.datatype,
        parameters: serde_json::Map::new(),
        data: Some(data),
    })
}

/// The answer: the wanted outputs in the model's order, raw or typed.
fn response(
    model_name: String,
    version: u64,
    id: String,
    model: &Model,
    wanted: Option<Vec<String>>,
    raw: bool,
    results: Vec<Tensor>,
) -> ModelInferResponse {
    let mut outputs = Vec::new();
    let mut raw_output_contents = Vec::new();
    for (spec, tensor) in model.outputs().iter().zip(results) {
        if wanted.as_ref().is_some_and(|w| !w.contains(&spec.name)) {
            continue;
        }
        let (output, bytes) = output_tensor(&spec.name, tensor, raw);
        outputs.push(output);
        raw_output_contents.extend(bytes);
    }
    ModelInferResponse {
        model_name,
        model_version: version.to_string(),
        id,
        parameters: Default::default(),
        outputs,
        raw_output_contents,
    }
}

/// One output, with its raw bytes when `raw` (the REST path's binary encoding), else its typed
/// contents.
pub(crate) fn output_tensor(
    name: &str,
    tensor: Tensor,
    raw: bool,
) -> (InferOutputTensor, Option<Vec<u8>>) {
    let datatype = tensor.data.datatype().as_str().to_string();
    let shape = tensor.shape.iter().map(|&d| d as i64).collect();
    let mut output = InferOutputTensor {
        name: name.to_string(),
        datatype,
        shape,
        parameters: Default::default(),
        contents: None,
    };
    if raw {
        let mut bytes = Vec::new();
        protocol::from_tensor(name, tensor, true, &mut bytes);
        return (output, Some(bytes));
    }
    let mut contents = InferTensorContents::default();
    match tensor.data {
        TensorData::Bool(v) => contents.bool_contents = v,
        TensorData::Int32(v) => contents.int_contents = v,
        TensorData::Int64(v) => contents.int64_contents = v,
        TensorData::Fp32(v) => contents.fp32_contents = v,
        TensorData::Fp64(v) => contents.fp64_contents = v,
        TensorData::Bytes(v) => {
            contents.bytes_contents = v.into_iter().map(String::into_bytes).collect()
        }
    }
    output.contents = Some(contents);
    (output, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_runtime::DataType;

    fn spec(datatype: DataType) -> IoSpec {
        IoSpec {
            name: "X".into(),
            datatype,
            shape: vec![-1, 2],
        }
    }

    fn input(datatype: &str, shape: Vec<i64>, contents: InferTensorContents) -> InferInputTensor {
        InferInputTensor {
            name: "X".into(),
            datatype: datatype.into(),
            shape,
            parameters: Default::default(),
            contents: Some(contents),
        }
    }

    /// Decodes one input as the server does, through the REST path's `to_tensor`.
    fn decode(
        inputs: Vec<InferInputTensor>,
        raw: Vec<Vec<u8>>,
        spec: &IoSpec,
    ) -> Result<Tensor, ApiError> {
        let (mut inputs, binary) = request_inputs(inputs, raw)?;
        let mut rest = &binary[..];
        let tensor = protocol::to_tensor(inputs.remove(0), spec, &mut rest)?;
        assert!(rest.is_empty(), "every raw byte is used");
        Ok(tensor)
    }

    #[test]
    fn every_rest_status_maps_to_its_grpc_code() {
        let cases = [
            (StatusCode::BAD_REQUEST, Code::InvalidArgument),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument),
            (StatusCode::NOT_FOUND, Code::NotFound),
            (StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted),
            (StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
            (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
            (StatusCode::GATEWAY_TIMEOUT, Code::DeadlineExceeded),
            (StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented),
            (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
        ];
        for (http, grpc) in cases {
            let status = Status::from(ApiError::new(http, "why"));
            assert_eq!(status.code(), grpc, "{http}");
            assert_eq!(status.message(), "why");
        }
    }

    #[test]
    fn tonic_size_limit_answers_resource_exhausted() {
        let limited = Status::out_of_range("Error, decoded message length too large");
        let response = too_large_is_exhausted(limited.into_http::<()>());
        let code = Status::from_header_map(response.headers()).map(|s| s.code());
        assert_eq!(code, Some(Code::ResourceExhausted));
        let other = too_large_is_exhausted(Status::not_found("x").into_http::<()>());
        let code = Status::from_header_map(other.headers()).map(|s| s.code());
        assert_eq!(code, Some(Code::NotFound));
    }

    #[test]
    fn typed_fp32_contents_become_the_input_tensor() {
        let contents = InferTensorContents {
            fp32_contents: vec![1.5, 2.0, -3.0, 4.25],
            ..Default::default()
        };
        let tensor = decode(
            vec![input("FP32", vec![2, 2], contents)],
            vec![],
            &spec(DataType::Fp32),
        )
        .unwrap();
        assert_eq!(tensor.shape, vec![2, 2]);
        assert_eq!(tensor.data, TensorData::Fp32(vec![1.5, 2.0, -3.0, 4.25]));
    }

    #[test]
    fn typed_int_contents_convert_to_a_float_input() {
        let contents = InferTensorContents {
            int64_contents: vec![1, 2],
            ..Default::default()
        };
        let tensor = decode(
            vec![input("INT64", vec![1, 2], contents)],
            vec![],
            &spec(DataType::Fp32),
        )
        .unwrap();
        assert_eq!(tensor.data, TensorData::Fp32(vec![1.0, 2.0]));
    }

    #[test]
    fn raw_fp64_contents_become_the_input_tensor() {
        let raw: Vec<u8> = [0.5f64, 1.0, 2.0, 3.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let tensor = decode(
            vec![input("FP64", vec![2, 2], Default::default())],
            vec![raw],
            &spec(DataType::Fp32),
        )
        .unwrap();
        assert_eq!(tensor.data, TensorData::Fp32(vec![0.5, 1.0, 2.0, 3.0]));
    }

    #[test]
    fn raw_bytes_contents_are_length_prefixed_strings() {
        let mut raw = Vec::new();
        for s in ["setosa", "", "é"] {
            raw.extend_from_slice(&(s.len() as u32).to_le_bytes());
            raw.extend_from_slice(s.as_bytes());
        }
        let spec = IoSpec {
            shape: vec![-1],
            ..spec(DataType::Bytes)
        };
        let tensor = decode(
            vec![input("BYTES", vec![3], Default::default())],
            vec![raw.clone()],
            &spec,
        )
        .unwrap();
        assert_eq!(
            tensor.data,
            TensorData::Bytes(vec!["setosa".into(), "".into(), "é".into()])
        );
        // And back: the answer's raw BYTES are the same layout.
        let (output, bytes) = output_tensor("label", tensor, true);
        assert_eq!(output.datatype, "BYTES");
        assert_eq!(bytes, Some(raw));
    }

    #[test]
    fn typed_bytes_contents_become_strings() {
        let contents = InferTensorContents {
            bytes_contents: vec![b"a".to_vec(), b"bc".to_vec()],
            ..Default::default()
        };
        let spec = IoSpec {
            shape: vec![-1],
            ..spec(DataType::Bytes)
        };
        let tensor = decode(vec![input("BYTES", vec![2], contents)], vec![], &spec).unwrap();
        assert_eq!(
            tensor.data,
            TensorData::Bytes(vec!["a".into(), "bc".into()])
        );
    }

    #[test]
    fn typed_contents_in_the_wrong_field_are_refused_naming_the_right_one() {
        let contents = InferTensorContents {
            fp64_contents: vec![1.0, 2.0],
            ..Default::default()
        };
        let e = decode(
            vec![input("FP32", vec![1, 2], contents)],
            vec![],
            &spec(DataType::Fp32),
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("contents.fp32_contents"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_elements_name_where_to_send_them() {
        let e = decode(
            vec![input("FP32", vec![1, 2], Default::default())],
            vec![],
            &spec(DataType::Fp32),
        )
        .unwrap_err();
        assert!(e.message.contains("has no elements"), "{}", e.message);
    }

    #[test]
    fn raw_contents_must_match_the_inputs() {
        let e = request_inputs(
            vec![input("FP32", vec![1, 2], Default::default())],
            vec![vec![0; 8], vec![0; 8]],
        )
        .unwrap_err();
        assert!(
            e.message.contains("1 inputs but 2 raw_input_contents"),
            "{}",
            e.message
        );
        let typed = InferTensorContents {
            fp32_contents: vec![1.0, 2.0],
            ..Default::default()
        };
        let e =
            request_inputs(vec![input("FP32", vec![1, 2], typed)], vec![vec![0; 8]]).unwrap_err();
        assert!(e.message.contains("one way"), "{}", e.message);
    }

    #[test]
    fn raw_contents_of_the_wrong_size_are_refused() {
        let e = decode(
            vec![input("FP32", vec![1, 2], Default::default())],
            vec![vec![0; 7]],
            &spec(DataType::Fp32),
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn typed_answers_carry_their_contents() {
        let tensor = Tensor::new(vec![2], TensorData::Int64(vec![3, 4])).unwrap();
        let (output, bytes) = output_tensor("label", tensor, false);
        assert_eq!(bytes, None);
        assert_eq!(output.shape, vec![2]);
        assert_eq!(output.contents.unwrap().int64_contents, vec![3, 4]);
    }
}
