//! `load`: docker-archive and oci-archive → images in the store.
//!
//! The archive is indexed once (headers only), then every config, manifest and layer is read from its
//! place and checked against its digest as it streams; layers go through the same safe unpacker as
//! every other layer. Only when all of them passed are the images, layers and tags recorded, in one
//! transaction: a bad archive adds nothing.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

use rusqlite::Connection;

use super::index::TarIndex;
use super::{DockerManifestEntry, Loaded};
use crate::compression::{detect, Compression};
use crate::digest::{hex_part, sha256_digest, SHA256_PREFIX};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::TempPath;
use crate::manifest::{self, Parsed, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MAX_JSON_SIZE};
use crate::stage::{run_parallel, LayerExpect};
use crate::store::{normalize_tag, parse_config, NewImage, Store, TMP_PREFIX};

/// Layers unpacked at once: the work is disk and CPU bound, and this machine class has two cores.
const LOAD_THREADS: usize = 2;

/// One image found in the archive, not yet stored.
struct Planned {
    config: Vec<u8>,
    tags: Vec<String>,
    layers: Vec<LayerJob>,
}

/// Where one layer is in the archive and what it must hash to.
#[derive(Clone)]
struct LayerJob {
    path: String,
    blob: Option<(String, Option<u64>)>,
    diff_id: String,
}

impl Store {
    /// Loads the images of a docker-archive or oci-archive file (the whole archive may be gzip or
    /// zstd compressed), returning each with the tags it got.
    pub fn load_file(&self, conn: &mut Connection, path: &Path) -> Result<Vec<Loaded>> {
        // What a killed pull or load left would otherwise stay until a prune.
        self.sweep(conn)?;
        let mut file = File::open(path).io_context(|| format!("opening {}", path.display()))?;
        let mut head = [0u8; 6];
        let n = read_head(&mut file, &mut head).io_context(|| format!("reading {}", path.display()))?;
        file.rewind()
            .io_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Err(Error::BadArchive {
                message: "empty input".into(),
            });
        }
        if detect(&head[..n]) == Compression::None {
            return self.load_index(conn, TarIndex::new(file)?);
        }
        self.copy_and_load(conn, file)
    }

    /// Loads from a stream (stdin): it is copied (decompressed) to a temporary file in the store
    /// first, because archive members come in any order.
    pub fn load_stream(&self, conn: &mut Connection, input: impl Read) -> Result<Vec<Loaded>> {
        self.sweep(conn)?;
        self.copy_and_load(conn, input)
    }

    fn copy_and_load(&self, conn: &mut Connection, input: impl Read) -> Result<Vec<Loaded>> {
        let mut tar = crate::compression::decompress(input).map_err(|e| Error::BadArchive {
            message: e
                .to_string()
                .trim_start_matches("invalid tar archive: ")
                .to_string(),
        })?;
        let dir = self.blobs_dir();
        let (tmp, file) = TempPath::new_file(&dir, TMP_PREFIX)
            .io_context(|| format!("creating a file in {}", dir.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        // Input and disk fail for different reasons (a damaged archive, a full disk): say which.
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match tar.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::BadArchive {
                        message: format!("reading the input: {e}"),
                    })
                }
            };
            writer
                .write_all(&buf[..n])
                .io_context(|| "writing a temporary copy of the archive")?;
        }
        let mut file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .io_context(|| "writing a temporary copy of the archive")?;
        file.rewind().io_context(|| "reading the temporary copy")?;
        let loaded = self.load_index(conn, TarIndex::new(file)?);
        drop(tmp);
        loaded
    }

    fn load_index(&self, conn: &mut Connection, archive: TarIndex) -> Result<Vec<Loaded>> {
        let planned = if archive.contains("manifest.json") {
            plan_docker(&archive)?
        } else if archive.contains("index.json") {
            plan_oci(&archive)?
        } else {
            return Err(Error::BadArchive {
                message: "neither manifest.json (docker-archive) nor index.json (oci-archive) found".into(),
            });
        };
        if planned.is_empty() {
            return Err(Error::BadArchive {
                message: "the archive holds no image".into(),
            });
        }

        // Each layer once, and only those the store lacks.
        let mut jobs: Vec<LayerJob> = Vec::new();
        for image in &planned {
            for layer in &image.layers {
                if !jobs.iter().any(|j| j.diff_id == layer.diff_id)
                    && !self.has_layer(conn, &layer.diff_id)?
                {
                    jobs.push(layer.clone());
                }
            }
        }
        let staged = run_parallel(jobs, LOAD_THREADS, |job| {
            let reader = archive.open(&job.path)?;
            let expect = LayerExpect {
                blob: job.blob.as_ref().map(|(d, s)| (d.as_str(), *s)),
                diff_id: &job.diff_id,
            };
            self.stage_verified_layer(reader, &expect, |_| {})
                .map_err(|e| layer_error(&job.path, e))
        })?;

        let mut loaded = Vec::new();
        let mut images = Vec::new();
        for image in planned {
            loaded.push(Loaded {
                id: sha256_digest(&image.config),
                tags: image.tags.clone(),
            });
            images.push(NewImage {
                config: image.config,
                tags: image.tags,
                digests: Vec::new(),
            });
        }
        self.add_images(conn, images, staged)?;
        Ok(loaded)
    }
}

