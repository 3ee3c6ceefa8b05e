//! Push and pull against a registry that fails: a proxy in front of a real `docker-registry`
//! answers some requests with 5xx or 429, cuts blobs short, or hands out bearer tokens that
//! stop working after a few requests.

use crate::serve::assert_serves_iris;
use crate::*;
use serde_json::Value;
use skiff_testing::Registry;
use skiff_testing::proxy::{Fail, FaultProxy, LOST_ANSWER, Plan};
use std::time::Duration;

fn fail(
    method: Option<&'static str>,
    path_contains: &'static str,
    status: u16,
    times: usize,
) -> Fail {
    Fail {
        method,
        path_contains,
        status,
        times,
        ..Fail::default()
    }
}

/// A plan of failures only (no bearer tokens).
fn failing(fails: Vec<Fail>) -> Plan {
    Plan {
        fails,
        token_uses: None,
    }
}

/// How many of each failure are left.
fn left(proxy: &FaultProxy) -> Vec<usize> {
    proxy.plan().fails.iter().map(|f| f.times).collect()
}

fn pull(remote: &str, dir: &std::path::Path, name: &str) -> std::process::Output {
    run(&[
        "pull",
        remote,
        "-o",
        &format!("oci:{}:v1", dir.join(name).display()),
        "--insecure",
    ])
}

#[test]
fn server_errors_and_rate_limits_are_retried_and_client_errors_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let proxy = FaultProxy::start(
        &registry.host(),
        failing(vec![
            fail(Some("PUT"), "/blobs/uploads/", 503, 2),
            fail(Some("HEAD"), "/blobs/sha256:", 429, 1),
        ]),
    );
    let remote = format!("docker://{}/team/iris:v1", proxy.host());
    let pushed = pack_json(&model, &remote, &[]);
    assert_eq!(
        left(&proxy),
        [0, 0],
        "every failure was met, and retried past"
    );

    proxy.set_plan(failing(vec![
        fail(Some("GET"), "/blobs/sha256:", 503, 2),
        fail(None, "/manifests/", 429, 1),
    ]));
    ok(pull(&remote, dir.path(), "pulled"));
    assert_eq!(left(&proxy), [0, 0]);
    assert_serves_iris(&format!("oci:{}:v1", dir.path().join("pulled").display()));

    // A client error is final: one try, then a one-line error.
    proxy.set_plan(failing(vec![fail(Some("GET"), "/manifests/", 400, 5)]));
    fails_with(pull(&remote, dir.path(), "bad-request"), &["UNSUPPORTED"]);
    assert_eq!(left(&proxy), [4], "a 400 was retried");

    // A registry that keeps failing: a bounded number of tries, then a one-line error.
    proxy.set_plan(failing(vec![fail(None, "/manifests/", 503, 100)]));
    fails_with(
        pull(&remote, dir.path(), "down"),
        &["UNAVAILABLE", "try again later"],
    );
    assert_eq!(left(&proxy), [97], "three tries, no more");

    // Inspecting reads the manifest and config only.
    proxy.set_plan(Plan::default());
    let inspected: Value =
        serde_json::from_str(&ok(run(&["inspect", &remote, "--insecure", "--json"]))).unwrap();
    assert_eq!(inspected["digest"], pushed["digest"]);

    // A blob cut short is refused, naming it, and nothing is left behind.
    proxy.set_plan(failing(vec![fail(Some("GET"), "/blobs/sha256:", 0, 100)]));
    let stderr = fails_with(pull(&remote, dir.path(), "cut"), &["(blob sha256:"]);
    assert!(!dir.path().join("cut").exists(), "{stderr}");
}

#[test]
fn bearer_tokens_that_stop_working_midway_are_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    // Each token serves four requests: a push takes a dozen.
    let proxy = FaultProxy::start(
        &registry.host(),
        Plan {
            fails: Vec::new(),
            token_uses: Some(4),
        },
    );
    let remote = format!("docker://{}/team/iris:v1", proxy.host());
    ok(run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        &remote,
        "--insecure",
    ]));
    let after_push = proxy.stats();
    assert!(after_push.tokens_issued >= 3, "{after_push:?}");
    assert!(after_push.unauthorized >= 2, "{after_push:?}");

    ok(pull(&remote, dir.path(), "pulled"));
    assert!(proxy.stats().tokens_issued > after_push.tokens_issued);
    assert_serves_iris(&format!("oci:{}:v1", dir.path().join("pulled").display()));
}

#[test]
fn retry_after_is_waited_for_and_a_long_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let proxy = FaultProxy::start(
        &registry.host(),
        failing(vec![Fail {
            retry_after: Some("2"),
            ..fail(Some("HEAD"), "/blobs/sha256:", 429, 1)
        }]),
    );
    let remote = format!("docker://{}/team/iris:v1", proxy.host());
    pack_json(&model, &remote, &[]);
    let waits = proxy.stats().waits;
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(waits[0] >= Duration::from_millis(1900), "{waits:?}");

    // An HTTP date works as well as seconds.
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    proxy.set_plan(failing(vec![Fail {
        retry_after: Some(soon.leak()),
        ..fail(Some("GET"), "/manifests/", 503, 1)
    }]));
    ok(pull(&remote, dir.path(), "pulled"));
    let waits = proxy.stats().waits;
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(1000), "{waits:?}");

    // An hour is longer than skiff waits: one try, and the error says so.
    proxy.set_plan(failing(vec![Fail {
        retry_after: Some("3600"),
        ..fail(Some("GET"), "/manifests/", 503, 5)
    }]));
    fails_with(
        pull(&remote, dir.path(), "later"),
        &["asks to wait 3600 s", "Retry-After", "try again later"],
    );
    assert_eq!(left(&proxy), [4]);
}

#[test]
fn uploads_go_on_from_where_the_registry_is_when_a_chunk_fails() {
    const CHUNK: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    // Blobs go up in 1 MiB chunks, the server layer in several: the third chunk fails.
    let proxy = FaultProxy::start(
        &registry.host(),
        failing(vec![Fail {
            skip: 2,
            ..fail(Some("PATCH"), "/blobs/uploads/", 503, 2)
        }]),
    );
    let remote = format!("docker://{}/team/iris:v1", proxy.host());
    // The image alone: what the proxy counts is the image's bytes.
    let pushed = pack_json(&model, &remote, &["--no-sbom"]);
    assert_eq!(left(&proxy), [0]);
    let uploaded = pushed["bytes_uploaded"].as_u64().unwrap();
    let sent = proxy.stats().patch_bytes;
    // Two failed tries of one chunk cost two chunks; starting over would cost the chunks before.
    assert!(
        sent <= uploaded + 2 * CHUNK,
        "sent {sent} bytes for {uploaded}"
    );
    assert!(uploaded > 3 * CHUNK, "{pushed}");

    // An answer lost after the registry took the chunk: the registry says how far it got (or,
    // if it gave the upload up, the upload starts over); either way the image arrives whole.
    let registry = Registry::start(None);
    let proxy = FaultProxy::start(
        &registry.host(),
        failing(vec![Fail {
            skip: 4,
            ..fail(Some("PATCH"), "/blobs/uploads/", LOST_ANSWER, 1)
        }]),
    );
    let remote = format!("docker://{}/team/iris:v1", proxy.host());
    pack_json(&model, &remote, &[]);
    assert_eq!(left(&proxy), [0]);
    ok(pull(&remote, dir.path(), "pulled"));
    assert_serves_iris(&format!("oci:{}:v1", dir.path().join("pulled").display()));
}
