//! The image SBOM, checked by the SPDX project's own tools (`spdx-tools`, pinned in
//! tests/requirements.txt) on the real servers in `$SKIFF_RUNTIME_DIR` and the crate lists
//! `images/build-server.sh` wrote beside them. Missing tools fail the test: they are never
//! skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skiff_pack::media;
use skiff_pack::oci::{Platform, sha256_digest};
use skiff_pack::sbom::{CRATES_FILE, SbomInput, SbomModel, SbomServer, read_crates, spdx};

fn runtime_dir() -> PathBuf {
    let dir = std::env::var_os("SKIFF_RUNTIME_DIR").expect(
        "SKIFF_RUNTIME_DIR is not set: build the servers with images/build-server.sh DIR linux/amd64 linux/arm64 and set SKIFF_RUNTIME_DIR=DIR",
    );
    PathBuf::from(dir)
}

/// The server for `platform` (`linux/amd64`) and the crates listed beside it.
fn server(platform: &str) -> SbomServer {
    let dir = runtime_dir().join(platform.replace('/', "-"));
    let binary = std::fs::read(dir.join("skiff-server")).unwrap_or_else(|e| {
        panic!(
            "cannot read {}/skiff-server ({e}): build it with images/build-server.sh",
            dir.display()
        )
    });
    let crates = read_crates(&dir.join(CRATES_FILE))
        .unwrap_or_else(|e| panic!("{e:#} (images/build-server.sh writes it beside the server)"));
    SbomServer {
        platform: Platform::parse(platform).unwrap(),
        digest: sha256_digest(&binary),
        size: binary.len() as u64,
        crates,
    }
}

fn input() -> SbomInput {
    let model = b"an onnx model's bytes".repeat(100);
    SbomInput {
        name: "iris".into(),
        digest: sha256_digest(b"the image index"),
        repository_url: Some("127.0.0.1:5000/acme/iris".into()),
        tag: Some("v1".into()),
        skiff_version: env!("CARGO_PKG_VERSION").into(),
        created: "1970-01-01T00:00:00Z".into(),
        model: SbomModel {
            path: media::MODEL_PATH.into(),
            digest: sha256_digest(&model),
            size: model.len() as u64,
            labels: BTreeMap::from([
                (media::SKIFF_MODEL_NAME.into(), "iris".into()),
                (media::SKIFF_MODEL_TASK.into(), "classification".into()),
                (
                    media::SKIFF_MODEL_INPUTS.into(),
                    r#"[{"name":"input","datatype":"FP32","shape":[-1,4]}]"#.into(),
                ),
            ]),
        },
        servers: vec![server("linux/amd64"), server("linux/arm64")],
    }
}

