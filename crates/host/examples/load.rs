//! The serving benchmark's load generator for REST beside gRPC: one Rust client (hyper, HTTP/1.1
//! connections for REST and HTTP/2 connections for gRPC), so the two protocols are loaded
//! alike: each request's body is built once (the JSON body, the length-prefixed protobuf
//! message) and each answer read whole but not parsed, so the client spends the same on both
//! and the server's work is what differs. CONNECTIONS connections each send one request at a
//! time, as wrk does; requests answered during WARMUP seconds are not counted. A gRPC answer
//! counts as a success only with `grpc-status: 0` in its trailers. Prints one line:
//! `BENCH {"requests", "errors", "rps", "p50_us", "p99_us"}`.
//!
//! ```text
//! cargo build --release --example load -p skiff-host
//! load rest|grpc|grpc-typed HOST:PORT MODEL BODY.json CONNECTIONS SECONDS [WARMUP]
//! ```
//!
//! BODY.json is a REST request with one FP32 input; `grpc` sends its rows as
//! `raw_input_contents` (tritonclient's way), `grpc-typed` as `fp32_contents` (KServe's).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use skiff_host::grpc_proto::{InferTensorContents, ModelInferRequest, model_infer_request};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Rest,
    Grpc,
    GrpcTyped,
}

/// What one connection measured: latencies of counted requests, in µs, and failures.
#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [protocol, addr, model, body, connections, seconds, rest @ ..] = &args[..] else {
        return Err("usage: load rest|grpc|grpc-typed HOST:PORT MODEL BODY.json CONNECTIONS SECONDS [WARMUP]".into());
    };
    let protocol = match protocol.as_str() {
        "rest" => Protocol::Rest,
        "grpc" => Protocol::Grpc,
        "grpc-typed" => Protocol::GrpcTyped,
        other => return Err(format!("protocol {other:?} is not rest, grpc or grpc-typed").into()),
    };
    let connections: usize = connections.parse()?;
    let measure = Duration::from_secs_f64(seconds.parse()?);
    let warmup = Duration::from_secs_f64(rest.first().map_or(Ok(1.0), |w| w.parse())?);
    let body = std::fs::read(body)?;
    // gRPC's framing of one message: uncompressed, its length (big-endian), the message.
    let message = grpc_request(model, &body, protocol == Protocol::Grpc)?.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend((message.len() as u32).to_be_bytes());
    frame.extend(message);
    let frame = Bytes::from(frame);
    let threads = std::env::var("THREADS").map_or(Ok(2), |t| t.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let tallies = runtime.block_on(async {
        let start = Instant::now() + Duration::from_millis(200);
        let counted = start + warmup;
        let end = counted + measure;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (addr, model, body, frame) =
                (addr.clone(), model.clone(), body.clone(), frame.clone());
            tasks.push(tokio::spawn(async move {
                let window = (counted, end);
                match protocol {
                    Protocol::Rest => rest_connection(&addr, &model, body.into(), window).await,
                    _ => grpc_connection(&addr, frame, window).await,
                }
            }));
        }
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await?.map_err(|e| e.to_string())?);
        }
        Ok::<_, Box<dyn std::error::Error>>(tallies)
    })?;
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let mut latencies: Vec<u32> = tallies.into_iter().flat_map(|t| t.latencies).collect();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "BENCH {}",
        serde_json::json!({
            "requests": latencies.len(),
            "errors": errors,
            "rps": latencies.len() as f64 / measure.as_secs_f64(),
            "p50_us": quantile(0.50),
            "p99_us": quantile(0.99),
        })
    );
    Ok(())
}

/// The REST body's one input as a gRPC request.
fn grpc_request(
    model: &str,
    body: &[u8],
    raw: bool,
) -> Result<ModelInferRequest, Box<dyn std::error::Error>> {
    let body: serde_json::Value = serde_json::from_slice(body)?;
    let input = &body["inputs"][0];
    let shape: Vec<i64> = serde_json::from_value(input["shape"].clone())?;
    let data: Vec<f32> = serde_json::from_value(input["data"].clone())?;
    let mut tensor = model_infer_request::InferInputTensor {
        name: input["name"].as_str().unwrap_or("X").into(),
        datatype: "FP32".into(),
        shape,
        ..Default::default()
    };
    let mut request = ModelInferRequest {
        model_name: model.into(),
        ..Default::default()
    };
    if raw {
        request
            .raw_input_contents
            .push(data.iter().flat_map(|x| x.to_le_bytes()).collect());
    } else {
        tensor.contents = Some(InferTensorContents {
            fp32_contents: data,
            ..Default::default()
        });
    }
    request.inputs.push(tensor);
    Ok(request)
}

async fn rest_connection(
    addr: &str,
    model: &str,
    body: Bytes,
    (counted, end): (Instant, Instant),
) -> Result<Tally, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    // Origin form, as wrk and browsers send it: some servers refuse an absolute URI.
    let uri = format!("/v2/models/{model}/infer");
    let mut tally = Tally::default();
    loop {
        let sent = Instant::now();
        if sent >= end {
            return Ok(tally);
        }
        sender.ready().await?;
        let request = http::Request::post(&uri)
            .header(http::header::HOST, addr)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))?;
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        tally.record(sent, counted, ok);
    }
}

async fn grpc_connection(
    addr: &str,
    frame: Bytes,
    (counted, end): (Instant, Instant),
) -> Result<Tally, Box<dyn std::error::Error + Send + Sync>> {
    // One HTTP/2 connection per client connection, as REST has one HTTP/1.1 connection.
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let uri = format!("http://{addr}/inference.GRPCInferenceService/ModelInfer");
    let mut tally = Tally::default();
    loop {
        let sent = Instant::now();
        if sent >= end {
            return Ok(tally);
        }
        sender.ready().await?;
        let request = http::Request::post(&uri)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Full::new(frame.clone()))?;
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        let answer = response.into_body().collect().await?;
        let status = answer.trailers().and_then(|t| t.get("grpc-status"));
        tally.record(sent, counted, ok && status.is_some_and(|s| s == "0"));
    }
}

impl Tally {
    fn record(&mut self, sent: Instant, counted: Instant, ok: bool) {
        if sent < counted {
            return;
        }
        if ok {
            self.latencies
                .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            self.errors += 1;
        }
    }
}
