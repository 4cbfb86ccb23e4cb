//! Pulls and loads that cannot finish: killed mid-transfer (a fake registry in this process stalls a
//! large layer), and a berth root on a tmpfs too small for the image. Neither may leave an image or a
//! layer that `images` lists or `run` uses, and the root must keep working. Only loopback is contacted.

use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "common/registry.rs"]
mod registry;
use registry::*;

/// busybox plus a layer of `size` incompressible bytes in `/big`, served by a fake registry as
/// `REPO:1`; the layer tar comes back too.
fn big_image(repo: &str, size: usize) -> (FakeRegistry, Vec<u8>) {
    let base = std::fs::read(image_tar()).unwrap();
    let big = tar(&[Entry::File("big", &noise(size, size as u64))]);
    let (manifest, config) = plain_image(&[&base, &big]);
    let fake = FakeRegistry::start(repo, "1", &manifest, vec![config, base, big.clone()]);
    (fake, big)
}

fn assert_nothing_usable(b: &Berth, reference: &str) {
    assert!(b.image_ids().trim().is_empty(), "an image was stored");
    let out = b.run(&["run", "--rm", reference, "true"]);
    assert_eq!(out.code, 125, "run of a half-pulled image: {out:?}");
    // Only temporary names, never a final layer or blob name.
    let finals: Vec<String> = b
        .store_entries()
        .into_iter()
        .filter(|e| !e.rsplit('/').next().unwrap().starts_with(".tmp-"))
        .collect();
    assert!(finals.is_empty(), "content under final names: {finals:?}");
}

#[test]
fn a_killed_pull_leaves_nothing_usable_and_the_next_pull_works() {
    if !is_root() {
        return;
    }
    let (fake, big) = big_image("slow/app", 8 << 20);
    fake.stall(&sha256(&big), 1 << 20);
    let reference = format!("{}/slow/app:1", fake.host());
    let b = Berth::empty();
    let mut cmd = b.cmd(&["pull", &reference]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    wait_for("the first bytes of the large layer", || fake.stalled());
    // The transfer is under way: its content is being staged.
    wait_for("staged content", || !b.leftovers().is_empty());
    std::thread::sleep(Duration::from_millis(200));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        !b.leftovers().is_empty(),
        "the pull was not interrupted mid-transfer"
    );
    assert_nothing_usable(&b, &reference);

    // The next pull sweeps what the killed one left, and gets the whole image.
    fake.release();
    let out = b.ok(&["pull", &reference]);
    assert!(out.stdout.contains("Downloaded newer image"), "{out:?}");
    b.assert_no_leftovers();
    let out = b.ok(&["run", "--rm", &reference, "sh", "-c", "wc -c < /big"]);
    assert_eq!(out.stdout.trim(), (8 << 20).to_string());
}

#[test]
fn a_full_disk_fails_cleanly_and_the_root_still_works() {
    if !is_root() {
        return;
    }
    let disk = Tmpfs::mount("8m");
    let b = Berth::at(&disk.path().join("root"));
    let expect_no_space = |out: &Out| {
        assert_eq!(out.code, 125, "{out:?}");
        let line = out.stderr.trim();
        assert_eq!(line.lines().count(), 1, "one line: {line:?}");
        assert!(line.to_lowercase().contains("no space left"), "{line:?}");
        assert!(b.image_ids().trim().is_empty(), "an image was stored");
        assert!(
            b.store_entries().is_empty(),
            "content left: {:?}",
            b.store_entries()
        );
    };

    // A pull of an image twice the size of the disk.
    let (fake, _) = big_image("big/app", 16 << 20);
    let reference = format!("{}/big/app:1", fake.host());
    expect_no_space(&b.run(&["pull", &reference]));

    // A load of the same image, from a file and from stdin (which is first copied into the store).
    let elsewhere = Berth::empty();
    elsewhere.ok(&["pull", &reference]);
    let archive = elsewhere.dir.path().join("big.tar");
    elsewhere.ok(&["save", "-o", archive.to_str().unwrap(), &reference]);
    expect_no_space(&b.run(&["load", "-i", archive.to_str().unwrap()]));
    let mut cmd = b.cmd(&["load"]);
    cmd.stdin(std::fs::File::open(&archive).unwrap());
    let out = cmd.output().unwrap();
    expect_no_space(&Out {
        code: out.status.code().unwrap_or(-1),
        raw: Vec::new(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    });

    // The root still works: a small image fits, and runs.
    let out = b.ok(&["load", "-i", busybox_tar(&elsewhere).to_str().unwrap()]);
    assert!(out.stdout.contains("Loaded image"), "{out:?}");
    let out = b.ok(&["run", "--rm", "busybox", "echo", "fits"]);
    assert_eq!(out.stdout.trim(), "fits");
    b.assert_no_leftovers();
    drop(b);
    // Nothing of berth may hold the tmpfs now: a plain umount must work.
    let status = Command::new("umount").arg(disk.path()).status().unwrap();
    assert!(status.success(), "the tmpfs is still busy");
}

/// The busybox test image saved as a docker-archive by `b`'s berth (imported there first).
fn busybox_tar(b: &Berth) -> std::path::PathBuf {
    b.ok(&["import", image_tar().to_str().unwrap(), "busybox"]);
    let path = b.dir.path().join("busybox.tar");
    b.ok(&["save", "-o", path.to_str().unwrap(), "busybox"]);
    path
}
