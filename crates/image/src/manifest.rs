//! Image manifests and indexes as registries and archives carry them: OCI image manifest and index,
//! Docker manifest v2 schema 2 and manifest list (the same JSON shapes under other media types), with
//! platform selection, the layer media types berth accepts, and the OCI manifest berth writes for
//! `save --format oci-archive` and `push`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer: what berth stores, saves and pushes.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// A gzip-compressed Docker layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// An uncompressed Docker layer.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The annotation naming an image in an OCI layout's index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and docker put next to it with the full name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Every manifest type berth reads, for a registry's `Accept` header.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest, index or config berth reads into memory.
pub const MAX_JSON_SIZE: u64 = 16 << 20;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Length of the content in bytes.
    pub size: u64,
    /// For index entries: the platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (an OCI layout's index names its images here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Foreign layers: where the content lives instead of the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture in Go's names: amd64, arm64, arm, 386, ppc64le, s390x...
    pub architecture: String,
    /// Operating system: linux, windows...
    pub os: String,
    /// CPU variant: v7 for arm, v8 for arm64...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || Error::BadManifest {
            message: format!("invalid platform \"{s}\": expected OS/ARCH[/VARIANT], e.g. linux/amd64"),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: normalize_arch(arch).to_string(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_string(),
                architecture: normalize_arch(arch).to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(bad()),
        }
    }

    /// The platform of this machine, as registries name it.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether an index entry's platform satisfies this wanted one (a variant only matters when asked).
    fn accepts(&self, candidate: &Platform) -> bool {
        candidate.os == self.os
            && candidate.architecture == self.architecture
            && match &self.variant {
                None => true,
                Some(want) => {
                    candidate
                        .variant
                        .as_deref()
                        .unwrap_or(default_variant(&self.architecture))
                        == want
                }
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn default_variant(arch: &str) -> &'static str {
    match arch {
        "arm64" => "v8",
        "arm" => "v7",
        _ => "",
    }
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (optional in OCI, required by Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index or manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest document: one image, or a list of them.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// An image manifest.
    Image(Manifest),
    /// An index / manifest list.
    Index(Index),
}

/// Parses a manifest or index, telling them apart by `content_type` (the HTTP header, if any), the
/// document's `mediaType` and finally its shape. `what` names the document in errors.
pub fn parse(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Parsed> {
    let bad = |reason: String| Error::BadManifest {
        message: format!("{what}: {reason}"),
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let schema = value.get("schemaVersion").and_then(|v| v.as_u64());
    if schema == Some(1) {
        return Err(bad("Docker manifest schema 1 is not supported".into()));
    }
    let media_type = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .or(content_type.map(|c| c.split(';').next().unwrap_or(c).trim()))
        .unwrap_or("");
    let is_index = match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        _ => value.get("manifests").is_some(),
    };
    if is_index {
        let index: Index =
            serde_json::from_value(value).map_err(|e| bad(format!("not a valid image index: {e}")))?;
        Ok(Parsed::Index(index))
    } else {
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| bad(format!("not a valid image manifest: {e}")))?;
        Ok(Parsed::Image(manifest))
    }
}

/// Picks the manifest for `platform` from an index.
pub fn select_platform<'a>(index: &'a Index, platform: &Platform, what: &str) -> Result<&'a Descriptor> {
    let mut available = Vec::new();
    for entry in &index.manifests {
        match &entry.platform {
            Some(p) if platform.accepts(p) => return Ok(entry),
            Some(p) if p.os != "unknown" => available.push(p.to_string()),
            _ => {}
        }
    }
    // An index without platforms (an OCI layout of one image) means "the" image.
    if index.manifests.len() == 1 && index.manifests[0].platform.is_none() {
        return Ok(&index.manifests[0]);
    }
    Err(Error::BadManifest {
        message: format!(
            "{what}: no matching manifest for {platform} in the manifest list entries (available: {})",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        ),
    })
}

impl Manifest {
    /// Checks that this is a container image berth can run: a known config type and layers that are
    /// all distributable tars. Returns the compression of nothing; content is sniffed when read.
    pub fn check_supported(&self, what: &str) -> Result<()> {
        let bad = |message: String| Error::BadManifest {
            message: format!("{what}: {message}"),
        };
        let config_type = self.config.media_type.as_str();
        if !matches!(config_type, OCI_CONFIG | DOCKER_CONFIG | "") {
            return Err(bad(format!(
                "config media type \"{config_type}\" is not a container image"
            )));
        }
        for layer in &self.layers {
            let t = layer.media_type.as_str();
            if t.contains("foreign") || t.contains("nondistributable") || layer.urls.is_some() {
                return Err(bad(format!(
                    "layer {} is a foreign (non-distributable) layer ({t}); berth does not fetch those",
                    layer.digest
                )));
            }
            let known = matches!(
                t,
                OCI_LAYER_TAR | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | DOCKER_LAYER_GZIP | DOCKER_LAYER_TAR | ""
            );
            if !known {
                return Err(bad(format!(
                    "layer {} has unsupported media type \"{t}\"",
                    layer.digest
                )));
            }
        }
        Ok(())
    }
}

