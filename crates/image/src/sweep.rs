//! Cleaning up after crashed berth processes: half-made `.tmp-*` content, `.trash-*` content of
//! removals that did or did not commit, and layer directories whose rows never got written.

use std::fs;
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::db;
use crate::error::{IoContext, Result};
use crate::fsutil::remove_path;
use crate::remove::TRASH_PREFIX;
use crate::store::{Store, TMP_PREFIX};

impl Store {
    /// Removes what crashed processes left in the store; safe to run while other berth processes work.
    ///
    /// It holds the database write lock throughout. Final names and trash names only change inside
    /// write transactions, so under the lock every `.trash-*` entry belongs to a finished removal
    /// (deleted, or put back if the database still references it) and every layer directory without a
    /// row is an orphan. `.tmp-*` entries are made outside the lock, so only those whose creating
    /// process (the pid in the name) is gone are removed.
    pub fn sweep(&self, conn: &mut Connection) -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for dir in [self.layers_dir(), self.blobs_dir()] {
            let entries = fs::read_dir(&dir).io_context(|| format!("reading {}", dir.display()))?;
            for entry in entries {
                let entry = entry.io_context(|| format!("reading {}", dir.display()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
                    if !creator_alive(rest) {
                        let _ = remove_path(&path);
                    }
                } else if let Some(rest) = name.strip_prefix(TRASH_PREFIX) {
                    let hex = rest.split('.').next().unwrap_or_default();
                    let digest = format!("sha256:{hex}");
                    let final_path = dir.join(hex);
                    if self.referenced(&tx, &digest)? && fs::symlink_metadata(&final_path).is_err() {
                        let _ = fs::rename(&path, &final_path);
                    } else {
                        let _ = remove_path(&path);
                    }
                } else if dir == self.layers_dir() && !name.starts_with('.') {
                    let digest = format!("sha256:{name}");
                    if db::layer_size(&tx, &digest)?.is_none() {
                        let _ = remove_path(&path);
                        let _ = remove_path(&self.blobs_dir().join(&name));
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether the database still needs the content named by `digest` (a layer or an image config).
    fn referenced(&self, conn: &Connection, digest: &str) -> Result<bool> {
        Ok(db::layer_size(conn, digest)?.is_some() || db::image_by_id(conn, digest)?.is_some())
    }
}

/// Whether the process that made `<pid>-<n>-<nanos>` may still be working on it. Unparsable names
/// are treated as alive: never delete what might be in use.
fn creator_alive(rest: &str) -> bool {
    match rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok()) {
        Some(pid) => pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}
