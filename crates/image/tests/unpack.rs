//! Layer unpacking: hostile archives are refused without touching anything outside the layer, and
//! honest ones come out with the metadata and whiteouts overlay needs.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::unpack::unpack_layer;
use berth_image::Error;
use common::{names, snapshot, xattr, TarBuilder};
use tar::{EntryType, Header};

/// Unpacks `tar` into `<tmp>/layer` (created by the call) and returns the result.
fn unpack(tmp: &Path, tar: &[u8]) -> berth_image::Result<u64> {
    unpack_layer(tar, &tmp.join("layer"))
}

/// The call failed as unsafe, left no layer directory, and `tmp` holds only what the test put there.
fn assert_refused(tmp: &Path, result: berth_image::Result<u64>, expected_names: &[&str]) {
    match result {
        Err(Error::UnsafeEntry { .. }) => {}
        other => panic!("expected an unsafe entry error, got {other:?}"),
    }
    assert!(!tmp.join("layer").exists(), "the layer directory must be removed");
    assert_eq!(names(tmp), expected_names, "nothing may appear next to the layer");
}

#[test]
fn dotdot_paths_are_refused() {
    for name in ["../x", "a/../../x", "./../x", "a/b/../../../x"] {
        let tmp = tempfile::tempdir().unwrap();
        let tar = TarBuilder::new().file("ok", b"fine").file(name, b"evil").finish();
        let result = unpack(tmp.path(), &tar);
        let err = result.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(name), "error should name the entry: {err}");
        assert_refused(tmp.path(), result, &[]);
    }
}

#[test]
fn dotdot_hardlink_targets_are_refused() {
    for target in ["../../x", "../x", "a/../../x"] {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("x"), b"secret").unwrap();
        let tar = TarBuilder::new().file("a", b"").hardlink("h", target).finish();
        assert_refused(tmp.path(), unpack(tmp.path(), &tar), &["x"]);
        assert_eq!(fs::metadata(tmp.path().join("x")).unwrap().nlink(), 1);
    }
}

#[test]
fn writes_through_absolute_symlinks_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let tar = TarBuilder::new()
        .symlink("evil", outside.to_str().unwrap())
        .file("evil/passwd", b"owned")
        .finish();
    let result = unpack(tmp.path(), &tar);
    let err = result.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("evil/passwd") && err.contains("absolute"), "{err}");
    assert_refused(tmp.path(), result, &["outside"]);
    assert!(names(&outside).is_empty());
}

#[test]
fn writes_through_symlink_to_host_etc_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = format!("berth-unpack-test-{}", std::process::id());
    let tar = TarBuilder::new()
        .symlink("evil", "/etc")
        .file(&format!("evil/{probe}"), b"owned")
        .finish();
    assert_refused(tmp.path(), unpack(tmp.path(), &tar), &[]);
    assert!(!Path::new("/etc").join(&probe).exists());
}

#[test]
fn writes_through_climbing_symlinks_are_refused() {
    // `up -> ..` leads to the directory holding the layer, `up2 -> ../..` above that.
    let cases: [(&str, &str); 4] = [
        ("up", ".."),
        ("up", "../.."),
        ("up", "./../layer/../.."),
        ("up", "a/../../x"),
    ];
    for (link, target) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let tar = TarBuilder::new()
            .dir("a")
            .symlink(link, target)
            .file(&format!("{link}/x"), b"evil")
            .finish();
        assert_refused(tmp.path(), unpack(tmp.path(), &tar), &[]);
        assert!(!tmp.path().parent().unwrap().join("x").exists());
    }
}

#[test]
fn symlink_chains_and_nested_climbs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // a -> b -> c/.. -> ... ends above the root
    let tar = TarBuilder::new()
        .dir("c")
        .symlink("c/d", "../..")
        .symlink("b", "c/d")
        .symlink("a", "b")
        .file("a/x", b"evil")
        .finish();
    assert_refused(tmp.path(), unpack(tmp.path(), &tar), &[]);
}

#[test]
fn hardlinks_to_host_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new().hardlink("passwd", "/etc/passwd").finish();
    let result = unpack(tmp.path(), &tar);
    // "/etc/passwd" means <layer>/etc/passwd, which does not exist: never the host's file.
    assert!(matches!(result, Err(Error::BadTar { .. })), "{result:?}");
    assert!(!tmp.path().join("layer").exists());
}

#[test]
fn hardlinks_through_escaping_symlinks_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    for target in [outside.to_str().unwrap(), "..", "../outside"] {
        let tar = TarBuilder::new()
            .symlink("evil", target)
            .hardlink("h", "evil/secret")
            .finish();
        assert_refused(tmp.path(), unpack(tmp.path(), &tar), &["outside"]);
        assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1);
    }
}

