//! A client for the OCI distribution API (what every registry speaks) on a blocking HTTP stack, and
//! pull and push built on it.
//!
//! - [`client`]: one repository on one registry: the HTTP(S) choice, bearer/basic authentication on a
//!   `401`, manifests and blobs, registry error messages.
//! - [`auth`]: credentials in a docker-compatible `auth.json` / `config.json`; login and logout.
//! - `pull`: manifest (list) → platform → config → layers downloaded in parallel, each verified and
//!   unpacked while it streams, stored in one transaction.
//! - `push`: each layer named by a blob the repository has, or mounted from another repository the
//!   store remembers holds it (compressed as it was pulled), else uploaded as its plain tar (chunked
//!   when large); the config likewise; then an OCI manifest.
//!
//! No async runtime: a few threads do the parallel work, and nothing here ever forks.

pub mod auth;
pub mod client;
mod pull;
mod push;

pub use pull::{PullOptions, Pulled};
pub use push::Pushed;

/// What happened to one layer (or the config), for progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// The store (pull) or the registry (push) has it already.
    AlreadyExists,
    /// Transfer starts; `bytes` events follow.
    Started,
    /// Downloaded, verified and unpacked.
    PullComplete,
    /// Uploaded.
    Pushed,
}

/// Receives progress from pull and push, from several threads at once.
pub trait Progress: Send + Sync {
    /// A layer changed state. `digest` is the blob's digest, `size` its length in bytes.
    fn layer(&self, digest: &str, size: u64, state: LayerState) {
        let _ = (digest, size, state);
    }

    /// The registry linked the layer from its repository `from`: nothing was sent (push only).
    fn mounted(&self, digest: &str, size: u64, from: &str) {
        let _ = from;
        self.layer(digest, size, LayerState::AlreadyExists);
    }

    /// `n` more bytes of the layer with `digest` were transferred.
    fn bytes(&self, digest: &str, n: u64) {
        let _ = (digest, n);
    }
}

/// Progress that reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
