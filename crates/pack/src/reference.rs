//! Where an image lives: an OCI layout directory, a registry, or a plain file.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

/// An image location given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `oci:DIR[:TAG]`: an OCI image layout on disk.
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: String,
    },
    /// `docker://HOST[:PORT]/REPO[:TAG|@sha256:...]`: a registry.
    Registry {
        /// `HOST[:PORT]`.
        registry: String,
        /// Repository path, e.g. `team/model`.
        repository: String,
        /// A tag, or a digest `sha256:...` (see [`Reference::is_digest`]).
        tag: String,
    },
    /// `oci-archive:FILE[:TAG]`: an OCI image layout in one tar file, as skopeo and podman
    /// write it, for devices that get images offline.
    Archive {
        /// The tar file.
        file: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`) inside it.
        tag: String,
    },
    /// Anything else: a file path.
    File(PathBuf),
}

impl Reference {
    /// Parses a source reference (`oci:`, `docker://`, or a file path).
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(invalid(
                s,
                "it is empty (write oci:DIR:TAG, docker://HOST/REPO:TAG or a file path)",
            ));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            return parse_layout(s, rest);
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            return match parse_layout(s, rest)? {
                Reference::Layout { dir, tag } => Ok(Reference::Archive { file: dir, tag }),
                _ => unreachable!("parse_layout gives a layout"),
            };
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return parse_registry(s, rest, true);
        }
        if s.contains("://") {
            return Err(invalid(
                s,
                "unknown transport (write oci:DIR:TAG or docker://HOST/REPO:TAG)",
            ));
        }
        Ok(Reference::File(PathBuf::from(s)))
    }

    /// Parses a push destination: like [`Reference::parse`], and a bare `HOST/REPO[:TAG]`
    /// whose first component looks like a host (has `.` or `:`, or is `localhost`) is a registry.
    pub fn parse_destination(s: &str) -> Result<Reference> {
        if let Some(rest) = s.strip_prefix("docker://") {
            return parse_registry(s, rest, false);
        }
        if !s.starts_with("oci:")
            && !s.starts_with("oci-archive:")
            && !s.contains("://")
            && looks_like_registry(s)
        {
            return parse_registry(s, s, false);
        }
        Reference::parse(s)
    }

    /// Parses an image to read (inspect, pull, serve, deploy): like [`Reference::parse`], and
    /// a bare `HOST/REPO[:TAG|@sha256:...]` whose first component looks like a host is a
    /// registry.
    pub fn parse_image(s: &str) -> Result<Reference> {
        if !s.starts_with("oci:")
            && !s.starts_with("oci-archive:")
            && !s.contains("://")
            && looks_like_registry(s)
        {
            return parse_registry(s, s, true);
        }
        Reference::parse(s)
    }

    /// Whether a registry reference names a digest rather than a tag.
    pub fn is_digest(&self) -> bool {
        matches!(self, Reference::Registry { tag, .. } if tag.starts_with("sha256:"))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Layout { dir, tag } => write!(f, "oci:{}:{tag}", dir.display()),
            Reference::Archive { file, tag } => write!(f, "oci-archive:{}:{tag}", file.display()),
            Reference::Registry {
                registry,
                repository,
                tag,
            } => {
                let sep = if tag.starts_with("sha256:") { '@' } else { ':' };
                write!(f, "docker://{registry}/{repository}{sep}{tag}")
            }
            Reference::File(path) => write!(f, "{}", path.display()),
        }
    }
}

fn invalid(reference: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

fn parse_layout(whole: &str, rest: &str) -> Result<Reference> {
    let (dir, tag) = match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') => (dir, tag),
        _ => (rest, DEFAULT_TAG),
    };
    if dir.is_empty() {
        return Err(invalid(
            whole,
            "no directory (write oci:DIR or oci:DIR:TAG)",
        ));
    }
    check_tag(whole, tag)?;
    Ok(Reference::Layout {
        dir: PathBuf::from(dir),
        tag: tag.to_string(),
    })
}

