//! `pull`: reference → manifest (through an index for the wanted platform) → config → layers.
//!
//! Each missing layer is one HTTP stream, verified (blob digest and size, then diff_id) and unpacked in
//! the same pass, several at once on plain threads. Layers the store has (by diff_id) are not fetched.
//! Nothing gets a final name until every layer passed: an interrupted or failed pull leaves only
//! `.tmp-*` content, which the next pull (or load) sweeps away before it starts.

use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};

use super::client::{Access, Client};
use super::{LayerState, Progress};
use crate::db::{self, BlobSource};
use crate::digest::sha256_digest;
use crate::error::{Error, Result};
use crate::image::ImageId;
use crate::manifest::{self, Parsed, Platform};
use crate::reference;
use crate::stage::{run_parallel, LayerExpect};
use crate::store::{parse_config, NewImage, Store};

/// Layers downloaded at once.
const PULL_THREADS: usize = 4;

/// How to pull.
pub struct PullOptions {
    /// The platform to pick from a multi-platform image; this machine's if `None`.
    pub platform: Option<Platform>,
    /// Where progress goes.
    pub progress: Arc<dyn Progress>,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The image ID.
    pub id: ImageId,
    /// The reference pulled, normalized (`busybox:latest`, `busybox@sha256:…`).
    pub reference: String,
    /// The digest of the manifest (or index) the reference named.
    pub digest: String,
    /// True when the image was stored already and only its names were updated.
    pub up_to_date: bool,
}

struct Job {
    digest: String,
    size: u64,
    diff_id: String,
}

