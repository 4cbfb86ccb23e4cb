//! The store: import, resolve, tag, remove and commit with docker's semantics.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_image::digest::EMPTY_LAYER_DIFF_ID;
use berth_image::{Error, Image, Store};
use common::{names, sha256, TarBuilder};
use oci_spec::image::{Config, ConfigBuilder};
use rusqlite::Connection;

struct Env {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Store,
    conn: Connection,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("image");
    let store = Store::open(&root).unwrap();
    let conn = connect(tmp.path());
    Env {
        root,
        store,
        conn,
        _tmp: tmp,
    }
}

fn connect(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join("berth.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    Store::migrate(&conn).unwrap();
    conn
}

fn rootfs_tar(marker: &str) -> Vec<u8> {
    TarBuilder::new()
        .dir("bin")
        .file("bin/busybox", b"\x7fELF busybox")
        .symlink("bin/sh", "busybox")
        .dir("etc")
        .file("etc/motd", b"hello")
        .file("etc/marker", marker.as_bytes())
        .finish()
}

fn no_use(_: &str) -> Option<String> {
    None
}

/// Neither `.tmp-*` nor `.trash-*` names are left in the store.
fn assert_clean(root: &Path) {
    for dir in [root.join("layers"), root.join("blobs/sha256")] {
        for name in names(&dir) {
            assert!(!name.starts_with('.'), "leftover {name} in {}", dir.display());
        }
    }
}

#[test]
fn import_computes_docker_ids() {
    let mut e = env();
    let tar = rootfs_tar("one");
    let config = ConfigBuilder::default()
        .cmd(vec!["sh".to_string()])
        .env(vec!["PATH=/bin".to_string()])
        .build()
        .unwrap();
    let id = e
        .store
        .import(
            &mut e.conn,
            &tar[..],
            Some("busybox"),
            Some(config),
            Some("my import"),
        )
        .unwrap();

    let image = e.store.resolve(&e.conn, "busybox").unwrap();
    assert_eq!(image.id, id);
    assert_eq!(image.tags, ["busybox:latest"]);
    assert_eq!(
        image.diff_ids,
        [sha256(&tar)],
        "diff_id is the sha256 of the uncompressed tar"
    );
    // The image ID is the sha256 of the config bytes as stored.
    let config_bytes = fs::read(e.store.blob_path(&id).unwrap()).unwrap();
    assert_eq!(sha256(&config_bytes), id);
    let json: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(json["architecture"], "amd64");
    assert_eq!(json["os"], "linux");
    assert_eq!(json["rootfs"]["type"], "layers");
    assert_eq!(json["rootfs"]["diff_ids"][0], sha256(&tar).as_str());
    assert_eq!(json["config"]["Cmd"][0], "sh");
    assert_eq!(json["history"][0]["comment"], "my import");
    assert_eq!(json["created"], image.created.as_str());
    // The layer blob is the tar itself; the layer is unpacked under its diff_id.
    assert_eq!(
        fs::read(e.store.blob_path(&image.diff_ids[0]).unwrap()).unwrap(),
        tar
    );
    let layer = e.store.layer_dir(&image.diff_ids[0]);
    assert_eq!(fs::read(layer.join("etc/motd")).unwrap(), b"hello");
    assert_eq!(fs::metadata(&layer).unwrap().mode() & 0o777, 0o755);
    assert_eq!(image.size, 12 + 5 + 3);
    assert_eq!(image.lower_dirs(&e.store), [layer]);
    assert_eq!(image.short_id(), &id[7..19]);
    assert_eq!(
        image.config.config().as_ref().unwrap().env().as_ref().unwrap()[0],
        "PATH=/bin"
    );
    assert_clean(&e.root);
}

#[test]
fn gzip_import_has_the_same_diff_id() {
    let mut e = env();
    let tar = rootfs_tar("gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let a = e
        .store
        .import(&mut e.conn, &gz[..], Some("gz"), None, None)
        .unwrap();
    let b = e
        .store
        .import(&mut e.conn, &tar[..], Some("plain"), None, None)
        .unwrap();
    let (a, b) = (
        e.store.resolve(&e.conn, &a).unwrap(),
        e.store.resolve(&e.conn, &b).unwrap(),
    );
    assert_eq!(a.diff_ids, b.diff_ids);
    assert_eq!(a.diff_ids, [sha256(&tar)]);
    let history = a.config.history().as_ref().unwrap();
    assert_eq!(history[0].comment().as_deref(), Some("Imported from -"));
    assert_eq!(names(&e.root.join("layers")).len(), 1, "the layer is shared");
}

#[test]
fn resolve_accepts_names_ids_and_prefixes() {
    let mut e = env();
    let id = e
        .store
        .import(
            &mut e.conn,
            &rootfs_tar("x")[..],
            Some("localhost:5000/x/y:tag"),
            None,
            None,
        )
        .unwrap();
    let hex = &id[7..];
    for reference in [
        "localhost:5000/x/y:tag",
        id.as_str(),
        hex,
        &hex[..12],
        &hex[..1],
        &format!("sha256:{}", &hex[..12]),
    ] {
        assert_eq!(e.store.resolve(&e.conn, reference).unwrap().id, id, "{reference}");
    }
    e.store
        .import(
            &mut e.conn,
            &rootfs_tar("y")[..],
            Some("busybox:1.36"),
            None,
            None,
        )
        .unwrap();
    for (reference, tag) in [
        ("busybox:1.36", "busybox:1.36"),
        ("docker.io/library/busybox:1.36", "busybox:1.36"),
    ] {
        assert_eq!(e.store.resolve(&e.conn, reference).unwrap().tags, [tag]);
    }

    let err = e.store.resolve(&e.conn, "bsybox").unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }));
    assert_eq!(err.to_string(), "image \"bsybox\" not found");
    assert!(
        matches!(
            e.store.resolve(&e.conn, "busybox"),
            Err(Error::ImageNotFound { .. })
        ),
        "no :latest"
    );
    let err = e.store.resolve(&e.conn, "Busybox").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid reference format: repository name must be lowercase"
    );
    assert!(matches!(
        e.store.resolve(&e.conn, "sha256:zz"),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(matches!(
        e.store.resolve(&e.conn, &"0".repeat(64)),
        Err(Error::ImageNotFound { .. })
    ));
}

#[test]
fn names_win_over_id_prefixes_and_ambiguous_prefixes_fail() {
    let mut e = env();
    let tar = rootfs_tar("amb");
    // 17 images: two of them must share their first hex digit.
    let mut ids = Vec::new();
    for _ in 0..17 {
        ids.push(e.store.import(&mut e.conn, &tar[..], None, None, None).unwrap());
    }
    let shared = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|p| ids.iter().filter(|id| id[7..].starts_with(p.as_str())).count() > 1)
        .unwrap();
    let err = e.store.resolve(&e.conn, &shared).unwrap_err();
    assert!(matches!(err, Error::AmbiguousReference { .. }), "{err}");
    // A tag named like the prefix is found by name first.
    e.store.tag(&mut e.conn, &ids[0], &shared).unwrap();
    assert_eq!(e.store.resolve(&e.conn, &shared).unwrap().id, ids[0]);
    assert_eq!(e.store.list(&e.conn).unwrap().len(), 17);
    assert_eq!(names(&e.root.join("layers")).len(), 1);
}

