//! Tagging, untagging and deleting images with docker's `tag` / `rmi` semantics.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use crate::db;
use crate::digest::{chain_ids, hex_part};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_path, unique_name};
use crate::image::Image;
use crate::lookup::{lookup, Found};
use crate::reference;
use crate::store::{normalize_tag, Store};

/// Prefix of content moved aside by a removal; the digest hex follows, then a unique suffix, so a
/// sweep after a crash can put it back if the removal never committed.
pub(crate) const TRASH_PREFIX: &str = ".trash-";

impl Store {
    /// Points the tag `target` at the image `source` resolves to, moving the tag if it named another
    /// image (which then may become dangling, as in docker).
    pub fn tag(&self, conn: &mut Connection, source: &str, target: &str) -> Result<()> {
        let target = normalize_tag(target)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (image, _) = lookup(&tx, source)?;
        db::set_tag(&tx, &target, &image.id)?;
        tx.commit()?;
        Ok(())
    }

    /// Untags or deletes, like `docker rmi`, returning one line per action (`Untagged: busybox:latest`,
    /// `Deleted: sha256:…` for the image, then one per layer removed, by chain ID as docker prints).
    ///
    /// - By name: removes that tag; the image goes too when it was its last reference.
    /// - By ID: removes all tags and the image; refused without `force` when the tags span several
    ///   repositories.
    /// - `in_use(image_id)` names a container using the image: then removal is refused without
    ///   `force`, and with `force` the image is only untagged (kept dangling), because the container's
    ///   rootfs is still made of its layers.
    ///
    /// Layers no remaining image uses are deleted (rows, directories and blobs). `in_use` runs inside
    /// the write transaction: it may read the database through another connection, not write to it.
    pub fn remove(
        &self,
        conn: &mut Connection,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (image, found) = lookup(&tx, reference)?;
        let mut refs = db::tags_of(&tx, &image.id)?;
        refs.extend(db::digests_of(&tx, &image.id)?);
        let mut lines = Vec::new();
        let mut trash = Trash::default();

        let delete = match found {
            Found::Tag(name) | Found::Digest(name) => {
                if refs.len() == 1 && !force {
                    if let Some(container) = in_use(&image.id) {
                        return Err(Error::ImageInUse {
                            reference: reference.to_string(),
                            container,
                        });
                    }
                }
                untag(&tx, &name, &mut lines)?;
                let remaining: Vec<&String> = refs.iter().filter(|r| **r != name).collect();
                // Digest references of the same repository do not keep an image alive on their own.
                let repo = repository(&name);
                if !remaining.is_empty() && remaining.iter().all(|r| r.contains('@') && repository(r) == repo)
                {
                    for r in &remaining {
                        untag(&tx, r, &mut lines)?;
                    }
                } else if !remaining.is_empty() {
                    return commit(tx, trash, lines);
                }
                in_use(&image.id).is_none()
            }
            Found::Id => {
                let repos: HashSet<String> = refs.iter().map(|r| repository(r)).collect();
                let tags = refs.iter().filter(|r| !r.contains('@')).count();
                if !force && (repos.len() > 1 || tags > 1) {
                    return Err(Error::Conflict {
                        reference: image.short_id().to_string(),
                        reason: "image is referenced in multiple repositories".into(),
                    });
                }
                let user = in_use(&image.id);
                if let (Some(container), false) = (&user, force) {
                    return Err(Error::ImageInUse {
                        reference: image.short_id().to_string(),
                        container: container.clone(),
                    });
                }
                for r in &refs {
                    untag(&tx, r, &mut lines)?;
                }
                user.is_none()
            }
        };
        if delete {
            self.delete_image(&tx, &image, &mut lines, &mut trash)?;
        }
        commit(tx, trash, lines)
    }

    /// Deletes an image's rows and moves aside its config blob and every layer no other image uses.
    fn delete_image(
        &self,
        tx: &Connection,
        image: &Image,
        lines: &mut Vec<String>,
        trash: &mut Trash,
    ) -> Result<()> {
        db::delete_image(tx, &image.id)?;
        lines.push(format!("Deleted: {}", image.id));
        trash.move_aside(&self.blob_path(&image.id)?, &image.id)?;
        let chains = chain_ids(&image.diff_ids);
        let mut seen = HashSet::new();
        for (diff_id, chain) in image.diff_ids.iter().zip(&chains).rev() {
            if !seen.insert(diff_id) || db::layer_users(tx, diff_id)? > 0 {
                continue;
            }
            db::delete_layer(tx, diff_id)?;
            trash.move_aside(&self.layer_dir(diff_id), diff_id)?;
            trash.move_aside(&self.blob_path(diff_id)?, diff_id)?;
            lines.push(format!("Deleted: {chain}"));
        }
        Ok(())
    }
}

fn untag(tx: &Connection, name: &str, lines: &mut Vec<String>) -> Result<()> {
    if name.contains('@') {
        db::delete_digest(tx, name)?;
    } else {
        db::delete_tag(tx, name)?;
    }
    lines.push(format!("Untagged: {name}"));
    Ok(())
}

/// Commits; only then is the moved-aside content really deleted.
fn commit(tx: rusqlite::Transaction<'_>, trash: Trash, lines: Vec<String>) -> Result<Vec<String>> {
    tx.commit()?;
    trash.empty();
    Ok(lines)
}

/// The repository part of a normalized tag or digest reference (`busybox:latest` → `busybox`).
fn repository(name: &str) -> String {
    reference::parse(name)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| name.to_string())
}

/// Content moved to `.trash-*` names inside a removal's transaction. Until [`Trash::empty`], dropping
/// it moves everything back, so a removal that fails or rolls back leaves the store as it was.
#[derive(Default)]
struct Trash {
    moved: Vec<(PathBuf, PathBuf)>,
}

impl Trash {
    /// Renames `path` (if it exists) next to itself under a trash name.
    fn move_aside(&mut self, path: &Path, digest: &str) -> Result<()> {
        let Some(dir) = path.parent() else { return Ok(()) };
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let hex = hex_part(digest)?;
        let aside = unique_name(dir, &format!("{TRASH_PREFIX}{hex}."));
        std::fs::rename(path, &aside).io_context(|| format!("removing {}", path.display()))?;
        self.moved.push((path.to_path_buf(), aside));
        Ok(())
    }

    /// Deletes the moved content for good (best effort: leftovers are found by `sweep`).
    fn empty(mut self) {
        for (_, aside) in std::mem::take(&mut self.moved) {
            let _ = remove_path(&aside);
        }
    }
}

impl Drop for Trash {
    fn drop(&mut self) {
        for (path, aside) in self.moved.drain(..).rev() {
            let _ = std::fs::rename(&aside, &path);
        }
    }
}
