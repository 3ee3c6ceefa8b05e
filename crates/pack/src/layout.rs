//! OCI image layout on disk (image-spec 1.1): `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
//!
//! Blobs and `index.json` are written to a temporary file in the same directory and renamed into
//! place, so a crash never leaves a half-written file under its final name.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::media;
use crate::oci::{Descriptor, ImageIndex, ImageManifest, Platform, sha256_digest, valid_digest};
use crate::referrers::{self, Artifact};
use sha2::{Digest as _, Sha256};

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayoutFile {
    image_layout_version: String,
}

impl Layout {
    /// Opens the layout at `dir`, creating it (and `dir`) when missing.
    pub fn create_or_open(dir: &Path) -> Result<Layout> {
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        if dir.join("oci-layout").exists() {
            return Layout::open(dir);
        }
        if dir.exists() {
            let not_empty = fs::read_dir(dir)
                .map_err(|e| Error::io("read directory", dir, e))?
                .next()
                .is_some();
            if not_empty && !dir.join("index.json").exists() {
                return Err(Error::NotALayout {
                    dir: dir.to_path_buf(),
                    reason: "the directory is not empty and has no oci-layout file; pick a new or empty directory".into(),
                });
            }
        }
        let blobs = layout.blobs_dir();
        fs::create_dir_all(&blobs).map_err(|e| Error::io("create directory", &blobs, e))?;
        let marker = serde_json::to_vec(&OciLayoutFile {
            image_layout_version: media::IMAGE_LAYOUT_VERSION.to_string(),
        })
        .map_err(|e| Error::json("oci-layout", e))?;
        write_atomic(&dir.join("oci-layout"), &marker)?;
        if !dir.join("index.json").exists() {
            layout.write_index(&ImageIndex::default())?;
        }
        Ok(layout)
    }

