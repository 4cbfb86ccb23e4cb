//! sha256 digests in the `sha256:<hex>` form docker and OCI use, and streams that compute them on the way.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The algorithm prefix of every digest berth produces.
pub const SHA256_PREFIX: &str = "sha256:";

/// The diff_id of an empty layer: a tar holding only its two zero end blocks (1024 zero bytes).
/// Docker does not add such a layer to an image on commit; neither does berth.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// True when `s` is non-empty lowercase hex of at most 64 characters (a full or short image ID).
pub fn is_hex_id_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The hex part of a well-formed `sha256:<64 hex>` digest, or an error naming it.
///
/// Every digest that becomes a file name goes through here, so a crafted "digest" can never be a path.
pub fn hex_part(digest: &str) -> Result<&str> {
    match digest.strip_prefix(SHA256_PREFIX) {
        Some(hex) if hex.len() == 64 && is_hex_id_prefix(hex) => Ok(hex),
        _ => Err(Error::Corrupt {
            what: format!("invalid sha256 digest \"{digest}\""),
        }),
    }
}

/// The chain IDs of a stack of layers (bottom first), as docker names layers in `rmi` output:
/// the first is the diff_id itself, each next one is `sha256(parent_chain + " " + diff_id)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A reader that hashes everything read through it and copies it to a side writer.
///
/// Import uses it between the decompressor and the tar parser: one pass over the input yields the
/// layer's diff_id, its stored blob and its unpacked directory.
pub struct TeeHasher<R, W> {
    inner: R,
    copy: W,
    hasher: Sha256,
    bytes: u64,
    copy_error: Option<io::Error>,
}

impl<R: Read, W: Write> TeeHasher<R, W> {
    /// Wraps `inner`; every byte read is also written to `copy`.
    pub fn new(inner: R, copy: W) -> Self {
        TeeHasher {
            inner,
            copy,
            hasher: Sha256::new(),
            bytes: 0,
            copy_error: None,
        }
    }

    /// The error writing to the side writer failed with, if any. The reader sees such a failure as a
    /// read error; this tells "disk full" apart from "bad input".
    pub fn take_copy_error(&mut self) -> Option<io::Error> {
        self.copy_error.take()
    }

    /// Reads the rest of `inner` (so the digest covers the whole stream, trailing padding included)
    /// and returns the digest, the byte count and the side writer.
    pub fn finish(mut self) -> io::Result<(String, u64, W)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = format!("{SHA256_PREFIX}{}", hex::encode(self.hasher.finalize()));
        Ok((digest, self.bytes, self.copy))
    }
}

impl<R: Read, W: Write> Read for TeeHasher<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            let reported = io::Error::new(e.kind(), e.to_string());
            self.copy_error = Some(e);
            return Err(reported);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that hashes everything written through it on the way to `inner`.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The digest of everything written, the byte count and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        let digest = format!("{SHA256_PREFIX}{}", hex::encode(self.hasher.finalize()));
        (digest, self.bytes, self.inner)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_layer_digest_is_sha256_of_1024_zeros() {
        assert_eq!(sha256_digest(&[0u8; 1024]), EMPTY_LAYER_DIFF_ID);
    }

    #[test]
    fn chain_ids_follow_docker() {
        let a = sha256_digest(b"a");
        let b = sha256_digest(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn hex_part_rejects_paths() {
        assert!(hex_part("sha256:../../etc").is_err());
        assert!(hex_part(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert_eq!(hex_part(EMPTY_LAYER_DIFF_ID).unwrap().len(), 64);
    }

    #[test]
    fn tee_hashes_whole_stream() {
        let data = vec![7u8; 5000];
        let mut tee = TeeHasher::new(&data[..], Vec::new());
        let mut first = [0u8; 10];
        tee.read_exact(&mut first).unwrap();
        let (digest, n, copy) = tee.finish().unwrap();
        assert_eq!(n, 5000);
        assert_eq!(copy, data);
        assert_eq!(digest, sha256_digest(&data));
    }
}