/// The OCI media type of a layer blob that a manifest describes as `media_type`, for berth's own
/// OCI manifests: Docker's names become their OCI equivalents. `None` for anything else (no type
/// at all, say), which berth then never names in a manifest of its own.
pub fn oci_layer_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => Some(OCI_LAYER_TAR),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(OCI_LAYER_GZIP),
        OCI_LAYER_ZSTD => Some(OCI_LAYER_ZSTD),
        _ => None,
    }
}

/// The descriptor of a stored layer as berth keeps it: its uncompressed tar, whose digest is the diff_id.
pub(crate) fn plain_layer(diff_id: &str, size: u64) -> Descriptor {
    descriptor(OCI_LAYER_TAR, diff_id, size)
}

/// A descriptor with nothing but type, digest and size.
pub(crate) fn descriptor(media_type: &str, digest: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size,
        platform: None,
        annotations: None,
        urls: None,
    }
}

/// The OCI manifest of a stored image: its config as is, its layers uncompressed (as berth stores
/// them), so each layer's digest is its diff_id. Returns the manifest bytes.
pub(crate) fn oci_manifest_for(config: &[u8], layers: &[(String, u64)]) -> Vec<u8> {
    let layers: Vec<Descriptor> = layers
        .iter()
        .map(|(diff_id, size)| plain_layer(diff_id, *size))
        .collect();
    oci_manifest_with(config, layers)
}

/// An OCI manifest of `config` with these layer descriptors, bottom first. The config's diff_ids
/// name the uncompressed layers whatever blobs the descriptors name, as in any registry's manifests.
pub(crate) fn oci_manifest_with(config: &[u8], layers: Vec<Descriptor>) -> Vec<u8> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: descriptor(
            OCI_CONFIG,
            &crate::digest::sha256_digest(config),
            config.len() as u64,
        ),
        layers,
        annotations: None,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(&manifest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
        assert_eq!(Platform::parse("linux/x86_64").unwrap().architecture, "amd64");
        let v8 = Platform::parse("linux/arm64/v8").unwrap();
        let plain = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None,
        };
        assert!(v8.accepts(&plain));
        assert!(p.accepts(&plain));
        assert!(!Platform::parse("linux/amd64").unwrap().accepts(&plain));
    }

    #[test]
    fn parses_by_media_type_and_shape() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":1},"layers":[]}"#;
        assert!(matches!(parse(m, None, "m").unwrap(), Parsed::Image(_)));
        let i = br#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:aa","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let Parsed::Index(index) = parse(i, Some(DOCKER_MANIFEST_LIST), "i").unwrap() else {
            panic!("not an index");
        };
        assert!(select_platform(&index, &Platform::parse("linux/amd64").unwrap(), "i").is_ok());
        let err = select_platform(&index, &Platform::parse("linux/arm64").unwrap(), "i").unwrap_err();
        assert!(
            err.to_string().contains("no matching manifest for linux/arm64"),
            "{err}"
        );
        let err = parse(b"<html>", None, "busybox").unwrap_err().to_string();
        assert!(err.starts_with("busybox: not valid JSON"), "{err}");
        assert!(parse(br#"{"schemaVersion":1}"#, None, "x").is_err());
    }

    #[test]
    fn foreign_layers_are_refused() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:aa","size":1},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:bb","size":1,"urls":["https://x"]}]}"#;
        let Parsed::Image(m) = parse(m, None, "w").unwrap() else {
            panic!()
        };
        let err = m.check_supported("w").unwrap_err().to_string();
        assert!(err.contains("foreign"), "{err}");
    }

    #[test]
    fn layer_types_become_oci_ones() {
        assert_eq!(oci_layer_type(DOCKER_LAYER_GZIP), Some(OCI_LAYER_GZIP));
        assert_eq!(oci_layer_type(DOCKER_LAYER_TAR), Some(OCI_LAYER_TAR));
        assert_eq!(oci_layer_type(OCI_LAYER_ZSTD), Some(OCI_LAYER_ZSTD));
        assert_eq!(oci_layer_type(""), None);
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            None
        );
    }

    #[test]
    fn mixed_manifests_keep_each_layer_as_described() {
        let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:l1","sha256:l2"]}}"#;
        let layers = vec![
            descriptor(OCI_LAYER_GZIP, "sha256:gz", 5),
            plain_layer("sha256:l2", 9),
        ];
        let bytes = oci_manifest_with(config, layers);
        let Parsed::Image(m) = parse(&bytes, None, "m").unwrap() else {
            panic!("not a manifest")
        };
        m.check_supported("m").unwrap();
        assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST));
        let got: Vec<(&str, &str, u64)> = m
            .layers
            .iter()
            .map(|l| (l.media_type.as_str(), l.digest.as_str(), l.size))
            .collect();
        assert_eq!(
            got,
            [(OCI_LAYER_GZIP, "sha256:gz", 5), (OCI_LAYER_TAR, "sha256:l2", 9)]
        );
        // The plain-layer form is what `save` writes, unchanged.
        assert_eq!(
            oci_manifest_for(config, &[("sha256:l2".into(), 9)]),
            oci_manifest_with(config, vec![plain_layer("sha256:l2", 9)])
        );
    }
}
