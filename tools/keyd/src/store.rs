//! The service's own SQLite database: wrapped data keys, master key labels,
//! client token hashes with their policies, and the audit log. It never holds
//! a key value in the clear (nor a client token: only its SHA-256).

use anyhow::{Context as _, Result};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS masters (
    seq        INTEGER PRIMARY KEY,
    label      TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    current    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deks (
    key_id       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    wrapped_dek  BLOB NOT NULL,
    master_label TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE IF NOT EXISTS clients (
    name         TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    keys         TEXT NOT NULL,
    admin        INTEGER NOT NULL DEFAULT 0,
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    client  TEXT NOT NULL,
    key_id  TEXT,
    version INTEGER,
    action  TEXT NOT NULL,
    result  TEXT NOT NULL,
    remote  TEXT
);
";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Opens (creating when missing, mode 0600) the service database.
pub fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let existed = path.exists();
    let conn =
        Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.execute_batch(SCHEMA).context("creating the schema")?;
    Ok(conn)
}

#[derive(Debug, Clone)]
pub struct Dek {
    pub key_id: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub master_label: String,
    pub created_at: i64,
    pub enabled: bool,
}

fn row_dek(r: &rusqlite::Row<'_>) -> rusqlite::Result<Dek> {
    Ok(Dek {
        key_id: r.get(0)?,
        version: r.get(1)?,
        wrapped: r.get(2)?,
        master_label: r.get(3)?,
        created_at: r.get(4)?,
        enabled: r.get::<_, i64>(5)? != 0,
    })
}

const DEK_COLS: &str = "key_id, version, wrapped_dek, master_label, created_at, enabled";

/// One version of a key id, or the latest when `version` is None.
pub fn get_dek(c: &Connection, key_id: &str, version: Option<u32>) -> Result<Option<Dek>> {
    let r = match version {
        Some(v) => c
            .query_row(
                &format!("SELECT {DEK_COLS} FROM deks WHERE key_id = ?1 AND version = ?2"),
                params![key_id, v],
                row_dek,
            )
            .optional()?,
        None => c
            .query_row(
                &format!(
                    "SELECT {DEK_COLS} FROM deks WHERE key_id = ?1 ORDER BY version DESC LIMIT 1"
                ),
                params![key_id],
                row_dek,
            )
            .optional()?,
    };
    Ok(r)
}

pub fn all_deks(c: &Connection) -> Result<Vec<Dek>> {
    let mut st = c.prepare(&format!(
        "SELECT {DEK_COLS} FROM deks ORDER BY key_id, version"
    ))?;
    let rows = st
        .query_map([], row_dek)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn insert_dek(c: &Connection, d: &Dek) -> Result<()> {
    c.execute(
        "INSERT INTO deks (key_id, version, wrapped_dek, master_label, created_at, enabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![d.key_id, d.version, d.wrapped, d.master_label, d.created_at, d.enabled as i64],
    )?;
    Ok(())
}

pub fn set_enabled(c: &Connection, key_id: &str, enabled: bool) -> Result<usize> {
    Ok(c.execute(
        "UPDATE deks SET enabled = ?2 WHERE key_id = ?1",
        params![key_id, enabled as i64],
    )?)
}

pub fn current_master(c: &Connection) -> Result<Option<(i64, String)>> {
    Ok(c.query_row(
        "SELECT seq, label FROM masters WHERE current = 1 ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

pub fn max_master_seq(c: &Connection) -> Result<i64> {
    Ok(
        c.query_row("SELECT COALESCE(MAX(seq), 0) FROM masters", [], |r| {
            r.get(0)
        })?,
    )
}

pub fn set_current_master(c: &Connection, seq: i64, label: &str) -> Result<()> {
    c.execute("UPDATE masters SET current = 0", [])?;
    c.execute(
        "INSERT INTO masters (seq, label, created_at, current) VALUES (?1, ?2, ?3, 1)",
        params![seq, label, now()],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub keys: Vec<String>,
    pub admin: bool,
}

impl Client {
    /// Whether the policy lets this client read key `id` (`*` = every key).
    pub fn may_read(&self, id: &str) -> bool {
        self.admin || self.keys.iter().any(|k| k == "*" || k == id)
    }
}

pub fn client_by_token(c: &Connection, token: &str) -> Result<Option<Client>> {
    let h = sha256_hex(token);
    Ok(c.query_row(
        "SELECT name, keys, admin FROM clients WHERE token_sha256 = ?1 AND enabled = 1",
        params![h],
        |r| {
            let keys: String = r.get(1)?;
            Ok(Client {
                name: r.get(0)?,
                keys: keys
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                admin: r.get::<_, i64>(2)? != 0,
            })
        },
    )
    .optional()?)
}

pub fn insert_client(
    c: &Connection,
    name: &str,
    token: &str,
    keys: &[String],
    admin: bool,
) -> Result<()> {
    c.execute(
        "INSERT INTO clients (name, token_sha256, keys, admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, sha256_hex(token), keys.join(","), admin as i64, now()],
    )
    .with_context(|| format!("adding client {name} (does it exist already?)"))?;
    Ok(())
}

pub fn revoke_client(c: &Connection, name: &str) -> Result<usize> {
    Ok(c.execute(
        "UPDATE clients SET enabled = 0 WHERE name = ?1",
        params![name],
    )?)
}

/// One audit record. Never carries a key value.
pub struct AuditRecord<'a> {
    pub client: &'a str,
    pub key_id: Option<&'a str>,
    pub version: Option<u32>,
    pub action: &'a str,
    pub result: &'a str,
    pub remote: Option<&'a str>,
}

pub fn audit(c: &Connection, a: &AuditRecord<'_>) -> Result<()> {
    c.execute(
        "INSERT INTO audit (time, client, key_id, version, action, result, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now(), a.client, a.key_id, a.version, a.action, a.result, a.remote],
    )?;
    Ok(())
}

/// The last `n` audit records, oldest first, as text lines.
pub fn audit_tail(c: &Connection, n: u32) -> Result<Vec<String>> {
    let mut st = c.prepare(
        "SELECT time, client, COALESCE(key_id, '-'), COALESCE(CAST(version AS TEXT), '-'), action, result, COALESCE(remote, '-')
         FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    let rows = st
        .query_map(params![n], |r| {
            Ok(format!(
                "{} client={} key={} version={} action={} result={} remote={}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
