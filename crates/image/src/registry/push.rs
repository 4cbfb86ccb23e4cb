//! `push`: a stored image → a registry, as an OCI manifest with uncompressed layers (exactly the
//! blobs berth stores, so every digest is already known and nothing is recompressed).
//!
//! Each blob is checked with `HEAD` first and only uploaded if the repository lacks it: mounted from
//! another repository of the same registry that the image was pulled from or pushed to (nothing is
//! sent then), else in one `POST` + `PUT ?digest=` exchange, or in `PATCH` chunks when large. The
//! manifest goes last, so a failed push never leaves a tag pointing at missing content.

use std::sync::Arc;

use rusqlite::Connection;

use super::client::{Access, Client, Payload, Uploaded};
use super::{LayerState, Progress};
use crate::digest::sha256_digest;
use crate::error::{Error, IoContext, Result};
use crate::lookup::Found;
use crate::manifest::{self, OCI_MANIFEST};
use crate::reference;
use crate::stage::run_parallel;
use crate::store::Store;

/// Blobs uploaded at once.
const PUSH_THREADS: usize = 3;

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

impl Store {
    /// Pushes the image `source` names to `target` (default: `source` itself, which must then be a
    /// name with a tag), and records the resulting repo digest.
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
        let mut layers = Vec::new();
        for diff_id in &image.diff_ids {
            let path = self.blob_path(diff_id)?;
            let size = std::fs::metadata(&path)
                .io_context(|| format!("reading layer {diff_id} ({})", path.display()))?
                .len();
            layers.push((diff_id.clone(), size));
        }

        let mut client = Client::new(&parsed.domain, &parsed.path, Access::Push)?;
        // Repositories of the same registry the image came from or went to may hold its blobs.
        let mut mount_from: Vec<String> = Vec::new();
        for name in self.repo_digests(conn, &image.id)? {
            let Some((repo, _)) = name.split_once('@') else {
                continue;
            };
            let Ok(other) = reference::parse(repo) else {
                continue;
            };
            if other.domain == parsed.domain && other.path != parsed.path && !mount_from.contains(&other.path)
            {
                mount_from.push(other.path);
            }
        }
        // Tokens grow with every scope asked for: a few sources are enough.
        mount_from.truncate(3);
        for repo in &mount_from {
            client.add_mount_source(repo);
        }
        let client = client;
        let mut unique: Vec<(String, u64)> = Vec::new();
        for layer in &layers {
            if !unique.iter().any(|(d, _)| *d == layer.0) {
                unique.push(layer.clone());
            }
        }
        run_parallel(unique, PUSH_THREADS, |(diff_id, size)| {
            if client.blob_exists(&diff_id)? {
                progress.layer(&diff_id, size, LayerState::AlreadyExists);
                return Ok(());
            }
            progress.layer(&diff_id, size, LayerState::Started);
            let path = self.blob_path(&diff_id)?;
            let reporter = |n: u64| progress.bytes(&diff_id, n);
            let payload = Payload::File {
                path: &path,
                offset: 0,
                len: size,
                on_bytes: Some(&reporter),
            };
            match client.upload_blob(&diff_id, payload, &mount_from)? {
                Uploaded::Sent => progress.layer(&diff_id, size, LayerState::Pushed),
                Uploaded::Mounted(from) => progress.mounted(&diff_id, size, &from),
            }
            Ok(())
        })?;
        let config_digest = sha256_digest(&config);
        if !client.blob_exists(&config_digest)? {
            client.upload_blob(&config_digest, Payload::Bytes(&config), &mount_from)?;
        }

        let manifest = manifest::oci_manifest_for(&config, &layers);
        client.put_manifest(&tag, OCI_MANIFEST, &manifest)?;
        let digest = sha256_digest(&manifest);
        let repo_digest = format!("{}@{digest}", parsed.familiar_name());
        self.set_names(conn, &image.id, &[], &[repo_digest])?;
        Ok(Pushed {
            reference: parsed.to_string(),
            tag,
            digest,
            size: manifest.len() as u64,
        })
    }
}