#[test]
fn list_is_newest_first() {
    let mut e = env();
    let a = e
        .store
        .import(&mut e.conn, &rootfs_tar("a")[..], Some("a"), None, None)
        .unwrap();
    let b = e
        .store
        .import(&mut e.conn, &rootfs_tar("b")[..], Some("b"), None, None)
        .unwrap();
    let c = e
        .store
        .import(&mut e.conn, &rootfs_tar("c")[..], None, None, None)
        .unwrap();
    let ids: Vec<String> = e.store.list(&e.conn).unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, [c, b, a]);
}

#[test]
fn tag_moves_and_validates() {
    let mut e = env();
    let a = e
        .store
        .import(&mut e.conn, &rootfs_tar("a")[..], Some("app:1"), None, None)
        .unwrap();
    let b = e
        .store
        .import(&mut e.conn, &rootfs_tar("b")[..], None, None, None)
        .unwrap();
    e.store.tag(&mut e.conn, "app:1", "app:latest").unwrap();
    e.store
        .tag(&mut e.conn, "app:1", "docker.io/library/other")
        .unwrap();
    assert_eq!(
        e.store.resolve(&e.conn, &a).unwrap().tags,
        ["app:1", "app:latest", "other:latest"]
    );
    // Tagging another image with an existing tag moves it.
    e.store.tag(&mut e.conn, &b[7..19], "app").unwrap();
    assert_eq!(e.store.resolve(&e.conn, "app").unwrap().id, b);
    assert_eq!(
        e.store.resolve(&e.conn, &a).unwrap().tags,
        ["app:1", "other:latest"]
    );

    let err = e.store.tag(&mut e.conn, "app", "Bad").unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }));
    let digest = format!("x@sha256:{}", "a".repeat(64));
    assert!(matches!(
        e.store.tag(&mut e.conn, "app", &digest),
        Err(Error::InvalidReference { .. })
    ));
    assert!(matches!(
        e.store.tag(&mut e.conn, "nope", "x"),
        Err(Error::ImageNotFound { .. })
    ));
}

