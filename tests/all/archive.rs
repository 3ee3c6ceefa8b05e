//! OCI archives (`oci-archive:FILE[:TAG]`): images and components for devices that get them
//! offline, read by skopeo and served by skiff straight from the file.

use crate::*;
use serde_json::Value;

#[test]
fn images_and_components_travel_as_oci_archives_that_skopeo_reads_and_skiff_serves() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());

    // An image: skopeo reads the archive and copies every blob out of it (checking digests).
    let image = dir.path().join("iris.tar");
    let archive = format!("oci-archive:{}:v1", image.display());
    let packed = pack_json(&model, &archive, &[]);
    let inspected = crate::image::skopeo(dir.path(), &["inspect", "--raw", &archive]);
    assert_eq!(
        packed["digest"].as_str().unwrap(),
        skiff_pack::oci::sha256_digest(&inspected.stdout)
    );
    let copied = dir.path().join("copied");
    crate::image::skopeo(
        dir.path(),
        &["copy", &archive, &format!("oci:{}:v1", copied.display())],
    );
    // The same model packed twice gives the same archive, byte for byte.
    let again = dir.path().join("again.tar");
    pack_json(&model, &format!("oci-archive:{}:v1", again.display()), &[]);
    assert_eq!(
        std::fs::read(&image).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let server = crate::serve::Server::start(&archive, &[]);
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    drop(server);
    let shown: Value = serde_json::from_str(&ok(run(&["inspect", &archive, "--json"]))).unwrap();
    assert_eq!(shown["reference"], archive.as_str());
    assert_eq!(shown["digest"], packed["digest"]);

    // A component with its precompiled code, served from the archive without compiling.
    let component = dir.path().join("component.tar");
    let component_archive = format!("oci-archive:{}", component.display());
    pack_json(
        &model,
        &component_archive,
        &[
            "--format",
            "component",
            "--precompile",
            std::env::consts::ARCH,
        ],
    );
    let server = crate::serve::Server::start(&component_archive, &[]);
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    let log = server.log_text();
    assert!(
        log.contains("loaded precompiled code from") && !log.contains("compiling"),
        "{log}"
    );
    drop(server);

    // Through a registry and back into an archive: the same image.
    let registry = skiff_testing::Registry::start(None);
    let remote = format!("{}/edge/iris:v1", registry.host());
    let pushed: Value = serde_json::from_str(&ok(run(&[
        "push",
        &archive,
        &remote,
        "--insecure",
        "--json",
    ])))
    .unwrap();
    assert_eq!(pushed["digest"], packed["digest"]);
    let back = dir.path().join("back.tar");
    ok(run(&[
        "pull",
        &format!("docker://{remote}"),
        "-o",
        &format!("oci-archive:{}:v1", back.display()),
        "--insecure",
    ]));
    let inspected = crate::image::skopeo(
        dir.path(),
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}:v1", back.display()),
        ],
    );
    assert_eq!(
        packed["digest"].as_str().unwrap(),
        skiff_pack::oci::sha256_digest(&inspected.stdout)
    );

    // A file that is not an archive, or a tag it lacks: one line each, naming the fix.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, "not a tar").unwrap();
    fails_with(
        run(&["serve", &format!("oci-archive:{}", junk.display())]),
        &["is not an OCI archive", "skiff pack -o oci-archive:FILE"],
    );
    fails_with(
        run(&["inspect", &format!("oci-archive:{}:nope", image.display())]),
        &["nope"],
    );
}