/// Runs `pyspdxtools -i document [extra...]` with the test venv's Python.
fn pyspdxtools(document: &Path, extra: &[&str]) -> Output {
    let python = std::env::var("SKIFF_TEST_PYTHON").expect(
        "SKIFF_TEST_PYTHON is not set: point it at a Python with tests/requirements.txt installed (spdx-tools)",
    );
    Command::new(&python)
        .args(["-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i"])
        .arg(document)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} -m spdx_tools...pyspdxtools: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn spdx_tools_accepts_the_sbom_of_a_two_platform_image_and_reads_its_relationships() {
    let dir = tempfile::tempdir().unwrap();
    let input = input();
    let bytes = spdx(&input).unwrap();
    assert_eq!(bytes, spdx(&input).unwrap(), "the SBOM is not reproducible");
    let document = dir.path().join("iris.spdx.json");
    std::fs::write(&document, &bytes).unwrap();

    // Validates, then writes the document as tag-value: what SPDX's own reader made of it.
    let tag_value = dir.path().join("iris.spdx");
    let output = pyspdxtools(&document, &["-o", tag_value.to_str().unwrap()]);
    let said = text(&output);
    assert!(
        output.status.success(),
        "pyspdxtools refused the SBOM: {said}"
    );
    assert!(!said.to_lowercase().contains("invalid"), "{said}");
    let read = std::fs::read_to_string(&tag_value).unwrap();

    assert!(read.contains("SPDXVersion: SPDX-2.3"), "{read}");
    assert!(
        read.contains("Relationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image-iris"),
        "{read}"
    );
    assert!(
        read.contains("Relationship: SPDXRef-Image-iris CONTAINS SPDXRef-Model-iris"),
        "{read}"
    );
    for server in &input.servers {
        let id = format!(
            "SPDXRef-Server-{}",
            server.platform.to_string().replace('/', "-")
        );
        assert!(
            read.contains(&format!("Relationship: SPDXRef-Image-iris CONTAINS {id}")),
            "{read}"
        );
        // Every crate linked into the server is a dependency of it.
        let depends = read
            .lines()
            .filter(|l| l.starts_with(&format!("Relationship: {id} DEPENDS_ON ")))
            .count();
        assert_eq!(depends, server.crates.len(), "{id} in {read}");
    }

    // What a user auditing the image looks for: tokio, from crates.io, with its .crate's sha256
    // and a licence SPDX reads; no proc-macro (they do not end up in the binary).
    let amd64 = &input.servers[0].crates;
    let tokio = amd64
        .iter()
        .find(|c| c.name == "tokio")
        .expect("tokio in the crate list");
    assert!(tokio.crates_io && tokio.checksum.is_some(), "{tokio:?}");
    assert!(
        read.contains(&format!(
            "PackageDownloadLocation: https://crates.io/api/v1/crates/tokio/{}/download",
            tokio.version
        )),
        "{read}"
    );
    assert!(
        read.contains(&format!(
            "PackageChecksum: SHA256: {}",
            tokio.checksum.as_deref().unwrap()
        )),
        "{read}"
    );
    assert!(
        read.contains(&format!(
            "ExternalRef: PACKAGE-MANAGER purl pkg:cargo/tokio@{}",
            tokio.version
        )),
        "{read}"
    );
    assert!(
        !amd64.iter().any(|c| c.name == "serde_derive"),
        "a proc-macro is listed as linked into the server"
    );
    let host = amd64.iter().find(|c| c.name == "skiff-host").unwrap();
    assert!(!host.crates_io && host.checksum.is_none(), "{host:?}");
    // Cargo's `A/B` licences are read as SPDX expressions, not left out.
    if let Some(slash) = amd64
        .iter()
        .find(|c| c.license.as_deref().is_some_and(|l| l.contains('/')))
    {
        let expected = slash.license.as_deref().unwrap().replace('/', " OR ");
        let expected = expected.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            read.contains(&format!("PackageLicenseDeclared: {expected}")),
            "{} {expected} in {read}",
            slash.name
        );
    }
    assert!(
        !String::from_utf8_lossy(&bytes).contains(runtime_dir().to_str().unwrap()),
        "the SBOM names a path of the build machine"
    );
}

#[test]
fn spdx_tools_refuses_a_damaged_sbom() {
    // The check above can fail: SPDX's tools refuse the same document with a relationship to
    // nothing, a Cargo-style licence left as it was, or a package without downloadLocation.
    type Damage = fn(&mut serde_json::Value);
    let damages: [(&str, Damage, &str); 3] = [
        (
            "relationship to nothing",
            |doc| doc["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Nothing".into(),
            "did not find the referenced spdx_id \"SPDXRef-Nothing\"",
        ),
        (
            "Cargo's licence form",
            |doc| doc["packages"][3]["licenseDeclared"] = "MIT/Apache-2.0".into(),
            "Invalid license key",
        ),
        (
            "no downloadLocation",
            |doc| {
                doc["packages"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("downloadLocation");
            },
            "download_location",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let good: serde_json::Value = serde_json::from_slice(&spdx(&input()).unwrap()).unwrap();
    for (what, damage, complaint) in damages {
        let mut doc = good.clone();
        damage(&mut doc);
        let document = dir.path().join("damaged.spdx.json");
        std::fs::write(&document, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        let output = pyspdxtools(&document, &[]);
        let said = text(&output);
        assert!(
            !output.status.success(),
            "pyspdxtools accepted an SBOM with {what}: {said}"
        );
        assert!(said.contains(complaint), "{what}: {said}");
    }
}
