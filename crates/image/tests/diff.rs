//! Upper dir → layer tar → unpacked layer gives the same tree; export writes plain trees.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use berth_image::diff::write_layer_tar;
use berth_image::export::write_dir_tar;
use berth_image::unpack::unpack_layer;
use common::{snapshot, xattr};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

fn mknod(path: &Path, file_type: FileType, mode: u32, major: u32, minor: u32) {
    rustix::fs::mknodat(
        CWD,
        path,
        file_type,
        Mode::from_raw_mode(mode),
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
    rustix::fs::chmodat(CWD, path, Mode::from_raw_mode(mode), AtFlags::empty()).unwrap();
}

fn set_times(path: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// An upper dir with every kind of entry a container can leave behind.
fn build_upper(upper: &Path) {
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(upper.join("etc/shadow"), b"root:*:\n").unwrap();
    chmod(&upper.join("etc/shadow"), 0o640);
    std::os::unix::fs::chown(upper.join("etc/shadow"), Some(0), Some(42)).unwrap();
    mknod(&upper.join("etc/motd"), FileType::CharacterDevice, 0, 0, 0);

    fs::create_dir_all(upper.join("var/cache/apt")).unwrap();
    fs::write(upper.join("var/cache/apt/pkg"), b"pkg").unwrap();
    rustix::fs::setxattr(
        upper.join("var/cache"),
        "trusted.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();

    fs::create_dir(upper.join("bin")).unwrap();
    fs::write(upper.join("bin/busybox"), vec![0x7f; 70_000]).unwrap();
    chmod(&upper.join("bin/busybox"), 0o4755);
    symlink("busybox", upper.join("bin/sh")).unwrap();
    fs::write(upper.join("bin/a"), b"linked").unwrap();
    fs::hard_link(upper.join("bin/a"), upper.join("bin/b")).unwrap();
    fs::write(upper.join("bin/ping"), b"ping").unwrap();
    let cap = [1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    rustix::fs::setxattr(
        upper.join("bin/ping"),
        "security.capability",
        &cap,
        XattrFlags::empty(),
    )
    .unwrap();

    fs::create_dir_all(upper.join("dev")).unwrap();
    mknod(&upper.join("dev/null"), FileType::CharacterDevice, 0o666, 1, 3);
    fs::create_dir_all(upper.join("run")).unwrap();
    mknod(&upper.join("run/fifo"), FileType::Fifo, 0o600, 0, 0);

    fs::create_dir_all(upper.join("home/user")).unwrap();
    fs::write(upper.join("home/user/.profile"), b"export A=1\n").unwrap();
    std::os::unix::fs::chown(upper.join("home/user"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(upper.join("home/user/.profile"), Some(1000), Some(1000)).unwrap();

    let long_dir = upper.join("long").join("d".repeat(90)).join("e".repeat(90));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(100)), b"long").unwrap();
    symlink("t".repeat(150), upper.join("long/link")).unwrap();
    // Sockets belong to a live process and are not archived.
    let _socket = std::os::unix::net::UnixListener::bind(upper.join("run/sock")).unwrap();

    for dir in [
        "etc",
        "var",
        "var/cache",
        "var/cache/apt",
        "bin",
        "dev",
        "run",
        "home",
        "home/user",
        "long",
    ] {
        set_times(&upper.join(dir), 1_600_000_000);
    }
}

#[test]
fn layer_tar_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir(&upper).unwrap();
    build_upper(&upper);

    let mut tar = Vec::new();
    write_layer_tar(&upper, &mut tar).unwrap();
    let dest = tmp.path().join("layer");
    let size = unpack_layer(&tar[..], &dest).unwrap();

    let mut want = snapshot(&upper);
    want.remove("run/sock");
    let got = snapshot(&dest);
    for (path, node) in &want {
        assert_eq!(got.get(path), Some(node), "{path}");
    }
    assert_eq!(got.len(), want.len(), "{:?}", got.keys().collect::<Vec<_>>());
    assert_eq!(
        xattr(&dest.join("bin/ping"), "security.capability").map(|v| v.len()),
        Some(20)
    );
    assert!(size >= 70_000);

    // Same tree, same bytes: the diff_id of a commit is reproducible.
    let mut again = Vec::new();
    write_layer_tar(&upper, &mut again).unwrap();
    assert_eq!(tar, again);
}

#[test]
fn layer_tar_uses_oci_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path();
    fs::create_dir(upper.join("etc")).unwrap();
    mknod(&upper.join("etc/motd"), FileType::CharacterDevice, 0, 0, 0);
    fs::create_dir(upper.join("opt")).unwrap();
    rustix::fs::setxattr(
        upper.join("opt"),
        "trusted.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    let mut tar = Vec::new();
    write_layer_tar(upper, &mut tar).unwrap();
    let entries = entry_names(&tar);
    assert_eq!(entries, ["etc", "etc/.wh.motd", "opt", "opt/.wh..wh..opq"]);
}

#[test]
fn incomplete_overlay_diffs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("moved")).unwrap();
    rustix::fs::setxattr(
        tmp.path().join("moved"),
        "trusted.overlay.redirect",
        b"/old",
        XattrFlags::empty(),
    )
    .unwrap();
    let err = write_layer_tar(tmp.path(), &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("redirect_dir=off"), "{err}");
}

#[test]
fn empty_upper_gives_the_empty_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = Vec::new();
    write_layer_tar(tmp.path(), &mut tar).unwrap();
    assert_eq!(common::sha256(&tar), berth_image::digest::EMPTY_LAYER_DIFF_ID);
}

#[test]
fn export_writes_a_plain_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(root.join("etc/hostname"), b"box").unwrap();
    mknod(
        &root.join("etc/stale-whiteout"),
        FileType::CharacterDevice,
        0,
        0,
        0,
    );
    rustix::fs::setxattr(
        root.join("etc"),
        "trusted.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    symlink("/proc/self/mounts", root.join("etc/mtab")).unwrap();
    fs::create_dir(root.join("mnt")).unwrap();
    let mounted = rustix::mount::mount(
        "tmpfs",
        root.join("mnt"),
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .is_ok();
    if mounted {
        fs::write(root.join("mnt/volume-data"), b"not part of the rootfs").unwrap();
    }
    let mut tar = Vec::new();
    let result = write_dir_tar(root, &mut tar);
    if mounted {
        rustix::mount::unmount(root.join("mnt"), rustix::mount::UnmountFlags::DETACH).unwrap();
    }
    result.unwrap();
    assert_eq!(entry_names(&tar), ["etc", "etc/hostname", "etc/mtab", "mnt"]);

    // What export writes, import reads back.
    let dest = tmp.path().join("back");
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(fs::read(dest.join("etc/hostname")).unwrap(), b"box");
    assert_eq!(
        fs::read_link(dest.join("etc/mtab")).unwrap(),
        Path::new("/proc/self/mounts")
    );
}

fn entry_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}