/// A host is a first path component with a `.` or a `:`, or `localhost`.
fn is_host(component: &str) -> bool {
    !component.is_empty()
        && component != "."
        && component != ".."
        && (component.contains('.') || component.contains(':') || component == "localhost")
}

fn looks_like_registry(s: &str) -> bool {
    match s.split_once('/') {
        Some((first, rest)) => is_host(first) && !rest.is_empty() && !s.starts_with('/'),
        None => false,
    }
}

fn parse_registry(whole: &str, rest: &str, allow_digest: bool) -> Result<Reference> {
    let Some((host, path)) = rest.split_once('/') else {
        return Err(invalid(
            whole,
            format!(
                "no registry host (name it: docker://HOST/{rest}, e.g. docker://docker.io/library/{rest})"
            ),
        ));
    };
    if !is_host(host) {
        return Err(invalid(
            whole,
            format!(
                "{host:?} is not a registry host and skiff has no default registry \
                 (name it: docker://HOST/{rest}, e.g. docker://docker.io/{rest} or docker://localhost:5000/{rest})"
            ),
        ));
    }
    check_host(whole, host)?;
    let (repository, tag) = if let Some((repo, digest)) = path.split_once('@') {
        if !allow_digest {
            return Err(invalid(
                whole,
                "a push destination needs a tag, not a digest (write HOST/REPO:TAG)",
            ));
        }
        check_digest(whole, digest)?;
        (repo, digest.to_string())
    } else {
        match path.rsplit_once(':') {
            Some((repo, tag)) => {
                check_tag(whole, tag)?;
                (repo, tag.to_string())
            }
            None => (path, DEFAULT_TAG.to_string()),
        }
    };
    check_repository(whole, repository)?;
    Ok(Reference::Registry {
        registry: host.to_string(),
        repository: repository.to_string(),
        tag,
    })
}

fn check_host(whole: &str, host: &str) -> Result<()> {
    let ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !ok {
        return Err(invalid(
            whole,
            format!("{host:?} is not a valid registry host"),
        ));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(invalid(whole, format!("port {port:?} is not a number")));
    }
    Ok(())
}

fn check_tag(whole: &str, tag: &str) -> Result<()> {
    if crate::oci::valid_tag(tag) {
        Ok(())
    } else {
        Err(invalid(
            whole,
            format!(
                "tag {tag:?} is not valid (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
            ),
        ))
    }
}

fn check_digest(whole: &str, digest: &str) -> Result<()> {
    if crate::oci::valid_digest(digest) {
        Ok(())
    } else {
        Err(invalid(
            whole,
            format!("digest {digest:?} is not sha256:<64 lower case hex digits>"),
        ))
    }
}