impl Store {
    /// Pulls `reference` (`busybox`, `localhost:5000/a/b:tag`, `name@sha256:…`) and tags it (unless
    /// it names a digest), recording the repo digest.
    pub fn pull(&self, conn: &mut Connection, reference: &str, options: &PullOptions) -> Result<Pulled> {
        let parsed = reference::parse(reference)?;
        let normalized = parsed.to_string();
        // What a killed pull or load left (its `.tmp-*` content) would otherwise stay until a prune.
        self.sweep(conn)?;
        let client = Client::new(&parsed.domain, &parsed.path, Access::Pull)?;
        let target = parsed
            .digest
            .clone()
            .or_else(|| parsed.tag.clone())
            .unwrap_or_else(|| reference::DEFAULT_TAG.into());
        let what = normalized.clone();

        let (bytes, content_type) = client.get_manifest(&target, &what)?;
        let top_digest = sha256_digest(&bytes);
        let manifest = match manifest::parse(&bytes, content_type.as_deref(), &what)? {
            Parsed::Image(m) => m,
            Parsed::Index(index) => {
                let platform = options.platform.clone().unwrap_or_else(Platform::host);
                let chosen = manifest::select_platform(&index, &platform, &what)?;
                let (bytes, content_type) = client.get_manifest(&chosen.digest, &what)?;
                match manifest::parse(&bytes, content_type.as_deref(), &what)? {
                    Parsed::Image(m) => m,
                    Parsed::Index(_) => {
                        return Err(Error::BadManifest {
                            message: format!("{what}: the index for {platform} names another index"),
                        })
                    }
                }
            }
        };
        manifest.check_supported(&what)?;

        let config = client.get_small_blob(&manifest.config.digest)?;
        let parsed_config = parse_config(&config)?;
        let diff_ids = parsed_config.rootfs().diff_ids().clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::BadManifest {
                message: format!(
                    "{what}: the manifest has {} layers but the config lists {}",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let id = sha256_digest(&config);
        let tags: Vec<String> = match parsed.digest {
            Some(_) => Vec::new(),
            None => vec![normalized.clone()],
        };
        let digests = vec![format!("{}@{top_digest}", parsed.familiar_name())];
        let pulled = |up_to_date| Pulled {
            id: id.clone(),
            reference: normalized.clone(),
            digest: top_digest.clone(),
            up_to_date,
        };

        let place = |layer: &manifest::Descriptor, diff_id: &str| Place {
            registry: &parsed.domain,
            repository: &parsed.path,
            layer: layer.clone(),
            diff_id: diff_id.to_string(),
        };
        if self.has_image(conn, &id)? {
            self.set_names(conn, &id, &tags, &digests)?;
            let known: Vec<Place<'_>> = manifest
                .layers
                .iter()
                .zip(&diff_ids)
                .map(|(l, d)| place(l, d))
                .collect();
            self.remember_places(conn, &[], &known)?;
            return Ok(pulled(true));
        }

        let mut jobs: Vec<Job> = Vec::new();
        let (mut fetched, mut known) = (Vec::new(), Vec::new());
        for (layer, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            if self.has_layer(conn, diff_id)? || jobs.iter().any(|j| &j.diff_id == diff_id) {
                options
                    .progress
                    .layer(&layer.digest, layer.size, LayerState::AlreadyExists);
                known.push(place(layer, diff_id));
                continue;
            }
            fetched.push(place(layer, diff_id));
            jobs.push(Job {
                digest: layer.digest.clone(),
                size: layer.size,
                diff_id: diff_id.clone(),
            });
        }
        let staged = run_parallel(jobs, PULL_THREADS, |job| {
            let progress = Arc::clone(&options.progress);
            progress.layer(&job.digest, job.size, LayerState::Started);
            let stream = client.get_blob(&job.digest)?;
            let expect = LayerExpect {
                blob: Some((&job.digest, Some(job.size))),
                diff_id: &job.diff_id,
            };
            let digest = job.digest.clone();
            let reporter = Arc::clone(&progress);
            let layer = self
                .stage_verified_layer(stream, &expect, move |n| reporter.bytes(&digest, n))
                .map_err(|e| layer_error(&what, &job.digest, e))?;
            progress.layer(&job.digest, job.size, LayerState::PullComplete);
            Ok(layer)
        })?;

        self.add_images(
            conn,
            vec![NewImage {
                config,
                tags,
                digests,
            }],
            staged,
        )?;
        self.remember_places(conn, &fetched, &known)?;
        Ok(pulled(false))
    }

    /// Records where the registry holds the layers: every layer downloaded (its blob was verified to
    /// be the layer), and a layer the store had already only as a blob an earlier transfer proved to
    /// be it, since a manifest may pair any blob with any diff_id.
    fn remember_places(
        &self,
        conn: &mut Connection,
        fetched: &[Place<'_>],
        known: &[Place<'_>],
    ) -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for place in fetched {
            if let Some(source) = place.source() {
                db::insert_blob_source(&tx, &source)?;
            }
        }
        for place in known {
            match place.source().filter(|s| s.digest == s.diff_id) {
                // The plain tar is the layer by definition.
                Some(source) => db::insert_blob_source(&tx, &source)?,
                None => db::insert_known_blob_source(
                    &tx,
                    &place.diff_id,
                    &place.layer.digest,
                    place.registry,
                    place.repository,
                )?,
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// A layer as one repository of a registry holds it.
struct Place<'a> {
    registry: &'a str,
    repository: &'a str,
    layer: manifest::Descriptor,
    diff_id: String,
}

impl Place<'_> {
    /// The row to remember, unless the blob's media type cannot be told. A blob whose digest is the
    /// diff_id is the plain tar, whatever the manifest calls it.
    fn source(&self) -> Option<BlobSource> {
        let media_type = if self.layer.digest == self.diff_id {
            manifest::OCI_LAYER_TAR
        } else {
            manifest::oci_layer_type(&self.layer.media_type)?
        };
        Some(BlobSource {
            diff_id: self.diff_id.clone(),
            registry: self.registry.to_string(),
            repository: self.repository.to_string(),
            digest: self.layer.digest.clone(),
            media_type: media_type.to_string(),
            size: self.layer.size,
        })
    }
}

/// Names the layer in errors that do not already say which blob failed.
fn layer_error(what: &str, digest: &str, e: Error) -> Error {
    match e {
        Error::DigestMismatch { .. } | Error::Registry { .. } | Error::Io { .. } => e,
        Error::BadTar { message } => Error::BadManifest {
            message: format!("{what}: layer {digest}: {message}"),
        },
        other => Error::BadManifest {
            message: format!("{what}: layer {digest}: {other}"),
        },
    }
}