#[test]
fn remove_untags_then_deletes() {
    let mut e = env();
    let tar = rootfs_tar("rm");
    let id = e
        .store
        .import(&mut e.conn, &tar[..], Some("busybox"), None, None)
        .unwrap();
    e.store.tag(&mut e.conn, "busybox", "mybox:1").unwrap();
    let diff_id = sha256(&tar);

    // Another tag remains: untag only.
    assert_eq!(
        e.store.remove(&mut e.conn, "mybox:1", false, &no_use).unwrap(),
        ["Untagged: mybox:1"]
    );
    assert_eq!(e.store.resolve(&e.conn, &id).unwrap().tags, ["busybox:latest"]);

    // The last tag: untag and delete, layer included.
    let lines = e.store.remove(&mut e.conn, "busybox", false, &no_use).unwrap();
    assert_eq!(
        lines,
        [
            "Untagged: busybox:latest".to_string(),
            format!("Deleted: {id}"),
            format!("Deleted: {diff_id}")
        ]
    );
    assert!(matches!(
        e.store.resolve(&e.conn, &id),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(!e.store.layer_dir(&diff_id).exists());
    assert!(!e.store.blob_path(&diff_id).unwrap().exists());
    assert!(!e.store.blob_path(&id).unwrap().exists());
    assert!(e.store.list(&e.conn).unwrap().is_empty());
    assert_clean(&e.root);
    assert!(matches!(
        e.store.remove(&mut e.conn, "busybox", false, &no_use),
        Err(Error::ImageNotFound { .. })
    ));
}

#[test]
fn shared_layers_outlive_one_image() {
    let mut e = env();
    let tar = rootfs_tar("shared");
    let diff_id = sha256(&tar);
    let a = e
        .store
        .import(&mut e.conn, &tar[..], Some("a"), None, None)
        .unwrap();
    let b = e
        .store
        .import(&mut e.conn, &tar[..], Some("b"), None, None)
        .unwrap();
    assert_ne!(a, b, "created times differ, so configs differ");

    let lines = e.store.remove(&mut e.conn, "a", false, &no_use).unwrap();
    assert_eq!(lines, ["Untagged: a:latest".to_string(), format!("Deleted: {a}")]);
    assert!(e.store.layer_dir(&diff_id).join("etc/motd").exists());
    assert!(e.store.blob_path(&diff_id).unwrap().exists());
    assert_eq!(
        e.store.resolve(&e.conn, "b").unwrap().diff_ids,
        std::slice::from_ref(&diff_id)
    );

    let lines = e.store.remove(&mut e.conn, &b, false, &no_use).unwrap();
    assert_eq!(
        lines,
        [
            "Untagged: b:latest".to_string(),
            format!("Deleted: {b}"),
            format!("Deleted: {diff_id}")
        ]
    );
    assert!(!e.store.layer_dir(&diff_id).exists());
    assert_clean(&e.root);
}

#[test]
fn remove_by_id_needs_force_for_several_repositories() {
    let mut e = env();
    let id = e
        .store
        .import(&mut e.conn, &rootfs_tar("f")[..], Some("one"), None, None)
        .unwrap();
    e.store.tag(&mut e.conn, "one", "two").unwrap();
    let err = e
        .store
        .remove(&mut e.conn, &id[7..19], false, &no_use)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            &id[7..19]
        )
    );
    let lines = e.store.remove(&mut e.conn, &id[7..19], true, &no_use).unwrap();
    assert_eq!(
        &lines[..3],
        [
            "Untagged: one:latest",
            "Untagged: two:latest",
            &format!("Deleted: {id}")
        ]
    );
    assert!(e.store.list(&e.conn).unwrap().is_empty());
}