/// Repository: lower case components `[a-z0-9]+([._-][a-z0-9]+)*` joined by `/`.
fn check_repository(whole: &str, repo: &str) -> Result<()> {
    let component_ok = |c: &str| {
        let bytes = c.as_bytes();
        !c.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && c.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
            })
    };
    if repo.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(invalid(
            whole,
            format!(
                "repository {repo:?} is not valid (lower case letters, digits, '.', '_', '-', separated by '/')"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &str, tag: &str) -> Reference {
        Reference::Layout {
            dir: dir.into(),
            tag: tag.into(),
        }
    }

    fn registry(host: &str, repo: &str, tag: &str) -> Reference {
        Reference::Registry {
            registry: host.into(),
            repository: repo.into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn layout_forms() {
        assert_eq!(
            Reference::parse("oci:out").unwrap(),
            layout("out", "latest")
        );
        assert_eq!(Reference::parse("oci:out:v1").unwrap(), layout("out", "v1"));
        assert_eq!(
            Reference::parse("oci:/tmp/a/b:v1.2").unwrap(),
            layout("/tmp/a/b", "v1.2")
        );
        // the part after the last ':' has a '/', so it is part of the directory
        assert_eq!(
            Reference::parse("oci:/tmp/a:b/c").unwrap(),
            layout("/tmp/a:b/c", "latest")
        );
        assert!(Reference::parse("oci:").is_err());
        assert!(Reference::parse("oci::v1").is_err());
        assert!(Reference::parse("oci:out:").is_err());
        assert!(Reference::parse("oci:out:-bad").is_err());
    }

    #[test]
    fn registry_forms() {
        assert_eq!(
            Reference::parse("docker://127.0.0.1:5000/team/iris:v1").unwrap(),
            registry("127.0.0.1:5000", "team/iris", "v1")
        );
        assert_eq!(
            Reference::parse("docker://ghcr.io/skiff/iris").unwrap(),
            registry("ghcr.io", "skiff/iris", "latest")
        );
        assert_eq!(
            Reference::parse("docker://localhost/iris").unwrap(),
            registry("localhost", "iris", "latest")
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("docker://localhost:5000/iris@{digest}")).unwrap();
        assert_eq!(r, registry("localhost:5000", "iris", &digest));
        assert!(r.is_digest());
        assert!(Reference::parse("docker://localhost:5000/iris@sha256:abc").is_err());
    }

    #[test]
    fn no_default_registry() {
        let err = Reference::parse("docker://ubuntu").unwrap_err().to_string();
        assert!(err.contains("no registry host"), "{err}");
        assert!(err.contains("docker://HOST/ubuntu"), "{err}");
        let err = Reference::parse("docker://library/ubuntu")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no default registry"), "{err}");
    }

    #[test]
    fn bad_registry_parts() {
        assert!(Reference::parse("docker://localhost:50x0/iris").is_err());
        assert!(Reference::parse("docker://localhost:5000/Iris").is_err());
        assert!(Reference::parse("docker://localhost:5000/iris:").is_err());
        assert!(Reference::parse("docker://localhost:5000/").is_err());
        assert!(Reference::parse("docker://localhost:5000/a//b").is_err());
        assert!(Reference::parse("ftp://x/y").is_err());
    }

    #[test]
    fn files() {
        assert_eq!(
            Reference::parse("model.onnx").unwrap(),
            Reference::File("model.onnx".into())
        );
        // a bare HOST/REPO is a file for `parse` ...
        assert_eq!(
            Reference::parse("localhost:5000/iris:v1").unwrap(),
            Reference::File("localhost:5000/iris:v1".into())
        );
        assert!(Reference::parse("").is_err());
    }

    #[test]
    fn destinations() {
        // ... but a registry for `parse_destination`
        assert_eq!(
            Reference::parse_destination("localhost:5000/iris:v1").unwrap(),
            registry("localhost:5000", "iris", "v1")
        );
        assert_eq!(
            Reference::parse_destination("ghcr.io/skiff/iris").unwrap(),
            registry("ghcr.io", "skiff/iris", "latest")
        );
        assert_eq!(
            Reference::parse_destination("localhost/iris").unwrap(),
            registry("localhost", "iris", "latest")
        );
        assert_eq!(
            Reference::parse_destination("./out/model.tar").unwrap(),
            Reference::File("./out/model.tar".into())
        );
        assert_eq!(
            Reference::parse_destination("out/model").unwrap(),
            Reference::File("out/model".into())
        );
        assert_eq!(
            Reference::parse_destination("oci:out:v2").unwrap(),
            layout("out", "v2")
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(
            Reference::parse_destination(&format!("docker://localhost/iris@{digest}")).is_err()
        );
    }

    #[test]
    fn display_round_trips() {
        let digest = format!("sha256:{}", "0".repeat(64));
        for s in [
            "oci:out:latest".to_string(),
            "oci:/tmp/a/b:v1".to_string(),
            "docker://127.0.0.1:5000/team/iris:v1".to_string(),
            format!("docker://localhost/iris@{digest}"),
            "model.onnx".to_string(),
        ] {
            assert_eq!(Reference::parse(&s).unwrap().to_string(), s);
        }
        assert_eq!(
            Reference::parse("oci:out").unwrap().to_string(),
            "oci:out:latest"
        );
        assert_eq!(
            Reference::parse_destination("localhost:5000/iris")
                .unwrap()
                .to_string(),
            "docker://localhost:5000/iris:latest"
        );
    }
}
