//! A registry proxy that breaks things on purpose: it sits on loopback in front of a real
//! `docker-registry`, forwards every request, and on a plan answers some with 5xx or 429,
//! cuts answers short or drops them, or demands bearer tokens that stop working after a few
//! uses.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One kind of damage: requests whose method and path match get `status` instead of an
/// answer, `times` times, after `skip` of them went through unharmed.
#[derive(Debug, Clone, Default)]
pub struct Fail {
    /// `GET`, `HEAD`, `PUT`, `POST`, `PATCH`; `None` for any.
    pub method: Option<&'static str>,
    /// A part of the path, e.g. `/blobs/` or `/manifests/`.
    pub path_contains: &'static str,
    /// The status to answer. Two are not statuses: [`CUT_SHORT`] and [`LOST_ANSWER`].
    pub status: u16,
    /// How many matching requests it applies to; counts down.
    pub times: usize,
    /// How many matching requests go through before it applies; counts down.
    pub skip: usize,
    /// The `Retry-After` sent with the status; `None` sends none.
    pub retry_after: Option<&'static str>,
}

/// [`Fail::status`]: the request reaches the registry, and the client gets the first half of
/// its answer before the connection closes.
pub const CUT_SHORT: u16 = 0;
/// [`Fail::status`]: the request reaches the registry (and takes effect), and the connection
/// closes before any answer.
pub const LOST_ANSWER: u16 = 1;

/// What the proxy does, changeable while it runs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Failures, first match wins.
    pub fails: Vec<Fail>,
    /// With `Some(n)`, `/v2/` requests need a bearer token from the proxy's `/token`, and a
    /// token serves `n` requests before it is refused with 401, as an expired one is.
    pub token_uses: Option<usize>,
}

/// What the proxy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered with an injected status or cut short.
    pub injected: usize,
    /// Tokens handed out.
    pub tokens_issued: usize,
    /// Requests refused for a missing or used-up token.
    pub unauthorized: usize,
    /// Bytes of `PATCH` bodies received: what chunked uploads sent, failed chunks included.
    pub patch_bytes: u64,
    /// For each injected failure, how long the client waited before its next request.
    pub waits: Vec<Duration>,
}

#[derive(Default)]
struct State {
    plan: Plan,
    stats: Stats,
    /// Uses left per token.
    tokens: Vec<(String, usize)>,
    /// When the last failure was injected, until the next request comes.
    injected_at: Option<Instant>,
}

/// The proxy; it stops accepting when dropped.
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, plan: Plan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            plan,
            ..State::default()
        }));
        let (upstream, shared) = (upstream.to_string(), state.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if Arc::strong_count(&shared) == 1 {
                    return; // the FaultProxy is gone
                }
                let (upstream, state) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, &state);
                });
            }
        });
        FaultProxy { port, state }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the plan.
    pub fn set_plan(&self, plan: Plan) {
        self.state.lock().unwrap().plan = plan;
    }

    /// The plan as it stands (failures count down as they happen).
    pub fn plan(&self) -> Plan {
        self.state.lock().unwrap().plan.clone()
    }

    /// What happened so far.
    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Wakes the accept loop so that it sees it is alone and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Answers requests on one client connection until it closes.
