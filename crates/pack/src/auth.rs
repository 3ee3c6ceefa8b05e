//! Registry credentials from docker's `config.json` and podman's `auth.json`.
//!
//! Files are searched in this order, the first with an entry for the host wins:
//! `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` (when
//! `DOCKER_CONFIG` is unset), `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.config/containers/auth.json`. No entry means anonymous access.
//!
//! As in docker, a file's `credHelpers` entry for the host, or else its `credsStore`, names a
//! credential helper (`docker-credential-NAME` on `PATH`) that holds the secret; skiff runs
//! `docker-credential-NAME get` with the host on stdin. `SKIFF_REGISTRY_USERNAME` and
//! `SKIFF_REGISTRY_PASSWORD`, when set, come before every file. Secrets are never logged or
//! printed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
pub use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The environment variables that locate credential files, captured once.
///
/// Tests build one by hand ([`AuthEnv::empty`] + [`AuthEnv::with`]) so they never read the
/// real environment.
#[derive(Debug, Clone, Default)]
pub struct AuthEnv {
    vars: BTreeMap<String, OsString>,
}

const VARS: [&str; 6] = [
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "XDG_RUNTIME_DIR",
    "HOME",
    USERNAME_VAR,
    PASSWORD_VAR,
];

/// With [`PASSWORD_VAR`], credentials for every registry, ahead of any file: for CI jobs.
pub const USERNAME_VAR: &str = "SKIFF_REGISTRY_USERNAME";
/// The password or token that goes with [`USERNAME_VAR`].
pub const PASSWORD_VAR: &str = "SKIFF_REGISTRY_PASSWORD";

impl AuthEnv {
    /// Captures `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`, `XDG_RUNTIME_DIR` and `HOME` from this process.
    pub fn from_process() -> AuthEnv {
        AuthEnv {
            vars: VARS
                .iter()
                .filter_map(|k| Some((k.to_string(), std::env::var_os(k)?)))
                .collect(),
        }
    }

    /// No variables set: only anonymous access.
    pub fn empty() -> AuthEnv {
        AuthEnv::default()
    }

    /// Sets one variable.
    pub fn with(mut self, key: &str, value: impl Into<OsString>) -> AuthEnv {
        self.vars.insert(key.to_string(), value.into());
        self
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.vars
            .get(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// The credential files to look in, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        let home = self.path("HOME");
        let mut files = Vec::new();
        files.extend(self.path("REGISTRY_AUTH_FILE"));
        match self.path("DOCKER_CONFIG") {
            Some(dir) => files.push(dir.join("config.json")),
            None => files.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
        }
        files.extend(
            self.path("XDG_RUNTIME_DIR")
                .map(|d| d.join("containers/auth.json")),
        );
        files.extend(home.map(|h| h.join(".config/containers/auth.json")));
        files
    }

    /// Credentials for `host` (`HOST[:PORT]`), and the file they came from.
    pub fn lookup(&self, host: &str) -> Result<(RegistryAuth, Option<PathBuf>)> {
        let var = |k: &str| {
            self.vars
                .get(k)
                .and_then(|v| v.to_str())
                .filter(|v| !v.is_empty())
        };
        match (var(USERNAME_VAR), var(PASSWORD_VAR)) {
            (Some(user), Some(password)) => {
                tracing::debug!(registry = host, "using credentials from {USERNAME_VAR}");
                return Ok((RegistryAuth::Basic(user.into(), password.into()), None));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{USERNAME_VAR} and {PASSWORD_VAR} go together: set both, or neither"
                )));
            }
        }
        for file in self.files() {
            if let Some(auth) = lookup_in_file(&file, host)? {
                tracing::debug!(registry = host, file = %file.display(), "using credentials");
                return Ok((auth, Some(file)));
            }
        }
        Ok((RegistryAuth::Anonymous, None))
    }
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
}

