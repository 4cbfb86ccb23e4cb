//! Images whose content berth must get exactly right, built here blob by blob as OCI layouts and
//! published with skopeo to Debian's `docker-registry` on loopback: a two-platform index (the pull picks
//! the platform) and an upper layer with whiteouts (a deleted file, an opaque directory) that must hide
//! lower content when run and survive `save` for other tools (umoci) to apply. Only loopback is ever
//! contacted.

use std::process::Command;

#[path = "common/registry.rs"]
mod registry;
use registry::*;

/// This machine's architecture as OCI names it, if it is one the tests build images for.
fn host_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("amd64"),
        "aarch64" => Some("arm64"),
        _ => None,
    }
}

#[test]
fn pull_picks_the_platform_of_a_multi_platform_index() {
    let Some(arch) = host_arch() else { return };
    if !is_root() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(&tmp.path().join("layout"));
    let base = busybox_layer(&layout);
    let mut images = Vec::new();
    for platform in ["amd64", "arm64"] {
        let layer = layout.layer(&tar(&[Entry::File(
            "platform",
            format!("{platform}\n").as_bytes(),
        )]));
        images.push((layout.image(platform, &[&base, &layer]), platform));
    }
    let index = layout.index(&[(&images[0].0, images[0].1), (&images[1].0, images[1].1)]);
    layout.tag(&index, "1");
    reg.skopeo_push(&layout.source("1"), "multi:1", &["--all"]);
    let reference = format!("{}/multi:1", reg.host());

    // By default: this machine's platform, which runs.
    let b = Berth::empty();
    b.ok(&["pull", &reference]);
    let inspect = |image: &str| {
        b.ok(&["image", "inspect", "--format", "{{.Architecture}}", image])
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(inspect(&reference), arch);
    let out = b.ok(&["run", "--rm", &reference, "cat", "/platform"]);
    assert_eq!(out.stdout.trim(), arch);

    // Asked for: the other one (not run); the shared base layer is not fetched again.
    let other = if arch == "amd64" { "arm64" } else { "amd64" };
    let out = b.ok(&["pull", "--platform", &format!("linux/{other}"), &reference]);
    assert!(out.stdout.contains("Already exists"), "{out:?}");
    assert_eq!(inspect(&reference), other);
    assert_eq!(b.image_ids().lines().count(), 2, "both platforms stored");

    // A platform the index lacks, a malformed one: one clear line, nothing stored.
    let fresh = Berth::empty();
    for (platform, want) in [("linux/s390x", "linux/s390x"), ("linux", "linux")] {
        let out = fresh.run(&["pull", "--platform", platform, &reference]);
        assert_eq!(out.code, 125, "{out:?}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
        assert!(out.stderr.contains(want), "{out:?}");
        assert!(fresh.image_ids().trim().is_empty());
        fresh.assert_no_leftovers();
    }
}

#[test]
fn whiteouts_hide_lower_files_and_survive_save() {
    let Some(arch) = host_arch() else { return };
    if !is_root() || !have("umoci", "umoci") {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(&tmp.path().join("layout"));
    let base = busybox_layer(&layout);
    let lower = layout.layer(&tar(&[
        Entry::Dir("data"),
        Entry::File("data/keep", b"keep\n"),
        Entry::File("data/gone", b"gone\n"),
        Entry::Dir("opq"),
        Entry::File("opq/old", b"old\n"),
        Entry::Dir("opq/sub"),
        Entry::File("opq/sub/deep", b"deep\n"),
    ]));
    let upper = layout.layer(&tar(&[
        Entry::Dir("data"),
        Entry::File("data/.wh.gone", b""),
        Entry::Dir("opq"),
        Entry::File("opq/.wh..wh..opq", b""),
        Entry::File("opq/new", b"new\n"),
    ]));
    let manifest = layout.image(arch, &[&base, &lower, &upper]);
    layout.tag(&manifest, "1");
    reg.skopeo_push(&layout.source("1"), "wh:1", &[]);
    let reference = format!("{}/wh:1", reg.host());

    let b = Berth::empty();
    b.ok(&["pull", &reference]);
    let out = b.ok(&[
        "run",
        "--rm",
        &reference,
        "sh",
        "-c",
        "ls -A /data; echo --; ls -RA /opq",
    ]);
    assert_eq!(out.stdout, "keep\n--\n/opq:\nnew\n", "{out:?}");

    // docker-archive: the saved upper layer still holds the whiteout entries, as tar lists them.
    let saved = tmp.path().join("saved.tar");
    b.ok(&["save", "-o", saved.to_str().unwrap(), &reference]);
    let unpacked = tmp.path().join("saved");
    std::fs::create_dir(&unpacked).unwrap();
    run_cmd(
        Command::new("tar")
            .arg("-xf")
            .arg(&saved)
            .arg("-C")
            .arg(&unpacked),
        None,
    )
    .ok();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let top = unpacked.join(layers[2].as_str().unwrap());
    let listing = run_cmd(Command::new("tar").arg("-tf").arg(&top), None)
        .ok()
        .stdout;
    for entry in ["data/.wh.gone", "opq/.wh..wh..opq", "opq/new"] {
        assert!(
            listing.lines().any(|l| l.trim_start_matches("./") == entry),
            "{entry} in {listing}"
        );
    }

    // oci-archive: umoci applies the layers itself and sees the same tree.
    let oci = tmp.path().join("saved-oci.tar");
    b.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        &reference,
    ]);
    let dir = tmp.path().join("oci");
    std::fs::create_dir(&dir).unwrap();
    run_cmd(Command::new("tar").arg("-xf").arg(&oci).arg("-C").arg(&dir), None).ok();
    // umoci wants a plain tag name; berth writes the full reference.
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "wh".into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let bundle = tmp.path().join("bundle");
    let out = run_cmd(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:wh", dir.display()))
            .arg(&bundle),
        None,
    );
    assert_eq!(out.code, 0, "umoci unpack: {out:?}");
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(bundle.join("rootfs").join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("data"), ["keep"]);
    assert_eq!(names("opq"), ["new"]);
}
