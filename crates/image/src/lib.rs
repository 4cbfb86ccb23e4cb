//! berth's image store: content-addressed blobs, layers unpacked once and shared as overlay lower
//! dirs, image metadata (IDs, tags, layer lists) in the engine's SQLite database.
//!
//! The engine owns the database connection and passes it in; this crate owns its tables (created by
//! [`Store::migrate`]) and the files under the store root. Images are made by [`Store::import`] (a rootfs
//! tar) and [`Store::commit`] (a container's overlay upper dir); pull/push/load/save build on the same
//! pieces. Layer unpacking ([`unpack`]) is a security boundary: no archive entry may touch anything
//! outside its layer directory.

// No unsafe code: every syscall goes through rustix, so the unpacker's safety rests on its logic alone.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
pub mod reference;
mod remove;
mod store;
mod sweep;
mod tarwriter;
mod time;
pub mod unpack;

pub use compression::{decompress, detect as detect_compression, Compression};
pub use error::{Error, Result};
pub use image::{Image, ImageId};
pub use store::Store;
