//! Named volumes: directories under `<root>/volumes/<name>/_data`, with a row each. Anonymous volumes (`-v
//! /path`) get a random name and remember the container that made them, for `rm -v` and `volume prune`.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::params;
use serde_json::{json, Value};

use crate::config::valid_volume_name;
use crate::{io_err, util, Engine, Error};

const ANON_LABEL: &str = "org.berth.anonymous-for";

/// One volume.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Name.
    pub name: String,
    /// Always "local".
    pub driver: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// RFC3339 creation time.
    pub created: String,
    /// The data directory.
    pub mountpoint: PathBuf,
}

impl Volume {
    /// docker's `volume inspect` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "CreatedAt": self.created,
            "Driver": self.driver,
            "Labels": self.labels,
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": self.options,
            "Scope": "local",
        })
    }
}

fn db(ctx: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |e| Error::Db {
        context: ctx.to_string(),
        error: e,
    }
}

fn data_dir(engine: &Engine, name: &str) -> PathBuf {
    engine.root.join("volumes").join(name).join("_data")
}

fn insert(
    engine: &Engine,
    name: &str,
    labels: &BTreeMap<String, String>,
    options: &BTreeMap<String, String>,
) -> Result<bool, Error> {
    let n = engine
        .conn
        .execute(
            "INSERT OR IGNORE INTO volumes (name, driver, labels, options, created) VALUES (?1, 'local', ?2, ?3, ?4)",
            params![name, serde_json::to_string(labels).unwrap(), serde_json::to_string(options).unwrap(), util::now()],
        )
        .map_err(db("create volume"))?;
    let dir = data_dir(engine, name);
    std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    Ok(n == 1)
}

/// The data dir of volume `name`, created on first use; an empty name makes an anonymous volume for `owner`.
/// Returns the data dir and whether the volume was created just now.
pub(crate) fn ensure(
    engine: &Engine,
    name: &str,
    owner: &str,
    anonymous: bool,
) -> Result<(PathBuf, bool), Error> {
    let mut labels = BTreeMap::new();
    if anonymous {
        labels.insert(ANON_LABEL.to_string(), owner.to_string());
    }
    let created = insert(engine, name, &labels, &BTreeMap::new())?;
    Ok((data_dir(engine, name), created))
}

/// The local driver's options, as docker's: `type` (a filesystem type, or `none` with `o=bind`), `device`
/// (what to mount) and `o` (mount options).
fn check_options(options: &BTreeMap<String, String>) -> Result<(), Error> {
    if let Some(key) = options
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "device" | "o"))
    {
        return Err(Error::Invalid(format!(
            "invalid option key: {key:?} (the local driver takes type, device and o)"
        )));
    }
    let kind = options.get("type").map(String::as_str);
    let device = options.get("device").map(String::as_str).unwrap_or("");
    match kind {
        None if options.is_empty() => Ok(()),
        None => Err(Error::Invalid(
            "volume options need type=… (e.g. type=tmpfs)".into(),
        )),
        Some("tmpfs") => Ok(()),
        Some(_) if device.is_empty() => Err(Error::Invalid("volume type needs device=…".into())),
        Some("none") if !is_bind(options) => Err(Error::Invalid(
            "type=none needs o=bind (a bind mount of device)".into(),
        )),
        Some("none") if !device.starts_with('/') => Err(Error::Invalid(format!(
            "device {device:?} must be an absolute host path"
        ))),
        Some(_) => Ok(()),
    }
}

fn is_bind(options: &BTreeMap<String, String>) -> bool {
    options
        .get("o")
        .is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"))
}

/// How a volume with driver options is mounted instead of its data directory: `Some((kind, source,
/// options))` — tmpfs, a bind of `device`, or `device` mounted with `type` — or `None` for a plain volume.
pub(crate) fn driver_mount(engine: &Engine, name: &str) -> Result<Option<(String, String, String)>, Error> {
    let v = engine.volume(name)?;
    let o = v.options.get("o").cloned().unwrap_or_default();
    let device = v.options.get("device").cloned().unwrap_or_default();
    Ok(match v.options.get("type").map(String::as_str) {
        None => None,
        Some("tmpfs") => Some(("tmpfs".into(), String::new(), o)),
        Some("none") => Some(("bind".into(), device, String::new())),
        Some(fs) => Some((fs.into(), device, o)),
    })
}

