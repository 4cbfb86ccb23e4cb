//! save and load: docker-archive and oci-archive round trips, archives written the way other tools
//! write them, and bad archives that must add nothing.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;

use berth_image::{ArchiveFormat, Error, Loaded, Store};
use common::{names, sha256, TarBuilder};
use rusqlite::Connection;

struct Env {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    root: std::path::PathBuf,
    store: Store,
    conn: Connection,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("image");
    let store = Store::open(&root).unwrap();
    let conn = Connection::open(tmp.path().join("berth.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    Store::migrate(&conn).unwrap();
    Env {
        dir: tmp.path().to_path_buf(),
        root,
        store,
        conn,
        _tmp: tmp,
    }
}

fn layer(marker: &str) -> Vec<u8> {
    TarBuilder::new()
        .dir("etc")
        .file("etc/marker", marker.as_bytes())
        .file(".wh.gone", b"")
        .finish()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn config_for(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

fn assert_empty(e: &Env) {
    assert!(e.store.list(&e.conn).unwrap().is_empty(), "images were stored");
    for dir in [e.root.join("layers"), e.root.join("blobs/sha256")] {
        assert!(
            names(&dir).is_empty(),
            "leftovers in {}: {:?}",
            dir.display(),
            names(&dir)
        );
    }
}

/// Two images sharing a bottom layer, tagged.
fn two_images(e: &mut Env) -> (String, String) {
    let a = e
        .store
        .import(&mut e.conn, &layer("a")[..], Some("app:1"), None, None)
        .unwrap();
    let parent = e.store.resolve(&e.conn, &a).unwrap();
    let upper = e.dir.join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/second"), "b").unwrap();
    let config = parent.config.config().clone().unwrap_or_default();
    let b = e
        .store
        .commit(
            &mut e.conn,
            &parent,
            &upper,
            config,
            Some("localhost:5000/me/app:2"),
            None,
            None,
        )
        .unwrap();
    (a, b)
}

fn save(e: &Env, refs: &[&str], format: ArchiveFormat) -> std::path::PathBuf {
    let path = e.dir.join(format!("out-{}.tar", refs.len()));
    let mut out = fs::File::create(&path).unwrap();
    let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
    e.store.save(&e.conn, &refs, format, &mut out).unwrap();
    path
}

fn round_trip(format: ArchiveFormat) {
    let mut e = env();
    let (a, b) = two_images(&mut e);
    let archive = save(&e, &["app:1", "localhost:5000/me/app:2"], format);

    let mut f = env();
    let loaded = f.store.load_file(&mut f.conn, &archive).unwrap();
    assert_eq!(
        loaded,
        [
            Loaded {
                id: a.clone(),
                tags: vec!["app:1".into()]
            },
            Loaded {
                id: b.clone(),
                tags: vec!["localhost:5000/me/app:2".into()]
            },
        ]
    );
    let image = f.store.resolve(&f.conn, "localhost:5000/me/app:2").unwrap();
    assert_eq!(image.id, b, "the image ID survives the round trip");
    assert_eq!(image.diff_ids.len(), 2);
    let top = f.store.layer_dir(&image.diff_ids[1]);
    assert_eq!(fs::read(top.join("etc/second")).unwrap(), b"b");
    let bottom = f.store.layer_dir(&image.diff_ids[0]);
    assert!(
        bottom.join("gone").exists(),
        "whiteouts come back as overlay whiteouts"
    );
    // Loading again is idempotent.
    assert_eq!(f.store.load_file(&mut f.conn, &archive).unwrap().len(), 2);
    assert_eq!(f.store.list(&f.conn).unwrap().len(), 2);
}

#[test]
fn docker_archive_round_trip_keeps_ids() {
    round_trip(ArchiveFormat::DockerArchive);
}

#[test]
fn oci_archive_round_trip_keeps_ids() {
    round_trip(ArchiveFormat::OciArchive);
}

#[test]
fn docker_archive_layout_is_what_docker_writes() {
    let mut e = env();
    let (a, _) = two_images(&mut e);
    let archive = save(&e, &["app:1"], ArchiveFormat::DockerArchive);
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let mut files = std::collections::BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let hex = &a[7..];
    assert_eq!(manifest[0]["Config"], format!("{hex}.json"));
    assert_eq!(manifest[0]["RepoTags"][0], "app:1");
    assert_eq!(sha256(&files[&format!("{hex}.json")]), a);
    let layer_path = manifest[0]["Layers"][0].as_str().unwrap();
    assert_eq!(sha256(&files[layer_path]), sha256(&layer("a")));
    let repositories: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert!(repositories["app"]["1"].is_string());
}

#[test]
fn oci_archive_names_images_by_annotation() {
    let mut e = env();
    two_images(&mut e);
    let archive = save(&e, &["app:1"], ArchiveFormat::OciArchive);
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let mut index = None;
    let mut layout = None;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        match name.as_str() {
            "index.json" => index = Some(data),
            "oci-layout" => layout = Some(data),
            _ => {}
        }
    }
    let index: serde_json::Value = serde_json::from_slice(&index.unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "docker.io/library/app:1"
    );
    assert!(String::from_utf8(layout.unwrap()).unwrap().contains("1.0.0"));
}

/// A docker-archive as skopeo and podman write it: gzip layers named `<hex>.tar`, manifest.json last,
/// the whole thing gzip-compressed on stdin.
#[test]
fn loads_foreign_docker_archives_from_a_stream() {
    let mut e = env();
    let l1 = layer("one");
    let l2 = TarBuilder::new().file("two", b"2").finish();
    let diff_ids = vec![sha256(&l1), sha256(&l2)];
    let config = config_for(&diff_ids);
    let id = sha256(&config);
    let manifest = serde_json::json!([{
        "Config": format!("{}.json", &id[7..]),
        "RepoTags": ["docker.io/library/thing:v1", "other:latest"],
        "Layers": [format!("{}.tar", &diff_ids[0][7..]), "dir/layer.tar"],
    }]);
    let archive = TarBuilder::new()
        .file(&format!("{}.tar", &diff_ids[0][7..]), &gzip(&l1))
        .dir("real")
        .file("real/layer.tar", &l2)
        .dir("dir")
        .symlink("dir/layer.tar", "../real/layer.tar")
        .file(&format!("{}.json", &id[7..]), &config)
        .file("manifest.json", manifest.to_string().as_bytes())
        .finish();
    let loaded = e.store.load_stream(&mut e.conn, &gzip(&archive)[..]).unwrap();
    assert_eq!(loaded[0].id, id);
    assert_eq!(loaded[0].tags, ["thing:v1", "other:latest"]);
    let image = e.store.resolve(&e.conn, "thing:v1").unwrap();
    assert_eq!(image.diff_ids, diff_ids);
    assert_eq!(
        fs::read(e.store.layer_dir(&diff_ids[1]).join("two")).unwrap(),
        b"2"
    );
    // The temporary copy of the stream is gone.
    assert!(names(&e.root.join("blobs/sha256"))
        .iter()
        .all(|n| !n.starts_with('.')));
}

/// An OCI layout with a gzip layer, named by a bare tag (gives no name) and by containerd's annotation.
#[test]
fn loads_oci_archives_with_compressed_layers() {
    let mut e = env();
    let plain = layer("oci");
    let compressed = gzip(&plain);
    let config = config_for(&[sha256(&plain)]);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(&compressed), "size": compressed.len()}],
    })
    .to_string();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(manifest.as_bytes()), "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "latest", "io.containerd.image.name": "docker.io/library/oci:latest"}},
        ],
    });
    let blob = |d: &[u8]| format!("blobs/sha256/{}", &sha256(d)[7..]);
    let archive = TarBuilder::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", index.to_string().as_bytes())
        .file(&blob(manifest.as_bytes()), manifest.as_bytes())
        .file(&blob(&config), &config)
        .file(&blob(&compressed), &compressed)
        .finish();
    let path = e.dir.join("oci.tar");
    fs::write(&path, archive).unwrap();
    let loaded = e.store.load_file(&mut e.conn, &path).unwrap();
    assert_eq!(loaded[0].tags, ["oci:latest"]);
    assert_eq!(loaded[0].id, sha256(&config));
}