#[test]
fn entries_replacing_a_symlink_do_not_write_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("target"), b"original").unwrap();
    let tar = TarBuilder::new()
        .symlink("x", outside.join("target").to_str().unwrap())
        .file("x", b"replaced")
        .symlink("d", outside.to_str().unwrap())
        .dir("d")
        .file("d/f", b"inside")
        .finish();
    unpack(tmp.path(), &tar).unwrap();
    let layer = tmp.path().join("layer");
    assert_eq!(fs::read(layer.join("x")).unwrap(), b"replaced");
    assert!(fs::symlink_metadata(layer.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(layer.join("d/f")).unwrap(), b"inside");
    assert_eq!(fs::read(outside.join("target")).unwrap(), b"original");
    assert_eq!(names(&outside), ["target"]);
}

#[test]
fn symlink_loops_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"")
        .finish();
    assert!(unpack(tmp.path(), &tar).is_err());
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn relative_symlinks_inside_are_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new()
        .dir("usr")
        .dir("usr/lib")
        .symlink("lib", "usr/lib")
        .file("lib/libc.so", b"elf")
        .dir("a")
        .symlink("a/b", "../c")
        .file("a/b/f", b"via a/b")
        .symlink("abs", "/usr/lib")
        .finish();
    let size = unpack(tmp.path(), &tar).unwrap();
    let layer = tmp.path().join("layer");
    assert_eq!(fs::read(layer.join("usr/lib/libc.so")).unwrap(), b"elf");
    assert!(fs::symlink_metadata(layer.join("lib"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(layer.join("c/f")).unwrap(), b"via a/b");
    // Absolute symlink targets are stored as they are; only writing through them is refused.
    assert_eq!(fs::read_link(layer.join("abs")).unwrap(), Path::new("/usr/lib"));
    assert_eq!(size, 3 + 7);
}

#[test]
fn leading_slashes_are_stripped() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new()
        .file("/etc/hostname", b"box")
        .file("./a/./b", b"b")
        .finish();
    unpack(tmp.path(), &tar).unwrap();
    assert_eq!(fs::read(tmp.path().join("layer/etc/hostname")).unwrap(), b"box");
    assert_eq!(fs::read(tmp.path().join("layer/a/b")).unwrap(), b"b");
}

