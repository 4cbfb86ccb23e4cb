//! A container's row: identity, config and state, with docker's state words.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::config::RunConfig;
use crate::util;
use crate::Error;

/// The stored state of one container.
#[derive(Debug, Clone)]
pub struct Record {
    /// 64-hex id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Image id ("sha256:…").
    pub image_id: String,
    /// The image as the user named it.
    pub image_ref: String,
    /// The run flags.
    pub config: RunConfig,
    /// RFC3339 creation time.
    pub created: String,
    /// "created", "running", "exited" or "removing".
    pub status: String,
    /// Init pid on the host (0 when not running).
    pub pid: i32,
    /// Its start time, to detect pid reuse.
    pub pid_start: u64,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// The monitor's start time.
    pub monitor_start: u64,
    /// Exit code of the last run.
    pub exit_code: i32,
    /// The last run ended by the OOM killer.
    pub oom_killed: bool,
    /// RFC3339 start of the last run.
    pub started_at: String,
    /// RFC3339 end of the last run.
    pub finished_at: String,
    /// Why the last start failed, if it did.
    pub error: String,
    /// How many times it was restarted.
    pub restart_count: i64,
}

const COLUMNS: &str = "id, name, image_id, image_ref, config, created, status, pid, pid_start, monitor_pid, \
    monitor_start, exit_code, oom_killed, started_at, finished_at, error, restart_count";

fn db(context: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |e| Error::Db {
        context: context.to_string(),
        error: e,
    }
}

impl Record {
    fn from_row(r: &Row) -> rusqlite::Result<Record> {
        let config: String = r.get(4)?;
        Ok(Record {
            id: r.get(0)?,
            name: r.get(1)?,
            image_id: r.get(2)?,
            image_ref: r.get(3)?,
            config: serde_json::from_str(&config).unwrap_or_default(),
            created: r.get(5)?,
            status: r.get(6)?,
            pid: r.get(7)?,
            pid_start: r.get::<_, i64>(8)? as u64,
            monitor_pid: r.get(9)?,
            monitor_start: r.get::<_, i64>(10)? as u64,
            exit_code: r.get(11)?,
            oom_killed: r.get::<_, i64>(12)? != 0,
            started_at: r.get(13)?,
            finished_at: r.get(14)?,
            error: r.get(15)?,
            restart_count: r.get(16)?,
        })
    }

    /// Short id, as `ps` prints it.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// Whether the container's init is alive right now (pid and start time still match).
    pub fn is_running(&self) -> bool {
        self.status == "running" && util::alive(self.pid, self.pid_start)
    }

    /// Whether its monitor is alive.
    pub fn monitor_alive(&self) -> bool {
        util::alive(self.monitor_pid, self.monitor_start)
    }

    /// docker's STATUS column: "Up 5 minutes", "Exited (0) 2 seconds ago", "Created".
    pub fn status_line(&self) -> String {
        match self.status.as_str() {
            "running" => {
                let since = util::parse_time(&self.started_at).unwrap_or(std::time::SystemTime::now());
                let secs = std::time::SystemTime::now()
                    .duration_since(since)
                    .unwrap_or_default()
                    .as_secs();
                format!("Up {}", util::duration_words(secs))
            }
            "exited" => {
                let when = util::parse_time(&self.finished_at)
                    .map(util::ago)
                    .unwrap_or_default();
                format!("Exited ({}) {}", self.exit_code, when)
            }
            "removing" => "Removal In Progress".into(),
            _ => "Created".into(),
        }
    }
}

/// Inserts a new container; a taken name fails with a conflict (the UNIQUE constraint decides races).
pub fn insert(conn: &Connection, r: &Record) -> Result<(), Error> {
    let cfg = serde_json::to_string(&r.config).unwrap_or_default();
    let res = conn.execute(
        "INSERT INTO containers (id, name, image_id, image_ref, config, created, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![r.id, r.name, r.image_id, r.image_ref, cfg, r.created, r.status],
    );
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            let holder: Option<String> = conn
                .query_row("SELECT id FROM containers WHERE name = ?1", [&r.name], |x| {
                    x.get(0)
                })
                .optional()
                .ok()
                .flatten();
            Err(Error::Conflict(format!(
                "the container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name",
                r.name,
                holder.unwrap_or_default()
            )))
        }
        Err(e) => Err(Error::Db {
            context: "insert container".into(),
            error: e,
        }),
    }
}