#[test]
fn bad_archives_store_nothing() {
    let l1 = layer("one");
    let config = config_for(&[sha256(&l1)]);
    let id = sha256(&config);
    let docker = |layer_bytes: &[u8], config: &[u8], manifest: &str| {
        TarBuilder::new()
            .file("l/layer.tar", layer_bytes)
            .file(&format!("{}.json", &id[7..]), config)
            .file("manifest.json", manifest.as_bytes())
            .finish()
    };
    let good_manifest = serde_json::json!([{"Config": format!("{}.json", &id[7..]), "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]).to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "layer digest",
            docker(&layer("tampered"), &config, &good_manifest),
            "digest mismatch",
        ),
        (
            "config digest",
            docker(&l1, &config_for(&[sha256(&layer("x"))]), &good_manifest),
            "digest mismatch",
        ),
        (
            "manifest json",
            docker(&l1, &config, "{not json"),
            "manifest.json is not valid",
        ),
        (
            "missing layer",
            docker(
                &l1,
                &config,
                &good_manifest.replace("l/layer.tar", "nope/layer.tar"),
            ),
            "missing from the archive",
        ),
        (
            "not an archive",
            TarBuilder::new().file("x", b"y").finish(),
            "neither manifest.json",
        ),
        (
            "escaping layer",
            {
                let evil = TarBuilder::new().file("../../escape", b"x").finish();
                let config = config_for(&[sha256(&evil)]);
                let id = sha256(&config);
                let manifest =
                    serde_json::json!([{"Config": format!("{}.json", &id[7..]), "Layers": ["l/layer.tar"]}])
                        .to_string();
                TarBuilder::new()
                    .file("l/layer.tar", &evil)
                    .file(&format!("{}.json", &id[7..]), &config)
                    .file("manifest.json", manifest.as_bytes())
                    .finish()
            },
            "refusing layer entry",
        ),
    ];
    for (what, archive, want) in cases {
        let mut e = env();
        let path = e.dir.join("bad.tar");
        fs::write(&path, archive).unwrap();
        let err = e.store.load_file(&mut e.conn, &path).unwrap_err();
        assert!(err.to_string().contains(want), "{what}: {err}");
        assert_empty(&e);
        assert!(!e.dir.join("escape").exists());
    }
    let mut e = env();
    assert!(matches!(
        e.store.load_stream(&mut e.conn, &b""[..]),
        Err(Error::BadArchive { .. })
    ));
}

#[test]
fn save_of_an_unknown_image_writes_nothing() {
    let mut e = env();
    two_images(&mut e);
    let mut out = Vec::new();
    let err = e
        .store
        .save(
            &e.conn,
            &["app:1".into(), "nope".into()],
            ArchiveFormat::DockerArchive,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }), "{err}");
    assert!(out.is_empty());
    let _ = Path::new("");
}
