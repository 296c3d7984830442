//! SQLite backend (bundled SQLite, WAL, `synchronous=FULL`): one database per
//! installation, shared by every process. Writers take `BEGIN IMMEDIATE` and
//! wait on a busy timeout rather than fail; readers never block writers.

use super::backend::{AccFn, AuditChainFn, Backend, RawObject, RawToken, SealFn};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(k, v) VALUES ('format', 1), ('seq', 0);
CREATE TABLE IF NOT EXISTS tokens(
  token_id INTEGER PRIMARY KEY AUTOINCREMENT,
  slot_id INTEGER NOT NULL UNIQUE,
  version INTEGER NOT NULL,
  blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS objects(
  obj_id INTEGER PRIMARY KEY AUTOINCREMENT,
  token_id INTEGER NOT NULL,
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  key_class INTEGER NOT NULL,
  blob BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS objects_by_seq ON objects(token_id, seq);
CREATE TABLE IF NOT EXISTS tags(
  tag BLOB NOT NULL,
  obj_id INTEGER NOT NULL,
  PRIMARY KEY(tag, obj_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_obj ON tags(obj_id);
CREATE TABLE IF NOT EXISTS tombstones(
  obj_id INTEGER PRIMARY KEY,
  token_id INTEGER NOT NULL,
  seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_by_seq ON tombstones(token_id, seq);
CREATE TABLE IF NOT EXISTS accumulators(
  token_id INTEGER PRIMARY KEY,
  acc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS objects_by_token ON objects(token_id, obj_id, version);
CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  entry BLOB NOT NULL,
  mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit_anchor(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  mac BLOB NOT NULL);
";

/// XORs `delta` into the token's accumulator.
fn accumulate(tx: &rusqlite::Transaction<'_>, token_id: i64, delta: &[u8; 32]) -> Result<()> {
    let current: Option<Vec<u8>> = tx
        .query_row(
            "SELECT acc FROM accumulators WHERE token_id=?1",
            [token_id],
            |r| r.get(0),
        )
        .optional()?;
    let mut acc = [0u8; 32];
    if let Some(c) = current {
        if c.len() == 32 {
            acc.copy_from_slice(&c);
        }
    }
    for (a, d) in acc.iter_mut().zip(delta) {
        *a ^= d;
    }
    tx.execute(
        "INSERT INTO accumulators(token_id, acc) VALUES (?1, ?2)
         ON CONFLICT(token_id) DO UPDATE SET acc=excluded.acc",
        params![token_id, &acc[..]],
    )?;
    Ok(())
}

fn xor(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    let mut out = a;
    for (o, x) in out.iter_mut().zip(b) {
        *o ^= x;
    }
    out
}

/// The embedded backend. Connections are pooled so threads do not queue on
/// one connection; each is opened lazily.
pub struct SqliteBackend {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl SqliteBackend {
    pub fn open(path: &Path) -> Result<SqliteBackend> {
        // Create the database file ourselves, mode 0600: SQLite would use
        // 0644, and its -wal and -shm files copy the database file's mode.
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
        }
        let b = SqliteBackend {
            path: path.to_path_buf(),
            pool: Mutex::new(Vec::new()),
        };
        let conn = b.connect()?;
        // Creating the schema races with other processes; IMMEDIATE serialises it.
        let mut conn = conn;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let format: i64 = tx.query_row("SELECT v FROM meta WHERE k='format'", [], |r| r.get(0))?;
        if format != 1 {
            return Err(Error::device(format!("unknown store format {format}")));
        }
        tx.commit()?;
        b.pool.lock().push(conn);
        Ok(b)
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let popped = self.pool.lock().pop();
        let mut conn = match popped {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        let mut pool = self.pool.lock();
        if pool.len() < 16 {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` in a write transaction and commits it durably.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

fn next_seq(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    tx.execute("UPDATE meta SET v = v + 1 WHERE k='seq'", [])?;
    Ok(tx.query_row("SELECT v FROM meta WHERE k='seq'", [], |r| r.get(0))?)
}

fn put_tags(tx: &rusqlite::Transaction<'_>, obj_id: i64, tags: &[[u8; 16]]) -> Result<()> {
    tx.execute("DELETE FROM tags WHERE obj_id = ?1", [obj_id])?;
    let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO tags(tag, obj_id) VALUES (?1, ?2)")?;
    for t in tags {
        stmt.execute(params![&t[..], obj_id])?;
    }
    Ok(())
}

impl Backend for SqliteBackend {
    fn tokens(&self) -> Result<Vec<RawToken>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT token_id, slot_id, version, blob FROM tokens ORDER BY slot_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(RawToken {
                    token_id: r.get(0)?,
                    slot_id: r.get(1)?,
                    version: r.get(2)?,
                    blob: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn token(&self, token_id: i64) -> Result<Option<RawToken>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT token_id, slot_id, version, blob FROM tokens WHERE token_id=?1",
            )?;
            Ok(stmt
                .query_row([token_id], |r| {
                    Ok(RawToken {
                        token_id: r.get(0)?,
                        slot_id: r.get(1)?,
                        version: r.get(2)?,
                        blob: r.get(3)?,
                    })
                })
                .optional()?)
        })
    }

    fn create_token(&self, slot_id: i64, seal: SealFn<'_>) -> Result<Option<i64>> {
        self.write(|tx| {
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT token_id FROM tokens WHERE slot_id=?1",
                    [slot_id],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO tokens(slot_id, version, blob) VALUES (?1, 1, x'')",
                [slot_id],
            )?;
            let id = tx.last_insert_rowid();
            let blob = seal(id, 1)?;
            tx.execute(
                "UPDATE tokens SET blob=?1 WHERE token_id=?2",
                params![blob, id],
            )?;
            next_seq(tx)?;
            Ok(Some(id))
        })
    }

    fn update_token(
        &self,
        token_id: i64,
        expected_version: i64,
        wipe_objects: bool,
        seal: SealFn<'_>,
    ) -> Result<bool> {
        self.write(|tx| {
            let blob = seal(token_id, expected_version + 1)?;
            let n = tx.execute(
                "UPDATE tokens SET blob=?1, version=version+1 WHERE token_id=?2 AND version=?3",
                params![blob, token_id, expected_version],
            )?;
            if n == 0 {
                return Ok(false);
            }
            if wipe_objects {
                let seq = next_seq(tx)?;
                tx.execute(
                    "INSERT OR REPLACE INTO tombstones(obj_id, token_id, seq)
                     SELECT obj_id, token_id, ?2 FROM objects WHERE token_id=?1",
                    params![token_id, seq],
                )?;
                tx.execute(
                    "DELETE FROM tags WHERE obj_id IN (SELECT obj_id FROM objects WHERE token_id=?1)",
                    [token_id],
                )?;
                tx.execute("DELETE FROM objects WHERE token_id=?1", [token_id])?;
                tx.execute("DELETE FROM accumulators WHERE token_id=?1", [token_id])?;
            }
            Ok(true)
        })
    }

    fn insert_object(
        &self,
        token_id: i64,
        key_class: u8,
        tags: &[[u8; 16]],
        seal: SealFn<'_>,
        acc: AccFn<'_>,
    ) -> Result<i64> {
        self.write(|tx| {
            let seq = next_seq(tx)?;
            tx.execute(
                "INSERT INTO objects(token_id, version, seq, key_class, blob) VALUES (?1, 1, ?2, ?3, x'')",
                params![token_id, seq, key_class],
            )?;
            let id = tx.last_insert_rowid();
            let blob = seal(id, 1)?;
            tx.execute("UPDATE objects SET blob=?1 WHERE obj_id=?2", params![blob, id])?;
            put_tags(tx, id, tags)?;
            accumulate(tx, token_id, &acc(id, 1))?;
            Ok(id)
        })
    }

    fn update_object(
        &self,
        token_id: i64,
        obj_id: i64,
        expected_version: i64,
        key_class: u8,
        tags: &[[u8; 16]],
        seal: SealFn<'_>,
        acc: AccFn<'_>,
    ) -> Result<bool> {
        self.write(|tx| {
            let seq = next_seq(tx)?;
            let blob = seal(obj_id, expected_version + 1)?;
            let n = tx.execute(
                "UPDATE objects SET blob=?1, version=version+1, seq=?2, key_class=?3
                 WHERE obj_id=?4 AND token_id=?5 AND version=?6",
                params![blob, seq, key_class, obj_id, token_id, expected_version],
            )?;
            if n == 0 {
                return Ok(false);
            }
            put_tags(tx, obj_id, tags)?;
            accumulate(
                tx,
                token_id,
                &xor(
                    acc(obj_id, expected_version),
                    acc(obj_id, expected_version + 1),
                ),
            )?;
            Ok(true)
        })
    }

    fn delete_object(&self, token_id: i64, obj_id: i64, acc: AccFn<'_>) -> Result<bool> {
        self.write(|tx| {
            let version: Option<i64> = tx
                .query_row(
                    "SELECT version FROM objects WHERE obj_id=?1 AND token_id=?2",
                    params![obj_id, token_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(version) = version else {
                return Ok(false);
            };
            accumulate(tx, token_id, &acc(obj_id, version))?;
            let n = tx.execute(
                "DELETE FROM objects WHERE obj_id=?1 AND token_id=?2",
                params![obj_id, token_id],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM tags WHERE obj_id=?1", [obj_id])?;
            let seq = next_seq(tx)?;
            tx.execute(
                "INSERT OR REPLACE INTO tombstones(obj_id, token_id, seq) VALUES (?1, ?2, ?3)",
                params![obj_id, token_id, seq],
            )?;
            Ok(true)
        })
    }

    fn object(&self, token_id: i64, obj_id: i64) -> Result<Option<RawObject>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT obj_id, version, key_class, blob FROM objects WHERE obj_id=?1 AND token_id=?2",
            )?;
            Ok(stmt
                .query_row(params![obj_id, token_id], |r| {
                    Ok(RawObject { obj_id: r.get(0)?, version: r.get(1)?, key_class: r.get(2)?, blob: r.get(3)? })
                })
                .optional()?)
        })
    }

    fn objects_by_tag(&self, token_id: i64, tag: &[u8; 16]) -> Result<Vec<i64>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT t.obj_id FROM tags t JOIN objects o ON o.obj_id = t.obj_id
                 WHERE t.tag=?1 AND o.token_id=?2 ORDER BY t.obj_id",
            )?;
            let rows = stmt.query_map(params![&tag[..], token_id], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<i64>, _>>()?)
        })
    }

    fn object_ids(&self, token_id: i64, include_private: bool) -> Result<Vec<(i64, i64)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT obj_id, version FROM objects WHERE token_id=?1 AND (key_class=0 OR ?2)
                 ORDER BY obj_id",
            )?;
            let rows = stmt.query_map(params![token_id, include_private], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn changes_since(&self, token_id: i64, seq: i64) -> Result<(Vec<i64>, i64)> {
        self.with(|c| {
            let tx = c.transaction()?;
            let newest: i64 = tx.query_row("SELECT v FROM meta WHERE k='seq'", [], |r| r.get(0))?;
            let mut ids = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT obj_id FROM objects WHERE token_id=?1 AND seq>?2
                     UNION SELECT obj_id FROM tombstones WHERE token_id=?1 AND seq>?2",
                )?;
                for id in stmt.query_map(params![token_id, seq], |r| r.get(0))? {
                    ids.push(id?);
                }
            }
            tx.commit()?;
            Ok((ids, newest))
        })
    }

    fn verify_accumulator(&self, token_id: i64, acc: AccFn<'_>) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let stored: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT acc FROM accumulators WHERE token_id=?1",
                    [token_id],
                    |r| r.get(0),
                )
                .optional()?;
            let mut computed = [0u8; 32];
            {
                let mut stmt =
                    tx.prepare_cached("SELECT obj_id, version FROM objects WHERE token_id=?1")?;
                for row in stmt.query_map([token_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })? {
                    let (id, v) = row?;
                    computed = xor(computed, acc(id, v));
                }
            }
            tx.commit()?;
            let stored = stored.unwrap_or_else(|| vec![0u8; 32]);
            Ok(stored.as_slice() == computed.as_slice())
        })
    }

    fn append_audit(&self, entries: &[Vec<u8>], chain: AuditChainFn<'_>) -> Result<()> {
        self.write(|tx| {
            let last: Option<(i64, Vec<u8>)> = tx
                .query_row(
                    "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (mut seq, mut mac) = match last {
                Some(l) => l,
                None => tx
                    .query_row("SELECT seq, mac FROM audit_anchor WHERE id=1", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?
                    .unwrap_or((0, vec![0u8; 32])),
            };
            let mut stmt =
                tx.prepare_cached("INSERT INTO audit(seq, entry, mac) VALUES (?1, ?2, ?3)")?;
            for e in entries {
                seq += 1;
                mac = chain(&mac, seq, e);
                stmt.execute(params![seq, e, &mac])?;
            }
            Ok(())
        })
    }

    fn audit_entries(&self) -> Result<((i64, Vec<u8>), Vec<(i64, Vec<u8>, Vec<u8>)>)> {
        self.with(|c| {
            let tx = c.transaction()?;
            let anchor = tx
                .query_row("SELECT seq, mac FROM audit_anchor WHERE id=1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?
                .unwrap_or((0, vec![0u8; 32]));
            let mut out = Vec::new();
            {
                let mut stmt = tx.prepare("SELECT seq, entry, mac FROM audit ORDER BY seq")?;
                for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
                    out.push(row?);
                }
            }
            tx.commit()?;
            Ok((anchor, out))
        })
    }

    fn rotate_audit(&self, through_seq: i64) -> Result<()> {
        self.write(|tx| {
            let last: Option<(i64, Vec<u8>)> = tx
                .query_row(
                    "SELECT seq, mac FROM audit WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1",
                    [through_seq],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((seq, mac)) = last {
                tx.execute(
                    "INSERT INTO audit_anchor(id, seq, mac) VALUES (1, ?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET seq=excluded.seq, mac=excluded.mac",
                    params![seq, mac],
                )?;
                tx.execute("DELETE FROM audit WHERE seq <= ?1", [seq])?;
            }
            Ok(())
        })
    }

    fn current_seq(&self) -> Result<i64> {
        self.with(|c| Ok(c.query_row("SELECT v FROM meta WHERE k='seq'", [], |r| r.get(0))?))
    }
}
