//! `push`: a stored image → a registry, as an OCI manifest.
//!
//! berth stores layers uncompressed, so the blob it can always send is the plain tar (digest = diff_id,
//! nothing recompressed). But a layer that came from this registry is better named by the blob it came
//! as: the store remembers, per layer, which repositories of which registry hold it as which blob
//! (`db::BlobSource`, written by pull and push). For each layer, in order:
//!
//! 1. a remembered blob the target repository has already (`HEAD`), or the plain tar it has: nothing
//!    is sent;
//! 2. a remembered blob mounted from its repository (`POST ?mount=&from=`): nothing is sent;
//! 3. else the plain tar is uploaded, in one `PUT ?digest=` or in `PATCH` chunks when large.
//!
//! The manifest then names each layer as the blob the repository got (gzip, zstd or plain; the config's
//! diff_ids stay the uncompressed digests), and goes last, so a failed push never leaves a tag pointing
//! at missing content.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};

use super::client::{Access, Client, Mount, Payload, Session};
use super::{LayerState, Progress};
use crate::db::{self, BlobSource};
use crate::digest::sha256_digest;
use crate::error::{Error, IoContext, Result};
use crate::lookup::Found;
use crate::manifest::{self, Descriptor, OCI_LAYER_TAR, OCI_MANIFEST};
use crate::reference::{self, Reference};
use crate::stage::run_parallel;
use crate::store::Store;

/// Blobs uploaded at once.
const PUSH_THREADS: usize = 3;
/// Other repositories the token asks `pull` on: tokens grow with every scope, and some registries
/// refuse long scope lists.
const MAX_MOUNT_SOURCES: usize = 4;
/// Remembered blobs of one layer checked with `HEAD`, and mounts tried, before uploading.
const MAX_ATTEMPTS: usize = 3;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Where it went, normalized (`localhost:5000/me/app:dev`).
    pub reference: String,
    /// The tag pushed.
    pub tag: String,
    /// The digest of the manifest pushed.
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// One distinct layer to push, with what the store knows of its places on the target registry.
struct LayerJob {
    diff_id: String,
    /// Size of the stored uncompressed tar.
    size: u64,
    /// Remembered blobs of this layer on the target registry, newest first.
    sources: Vec<BlobSource>,
}

/// How a push reaches one repository: the client and the other repositories it may mount from.
struct Target<'a> {
    client: Client,
    reference: &'a Reference,
    /// Repositories the token covers for mounting.
    mount_from: Vec<String>,
}