#[test]
fn garbage_and_truncated_input_is_bad_tar() {
    let good = TarBuilder::new()
        .file("a", &[1u8; 3000])
        .file("b", b"bbb")
        .finish();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random", random),
        ("empty", Vec::new()),
        ("cut in data", good[..512 + 1000].to_vec()),
        ("cut in header", good[..300].to_vec()),
        ("cut in second header", good[..512 + 3072 + 100].to_vec()),
        ("bad gzip", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]),
    ];
    for (what, bytes) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let result = unpack(tmp.path(), &bytes);
        assert!(matches!(result, Err(Error::BadTar { .. })), "{what}: {result:?}");
        assert!(names(tmp.path()).is_empty(), "{what}: nothing may be left");
    }
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new()
        .dir("etc")
        .file("etc/.wh.motd", b"")
        .dir("var")
        .file("var/.wh..wh..opq", b"")
        .file("var/new", b"n")
        .file(".wh..wh.plnk", b"")
        .file("opt/.wh..wh..opq", b"")
        .file("keep", b"k")
        .file(".wh.keep", b"")
        .finish();
    unpack(tmp.path(), &tar).unwrap();
    let layer = tmp.path().join("layer");
    let motd = fs::symlink_metadata(layer.join("etc/motd")).unwrap();
    assert!(motd.file_type().is_char_device());
    assert_eq!(motd.rdev(), 0);
    assert_eq!(
        xattr(&layer.join("var"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        xattr(&layer.join("opt"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(xattr(&layer.join("etc"), "trusted.overlay.opaque"), None);
    assert_eq!(names(&layer), ["etc", "keep", "opt", "var"]);
    assert_eq!(names(&layer.join("var")), ["new"]);
    // A whiteout never hides content of its own layer (OCI image spec).
    assert_eq!(fs::read(layer.join("keep")).unwrap(), b"k");
}

#[test]
fn metadata_is_preserved() {
    let tmp = tempfile::tempdir().unwrap();
    let mut setuid = Header::new_gnu();
    setuid.set_path("bin/su").unwrap();
    setuid.set_entry_type(EntryType::Regular);
    setuid.set_mode(0o4755);
    setuid.set_uid(0);
    setuid.set_gid(0);
    setuid.set_mtime(1_234_567_890);
    setuid.set_size(2);
    setuid.set_cksum();
    let mut owned = Header::new_gnu();
    owned.set_path("home/user").unwrap();
    owned.set_entry_type(EntryType::Directory);
    owned.set_mode(0o1750);
    owned.set_uid(1234);
    owned.set_gid(5678);
    owned.set_mtime(1_111_111_111);
    owned.set_size(0);
    owned.set_cksum();
    let mut null = Header::new_gnu();
    null.set_path("dev/null").unwrap();
    null.set_entry_type(EntryType::Char);
    null.set_mode(0o666);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    null.set_size(0);
    null.set_cksum();
    let mut fifo = Header::new_gnu();
    fifo.set_path("run/fifo").unwrap();
    fifo.set_entry_type(EntryType::Fifo);
    fifo.set_mode(0o620);
    fifo.set_uid(7);
    fifo.set_size(0);
    fifo.set_cksum();
    let cap = [1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let tar = TarBuilder::new()
        .header(&setuid, b"su")
        .header(&owned, b"")
        .file("home/user/.profile", b"x")
        .header(&null, b"")
        .header(&fifo, b"")
        .pax(&[
            ("SCHILY.xattr.security.capability", &cap),
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("mtime", b"1500000000.25"),
            ("uid", b"3000000"),
        ])
        .file("bin/ping", b"ping")
        .symlink("bin/sh", "busybox")
        .finish();
    let size = unpack(tmp.path(), &tar).unwrap();
    assert_eq!(size, 2 + 1 + 4);
    let layer = tmp.path().join("layer");
    let su = fs::metadata(layer.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    assert_eq!(su.mtime(), 1_234_567_890);
    let home = fs::metadata(layer.join("home/user")).unwrap();
    assert_eq!(
        (home.mode() & 0o7777, home.uid(), home.gid()),
        (0o1750, 1234, 5678)
    );
    assert_eq!(
        home.mtime(),
        1_111_111_111,
        "directory times are set after their children"
    );
    let null = fs::metadata(layer.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    let fifo = fs::metadata(layer.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!((fifo.mode() & 0o7777, fifo.uid()), (0o620, 7));
    let ping = layer.join("bin/ping");
    assert_eq!(xattr(&ping, "security.capability").as_deref(), Some(&cap[..]));
    assert_eq!(xattr(&ping, "user.note").as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        xattr(&ping, "trusted.overlay.redirect"),
        None,
        "overlay xattrs come only from whiteouts"
    );
    let meta = fs::metadata(&ping).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec(), meta.uid()),
        (1_500_000_000, 250_000_000, 3_000_000)
    );
    assert_eq!(fs::read_link(layer.join("bin/sh")).unwrap(), Path::new("busybox"));
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new()
        .file("a", b"file")
        .dir("a")
        .file("a/inner", b"i")
        .dir("b")
        .file("b/inner", b"i")
        .file("b", b"now a file")
        .dir("c")
        .file("c/one", b"1")
        .dir("c")
        .file("c/two", b"2")
        .file("d", b"old")
        .file("d", b"new")
        .file("e", b"target")
        .hardlink("f", "e")
        .hardlink("e2", "./e")
        .finish();
    unpack(tmp.path(), &tar).unwrap();
    let layer = tmp.path().join("layer");
    assert_eq!(fs::read(layer.join("a/inner")).unwrap(), b"i");
    assert_eq!(fs::read(layer.join("b")).unwrap(), b"now a file");
    assert_eq!(names(&layer.join("c")), ["one", "two"]);
    assert_eq!(fs::read(layer.join("d")).unwrap(), b"new");
    assert_eq!(fs::metadata(layer.join("e")).unwrap().nlink(), 3);
    assert_eq!(
        fs::metadata(layer.join("f")).unwrap().ino(),
        fs::metadata(layer.join("e")).unwrap().ino()
    );
}

#[test]
fn unpacking_into_an_existing_directory_keeps_it_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let tar = TarBuilder::new().file("ok", b"").file("../x", b"").finish();
    assert!(unpack_layer(&tar[..], &dest).is_err());
    assert!(
        dest.is_dir(),
        "a directory the caller made is the caller's to clean"
    );
    assert_eq!(names(tmp.path()), ["layer"]);
}

#[test]
fn gzip_layers_are_detected() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new().file("hello", b"world").finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    unpack(tmp.path(), &gz.finish().unwrap()).unwrap();
    assert_eq!(
        snapshot(&tmp.path().join("layer"))["hello"].content.as_deref(),
        Some(&b"world"[..])
    );
}