#[test]
fn images_in_use_are_kept() {
    let mut e = env();
    let id = e
        .store
        .import(&mut e.conn, &rootfs_tar("use")[..], Some("web"), None, None)
        .unwrap();
    let used = |image: &str| (image == id).then(|| "web-1".to_string());

    let err = e.store.remove(&mut e.conn, "web", false, &used).unwrap_err();
    assert!(
        matches!(&err, Error::ImageInUse { container, .. } if container == "web-1"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "conflict: unable to delete web (must be forced) - image is being used by container web-1"
    );
    let err = e.store.remove(&mut e.conn, &id, false, &used).unwrap_err();
    assert!(matches!(err, Error::ImageInUse { .. }));
    assert_eq!(
        e.store.resolve(&e.conn, "web").unwrap().id,
        id,
        "a refused removal changes nothing"
    );

    // Forced: untagged, but the image stays (dangling) because a container's rootfs uses its layers.
    assert_eq!(
        e.store.remove(&mut e.conn, "web", true, &used).unwrap(),
        ["Untagged: web:latest"]
    );
    let image = e.store.resolve(&e.conn, &id).unwrap();
    assert!(image.tags.is_empty());
    assert!(e.store.layer_dir(&image.diff_ids[0]).exists());
    // Once the container is gone it can be deleted by ID.
    let lines = e.store.remove(&mut e.conn, &id, false, &no_use).unwrap();
    assert_eq!(lines[0], format!("Deleted: {id}"));
}

#[test]
fn bad_imports_leave_nothing() {
    let mut e = env();
    let cases: Vec<Vec<u8>> = vec![
        b"this is not a tar archive at all, just some text".repeat(20),
        TarBuilder::new()
            .file("ok", b"x")
            .file("../escape", b"x")
            .finish(),
        rootfs_tar("cut")[..700].to_vec(),
        Vec::new(),
    ];
    for tar in cases {
        let err = e
            .store
            .import(&mut e.conn, &tar[..], Some("bad"), None, None)
            .unwrap_err();
        assert!(
            matches!(err, Error::BadTar { .. } | Error::UnsafeEntry { .. }),
            "{err}"
        );
        assert!(names(&e.root.join("layers")).is_empty());
        assert!(names(&e.root.join("blobs/sha256")).is_empty());
    }
    assert!(e.store.list(&e.conn).unwrap().is_empty());
    let err = e
        .store
        .import(&mut e.conn, &rootfs_tar("x")[..], Some("UPPER"), None, None)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }));
}

fn commit_upper(upper: &Path) {
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/new"), b"added").unwrap();
    // A deleted lower file, as overlay records it.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("etc/motd"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap();
}

