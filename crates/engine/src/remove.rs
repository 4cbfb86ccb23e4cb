//! `rm`: refuse a running container unless forced, then remove its files and its row.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::lifecycle::wait_until_stopped;
use crate::{container_dir, record, volumes, Engine, Error};

/// Deletes a container's directory (upper dir, logs, bundle). A missing dir is fine.
pub(crate) fn delete_files(root: &Path, id: &str) -> std::io::Result<()> {
    match std::fs::remove_dir_all(container_dir(root, id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Engine {
    /// Removes this root's cgroup parent (`berth/<root tag>`) in every hierarchy when no container cgroup is
    /// left under it (rmdir refuses non-empty cgroups, so running containers are never touched).
    pub fn prune_cgroup_parents(&self) {
        if let Ok(h) = berth_cgroups::Hierarchy::detect() {
            for p in h.open(&format!("berth/{}", crate::root_tag(&self.root))).paths() {
                let _ = std::fs::remove_dir(&p);
            }
        }
    }

    /// Removes a container; `force` kills it first; `volumes` also removes its anonymous volumes.
    pub fn remove(&mut self, key: &str, force: bool, remove_volumes: bool) -> Result<String, Error> {
        let rec = self.container(key)?;
        if rec.is_running() {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            let _ = nix::sys::signal::kill(Pid::from_raw(rec.pid), Signal::SIGKILL);
            wait_until_stopped(&rec, Some(Duration::from_secs(30)));
        } else if rec.monitor_alive() {
            // The container just exited; let its monitor finish recording before the row goes.
            wait_until_stopped(&rec, Some(Duration::from_secs(10)));
        }
        record::set_status(&self.conn, &rec.id, "removing")?;
        self.release_network(&rec);
        delete_files(&self.root, &rec.id).map_err(crate::io_err(format!("remove files of {}", rec.name)))?;
        // A crashed monitor may have left the cgroup behind.
        if let Ok(h) = berth_cgroups::Hierarchy::detect() {
            let _ = h.open(&self.cgroup_rel(&rec.id)).destroy();
        }
        record::delete(&self.conn, &rec.id)?;
        if remove_volumes {
            volumes::remove_anonymous(self, &rec.id);
        }
        Ok(rec.name)
    }
}
