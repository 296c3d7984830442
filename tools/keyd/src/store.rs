//! The service's own SQLite database: wrapped data keys, master key labels,
//! the labels of HMAC keys kept in the token, per-key settings (key spec,
//! rotation period), client token hashes with their policies, grants, and the
//! audit log. It never holds a key value in the clear (nor a client token:
//! only its SHA-256).

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
CREATE TABLE IF NOT EXISTS mac_keys (
    key_id     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    label      TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE IF NOT EXISTS key_settings (
    key_id           TEXT PRIMARY KEY,
    rotation_seconds INTEGER
);
CREATE TABLE IF NOT EXISTS grants (
    grant_id   TEXT PRIMARY KEY,
    client     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS grants_by_client ON grants (client, key_id);
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    client  TEXT NOT NULL,
    key_id  TEXT,
    version INTEGER,
    action  TEXT NOT NULL,
    result  TEXT NOT NULL,
    remote  TEXT,
    detail  TEXT
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
    // Databases made before the audit table had `detail`.
    let has_detail: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('audit') WHERE name = 'detail'",
        [],
        |r| r.get(0),
    )?;
    if has_detail == 0 {
        conn.execute_batch("ALTER TABLE audit ADD COLUMN detail TEXT")
            .context("adding audit.detail")?;
    }
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

/// Enables or disables every version of `key_id` (data key or HMAC key);
/// returns the number of versions changed.
pub fn set_enabled(c: &Connection, key_id: &str, enabled: bool) -> Result<usize> {
    let n = c.execute(
        "UPDATE deks SET enabled = ?2 WHERE key_id = ?1",
        params![key_id, enabled as i64],
    )?;
    let m = c.execute(
        "UPDATE mac_keys SET enabled = ?2 WHERE key_id = ?1",
        params![key_id, enabled as i64],
    )?;
    Ok(n + m)
}

/// One version of an HMAC key: the label of its object in the token.
#[derive(Debug, Clone)]
pub struct MacKey {
    pub key_id: String,
    pub version: u32,
    pub label: String,
    pub created_at: i64,
    pub enabled: bool,
}

fn row_mac(r: &rusqlite::Row<'_>) -> rusqlite::Result<MacKey> {
    Ok(MacKey {
        key_id: r.get(0)?,
        version: r.get(1)?,
        label: r.get(2)?,
        created_at: r.get(3)?,
        enabled: r.get::<_, i64>(4)? != 0,
    })
}

const MAC_COLS: &str = "key_id, version, label, created_at, enabled";

/// One version of an HMAC key id, or the latest when `version` is None.
pub fn get_mac(c: &Connection, key_id: &str, version: Option<u32>) -> Result<Option<MacKey>> {
    let r = match version {
        Some(v) => c
            .query_row(
                &format!("SELECT {MAC_COLS} FROM mac_keys WHERE key_id = ?1 AND version = ?2"),
                params![key_id, v],
                row_mac,
            )
            .optional()?,
        None => c
            .query_row(
                &format!(
                    "SELECT {MAC_COLS} FROM mac_keys WHERE key_id = ?1 ORDER BY version DESC LIMIT 1"
                ),
                params![key_id],
                row_mac,
            )
            .optional()?,
    };
    Ok(r)
}

/// Every version of every HMAC key, by key id and version.
pub fn all_macs(c: &Connection) -> Result<Vec<MacKey>> {
    let mut st = c.prepare(&format!(
        "SELECT {MAC_COLS} FROM mac_keys ORDER BY key_id, version"
    ))?;
    let rows = st
        .query_map([], row_mac)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn insert_mac(c: &Connection, m: &MacKey) -> Result<()> {
    c.execute(
        "INSERT INTO mac_keys (key_id, version, label, created_at, enabled) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![m.key_id, m.version, m.label, m.created_at, m.enabled as i64],
    )?;
    Ok(())
}

/// The rotation period of `key_id` in seconds (None: no scheduled rotation).
pub fn rotation_period(c: &Connection, key_id: &str) -> Result<Option<u64>> {
    let v: Option<Option<i64>> = c
        .query_row(
            "SELECT rotation_seconds FROM key_settings WHERE key_id = ?1",
            params![key_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.flatten().map(|s| s.max(0) as u64))
}

pub fn set_rotation_period(c: &Connection, key_id: &str, seconds: Option<u64>) -> Result<()> {
    c.execute(
        "INSERT INTO key_settings (key_id, rotation_seconds) VALUES (?1, ?2)
         ON CONFLICT (key_id) DO UPDATE SET rotation_seconds = excluded.rotation_seconds",
        params![key_id, seconds.map(|s| s as i64)],
    )?;
    Ok(())
}

/// Key ids with a rotation period: (key id, seconds).
pub fn scheduled_rotations(c: &Connection) -> Result<Vec<(String, u64)>> {
    let mut st = c.prepare(
        "SELECT key_id, rotation_seconds FROM key_settings WHERE rotation_seconds IS NOT NULL ORDER BY key_id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A grant: client `client` may use key `key_id` until `expires_at` (Unix
/// seconds), unless revoked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Grant {
    #[serde(rename = "GrantId")]
    pub grant_id: String,
    #[serde(rename = "GranteePrincipal")]
    pub client: String,
    #[serde(rename = "KeyId")]
    pub key_id: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: i64,
    #[serde(rename = "ExpiresAt")]
    pub expires_at: i64,
    #[serde(rename = "RevokedAt")]
    pub revoked_at: Option<i64>,
}

impl Grant {
    /// In force at `now`: not revoked and not expired.
    pub fn active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

fn row_grant(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        grant_id: r.get(0)?,
        client: r.get(1)?,
        key_id: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

const GRANT_COLS: &str = "grant_id, client, key_id, created_at, expires_at, revoked_at";

pub fn insert_grant(c: &Connection, g: &Grant) -> Result<()> {
    c.execute(
        &format!("INSERT INTO grants ({GRANT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            g.grant_id,
            g.client,
            g.key_id,
            g.created_at,
            g.expires_at,
            g.revoked_at
        ],
    )?;
    Ok(())
}

/// Grants, optionally only those of one client and/or one key id, oldest first.
pub fn list_grants(
    c: &Connection,
    client: Option<&str>,
    key_id: Option<&str>,
) -> Result<Vec<Grant>> {
    let mut st = c.prepare(&format!(
        "SELECT {GRANT_COLS} FROM grants
         WHERE (?1 IS NULL OR client = ?1) AND (?2 IS NULL OR key_id = ?2)
         ORDER BY created_at, grant_id"
    ))?;
    let rows = st
        .query_map(params![client, key_id], row_grant)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The first grant in force at `now` for `client` on `key_id`.
pub fn active_grant(c: &Connection, client: &str, key_id: &str, now: i64) -> Result<Option<Grant>> {
    Ok(c.query_row(
        &format!(
            "SELECT {GRANT_COLS} FROM grants
             WHERE client = ?1 AND key_id = ?2 AND revoked_at IS NULL AND expires_at > ?3
             ORDER BY expires_at DESC LIMIT 1"
        ),
        params![client, key_id, now],
        row_grant,
    )
    .optional()?)
}

pub fn get_grant(c: &Connection, grant_id: &str) -> Result<Option<Grant>> {
    Ok(c.query_row(
        &format!("SELECT {GRANT_COLS} FROM grants WHERE grant_id = ?1"),
        params![grant_id],
        row_grant,
    )
    .optional()?)
}

/// Marks a grant revoked (once); returns whether a grant in force was revoked.
pub fn revoke_grant(c: &Connection, grant_id: &str, now: i64) -> Result<usize> {
    Ok(c.execute(
        "UPDATE grants SET revoked_at = ?2 WHERE grant_id = ?1 AND revoked_at IS NULL",
        params![grant_id, now],
    )?)
}

/// Whether a client of this name exists and is enabled.
pub fn client_exists(c: &Connection, name: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT 1 FROM clients WHERE name = ?1 AND enabled = 1",
        params![name],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
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
    /// What else the record needs: the grant that allowed a request, the
    /// scheduler's reason. Never a key value.
    pub detail: Option<&'a str>,
}

pub fn audit(c: &Connection, a: &AuditRecord<'_>) -> Result<()> {
    c.execute(
        "INSERT INTO audit (time, client, key_id, version, action, result, remote, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![now(), a.client, a.key_id, a.version, a.action, a.result, a.remote, a.detail],
    )?;
    Ok(())
}

/// The last `n` audit records, oldest first, as text lines.
pub fn audit_tail(c: &Connection, n: u32) -> Result<Vec<String>> {
    let mut st = c.prepare(
        "SELECT time, client, COALESCE(key_id, '-'), COALESCE(CAST(version AS TEXT), '-'), action, result, COALESCE(remote, '-'), detail
         FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    let rows = st
        .query_map(params![n], |r| {
            let detail: Option<String> = r.get(7)?;
            Ok(format!(
                "{} client={} key={} version={} action={} result={} remote={}{}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                detail.map(|d| format!(" detail={d}")).unwrap_or_default()
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
