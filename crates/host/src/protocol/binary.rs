//! Triton's binary tensor data extension: a JSON header, then raw little-endian elements
//! (BYTES as a 4-byte length and the bytes, per element).

use super::tensor::{Elements, Wire};
use super::{ApiError, HEADER_LENGTH};
use http::StatusCode;

/// Checks an inference request's `Content-Type` and returns the JSON header's length when the
/// type carries it (`application/vnd.sagemaker-triton.binary+json;json-header-size=N`, the
/// binary tensor format under SageMaker's name).
///
/// JSON (`application/json`, any `+json` type), Triton's binary tensor format
/// (`application/octet-stream`, or any type with [`HEADER_LENGTH`]) and no type at all are
/// served. So is `application/x-www-form-urlencoded`, which `curl -d` sends: Triton's and
/// KServe's own examples post JSON that way. Anything else gets 415.
pub fn check_content_type<'a>(
    content_type: Option<&'a str>,
    header_length: Option<&str>,
) -> Result<Option<&'a str>, ApiError> {
    let Some(content_type) = content_type.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json_header_size = parts.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("json-header-size")).then(|| value.trim())
    });
    let served = essence == "application/json"
        || essence.starts_with("application/") && essence.ends_with("+json")
        || essence == "application/octet-stream"
        || essence == "application/x-www-form-urlencoded"
        || header_length.is_some();
    if !served {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {content_type:?} is not served: send the request as application/json, or as binary tensors with the {HEADER_LENGTH} header"
            ),
        ));
    }
    Ok(json_header_size)
}

/// Splits a request body into its JSON header and the binary data after it.
pub fn split_body<'b>(
    body: &'b [u8],
    header_length: Option<&str>,
) -> Result<(&'b [u8], &'b [u8]), ApiError> {
    let Some(length) = header_length else {
        return Ok((body, &[]));
    };
    let length: usize = length.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("{HEADER_LENGTH} {length:?} is not a byte count"))
    })?;
    if length > body.len() {
        return Err(ApiError::bad_request(format!(
            "{HEADER_LENGTH} is {length} but the body has only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(length))
}

pub(super) fn decode_binary(
    name: &str,
    wire: Wire,
    bytes: &[u8],
    expected: usize,
) -> Result<Elements, ApiError> {
    let Some(width) = wire.width() else {
        return decode_strings(name, bytes).map(Elements::Str);
    };
    if bytes.len() != expected.saturating_mul(width) {
        return Err(ApiError::bad_request(format!(
            "input {name:?}: {} bytes of binary data do not hold {expected} elements of {width} bytes",
            bytes.len()
        )));
    }
    let chunks = bytes.chunks_exact(width);
    fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
        c.try_into().expect("chunks_exact gives N bytes")
    }
    Ok(match wire {
        Wire::Bool => Elements::Bool(chunks.map(|c| c[0] != 0).collect()),
        Wire::U8 => Elements::Int(chunks.map(|c| i128::from(c[0])).collect()),
        Wire::I8 => Elements::Int(chunks.map(|c| i128::from(c[0] as i8)).collect()),
        Wire::U16 => Elements::Int(
            chunks
                .map(|c| i128::from(u16::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::I16 => Elements::Int(
            chunks
                .map(|c| i128::from(i16::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::U32 => Elements::Int(
            chunks
                .map(|c| i128::from(u32::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::I32 => Elements::Int(
            chunks
                .map(|c| i128::from(i32::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::U64 => Elements::Int(
            chunks
                .map(|c| i128::from(u64::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::I64 => Elements::Int(
            chunks
                .map(|c| i128::from(i64::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::F32 => Elements::Float(
            chunks
                .map(|c| f64::from(f32::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::F64 => Elements::Float(chunks.map(|c| f64::from_le_bytes(arr(c))).collect()),
        Wire::Bytes => unreachable!("BYTES has no fixed width"),
    })
}

/// BYTES elements in binary data: each a 4-byte little-endian length, then that many bytes.
fn decode_strings(name: &str, mut bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let truncated =
        || ApiError::bad_request(format!("input {name:?}: BYTES binary data is truncated"));
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(truncated());
        }
        let (s, rest) = rest.split_at(len);
        out.push(String::from_utf8(s.to_vec()).map_err(|_| {
            ApiError::bad_request(format!("input {name:?}: BYTES element is not UTF-8"))
        })?);
        bytes = rest;
    }
    Ok(out)
}
