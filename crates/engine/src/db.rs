//! The metadata database: one SQLite file per berth root, in WAL mode so concurrent `berth` commands read
//! while one writes, with a busy timeout instead of "database is locked" errors.

use std::path::Path;

use rusqlite::Connection;

use crate::Error;

/// Bumped whenever SCHEMA or a crate's own tables change.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    image_id      TEXT NOT NULL,
    image_ref     TEXT NOT NULL,
    config        TEXT NOT NULL,
    created       TEXT NOT NULL,
    status        TEXT NOT NULL,
    pid           INTEGER NOT NULL DEFAULT 0,
    pid_start     INTEGER NOT NULL DEFAULT 0,
    monitor_pid   INTEGER NOT NULL DEFAULT 0,
    monitor_start INTEGER NOT NULL DEFAULT 0,
    exit_code     INTEGER NOT NULL DEFAULT 0,
    oom_killed    INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL DEFAULT '',
    finished_at   TEXT NOT NULL DEFAULT '',
    error         TEXT NOT NULL DEFAULT '',
    restart_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS removed_exits (
    id       TEXT PRIMARY KEY,
    code     INTEGER NOT NULL,
    finished TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name    TEXT PRIMARY KEY,
    driver  TEXT NOT NULL,
    labels  TEXT NOT NULL,
    options TEXT NOT NULL,
    created TEXT NOT NULL
);
";

/// Opens (and creates) the database of a berth root.
pub fn open(root: &Path) -> Result<Connection, Error> {
    let path = root.join("berth.db");
    let conn = Connection::open(&path).map_err(|e| Error::Db {
        context: format!("open {}", path.display()),
        error: e,
    })?;
    let ctx = |what: &str| {
        let what = what.to_string();
        move |e| Error::Db {
            context: what,
            error: e,
        }
    };
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(ctx("set busy timeout"))?;
    // WAL lets readers go on while a writer commits; NORMAL sync is still crash-safe in WAL mode.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(ctx("enable WAL"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(ctx("set synchronous"))?;
    // Every berth command is a short-lived process: checkpointing (two fsyncs and a WAL unlink) each time a
    // connection closes cost more than the whole container start. Checkpoints still happen, amortized, when
    // the WAL reaches its auto-checkpoint size during a commit.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(ctx("disable checkpoint on close"))?;
    // Every command opens the database: create the tables only when the file is not at this schema yet.
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(ctx("read schema version"))?;
    if version != SCHEMA_VERSION {
        conn.execute_batch(SCHEMA).map_err(ctx("create schema"))?;
        berth_image::Store::migrate(&conn).map_err(Error::Image)?;
        berth_network::ipam::migrate(&conn).map_err(|e| Error::Invalid(e.to_string()))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(ctx("set schema version"))?;
    }
    Ok(conn)
}