/// docker's copy-up: a new, empty volume mounted over a directory of the image starts with that directory's
/// content (owner and mode included). Layers are applied bottom to top; overlay whiteouts delete.
pub(crate) fn populate(volume: &Path, lowers_top_first: &[PathBuf], dest: &str) -> Result<(), Error> {
    let rel = dest.trim_start_matches('/');
    let is_empty = std::fs::read_dir(volume)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if rel.is_empty() || !is_empty {
        return Ok(());
    }
    for layer in lowers_top_first.iter().rev() {
        let src = layer.join(rel);
        // Never follow a symlink out of the layer: only a real directory is copied.
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => {
                copy_tree(&src, volume)
                    .map_err(io_err(format!("copy image content into volume at {dest}")))?;
                let _ = std::os::unix::fs::chown(volume, Some(m.uid()), Some(m.gid()));
                let _ = std::fs::set_permissions(volume, std::fs::Permissions::from_mode(m.mode() & 0o7777));
            }
            _ => continue,
        }
    }
    Ok(())
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let m = entry.metadata()?;
        let to = dst.join(entry.file_name());
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            // An overlay whiteout: the name was deleted in this layer.
            let _ = std::fs::remove_dir_all(&to).or_else(|_| std::fs::remove_file(&to));
            continue;
        }
        if ft.is_dir() {
            std::fs::create_dir_all(&to)?;
            copy_tree(&entry.path(), &to)?;
        } else {
            let _ = std::fs::remove_file(&to);
            if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
            } else if ft.is_file() {
                std::fs::copy(entry.path(), &to)?;
            } else {
                continue; // devices, fifos and sockets are not copied into volumes
            }
        }
        let _ = std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()));
        if !ft.is_symlink() {
            let _ = std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777));
        }
    }
    Ok(())
}

impl Engine {
    /// `volume create`; creating an existing volume returns it unchanged, as docker does.
    pub fn volume_create(
        &mut self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<String, Error> {
        if driver != "local" {
            return Err(Error::Invalid(format!(
                "volume driver {driver:?} is not supported (only \"local\")"
            )));
        }
        let name = match name {
            Some(n) if !valid_volume_name(n) => {
                return Err(Error::Invalid(format!(
                    "invalid volume name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )))
            }
            Some(n) => n.to_string(),
            None => util::random_id(),
        };
        check_options(&options)?;
        insert(self, &name, &labels, &options)?;
        Ok(name)
    }

    /// All volumes, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>, Error> {
        let mut st = self
            .conn
            .prepare("SELECT name, driver, labels, options, created FROM volumes ORDER BY name")
            .map_err(db("list volumes"))?;
        let rows = st
            .query_map([], |r| {
                let name: String = r.get(0)?;
                Ok(Volume {
                    mountpoint: data_dir(self, &name),
                    name,
                    driver: r.get(1)?,
                    labels: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                    options: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                    created: r.get(4)?,
                })
            })
            .map_err(db("list volumes"))?;
        rows.collect::<Result<_, _>>().map_err(db("list volumes"))
    }

    /// One volume.
    pub fn volume(&self, name: &str) -> Result<Volume, Error> {
        self.volumes()?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::NotFound {
                kind: "volume",
                name: name.into(),
            })
    }

    /// Containers (ids) that use a volume.
    pub fn volume_users(&self, v: &Volume) -> Result<Vec<String>, Error> {
        let mut users = Vec::new();
        for c in self.containers()? {
            let named = c
                .config
                .mounts
                .iter()
                .any(|m| m.kind == "volume" && m.source == v.name);
            let anon = v.labels.get(ANON_LABEL) == Some(&c.id);
            if named || anon {
                users.push(c.id);
            }
        }
        Ok(users)
    }

    /// `volume rm`: refused while a container uses it (even a stopped one), as docker does.
    pub fn volume_remove(&mut self, name: &str, force: bool) -> Result<(), Error> {
        let v = match self.volume(name) {
            Ok(v) => v,
            Err(Error::NotFound { .. }) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let users = self.volume_users(&v)?;
        if !users.is_empty() {
            let short: Vec<&str> = users.iter().map(|u| &u[..12]).collect();
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                short.join(", ")
            )));
        }
        self.conn
            .execute("DELETE FROM volumes WHERE name=?1", [name])
            .map_err(db("remove volume"))?;
        let dir = self.root.join("volumes").join(name);
        std::fs::remove_dir_all(&dir)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(io_err(format!("remove {}", dir.display())))
    }

    /// `volume prune`: unused anonymous volumes, or every unused volume with `all`.
    pub fn volume_prune(&mut self, all: bool) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for v in self.volumes()? {
            if (all || v.labels.contains_key(ANON_LABEL)) && self.volume_users(&v)?.is_empty() {
                self.volume_remove(&v.name, false)?;
                removed.push(v.name);
            }
        }
        Ok(removed)
    }
}

/// Removes the anonymous volumes a container made (`rm -v`).
pub(crate) fn remove_anonymous(engine: &mut Engine, owner: &str) {
    let names: Vec<String> = engine
        .volumes()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.labels.get(ANON_LABEL).map(String::as_str) == Some(owner))
        .map(|v| v.name)
        .collect();
    for n in names {
        let _ = engine.volume_remove(&n, true);
    }
}
