//! Administration on the store itself, for the `strongroom` CLI: what has
//! no PKCS#11 call (audit verification, export and rotation).

use crate::config::Config;
use crate::error::Result;
use crate::store::Store;

/// The outcome of verifying the audit chain.
pub enum AuditCheck {
    /// Every entry after the rotation anchor chains correctly.
    Intact { entries: usize },
    /// The entry with this sequence number (or the one before it) was changed,
    /// removed or reordered.
    Broken { at_seq: i64 },
}

/// Opens the store named by the configuration (STRONGROOM_STORE etc.).
pub fn open_store() -> Result<Store> {
    Store::open(Config::load()?.store)
}

/// Verifies the audit chain.
pub fn audit_verify(store: &Store) -> Result<AuditCheck> {
    Ok(match store.verify_audit()? {
        Ok(entries) => AuditCheck::Intact {
            entries: entries.len(),
        },
        Err(at_seq) => AuditCheck::Broken { at_seq },
    })
}

/// Writes the verified entries as JSON lines (each with its `seq`).
/// Refuses to export a broken chain.
pub fn audit_export(
    store: &Store,
    out: &mut dyn std::io::Write,
) -> Result<std::result::Result<usize, i64>> {
    let entries = match store.verify_audit()? {
        Ok(e) => e,
        Err(seq) => return Ok(Err(seq)),
    };
    for (seq, entry) in &entries {
        let mut v: serde_json::Value =
            serde_json::from_slice(entry).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("seq".into(), serde_json::Value::from(*seq));
        }
        writeln!(out, "{v}").map_err(crate::error::Error::from)?;
    }
    Ok(Ok(entries.len()))
}

/// Removes verified entries up to `through_seq` (after exporting them);
/// the chain stays verifiable from the anchor.
pub fn audit_rotate(store: &Store, through_seq: i64) -> Result<std::result::Result<(), i64>> {
    if let Err(seq) = store.verify_audit()? {
        return Ok(Err(seq));
    }
    store.rotate_audit(through_seq)?;
    Ok(Ok(()))
}

/// One user of a token, as `strongroom user list` shows it.
pub struct UserInfo {
    pub slot: i64,
    pub token_label: String,
    /// "so", "user" (the default user) or the crypto user's name.
    pub name: String,
    pub failures: u32,
    pub limit: u32,
}

/// Every PIN slot of every token (needs no PIN: names and counters only).
pub fn list_users(store: &Store) -> Result<Vec<UserInfo>> {
    let mut out = Vec::new();
    for row in store.tokens()? {
        let label = String::from_utf8_lossy(&row.record.label)
            .trim_end()
            .to_string();
        for p in &row.record.pins {
            let name = match (p.role, p.name.as_str()) {
                (crate::store::Role::SecurityOfficer, _) => "so".to_string(),
                (crate::store::Role::User, "") => "user".to_string(),
                (crate::store::Role::User, n) => n.to_string(),
            };
            out.push(UserInfo {
                slot: row.slot_id,
                token_label: label.clone(),
                name,
                failures: p.failures,
                limit: row.record.limit_for(p.role, &p.name),
            });
        }
    }
    Ok(out)
}

/// Deletes a crypto user after checking the SO PIN (counted like a login).
/// The user's objects stay; users they are shared with keep using them.
pub fn delete_user(
    store: std::sync::Arc<Store>,
    slot: i64,
    so_pin: &[u8],
    name: &str,
) -> Result<()> {
    let row = store
        .tokens()?
        .into_iter()
        .find(|t| t.slot_id == slot)
        .ok_or(crate::error::Error::SlotIdInvalid)?;
    let token = crate::token::Token::new(store, row)?;
    token.login(crate::store::Role::SecurityOfficer, "", so_pin)?;
    let r = token.delete_user(name);
    token.reset_login();
    r
}

/// Writes an encrypted, authenticated backup of the configured store to
/// `out` (mode 0600). Returns its size in bytes.
pub fn backup(out: &std::path::Path, passphrase: &[u8]) -> Result<usize> {
    let cfg = Config::load()?;
    let bytes = crate::store::backup::create(&cfg.store.dir, passphrase, cfg.store.kdf)?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(bytes.len())
}

/// Restores a backup into the configured store, which must be empty. The
/// whole file is authenticated before anything is written.
pub fn restore(file: &std::path::Path, passphrase: &[u8]) -> Result<()> {
    let cfg = Config::load()?;
    let bytes = std::fs::read(file)?;
    let opened = crate::store::backup::open(&bytes, passphrase)?;
    crate::store::backup::restore(&cfg.store.dir, &opened)?;
    // Open it once: schema, key and every token record must be readable.
    let store = Store::open(cfg.store)?;
    store.tokens()?;
    Ok(())
}