fn read_head(file: &mut File, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn layer_error(path: &str, e: Error) -> Error {
    match e {
        Error::DigestMismatch { .. } | Error::UnsafeEntry { .. } | Error::Io { .. } => e,
        other => Error::BadArchive {
            message: format!("layer \"{path}\": {other}"),
        },
    }
}

/// A config read from the archive and checked: its ID, and its diff_ids matching `layer_count`.
fn read_config(
    archive: &TarIndex,
    path: &str,
    expected: Option<&str>,
    layer_count: usize,
) -> Result<(Vec<u8>, Vec<String>)> {
    let bytes = archive.read_small(path, MAX_JSON_SIZE)?;
    let id = sha256_digest(&bytes);
    if let Some(expected) = expected {
        if expected != id {
            return Err(Error::DigestMismatch {
                expected: expected.to_string(),
                actual: id,
            });
        }
    }
    let config = parse_config(&bytes)?;
    let diff_ids = config.rootfs().diff_ids().clone();
    if diff_ids.len() != layer_count {
        return Err(Error::BadArchive {
            message: format!(
                "image {id} lists {} layers in its config but {layer_count} in its manifest",
                diff_ids.len()
            ),
        });
    }
    for d in &diff_ids {
        hex_part(d)?;
    }
    Ok((bytes, diff_ids))
}

/// The digest a member's name promises: `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_from_name(path: &str) -> Option<String> {
    let name = path.trim_start_matches("./");
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json"))?;
    (hex.len() == 64 && crate::digest::is_hex_id_prefix(hex)).then(|| format!("{SHA256_PREFIX}{hex}"))
}

