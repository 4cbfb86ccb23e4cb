//! Finding cgroup v1 controller mounts in /proc/self/mountinfo.
//!
//! The directory names under /sys/fs/cgroup are a distribution convention (some hosts mount
//! "cpu,cpuacct" together and add symlinks, others mount each controller alone), so the only
//! reliable source is the super options of each `cgroup` mount.

use std::path::PathBuf;

/// The v1 controllers berth creates cgroups in, in the order it handles them.
///
/// Named hierarchies such as "name=systemd" carry no controller and are deliberately absent.
pub(crate) const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio",
];

/// Maps each known v1 controller to its mount point, in [`V1_CONTROLLERS`] order.
///
/// A mount carrying several controllers ("cpu,cpuacct") yields one entry per controller with the
/// same path. When a hierarchy is mounted more than once, the first mount wins.
pub(crate) fn v1_mounts(mountinfo: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for line in mountinfo.lines() {
        // "id parent major:minor root mountpoint opts [optional...] - fstype source superopts"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split_whitespace();
        if right.next() != Some("cgroup") {
            continue;
        }
        let super_opts = right.nth(1).unwrap_or("");
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        for opt in super_opts.split(',') {
            if V1_CONTROLLERS.contains(&opt) && !found.iter().any(|(c, _)| c == opt) {
                found.push((opt.to_string(), PathBuf::from(unescape(mount_point))));
            }
        }
    }
    found.sort_by_key(|(c, _)| V1_CONTROLLERS.iter().position(|k| k == c));
    found
}

/// Undoes mountinfo's octal escapes ("\040" for a space, "\011", "\012", "\134").
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's layout: every controller mounted on its own, plus a named hierarchy and
    /// cgroup2 at /sys/fs/cgroup/unified.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn separate_mounts() {
        let m = v1_mounts(HYBRID);
        let names: Vec<_> = m.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, V1_CONTROLLERS.to_vec());
        assert_eq!(m[0].1, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m[1].1, PathBuf::from("/sys/fs/cgroup/cpuacct"));
    }

    #[test]
    fn combined_mount_and_optional_fields() {
        let info = "\
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw master:3 shared:10 - cgroup cgroup rw,memory
27 24 0:24 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
28 24 0:23 / /mnt/again rw - cgroup cgroup rw,memory
";
        let m = v1_mounts(info);
        assert_eq!(
            m,
            vec![
                ("cpu".into(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")),
                ("cpuacct".into(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")),
                ("memory".into(), PathBuf::from("/sys/fs/cgroup/memory")),
            ]
        );
    }

    #[test]
    fn escaped_mount_points() {
        let info = "1 0 0:1 / /tmp/a\\040b rw - cgroup cgroup rw,pids\n";
        assert_eq!(v1_mounts(info)[0].1, PathBuf::from("/tmp/a b"));
    }
}