#[test]
fn commit_adds_a_layer_with_history() {
    let mut e = env();
    let base_tar = rootfs_tar("base");
    e.store
        .import(
            &mut e.conn,
            &base_tar[..],
            Some("base"),
            None,
            Some("base import"),
        )
        .unwrap();
    let parent = e.store.resolve(&e.conn, "base").unwrap();
    let upper = e._tmp.path().join("upper");
    commit_upper(&upper);

    let config: Config = ConfigBuilder::default()
        .cmd(vec!["sh".into(), "-c".into(), "echo hi".into()])
        .build()
        .unwrap();
    let id = e
        .store
        .commit(
            &mut e.conn,
            &parent,
            &upper,
            config,
            Some("derived:v2"),
            Some("my change"),
            Some("Ann <a@b>"),
        )
        .unwrap();
    let image = e.store.resolve(&e.conn, "derived:v2").unwrap();
    assert_eq!(image.id, id);
    assert_eq!(image.diff_ids.len(), 2);
    assert_eq!(image.diff_ids[0], parent.diff_ids[0]);
    // The new diff_id is the sha256 of the stored layer tar, which is what write_layer_tar writes.
    let blob = fs::read(e.store.blob_path(&image.diff_ids[1]).unwrap()).unwrap();
    assert_eq!(sha256(&blob), image.diff_ids[1]);
    let mut expected = Vec::new();
    berth_image::diff::write_layer_tar(&upper, &mut expected).unwrap();
    assert_eq!(blob, expected);
    let layer = e.store.layer_dir(&image.diff_ids[1]);
    assert_eq!(fs::read(layer.join("etc/new")).unwrap(), b"added");
    assert_eq!(fs::symlink_metadata(layer.join("etc/motd")).unwrap().rdev(), 0);
    assert_eq!(
        image.lower_dirs(&e.store),
        [layer, e.store.layer_dir(&parent.diff_ids[0])]
    );
    assert_eq!(image.size, parent.size + 5);

    let history = image.config.history().as_ref().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].comment().as_deref(), Some("base import"));
    let last = &history[1];
    assert_eq!(last.comment().as_deref(), Some("my change"));
    assert_eq!(last.author().as_deref(), Some("Ann <a@b>"));
    assert_eq!(last.created_by().as_deref(), Some("sh -c echo hi"));
    assert_eq!(last.empty_layer(), None);
    assert_eq!(image.config.author().as_deref(), Some("Ann <a@b>"));
    assert_eq!(
        image.config.config().as_ref().unwrap().cmd().as_ref().unwrap()[0],
        "sh"
    );
    assert_eq!(&image.config.rootfs().diff_ids()[..], &image.diff_ids[..]);

    // Removing the parent keeps the layer the child shares.
    let lines = e.store.remove(&mut e.conn, "base", false, &no_use).unwrap();
    assert_eq!(
        lines,
        [
            "Untagged: base:latest".to_string(),
            format!("Deleted: {}", parent.id)
        ]
    );
    assert!(e.store.layer_dir(&parent.diff_ids[0]).exists());
    // Removing the child releases both, printing docker's chain IDs (top first).
    let lines = e.store.remove(&mut e.conn, "derived:v2", false, &no_use).unwrap();
    let chain1 = sha256(format!("{} {}", image.diff_ids[0], image.diff_ids[1]).as_bytes());
    assert_eq!(
        &lines[2..],
        [
            format!("Deleted: {chain1}"),
            format!("Deleted: {}", image.diff_ids[0])
        ]
    );
    assert!(names(&e.root.join("layers")).is_empty());
    assert!(names(&e.root.join("blobs/sha256")).is_empty());
}

#[test]
fn empty_commit_adds_only_history() {
    let mut e = env();
    e.store
        .import(&mut e.conn, &rootfs_tar("e")[..], Some("base"), None, None)
        .unwrap();
    let parent = e.store.resolve(&e.conn, "base").unwrap();
    let upper = e._tmp.path().join("empty-upper");
    fs::create_dir(&upper).unwrap();
    let id = e
        .store
        .commit(&mut e.conn, &parent, &upper, Config::default(), None, None, None)
        .unwrap();
    let image: Image = e.store.resolve(&e.conn, &id).unwrap();
    assert_eq!(image.diff_ids, parent.diff_ids);
    assert!(image.tags.is_empty());
    let history = image.config.history().as_ref().unwrap();
    assert_eq!(history.last().unwrap().empty_layer(), Some(true));
    assert!(!e.store.layer_dir(EMPTY_LAYER_DIFF_ID).exists());
    assert_clean(&e.root);
}

