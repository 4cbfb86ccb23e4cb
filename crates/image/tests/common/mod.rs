//! Helpers shared by the integration tests: tar archives built by hand (including malicious ones the
//! `tar` crate refuses to write), and a comparable snapshot of a directory tree.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

/// Builds a tar entry by entry, writing names and link targets as raw bytes.
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        TarBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry with `name` copied verbatim into the header (so `..` and `/` survive).
    pub fn raw(mut self, name: &str, kind: EntryType, link: Option<&str>, data: &[u8], mode: u32) -> Self {
        let mut header = Header::new_gnu();
        {
            let old = header.as_old_mut();
            assert!(name.len() < old.name.len(), "test names must fit the header");
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_600_000_000);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.raw(name, EntryType::Regular, None, data, 0o644)
    }

    pub fn dir(self, name: &str) -> Self {
        self.raw(name, EntryType::Directory, None, b"", 0o755)
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(name, EntryType::Symlink, Some(target), b"", 0o777)
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(name, EntryType::Link, Some(target), b"", 0o644)
    }

    /// A PAX extended header (applies to the next entry).
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = 1 + key.len() + 1 + value.len() + 1;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_path("PaxHeaders/x").unwrap();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.builder.append(&header, &body[..]).unwrap();
        self
    }

    /// Appends a fully specified header.
    pub fn header(mut self, header: &Header, data: &[u8]) -> Self {
        self.builder.append(header, data).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

/// What the tests compare about one file system entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
    pub content: Option<Vec<u8>>,
    pub link: Option<String>,
    pub rdev: Option<u64>,
    pub opaque: bool,
    pub ino_group: Option<String>,
}

/// Every entry under `root` (not `root` itself) by relative path. Hard links are recorded by the
/// first path (sorted) of their inode, so two snapshots compare link structure too.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>, inodes: &mut BTreeMap<u64, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let ino_group = if ft.is_file() && meta.nlink() > 1 {
            Some(inodes.entry(meta.ino()).or_insert_with(|| rel.clone()).clone())
        } else {
            None
        };
        let node = Node {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: if ft.is_dir() || ft.is_file() {
                Some(meta.mtime())
            } else {
                None
            },
            content: if ft.is_file() {
                Some(fs::read(&path).unwrap())
            } else {
                None
            },
            link: if ft.is_symlink() {
                Some(
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .to_string_lossy()
                        .into_owned(),
                )
            } else {
                None
            },
            rdev: if ft.is_char_device() || ft.is_block_device() {
                Some(meta.rdev())
            } else {
                None
            },
            opaque: ft.is_dir() && xattr(&path, "trusted.overlay.opaque").as_deref() == Some(b"y"),
            ino_group,
        };
        out.insert(rel, node);
        if ft.is_dir() {
            walk(root, &path, out, inodes);
        }
    }
}

/// An xattr of `path` (not following symlinks), if set.
pub fn xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    match rustix::fs::lgetxattr(path, key, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// Names directly in `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| String::from_utf8_lossy(e.unwrap().file_name().as_bytes()).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// sha256:<hex> of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
