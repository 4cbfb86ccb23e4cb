//! images, rmi, tag, import, commit, export, image inspect, image prune.

use std::io::Write;

use anyhow::{anyhow, Context, Result};
use berth_engine::{util, Engine};
use serde_json::{json, Value};

use crate::cli::{CommitArgs, ExportArgs, ImagePruneArgs, ImagesArgs, ImportArgs, RmiArgs, TagArgs};
use crate::output;

fn repo_tag(t: &str) -> (String, String) {
    // The tag is after the last ':' that follows the last '/' (a registry port is not a tag).
    let slash = t.rfind('/').map(|i| i + 1).unwrap_or(0);
    match t[slash..].rfind(':') {
        Some(i) => (t[..slash + i].to_string(), t[slash + i + 1..].to_string()),
        None => (t.to_string(), "latest".into()),
    }
}

/// `reference=PATTERN`: a glob on "repo:tag" (or on the repo alone when the pattern has no tag).
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (repo, _) = repo_tag(tag);
    let subject = if pattern.contains(':') { tag } else { repo.as_str() };
    glob(pattern.as_bytes(), subject.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// docker's `image inspect` JSON for an image reference, if it resolves.
pub fn inspect_json(engine: &mut Engine, reference: &str) -> Option<Value> {
    let img = engine.image(reference).ok()?;
    let (store, conn) = engine.images_and_conn();
    let digests = store.repo_digests(conn, &img.id).unwrap_or_default();
    let cfg = serde_json::to_value(&img.config).unwrap_or(Value::Null);
    Some(json!({
        "Id": img.id,
        "RepoTags": img.tags,
        "RepoDigests": digests,
        "Created": img.created,
        "Author": cfg.get("author").cloned().unwrap_or(json!("")),
        "Config": cfg.get("config").cloned().unwrap_or(json!({})),
        "Architecture": cfg.get("architecture").cloned().unwrap_or(json!("")),
        "Os": cfg.get("os").cloned().unwrap_or(json!("")),
        "Size": img.size,
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "History": cfg.get("history").cloned().unwrap_or(json!([])),
    }))
}

/// `berth images`.
pub fn images(engine: &mut Engine, a: &ImagesArgs) -> Result<i32> {
    let (store, conn) = engine.images_and_conn();
    let mut list = store.list(conn)?;
    if let Some(repo) = &a.repository {
        let (want_repo, want_tag) = repo_tag(repo);
        let explicit_tag = repo.contains(':') && !repo.ends_with(':');
        list.retain(|i| {
            i.tags.iter().any(|t| {
                let (r, tg) = repo_tag(t);
                r == want_repo && (!explicit_tag || tg == want_tag)
            })
        });
    }
    for f in &a.filter {
        match f.split_once('=') {
            Some(("dangling", want)) => {
                let want = matches!(want, "true" | "1");
                list.retain(|i| i.tags.is_empty() == want);
            }
            Some(("reference", pat)) => list.retain(|i| i.tags.iter().any(|t| reference_matches(pat, t))),
            _ => anyhow::bail!("invalid filter {f:?}"),
        }
    }
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for img in &list {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            img.short_id().to_string()
        };
        let tags: Vec<(String, String)> = if img.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            img.tags.iter().map(|t| repo_tag(t)).collect()
        };
        let created = util::parse_time(&img.created).map(util::ago).unwrap_or_default();
        // The digest part of the first "repo@sha256:…" this image was pulled or pushed as.
        let digest = store
            .repo_digests(conn, &img.id)
            .ok()
            .and_then(|d| {
                d.first()
                    .and_then(|x| x.split_once('@'))
                    .map(|(_, h)| h.to_string())
            })
            .unwrap_or_else(|| "<none>".into());
        for (r, t) in tags {
            items.push(json!({"ID": id, "Repository": r, "Tag": t, "CreatedSince": created, "CreatedAt": img.created, "Size": util::human_size(img.size), "Digest": digest}));
            let mut row = vec![r, t];
            if a.digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), created.clone(), util::human_size(img.size)]);
            rows.push(row);
        }
    }
    if a.quiet {
        let mut seen = Vec::new();
        for img in &list {
            let id = if a.no_trunc {
                img.id.clone()
            } else {
                img.short_id().to_string()
            };
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        if output::formatted(f, &items) {
            return Ok(0);
        }
    }
    let headers: Vec<&str> = if a.digests {
        vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    output::table(&headers, &rows);
    Ok(0)
}

/// `berth rmi`.
pub fn rmi(engine: &mut Engine, a: &RmiArgs) -> Result<i32> {
    let mut code = 0;
    for i in &a.images {
        match engine.remove_image(i, a.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("berth: error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `berth tag`.
pub fn tag(engine: &mut Engine, a: &TagArgs) -> Result<i32> {
    let (store, conn) = engine.images_and_conn();
    store.tag(conn, &a.source, &a.target)?;
    Ok(0)
}

/// `berth import FILE|- [REF]`.
pub fn import(engine: &mut Engine, a: &ImportArgs) -> Result<i32> {
    let id = if a.file == "-" {
        engine.import(
            std::io::stdin().lock(),
            a.reference.as_deref(),
            &a.change,
            a.message.as_deref(),
        )?
    } else {
        let f = std::fs::File::open(&a.file).with_context(|| format!("open {}", a.file))?;
        engine.import(
            std::io::BufReader::with_capacity(1 << 20, f),
            a.reference.as_deref(),
            &a.change,
            a.message.as_deref(),
        )?
    };
    println!("{id}");
    Ok(0)
}

/// `berth commit`.
pub fn commit(engine: &mut Engine, a: &CommitArgs) -> Result<i32> {
    let id = engine.commit(
        &a.container,
        a.reference.as_deref(),
        &a.change,
        a.message.as_deref(),
        a.author.as_deref(),
        a.pause,
    )?;
    println!("{id}");
    Ok(0)
}

/// `berth export [-o FILE]`: refuses to write a tar to a terminal.
pub fn export(engine: &mut Engine, a: &ExportArgs) -> Result<i32> {
    match &a.output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let f = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            let r = engine
                .export(&a.container, &mut w)
                .map_err(anyhow::Error::from)
                .and_then(|_| w.flush().map_err(Into::into));
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
        }
        None => {
            if nix::unistd::isatty(std::io::stdout()).unwrap_or(false) {
                return Err(anyhow!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                ));
            }
            let out = std::io::stdout().lock();
            let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
            engine.export(&a.container, &mut w)?;
            w.flush()?;
        }
    }
    Ok(0)
}

/// `berth image prune [-a]`: dangling images, or every image no container uses.
pub fn prune(engine: &mut Engine, a: &ImagePruneArgs) -> Result<i32> {
    let used: Vec<String> = engine.containers()?.into_iter().map(|c| c.image_id).collect();
    let (store, conn) = engine.images_and_conn();
    let list = store.list(conn)?;
    let mut removed = Vec::new();
    for img in list {
        if used.contains(&img.id) || (!a.all && !img.tags.is_empty()) {
            continue;
        }
        let lines = engine.remove_image(&img.id, true)?;
        removed.extend(lines);
    }
    if !removed.is_empty() {
        println!("Deleted Images:");
        removed.iter().for_each(|l| println!("{l}"));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_and_tag() {
        assert_eq!(repo_tag("busybox:latest"), ("busybox".into(), "latest".into()));
        assert_eq!(
            repo_tag("localhost:5000/a/b:v1"),
            ("localhost:5000/a/b".into(), "v1".into())
        );
        assert_eq!(
            repo_tag("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "latest".into())
        );
    }
}
