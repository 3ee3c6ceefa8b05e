//! What a layer may hold: skiff reads layers (for the model inside an image), and refuses one
//! with an entry that would reach outside the image's root or create a device if unpacked.
//! Such a layer is damaged or hostile; no image skiff builds has one.

use std::io::Read;
use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::oci::Descriptor;

/// What to do with a file of a tar layer.
pub(crate) enum Pick {
    /// Pass it by.
    Skip,
    /// Read it and go on.
    Keep,
    /// Read it and stop: the one that was looked for.
    Done,
}

/// The regular files of the tar `layer` (read from `reader`) that `pick` picks by their path
/// (without a leading `./` or `/`), with their bytes, in the layer's order. An entry that is
/// unsafe to unpack, or a tar that cannot be read, makes the layer corrupt.
pub(crate) fn read_tar_files(
    reader: impl Read,
    layer: &Descriptor,
    mut pick: impl FnMut(&str) -> Pick,
) -> Result<Vec<(String, Vec<u8>)>> {
    let bad_layer = |e: std::io::Error| Error::CorruptBlob {
        digest: layer.digest.clone(),
        reason: format!("not a readable tar layer: {e}"),
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = Vec::new();
    for entry in archive.entries().map_err(bad_layer)? {
        let mut entry = entry.map_err(bad_layer)?;
        let path = entry.path().map_err(bad_layer)?.into_owned();
        let link = entry.link_name().map_err(bad_layer)?;
        let kind = entry.header().entry_type();
        if let Some(why) = unsafe_entry(&path, kind, link.as_deref()) {
            return Err(Error::CorruptBlob {
                digest: layer.digest.clone(),
                reason: format!("entry {} is {why}", path.display()),
            });
        }
        if !kind.is_file() {
            continue;
        }
        let name = path.to_string_lossy();
        let name = name
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        let done = match pick(&name) {
            Pick::Skip => continue,
            Pick::Keep => false,
            Pick::Done => true,
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(bad_layer)?;
        files.push((name, bytes));
        if done {
            break;
        }
    }
    Ok(files)
}

/// Why `path` (a tar entry of type `kind`, linking to `link` if it is a link) is unsafe.
pub(crate) fn unsafe_entry(
    path: &Path,
    kind: tar::EntryType,
    link: Option<&Path>,
) -> Option<String> {
    use tar::EntryType;
    if escapes(Path::new("/"), path) {
        return Some("a path that climbs out of the image root with ..".into());
    }
    match kind {
        EntryType::Block | EntryType::Char | EntryType::Fifo => {
            return Some(format!("a device or pipe ({kind:?})"));
        }
        EntryType::Symlink | EntryType::Link => {
            let target = link?;
            // A symbolic link resolves from its own folder, a hard link from the root; an
            // absolute target is read inside the root when unpacked, so only `..` can escape.
            let base = match kind {
                EntryType::Symlink => path.parent().unwrap_or(Path::new("")),
                _ => Path::new(""),
            };
            if escapes(base, target) {
                return Some(format!(
                    "a link to {} outside the image root",
                    target.display()
                ));
            }
        }
        _ => {}
    }
    None
}

/// Whether `path`, followed from `base` inside a root, climbs above the root.
fn escapes(base: &Path, path: &Path) -> bool {
    let mut depth: i64 = if path.is_absolute() {
        0
    } else {
        base.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count() as i64
    };
    for component in path.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::RootDir => depth = 0,
            Component::CurDir | Component::Prefix(_) => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::EntryType::*;

    #[test]
    fn safe_entries_pass_and_escapes_and_devices_do_not() {
        let check = |path: &str, kind, link: Option<&str>| {
            unsafe_entry(Path::new(path), kind, link.map(Path::new))
        };
        for (path, kind, link) in [
            ("model/model.onnx", Regular, None),
            ("./model/", Directory, None),
            ("/skiff-server", Regular, None),
            ("a/b/../c", Regular, None),
            ("lib/libc.so", Symlink, Some("libc.so.6")),
            ("usr/lib/x", Symlink, Some("../../etc/x")),
            ("bin/sh", Symlink, Some("/usr/bin/dash")),
            ("model/hard", Link, Some("model/model.onnx")),
        ] {
            assert_eq!(check(path, kind, link), None, "{path}");
        }
        for (path, kind, link) in [
            ("../etc/passwd", Regular, None),
            ("model/../../x", Regular, None),
            ("dev/sda", Block, None),
            ("dev/tty", Char, None),
            ("run/pipe", Fifo, None),
            ("lib/evil", Symlink, Some("../../etc/shadow")),
            ("hard", Link, Some("../outside")),
        ] {
            assert!(check(path, kind, link).is_some(), "{path}");
        }
    }
}
