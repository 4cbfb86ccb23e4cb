//! The store on disk and the two ways images are made here: `import` (a rootfs tar → a one-layer image)
//! and `commit` (a container's overlay upper dir → a new layer on top of its image).
//!
//! Layout under the store root `R`:
//! - `R/blobs/sha256/<hex>`: configs and uncompressed layer tars, named by the digest of their bytes;
//! - `R/layers/<diff_id hex>/`: each layer unpacked once, overlay-ready, shared by every image using it.
//!
//! Content is made under `.tmp-*` names first and moved to its final name only inside the write
//! transaction that adds its rows, so a crash never leaves half a layer under a final name, and a
//! concurrent `remove` (which also moves files only inside its transaction) cannot delete a layer that
//! an import is about to reference.

use std::fs;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Arch, Config, History, ImageConfiguration, Os};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::{self, ImageRow};
use crate::digest::{self, HashWriter, TeeHasher, EMPTY_LAYER_DIFF_ID};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{place, sync_filesystem, TempPath};
use crate::image::{Image, ImageId};
use crate::reference;
use crate::time::now_rfc3339;
use crate::unpack::unpack_tar;

/// Prefix of content being made; the creating process's pid follows, so `sweep` can tell leftovers.
pub(crate) const TMP_PREFIX: &str = ".tmp-";
/// The history comment of an import without a message, as docker writes it for `docker import -`.
const DEFAULT_IMPORT_COMMENT: &str = "Imported from -";

/// The content-addressed image store under one root directory.
///
/// Methods that change images take `&mut Connection` and run one `BEGIN IMMEDIATE` transaction each,
/// so concurrent berth processes serialize on SQLite's write lock: give the connection a busy timeout.
/// Slow work (unpacking, hashing) happens before the transaction starts.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An image about to be added by [`Store::add_images`].
pub(crate) struct NewImage {
    /// The config JSON, exactly as it will be stored and hashed.
    pub config: Vec<u8>,
    /// Normalized tags to point at it.
    pub tags: Vec<String>,
    /// Repo digests (`name@sha256:…`) to record for it.
    pub digests: Vec<String>,
}

/// A layer unpacked and stored under temporary names, waiting for its transaction.
pub(crate) struct StagedLayer {
    pub diff_id: String,
    pub size: u64,
    pub dir: TempPath,
    pub blob: TempPath,
}

