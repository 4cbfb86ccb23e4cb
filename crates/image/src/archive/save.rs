//! `save`: stored images → a docker-archive or an oci-archive, streamed to any writer.
//!
//! Everything is resolved and checked before the first byte is written, so an unknown image fails
//! without output. Layers are written uncompressed, as stored; a layer shared by several images is
//! written once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};

use rusqlite::Connection;
use serde_json::json;

use super::{DockerManifestEntry, OCI_LAYOUT};
use crate::digest::{hex_part, sha256_digest};
use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::lookup::{lookup, Found};
use crate::manifest::{self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX, OCI_MANIFEST};
use crate::reference;
use crate::store::Store;

/// The archive format `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save`'s format, read by `docker load`, `podman load` and skopeo's `docker-archive:`.
    DockerArchive,
    /// An OCI image layout in a tar, read by `podman load` and skopeo's `oci-archive:`.
    OciArchive,
}

/// One image to write, with the tags the user named it by.
struct SaveImage {
    image: Image,
    config: Vec<u8>,
    tags: Vec<String>,
    /// (diff_id, size of the stored uncompressed blob), bottom first.
    layers: Vec<(String, u64)>,
}

impl Store {
    /// Writes the images `references` name as one archive. An image named by a tag carries that tag;
    /// one named by ID carries none (as docker does).
    pub fn save(
        &self,
        conn: &Connection,
        references: &[String],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<()> {
        let images = self.collect_for_save(conn, references)?;
        let mut builder = tar::Builder::new(out);
        match format {
            ArchiveFormat::DockerArchive => self.write_docker(&mut builder, &images)?,
            ArchiveFormat::OciArchive => self.write_oci(&mut builder, &images)?,
        }
        let mut out = builder.into_inner().io_context(|| "writing the archive")?;
        out.flush().io_context(|| "writing the archive")
    }

    fn collect_for_save(&self, conn: &Connection, references: &[String]) -> Result<Vec<SaveImage>> {
        let mut images: Vec<SaveImage> = Vec::new();
        for reference in references {
            let (image, found) = lookup(conn, reference)?;
            let tag = match found {
                Found::Tag(name) => Some(name),
                Found::Digest(_) | Found::Id => None,
            };
            if let Some(existing) = images.iter_mut().find(|i| i.image.id == image.id) {
                if let Some(tag) = tag {
                    if !existing.tags.contains(&tag) {
                        existing.tags.push(tag);
                    }
                }
                continue;
            }
            let config = self.config_bytes(conn, &image.id)?;
            let mut layers = Vec::new();
            for diff_id in &image.diff_ids {
                let path = self.blob_path(diff_id)?;
                let size = std::fs::metadata(&path)
                    .io_context(|| format!("reading layer {diff_id} ({})", path.display()))?
                    .len();
                layers.push((diff_id.clone(), size));
            }
            images.push(SaveImage {
                image,
                config,
                tags: tag.into_iter().collect(),
                layers,
            });
        }
        Ok(images)
    }

    fn write_docker<W: Write>(&self, builder: &mut tar::Builder<W>, images: &[SaveImage]) -> Result<()> {
        let mut written: Vec<&str> = Vec::new();
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for save in images {
            let config_name = format!("{}.json", hex_part(&save.image.id)?);
            append_bytes(builder, &config_name, &save.config)?;
            let mut layer_paths = Vec::new();
            for (diff_id, size) in &save.layers {
                let hex = hex_part(diff_id)?;
                let path = format!("{hex}/layer.tar");
                if !written.contains(&diff_id.as_str()) {
                    append_dir(builder, hex)?;
                    append_bytes(builder, &format!("{hex}/VERSION"), b"1.0")?;
                    self.append_layer(builder, &path, diff_id, *size)?;
                    written.push(diff_id);
                }
                layer_paths.push(path);
            }
            if let Some(top) = save.layers.last() {
                for tag in &save.tags {
                    let (repo, t) = split_tag(tag);
                    repositories
                        .entry(repo)
                        .or_default()
                        .insert(t, hex_part(&top.0)?.to_string());
                }
            }
            manifest.push(DockerManifestEntry {
                config: config_name,
                repo_tags: (!save.tags.is_empty()).then(|| save.tags.clone()),
                layers: layer_paths,
            });
        }
        append_bytes(builder, "manifest.json", &to_json(&manifest)?)?;
        if !repositories.is_empty() {
            append_bytes(builder, "repositories", &to_json(&repositories)?)?;
        }
        Ok(())
    }

    fn write_oci<W: Write>(&self, builder: &mut tar::Builder<W>, images: &[SaveImage]) -> Result<()> {
        let mut entries = Vec::new();
        let mut manifests = Vec::new();
        for save in images {
            let bytes = manifest::oci_manifest_for(&save.config, &save.layers);
            let digest = sha256_digest(&bytes);
            let entry = |annotations: Option<serde_json::Value>| {
                let mut e = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len()});
                if let Some(a) = annotations {
                    e["annotations"] = a;
                }
                e
            };
            if save.tags.is_empty() {
                entries.push(entry(None));
            }
            for tag in &save.tags {
                let full = full_reference(tag);
                entries.push(entry(Some(json!({
                    ANNOTATION_REF_NAME: full,
                    ANNOTATION_CONTAINERD_NAME: full,
                }))));
            }
            manifests.push((digest.clone(), bytes));
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});

        append_bytes(builder, "oci-layout", OCI_LAYOUT.as_bytes())?;
        append_bytes(builder, "index.json", &to_json(&index)?)?;
        append_dir(builder, "blobs")?;
        append_dir(builder, "blobs/sha256")?;
        let mut written: Vec<String> = Vec::new();
        let mut once = |digest: &str| {
            let new = !written.iter().any(|w| w == digest);
            if new {
                written.push(digest.to_string());
            }
            new
        };
        for (save, (digest, bytes)) in images.iter().zip(&manifests) {
            if once(digest) {
                append_bytes(builder, &format!("blobs/sha256/{}", hex_part(digest)?), bytes)?;
            }
            if once(&save.image.id) {
                append_bytes(
                    builder,
                    &format!("blobs/sha256/{}", hex_part(&save.image.id)?),
                    &save.config,
                )?;
            }
            for (diff_id, size) in &save.layers {
                if once(diff_id) {
                    self.append_layer(
                        builder,
                        &format!("blobs/sha256/{}", hex_part(diff_id)?),
                        diff_id,
                        *size,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Streams a stored layer blob into the archive. The blob was verified when it was stored; a
    /// size that changed since means the store was tampered with.
    fn append_layer<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        path: &str,
        diff_id: &str,
        size: u64,
    ) -> Result<()> {
        let blob = self.blob_path(diff_id)?;
        let file = File::open(&blob).io_context(|| format!("opening layer {diff_id}"))?;
        let mut header = header(size, 0o644);
        let reader = BufReader::with_capacity(1 << 20, file).take(size);
        builder
            .append_data(&mut header, path, reader)
            .io_context(|| format!("writing layer {diff_id} to the archive"))
    }
}

fn header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(builder: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = header(bytes.len() as u64, 0o644);
    builder
        .append_data(&mut header, path, bytes)
        .io_context(|| format!("writing {path} to the archive"))
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut header = header(0, 0o755);
    header.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(&mut header, format!("{path}/"), std::io::empty())
        .io_context(|| format!("writing {path} to the archive"))
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Corrupt {
        what: format!("serializing archive metadata: {e}"),
    })
}

/// `busybox:latest` → (`busybox`, `latest`).
fn split_tag(tag: &str) -> (String, String) {
    match reference::parse(tag) {
        Ok(r) => (
            r.familiar_name(),
            r.tag.unwrap_or_else(|| reference::DEFAULT_TAG.into()),
        ),
        Err(_) => (tag.to_string(), reference::DEFAULT_TAG.into()),
    }
}

/// `busybox:latest` → `docker.io/library/busybox:latest`, the name podman and containerd expect in an
/// OCI layout.
fn full_reference(tag: &str) -> String {
    match reference::parse(tag) {
        Ok(r) => format!(
            "{}:{}",
            r.full_name(),
            r.tag.as_deref().unwrap_or(reference::DEFAULT_TAG)
        ),
        Err(_) => tag.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_tag("busybox:1"), ("busybox".into(), "1".into()));
        assert_eq!(
            split_tag("localhost:5000/a/b:c"),
            ("localhost:5000/a/b".into(), "c".into())
        );
        assert_eq!(
            full_reference("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_reference("localhost:5000/x:y"), "localhost:5000/x:y");
    }
}
