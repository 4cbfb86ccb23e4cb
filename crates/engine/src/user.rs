//! `-u` resolution against the image's own /etc/passwd and /etc/group, read from the container's layers
//! (upper first), never from the host.

use std::path::PathBuf;

/// The identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids from /etc/group.
    pub additional_gids: Vec<u32>,
    /// Home dir from /etc/passwd ("/" when unknown).
    pub home: String,
}

/// Reads a file of the layered rootfs: the first layer (top first) that has it as a regular file wins; a
/// symlink or whiteout there ends the search (we never follow links out of a layer).
pub fn read_layered(layers: &[PathBuf], rel: &str) -> Option<String> {
    for l in layers {
        let p = l.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => return std::fs::read_to_string(&p).ok(),
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// Resolves "user[:group]" (names or numbers) as docker does: a numeric uid need not exist in /etc/passwd,
/// a name must.
pub fn resolve(spec: Option<&str>, layers: &[PathBuf]) -> Result<Identity, String> {
    let spec = spec.unwrap_or("").trim();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = read_layered(layers, "etc/passwd")
        .map(|t| passwd(&t))
        .unwrap_or_default();
    let gr = read_layered(layers, "etc/group")
        .map(|t| groups(&t))
        .unwrap_or_default();
    let u = if u.is_empty() { "0" } else { u };
    let (uid, mut gid, home, name) = match u.parse::<u32>() {
        Ok(uid) => match pw.iter().find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, e.home.clone(), Some(e.name.clone())),
            None => (uid, 0, "/".to_string(), None),
        },
        Err(_) => match pw.iter().find(|e| e.name == u) {
            Some(e) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
            None => {
                return Err(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            }
        },
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match gr.iter().find(|e| e.name == g) {
                Some(e) => e.gid,
                None => {
                    return Err(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                }
            },
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&name, g) {
        for e in &gr {
            if e.members.iter().any(|m| m == name) && e.gid != gid && !additional_gids.contains(&e.gid) {
                additional_gids.push(e.gid);
            }
        }
    }
    Ok(Identity {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> (tempfile::TempDir, Vec<PathBuf>) {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(
            lower.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            lower.join("etc/group"),
            "root:x:0:\napp:x:1000:\nusers:x:100:app\n",
        )
        .unwrap();
        (t, vec![upper, lower])
    }

    #[test]
    fn names_and_numbers() {
        let (_t, l) = layers();
        assert_eq!(
            resolve(None, &l).unwrap(),
            Identity {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let app = resolve(Some("app"), &l).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone(), app.home.as_str()),
            (1000, 1000, vec![100], "/home/app")
        );
        assert_eq!(resolve(Some("1234:5"), &l).unwrap().gid, 5);
        assert_eq!(resolve(Some("app:users"), &l).unwrap().gid, 100);
        assert!(resolve(Some("nobody-here"), &l)
            .unwrap_err()
            .contains("unable to find user nobody-here"));
        assert!(resolve(Some("app:nogroup"), &l).is_err());
    }
}
