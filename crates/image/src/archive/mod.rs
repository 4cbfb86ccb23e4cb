//! Image archives: `save` writes and `load` reads the two formats docker, podman and skopeo exchange.
//!
//! - **docker-archive** (`docker save`): `manifest.json` (a list of `{Config, RepoTags, Layers}`),
//!   each config as `<id hex>.json`, layers as `<dir>/layer.tar` (docker < 25), `<hex>.tar`
//!   (podman, skopeo) or `blobs/sha256/<hex>` (docker ≥ 25), plus the legacy `repositories` file.
//! - **oci-archive**: an OCI image layout in a tar: `oci-layout`, `index.json` (images named by the
//!   `org.opencontainers.image.ref.name` annotation), content under `blobs/sha256/`.

mod index;
mod load;
mod save;

use serde::{Deserialize, Serialize};

use crate::image::ImageId;

pub use save::ArchiveFormat;

/// One image of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DockerManifestEntry {
    /// Path of the config in the archive.
    #[serde(rename = "Config")]
    config: String,
    /// Names to tag the image with (`null` for an untagged image).
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom first.
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// An image `load` added (or found already stored), with the tags it now has from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The image ID.
    pub id: ImageId,
    /// Normalized tags the archive gave it, possibly none.
    pub tags: Vec<String>,
}

/// The content of the `oci-layout` file.
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
