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