fn plan_docker(archive: &TarIndex) -> Result<Vec<Planned>> {
    let bytes = archive.read_small("manifest.json", MAX_JSON_SIZE)?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&bytes).map_err(|e| Error::BadArchive {
            message: format!("manifest.json is not valid: {e}"),
        })?;
    let mut planned = Vec::new();
    for entry in entries {
        let expected = digest_from_name(&entry.config);
        let (config, diff_ids) =
            read_config(archive, &entry.config, expected.as_deref(), entry.layers.len())?;
        let layers = entry
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(path, diff_id)| {
                let blob = match path.strip_prefix("blobs/sha256/").and(digest_from_name(path)) {
                    Some(digest) => Some((digest, Some(archive.size(path)?))),
                    None => None,
                };
                Ok(LayerJob {
                    path: path.clone(),
                    blob,
                    diff_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| normalize_tag(t))
            .collect::<Result<Vec<_>>>()?;
        planned.push(Planned { config, tags, layers });
    }
    Ok(planned)
}

fn blob_path(digest: &str) -> Result<String> {
    Ok(format!("blobs/sha256/{}", hex_part(digest)?))
}

/// Reads a blob named by a descriptor, checking size and digest.
fn read_blob(archive: &TarIndex, desc: &manifest::Descriptor) -> Result<Vec<u8>> {
    let path = blob_path(&desc.digest)?;
    let bytes = archive.read_small(&path, MAX_JSON_SIZE)?;
    let actual = sha256_digest(&bytes);
    if actual != desc.digest {
        return Err(Error::DigestMismatch {
            expected: desc.digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn plan_oci(archive: &TarIndex) -> Result<Vec<Planned>> {
    let bytes = archive.read_small("index.json", MAX_JSON_SIZE)?;
    let Parsed::Index(index) = manifest::parse(&bytes, Some(manifest::OCI_INDEX), "index.json")? else {
        return Err(Error::BadArchive {
            message: "index.json is not an image index".into(),
        });
    };
    // Several index entries may name the same manifest (one per tag): plan each image once.
    let mut planned: Vec<Planned> = Vec::new();
    let mut by_manifest: HashMap<String, usize> = HashMap::new();
    let mut stack: Vec<(manifest::Descriptor, Option<String>)> = Vec::new();
    for desc in index.manifests.into_iter().rev() {
        let name = oci_name(desc.annotations.as_ref())?;
        stack.push((desc, name));
    }
    let mut seen_indexes = 0;
    while let Some((desc, name)) = stack.pop() {
        if let Some(&i) = by_manifest.get(&desc.digest) {
            if let Some(name) = name {
                if !planned[i].tags.contains(&name) {
                    planned[i].tags.push(name);
                }
            }
            continue;
        }
        let bytes = read_blob(archive, &desc)?;
        let what = format!("manifest {}", desc.digest);
        match manifest::parse(&bytes, Some(&desc.media_type), &what)? {
            Parsed::Index(nested) => {
                seen_indexes += 1;
                if seen_indexes > 64 {
                    return Err(Error::BadArchive {
                        message: "too many nested indexes".into(),
                    });
                }
                // A multi-platform image: take this host's platform, named as the parent was.
                let chosen = manifest::select_platform(&nested, &manifest::Platform::host(), &what)?;
                stack.push((chosen.clone(), name));
            }
            Parsed::Image(m) => {
                m.check_supported(&what)?;
                let config_expected = Some(m.config.digest.as_str());
                let config_path = blob_path(&m.config.digest)?;
                let (config, diff_ids) = read_config(archive, &config_path, config_expected, m.layers.len())?;
                let layers = m
                    .layers
                    .iter()
                    .zip(diff_ids)
                    .map(|(layer, diff_id)| {
                        Ok(LayerJob {
                            path: blob_path(&layer.digest)?,
                            blob: Some((layer.digest.clone(), Some(layer.size))),
                            diff_id,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                by_manifest.insert(desc.digest.clone(), planned.len());
                planned.push(Planned {
                    config,
                    tags: name.into_iter().collect(),
                    layers,
                });
            }
        }
    }
    // The same image under two manifests (e.g. docker ≥ 25 writes both forms) is one image.
    let mut merged: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Planned> = Vec::new();
    for p in planned {
        let id = sha256_digest(&p.config);
        match merged.get(&id) {
            Some(&i) => {
                for t in p.tags {
                    if !out[i].tags.contains(&t) {
                        out[i].tags.push(t);
                    }
                }
            }
            None => {
                merged.insert(id, out.len());
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The tag an OCI index entry names: containerd's full-name annotation, or a `ref.name` that is a
/// full reference. A bare `ref.name` such as `latest` names no repository, so it gives no tag.
fn oci_name(annotations: Option<&BTreeMap<String, String>>) -> Result<Option<String>> {
    let Some(annotations) = annotations else {
        return Ok(None);
    };
    if let Some(full) = annotations.get(ANNOTATION_CONTAINERD_NAME) {
        return normalize_tag(full).map(Some);
    }
    match annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains(['/', ':']) => normalize_tag(name).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_promise_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            digest_from_name(&format!("{hex}.json")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_from_name(&format!("blobs/sha256/{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_from_name("config.json"), None);
        assert_eq!(digest_from_name(&format!("{hex}/layer.tar")), None);
    }

    #[test]
    fn oci_names() {
        let mut a = BTreeMap::new();
        a.insert(ANNOTATION_REF_NAME.to_string(), "latest".to_string());
        assert_eq!(oci_name(Some(&a)).unwrap(), None);
        a.insert(
            ANNOTATION_REF_NAME.to_string(),
            "docker.io/library/busybox:1".to_string(),
        );
        assert_eq!(oci_name(Some(&a)).unwrap(), Some("busybox:1".into()));
        a.insert(
            ANNOTATION_CONTAINERD_NAME.to_string(),
            "localhost:5000/x:y".to_string(),
        );
        assert_eq!(oci_name(Some(&a)).unwrap(), Some("localhost:5000/x:y".into()));
    }
}
