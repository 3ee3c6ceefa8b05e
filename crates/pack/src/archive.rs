//! OCI archives (`oci-archive:FILE[:TAG]`): an image layout in one tar file, as skopeo and
//! podman write and read them, for devices that get their images offline.
//!
//! Writing tars every file of a layout the way image layers are tarred (sorted, no times or
//! owners), so the same layout gives the same archive, through a temporary file beside the
//! destination. Reading unpacks into a folder, taking only plain files and folders with
//! relative paths inside it; the layout is then checked like any other.

use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::image::{TarFile, tar_files};
use crate::layout::write_atomic;

/// Writes the layout at `layout_dir` as the archive `file`.
pub fn write(layout_dir: &Path, file: &Path) -> Result<()> {
    let mut named = Vec::new();
    collect(layout_dir, layout_dir, &mut named)?;
    let entries: Vec<TarFile<'_>> = named
        .iter()
        .map(|(path, data)| TarFile {
            path,
            mode: 0o644,
            data,
        })
        .collect();
    let tar = tar_files(&entries)?;
    write_atomic(file, &tar)
}

/// Every file under `dir`, as (path relative to `root` with `/`, bytes).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io("read", &path, e))?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            out.push((name, bytes));
        }
    }
    Ok(())
}

/// Unpacks the archive `file` into the folder `into` (created when missing).
pub fn extract(file: &Path, into: &Path) -> Result<()> {
    let bad = |why: String| {
        Error::Invalid(format!(
            "{} is not an OCI archive: {why} (write one with skiff pack -o oci-archive:FILE or skopeo copy ... oci-archive:FILE)",
            file.display()
        ))
    };
    let tar = std::fs::File::open(file).map_err(|e| Error::io("open", file, e))?;
    std::fs::create_dir_all(into).map_err(|e| Error::io("create", into, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(tar));
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let plain = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(bad(format!(
                "it holds {}, outside the layout",
                path.display()
            )));
        }
        let to = into.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&to).map_err(|e| Error::io("create", &to, e))?;
            }
            tar::EntryType::Regular => {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
                }
                let mut out =
                    std::fs::File::create(&to).map_err(|e| Error::io("create", &to, e))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| bad(e.to_string()))?;
            }
            // pax headers describe the entry that follows; tar reads them itself
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(bad(format!(
                    "{} is a {other:?}, not a file or a folder",
                    path.display()
                )));
            }
        }
    }
    if !into.join("oci-layout").is_file() {
        return Err(bad("it has no oci-layout file at its top".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;

    #[test]
    fn an_archive_unpacks_to_the_layout_it_was_written_from_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let layout_dir = dir.path().join("layout");
        let layout = Layout::create_or_open(&layout_dir).unwrap();
        let blob = layout
            .write_blob("application/octet-stream", b"model")
            .unwrap();
        layout.tag(&blob, "v1").unwrap();
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        write(&layout_dir, &a).unwrap();
        write(&layout_dir, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let back = dir.path().join("back");
        extract(&a, &back).unwrap();
        let reopened = Layout::open(&back).unwrap();
        assert_eq!(reopened.tagged("v1").unwrap().digest, blob.digest);
        assert_eq!(reopened.read_blob(&blob).unwrap(), b"model");
    }

    #[test]
    fn entries_outside_the_layout_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let evil = dir.path().join("evil.tar");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the name into the header's bytes as a hostile tool would
        header.as_old_mut().name[..7].copy_from_slice(b"../oops");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        std::fs::write(&evil, builder.into_inner().unwrap()).unwrap();
        let err = extract(&evil, &dir.path().join("out"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the layout"), "{err}");
        assert!(!dir.path().join("oops").exists());

        let link = dir.path().join("link.tar");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_link_name("/etc").unwrap();
        builder.append_data(&mut header, "blobs", &[][..]).unwrap();
        std::fs::write(&link, builder.into_inner().unwrap()).unwrap();
        let err = extract(&link, &dir.path().join("out2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a file or a folder"), "{err}");

        let not_tar = dir.path().join("x.tar");
        std::fs::write(&not_tar, b"hello").unwrap();
        assert!(extract(&not_tar, &dir.path().join("out3")).is_err());
    }
}