fn serve(conn: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    while let Some(request) = read_request(&mut reader)? {
        {
            let mut s = state.lock().unwrap();
            if let Some(at) = s.injected_at.take() {
                s.stats.waits.push(at.elapsed());
            }
            if request.method == "PATCH" {
                s.stats.patch_bytes += request.body.len() as u64;
            }
        }
        let host = request.header("host").unwrap_or_default().to_string();
        if request.path.starts_with("/token") {
            let token = {
                let mut s = state.lock().unwrap();
                s.stats.tokens_issued += 1;
                let token = format!("token-{}", s.stats.tokens_issued);
                let uses = s.plan.token_uses.unwrap_or(usize::MAX);
                s.tokens.push((token.clone(), uses));
                token
            };
            let body =
                format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#);
            respond(
                &mut out,
                200,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )?;
            continue;
        }
        if !authorized(&request, state) {
            let challenge = format!(r#"Bearer realm="http://{host}/token",service="fault-proxy""#);
            let body =
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"token missing or used up"}]}"#;
            respond(
                &mut out,
                401,
                &[
                    ("WWW-Authenticate", &challenge),
                    ("Content-Type", "application/json"),
                ],
                body,
            )?;
            continue;
        }
        match injected(&request, state) {
            Some((CUT_SHORT, _)) => {
                let (head, body) = forward(&request, upstream)?;
                out.write_all(&head)?;
                out.write_all(&body[..body.len() / 2])?;
                return Ok(()); // cut short: the client sees the connection close
            }
            Some((LOST_ANSWER, _)) => {
                forward(&request, upstream)?;
                return Ok(());
            }
            Some((status, retry_after)) => {
                // The error bodies distribution sends with these statuses.
                let code = match status {
                    429 => "TOOMANYREQUESTS",
                    500.. => "UNAVAILABLE",
                    _ => "UNSUPPORTED",
                };
                let body = format!(r#"{{"errors":[{{"code":"{code}","message":"injected"}}]}}"#);
                let body = body.as_bytes();
                let mut headers = vec![("Content-Type", "application/json")];
                if let Some(after) = retry_after {
                    headers.push(("Retry-After", after));
                }
                respond(&mut out, status, &headers, body)?;
            }
            None => {
                let (head, body) = forward(&request, upstream)?;
                out.write_all(&head)?;
                out.write_all(&body)?;
            }
        }
    }
    Ok(())
}

fn authorized(request: &Request, state: &Mutex<State>) -> bool {
    let mut s = state.lock().unwrap();
    if s.plan.token_uses.is_none() || !request.path.starts_with("/v2/") {
        return true;
    }
    let presented = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let ok = presented
        .and_then(|p| s.tokens.iter_mut().find(|(t, _)| *t == p))
        .is_some_and(|(_, uses)| {
            let fresh = *uses > 0;
            *uses = uses.saturating_sub(1);
            fresh
        });
    if !ok {
        s.stats.unauthorized += 1;
    }
    ok
}

/// The status (and `Retry-After`) to inject for `request`, if a failure matches it.
fn injected(request: &Request, state: &Mutex<State>) -> Option<(u16, Option<&'static str>)> {
    let mut s = state.lock().unwrap();
    let fail = s.plan.fails.iter_mut().find(|f| {
        f.times > 0
            && f.method.is_none_or(|m| m == request.method)
            && request.path.contains(f.path_contains)
    })?;
    if fail.skip > 0 {
        fail.skip -= 1;
        return None;
    }
    fail.times -= 1;
    let injected = (fail.status, fail.retry_after);
    s.stats.injected += 1;
    s.injected_at = Some(Instant::now());
    Some(injected)
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, path) = (method.to_string(), path.to_string());
    let headers = read_headers(reader)?;
    let request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let body = read_body(reader, &request.headers, false)?;
    Ok(Some(Request { body, ..request }))
}

fn read_headers(reader: &mut impl BufRead) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Err(std::io::Error::other("more than 200 header lines"))
}

/// A message body framed by Content-Length or chunked encoding; with `to_eof`, an unframed
/// body runs to the end of the stream.
fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
    to_eof: bool,
) -> std::io::Result<Vec<u8>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(std::io::Error::other)?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if to_eof {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Sends `request` upstream on a fresh connection; returns the response head (re-framed with
/// Content-Length) and body.
fn forward(request: &Request, upstream: &str) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut up = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (k, v) in &request.headers {
        let skip = [
            "connection",
            "authorization",
            "transfer-encoding",
            "content-length",
        ];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    up.write_all(head.as_bytes())?;
    up.write_all(&request.body)?;
    let mut reader = BufReader::new(up);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let headers = read_headers(&mut reader)?;
    let body = if request.method == "HEAD" {
        Vec::new()
    } else {
        read_body(&mut reader, &headers, true)?
    };
    let mut out = status.trim_end().to_string() + "\r\n";
    for (k, v) in &headers {
        let skip = ["connection", "transfer-encoding"];
        let length = k.eq_ignore_ascii_case("content-length");
        if skip.iter().any(|s| k.eq_ignore_ascii_case(s)) || (length && request.method != "HEAD") {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if request.method != "HEAD" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    Ok((out.into_bytes(), body))
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} Injected\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.write_all(head.as_bytes())?;
    out.write_all(body)
}
