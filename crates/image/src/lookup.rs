//! Finding images: by name, by digest, by full ID or by a unique ID prefix, as docker accepts them.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::db;
use crate::digest::{is_hex_id_prefix, SHA256_PREFIX};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::reference;
use crate::store::Store;
use crate::time::parse_rfc3339_nanos;

/// How a reference matched, which decides what `remove` does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Through this normalized tag (`busybox:latest`).
    Tag(String),
    /// Through this repo digest (`busybox@sha256:…`).
    Digest(String),
    /// Through the image ID or a prefix of it.
    Id,
}

impl Store {
    /// Resolves what a user typed — `name[:tag]`, `name@digest`, `sha256:<hex>`, `<hex>` or a unique
    /// ID prefix — to an image.
    ///
    /// Names win over ID prefixes (an image tagged `abc` is found as `abc`, as in docker). Unknown →
    /// [`Error::ImageNotFound`]; a prefix matching several images → [`Error::AmbiguousReference`]; a
    /// malformed name → [`Error::InvalidReference`].
    pub fn resolve(&self, conn: &Connection, reference: &str) -> Result<Image> {
        Ok(lookup(conn, reference)?.0)
    }

    /// All images, newest first (by their `created` time), dangling ones included (no tags).
    pub fn list(&self, conn: &Connection) -> Result<Vec<Image>> {
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        for (name, id) in db::all_tags(conn)? {
            tags.entry(id).or_default().push(name);
        }
        let mut images = db::all_images(conn)?
            .into_iter()
            .map(|row| {
                let image_tags = tags.remove(&row.id).unwrap_or_default();
                Image::from_row(row, image_tags)
            })
            .collect::<Result<Vec<_>>>()?;
        images.sort_by(|a, b| {
            let (ta, tb) = (parse_rfc3339_nanos(&a.created), parse_rfc3339_nanos(&b.created));
            tb.cmp(&ta).then_with(|| a.id.cmp(&b.id))
        });
        Ok(images)
    }
}

/// Resolves a reference, also saying how it matched.
pub(crate) fn lookup(conn: &Connection, reference: &str) -> Result<(Image, Found)> {
    let not_found = || Error::ImageNotFound {
        reference: reference.to_string(),
    };

    // "sha256:<hex>": an ID (or, leniently, an ID prefix), never a name.
    if let Some(hex) = reference.strip_prefix(SHA256_PREFIX) {
        if !is_hex_id_prefix(hex) {
            return Err(not_found());
        }
        return by_id_prefix(conn, hex, reference).map(|image| (image, Found::Id));
    }
    // 64 hex digits cannot be a repository name.
    if reference.len() == 64 && is_hex_id_prefix(reference) {
        return by_id_prefix(conn, reference, reference).map(|image| (image, Found::Id));
    }

    match reference::parse(reference) {
        Ok(parsed) => {
            let found = match &parsed.digest {
                Some(digest) => {
                    let name = format!("{}@{digest}", parsed.familiar_name());
                    db::image_for_digest(conn, &name)?.map(|id| (id, Found::Digest(name)))
                }
                None => {
                    let name = parsed.to_string();
                    db::image_for_tag(conn, &name)?.map(|id| (id, Found::Tag(name)))
                }
            };
            if let Some((id, how)) = found {
                return Ok((load(conn, &id)?, how));
            }
        }
        // Only a hex prefix may be a malformed name and still mean something.
        Err(e) if !is_hex_id_prefix(reference) => return Err(e),
        Err(_) => {}
    }
    if is_hex_id_prefix(reference) {
        return by_id_prefix(conn, reference, reference).map(|image| (image, Found::Id));
    }
    Err(not_found())
}

/// The one image whose ID starts with `hex`.
fn by_id_prefix(conn: &Connection, hex: &str, reference: &str) -> Result<Image> {
    let ids = db::ids_with_prefix(conn, hex, 2)?;
    match ids.as_slice() {
        [id] => load(conn, id),
        [] => Err(Error::ImageNotFound {
            reference: reference.to_string(),
        }),
        _ => Err(Error::AmbiguousReference {
            reference: reference.to_string(),
        }),
    }
}

/// Loads an image with its tags; a missing row (a tag pointing nowhere) is reported as corruption.
pub(crate) fn load(conn: &Connection, id: &str) -> Result<Image> {
    let row = db::image_by_id(conn, id)?.ok_or_else(|| Error::Corrupt {
        what: format!("a reference points to missing image {id}"),
    })?;
    let tags = db::tags_of(conn, id)?;
    Image::from_row(row, tags)
}
