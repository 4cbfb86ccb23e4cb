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

/// Where a registry holds a stored layer, as some blob (docker's "v2 metadata"). Only pairs proven by
/// a transfer are recorded: a blob downloaded and verified to unpack to the diff_id, or the layer's
/// own uncompressed tar, so a push may name the blob in place of the layer without sending it. The
/// rowid orders the rows: a row written again moves to the end, so newest is last.
const BLOB_SOURCES: &str = "
CREATE TABLE IF NOT EXISTS image_blob_sources (
    diff_id    TEXT NOT NULL,     -- the layer (an image_layers row)
    registry   TEXT NOT NULL,     -- 'host[:port]' as references name it: 'docker.io', 'localhost:5000'
    repository TEXT NOT NULL,     -- 'library/busybox'
    digest     TEXT NOT NULL,     -- the blob as the registry holds it (== diff_id when uncompressed)
    media_type TEXT NOT NULL,     -- the OCI layer media type of that blob
    size       INTEGER NOT NULL,  -- its length in bytes
    PRIMARY KEY (diff_id, registry, repository, digest)
);
";

/// Rows kept per layer: enough for a few registries and repositories, bounded for layers pushed
/// everywhere.
const MAX_SOURCES_PER_LAYER: i64 = 16;

/// Creates the image store's tables if they do not exist yet.
pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(BLOB_SOURCES)?;
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
    if has_blob_sources(conn)? {
        conn.execute("DELETE FROM image_blob_sources WHERE diff_id = ?1", [diff_id])?;
    }
    Ok(())
}

/// One `image_blob_sources` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobSource {
    pub diff_id: String,
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// Whether the blob-source table exists. The engine runs [`migrate`] only when its schema version
/// changes, so a database made before the table was added may lack it until the first row is written.
fn has_blob_sources(conn: &Connection) -> Result<bool> {
    let found = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'image_blob_sources'",
            [],
            |_| Ok(()),
        )
        .optional()?;
    Ok(found.is_some())
}

/// Records that `source.registry`/`source.repository` holds the layer as `source.digest`; a row that
/// exists already becomes the newest. Nothing is recorded for a layer the store does not have (it may
/// have been removed meanwhile), so rows never outlive their layer.
pub(crate) fn insert_blob_source(conn: &Connection, source: &BlobSource) -> Result<()> {
    if !has_blob_sources(conn)? {
        conn.execute_batch(BLOB_SOURCES)?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO image_blob_sources (diff_id, registry, repository, digest, media_type, size)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM image_layers WHERE diff_id = ?1)",
        params![
            source.diff_id,
            source.registry,
            source.repository,
            source.digest,
            source.media_type,
            source.size as i64
        ],
    )?;
    trim_blob_sources(conn, &source.diff_id)
}

/// Records another place of a (diff_id, digest) pair that an earlier row proved, copying its media
/// type and size; nothing if no row proves the pair. A registry's manifest may pair any blob with a
/// layer the store has: only a verified download may teach berth that the two are the same content.
pub(crate) fn insert_known_blob_source(
    conn: &Connection,
    diff_id: &str,
    digest: &str,
    registry: &str,
    repository: &str,
) -> Result<()> {
    if !has_blob_sources(conn)? {
        return Ok(());
    }
    conn.execute(
        "INSERT OR REPLACE INTO image_blob_sources (diff_id, registry, repository, digest, media_type, size)
         SELECT diff_id, ?3, ?4, digest, media_type, size FROM image_blob_sources
         WHERE diff_id = ?1 AND digest = ?2 ORDER BY rowid DESC LIMIT 1",
        params![diff_id, digest, registry, repository],
    )?;
    trim_blob_sources(conn, diff_id)
}

/// Keeps the newest [`MAX_SOURCES_PER_LAYER`] rows of a layer.
fn trim_blob_sources(conn: &Connection, diff_id: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM image_blob_sources WHERE diff_id = ?1 AND rowid NOT IN
         (SELECT rowid FROM image_blob_sources WHERE diff_id = ?1 ORDER BY rowid DESC LIMIT ?2)",
        params![diff_id, MAX_SOURCES_PER_LAYER],
    )?;
    Ok(())
}