    /// Opens an existing layout; fails when `dir` is not one.
    pub fn open(dir: &Path) -> Result<Layout> {
        let marker_path = dir.join("oci-layout");
        let marker = fs::read(&marker_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotALayout {
                    dir: dir.to_path_buf(),
                    reason: "no oci-layout file".into(),
                }
            } else {
                Error::io("read", &marker_path, e)
            }
        })?;
        let marker: OciLayoutFile =
            serde_json::from_slice(&marker).map_err(|e| Error::NotALayout {
                dir: dir.to_path_buf(),
                reason: format!("oci-layout is not valid json: {e}"),
            })?;
        if marker.image_layout_version != media::IMAGE_LAYOUT_VERSION {
            return Err(Error::NotALayout {
                dir: dir.to_path_buf(),
                reason: format!(
                    "imageLayoutVersion {:?} is not supported (only {})",
                    marker.image_layout_version,
                    media::IMAGE_LAYOUT_VERSION
                ),
            });
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// Path of the blob with `digest` (which must be a valid sha256 digest).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        if !valid_digest(digest) {
            return Err(Error::InvalidDigest(digest.to_string()));
        }
        Ok(self.blobs_dir().join(&digest["sha256:".len()..]))
    }

    /// Whether a blob with `digest` and `size` is present and intact.
    pub fn has_blob(&self, desc: &Descriptor) -> bool {
        self.read_blob(desc).is_ok()
    }

    /// Stores `bytes` as a blob and describes it with `media_type`.
    pub fn write_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let desc = Descriptor::for_bytes(media_type, bytes);
        let path = self.blob_path(&desc.digest)?;
        let intact = fs::metadata(&path).is_ok_and(|m| m.len() == desc.size)
            && self.read_blob(&desc).is_ok();
        if !intact {
            write_atomic(&path, bytes)?;
        }
        Ok(desc)
    }

    /// Moves a downloaded file into the layout after checking its size and digest.
    pub fn import_blob(&self, file: tempfile::NamedTempFile, desc: &Descriptor) -> Result<()> {
        let path = self.blob_path(&desc.digest)?;
        verify_file(file.path(), desc)?;
        file.persist(&path)
            .map_err(|e| Error::io("move blob into", &path, e.error))?;
        Ok(())
    }

    /// A temporary file next to the blobs, for downloads that [`Layout::import_blob`] moves in.
    pub fn temp_blob_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.blobs_dir();
        let mut builder = tempfile::Builder::new();
        builder.prefix(".tmp-");
        // Blobs are shared like any file, not private as temporary files are by default.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        builder
            .tempfile_in(&dir)
            .map_err(|e| Error::io("create a temporary file in", &dir, e))
    }

    /// Reads a blob, checking its size and sha256 against `desc`.
    pub fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&desc.digest)?;
        let bytes = fs::read(&path).map_err(|e| Error::io("read blob", &path, e))?;
        check_bytes(&bytes, desc)?;
        Ok(bytes)
    }

    /// Reads `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.dir.join("index.json");
        let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(path.display().to_string(), e))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|e| Error::json("index.json", e))?;
        write_atomic(&self.dir.join("index.json"), &bytes)
    }

    /// The tags (`org.opencontainers.image.ref.name`) in `index.json`.
    pub fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|m| {
                m.annotations
                    .as_ref()?
                    .get(media::ANNOTATION_REF_NAME)
                    .cloned()
            })
            .collect())
    }

    /// Points `tag` at `manifest` in `index.json`, replacing an entry with the same tag.
    pub fn tag(&self, manifest: &Descriptor, tag: &str) -> Result<()> {
        if !crate::oci::valid_tag(tag) {
            return Err(Error::Invalid(format!(
                "tag {tag:?} is not valid (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
            )));
        }
        let mut entry = manifest.clone();
        entry
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(media::ANNOTATION_REF_NAME.to_string(), tag.to_string());
        let mut index = self.index()?;
        index.manifests.retain(|m| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(media::ANNOTATION_REF_NAME))
                .is_none_or(|t| t != tag)
        });
        index.manifests.push(entry);
        self.write_index(&index)
    }

    /// Copies the image tagged `tag` in `from` into this layout, tagged `new_tag`: a manifest
    /// with its config and layers, or an index with every manifest in it. Blobs this layout has
    /// are not copied again.
    pub fn copy_image(&self, from: &Layout, tag: &str, new_tag: &str) -> Result<Descriptor> {
        let desc = from.tagged(tag)?;
        let manifests = if media::is_index(&desc.media_type) {
            from.read_index(&desc)?.manifests
        } else {
            vec![desc.clone()]
        };
        let copy = |blob: &Descriptor| -> Result<()> {
            if !self.has_blob(blob) {
                self.write_blob(&blob.media_type, &from.read_blob(blob)?)?;
            }
            Ok(())
        };
        for entry in &manifests {
            let manifest = from.read_manifest(entry)?;
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                copy(blob)?;
            }
            copy(entry)?;
        }
        copy(&desc)?;
        self.tag(&desc, new_tag)?;
        self.copy_referrers(from, &desc.digest)?;
        Ok(desc)
    }

    /// Stores `artifact` and lists it in `index.json` as a referrer of its subject (untagged,
    /// with its artifact type). Attaching the same artifact again changes nothing.
    pub fn attach(&self, artifact: &Artifact) -> Result<Descriptor> {
        self.add_referrer(
            &artifact.manifest_bytes()?,
            &artifact.manifest,
            &artifact.blobs,
        )
    }

    /// Stores a referrer's blobs and its manifest, as `manifest_bytes` (so that it keeps its
    /// digest), and lists it in `index.json` once.
    pub(crate) fn add_referrer(
        &self,
        manifest_bytes: &[u8],
        manifest: &ImageManifest,
        blobs: &[(Descriptor, Vec<u8>)],
    ) -> Result<Descriptor> {
        for (desc, bytes) in blobs {
            check_bytes(bytes, desc)?;
            if !self.has_blob(desc) {
                self.write_blob(&desc.media_type, bytes)?;
            }
        }
        let desc = self.write_blob(media::OCI_MANIFEST, manifest_bytes)?;
        let entry = referrers::entry(&desc, manifest);
        let mut index = self.index()?;
        if !index.manifests.iter().any(|m| m.digest == entry.digest) {
            index.manifests.push(entry.clone());
            self.write_index(&index)?;
        }
        Ok(entry)
    }

    /// The referrers of the manifest `subject_digest` in this layout: the entries of
    /// `index.json` whose manifest names it as `subject`.
    pub fn referrers(&self, subject_digest: &str) -> Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        for entry in self.index()?.manifests {
            if entry.media_type != media::OCI_MANIFEST || entry.artifact_type.is_none() {
                continue;
            }
            let manifest = self.read_manifest(&entry)?;
            if manifest
                .subject
                .as_ref()
                .is_some_and(|s| s.digest == subject_digest)
            {
                found.push(referrers::entry(&entry, &manifest));
            }
        }
        Ok(found)
    }

    /// Copies the referrers of `subject_digest` in `from` (each manifest and its blobs) into
    /// this layout; returns how many there were.
    pub fn copy_referrers(&self, from: &Layout, subject_digest: &str) -> Result<usize> {
        let found = from.referrers(subject_digest)?;
        for entry in &found {
            let manifest = from.read_manifest(entry)?;
            let blobs = std::iter::once(&manifest.config)
                .chain(&manifest.layers)
                .map(|d| Ok((d.clone(), from.read_blob(d)?)))
                .collect::<Result<Vec<_>>>()?;
            self.add_referrer(&from.read_blob(entry)?, &manifest, &blobs)?;
        }
        Ok(found.len())
    }

    /// Reads the image manifest blob `desc` describes.
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<ImageManifest> {
        let bytes = self.read_blob(desc)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(format!("manifest {}", desc.digest), e))
    }

    /// The `index.json` entry tagged `tag`: an image manifest or an image index.
    pub fn tagged(&self, tag: &str) -> Result<Descriptor> {
        let index = self.index()?;
        index
            .manifests
            .iter()
            .find(|m| {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(media::ANNOTATION_REF_NAME))
                    .is_some_and(|t| t == tag)
            })
            .cloned()
            .ok_or_else(|| {
                let tags = self.tags().unwrap_or_default();
                Error::TagNotFound {
                    dir: self.dir.clone(),
                    tag: tag.to_string(),
                    available: if tags.is_empty() {
                        "none".into()
                    } else {
                        tags.join(", ")
                    },
                }
            })
    }

    /// Reads the image index blob `desc` describes.
    pub fn read_index(&self, desc: &Descriptor) -> Result<ImageIndex> {
        let bytes = self.read_blob(desc)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("index {}", desc.digest), e))
    }

    /// Finds the image manifest tagged `tag`. A multi-platform image (an index) gives the
    /// manifest for this machine's platform, else its first: every platform holds the same model.
    pub fn resolve(&self, tag: &str) -> Result<(Descriptor, ImageManifest)> {
        let mut desc = self.tagged(tag)?;
        if media::is_index(&desc.media_type) {
            let index = self.read_index(&desc)?;
            let host = Platform::host();
            let manifests = || {
                index
                    .manifests
                    .iter()
                    .filter(|m| media::is_manifest(&m.media_type))
            };
            desc = manifests()
                .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(&host)))
                .or_else(|| manifests().next())
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "tag {tag:?} in {} is an index with no image manifest in it (pack the image again)",
                        self.dir.display()
                    ))
                })?;
        }
        if !media::is_manifest(&desc.media_type) {
            return Err(Error::Invalid(format!(
                "tag {tag:?} in {} points at a {} (skiff reads OCI image manifests and indexes)",
                self.dir.display(),
                desc.media_type
            )));
        }
        let manifest = self.read_manifest(&desc)?;
        Ok((desc, manifest))
    }
}

