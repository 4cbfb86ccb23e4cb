//! Image operations that need containers: commit, export, import with `--change`, and removal guarded by
//! the containers that use an image.

use std::io::Write;

use oci_spec::image::Config;

use crate::create::overlay_data;
use crate::{io_err, Engine, Error};

/// Applies one Dockerfile-style `--change` ("CMD [\"sh\"]", "ENV A=b", "WORKDIR /x", …) to an image config.
pub fn apply_change(cfg: &mut Config, change: &str) -> Result<(), Error> {
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let list = || -> Vec<String> {
        if rest.starts_with('[') {
            serde_json::from_str(rest).unwrap_or_else(|_| vec![rest.to_string()])
        } else {
            vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
        }
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            cfg.set_cmd(Some(list()));
        }
        "ENTRYPOINT" => {
            cfg.set_entrypoint(Some(list()));
        }
        "WORKDIR" => {
            cfg.set_working_dir(Some(rest.to_string()));
        }
        "USER" => {
            cfg.set_user(Some(rest.to_string()));
        }
        "STOPSIGNAL" => {
            cfg.set_stop_signal(Some(rest.to_string()));
        }
        "ENV" => {
            let mut env = cfg.env().clone().unwrap_or_default();
            let (k, v) = rest
                .split_once('=')
                .or_else(|| rest.split_once(' '))
                .unwrap_or((rest, ""));
            env.retain(|e| e.split('=').next() != Some(k));
            env.push(format!("{k}={}", v.trim_matches('"')));
            cfg.set_env(Some(env));
        }
        "LABEL" => {
            let mut labels = cfg.labels().clone().unwrap_or_default();
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            labels.insert(k.trim_matches('"').to_string(), v.trim_matches('"').to_string());
            cfg.set_labels(Some(labels));
        }
        "EXPOSE" => {
            let mut ports = cfg.exposed_ports().clone().unwrap_or_default();
            for p in rest.split_whitespace() {
                ports.push(if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                });
            }
            cfg.set_exposed_ports(Some(ports));
        }
        "VOLUME" => {
            let mut vols = cfg.volumes().clone().unwrap_or_default();
            vols.extend(list().into_iter().filter(|v| v != "/bin/sh" && v != "-c"));
            cfg.set_volumes(Some(vols));
        }
        other => return Err(Error::Invalid(format!("{other} is not a valid change command"))),
    }
    Ok(())
}

impl Engine {
    /// `import`: a rootfs tar as a one-layer image.
    pub fn import(
        &mut self,
        tar: impl std::io::Read,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<String, Error> {
        let mut cfg = Config::default();
        for c in changes {
            apply_change(&mut cfg, c)?;
        }
        let has_cfg = !changes.is_empty();
        Ok(self
            .images
            .import(&mut self.conn, tar, reference, has_cfg.then_some(cfg), message)?)
    }

    /// `commit`: the container's changes as a new layer over its image; returns the new image id.
    pub fn commit(
        &mut self,
        key: &str,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        author: Option<&str>,
        pause: bool,
    ) -> Result<String, Error> {
        let rec = self.container(key)?;
        let image = self.images.resolve(&self.conn, &rec.image_id)?;
        let mut cfg = image.config.config().clone().unwrap_or_default();
        // The container's own settings become the image's defaults, as docker commit does.
        let c = &rec.config;
        if !c.cmd.is_empty() {
            cfg.set_cmd(Some(c.cmd.clone()));
        }
        if let Some(e) = &c.entrypoint {
            cfg.set_entrypoint(if e.is_empty() { None } else { Some(vec![e.clone()]) });
        }
        if !c.env.is_empty() {
            let base = cfg.env().clone().unwrap_or_default();
            cfg.set_env(Some(crate::spec::merge_env(&[&base, &c.env])));
        }
        if let Some(w) = &c.workdir {
            cfg.set_working_dir(Some(w.clone()));
        }
        if let Some(u) = &c.user {
            cfg.set_user(Some(u.clone()));
        }
        for ch in changes {
            apply_change(&mut cfg, ch)?;
        }
        let cgroup = (pause && rec.is_running())
            .then(|| {
                berth_cgroups::Hierarchy::detect()
                    .ok()
                    .map(|h| h.open(&self.cgroup_rel(&rec.id)))
            })
            .flatten();
        if let Some(cg) = &cgroup {
            let _ = cg.freeze();
        }
        let upper = self.container_dir(&rec.id).join("upper");
        let r = self
            .images
            .commit(&mut self.conn, &image, &upper, cfg, reference, message, author);
        if let Some(cg) = &cgroup {
            let _ = cg.thaw();
        }
        Ok(r?)
    }

    /// `export`: the container's merged filesystem as a tar. The overlay is mounted read-only (the upper dir
    /// as one more lower layer) in a mount namespace of our own, so nothing shows on the host and nothing
    /// stays mounted if we die.
    pub fn export(&mut self, key: &str, out: impl Write) -> Result<(), Error> {
        let rec = self.container(key)?;
        let image = self.images.resolve(&self.conn, &rec.image_id)?;
        let dir = self.container_dir(&rec.id);
        let mut lowers = vec![dir.join("upper")];
        lowers.extend(image.lower_dirs(&self.images));
        let data = overlay_data(&lowers, &dir);
        // Read-only overlay: drop upperdir/workdir from the data string.
        let data = data
            .split(',')
            .filter(|p| p.starts_with("lowerdir="))
            .collect::<Vec<_>>()
            .join(",");
        let mnt = tempfile::Builder::new()
            .prefix("export-")
            .tempdir_in(&self.root)
            .map_err(io_err("create export dir"))?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| io_err("unshare mount namespace")(e.into()))?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| io_err("make mounts private")(e.into()))?;
        nix::mount::mount(
            Some("overlay"),
            mnt.path(),
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .map_err(|e| io_err("mount container filesystem")(e.into()))?;
        let r = berth_image::export::write_dir_tar(mnt.path(), out);
        let _ = nix::mount::umount2(mnt.path(), nix::mount::MntFlags::MNT_DETACH);
        r.map_err(Error::from)
    }

    /// `rmi`: refuses images that containers use unless `force`.
    pub fn remove_image(&mut self, reference: &str, force: bool) -> Result<Vec<String>, Error> {
        let users: Vec<(String, String)> = self
            .containers()?
            .into_iter()
            .map(|c| (c.image_id, c.name))
            .collect();
        let in_use = move |id: &str| users.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone());
        Ok(self.images.remove(&mut self.conn, reference, force, &in_use)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply() {
        let mut c = Config::default();
        apply_change(&mut c, r#"CMD ["httpd", "-f"]"#).unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["httpd", "-f"]);
        apply_change(&mut c, "ENV MODE=prod").unwrap();
        apply_change(&mut c, "ENV MODE=dev").unwrap();
        assert_eq!(c.env().clone().unwrap(), vec!["MODE=dev"]);
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        assert_eq!(c.working_dir().clone().unwrap(), "/srv");
        apply_change(&mut c, "CMD echo hi").unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert!(apply_change(&mut c, "FROB x").is_err());
    }
}
