//! Checking a blob against its descriptor (digest and size) while it streams through, so a layer is
//! verified in the same pass that unpacks it and a wrong byte is never accepted.
//!
//! The reader fails the stream itself (an `InvalidData` read error at the end, or as soon as it runs
//! past the announced size), so no consumer can finish successfully on bad content; the [`Check`]
//! handle then tells the caller what exactly was wrong, for an error message better than "bad tar".

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use crate::digest::SHA256_PREFIX;
use crate::error::{Error, Result};

/// What the reader found once the stream ended (or did not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Verdict {
    /// The stream was not read to its end.
    #[default]
    Pending,
    /// Digest and size match.
    Good,
    /// The content hashes to something else.
    Mismatch { actual: String },
    /// The stream is longer than the descriptor says.
    TooLong,
    /// The stream ended early.
    TooShort { got: u64 },
}

/// The caller's side of a [`VerifyReader`]: the verdict, readable after the reader is gone.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    what: String,
    expected: String,
    size: Option<u64>,
    verdict: Arc<Mutex<Verdict>>,
}

impl Check {
    /// `Ok` when the whole stream was read and matched; otherwise the error describing why not.
    pub(crate) fn result(&self) -> Result<()> {
        let verdict = self.verdict.lock().map(|v| v.clone()).unwrap_or_default();
        match verdict {
            Verdict::Good => Ok(()),
            Verdict::Pending => Err(Error::BadManifest {
                message: format!("{} {} was not read to its end", self.what, self.expected),
            }),
            Verdict::Mismatch { actual } => Err(Error::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            }),
            Verdict::TooLong => Err(Error::BadManifest {
                message: format!(
                    "{} {} is larger than its descriptor says ({} bytes)",
                    self.what,
                    self.expected,
                    self.size.unwrap_or(0)
                ),
            }),
            Verdict::TooShort { got } => Err(Error::BadManifest {
                message: format!(
                    "{} {} is truncated: got {got} of {} bytes",
                    self.what,
                    self.expected,
                    self.size.unwrap_or(0)
                ),
            }),
        }
    }

    /// Picks the more telling error after a failed consumer: a digest or size problem explains a
    /// broken tar or gzip stream better than the parser's own message.
    pub(crate) fn explain(&self, consumer_error: Error) -> Error {
        match self.verdict.lock().map(|v| v.clone()).unwrap_or_default() {
            Verdict::Pending | Verdict::Good => consumer_error,
            _ => self.result().err().unwrap_or(consumer_error),
        }
    }
}

/// A reader that hashes and counts what passes through and checks both at the end.
pub(crate) struct VerifyReader<R> {
    inner: R,
    hasher: Option<Sha256>,
    read: u64,
    check: Check,
    on_bytes: Option<Box<dyn FnMut(u64) + Send>>,
}

impl<R: Read> VerifyReader<R> {
    /// Wraps `inner`, expected to hash to `digest` (`sha256:<hex>`) and, if given, to be `size` bytes.
    /// `what` names the content in errors ("blob", "layer").
    pub(crate) fn new(inner: R, what: &str, digest: &str, size: Option<u64>) -> Result<(Self, Check)> {
        crate::digest::hex_part(digest).map_err(|_| Error::BadManifest {
            message: format!("unsupported digest \"{digest}\" (only sha256 is supported)"),
        })?;
        let check = Check {
            what: what.to_string(),
            expected: digest.to_string(),
            size,
            verdict: Arc::default(),
        };
        let reader = VerifyReader {
            inner,
            hasher: Some(Sha256::new()),
            read: 0,
            check: check.clone(),
            on_bytes: None,
        };
        Ok((reader, check))
    }

    /// Calls `f` with the size of every chunk read (progress reporting).
    pub(crate) fn on_bytes(mut self, f: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_bytes = Some(Box::new(f));
        self
    }

    fn fail(&self, verdict: Verdict) -> io::Error {
        if let Ok(mut v) = self.check.verdict.lock() {
            *v = verdict;
        }
        let message = self
            .check
            .result()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

impl<R: Read> Read for VerifyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            // Finished: report the end again (or the same failure).
            return match self.check.result() {
                Ok(()) => Ok(0),
                Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            };
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            hasher.update(&buf[..n]);
            self.read += n as u64;
            if let Some(f) = self.on_bytes.as_mut() {
                f(n as u64);
            }
            if self.check.size.is_some_and(|size| self.read > size) {
                self.hasher = None;
                return Err(self.fail(Verdict::TooLong));
            }
            return Ok(n);
        }
        let hasher = self.hasher.take().unwrap_or_default();
        let actual = format!("{SHA256_PREFIX}{}", hex::encode(hasher.finalize()));
        let verdict = match self.check.size {
            Some(size) if self.read < size => Verdict::TooShort { got: self.read },
            _ if actual != self.check.expected => Verdict::Mismatch { actual },
            _ => Verdict::Good,
        };
        if verdict == Verdict::Good {
            if let Ok(mut v) = self.check.verdict.lock() {
                *v = Verdict::Good;
            }
            Ok(0)
        } else {
            Err(self.fail(verdict))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    fn run(data: &[u8], digest: &str, size: Option<u64>) -> (io::Result<Vec<u8>>, Check) {
        let (mut reader, check) = VerifyReader::new(data, "blob", digest, size).unwrap();
        let mut out = Vec::new();
        let r = reader.read_to_end(&mut out).map(|_| out);
        (r, check)
    }

    #[test]
    fn accepts_matching_content() {
        let data = b"hello";
        let (r, check) = run(data, &sha256_digest(data), Some(5));
        assert_eq!(r.unwrap(), data);
        check.result().unwrap();
    }

    #[test]
    fn refuses_mismatch_truncation_and_excess() {
        let data = b"hello";
        let other = sha256_digest(b"other");
        let (r, check) = run(data, &other, None);
        assert!(r.is_err());
        assert!(matches!(check.result(), Err(Error::DigestMismatch { .. })));

        let (r, check) = run(data, &sha256_digest(data), Some(6));
        assert!(r.is_err());
        assert!(check.result().unwrap_err().to_string().contains("truncated"));

        let (r, check) = run(data, &sha256_digest(data), Some(4));
        assert!(r.is_err());
        assert!(check.result().unwrap_err().to_string().contains("larger"));
    }

    #[test]
    fn unread_stream_is_not_verified() {
        let data = b"hello";
        let (mut reader, check) = VerifyReader::new(&data[..], "blob", &sha256_digest(data), None).unwrap();
        let mut two = [0u8; 2];
        reader.read_exact(&mut two).unwrap();
        assert!(check.result().is_err());
        assert!(VerifyReader::new(&data[..], "blob", "md5:abc", None).is_err());
    }
}