/// `https://host/v1/`, `http://host`, `host/v2/`, `host/namespace` -> `host`.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Docker Hub goes by several names.
fn same_registry(a: &str, b: &str) -> bool {
    const HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    a.eq_ignore_ascii_case(b) || (HUB.contains(&a) && HUB.contains(&b))
}

fn lookup_in_file(path: &Path, host: &str) -> Result<Option<RegistryAuth>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read credentials file", path, e)),
    };
    let bad = |reason: String| Error::Credentials {
        path: path.to_path_buf(),
        reason,
    };
    let file: AuthFile =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid json: {e}")))?;
    // An exact key wins over a normalised one (`host/ns` entries, schemes).
    let entry = file.auths.get(host).map(|e| (host, e)).or_else(|| {
        file.auths
            .iter()
            .find(|(k, _)| same_registry(key_host(k), host))
            .map(|(k, e)| (k.as_str(), e))
    });
    let helper = file
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(key_host(k), host))
        .map(|(_, h)| h)
        .or(file.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        return helper_credentials(helper, host, path);
    }
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    if let Some(token) = entry.registry_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(RegistryAuth::Bearer(token.to_string())));
    }
    if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| bad(format!("auths.{key:?}.auth is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| bad(format!("auths.{key:?}.auth is not utf-8")))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| bad(format!("auths.{key:?}.auth is not base64 of user:password")))?;
        return Ok(Some(RegistryAuth::Basic(
            user.to_string(),
            pass.to_string(),
        )));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(pass)) if !user.is_empty() => {
            Ok(Some(RegistryAuth::Basic(user.clone(), pass.clone())))
        }
        // `{}` entries are what docker writes when a credential helper holds the secret
        _ => Ok(None),
    }
}