/// Where `registry` holds the layer, newest first.
pub(crate) fn blob_sources(conn: &Connection, diff_id: &str, registry: &str) -> Result<Vec<BlobSource>> {
    if !has_blob_sources(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT repository, digest, media_type, size FROM image_blob_sources
         WHERE diff_id = ?1 AND registry = ?2 ORDER BY rowid DESC",
    )?;
    let rows = stmt
        .query_map([diff_id, registry], |r| {
            Ok(BlobSource {
                diff_id: diff_id.to_string(),
                registry: registry.to_string(),
                repository: r.get(0)?,
                digest: r.get(1)?,
                media_type: r.get(2)?,
                size: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(diff_id: &str, repository: &str, digest: &str) -> BlobSource {
        BlobSource {
            diff_id: diff_id.into(),
            registry: "r.example:5000".into(),
            repository: repository.into(),
            digest: digest.into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 7,
        }
    }

    fn digests(conn: &Connection, diff_id: &str) -> Vec<(String, String)> {
        blob_sources(conn, diff_id, "r.example:5000")
            .unwrap()
            .into_iter()
            .map(|s| (s.repository, s.digest))
            .collect()
    }

    fn store_with_layer() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        insert_layer(&conn, "sha256:l1", 10).unwrap();
        conn
    }

    #[test]
    fn blob_sources_are_newest_first_and_only_for_stored_layers() {
        let conn = store_with_layer();
        insert_blob_source(&conn, &source("sha256:l1", "a/src", "sha256:gz")).unwrap();
        insert_blob_source(&conn, &source("sha256:l1", "a/dst", "sha256:gz")).unwrap();
        // Written again: becomes the newest.
        insert_blob_source(&conn, &source("sha256:l1", "a/src", "sha256:gz")).unwrap();
        // A layer the store does not have gets no row.
        insert_blob_source(&conn, &source("sha256:gone", "a/src", "sha256:x")).unwrap();
        assert_eq!(
            digests(&conn, "sha256:l1"),
            [
                ("a/src".into(), "sha256:gz".into()),
                ("a/dst".into(), "sha256:gz".into())
            ]
        );
        assert!(digests(&conn, "sha256:gone").is_empty());
        assert!(blob_sources(&conn, "sha256:l1", "other:5000").unwrap().is_empty());
    }

    #[test]
    fn known_pairs_spread_and_unknown_ones_do_not() {
        let conn = store_with_layer();
        insert_known_blob_source(&conn, "sha256:l1", "sha256:gz", "r.example:5000", "a/b").unwrap();
        assert!(digests(&conn, "sha256:l1").is_empty(), "no proof yet");
        insert_blob_source(&conn, &source("sha256:l1", "a/src", "sha256:gz")).unwrap();
        insert_known_blob_source(&conn, "sha256:l1", "sha256:gz", "r.example:5000", "a/b").unwrap();
        insert_known_blob_source(&conn, "sha256:l1", "sha256:other", "r.example:5000", "a/c").unwrap();
        let rows = blob_sources(&conn, "sha256:l1", "r.example:5000").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].repository, "a/b");
        assert_eq!(
            (rows[0].size, rows[0].media_type.as_str()),
            (7, rows[1].media_type.as_str())
        );
    }

    #[test]
    fn rows_are_bounded_and_go_with_their_layer() {
        let conn = store_with_layer();
        for i in 0..MAX_SOURCES_PER_LAYER + 5 {
            insert_blob_source(&conn, &source("sha256:l1", &format!("r/{i}"), "sha256:gz")).unwrap();
        }
        let rows = digests(&conn, "sha256:l1");
        assert_eq!(rows.len() as i64, MAX_SOURCES_PER_LAYER);
        assert_eq!(rows[0].0, format!("r/{}", MAX_SOURCES_PER_LAYER + 4));
        delete_layer(&conn, "sha256:l1").unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM image_blob_sources", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_database_without_the_table_gets_it_when_first_needed() {
        let conn = store_with_layer();
        conn.execute_batch("DROP TABLE image_blob_sources").unwrap();
        assert!(digests(&conn, "sha256:l1").is_empty());
        insert_known_blob_source(&conn, "sha256:l1", "sha256:gz", "r.example:5000", "a/b").unwrap();
        insert_layer(&conn, "sha256:l2", 1).unwrap();
        delete_layer(&conn, "sha256:l2").unwrap();
        insert_blob_source(&conn, &source("sha256:l1", "a/src", "sha256:gz")).unwrap();
        assert_eq!(digests(&conn, "sha256:l1").len(), 1);
        // And migrate leaves it as it is.
        migrate(&conn).unwrap();
        assert_eq!(digests(&conn, "sha256:l1").len(), 1);
    }
}
