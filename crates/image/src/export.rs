//! A plain directory (a container's merged rootfs) → a tar, as `docker export` writes it.

use std::io::Write;
use std::path::Path;

use crate::error::Result;
use crate::tarwriter::{write_tree, TreeKind};

/// Writes the tree under `dir` as an uncompressed tar, the form `import` reads back.
///
/// Overlay whiteout devices that show through (an upper dir passed by mistake) are skipped, and mount
/// points inside `dir` are archived as empty directories, so neither a container's /proc nor its
/// volumes end up in the archive. Only the `security.capability` xattr is kept, as docker does.
pub fn write_dir_tar(dir: &Path, out: impl Write) -> Result<()> {
    write_tree(dir, out, TreeKind::Plain)
}
