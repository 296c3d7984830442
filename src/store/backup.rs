//! Backup and restore of a whole store: one file holding a consistent
//! snapshot of the database and the installation key, sealed with
//! AES-256-GCM under a key stretched from a passphrase with Argon2id.
//!
//! File layout (docs/store-format.md):
//! `"SRBACKUP1\0" | m_kib u32le | t u32le | p u32le | salt[16] | sealed`,
//! where `sealed` is [`seal::seal`] of
//! `key_len u32le | installation key | db_len u64le | SQLite database`
//! with the header as associated data.

use super::seal::{self, KdfParams};
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

const MAGIC: &[u8; 10] = b"SRBACKUP1\0";
const HEADER_LEN: usize = 10 + 12 + 16;

fn header(kdf: KdfParams, salt: &[u8; 16]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&kdf.memory_kib.to_le_bytes());
    h.extend_from_slice(&kdf.iterations.to_le_bytes());
    h.extend_from_slice(&kdf.parallelism.to_le_bytes());
    h.extend_from_slice(salt);
    h
}

/// Makes the backup bytes of the store in `dir` (the database is copied
/// with `VACUUM INTO`, a consistent snapshot even while others write).
pub fn create(dir: &Path, passphrase: &[u8], kdf: KdfParams) -> Result<Vec<u8>> {
    if passphrase.len() < 8 {
        return Err(Error::ArgumentsBad(
            "the backup passphrase needs at least 8 characters",
        ));
    }
    let key = Zeroizing::new(fs::read(dir.join("installation.key"))?);
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| Error::general(format!("getrandom: {e}")))?;
    let snap = dir.join(format!("backup-{:016x}.tmp", u64::from_le_bytes(nonce)));
    let conn = rusqlite::Connection::open(dir.join("strongroom.db"))?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    let snap_str = snap
        .to_str()
        .ok_or_else(|| Error::general("store path is not UTF-8"))?;
    let r = conn.execute("VACUUM INTO ?1", [snap_str]);
    let db = r
        .map_err(Error::from)
        .and_then(|_| Ok(Zeroizing::new(fs::read(&snap)?)));
    let _ = fs::remove_file(&snap);
    let db = db?;
    let mut payload = Zeroizing::new(Vec::with_capacity(12 + key.len() + db.len()));
    payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
    payload.extend_from_slice(&key);
    payload.extend_from_slice(&(db.len() as u64).to_le_bytes());
    payload.extend_from_slice(&db);
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::general(format!("getrandom: {e}")))?;
    let head = header(kdf, &salt);
    let k = seal::stretch_pin(passphrase, &salt, kdf)?;
    let sealed = seal::seal(&k, &head, &payload)?;
    Ok([head, sealed].concat())
}

/// What a backup holds, after its authentication succeeded.
pub struct Opened {
    pub installation_key: Zeroizing<Vec<u8>>,
    pub database: Zeroizing<Vec<u8>>,
}

/// Checks and opens backup bytes: a wrong passphrase, a changed byte or a
/// truncated file are all refused before anything is written.
pub fn open(bytes: &[u8], passphrase: &[u8]) -> Result<Opened> {
    if bytes.len() < HEADER_LEN || &bytes[..10] != MAGIC {
        return Err(Error::Tampered(
            "not a Strongroom backup (bad header)".into(),
        ));
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let kdf = KdfParams {
        memory_kib: u32_at(10),
        iterations: u32_at(14),
        parallelism: u32_at(18),
    };
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&bytes[22..38]);
    let k = seal::stretch_pin(passphrase, &salt, kdf)?;
    let payload = seal::open(&k, &bytes[..HEADER_LEN], &bytes[HEADER_LEN..]).map_err(|_| {
        Error::Tampered(
            "backup does not authenticate: wrong passphrase, or the file was changed or truncated"
                .into(),
        )
    })?;
    let bad = || Error::Tampered("backup payload is malformed".into());
    if payload.len() < 4 {
        return Err(bad());
    }
    let key_len = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
    let key_end = 4usize.checked_add(key_len).ok_or_else(bad)?;
    let db_len_end = key_end.checked_add(8).ok_or_else(bad)?;
    if payload.len() < db_len_end {
        return Err(bad());
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&payload[key_end..db_len_end]);
    let db_len = usize::try_from(u64::from_le_bytes(l)).map_err(|_| bad())?;
    if payload.len() != db_len_end.checked_add(db_len).ok_or_else(bad)? {
        return Err(bad());
    }
    Ok(Opened {
        installation_key: Zeroizing::new(payload[4..key_end].to_vec()),
        database: Zeroizing::new(payload[db_len_end..].to_vec()),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("restore-tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Restores opened backup contents into `dir`, which must hold no store yet
/// (missing, empty, or without a database and key).
pub fn restore(dir: &Path, opened: &Opened) -> Result<()> {
    if dir.join("strongroom.db").exists() || dir.join("installation.key").exists() {
        return Err(Error::ArgumentsBad(
            "the target store is not empty: restore only into a new store directory",
        ));
    }
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // The database first: a store without its key is unusable, so a crash
    // in between leaves nothing that looks like a working store.
    write_private(&dir.join("strongroom.db"), &opened.database)?;
    write_private(&dir.join("installation.key"), &opened.installation_key)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
