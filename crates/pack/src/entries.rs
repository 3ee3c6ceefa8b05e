//! What a layer may hold: skiff reads layers (for the model inside an image), and refuses one
//! with an entry that would reach outside the image's root or create a device if unpacked.
//! Such a layer is damaged or hostile; no image skiff builds has one.

use std::path::{Component, Path};

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