impl Store {
    /// Opens (creating as needed) the store rooted at `root`, usually `<berth root>/image`.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in [store.blobs_dir(), store.layers_dir()] {
            fs::create_dir_all(&dir).io_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(store)
    }

    /// Creates the store's tables; the engine calls it once per connection setup.
    pub fn migrate(conn: &Connection) -> Result<()> {
        db::migrate(conn)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unpacked directory of a layer, `R/layers/<hex>`.
    ///
    /// A malformed diff_id yields a path that never exists rather than one outside the store.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        match digest::hex_part(diff_id) {
            Ok(hex) => self.layers_dir().join(hex),
            Err(_) => self.layers_dir().join(".invalid-digest"),
        }
    }

    /// Where the blob with `digest` (`sha256:<hex>`) is stored.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs_dir().join(digest::hex_part(digest)?))
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Imports a rootfs tar (as `docker export` writes it; plain or gzip, detected by magic) as a
    /// one-layer image, tagged `reference` if given.
    ///
    /// `config` becomes the image config's `config` (Cmd, Entrypoint, Env, WorkingDir...); `message`
    /// the history comment. Nothing is stored if the tar is refused.
    pub fn import(
        &self,
        conn: &mut Connection,
        tar: impl Read,
        reference: Option<&str>,
        config: Option<Config>,
        message: Option<&str>,
    ) -> Result<ImageId> {
        // Validate the name before doing the expensive part.
        let tag = reference.map(normalize_tag).transpose()?;
        let layer = self.stage_layer_from_tar(tar)?;

        let created = now_rfc3339();
        let mut image_config = ImageConfiguration::default();
        image_config.set_created(Some(created.clone()));
        image_config.set_architecture(Arch::default());
        image_config.set_os(Os::Linux);
        image_config.set_config(config);
        image_config
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.clone());
        let mut history = History::default();
        history.set_created(Some(created));
        history.set_comment(Some(message.unwrap_or(DEFAULT_IMPORT_COMMENT).to_string()));
        image_config.set_history(Some(vec![history]));

        self.store_image(conn, &image_config, vec![layer], tag.as_deref())
    }

    /// Makes a new image from `parent` plus the changes in an overlay `upper_dir` as one more layer.
    ///
    /// `config` becomes the new image's `config`; the history gets an entry with `comment`, `author`
    /// and `created_by` (the config's Cmd, as docker records the container's command). An upper dir
    /// without changes adds no layer, only an `empty_layer` history entry, as docker does. The overlay
    /// must have been mounted with `redirect_dir=off,metacopy=off` (see [`crate::diff`]).
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &self,
        conn: &mut Connection,
        parent: &Image,
        upper_dir: &Path,
        config: Config,
        reference: Option<&str>,
        comment: Option<&str>,
        author: Option<&str>,
    ) -> Result<ImageId> {
        let tag = reference.map(normalize_tag).transpose()?;
        let layer = self.stage_layer_from_upper(upper_dir)?;

        let created = now_rfc3339();
        let created_by = config.cmd().as_ref().map(|cmd| cmd.join(" "));
        let mut image_config = parent.config.clone();
        image_config.set_created(Some(created.clone()));
        image_config.set_author(author.map(str::to_string));
        image_config.set_config(Some(config));
        if let Some(layer) = &layer {
            image_config
                .rootfs_mut()
                .diff_ids_mut()
                .push(layer.diff_id.clone());
        }
        let mut entry = History::default();
        entry.set_created(Some(created));
        entry.set_author(author.map(str::to_string));
        entry.set_created_by(created_by);
        entry.set_comment(comment.map(str::to_string));
        if layer.is_none() {
            entry.set_empty_layer(Some(true));
        }
        image_config
            .history_mut()
            .get_or_insert_with(Vec::new)
            .push(entry);

        self.store_image(conn, &image_config, layer.into_iter().collect(), tag.as_deref())
    }

    /// Unpacks a (possibly compressed) tar in one pass: the uncompressed stream is hashed (diff_id),
    /// copied to a blob file, and unpacked into a temporary layer directory.
    pub(crate) fn stage_layer_from_tar(&self, tar: impl Read) -> Result<StagedLayer> {
        let stream = crate::compression::decompress(tar)?;
        let blobs = self.blobs_dir();
        let (blob, blob_file) = TempPath::new_file(&blobs, TMP_PREFIX)
            .io_context(|| format!("creating a file in {}", blobs.display()))?;
        let dir = self.new_layer_tmp()?;

        let tee = TeeHasher::new(stream, BufWriter::with_capacity(1 << 20, blob_file));
        let mut buffered = BufReader::with_capacity(256 * 1024, tee);
        // A failing blob write surfaces as a read error inside the tar parser; report it as what it is.
        let blob_error = |tee: &mut TeeHasher<_, _>, e: Error| match tee.take_copy_error() {
            Some(error) => Error::Io {
                context: "writing the layer blob".into(),
                error,
            },
            None => e,
        };
        let size = match unpack_tar(&mut buffered, dir.path()) {
            Ok(size) => size,
            Err(e) => return Err(blob_error(buffered.get_mut(), e)),
        };
        // Hash what follows the end-of-archive marker too: docker's diff_id covers the whole stream.
        let mut tee = buffered.into_inner();
        if let Err(e) = std::io::copy(&mut tee, &mut std::io::sink()) {
            return Err(blob_error(
                &mut tee,
                Error::BadTar {
                    message: e.to_string(),
                },
            ));
        }
        let (diff_id, _, writer) = tee.finish().map_err(|e| Error::BadTar {
            message: e.to_string(),
        })?;
        let blob_file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .io_context(|| "writing the layer blob")?;
        blob_file.sync_all().io_context(|| "writing the layer blob")?;
        self.seal_layer_dir(&dir)?;
        Ok(StagedLayer {
            diff_id,
            size,
            dir,
            blob,
        })
    }

    /// Archives an upper dir into a blob file (hashing it on the way), then unpacks that blob into a
    /// temporary layer directory, so the layer on disk is exactly what the tar says. `None` when there
    /// are no changes.
    fn stage_layer_from_upper(&self, upper: &Path) -> Result<Option<StagedLayer>> {
        let blobs = self.blobs_dir();
        let (blob, blob_file) = TempPath::new_file(&blobs, TMP_PREFIX)
            .io_context(|| format!("creating a file in {}", blobs.display()))?;
        let mut writer = HashWriter::new(BufWriter::with_capacity(1 << 20, blob_file));
        crate::diff::write_layer_tar(upper, &mut writer)?;
        let (diff_id, _, buffered) = writer.finish();
        let mut blob_file = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .io_context(|| "writing the layer blob")?;
        if diff_id == EMPTY_LAYER_DIFF_ID {
            return Ok(None);
        }
        blob_file.sync_all().io_context(|| "writing the layer blob")?;
        blob_file.rewind().io_context(|| "reading the layer blob")?;

        let dir = self.new_layer_tmp()?;
        let size = unpack_tar(BufReader::with_capacity(256 * 1024, blob_file), dir.path())?;
        self.seal_layer_dir(&dir)?;
        Ok(Some(StagedLayer {
            diff_id,
            size,
            dir,
            blob,
        }))
    }

    fn new_layer_tmp(&self) -> Result<TempPath> {
        let layers = self.layers_dir();
        TempPath::new_dir(&layers, TMP_PREFIX)
            .io_context(|| format!("creating a directory in {}", layers.display()))
    }

    /// Gives the layer root the usual 0755 and flushes it to disk before it may get its final name.
    fn seal_layer_dir(&self, dir: &TempPath) -> Result<()> {
        let context = || format!("finishing {}", dir.path().display());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).io_context(context)?;
        sync_filesystem(dir.path()).io_context(context)
    }

    /// Writes `bytes` to a temporary blob file, synced.
    fn stage_blob(&self, bytes: &[u8]) -> Result<TempPath> {
        let blobs = self.blobs_dir();
        let context = || format!("writing a blob in {}", blobs.display());
        let (tmp, mut file) = TempPath::new_file(&blobs, TMP_PREFIX).io_context(context)?;
        file.write_all(bytes).io_context(context)?;
        file.sync_all().io_context(context)?;
        Ok(tmp)
    }

    /// Stores the config blob and moves the staged layers into place, then adds all rows, in one write
    /// transaction.
    fn store_image(
        &self,
        conn: &mut Connection,
        image_config: &ImageConfiguration,
        layers: Vec<StagedLayer>,
        tag: Option<&str>,
    ) -> Result<ImageId> {
        let bytes = serde_json::to_vec(image_config).map_err(|e| Error::Corrupt {
            what: format!("serializing the image config: {e}"),
        })?;
        let image = NewImage {
            config: bytes,
            tags: tag.map(str::to_string).into_iter().collect(),
            digests: Vec::new(),
        };
        let mut ids = self.add_images(conn, vec![image], layers)?;
        Ok(ids.remove(0))
    }

    /// The one way images enter the store (import, commit, load, pull): stores each config exactly as
    /// given (its sha256 is the image ID, so the bytes must not be re-serialized), moves the staged
    /// layers into place and adds all rows, tags and repo digests in one write transaction.
    ///
    /// Every layer an image names must be staged here or already be in the store. Tags are moved to
    /// the new image if they named another; tags and digests must be normalized already.
    pub(crate) fn add_images(
        &self,
        conn: &mut Connection,
        images: Vec<NewImage>,
        layers: Vec<StagedLayer>,
    ) -> Result<Vec<ImageId>> {
        let mut staged = Vec::with_capacity(images.len());
        for image in images {
            let config = parse_config(&image.config)?;
            let diff_ids = config.rootfs().diff_ids().clone();
            for diff_id in &diff_ids {
                digest::hex_part(diff_id)?;
            }
            let id = digest::sha256_digest(&image.config);
            let blob = self.stage_blob(&image.config)?;
            let created = config.created().clone().unwrap_or_default();
            staged.push((image, id, blob, diff_ids, created));
        }

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for layer in layers {
            self.place_layer(&tx, layer)?;
        }
        let mut ids = Vec::with_capacity(staged.len());
        for (image, id, blob, diff_ids, created) in staged {
            // Every layer must be present now: a parent's layers may have gone with a concurrent remove.
            let mut size = 0;
            for diff_id in &diff_ids {
                size += db::layer_size(&tx, diff_id)?.ok_or_else(|| Error::Corrupt {
                    what: format!("layer {diff_id} is not in the store (was its image removed meanwhile?)"),
                })?;
            }
            let blob_path = self.blob_path(&id)?;
            place(blob, &blob_path).io_context(|| format!("storing {}", blob_path.display()))?;
            db::insert_image(
                &tx,
                &ImageRow {
                    id: id.clone(),
                    config: image.config,
                    created,
                    size,
                    layers: diff_ids,
                },
            )?;
            for tag in &image.tags {
                db::set_tag(&tx, tag, &id)?;
            }
            for name in &image.digests {
                db::set_digest(&tx, name, &id)?;
            }
            ids.push(id);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Whether the layer with `diff_id` is stored (row and directory), so a pull or load can skip it.
    pub(crate) fn has_layer(&self, conn: &Connection, diff_id: &str) -> Result<bool> {
        Ok(db::layer_size(conn, diff_id)?.is_some() && self.layer_dir(diff_id).is_dir())
    }

    /// The unpacked size (bytes of regular-file content) of a stored layer, `None` if unknown.
    pub fn layer_size(&self, conn: &Connection, diff_id: &str) -> Result<Option<u64>> {
        db::layer_size(conn, diff_id)
    }

    /// The repo digests (`name@sha256:…`) recorded for an image by pull and push, sorted: what
    /// `images --digests` and `image inspect`'s `RepoDigests` show.
    pub fn repo_digests(&self, conn: &Connection, id: &str) -> Result<Vec<String>> {
        db::digests_of(conn, id)
    }

    /// Whether an image with this ID is stored.
    pub(crate) fn has_image(&self, conn: &Connection, id: &str) -> Result<bool> {
        Ok(db::image_by_id(conn, id)?.is_some())
    }

    /// The exact config bytes of a stored image, checked against its ID.
    pub fn config_bytes(&self, conn: &Connection, id: &str) -> Result<Vec<u8>> {
        let row = db::image_by_id(conn, id)?.ok_or_else(|| Error::ImageNotFound {
            reference: id.to_string(),
        })?;
        let actual = digest::sha256_digest(&row.config);
        if actual != row.id {
            return Err(Error::DigestMismatch {
                expected: row.id,
                actual,
            });
        }
        Ok(row.config)
    }

    /// Points tags and repo digests at an existing image in one transaction (a pull or load of an image
    /// that is already stored).
    pub(crate) fn set_names(
        &self,
        conn: &mut Connection,
        id: &str,
        tags: &[String],
        digests: &[String],
    ) -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if db::image_by_id(&tx, id)?.is_none() {
            return Err(Error::ImageNotFound {
                reference: id.to_string(),
            });
        }
        for tag in tags {
            db::set_tag(&tx, tag, id)?;
        }
        for name in digests {
            db::set_digest(&tx, name, id)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Moves a staged layer's directory and blob to their final names (unless another import got
    /// there first) and records the layer. Must run inside the write transaction.
    pub(crate) fn place_layer(&self, conn: &Connection, layer: StagedLayer) -> Result<()> {
        let dir = self.layer_dir(&layer.diff_id);
        place(layer.dir, &dir).io_context(|| format!("storing {}", dir.display()))?;
        let blob = self.blob_path(&layer.diff_id)?;
        place(layer.blob, &blob).io_context(|| format!("storing {}", blob.display()))?;
        db::insert_layer(conn, &layer.diff_id, layer.size)
    }
}

/// Parses an image config, naming what is wrong with it.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| Error::BadManifest {
        message: format!("image config is not valid: {e}"),
    })
}

/// Normalizes a reference that is to become a tag; digests cannot be tags.
pub(crate) fn normalize_tag(s: &str) -> Result<String> {
    let parsed = reference::parse(s)?;
    if parsed.digest.is_some() {
        return Err(Error::InvalidReference {
            reference: s.to_string(),
            reason: "refusing to create a tag with a digest reference".into(),
        });
    }
    Ok(parsed.to_string())
}
