//! `wasi:http/incoming-handler`: each request is read whole, answered by `skiff-host`'s
//! protocol code (the answers of `skiff serve`), and written back.

use crate::exports::wasi::http::incoming_handler::Guest;
use crate::wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::wasi::io::streams::StreamError;
use crate::{Engine, loaded};
use skiff_host::protocol::{ApiError, HEADER_LENGTH, MAX_BODY_BYTES, MAX_ELEMENTS};
use skiff_host::{Reply, Request};

/// Most bytes one `blocking-write-and-flush` takes.
const WRITE_CHUNK: usize = 4096;

impl Guest for Engine {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        respond(out, answer(&request));
    }
}

fn answer(request: &IncomingRequest) -> Reply {
    let method = match request.method() {
        Method::Get => "GET".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Other(other) => other,
    };
    let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let header_length = request
        .headers()
        .get(HEADER_LENGTH)
        .into_iter()
        .next()
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let content_type = request
        .headers()
        .get("content-type")
        .into_iter()
        .next()
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let body = match read_body(request) {
        Ok(body) => body,
        Err(e) => return e.into(),
    };
    let repo = match loaded() {
        Ok(loaded) => &loaded.repo,
        Err(e) => {
            return ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, e.clone()).into();
        }
    };
    skiff_host::answer(
        repo,
        Request {
            method: &method,
            path: &path,
            header_length: header_length.as_deref(),
            content_type: content_type.as_deref(),
            body: &body,
        },
        MAX_ELEMENTS,
    )
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, ApiError> {
    let unreadable =
        |why: &str| ApiError::bad_request(format!("cannot read the request body: {why}"));
    let body = request
        .consume()
        .map_err(|()| unreadable("it was taken already"))?;
    let stream = body
        .stream()
        .map_err(|()| unreadable("it was taken already"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(unreadable(&e.to_debug_string()));
            }
        }
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
    }
    Ok(bytes)
}

/// Writes `reply`; a client that has gone away is no one's to tell.
fn respond(out: ResponseOutparam, reply: Reply) {
    let mut headers = vec![
        (
            "content-type".to_string(),
            reply.content_type().as_bytes().to_vec(),
        ),
        (
            "content-length".to_string(),
            reply.body.len().to_string().into_bytes(),
        ),
    ];
    if let Some(length) = reply.header_length {
        headers.push((HEADER_LENGTH.to_string(), length.to_string().into_bytes()));
    }
    let headers = Fields::from_list(&headers).expect("the headers are valid");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(reply.status.as_u16())
        .expect("the status is valid");
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let Ok(stream) = body.write() else {
        return;
    };
    for chunk in reply.body.chunks(WRITE_CHUNK) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}