#[test]
fn sweep_cleans_what_crashes_leave() {
    let mut e = env();
    let tar = rootfs_tar("sweep");
    e.store
        .import(&mut e.conn, &tar[..], Some("keep"), None, None)
        .unwrap();
    let diff_id = sha256(&tar);
    let hex = &diff_id[7..];
    let layers = e.root.join("layers");
    // A crashed import (pid that cannot exist), a live one (ours), an orphan layer, and a removal that
    // moved a still-referenced layer aside but never committed.
    fs::create_dir(layers.join(".tmp-4194304999-0-0")).unwrap();
    fs::create_dir(layers.join(format!(".tmp-{}-99-0", std::process::id()))).unwrap();
    fs::create_dir(layers.join("ab".repeat(32))).unwrap();
    fs::rename(
        layers.join(hex),
        layers.join(format!(".trash-{hex}.4194304999-0-0")),
    )
    .unwrap();

    e.store.sweep(&mut e.conn).unwrap();
    let mut want = vec![format!(".tmp-{}-99-0", std::process::id()), hex.to_string()];
    want.sort();
    assert_eq!(names(&layers), want);
    assert!(layers.join(hex).join("etc/motd").exists());
}

#[test]
fn concurrent_imports_share_layers_safely() {
    let e = env();
    let dir = e._tmp.path().to_path_buf();
    let tar = rootfs_tar("race");
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let (dir, tar, root) = (dir.clone(), tar.clone(), e.root.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&dir);
                let store = Store::open(&root).unwrap();
                store
                    .import(&mut conn, &tar[..], Some(&format!("race:{i}")), None, None)
                    .unwrap();
                if i % 2 == 0 {
                    store
                        .remove(&mut conn, &format!("race:{i}"), false, &no_use)
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let images = e.store.list(&e.conn).unwrap();
    assert_eq!(images.len(), 3);
    for image in images {
        assert!(e.store.layer_dir(&image.diff_ids[0]).join("etc/motd").exists());
    }
    assert_clean(&e.root);
}

#[test]
fn digest_references_resolve_and_go_with_their_last_tag() {
    let mut e = env();
    let id = e
        .store
        .import(&mut e.conn, &rootfs_tar("dg")[..], Some("busybox"), None, None)
        .unwrap();
    // Pull records repo digests; this crate's own table, filled by hand here.
    let digest_ref = format!("busybox@sha256:{}", "c".repeat(64));
    e.conn
        .execute(
            "INSERT INTO image_digests (name, image_id) VALUES (?1, ?2)",
            [&digest_ref, &id],
        )
        .unwrap();
    assert_eq!(e.store.resolve(&e.conn, &digest_ref).unwrap().id, id);
    let full = format!("docker.io/library/{digest_ref}");
    assert_eq!(e.store.resolve(&e.conn, &full).unwrap().id, id);

    // Only a same-repository digest remains after the tag: it does not keep the image alive.
    let lines = e.store.remove(&mut e.conn, "busybox", false, &no_use).unwrap();
    assert_eq!(
        &lines[..3],
        [
            "Untagged: busybox:latest".to_string(),
            format!("Untagged: {digest_ref}"),
            format!("Deleted: {id}")
        ]
    );
    assert!(e.store.list(&e.conn).unwrap().is_empty());
}

#[test]
fn a_full_disk_is_an_io_error_not_a_bad_tar() {
    /// Unmounts even when an assertion fails.
    struct Mounted<'a>(&'a Path);
    impl Drop for Mounted<'_> {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("small");
    fs::create_dir(&root).unwrap();
    let flags = rustix::mount::MountFlags::empty();
    if rustix::mount::mount("tmpfs", &root, "tmpfs", flags, Some(c"size=256k")).is_err() {
        eprintln!("skipped: cannot mount tmpfs");
        return;
    }
    let _mounted = Mounted(&root);
    let store = Store::open(&root.join("image")).unwrap();
    let mut conn = connect(tmp.path());
    let big = TarBuilder::new().file("big", &vec![7u8; 1 << 20]).finish();
    let err = store
        .import(&mut conn, &big[..], Some("big"), None, None)
        .unwrap_err();
    assert!(matches!(&err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_clean(&root.join("image"));
    assert!(names(&root.join("image/layers")).is_empty());
}
