//! An overlay upper dir → an OCI layer tar: the inverse of [`crate::unpack`], used by commit (and later
//! by save/push of committed images).

use std::io::Write;
use std::path::Path;

use crate::error::Result;
use crate::tarwriter::{write_tree, TreeKind};

/// Writes the changes recorded in an overlay upper dir as an uncompressed OCI layer tar.
///
/// Overlay whiteouts (char device 0/0) become `.wh.NAME` entries and opaque directories
/// (`trusted.overlay.opaque=y`, or `user.overlay.opaque` in userxattr mode) get a `.wh..wh..opq` entry,
/// so unpacking the result with [`crate::unpack::unpack_layer`] gives the same tree back. Overlay must be
/// mounted with `redirect_dir=off,metacopy=off`: entries relying on either are refused rather than
/// archived incompletely. Entries are sorted, so equal trees give equal bytes and equal diff_ids.
pub fn write_layer_tar(upper: &Path, out: impl Write) -> Result<()> {
    write_tree(upper, out, TreeKind::OverlayDiff)
}
