//! Random access to the members of a tar file: one pass over the headers (seeking over the data)
//! records where each member's content lies, so `load` can read an archive whose `manifest.json`
//! comes last, in whatever order the writer chose, without extracting it to disk first.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};

/// Where a member is.
#[derive(Debug, Clone)]
enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink (docker writes one for a layer that two images share) or hard link, with its target
    /// already resolved to a member name.
    Link(String),
}

/// The members of a tar file, by normalized name.
pub(super) struct TarIndex {
    file: File,
    members: HashMap<String, Member>,
}

impl TarIndex {
    /// Reads the headers of the uncompressed tar in `file`.
    pub(super) fn new(mut file: File) -> Result<TarIndex> {
        // Member offsets are counted from where reading starts; positioned reads need them absolute.
        file.rewind().map_err(bad)?;
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            let entries = archive.entries_with_seek().map_err(bad)?;
            for entry in entries {
                let entry = entry.map_err(bad)?;
                let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                let kind = entry.header().entry_type();
                let member = match kind {
                    tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        let target = entry
                            .link_name_bytes()
                            .map(|t| String::from_utf8_lossy(&t).into_owned())
                            .unwrap_or_default();
                        let resolved = if kind == tar::EntryType::Symlink && !target.starts_with('/') {
                            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                            normalize(&format!("{dir}/{target}"))
                        } else {
                            normalize(&target)
                        };
                        Member::Link(resolved)
                    }
                    _ => continue,
                };
                members.insert(name, member);
            }
        }
        Ok(TarIndex { file, members })
    }

    /// Whether the archive has a member with this name.
    pub(super) fn contains(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }

    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let mut name = normalize(name);
        // Links may chain; a loop ends here instead of spinning.
        for _ in 0..16 {
            match self.members.get(&name) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(target)) => name = target.clone(),
                None => break,
            }
        }
        Err(Error::BadArchive {
            message: format!("file \"{name}\" is missing from the archive"),
        })
    }

    /// A reader over one member's content.
    pub(super) fn open(&self, name: &str) -> Result<MemberReader<'_>> {
        let (offset, size) = self.locate(name)?;
        Ok(MemberReader {
            file: &self.file,
            pos: offset,
            end: offset + size,
        })
    }

    /// The size of one member.
    pub(super) fn size(&self, name: &str) -> Result<u64> {
        Ok(self.locate(name)?.1)
    }

    /// A small member (manifest, index, config) read whole; larger than `limit` is refused.
    pub(super) fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (_, size) = self.locate(name)?;
        if size > limit {
            return Err(Error::BadArchive {
                message: format!("\"{name}\" is too large ({size} bytes)"),
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        self.open(name)?.read_to_end(&mut out).map_err(|e| Error::Io {
            context: format!("reading \"{name}\" from the archive"),
            error: e,
        })?;
        Ok(out)
    }
}

/// Reads one member with positioned reads, so several can be read at once from different threads.
pub(super) struct MemberReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn bad(e: io::Error) -> Error {
    Error::BadArchive {
        message: e.to_string(),
    }
}

/// `./a/../b/` → `b`: the names writers use for the same member differ in these details.
fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("./manifest.json"), "manifest.json");
        assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalize("blobs/sha256/"), "blobs/sha256");
    }

    #[test]
    fn members_and_links_are_found() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header.clone(), "./a/layer.tar", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "b/layer.tar", "../a/layer.tar")
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();

        let index = TarIndex::new(file).unwrap();
        assert_eq!(index.read_small("b/layer.tar", 100).unwrap(), b"hello");
        assert_eq!(index.size("a/layer.tar").unwrap(), 5);
        assert!(index.read_small("a/layer.tar", 2).is_err());
        assert!(!index.contains("manifest.json"));
    }
}