fn check_bytes(bytes: &[u8], desc: &Descriptor) -> Result<()> {
    if bytes.len() as u64 != desc.size {
        return Err(Error::CorruptBlob {
            digest: desc.digest.clone(),
            reason: format!("size {} but {} expected", bytes.len(), desc.size),
        });
    }
    let actual = sha256_digest(bytes);
    if actual != desc.digest {
        return Err(Error::CorruptBlob {
            digest: desc.digest.clone(),
            reason: format!("content hashes to {actual}"),
        });
    }
    Ok(())
}

/// Checks a file's size and sha256 against `desc` without reading it whole into memory.
pub(crate) fn verify_file(path: &Path, desc: &Descriptor) -> Result<()> {
    let mut file = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    if size != desc.size {
        return Err(Error::CorruptBlob {
            digest: desc.digest.clone(),
            reason: format!("size {size} but {} expected", desc.size),
        });
    }
    let actual = format!("sha256:{:x}", hasher.finalize());
    if actual != desc.digest {
        return Err(Error::CorruptBlob {
            digest: desc.digest.clone(),
            reason: format!("content hashes to {actual}"),
        });
    }
    Ok(())
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    skiff_data::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layout with an image tagged `v1` (an empty config, no layers).
    fn image(dir: &Path) -> (Layout, Descriptor) {
        let layout = Layout::create_or_open(dir).unwrap();
        let config = layout.write_blob(media::OCI_CONFIG, b"{}").unwrap();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config,
            layers: vec![],
            subject: None,
            annotations: None,
        };
        let desc = layout
            .write_blob(media::OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
            .unwrap();
        layout.tag(&desc, "v1").unwrap();
        (layout, desc)
    }

    #[test]
    fn referrers_are_untagged_entries_found_by_subject_and_copied_with_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, subject) = image(&tmp.path().join("a"));
        let sbom = Artifact::new(
            "application/spdx+json",
            &subject,
            vec![(
                Descriptor::for_bytes("application/spdx+json", b"{\"spdxVersion\":\"SPDX-2.3\"}"),
                b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec(),
            )],
            BTreeMap::new(),
        );
        let entry = layout.attach(&sbom).unwrap();
        // attaching again lists it once; tags are untouched
        layout.attach(&sbom).unwrap();
        assert_eq!(layout.tags().unwrap(), ["v1"]);
        let found = layout.referrers(&subject.digest).unwrap();
        assert_eq!(found, std::slice::from_ref(&entry));
        assert_eq!(
            found[0].artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        assert!(
            layout
                .referrers(&sha256_digest(b"other"))
                .unwrap()
                .is_empty()
        );

        let copy = Layout::create_or_open(&tmp.path().join("b")).unwrap();
        copy.copy_image(&layout, "v1", "latest").unwrap();
        assert_eq!(
            copy.referrers(&subject.digest).unwrap(),
            std::slice::from_ref(&entry)
        );
        let manifest = copy.read_manifest(&entry).unwrap();
        assert_eq!(manifest.subject.unwrap().digest, subject.digest);
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            copy.read_blob(blob).unwrap();
        }
    }

    #[test]
    fn create_writes_spec_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("img");
        let layout = Layout::create_or_open(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert_eq!(
            fs::read_to_string(dir.join("index.json")).unwrap(),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        );
        assert!(dir.join("blobs/sha256").is_dir());
        assert!(layout.tags().unwrap().is_empty());
        // opening again keeps what is there
        Layout::create_or_open(&dir).unwrap();
        Layout::open(&dir).unwrap();
    }

    #[test]
    fn refuses_a_non_empty_foreign_directory() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), "hi").unwrap();
        let err = Layout::create_or_open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not an OCI image layout"), "{err}");
        let err = Layout::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("no oci-layout file"), "{err}");
    }

    #[test]
    fn blobs_round_trip_and_are_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create_or_open(tmp.path()).unwrap();
        let desc = layout.write_blob(media::OCI_CONFIG, b"hello").unwrap();
        assert_eq!(
            desc.digest,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(desc.size, 5);
        assert_eq!(layout.read_blob(&desc).unwrap(), b"hello");
        // no temporary files left behind
        let names: Vec<_> = fs::read_dir(tmp.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);

        // a wrong size is caught
        let mut wrong = desc.clone();
        wrong.size = 6;
        assert!(
            layout
                .read_blob(&wrong)
                .unwrap_err()
                .to_string()
                .contains("size 5")
        );

        // a corrupted blob is caught, and rewriting it repairs it
        fs::write(layout.blob_path(&desc.digest).unwrap(), b"jello").unwrap();
        let err = layout.read_blob(&desc).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        layout.write_blob(media::OCI_CONFIG, b"hello").unwrap();
        assert_eq!(layout.read_blob(&desc).unwrap(), b"hello");
    }

    #[test]
    fn digests_cannot_escape_the_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create_or_open(tmp.path()).unwrap();
        for bad in ["sha256:../../etc/passwd", "sha512:abc", "sha256:ABC", ""] {
            assert!(layout.blob_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tagging_replaces_and_resolves() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create_or_open(tmp.path()).unwrap();
        let config = layout.write_blob(media::OCI_CONFIG, b"{}").unwrap();
        let manifest = |n: &str| ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: config.clone(),
            layers: vec![],
            subject: None,
            annotations: Some(BTreeMap::from([("n".to_string(), n.to_string())])),
        };
        let m1 = serde_json::to_vec(&manifest("1")).unwrap();
        let m2 = serde_json::to_vec(&manifest("2")).unwrap();
        let d1 = layout.write_blob(media::OCI_MANIFEST, &m1).unwrap();
        let d2 = layout.write_blob(media::OCI_MANIFEST, &m2).unwrap();
        layout.tag(&d1, "v1").unwrap();
        layout.tag(&d1, "latest").unwrap();
        layout.tag(&d2, "latest").unwrap();
        assert_eq!(layout.tags().unwrap(), ["v1", "latest"]);
        let (desc, m) = layout.resolve("latest").unwrap();
        assert_eq!(desc.digest, d2.digest);
        assert_eq!(m, manifest("2"));
        assert_eq!(layout.resolve("v1").unwrap().0.digest, d1.digest);
        let err = layout.resolve("v9").unwrap_err().to_string();
        assert!(err.contains("tags: v1, latest"), "{err}");
        assert!(layout.tag(&d1, "-x").is_err());
    }
}
