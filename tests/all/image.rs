//! `skiff pack` and `skiff push`: the image goes to a real registry, comes back through skopeo
//! (which verifies every digest), is unpacked by umoci and runs under runc.

use crate::serve::{Server, assert_infers_iris, assert_serves_iris};
use crate::*;
use base64::Engine as _;
use serde_json::{Value, json};
use skiff_testing::{Registry, free_port, http_json, run_tool, wait_for_200};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A skopeo policy that accepts unsigned images, so tests do not depend on /etc/containers.
pub fn skopeo(dir: &Path, args: &[&str]) -> std::process::Output {
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let mut all = vec!["--policy", policy.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run_tool("skopeo", "skopeo", &all);
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A container run by runc from an unpacked bundle, deleted on drop.
struct Container {
    id: String,
}

impl Container {
    /// Unpacks `layout:tag` with umoci and starts it with runc, sharing the host's network
    /// (umoci's config gives the container its own namespace) and listening on `port`.
    fn run(layout: &Path, tag: &str, bundle: &Path, port: u16) -> Container {
        Container::run_with(layout, tag, bundle, port, |_| {})
    }

    /// As [`Container::run`], with the runtime config changed by `edit` first (its process's
    /// environment or arguments, mounts).
    fn run_with(
        layout: &Path,
        tag: &str,
        bundle: &Path,
        port: u16,
        edit: impl FnOnce(&mut Value),
    ) -> Container {
        let image = format!("{}:{tag}", layout.display());
        let out = run_tool(
            "umoci",
            "umoci",
            &["unpack", "--image", &image, bundle.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config_path = bundle.join("config.json");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "network");
        config["process"]["terminal"] = Value::Bool(false);
        let env = config["process"]["env"].as_array_mut().unwrap();
        env.retain(|e| !e.as_str().unwrap().starts_with("PORT="));
        env.push(Value::String(format!("PORT={port}")));
        edit(&mut config);
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

        let id = format!("skiff-test-{port}");
        let log = bundle.join("container.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let status = std::process::Command::new("runc")
            .args(["run", "--detach", "--bundle", bundle.to_str().unwrap(), &id])
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run runc ({e}): install it with `apt-get install -y runc`")
            });
        assert!(
            status.success(),
            "runc run failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let container = Container { id };
        wait_for_200(
            &format!("http://127.0.0.1:{port}/v2/health/ready"),
            Duration::from_secs(20),
            || false,
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        container
    }

    /// The user the container's process runs as, as runc reports it.
    fn config_user(bundle: &Path) -> (u64, u64) {
        let config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        let user = &config["process"]["user"];
        (user["uid"].as_u64().unwrap(), user["gid"].as_u64().unwrap())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runc")
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn compressed_size(layout: &Path, tag: &str) -> u64 {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("tag in index.json");
    let digest = entry["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap())
            .unwrap();
    let layers: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    layers + manifest["config"]["size"].as_u64().unwrap() + entry["size"].as_u64().unwrap()
}

#[test]
fn pushed_image_runs_under_runc_and_answers_an_infer() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let remote = format!("docker://{}/models/iris:v1", registry.host());
    let pushed = pack_json(&model, &remote, &[]);
    assert!(pushed["digest"].as_str().unwrap().starts_with("sha256:"));

    // skopeo pulls it back into a fresh layout, checking every digest on the way.
    let pulled = dir.path().join("pulled");
    let dest = format!("oci:{}:v1", pulled.display());
    skopeo(
        dir.path(),
        &["copy", "--src-tls-verify=false", &remote, &dest],
    );
    let size = compressed_size(&pulled, "v1");
    assert!(
        size <= 20_000_000,
        "image is {size} bytes compressed, over 20 MB"
    );

    let inspect = skopeo(dir.path(), &["inspect", "--config", &dest]);
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert!(
        config["config"]["ExposedPorts"]["8080/tcp"].is_object(),
        "{config}"
    );

    let bundle = dir.path().join("bundle");
    let port = free_port();
    let _container = Container::run(&pulled, "v1", &bundle, port);
    assert_eq!(
        Container::config_user(&bundle),
        (65532, 65532),
        "the server must not run as root"
    );
    assert_infers_iris(
        |p, b| http_json("POST", &format!("http://127.0.0.1:{port}{p}"), Some(b)),
        "iris",
    );
}

#[test]
fn local_layout_serves_and_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let layout = dir.path().join("layout");
    let local = format!("oci:{}:v2", layout.display());
    let text = ok(run(&["pack", model.to_str().unwrap(), "-o", &local]));
    assert!(text.contains("sha256:"), "{text}");

    // skiff serves the model straight from the layout, under the name the image records.
    let server = Server::start(&local, &[]);
    assert_infers_iris(|p, b| server.post(p, b), "iris");
    drop(server);

    let registry = Registry::start(None);
    let dest = format!("{}/team/iris:v2", registry.host());
    let first: Value =
        serde_json::from_str(&ok(run(&["push", &local, &dest, "--insecure", "--json"]))).unwrap();
    assert!(
        first["bytes_uploaded"].as_u64().unwrap() > 100_000,
        "{first}"
    );
    let again: Value =
        serde_json::from_str(&ok(run(&["push", &local, &dest, "--insecure", "--json"]))).unwrap();
    assert_eq!(
        again["bytes_uploaded"], 0,
        "a second push re-uploaded blobs: {again}"
    );
    assert_eq!(again["digest"], first["digest"]);

    // And back: pull gives the same manifest.
    let back = dir.path().join("back");
    ok(run(&[
        "pull",
        &format!("docker://{dest}"),
        "-o",
        &format!("oci:{}:v2", back.display()),
        "--insecure",
    ]));
    assert_serves_iris(&format!("oci:{}:v2", back.display()));
}

#[test]
fn push_errors_are_one_line_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    skiff_testing::htpasswd(&htpasswd, "alice", "s3cret");
    let registry = Registry::start(Some(&htpasswd));
    let remote = format!("docker://{}/private/iris:v1", registry.host());

    // No credentials: the registry refuses the push.
    let empty_config = dir.path().join("no-creds");
    std::fs::create_dir(&empty_config).unwrap();
    let out = skiff()
        .args(["pack", model.to_str().unwrap(), "-o", &remote, "--insecure"])
        .env("DOCKER_CONFIG", &empty_config)
        .env("REGISTRY_AUTH_FILE", empty_config.join("auth.json"))
        .env("XDG_RUNTIME_DIR", &empty_config)
        .env("HOME", &empty_config)
        .output()
        .unwrap();
    fails_with(out, &["refused", "401"]);

    // A plain-HTTP registry without --insecure: told what to do.
    let out = skiff()
        .args(["pack", model.to_str().unwrap(), "-o", &remote])
        .env("HOME", &empty_config)
        .output()
        .unwrap();
    fails_with(out, &["--insecure"]);

    // docker's config.json credentials let it through.
    let docker_config = dir.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        docker_config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let out = skiff()
        .args(["pack", model.to_str().unwrap(), "-o", &remote, "--insecure"])
        .env("DOCKER_CONFIG", &docker_config)
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .unwrap();
    let text = ok(out);
    assert!(text.contains("pushed"), "{text}");

    // Nothing was written next to the model by any of this.
    assert_only_files(dir.path(), &["docker", "htpasswd", "iris.onnx", "no-creds"]);
    assert!(std::fs::read_dir(&empty_config).unwrap().next().is_none());
}

#[test]
fn an_image_in_a_registry_is_inspected_and_served_and_a_damaged_blob_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let remote = format!("docker://{}/models/iris:v1", registry.host());
    let packed = pack_json(&model, &remote, &[]);

    // skiff inspect reads what skopeo reads: the config's labels, the manifest's annotations.
    let inspected: Value =
        serde_json::from_str(&ok(run(&["inspect", &remote, "--insecure", "--json"]))).unwrap();
    assert_eq!(inspected["digest"], packed["digest"]);
    assert_eq!(inspected["platforms"], json!(["linux/amd64"]));
    assert_eq!(inspected["layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspected["labels"]["dev.skiff.model.name"], "iris");
    let skopeo_config: Value = serde_json::from_slice(
        &skopeo(dir.path(), &["inspect", "--tls-verify=false", &remote]).stdout,
    )
    .unwrap();
    assert_eq!(inspected["labels"], skopeo_config["Labels"]);
    let raw: Value = serde_json::from_slice(
        &skopeo(
            dir.path(),
            &["inspect", "--raw", "--tls-verify=false", &remote],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(inspected["annotations"], raw["annotations"]);
    let model_layer = raw["layers"][1]["digest"].as_str().unwrap().to_string();

    // skiff serve pulls it, checks it, and serves the model under the name the image records.
    let server = Server::start(&remote, &["--insecure"]);
    assert_infers_iris(|p, b| server.post(p, b), "iris");
    drop(server);

    // A blob the registry serves changed or cut short: refused, naming it; nothing left.
    let blob = registry.blob_file(&model_layer);
    let good = std::fs::read(&blob).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    for (damage, bytes) in [
        ("tampered", flipped),
        ("truncated", good[..good.len() / 2].to_vec()),
    ] {
        std::fs::write(&blob, &bytes).unwrap();
        let out = dir.path().join(damage);
        let stderr = fails_with(
            run(&[
                "pull",
                &remote,
                "-o",
                &format!("oci:{}:v1", out.display()),
                "--insecure",
            ]),
            &[&model_layer],
        );
        assert!(
            !out.exists(),
            "{damage}: pull left {} behind ({stderr})",
            out.display()
        );
        fails_with(
            run(&["serve", &remote, "--insecure", "--addr", "127.0.0.1:0"]),
            &[&model_layer],
        );
    }
}

#[test]
fn a_new_model_version_uploads_only_its_model_and_another_repository_mounts_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = iris_model(dir.path());
    let v2 = dir.path().join("iris-v2.onnx");
    ok(skiff()
        .args(["fit", "logistic-regression", "--set", "C=0.1", "--data"])
        .arg(example("iris/train.csv"))
        .args(["--target", "species", "-o"])
        .arg(&v2)
        .output()
        .unwrap());
    let registry = Registry::start(None);
    let cache = dir.path().join("cache");
    let pack = |model: &Path, dest: &str| -> Value {
        let out = skiff()
            .args(["pack", model.to_str().unwrap(), "--name", "iris", "-o"])
            .arg(format!("docker://{}/{dest}", registry.host()))
            .args(["--insecure", "--json"])
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap();
        serde_json::from_str(&ok(out)).unwrap()
    };
    let first = pack(&v1, "team/iris:v1");
    let first_bytes = first["bytes_uploaded"].as_u64().unwrap();
    assert!(first_bytes > 1_000_000, "{first}");

    // Version 2 of the model: the server layer is there; only the model, config and manifest go.
    let second = pack(&v2, "team/iris:v2");
    let second_bytes = second["bytes_uploaded"].as_u64().unwrap();
    assert_ne!(second["digest"], first["digest"]);
    assert_eq!(second["blobs_skipped"], 1, "{second}");
    assert!(
        second_bytes * 10 < first_bytes,
        "a new model version uploaded {second_bytes} bytes, the first push {first_bytes}"
    );

    // Another repository of the same registry mounts the blobs it knows are there (the server
    // layer, and this version's model and config) instead of uploading them.
    let other = pack(&v2, "other/iris:v1");
    assert_eq!(other["blobs_mounted"], 3, "{other}");
    assert_eq!(other["bytes_uploaded"], 0, "{other}");
    // ... and the image there is whole: skopeo copies it out, checking every blob.
    let copy = dir.path().join("copy");
    skopeo(
        dir.path(),
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/other/iris:v1", registry.host()),
            &format!("oci:{}:v1", copy.display()),
        ],
    );
    assert_serves_iris(&format!("oci:{}:v1", copy.display()));
}

#[test]
fn credential_helpers_supply_the_login_and_their_secrets_stay_out_of_sight() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    skiff_testing::htpasswd(&htpasswd, "alice", "hush-hush-42");
    let registry = Registry::start(Some(&htpasswd));
    let host = registry.host();
    // Helpers speak docker's protocol: `get`, the server on stdin, JSON on stdout.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = |name: &str, script: &str| {
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    };
    helper(
        "vault",
        &format!(
            r#"[ "$1" = get ] || exit 3
read server
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"alice","Secret":"hush-hush-42"}}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi"#
        ),
    );
    helper("broken", "echo 'keychain is locked' >&2; exit 2");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let docker_config = dir.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    let pack = |config: &str, tag: &str| {
        std::fs::write(docker_config.join("config.json"), config).unwrap();
        skiff()
            .args(["pack", model.to_str().unwrap(), "-o"])
            .arg(format!("docker://{host}/private/iris:{tag}"))
            .arg("--insecure")
            .env("PATH", &path)
            .env("DOCKER_CONFIG", &docker_config)
            .env_remove("REGISTRY_AUTH_FILE")
            .output()
            .unwrap()
    };
    for (config, tag) in [
        (format!(r#"{{"credHelpers":{{"{host}":"vault"}}}}"#), "v1"),
        (r#"{"auths":{},"credsStore":"vault"}"#.to_string(), "v2"),
    ] {
        let out = pack(&config, tag);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains("hush-hush-42"),
            "the secret was printed: {all}"
        );
        assert!(ok(out).contains("pushed"));
    }
    // A helper that fails is named, with what it said; a missing one is named too.
    fails_with(
        pack(r#"{"credsStore":"broken"}"#, "v3"),
        &[
            "docker-credential-broken",
            "keychain is locked",
            "docker login",
        ],
    );
    fails_with(
        pack(r#"{"credsStore":"absent"}"#, "v4"),
        &["docker-credential-absent", "install it"],
    );
}

#[test]
fn push_and_pull_draw_progress_bars_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let remote = format!("docker://{}/team/iris:v1", registry.host());
    // `script` runs the command on a pseudo-terminal, as a user's shell would.
    let on_terminal = |command: String| -> String {
        let out = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env(
                "SKIFF_RUNTIME_DIR",
                std::env::var_os("SKIFF_RUNTIME_DIR").unwrap(),
            )
            .output()
            .unwrap_or_else(|e| panic!("cannot run script ({e}): apt-get install -y bsdutils"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    let skiff = env!("CARGO_BIN_EXE_skiff");
    let pushed = on_terminal(format!(
        "{skiff} pack {} -o {remote} --insecure",
        model.display()
    ));
    let inspected: Value =
        serde_json::from_str(&ok(run(&["inspect", &remote, "--insecure", "--json"]))).unwrap();
    let server_layer = inspected["layers"][0]["digest"].as_str().unwrap();
    let short = &server_layer["sha256:".len()..][..12];
    assert!(pushed.contains(short) && pushed.contains("MiB"), "{pushed}");
    let pulled = on_terminal(format!(
        "{skiff} pull {remote} -o oci:{}:v1 --insecure",
        dir.path().join("pulled").display()
    ));
    assert!(pulled.contains(short) && pulled.contains("MiB"), "{pulled}");

    // Not a terminal: only the result line.
    let out = run(&[
        "pull",
        &remote,
        "-o",
        &format!("oci:{}:v1", dir.path().join("again").display()),
        "--insecure",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
    assert_eq!(ok(out).lines().count(), 1);
}

#[test]
fn credentials_from_the_environment_and_a_pull_into_a_plain_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    skiff_testing::htpasswd(&htpasswd, "ci-bot", "from-the-env");
    let registry = Registry::start(Some(&htpasswd));
    let remote = format!("docker://{}/private/iris:v7", registry.host());
    let nothing = dir.path().join("nothing");
    let with_env = |args: &[&str], password: Option<&str>| {
        let mut command = skiff();
        command
            .args(args)
            .env("HOME", &nothing)
            .env("DOCKER_CONFIG", &nothing)
            .env_remove("REGISTRY_AUTH_FILE")
            .env("SKIFF_REGISTRY_USERNAME", "ci-bot");
        match password {
            Some(p) => command.env("SKIFF_REGISTRY_PASSWORD", p),
            None => command.env_remove("SKIFF_REGISTRY_PASSWORD"),
        };
        command.output().unwrap()
    };
    let pack = ["pack", model.to_str().unwrap(), "-o", &remote, "--insecure"];
    fails_with(with_env(&pack, None), &["SKIFF_REGISTRY_PASSWORD", "both"]);
    fails_with(with_env(&pack, Some("wrong")), &["401"]);
    ok(with_env(&pack, Some("from-the-env")));

    let folder = dir.path().join("pulled");
    let out = ok(with_env(
        &[
            "pull",
            &remote,
            "-o",
            folder.to_str().unwrap(),
            "--insecure",
        ],
        Some("from-the-env"),
    ));
    assert!(
        out.contains(&format!("oci:{}:v7", folder.display())),
        "{out}"
    );
    assert_serves_iris(&format!("oci:{}:v7", folder.display()));
}

/// A small base image made by umoci: one file, an environment, a command and a label.
fn base_layout(dir: &Path, arch: &str) -> std::path::PathBuf {
    let layout = dir.join(format!("base-{arch}"));
    let image = format!("{}:1", layout.display());
    let rootfs = dir.join(format!("base-rootfs-{arch}"));
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/base-release"), "test base 1\n").unwrap();
    for args in [
        vec!["init", "--layout", layout.to_str().unwrap()],
        vec!["new", "--image", &image],
        vec!["insert", "--image", &image, rootfs.to_str().unwrap(), "/"],
        vec![
            "config",
            "--image",
            &image,
            "--config.env",
            "BASE_VAR=kept",
            "--config.env",
            "PORT=1",
            "--config.cmd",
            "/bin/sh",
            "--config.label",
            "base.label=yes",
            "--architecture",
            arch,
        ],
    ] {
        let out = run_tool("umoci", "umoci", &args);
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    layout
}

#[test]
fn an_image_built_on_a_base_keeps_its_layers_and_environment_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let base = base_layout(dir.path(), "amd64");
    let out = dir.path().join("out");
    let base_ref = format!("oci:{}:1", base.display());
    ok(run(&[
        "pack",
        model.to_str().unwrap(),
        "--base",
        &base_ref,
        "-o",
        &format!("oci:{}:v1", out.display()),
    ]));
    let image = format!("oci:{}:v1", out.display());
    let config: Value =
        serde_json::from_slice(&skopeo(dir.path(), &["inspect", "--config", &image]).stdout)
            .unwrap();
    let c = &config["config"];
    assert_eq!(c["Env"], json!(["BASE_VAR=kept", "PORT=8080"]), "{c}");
    assert_eq!(
        c["Cmd"],
        json!(["--name", "iris", "/model/model.onnx"]),
        "the base's command would become arguments: {c}"
    );
    assert_eq!(c["Entrypoint"], json!(["/skiff-server"]));
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Labels"]["base.label"], "yes");
    assert_eq!(c["Labels"]["dev.skiff.model.name"], "iris");
    let raw: Value =
        serde_json::from_slice(&skopeo(dir.path(), &["inspect", "--raw", &image]).stdout).unwrap();
    assert_eq!(raw["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.base.name"],
        base_ref
    );
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        3,
        "{config}"
    );

    let bundle = dir.path().join("bundle");
    let port = free_port();
    let _container = Container::run(&out, "v1", &bundle, port);
    assert!(bundle.join("rootfs/etc/base-release").is_file());
    assert_infers_iris(
        |p, b| http_json("POST", &format!("http://127.0.0.1:{port}{p}"), Some(b)),
        "iris",
    );

    // A base in a registry: its layer is mounted into the new repository, not uploaded again.
    let registry = Registry::start(None);
    let remote_base = format!("docker://{}/bases/tiny:1", registry.host());
    skopeo(
        dir.path(),
        &["copy", "--dest-tls-verify=false", &base_ref, &remote_base],
    );
    let pushed: Value = serde_json::from_str(&ok(skiff()
        .args([
            "pack",
            model.to_str().unwrap(),
            "--base",
            &remote_base,
            "-o",
        ])
        .arg(format!("docker://{}/team/iris:v1", registry.host()))
        .args(["--insecure", "--json"])
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(pushed["blobs_mounted"], 1, "{pushed}");

    // A base for another platform is refused.
    let arm = base_layout(dir.path(), "arm64");
    fails_with(
        run(&[
            "pack",
            model.to_str().unwrap(),
            "--base",
            &format!("oci:{}:1", arm.display()),
            "-o",
            &format!("oci:{}:v1", dir.path().join("arm-out").display()),
        ]),
        &["linux/arm64", "linux/amd64"],
    );
    assert!(!dir.path().join("arm-out").exists());
}

#[test]
fn a_multi_platform_image_goes_on_a_multi_platform_base_and_pulls_by_platform() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let both = ["--platform", "linux/amd64,linux/arm64"];
    // skiff's own two-platform image makes a two-platform base.
    let base = dir.path().join("base");
    pack_layout(&model, &base, "1", None, &both);
    let base_index = blob_json(&base, &tagged_digest(&base, "1"));
    let base_server = |arch: &str| {
        let entry = base_index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap();
        blob_json(&base, entry["digest"].as_str().unwrap())["layers"][0]["digest"].clone()
    };

    let registry = Registry::start(None);
    let remote = format!("docker://{}/team/iris:on-base", registry.host());
    let base_ref = format!("oci:{}:1", base.display());
    let mut extra = both.to_vec();
    extra.extend(["--base", &base_ref]);
    let pushed = pack_json(&model, &remote, &extra);

    // Each platform's image starts with the base's layers for that platform.
    let pull = |name: &str, platform: Option<&str>| {
        let out = dir.path().join(name);
        let mut args = vec![
            "pull".to_string(),
            remote.clone(),
            "-o".into(),
            format!("oci:{}:v1", out.display()),
            "--insecure".into(),
        ];
        if let Some(p) = platform {
            args.extend(["--platform".into(), p.into()]);
        }
        ok(skiff().args(&args).output().unwrap());
        out
    };
    for (arch, platform) in [("arm64", "linux/arm64"), ("amd64", "linux/amd64")] {
        let out = pull(arch, Some(platform));
        let manifest = blob_json(&out, &tagged_digest(&out, "v1"));
        assert_eq!(
            manifest["layers"].as_array().unwrap().len(),
            4,
            "{manifest}"
        );
        assert_eq!(manifest["layers"][0]["digest"], base_server(arch), "{arch}");
        let config = blob_json(&out, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch);
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.base.name"],
            base_ref.as_str()
        );
    }
    // `all` keeps the index as pushed, under its digest, and every platform's image.
    let all = pull("all", Some("all"));
    assert_eq!(
        tagged_digest(&all, "v1"),
        pushed["digest"].as_str().unwrap()
    );
    let index = blob_json(&all, &tagged_digest(&all, "v1"));
    let variants: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["platform"]["variant"])
        .collect();
    assert_eq!(variants, [&Value::Null, &json!("v8")]);
    assert_serves_iris(&format!("oci:{}:v1", all.display()));
    // By default, this machine's platform.
    let host = pull("host", None);
    let manifest = blob_json(&host, &tagged_digest(&host, "v1"));
    assert_eq!(manifest["layers"][0]["digest"], base_server("amd64"));

    fails_with(
        run(&[
            "pull",
            &remote,
            "-o",
            &format!("oci:{}:v1", dir.path().join("s390x").display()),
            "--insecure",
            "--platform",
            "linux/s390x",
        ]),
        &[
            "no linux/s390x image",
            "linux/amd64, linux/arm64/v8",
            "--platform",
        ],
    );
    assert!(!dir.path().join("s390x").exists());
}

/// `skiff pack MODEL -o oci:DIR:TAG EXTRA...` with `SOURCE_DATE_EPOCH` as given (unset: `None`).
fn pack_layout(model: &Path, dir: &Path, tag: &str, epoch: Option<&str>, extra: &[&str]) {
    let mut cmd = skiff();
    cmd.args(["pack", model.to_str().unwrap(), "-o"])
        .arg(format!("oci:{}:{tag}", dir.display()))
        .args(extra)
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(epoch) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    ok(cmd.output().unwrap());
}

/// Reads the blob `digest` of a layout as JSON.
pub fn blob_json(layout: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The digest that `tag` names in a layout's index.json.
pub fn tagged_digest(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("tag in index.json")["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every digest an image is made of, by role: index (when there is one), then per manifest its
/// digest, its config and its layers.
fn image_digests(layout: &Path, tag: &str) -> Vec<(String, String)> {
    let top = tagged_digest(layout, tag);
    let json = blob_json(layout, &top);
    let mut digests = Vec::new();
    let manifests = match json["manifests"].as_array() {
        Some(entries) => {
            digests.push(("index".to_string(), top));
            entries
                .iter()
                .map(|m| m["digest"].as_str().unwrap().to_string())
                .collect()
        }
        None => vec![top],
    };
    for digest in manifests {
        let manifest = blob_json(layout, &digest);
        digests.push(("manifest".into(), digest));
        let digest_of = |desc: &Value| desc["digest"].as_str().unwrap().to_string();
        digests.push(("config".into(), digest_of(&manifest["config"])));
        for layer in manifest["layers"].as_array().unwrap() {
            digests.push(("layer".into(), digest_of(layer)));
        }
    }
    digests
}

#[test]
fn packing_twice_gives_the_same_digests_and_source_date_epoch_sets_created() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let both = ["--platform", "linux/amd64,linux/arm64"];
    let mut layouts = Vec::new();
    for run in ["first", "second"] {
        // different directories, different times: the model is copied, packing starts later
        let work = dir.path().join(run);
        std::fs::create_dir(&work).unwrap();
        let copy = work.join("iris.onnx");
        std::fs::copy(&model, &copy).unwrap();
        let layout = work.join("image");
        pack_layout(&copy, &layout, "one", None, &[]);
        pack_layout(&copy, &layout, "both", None, &both);
        layouts.push(layout);
        std::thread::sleep(Duration::from_millis(1500));
    }
    for tag in ["one", "both"] {
        let first = image_digests(&layouts[0], tag);
        assert_eq!(first, image_digests(&layouts[1], tag), "{tag}");
        let kinds: Vec<&str> = first.iter().map(|(kind, _)| kind.as_str()).collect();
        let expected: &[&str] = match tag {
            "one" => &["manifest", "config", "layer", "layer"],
            _ => &[
                "index", "manifest", "config", "layer", "layer", "manifest", "config", "layer",
                "layer",
            ],
        };
        assert_eq!(kinds, expected);
    }
    let config = |layout: &Path, tag: &str| {
        let manifest = blob_json(layout, &tagged_digest(layout, tag));
        blob_json(layout, manifest["config"]["digest"].as_str().unwrap())
    };
    assert_eq!(
        config(&layouts[0], "one")["created"],
        "1970-01-01T00:00:00Z"
    );

    // SOURCE_DATE_EPOCH dates the image; the layers do not change
    let dated = dir.path().join("dated");
    pack_layout(&model, &dated, "one", Some("1700000000"), &[]);
    assert_eq!(config(&dated, "one")["created"], "2023-11-14T22:13:20Z");
    let (before, after) = (
        image_digests(&layouts[0], "one"),
        image_digests(&dated, "one"),
    );
    for ((kind, a), (_, b)) in before.iter().zip(&after) {
        match kind.as_str() {
            "layer" => assert_eq!(a, b, "a layer changed with SOURCE_DATE_EPOCH"),
            _ => assert_ne!(a, b, "the {kind} did not change with SOURCE_DATE_EPOCH"),
        }
    }
}

/// The runtime directory the tests pack from.
pub fn runtime_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("SKIFF_RUNTIME_DIR").unwrap_or_else(|| {
        panic!("SKIFF_RUNTIME_DIR is not set: run images/build-server.sh DIR linux/amd64 linux/arm64 and point it at DIR (scripts/test.sh does)")
    }))
}

#[test]
fn server_binaries_hold_no_build_machine_paths() {
    let clone = env!("CARGO_MANIFEST_DIR");
    let home = std::env::var("HOME").unwrap_or_default();
    for platform in ["linux-amd64", "linux-arm64"] {
        let path = runtime_dir().join(platform).join("skiff-server");
        let binary =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
        for needle in [clone, home.as_str()] {
            if needle.len() > 1 {
                assert!(
                    !binary.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{} holds the build machine's path {needle}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn labels_and_annotations_describe_skiff_and_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let layout = dir.path().join("image");
    pack_layout(&model, &layout, "one", None, &[]);
    pack_layout(
        &model,
        &layout,
        "both",
        None,
        &["--platform", "linux/amd64,linux/arm64"],
    );
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8(out.stdout).unwrap().trim().to_string());
    let check = |what: &str, labels: &Value| {
        let text = |key: &str| {
            labels[key]
                .as_str()
                .unwrap_or_else(|| panic!("{what} has no {key}: {labels}"))
                .to_string()
        };
        let json = |key: &str| serde_json::from_str::<Value>(&text(key)).unwrap();
        assert_eq!(text("org.opencontainers.image.title"), "iris", "{what}");
        assert_eq!(
            text("org.opencontainers.image.version"),
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(
            text("org.opencontainers.image.created"),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            text("org.opencontainers.image.source"),
            env!("CARGO_PKG_REPOSITORY")
        );
        assert_eq!(
            labels["org.opencontainers.image.revision"].as_str(),
            revision.as_deref(),
            "{what}: the revision is the commit skiff was built from"
        );
        assert_eq!(text("dev.skiff.model.name"), "iris");
        assert_eq!(text("dev.skiff.model.task"), "classification");
        assert_eq!(text("dev.skiff.model.estimator"), "logistic-regression");
        assert_eq!(
            json("dev.skiff.model.inputs"),
            serde_json::json!([{"name": "X", "datatype": "FP32", "shape": [-1, 4]}])
        );
        let outputs = json("dev.skiff.model.outputs");
        let names: Vec<&str> = outputs
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["label", "probabilities"], "{what}");
        let accuracy = json("dev.skiff.model.metrics")["accuracy"]
            .as_f64()
            .unwrap();
        assert!((0.9..=1.0).contains(&accuracy), "{what}: {accuracy}");
    };
    for tag in ["one", "both"] {
        let image = format!("oci:{}:{tag}", layout.display());
        // skopeo inspect: the config's Labels (of this machine's platform, for an index)
        let inspect: Value =
            serde_json::from_slice(&skopeo(dir.path(), &["inspect", &image]).stdout).unwrap();
        check(&format!("{tag}: Labels"), &inspect["Labels"]);
        // skopeo inspect --raw: the manifest, or the index, with its annotations
        let raw: Value =
            serde_json::from_slice(&skopeo(dir.path(), &["inspect", "--raw", &image]).stdout)
                .unwrap();
        check(&format!("{tag}: annotations"), &raw["annotations"]);
    }
    // skiff inspect names the index and its platforms
    let both = format!("oci:{}:both", layout.display());
    let inspected: Value = serde_json::from_str(&ok(run(&["inspect", &both, "--json"]))).unwrap();
    assert_eq!(inspected["digest"], tagged_digest(&layout, "both"));
    assert_eq!(
        inspected["platforms"],
        json!(["linux/amd64", "linux/arm64/v8"])
    );
    check("skiff inspect", &inspected["labels"]);

    // every platform's manifest in the index carries them too
    let index = blob_json(&layout, &tagged_digest(&layout, "both"));
    for entry in index["manifests"].as_array().unwrap() {
        let manifest = blob_json(&layout, entry["digest"].as_str().unwrap());
        check("a platform's manifest", &manifest["annotations"]);
    }
}

#[test]
fn multi_platform_image_pushes_as_an_index_and_its_arm64_server_answers_under_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = Registry::start(None);
    let remote = format!("docker://{}/models/iris:multi", registry.host());
    let pushed = pack_json(&model, &remote, &["--platform", "linux/amd64,linux/arm64"]);

    // The registry serves the index under the tag, one manifest per platform.
    let raw = skopeo(
        dir.path(),
        &["inspect", "--raw", "--tls-verify=false", &remote],
    );
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        pushed["digest"].as_str().unwrap(),
        skiff_pack::oci::sha256_digest(&raw.stdout)
    );
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"]))
        .collect();
    assert_eq!(platforms, [r#""linux"/"amd64""#, r#""linux"/"arm64""#]);

    // skopeo copies every platform back, checking each digest; each config names its platform.
    let pulled = dir.path().join("pulled");
    let dest = format!("oci:{}:multi", pulled.display());
    skopeo(
        dir.path(),
        &["copy", "--all", "--src-tls-verify=false", &remote, &dest],
    );
    for arch in ["amd64", "arm64"] {
        let inspect = skopeo(
            dir.path(),
            &["--override-arch", arch, "inspect", "--config", &dest],
        );
        let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(config["architecture"], arch);
    }

    // The arm64 image's own server and model, run under qemu-user.
    let arm64 = index["manifests"][1]["digest"].as_str().unwrap();
    let manifest = blob_json(&pulled, arm64);
    let root = dir.path().join("arm64-root");
    std::fs::create_dir(&root).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let blob = pulled.join("blobs/sha256").join(hex);
        let out = run_tool(
            "tar",
            "tar",
            &["-xzf", blob.to_str().unwrap(), "-C", root.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = free_port();
    let log = dir.path().join("qemu.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut server = Process(
        std::process::Command::new("qemu-aarch64-static")
            .arg(root.join("skiff-server"))
            .args(["--name", "iris"])
            .arg(root.join("model/model.onnx"))
            .env("PORT", port.to_string())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run qemu-aarch64-static ({e}): install it with `apt-get install -y qemu-user-static`")
            }),
    );
    wait_for_200(
        &format!("http://127.0.0.1:{port}/v2/health/ready"),
        Duration::from_secs(60),
        || server.0.try_wait().unwrap().is_some(),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    assert_infers_iris(
        |p, b| http_json("POST", &format!("http://127.0.0.1:{port}{p}"), Some(b)),
        "iris",
    );
}

/// A child process, killed on drop.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_image_is_tuned_by_its_environment_alone_and_probes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let layout = dir.path().join("layout");
    pack_layout(&model, &layout, "v1", None, &[]);
    let (port, grpc_port) = (free_port(), free_port());
    let container = Container::run_with(&layout, "v1", &dir.path().join("bundle"), port, |c| {
        let env = c["process"]["env"].as_array_mut().unwrap();
        env.push(json!("SKIFF_MAX_CONCURRENCY=1"));
        env.push(json!("SKIFF_LOG_FORMAT=json"));
        env.push(json!(format!("SKIFF_GRPC_PORT={grpc_port}")));
    });
    let base = format!("http://127.0.0.1:{port}");
    crate::serve::assert_infers_iris(
        |p, b| http_json("POST", &format!("{base}{p}"), Some(b)),
        "iris",
    );
    crate::serve_config::concurrency_limit_refusal(&base, "iris");
    // gRPC on the port the environment gave, for Triton's gRPC client.
    let client = format!(
        "import numpy as np, tritonclient.grpc as g\n\
         c = g.InferenceServerClient('127.0.0.1:{grpc_port}')\n\
         x = g.InferInput('X', [1, 4], 'FP32')\n\
         x.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], np.float32))\n\
         print(c.is_server_ready(), c.infer('iris', [x]).as_numpy('label')[0].decode())"
    );
    let out = python().args(["-c", &client]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.trim(), "True setosa", "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("bundle/container.log")).unwrap();
    for line in log.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON log line: {line:?}\n{log}");
    }

    // The image's own health check: the server asks itself, exit 0 or 1 and one line.
    let server = runtime_dir().join("linux-amd64/skiff-server");
    let probe = |args: &[&str], env: &[(&str, String)]| {
        let mut command = std::process::Command::new(&server);
        command.args(args).env_remove("PORT");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let ready = format!("{base}/v2/health/ready");
    assert!(probe(&["--probe", &ready], &[]).status.success());
    let own = probe(
        &["--probe", "/v2/health/live"],
        &[("PORT", port.to_string())],
    );
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    drop(container);
    let down = probe(&["--probe", &ready], &[]);
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.starts_with("skiff-server: probe failed: cannot connect"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn an_image_serves_a_kserve_mounted_model_when_given_kserves_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let layout = dir.path().join("layout");
    pack_layout(&model, &layout, "v1", None, &[]);
    // What KServe's storage initializer leaves in /mnt/models, readable by the image's user.
    let mount = crate::serve_config::kserve_mount(dir.path());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&mount, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        mount.join("model.onnx"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let port = free_port();
    let _container = Container::run_with(&layout, "v1", &dir.path().join("bundle"), port, |c| {
        // A ServingRuntime's args replace the image's command (the model it holds).
        c["process"]["args"] = json!([
            "/skiff-server",
            "--model_dir=/mnt/models",
            "--model_name=flowers",
            format!("--http_port={port}"),
            "--grpc_port=0",
        ]);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt/models",
            "type": "bind",
            "source": mount,
            "options": ["rbind", "ro"],
        }));
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .retain(|e| !e.as_str().unwrap().starts_with("PORT="));
    });
    let base = format!("http://127.0.0.1:{port}");
    crate::serve::assert_infers_iris(
        |p, b| http_json("POST", &format!("{base}{p}"), Some(b)),
        "flowers",
    );
    let (status, _) = http_json("GET", &format!("{base}/v2/models/iris"), None);
    assert_eq!(
        status, 404,
        "the image's own model is not served when KServe gives one"
    );
}
