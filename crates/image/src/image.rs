//! An image as the rest of berth sees it: its ID, parsed config, tags and layers.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

use crate::db::ImageRow;
use crate::error::{Error, Result};
use crate::store::Store;

/// An image ID: `sha256:<hex>` of the image's config JSON bytes, exactly as docker computes it.
pub type ImageId = String;

/// A stored image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config bytes.
    pub id: String,
    /// The OCI image configuration (entrypoint, cmd, env, history, rootfs...).
    pub config: ImageConfiguration,
    /// Normalized tags pointing at the image (`busybox:latest`), sorted; empty for a dangling image.
    pub tags: Vec<String>,
    /// When the image was created, RFC 3339 (from the config; empty if the config has none).
    pub created: String,
    /// Sum of the unpacked sizes of its layers, in bytes.
    pub size: u64,
    /// The layers' diff_ids, bottom layer first (the config's `rootfs.diff_ids`).
    pub diff_ids: Vec<String>,
}

impl Image {
    /// The 12 hex digits docker shows as IMAGE ID.
    pub fn short_id(&self) -> &str {
        let hex = self
            .id
            .strip_prefix(crate::digest::SHA256_PREFIX)
            .unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }

    /// The unpacked layer directories, top layer first, as overlay's `lowerdir=` lists them.
    pub fn lower_dirs(&self, store: &Store) -> Vec<PathBuf> {
        self.diff_ids.iter().rev().map(|d| store.layer_dir(d)).collect()
    }

    /// Builds an image from its row and tags; the config bytes are parsed here.
    pub(crate) fn from_row(row: ImageRow, tags: Vec<String>) -> Result<Image> {
        let config: ImageConfiguration = serde_json::from_slice(&row.config).map_err(|e| Error::Corrupt {
            what: format!("config of image {}: {e}", row.id),
        })?;
        Ok(Image {
            id: row.id,
            config,
            tags,
            created: row.created,
            size: row.size,
            diff_ids: row.layers,
        })
    }
}
