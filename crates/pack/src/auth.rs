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
//!
//! An entry's `identitytoken` (what `docker login` stores for Azure Container Registry and
//! other OAuth2 registries), or a helper's answer with the user name `<token>`, is an
//! [`Credential::IdentityToken`]: a refresh token that the login trades for an access token
//! at the registry's token server (distribution's OAuth2 token spec), not a password.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
pub use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::{Error, Result};

/// What the credential files hold for a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Sent as it is: nothing, a user name and password, or a registry token.
    Registry(RegistryAuth),
    /// An OAuth2 refresh token (docker's `identitytoken`), traded at the registry's token
    /// server for an access token with `grant_type=refresh_token`.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Registry(auth) => auth.fmt(f),
            Credential::IdentityToken(_) => {
                f.debug_tuple("IdentityToken").field(&"<redacted>").finish()
            }
        }
    }
}

impl From<RegistryAuth> for Credential {
    fn from(auth: RegistryAuth) -> Credential {
        Credential::Registry(auth)
    }
}

/// A credential equals the [`RegistryAuth`] it sends as it is.
impl PartialEq<RegistryAuth> for Credential {
    fn eq(&self, other: &RegistryAuth) -> bool {
        matches!(self, Credential::Registry(auth) if auth == other)
    }
}

/// The environment variables that locate credential files, captured once.
///
/// Tests build one by hand ([`AuthEnv::empty`] + [`AuthEnv::with`]) so they never read the
/// real environment.
#[derive(Debug, Clone, Default)]
pub struct AuthEnv {
    vars: BTreeMap<String, OsString>,
}

const VARS: [&str; 7] = [
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "XDG_RUNTIME_DIR",
    "HOME",
    // where credential helpers are found
    "PATH",
    USERNAME_VAR,
    PASSWORD_VAR,
];

/// With [`PASSWORD_VAR`], credentials for every registry, ahead of any file: for CI jobs.
pub const USERNAME_VAR: &str = "SKIFF_REGISTRY_USERNAME";
/// The password or token that goes with [`USERNAME_VAR`].
pub const PASSWORD_VAR: &str = "SKIFF_REGISTRY_PASSWORD";

impl AuthEnv {
    /// Captures `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`, `XDG_RUNTIME_DIR`, `HOME`, `PATH` (where
    /// credential helpers are found) and the `SKIFF_REGISTRY_*` pair from this process.
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
    pub fn lookup(&self, host: &str) -> Result<(Credential, Option<PathBuf>)> {
        let var = |k: &str| {
            self.vars
                .get(k)
                .and_then(|v| v.to_str())
                .filter(|v| !v.is_empty())
        };
        match (var(USERNAME_VAR), var(PASSWORD_VAR)) {
            (Some(user), Some(password)) => {
                tracing::debug!(registry = host, "using credentials from {USERNAME_VAR}");
                return Ok((
                    RegistryAuth::Basic(user.into(), password.into()).into(),
                    None,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{USERNAME_VAR} and {PASSWORD_VAR} go together: set both, or neither"
                )));
            }
        }
        for file in self.files() {
            if let Some(auth) = lookup_in_file(&file, host, self.vars.get("PATH"))? {
                tracing::debug!(registry = host, file = %file.display(), "using credentials");
                return Ok((auth, Some(file)));
            }
        }
        Ok((RegistryAuth::Anonymous.into(), None))
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
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
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

fn lookup_in_file(
    path: &Path,
    host: &str,
    search_path: Option<&OsString>,
) -> Result<Option<Credential>> {
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
        return helper_credentials(helper, host, path, search_path);
    }
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    if let Some(token) = entry.registry_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(RegistryAuth::Bearer(token.to_string()).into()));
    }
    // docker writes `auth` too (base64 of `<token>:`): the identity token is what counts.
    if let Some(token) = entry.identity_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(token.to_string())));
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
        return Ok(Some(
            RegistryAuth::Basic(user.to_string(), pass.to_string()).into(),
        ));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(pass)) if !user.is_empty() => {
            Ok(Some(RegistryAuth::Basic(user.clone(), pass.clone()).into()))
        }
        // `{}` entries are what docker writes when a credential helper holds the secret
        _ => Ok(None),
    }
}

/// How long a credential helper may take (it may be waiting on a keychain).
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Asks `docker-credential-NAME get` (found on `search_path`, else this process's `PATH`)
/// for `host`'s credentials: `None` when it has none.
fn helper_credentials(
    name: &str,
    host: &str,
    file: &Path,
    search_path: Option<&OsString>,
) -> Result<Option<Credential>> {
    use std::io::{Read as _, Write as _};
    let program = format!("docker-credential-{name}");
    let bad = |reason: String| Error::Credentials {
        path: file.to_path_buf(),
        reason,
    };
    let mut command = std::process::Command::new(&program);
    if let Some(search_path) = search_path {
        // on unix the child's PATH is where the program is looked for
        command.env("PATH", search_path);
    }
    let mut child = command
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
    tracing::debug!(registry = host, helper = %program, "using credentials from a helper");
    // docker's convention: the user name `<token>` marks the secret as an identity token.
    if answer.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(answer.secret)));
    }
    Ok(Some(
        RegistryAuth::Basic(answer.username, answer.secret).into(),
    ))
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
                RegistryAuth::Basic("explicit".into(), "x".into()).into(),
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
    fn docker_config_identity_token() {
        let tmp = tempfile::tempdir().unwrap();
        // what `docker login` writes for an OAuth2 registry: `auth` is base64 of `<token>:`
        let json = format!(
            r#"{{"auths":{{"myreg.azurecr.io":{{"auth":"{}","identitytoken":"refresh-me"}}}}}}"#,
            b64("<token>:")
        );
        write(tmp.path(), "config.json", &json);
        let env = AuthEnv::empty().with("DOCKER_CONFIG", tmp.path());
        let (auth, _) = env.lookup("myreg.azurecr.io").unwrap();
        assert_eq!(auth, Credential::IdentityToken("refresh-me".into()));
        assert!(!format!("{auth:?}").contains("refresh-me"), "{auth:?}");
    }

    /// A `docker-credential-NAME` script in `dir` that answers `host` with `username`/`secret`.
    fn fake_helper(dir: &Path, name: &str, host: &str, username: &str, secret: &str) {
        let path = dir.join(format!("docker-credential-{name}"));
        let script = format!(
            r#"#!/bin/sh
[ "$1" = get ] || exit 3
read server
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{username}","Secret":"{secret}"}}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi
"#
        );
        std::fs::write(&path, script).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }

    #[test]
    fn a_helper_token_answer_is_an_identity_token() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        fake_helper(&bin, "acr", "myreg.azurecr.io", "<token>", "refresh-me");
        fake_helper(&bin, "plain", "ghcr.io", "alice", "hush");
        write(
            tmp.path(),
            "config.json",
            r#"{"credHelpers":{"myreg.azurecr.io":"acr","ghcr.io":"plain"}}"#,
        );
        let env = AuthEnv::empty()
            .with("DOCKER_CONFIG", tmp.path())
            .with("PATH", &bin);
        assert_eq!(
            env.lookup("myreg.azurecr.io").unwrap().0,
            Credential::IdentityToken("refresh-me".into())
        );
        assert_eq!(
            env.lookup("ghcr.io").unwrap().0,
            RegistryAuth::Basic("alice".into(), "hush".into())
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
