//! Recognizing compressed archives by their magic bytes, as `docker import` and `docker load` do, so the
//! user never has to say what the input is.

use std::io::{self, BufReader, Read};

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// How an archive stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (possibly several concatenated members, as `pigz` and Go write).
    Gzip,
    /// zstd (layers of `application/vnd.oci.image.layer.v1.tar+zstd`).
    Zstd,
    /// bzip2; recognized so the error is clear, not read.
    Bzip2,
    /// xz; recognized so the error is clear, not read.
    Xz,
}

/// Tells the compression from the first bytes of a stream.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// Wraps `reader` so it yields the uncompressed archive, whatever compression it arrives in.
///
/// An empty stream is refused here: it is not even an empty tar (that is 1024 zero bytes), and
/// silently importing it as an empty image hides a broken pipe.
pub fn decompress<'a>(mut reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    // Read the magic by hand (a pipe may deliver it in pieces) and put it back in front.
    let mut head = Vec::with_capacity(6);
    (&mut reader)
        .take(6)
        .read_to_end(&mut head)
        .map_err(|e| Error::BadTar {
            message: e.to_string(),
        })?;
    if head.is_empty() {
        return Err(Error::BadTar {
            message: "empty input".into(),
        });
    }
    let kind = detect(&head);
    let stream = io::Cursor::new(head).chain(reader);
    match kind {
        Compression::None => Ok(Box::new(BufReader::with_capacity(256 * 1024, stream))),
        // The decoder buffers its input itself.
        Compression::Gzip => Ok(Box::new(MultiGzDecoder::new(stream))),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(stream).map_err(|e| Error::BadTar {
                message: format!("zstd: {e}"),
            })?;
            Ok(Box::new(decoder))
        }
        other => Err(Error::BadTar {
            message: format!(
                "{} compression is not supported; decompress the archive first",
                name(other)
            ),
        }),
    }
}

fn name(c: Compression) -> &'static str {
    match c {
        Compression::None => "no",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_transparent() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello world").unwrap();
        let gz = enc.finish().unwrap();
        let mut out = String::new();
        decompress(&gz[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
        let mut out = String::new();
        decompress(&b"plain"[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "plain");
    }

    #[test]
    fn refuses_empty_and_unknown_compression() {
        assert!(matches!(decompress(&b""[..]), Err(Error::BadTar { .. })));
        let err = decompress(&b"BZh91AY"[..]).err().unwrap();
        assert!(err.to_string().contains("bzip2"), "{err}");
    }

    #[test]
    fn zstd_is_transparent() {
        let z = zstd::stream::encode_all(&b"hello zstd"[..], 3).unwrap();
        let mut out = String::new();
        decompress(&z[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello zstd");
    }
}