impl Store {
    /// Pushes the image `source` names to `target` (default: `source` itself, which must then be a
    /// name with a tag), and records the resulting repo digest and where the registry now has each
    /// layer.
    pub fn push(
        &self,
        conn: &mut Connection,
        source: &str,
        target: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed> {
        let (image, found) = crate::lookup::lookup(conn, source)?;
        if target.is_none() && !matches!(found, Found::Tag(_)) {
            return Err(Error::InvalidReference {
                reference: source.to_string(),
                reason: "push needs a name with a tag: give a target, or tag the image first".into(),
            });
        }
        let destination = target.unwrap_or(source);
        let parsed = reference::parse(destination)?;
        if parsed.digest.is_some() {
            return Err(Error::InvalidReference {
                reference: destination.to_string(),
                reason: "cannot push to a digest reference; name a tag".into(),
            });
        }
        let tag = parsed
            .tag
            .clone()
            .unwrap_or_else(|| reference::DEFAULT_TAG.into());
        let config = self.config_bytes(conn, &image.id)?;
        let jobs = self.layer_jobs(conn, &image.diff_ids, &parsed.domain)?;
        let config_sources = self.config_sources(conn, &image.id, &parsed)?;
        let target = Target::new(&parsed, &jobs, &config_sources)?;

        let pushed = run_parallel(jobs, PUSH_THREADS, |job| {
            let desc = self.push_layer(&target, &job, progress.as_ref())?;
            Ok((job.diff_id, desc))
        })?;
        target.push_config(&config, &config_sources)?;

        let by_diff_id: HashMap<&str, &Descriptor> =
            pushed.iter().map(|(d, desc)| (d.as_str(), desc)).collect();
        let layers: Vec<Descriptor> = image
            .diff_ids
            .iter()
            .filter_map(|d| by_diff_id.get(d.as_str()).map(|desc| (*desc).clone()))
            .collect();
        let manifest = manifest::oci_manifest_with(&config, layers);
        target.client.put_manifest(&tag, OCI_MANIFEST, &manifest)?;
        let digest = sha256_digest(&manifest);
        let repo_digest = format!("{}@{digest}", parsed.familiar_name());
        self.set_names(conn, &image.id, &[], &[repo_digest])?;
        let sources: Vec<BlobSource> = pushed
            .into_iter()
            .map(|(diff_id, desc)| BlobSource {
                diff_id,
                registry: parsed.domain.clone(),
                repository: parsed.path.clone(),
                digest: desc.digest,
                media_type: desc.media_type,
                size: desc.size,
            })
            .collect();
        self.remember_blob_sources(conn, &sources)?;
        Ok(Pushed {
            reference: parsed.to_string(),
            tag,
            digest,
            size: manifest.len() as u64,
        })
    }

    /// Records where registries hold layers, in one transaction.
    fn remember_blob_sources(&self, conn: &mut Connection, sources: &[BlobSource]) -> Result<()> {
        if sources.is_empty() {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for source in sources {
            db::insert_blob_source(&tx, source)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The image's distinct layers with their stored sizes and remembered blobs on `registry`.
    fn layer_jobs(&self, conn: &Connection, diff_ids: &[String], registry: &str) -> Result<Vec<LayerJob>> {
        let mut jobs: Vec<LayerJob> = Vec::new();
        for diff_id in diff_ids {
            if jobs.iter().any(|j| j.diff_id == *diff_id) {
                continue;
            }
            let path = self.blob_path(diff_id)?;
            let size = std::fs::metadata(&path)
                .io_context(|| format!("reading layer {diff_id} ({})", path.display()))?
                .len();
            jobs.push(LayerJob {
                diff_id: diff_id.clone(),
                size,
                sources: db::blob_sources(conn, diff_id, registry)?,
            });
        }
        Ok(jobs)
    }

    /// Other repositories of the target registry that hold the image's config: those it was pulled
    /// from or pushed to (its repo digests), since a manifest there names the config.
    fn config_sources(&self, conn: &Connection, id: &str, target: &Reference) -> Result<Vec<String>> {
        let mut repos: Vec<String> = Vec::new();
        for name in self.repo_digests(conn, id)? {
            let Some((repo, _)) = name.split_once('@') else {
                continue;
            };
            let Ok(other) = reference::parse(repo) else {
                continue;
            };
            if other.domain == target.domain && other.path != target.path && !repos.contains(&other.path) {
                repos.push(other.path);
            }
        }
        Ok(repos)
    }

    /// Gets one layer into the target repository and returns the descriptor the manifest names it by.
    fn push_layer(&self, target: &Target<'_>, job: &LayerJob, progress: &dyn Progress) -> Result<Descriptor> {
        if let Some(desc) = target.existing(job)? {
            progress.layer(&desc.digest, desc.size, LayerState::AlreadyExists);
            return Ok(desc);
        }
        let candidates: Vec<(&str, &str)> = job
            .sources
            .iter()
            .map(|s| (s.digest.as_str(), s.repository.as_str()))
            .collect();
        let (mounted, spare) = target.try_mounts(&candidates)?;
        if let Some(i) = mounted {
            let source = &job.sources[i];
            progress.mounted(&source.digest, source.size, &source.repository);
            return Ok(manifest::descriptor(
                &source.media_type,
                &source.digest,
                source.size,
            ));
        }

        let (diff_id, size) = (job.diff_id.as_str(), job.size);
        progress.layer(diff_id, size, LayerState::Started);
        let path = self.blob_path(diff_id)?;
        let reporter = |n: u64| progress.bytes(diff_id, n);
        let payload = Payload::File {
            path: &path,
            offset: 0,
            len: size,
            on_bytes: Some(&reporter),
        };
        let session = match spare {
            Some(session) => session,
            None => target.client.start_upload()?,
        };
        target.client.send_blob(session, diff_id, payload)?;
        progress.layer(diff_id, size, LayerState::Pushed);
        Ok(manifest::plain_layer(diff_id, size))
    }
}

impl<'a> Target<'a> {
    /// A push client for `reference` whose token also covers the repositories the layers (most
    /// recent places first) and the config could be mounted from.
    fn new(reference: &'a Reference, jobs: &[LayerJob], config_sources: &[String]) -> Result<Target<'a>> {
        let mut mount_from: Vec<String> = Vec::new();
        let layer_repos = jobs.iter().flat_map(|j| j.sources.iter().map(|s| &s.repository));
        for repo in layer_repos.chain(config_sources) {
            if mount_from.len() == MAX_MOUNT_SOURCES {
                break;
            }
            if *repo != reference.path && !mount_from.contains(repo) {
                mount_from.push(repo.clone());
            }
        }
        let mut client = Client::new(&reference.domain, &reference.path, Access::Push)?;
        for repo in &mount_from {
            client.add_mount_source(repo);
        }
        Ok(Target {
            client,
            reference,
            mount_from,
        })
    }

    /// The descriptor of a blob of the layer the repository has already: a remembered one, else the
    /// plain tar.
    fn existing(&self, job: &LayerJob) -> Result<Option<Descriptor>> {
        let mut checked: Vec<&str> = Vec::new();
        for source in &job.sources {
            if checked.len() == MAX_ATTEMPTS {
                break;
            }
            if checked.contains(&source.digest.as_str()) {
                continue;
            }
            checked.push(&source.digest);
            if self.client.blob_exists(&source.digest)? {
                return Ok(Some(manifest::descriptor(
                    &source.media_type,
                    &source.digest,
                    source.size,
                )));
            }
        }
        if !checked.contains(&job.diff_id.as_str()) && self.client.blob_exists(&job.diff_id)? {
            return Ok(Some(manifest::descriptor(OCI_LAYER_TAR, &job.diff_id, job.size)));
        }
        Ok(None)
    }

    /// Tries to mount `(digest, repository)` candidates in order, only from repositories the token
    /// covers. Returns the index of the one mounted, or else the upload the last declined mount
    /// opened, so the fallback upload needs no request of its own.
    fn try_mounts(&self, candidates: &[(&str, &str)]) -> Result<(Option<usize>, Option<Session>)> {
        let mut spare: Option<Session> = None;
        let usable = candidates
            .iter()
            .enumerate()
            .filter(|(_, (_, repo))| {
                *repo != self.reference.path && self.mount_from.iter().any(|m| m == repo)
            })
            .take(MAX_ATTEMPTS);
        for (i, (digest, repo)) in usable {
            match self.client.mount_blob(digest, repo)? {
                Mount::Mounted => {
                    if let Some(session) = spare {
                        self.client.cancel_upload(session);
                    }
                    return Ok((Some(i), None));
                }
                Mount::Declined(session) => {
                    if let Some(old) = spare.replace(session) {
                        self.client.cancel_upload(old);
                    }
                }
                Mount::Refused => {}
            }
        }
        Ok((None, spare))
    }

    /// Gets the config blob into the repository: there already, mounted, or uploaded.
    fn push_config(&self, config: &[u8], sources: &[String]) -> Result<()> {
        let digest = sha256_digest(config);
        if self.client.blob_exists(&digest)? {
            return Ok(());
        }
        let candidates: Vec<(&str, &str)> = sources.iter().map(|r| (digest.as_str(), r.as_str())).collect();
        let (mounted, spare) = self.try_mounts(&candidates)?;
        if mounted.is_some() {
            return Ok(());
        }
        let session = match spare {
            Some(session) => session,
            None => self.client.start_upload()?,
        };
        self.client.send_blob(session, &digest, Payload::Bytes(config))
    }
}
