//! The image store's tables in the engine's SQLite database, and the queries on them.
//!
//! Rows are written only after the files they describe are in place, and removed before those files
//! are, each change in one transaction: a crash leaves at worst unreferenced files (garbage), never a
//! row pointing at something missing.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

/// Every table's name starts with `image` so the shared database stays readable.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id      TEXT PRIMARY KEY,   -- 'sha256:<hex>' of `config`
    config  BLOB NOT NULL,      -- the exact config JSON bytes that were hashed
    created TEXT NOT NULL,      -- RFC 3339, from the config
    size    INTEGER NOT NULL,   -- sum of the unpacked layer sizes
    layers  TEXT NOT NULL       -- JSON array of diff_ids, bottom layer first
);
CREATE TABLE IF NOT EXISTS image_tags (
    name     TEXT PRIMARY KEY,  -- normalized, e.g. 'busybox:latest'
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS image_tags_by_image ON image_tags(image_id);
CREATE TABLE IF NOT EXISTS image_digests (
    name     TEXT PRIMARY KEY,  -- 'busybox@sha256:<manifest digest>', filled by pull/load
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS image_digests_by_image ON image_digests(image_id);
CREATE TABLE IF NOT EXISTS image_layers (
    diff_id TEXT PRIMARY KEY,   -- 'sha256:<hex>' of the uncompressed layer tar
    size    INTEGER NOT NULL    -- bytes of regular-file content
);
";

/// Creates the image store's tables if they do not exist yet.
pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// One `images` row.
#[derive(Debug, Clone)]
pub(crate) struct ImageRow {
    pub id: String,
    pub config: Vec<u8>,
    pub created: String,
    pub size: u64,
    pub layers: Vec<String>,
}

const IMAGE_COLUMNS: &str = "id, config, created, size, layers";

fn image_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Vec<u8>, String, i64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn decode((id, config, created, size, layers): (String, Vec<u8>, String, i64, String)) -> Result<ImageRow> {
    let layers: Vec<String> = serde_json::from_str(&layers).map_err(|e| Error::Corrupt {
        what: format!("layer list of image {id}: {e}"),
    })?;
    Ok(ImageRow {
        id,
        config,
        created,
        size: size.max(0) as u64,
        layers,
    })
}

pub(crate) fn image_by_id(conn: &Connection, id: &str) -> Result<Option<ImageRow>> {
    let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1");
    conn.query_row(&sql, [id], image_row)
        .optional()?
        .map(decode)
        .transpose()
}

/// Up to `limit` image IDs starting with `sha256:<hex_prefix>`; the caller validated the prefix as hex,
/// so it holds no LIKE wildcards.
pub(crate) fn ids_with_prefix(conn: &Connection, hex_prefix: &str, limit: usize) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT id FROM images WHERE id LIKE ?1 ORDER BY id LIMIT ?2")?;
    let pattern = format!("sha256:{hex_prefix}%");
    let ids = stmt
        .query_map(params![pattern, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

pub(crate) fn all_images(conn: &Connection) -> Result<Vec<ImageRow>> {
    let sql = format!("SELECT {IMAGE_COLUMNS} FROM images");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], image_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(decode).collect()
}

pub(crate) fn image_for_tag(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT image_id FROM image_tags WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn image_for_digest(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT image_id FROM image_digests WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

/// The tags of one image, sorted.
pub(crate) fn tags_of(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM image_tags WHERE image_id = ?1 ORDER BY name")?;
    let tags = stmt
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(tags)
}

/// The repo digests (`name@sha256:…`) of one image, sorted.
pub(crate) fn digests_of(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM image_digests WHERE image_id = ?1 ORDER BY name")?;
    let names = stmt
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// Every (tag, image id), sorted by tag.
pub(crate) fn all_tags(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT name, image_id FROM image_tags ORDER BY name")?;
    let tags = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(tags)
}

/// Records a layer unless it is known already (the same diff_id is the same content).
pub(crate) fn insert_layer(conn: &Connection, diff_id: &str, size: u64) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO image_layers (diff_id, size) VALUES (?1, ?2)",
        params![diff_id, size as i64],
    )?;
    Ok(())
}

pub(crate) fn layer_size(conn: &Connection, diff_id: &str) -> Result<Option<u64>> {
    let size: Option<i64> = conn
        .query_row(
            "SELECT size FROM image_layers WHERE diff_id = ?1",
            [diff_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(size.map(|s| s.max(0) as u64))
}

pub(crate) fn insert_image(conn: &Connection, row: &ImageRow) -> Result<()> {
    let layers = serde_json::to_string(&row.layers).map_err(|e| Error::Corrupt { what: e.to_string() })?;
    conn.execute(
        "INSERT OR IGNORE INTO images (id, config, created, size, layers) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![row.id, row.config, row.created, row.size as i64, layers],
    )?;
    Ok(())
}

/// Points `name` at `image_id`, moving it away from any image it named before.
pub(crate) fn set_tag(conn: &Connection, name: &str, image_id: &str) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO image_tags (name, image_id) VALUES (?1, ?2)",
        [name, image_id],
    )?;
    Ok(())
}

/// Records the repo digest `name` (`repo@sha256:…`) for `image_id`, moving it if it named another.
pub(crate) fn set_digest(conn: &Connection, name: &str, image_id: &str) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO image_digests (name, image_id) VALUES (?1, ?2)",
        [name, image_id],
    )?;
    Ok(())
}

pub(crate) fn delete_tag(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM image_tags WHERE name = ?1", [name])?;
    Ok(())
}

pub(crate) fn delete_digest(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM image_digests WHERE name = ?1", [name])?;
    Ok(())
}

/// Deletes an image row with its tags and digests.
pub(crate) fn delete_image(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM image_tags WHERE image_id = ?1", [id])?;
    conn.execute("DELETE FROM image_digests WHERE image_id = ?1", [id])?;
    conn.execute("DELETE FROM images WHERE id = ?1", [id])?;
    Ok(())
}

/// How many images (rows) use the layer.
pub(crate) fn layer_users(conn: &Connection, diff_id: &str) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(DISTINCT images.id) FROM images, json_each(images.layers) WHERE json_each.value = ?1",
        [diff_id],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

pub(crate) fn delete_layer(conn: &Connection, diff_id: &str) -> Result<()> {
    conn.execute("DELETE FROM image_layers WHERE diff_id = ?1", [diff_id])?;
    Ok(())
}