/// How long a credential helper may take (it may be waiting on a keychain).
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Asks `docker-credential-NAME get` for `host`'s credentials: `None` when it has none.
fn helper_credentials(name: &str, host: &str, file: &Path) -> Result<Option<RegistryAuth>> {
    use std::io::{Read as _, Write as _};
    let program = format!("docker-credential-{name}");
    let bad = |reason: String| Error::Credentials {
        path: file.to_path_buf(),
        reason,
    };
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            bad(format!(
                "its credential helper {program} cannot run ({e}); install it, or remove credsStore/credHelpers"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(host.as_bytes());
    }
    let deadline = std::time::Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(bad(format!(
                    "its credential helper {program} did not answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(bad(format!("waiting for {program} failed: {e}"))),
        }
    };
    // Helpers answer in a few hundred bytes: the pipes hold that until the exit is seen.
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    if !status.success() {
        // The helpers' own words for "nothing stored for this host".
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        let said = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| !l.trim().is_empty());
        return Err(bad(format!(
            "its credential helper {program} failed ({status}{}); log in again with docker login {host}",
            said.map(|l| format!(": {}", l.trim())).unwrap_or_default()
        )));
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout)
        .map_err(|_| bad(format!("its credential helper {program} answered with something other than {{\"Username\", \"Secret\"}} JSON")))?;
    if answer.username == "<token>" {
        return Err(bad(format!(
            "its credential helper {program} holds an identity token for {host}, which skiff cannot use yet; store a user name and password or token for it"
        )));
    }
    tracing::debug!(registry = host, helper = %program, "using credentials from a helper");
    Ok(Some(RegistryAuth::Basic(answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn write(dir: &Path, rel: &str, json: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn empty_env_is_anonymous() {
        let (auth, from) = AuthEnv::empty().lookup("127.0.0.1:5000").unwrap();
        assert_eq!(auth, RegistryAuth::Anonymous);
        assert_eq!(from, None);
    }

    #[test]
    fn docker_config_auth_field() {
        let tmp = tempfile::tempdir().unwrap();
        let json = format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#,
            b64("user:pa:ss")
        );
        let file = write(tmp.path(), "docker/config.json", &json);
        let env = AuthEnv::empty().with("DOCKER_CONFIG", tmp.path().join("docker"));
        let (auth, from) = env.lookup("127.0.0.1:5000").unwrap();
        assert_eq!(auth, RegistryAuth::Basic("user".into(), "pa:ss".into()));
        assert_eq!(from, Some(file));
        assert_eq!(
            env.lookup("127.0.0.1:5001").unwrap().0,
            RegistryAuth::Anonymous
        );
    }

    #[test]
    fn home_docker_config_and_key_forms() {
        let tmp = tempfile::tempdir().unwrap();
        let json = format!(
            r#"{{"auths":{{
                "https://ghcr.io":{{"username":"u1","password":"p1"}},
                "http://localhost:5000/v2/":{{"auth":"{}"}},
                "https://index.docker.io/v1/":{{"auth":"{}"}},
                "quay.io/team":{{"auth":"{}"}}
            }}}}"#,
            b64("u2:p2"),
            b64("hub:secret"),
            b64("q:q")
        );
        write(tmp.path(), ".docker/config.json", &json);
        let env = AuthEnv::empty().with("HOME", tmp.path());
        assert_eq!(
            env.lookup("ghcr.io").unwrap().0,
            RegistryAuth::Basic("u1".into(), "p1".into())
        );
        assert_eq!(
            env.lookup("localhost:5000").unwrap().0,
            RegistryAuth::Basic("u2".into(), "p2".into())
        );
        assert_eq!(
            env.lookup("docker.io").unwrap().0,
            RegistryAuth::Basic("hub".into(), "secret".into())
        );
        assert_eq!(
            env.lookup("quay.io").unwrap().0,
            RegistryAuth::Basic("q".into(), "q".into())
        );
    }

    #[test]
    fn podman_files_and_order() {
        let tmp = tempfile::tempdir().unwrap();
        let entry = |u: &str| {
            format!(
                r#"{{"auths":{{"reg.example:443":{{"auth":"{}"}}}}}}"#,
                b64(&format!("{u}:x"))
            )
        };
        let explicit = write(tmp.path(), "explicit.json", &entry("explicit"));
        write(tmp.path(), "run/containers/auth.json", &entry("xdg"));
        write(tmp.path(), "home/.docker/config.json", &entry("docker"));
        let env = AuthEnv::empty()
            .with("XDG_RUNTIME_DIR", tmp.path().join("run"))
            .with("HOME", tmp.path().join("home"));
        assert_eq!(
            env.lookup("reg.example:443").unwrap().0,
            RegistryAuth::Basic("docker".into(), "x".into())
        );
        let env = env.with("REGISTRY_AUTH_FILE", &explicit);
        assert_eq!(
            env.lookup("reg.example:443").unwrap(),
            (
                RegistryAuth::Basic("explicit".into(), "x".into()),
                Some(explicit)
            )
        );
        let env = AuthEnv::empty().with("XDG_RUNTIME_DIR", tmp.path().join("run"));
        assert_eq!(
            env.lookup("reg.example:443").unwrap().0,
            RegistryAuth::Basic("xdg".into(), "x".into())
        );
    }

    #[test]
    fn a_missing_credential_helper_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "config.json",
            r#"{"auths":{"ghcr.io":{}},"credsStore":"skiff-test-absent"}"#,
        );
        let env = AuthEnv::empty().with("DOCKER_CONFIG", tmp.path());
        let err = env.lookup("ghcr.io").unwrap_err().to_string();
        assert!(err.contains("docker-credential-skiff-test-absent"), "{err}");
        assert!(err.contains("config.json"), "{err}");
    }

    #[test]
    fn broken_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "config.json", "{not json");
        let env = AuthEnv::empty().with("DOCKER_CONFIG", tmp.path());
        let err = env.lookup("ghcr.io").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("not valid json"),
            "{err}"
        );

        write(
            tmp.path(),
            "config.json",
            r#"{"auths":{"ghcr.io":{"auth":"!!!"}}}"#,
        );
        let err = env.lookup("ghcr.io").unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
    }
}
