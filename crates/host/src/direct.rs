//! The protocol's endpoints answered one request at a time, with no server around them: for
//! hosts that hand each request over, such as a model component under `wasi:http`. The answers
//! are those of the server's routes.

use crate::Repository;
use crate::protocol::{self, ApiError, Inference};
use http::StatusCode;
use serde_json::{Value, json};

/// One HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, with or without a query.
    pub path: &'a str,
    /// The [`protocol::HEADER_LENGTH`] header, when the request has one.
    pub header_length: Option<&'a str>,
    /// The `Content-Type` header, when the request has one.
    pub content_type: Option<&'a str>,
    /// The whole body.
    pub body: &'a [u8],
}

/// The answer to a [`Request`].
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// For the [`protocol::HEADER_LENGTH`] header: the JSON header's length when binary data
    /// follows it.
    pub header_length: Option<usize>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body's media type.
    pub fn content_type(&self) -> &'static str {
        match self.header_length {
            Some(_) => "application/octet-stream",
            None => "application/json",
        }
    }

    fn json(status: StatusCode, value: &Value) -> Reply {
        Reply {
            status,
            header_length: None,
            body: serde_json::to_vec(value).expect("JSON serialises"),
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(e.status(), &e.body())
    }
}

/// Answers `request` for the models of `repo`, running inference on this thread; a request
/// with more than `max_elements` tensor elements gets 413.
pub fn answer(repo: &Repository, request: Request<'_>, max_elements: usize) -> Reply {
    route(repo, request, max_elements).unwrap_or_else(Reply::from)
}

fn route(repo: &Repository, request: Request<'_>, max_elements: usize) -> Result<Reply, ApiError> {
    let path = request.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let Some((&"v2", segments)) = segments.split_first() else {
        return Err(protocol::no_such_endpoint());
    };
    let get = |value: Value| {
        method(request, "GET")?;
        Ok(Reply::json(StatusCode::OK, &value))
    };
    match segments {
        [] => get(protocol::server_metadata()),
        ["health", "live"] => get(json!({ "live": true })),
        ["health", "ready"] => {
            method(request, "GET")?;
            let ready = !repo.is_empty();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Ok(Reply::json(status, &json!({ "ready": ready })))
        }
        ["models", name, rest @ ..] => {
            let (version, rest) = match rest {
                ["versions", version, rest @ ..] => (Some(*version), rest),
                rest => (None, rest),
            };
            let (number, model) = repo.get(name, version)?;
            match rest {
                [] => get(protocol::model_metadata(name, &repo.versions(name)?, model)),
                ["ready"] => get(json!({ "name": name, "ready": true })),
                ["infer"] => {
                    method(request, "POST")?;
                    let json_header_size =
                        protocol::check_content_type(request.content_type, request.header_length)?;
                    let mut inference = Inference::decode(
                        name,
                        model,
                        request.body,
                        request.header_length.or(json_header_size),
                        max_elements,
                    )?;
                    let results = model.run(std::mem::take(&mut inference.tensors))?;
                    let answer = inference.answer(name, number, model, results);
                    Ok(Reply {
                        status: StatusCode::OK,
                        header_length: answer.header_length,
                        body: answer.body,
                    })
                }
                _ => Err(protocol::no_such_endpoint()),
            }
        }
        _ => Err(protocol::no_such_endpoint()),
    }
}

fn method(request: Request<'_>, expected: &str) -> Result<(), ApiError> {
    if request.method.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    let path = request.path.split('?').next().unwrap_or_default();
    Err(protocol::method_not_allowed(request.method, path))
}
