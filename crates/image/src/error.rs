//! The one error type of the image store.
//!
//! Messages follow docker's style (lowercase, no final period) because the CLI prints them verbatim after
//! `berth: error: `, and users compare them with what docker says.

use std::io;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image matches what the user typed (name, ID or ID prefix).
    #[error("image \"{reference}\" not found")]
    ImageNotFound {
        /// What the user typed.
        reference: String,
    },

    /// A short ID prefix matches more than one image.
    #[error("image ID prefix \"{reference}\" is ambiguous: it matches more than one image")]
    AmbiguousReference {
        /// The prefix the user typed.
        reference: String,
    },

    /// The text is not a valid docker image reference.
    #[error("invalid reference format{}", detail(reason))]
    InvalidReference {
        /// What the user typed.
        reference: String,
        /// Why it is invalid; empty when docker gives no reason either.
        reason: String,
    },

    /// A container uses the image, and `force` was not given.
    #[error("conflict: unable to delete {reference} (must be forced) - image is being used by container {container}")]
    ImageInUse {
        /// The reference given to `remove`.
        reference: String,
        /// The name (or ID) of a container using the image.
        container: String,
    },

    /// Any other refusal to remove an image without `force`.
    #[error("conflict: unable to delete {reference} (must be forced) - {reason}")]
    Conflict {
        /// The reference given to `remove`.
        reference: String,
        /// Why removal needs `force`.
        reason: String,
    },

    /// The input is not a (complete) tar archive, or is compressed in a format berth does not read.
    #[error("invalid tar archive: {message}")]
    BadTar {
        /// What is wrong with it.
        message: String,
    },

    /// A layer entry would be created outside the layer directory; the whole layer is refused.
    #[error("refusing layer entry \"{entry}\": {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// How it would escape.
        reason: String,
    },

    /// Content read back does not match the digest it is stored under.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the content should have.
        expected: String,
        /// The digest the content has.
        actual: String,
    },

    /// An image archive (`load`) is not one berth can read.
    #[error("invalid image archive: {message}")]
    BadArchive {
        /// What is wrong with it.
        message: String,
    },

    /// A manifest, index or image config is malformed or asks for something berth refuses.
    #[error("{message}")]
    BadManifest {
        /// What is wrong, naming the manifest or config.
        message: String,
    },

    /// A registry refused a request or could not be reached.
    #[error("{message}")]
    Registry {
        /// What failed, naming the registry and the HTTP status or transport error.
        message: String,
    },

    /// Stored metadata could not be understood (a bug or a damaged store).
    #[error("corrupt image store: {what}")]
    Corrupt {
        /// What is damaged.
        what: String,
    },

    /// A file system operation failed.
    ///
    /// The OS error is part of the message and deliberately not a `source`: the CLI prints the whole
    /// chain, which would repeat it (`…: No space left on device: No space left on device`).
    #[error("{context}: {error}")]
    Io {
        /// What berth was doing, usually naming the path.
        context: String,
        /// The OS error.
        error: io::Error,
    },

    /// The metadata database failed.
    #[error("image database: {0}")]
    Db(#[from] rusqlite::Error),
}

fn detail(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to I/O errors as they cross into this crate's error type.
pub(crate) trait IoContext<T> {
    /// Wraps the error with `context()`, evaluated only on failure.
    fn io_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn io_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: context().into(),
            error: e.into(),
        })
    }
}