/// All containers, newest first.
pub fn list(conn: &Connection) -> Result<Vec<Record>, Error> {
    let mut st = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM containers ORDER BY created DESC"))
        .map_err(db("list containers"))?;
    let rows = st
        .query_map([], Record::from_row)
        .map_err(db("list containers"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db("list containers"))
}

/// Finds a container by full id, name, or unique id prefix, as docker does.
pub fn find(conn: &Connection, key: &str) -> Result<Record, Error> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let one = |sql: &str| -> Result<Option<Record>, Error> {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM containers WHERE {sql}"),
            [key],
            Record::from_row,
        )
        .optional()
        .map_err(db("find container"))
    };
    if let Some(r) = one("id = ?1")? {
        return Ok(r);
    }
    if let Some(r) = one("name = ?1")? {
        return Ok(r);
    }
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut st = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM containers WHERE id LIKE ?1 || '%' LIMIT 2"
            ))
            .map_err(db("find container"))?;
        let found: Vec<Record> = st
            .query_map([key], Record::from_row)
            .map_err(db("find container"))?
            .collect::<Result<_, _>>()
            .map_err(db("find container"))?;
        match found.len() {
            1 => return Ok(found.into_iter().next().unwrap()),
            2.. => {
                return Err(Error::Invalid(format!(
                    "multiple containers match the prefix {key:?}; use more of the id"
                )))
            }
            _ => {}
        }
    }
    Err(Error::NotFound {
        kind: "container",
        name: key.to_string(),
    })
}

/// Records that the monitor started the container.
pub fn set_running(
    conn: &Connection,
    id: &str,
    pid: i32,
    pid_start: u64,
    mon: i32,
    mon_start: u64,
) -> Result<(), Error> {
    conn.execute(
        "UPDATE containers SET status='running', pid=?2, pid_start=?3, monitor_pid=?4, monitor_start=?5, \
         started_at=?6, finished_at='', exit_code=0, oom_killed=0, error='' WHERE id=?1",
        params![id, pid, pid_start as i64, mon, mon_start as i64, util::now()],
    )
    .map_err(db("record start"))?;
    Ok(())
}

/// Records the end of a run.
pub fn set_exited(conn: &Connection, id: &str, code: i32, oom: bool) -> Result<(), Error> {
    conn.execute(
        "UPDATE containers SET status='exited', pid=0, pid_start=0, monitor_pid=0, monitor_start=0, exit_code=?2, \
         oom_killed=?3, finished_at=?4 WHERE id=?1",
        params![id, code, oom as i64, util::now()],
    )
    .map_err(db("record exit"))?;
    Ok(())
}

/// Records a failed start: the container stays "created" with docker's exit code and the reason.
pub fn set_start_failed(conn: &Connection, id: &str, code: i32, error: &str) -> Result<(), Error> {
    conn.execute(
        "UPDATE containers SET status=CASE WHEN started_at='' THEN 'created' ELSE 'exited' END, pid=0, pid_start=0, \
         monitor_pid=0, monitor_start=0, exit_code=?2, error=?3, finished_at=?4 WHERE id=?1",
        params![id, code, error, util::now()],
    )
    .map_err(db("record failed start"))?;
    Ok(())
}

/// Replaces the stored configuration (`network connect`/`disconnect`).
pub fn set_config(conn: &Connection, id: &str, cfg: &crate::RunConfig) -> Result<(), Error> {
    let text = serde_json::to_string(cfg).map_err(|e| Error::Invalid(format!("container config: {e}")))?;
    conn.execute("UPDATE containers SET config=?2 WHERE id=?1", params![id, text])
        .map_err(db("update container config"))?;
    Ok(())
}

/// Sets the status word only.
pub fn set_status(conn: &Connection, id: &str, status: &str) -> Result<(), Error> {
    conn.execute("UPDATE containers SET status=?2 WHERE id=?1", params![id, status])
        .map_err(db("update status"))?;
    Ok(())
}

/// Keeps the exit code of a container that removes itself (`--rm`), for a `wait` that asks afterwards.
pub fn remember_exit(conn: &Connection, id: &str, code: i32) -> Result<(), Error> {
    conn.execute(
        "INSERT OR REPLACE INTO removed_exits (id, code, finished) VALUES (?1, ?2, ?3)",
        params![id, code, util::now()],
    )
    .map_err(db("remember exit code"))?;
    // Only recent ones matter; keep the table small.
    let _ = conn.execute(
        "DELETE FROM removed_exits WHERE finished < ?1",
        [humantime::format_rfc3339_nanos(
            std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
        )
        .to_string()],
    );
    Ok(())
}

/// The exit code of a container that removed itself.
pub fn removed_exit(conn: &Connection, id: &str) -> Option<i32> {
    conn.query_row("SELECT code FROM removed_exits WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .ok()
        .flatten()
}

/// Deletes the row.
pub fn delete(conn: &Connection, id: &str) -> Result<(), Error> {
    conn.execute("DELETE FROM containers WHERE id=?1", [id])
        .map_err(db("delete container"))?;
    Ok(())
}

/// Fixes a row whose monitor and init both died without recording the end (a crash, a reboot).
pub fn reconcile(conn: &Connection, r: &mut Record) -> Result<(), Error> {
    if r.status == "running" && !r.monitor_alive() && !util::alive(r.pid, r.pid_start) {
        set_exited(conn, &r.id, 255, false)?;
        // Its monitor died before releasing the addresses.
        let _ = berth_network::ipam::release_container(conn, &r.id);
        if let Ok(fresh) = find(conn, &r.id) {
            *r = fresh;
        }
    }
    Ok(())
}
