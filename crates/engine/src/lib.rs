//! berth's engine: containers, names, volumes, logs, the per-container monitor and the metadata database. It
//! turns `run` flags and an image config into an OCI bundle and drives the runtime; the CLI only parses and
//! prints.

pub mod config;
mod create;
mod db;
mod etc;
mod exec;
pub mod images;
pub mod inspect;
mod lifecycle;
pub mod logs;
mod monitor;
pub mod network;
pub mod record;
mod remove;
pub mod spec;
pub mod stats;
pub mod user;
pub mod util;
pub mod volumes;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

pub use config::{MountSpec, RunConfig};
pub use exec::ExecConfig;
pub use lifecycle::{Attached, StartMode};
pub use record::Record;

/// Errors of the engine, each with a docker-like exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is part of these messages and deliberately not a `source`: the CLI prints the whole
    // chain, which would repeat it ("…: No space left on device: No space left on device").
    /// The database failed.
    #[error("{context}: {error}")]
    Db {
        /// What was being done.
        context: String,
        /// The SQLite error.
        error: rusqlite::Error,
    },
    /// A file operation failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        error: std::io::Error,
    },
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    /// cgroups failed.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    /// No such container/volume.
    #[error("no such {kind}: {name}")]
    NotFound {
        /// "container", "volume", …
        kind: &'static str,
        /// What the user typed.
        name: String,
    },
    /// The request conflicts with the current state (name in use, container running, …).
    #[error("{0}")]
    Conflict(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Starting the container failed with this docker exit code (125/126/127).
    #[error("{message}")]
    Start {
        /// 125, 126 or 127.
        code: i32,
        /// Why.
        message: String,
    },
}

impl Error {
    /// The exit code `berth` should end with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Start { code, .. } => *code,
            Error::Runtime(e) => e.exit_code(),
            _ => 125,
        }
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |error| Error::Io { context, error }
}

/// One berth installation: a root directory with its database, images, containers and volumes.
pub struct Engine {
    root: PathBuf,
    conn: Connection,
    images: berth_image::Store,
}

impl Engine {
    /// Opens (creating when needed) the berth root at `root`.
    pub fn open(root: &Path) -> Result<Engine, Error> {
        for d in ["", "containers", "volumes"] {
            std::fs::create_dir_all(root.join(d))
                .map_err(io_err(format!("create {}", root.join(d).display())))?;
        }
        let root = root
            .canonicalize()
            .map_err(io_err(format!("resolve {}", root.display())))?;
        let images = berth_image::Store::open(&root.join("image"))?;
        let conn = db::open(&root)?;
        Ok(Engine { root, conn, images })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image store.
    pub fn images(&self) -> &berth_image::Store {
        &self.images
    }

    /// The database connection (the image store's functions take it).
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Image store and connection together, for calls that need both mutably.
    pub fn images_and_conn(&mut self) -> (&berth_image::Store, &mut Connection) {
        (&self.images, &mut self.conn)
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        container_dir(&self.root, id)
    }

    /// The container's cgroup, relative to each hierarchy root: `berth/<root tag>/<id>`, so two roots never
    /// share (or see) each other's cgroups.
    pub fn cgroup_rel(&self, id: &str) -> String {
        format!("berth/{}/{}", root_tag(&self.root), id)
    }

    /// Looks a container up by name, id or id prefix, fixing its state if its monitor died unnoticed.
    pub fn container(&self, key: &str) -> Result<Record, Error> {
        let mut r = record::find(&self.conn, key)?;
        record::reconcile(&self.conn, &mut r)?;
        Ok(r)
    }

    /// All containers, newest first, with states reconciled.
    pub fn containers(&self) -> Result<Vec<Record>, Error> {
        let mut all = record::list(&self.conn)?;
        for r in &mut all {
            record::reconcile(&self.conn, r)?;
        }
        Ok(all)
    }

    fn close_db_for_fork(&mut self) -> Result<(), Error> {
        let placeholder = Connection::open_in_memory().map_err(|e| Error::Db {
            context: "open placeholder db".into(),
            error: e,
        })?;
        drop(std::mem::replace(&mut self.conn, placeholder));
        Ok(())
    }

    fn reopen_db(&mut self) -> Result<(), Error> {
        self.conn = db::open(&self.root)?;
        Ok(())
    }

    /// Resolves an image reference (name, id or id prefix).
    pub fn image(&self, reference: &str) -> Result<berth_image::Image, Error> {
        Ok(self.images.resolve(&self.conn, reference)?)
    }

    /// The log file of a container.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("container.log")
    }
}

pub(crate) fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id)
}

/// Eight hex chars naming a berth root, for cgroup paths.
pub fn root_tag(root: &Path) -> String {
    let h = Sha256::digest(root.as_os_str().as_encoded_bytes());
    hex::encode(&h[..4])
}
