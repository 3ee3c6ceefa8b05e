//! The box's limit for this HTTP stack: an axum server with the same crate versions as
//! `skiff serve` whose one route parses the JSON body and answers a fixed Open Inference
//! Protocol response. `benches/serve/run.sh` loads it beside skiff and MLServer.
//!
//! ```text
//! cargo build --release --example hello -p skiff-host
//! target/release/examples/hello 127.0.0.1:8090
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// A fixed answer of the size a real iris classification gets.
const ANSWER: &str = r#"{"model_name":"iris","model_version":"1","outputs":[{"name":"label","shape":[1],"datatype":"BYTES","data":["setosa"]}]}"#;

async fn infer(body: Bytes) -> Response {
    // Parse the body as a real server must, so the benchmark pays for JSON parsing too.
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) => {
            std::hint::black_box(value);
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                ANSWER,
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            serde_json::json!({ "error": e.to_string() }).to_string(),
        )
            .into_response(),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string());
    let app = Router::new().route("/v2/models/{name}/infer", post(infer));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("hello listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
