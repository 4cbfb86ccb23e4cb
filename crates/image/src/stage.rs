//! Staging a layer that arrives from outside (an archive entry, a registry download) with its
//! descriptor: one pass over the stream checks the blob digest and size, decompresses, computes the
//! diff_id, writes the uncompressed blob and unpacks the tree; only a layer that passes every check
//! is handed on, and a refused one leaves nothing behind.

use std::io::Read;

use crate::error::{Error, Result};
use crate::store::{StagedLayer, Store};
use crate::verify::VerifyReader;

/// What a layer must match.
#[derive(Debug, Clone)]
pub(crate) struct LayerExpect<'a> {
    /// The digest (and size, if known) of the bytes as transferred, possibly compressed. `None`
    /// when only the uncompressed content is addressed (docker-archive `layer.tar` entries).
    pub blob: Option<(&'a str, Option<u64>)>,
    /// The diff_id the image config lists for this layer.
    pub diff_id: &'a str,
}

impl Store {
    /// Stages a layer from `raw` (plain, gzip or zstd), verified against `expect`. `on_bytes` sees
    /// the size of every chunk of raw input, for progress reports.
    pub(crate) fn stage_verified_layer(
        &self,
        raw: impl Read,
        expect: &LayerExpect<'_>,
        on_bytes: impl FnMut(u64) + Send + 'static,
    ) -> Result<StagedLayer> {
        // An uncompressed blob addressed by its diff_id needs only one hash: the diff_id check below.
        let blob = expect.blob.filter(|(digest, _)| *digest != expect.diff_id);
        let layer = match blob {
            Some((digest, size)) => {
                let (reader, check) = VerifyReader::new(raw, "blob", digest, size)?;
                let mut reader = reader.on_bytes(on_bytes);
                match self.stage_layer_from_tar(&mut reader) {
                    Ok(layer) => {
                        check.result()?;
                        layer
                    }
                    Err(e) => {
                        // A damaged blob usually breaks the gzip or tar parser first; read the rest
                        // (the reader stops past the announced size) to say what is really wrong.
                        let _ = std::io::copy(&mut reader, &mut std::io::sink());
                        return Err(check.explain(e));
                    }
                }
            }
            None => {
                let size = expect.blob.and_then(|(_, size)| size);
                let counted = CountingReader {
                    inner: raw,
                    read: 0,
                    limit: size,
                    on_bytes: Box::new(on_bytes),
                };
                self.stage_layer_from_tar(counted)?
            }
        };
        if layer.diff_id != expect.diff_id {
            return Err(Error::DigestMismatch {
                expected: expect.diff_id.to_string(),
                actual: layer.diff_id.clone(),
            });
        }
        Ok(layer)
    }
}

/// Counts bytes for progress and refuses to read past a known size.
struct CountingReader<R> {
    inner: R,
    read: u64,
    limit: Option<u64>,
    on_bytes: Box<dyn FnMut(u64) + Send>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.limit.is_some_and(|limit| self.read > limit) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "blob is larger than its descriptor says",
            ));
        }
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

/// Runs `f` over `jobs` on up to `threads` scoped threads, returning the results in job order, or
/// the first error (after every started job has finished: their staged content is dropped, which
/// removes it).
pub(crate) fn run_parallel<T, R, F>(jobs: Vec<T>, threads: usize, f: F) -> Result<Vec<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Result<R> + Sync,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    let count = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..count).map(|_| None).collect());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, count.max(1)) {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some((i, job)) = next else { return };
                match f(job) {
                    Ok(r) => {
                        if let Ok(mut results) = results.lock() {
                            results[i] = Some(r);
                        }
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_default();
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_keeps_order_and_reports_errors() {
        let out = run_parallel((0..20).collect(), 3, |i: u32| Ok(i * 2)).unwrap();
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        let err = run_parallel((0..5).collect(), 2, |i: u32| {
            if i == 3 {
                Err(Error::BadTar {
                    message: "three".into(),
                })
            } else {
                Ok(i)
            }
        });
        assert!(err.is_err());
        assert!(run_parallel(Vec::<u32>::new(), 2, Ok).unwrap().is_empty());
    }
}
