//! berth's image store: content-addressed blobs, layers unpacked once and shared as overlay lower
//! dirs, image metadata (IDs, tags, layer lists) in the engine's SQLite database.
//!
//! The engine owns the database connection and passes it in; this crate owns its tables (created by
//! [`Store::migrate`]) and the files under the store root. Images are made by [`Store::import`] (a rootfs
//! tar), [`Store::commit`] (a container's overlay upper dir), [`Store::load_file`] (an image archive)
//! and the registry client's pull; all of them end in one shared path that stores configs byte for byte
//! (the image ID is their sha256) and records everything in one transaction. Layer unpacking
//! ([`unpack`]) is a security boundary: no archive entry may touch anything outside its layer directory.

// No unsafe code: every syscall goes through rustix, so the unpacker's safety rests on its logic alone.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod archive;
mod compression;
mod confine;
mod db;
pub mod diff;
pub mod digest;
mod error;
pub mod export;
mod fsutil;
mod image;
mod lookup;
pub mod manifest;
pub mod reference;
pub mod registry;
mod remove;
mod stage;
mod store;
mod sweep;
mod tarwriter;
mod time;
pub mod unpack;
mod verify;

pub use archive::{ArchiveFormat, Loaded};
pub use compression::{decompress, detect as detect_compression, Compression};
pub use error::{Error, Result};
pub use image::{Image, ImageId};
pub use store::Store;
