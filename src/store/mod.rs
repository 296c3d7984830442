//! The sealed store, in three layers:
//! - this module: what the token calls (token records, PIN slots, objects);
//! - [`seal`]: AES-256-GCM sealing, Argon2id PIN stretching, index tags;
//! - [`backend`]: opaque records; [`sqlite`] is the embedded default.
//!
//! Key hierarchy (docs/key-hierarchy.md): an installation key in
//! `<store>/installation.key` seals token records and public objects; each
//! token has a random token key that seals private objects and is wrapped
//! once per user under that user's Argon2id-stretched PIN.

pub mod backend;
pub mod backup;
pub mod seal;
pub mod sqlite;

use crate::error::{Error, Result};
use crate::ffi::sys::SharedCounter;
use crate::object::attr;
use crate::object::Object;
use backend::{Backend, RawObject};
use seal::{KdfParams, SealKey};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Who a PIN slot belongs to.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Role {
    SecurityOfficer,
    User,
}

/// One user's wrapped copy of the token key (v3.0 §5.6 PINs), with its own
/// failure counter.
#[derive(Clone, Serialize, Deserialize)]
pub struct PinSlot {
    pub name: String,
    pub role: Role,
    pub salt: Vec<u8>,
    pub kdf: KdfParams,
    /// The token key sealed under the stretched PIN.
    pub wrapped_key: Vec<u8>,
    pub failures: u32,
}

impl std::fmt::Debug for PinSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PinSlot({} {:?}, {} failures)",
            self.name, self.role, self.failures
        )
    }
}

/// A stretched PIN with its salt and cost, ready to seal a PIN slot.
pub struct PinKek {
    salt: Vec<u8>,
    kdf: KdfParams,
    kek: SealKey,
}

/// The sealed token record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    /// 32-byte blank-padded label.
    pub label: Vec<u8>,
    /// 16-character serial number, unique per token.
    pub serial: String,
    pub pins: Vec<PinSlot>,
    /// Failed logins that lock the SO PIN and the default user's PIN.
    pub max_failures: u32,
    /// Failed logins that lock a named crypto user (CloudHSM locks after 5).
    #[serde(default = "default_crypto_user_max_failures")]
    pub crypto_user_max_failures: u32,
    /// Changes whenever the token key changes (C_InitToken); a process
    /// holding a key of an older epoch must log in again.
    #[serde(default)]
    pub epoch: u64,
}

fn default_crypto_user_max_failures() -> u32 {
    5
}

impl TokenRecord {
    /// The failed-login limit of one PIN slot.
    pub fn limit_for(&self, role: Role, name: &str) -> u32 {
        if role == Role::User && !name.is_empty() {
            self.crypto_user_max_failures
        } else {
            self.max_failures
        }
    }

    /// Named crypto users (the default user has the empty name).
    pub fn crypto_users(&self) -> impl Iterator<Item = &PinSlot> {
        self.pins
            .iter()
            .filter(|p| p.role == Role::User && !p.name.is_empty())
    }

    pub fn pin(&self, role: Role, name: &str) -> Option<&PinSlot> {
        self.pins.iter().find(|p| p.role == role && p.name == name)
    }
    pub fn pin_mut(&mut self, role: Role, name: &str) -> Option<&mut PinSlot> {
        self.pins
            .iter_mut()
            .find(|p| p.role == role && p.name == name)
    }
}

/// A token as read from the store.
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub token_id: i64,
    pub slot_id: i64,
    pub version: i64,
    pub record: TokenRecord,
}

/// Where the store lives and how PINs are stretched.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub kdf: KdfParams,
    pub max_failures: u32,
    /// Lockout limit of named crypto users.
    pub crypto_user_max_failures: u32,
}

/// An object read from the store.
#[derive(Clone, Debug)]
pub struct StoredObject {
    pub obj_id: i64,
    pub version: i64,
    pub object: Arc<Object>,
}

/// The keys that open one token's records.
#[derive(Clone)]
pub struct TokenKeys {
    pub installation: SealKey,
    /// Present while a user of this process is logged in.
    pub token: Option<SealKey>,
}

/// Attributes whose keyed tags go into the find index.
pub const INDEXED: [cryptoki_sys::CK_ATTRIBUTE_TYPE; 2] =
    [cryptoki_sys::CKA_LABEL, cryptoki_sys::CKA_ID];

/// The token-facing store.
pub struct Store {
    backend: Box<dyn Backend>,
    installation_key: SealKey,
    accumulator_key: SealKey,
    audit_key: SealKey,
    changes: SharedCounter,
    pub config: StoreConfig,
}

fn token_aad(token_id: i64, version: i64) -> Vec<u8> {
    format!("strongroom/token/v1|{token_id}|{version}").into_bytes()
}

fn object_aad(token_id: i64, obj_id: i64, version: i64, key_class: u8) -> Vec<u8> {
    format!("strongroom/object/v1|{token_id}|{obj_id}|{version}|{key_class}").into_bytes()
}

fn pin_aad(token_id: i64, role: Role, name: &str) -> Vec<u8> {
    format!("strongroom/pin/v1|{token_id}|{role:?}|{name}").into_bytes()
}

/// Creates `dir` (and parents) with mode 0700 if missing.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if !dir.is_dir() {
        return Err(Error::device(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

/// Reads the installation key, creating it atomically on first use (the first
/// process to link its candidate in place wins; the others read it).
fn installation_key(dir: &Path) -> Result<SealKey> {
    let path = dir.join("installation.key");
    if !path.exists() {
        let key = SealKey::random()?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| Error::general(format!("getrandom: {e}")))?;
        let tmp = dir.join(format!(
            "installation.key.{}.{:016x}.tmp",
            std::process::id(),
            u64::from_le_bytes(nonce)
        ));
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(key.expose())?;
            f.sync_all()?;
        }
        // hard_link fails if the target exists: no process overwrites another's key.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        if let Err(e) = linked {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e.into());
            }
        }
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let bytes = Zeroizing::new(fs::read(&path)?);
    let mode = fs::metadata(&path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "installation key is readable by group or others");
    }
    SealKey::from_bytes(&bytes)
}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`.
    pub fn open(config: StoreConfig) -> Result<Store> {
        ensure_private_dir(&config.dir)?;
        let installation_key = installation_key(&config.dir)?;
        let backend = sqlite::SqliteBackend::open(&config.dir.join("strongroom.db"))?;
        let changes = SharedCounter::open(&config.dir.join("changes.shm"))?;
        let accumulator_key = installation_key.derive(b"rollback-accumulator");
        let audit_key = installation_key.derive(b"audit-chain");
        Ok(Store {
            backend: Box::new(backend),
            installation_key,
            accumulator_key,
            audit_key,
            changes,
            config,
        })
    }

    pub fn installation_key(&self) -> &SealKey {
        &self.installation_key
    }

    /// A number that changes whenever any process commits a change.
    pub fn change_counter(&self) -> u64 {
        self.changes.load()
    }

    fn changed(&self) {
        self.changes.bump();
    }

    // ----- tokens -----

    fn open_token(&self, raw: backend::RawToken) -> Result<TokenRow> {
        let plain = seal::open(
            &self.installation_key,
            &token_aad(raw.token_id, raw.version),
            &raw.blob,
        )?;
        let record: TokenRecord = serde_json::from_slice(&plain)
            .map_err(|e| Error::Tampered(format!("token record: {e}")))?;
        Ok(TokenRow {
            token_id: raw.token_id,
            slot_id: raw.slot_id,
            version: raw.version,
            record,
        })
    }

    fn seal_token(&self, record: &TokenRecord, token_id: i64, version: i64) -> Result<Vec<u8>> {
        let plain = Zeroizing::new(serde_json::to_vec(record).map_err(Error::general)?);
        seal::seal(
            &self.installation_key,
            &token_aad(token_id, version),
            &plain,
        )
    }

    /// Every initialised token. A token whose record fails authentication is
    /// logged and left out, so the others keep working.
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut out = Vec::new();
        for raw in self.backend.tokens()? {
            let (id, slot) = (raw.token_id, raw.slot_id);
            match self.open_token(raw) {
                Ok(t) => out.push(t),
                Err(e) => tracing::error!(
                    token_id = id,
                    slot_id = slot,
                    "token record unreadable: {e}"
                ),
            }
        }
        Ok(out)
    }

    pub fn token(&self, token_id: i64) -> Result<TokenRow> {
        let raw = self
            .backend
            .token(token_id)?
            .ok_or(Error::TokenNotPresent)?;
        self.open_token(raw)
    }

    /// Creates a token in `slot_id`; `record_for` builds the record once the
    /// token id is known (PIN slots bind it). `None` if the slot was taken.
    pub fn create_token(
        &self,
        slot_id: i64,
        record_for: &dyn Fn(i64) -> Result<TokenRecord>,
    ) -> Result<Option<i64>> {
        let seal = |id: i64, version: i64| self.seal_token(&record_for(id)?, id, version);
        let out = self.backend.create_token(slot_id, &seal)?;
        self.changed();
        Ok(out)
    }

    /// Read-modify-write of a token record with optimistic concurrency: `f`
    /// is re-run on the fresh record if another process wrote in between.
    /// With `wipe_objects` every object of the token is deleted atomically.
    pub fn update_token<T>(
        &self,
        token_id: i64,
        wipe_objects: bool,
        mut f: impl FnMut(&mut TokenRecord) -> Result<T>,
    ) -> Result<(T, TokenRow)> {
        for _ in 0..1000 {
            let mut row = self.token(token_id)?;
            let out = f(&mut row.record)?;
            let seal = |id: i64, version: i64| self.seal_token(&row.record, id, version);
            if self
                .backend
                .update_token(token_id, row.version, wipe_objects, &seal)?
            {
                self.changed();
                row.version += 1;
                return Ok((out, row));
            }
        }
        Err(Error::device("token record kept changing under us"))
    }

    // ----- PINs -----

    /// Stretches a new PIN (the slow part, done before any transaction).
    pub fn stretch_new_pin(&self, pin: &[u8]) -> Result<PinKek> {
        let mut salt = vec![0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::general(format!("getrandom: {e}")))?;
        let kdf = self.config.kdf;
        let kek = seal::stretch_pin(pin, &salt, kdf)?;
        Ok(PinKek { salt, kdf, kek })
    }

    /// Makes a PIN slot holding `token_key` under an already stretched PIN.
    pub fn seal_pin_slot(
        &self,
        token_id: i64,
        role: Role,
        name: &str,
        kek: &PinKek,
        token_key: &SealKey,
    ) -> Result<PinSlot> {
        let wrapped_key = seal::seal(&kek.kek, &pin_aad(token_id, role, name), token_key.expose())?;
        Ok(PinSlot {
            name: name.to_string(),
            role,
            salt: kek.salt.clone(),
            kdf: kek.kdf,
            wrapped_key,
            failures: 0,
        })
    }

    /// Makes a PIN slot holding `token_key` under `pin`.
    pub fn make_pin_slot(
        &self,
        token_id: i64,
        role: Role,
        name: &str,
        pin: &[u8],
        token_key: &SealKey,
    ) -> Result<PinSlot> {
        let kek = self.stretch_new_pin(pin)?;
        self.seal_pin_slot(token_id, role, name, &kek, token_key)
    }

    /// Opens a PIN slot: the token key if the PIN is right (the AES-GCM tag
    /// check is the constant-time PIN comparison), `PinIncorrect` otherwise.
    pub fn open_pin_slot(&self, token_id: i64, slot: &PinSlot, pin: &[u8]) -> Result<SealKey> {
        let kek = seal::stretch_pin(pin, &slot.salt, slot.kdf)?;
        match seal::open(
            &kek,
            &pin_aad(token_id, slot.role, &slot.name),
            &slot.wrapped_key,
        ) {
            Ok(k) => SealKey::from_bytes(&k),
            Err(_) => Err(Error::PinIncorrect),
        }
    }

    // ----- objects -----

    fn key_for(keys: &TokenKeys, key_class: u8) -> Result<&SealKey> {
        match key_class {
            0 => Ok(&keys.installation),
            _ => keys.token.as_ref().ok_or(Error::UserNotLoggedIn),
        }
    }

    fn index_tags(token_id: i64, key: &SealKey, obj: &Object) -> Vec<[u8; 16]> {
        let index_key = key.derive(b"index");
        INDEXED
            .iter()
            .filter_map(|ty| {
                obj.bytes(*ty).map(|v| {
                    index_key.tag(&[&token_id.to_le_bytes(), &(*ty as u64).to_le_bytes(), v])
                })
            })
            .collect()
    }

    /// The index tag for an attribute value under one key class.
    pub fn tag_for(
        keys: &TokenKeys,
        token_id: i64,
        key_class: u8,
        ty: u64,
        value: &[u8],
    ) -> Option<[u8; 16]> {
        let key = Self::key_for(keys, key_class).ok()?;
        Some(
            key.derive(b"index")
                .tag(&[&token_id.to_le_bytes(), &ty.to_le_bytes(), value]),
        )
    }

    /// The rollback accumulator's contribution of one object version:
    /// HMAC-SHA256 under a subkey of the installation key, so that public
    /// and private objects count alike and no login is needed to verify.
    fn acc_of(&self, token_id: i64, obj_id: i64, version: i64) -> [u8; 32] {
        let k = &self.accumulator_key;
        let t1 = k.tag(&[
            b"acc-1",
            &token_id.to_le_bytes(),
            &obj_id.to_le_bytes(),
            &version.to_le_bytes(),
        ]);
        let t2 = k.tag(&[
            b"acc-2",
            &token_id.to_le_bytes(),
            &obj_id.to_le_bytes(),
            &version.to_le_bytes(),
        ]);
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&t1);
        out[16..].copy_from_slice(&t2);
        out
    }

    /// The audit chain step: HMAC-SHA256 under the audit key over the
    /// previous MAC, the entry's sequence number and its bytes.
    fn audit_mac(&self, prev: &[u8], seq: i64, entry: &[u8]) -> Vec<u8> {
        let a = self
            .audit_key
            .tag(&[b"audit-1", prev, &seq.to_le_bytes(), entry]);
        let b = self
            .audit_key
            .tag(&[b"audit-2", prev, &seq.to_le_bytes(), entry]);
        [a, b].concat()
    }

    /// Appends audit entries (JSON lines) durably, chained by MACs.
    pub fn append_audit(&self, entries: &[Vec<u8>]) -> Result<()> {
        let chain = |prev: &[u8], seq: i64, e: &[u8]| self.audit_mac(prev, seq, e);
        self.backend.append_audit(entries, &chain)
    }

    /// Verifies the audit chain from the rotation anchor to the newest entry.
    /// Returns the entries, or the first sequence number that fails.
    #[allow(clippy::type_complexity)]
    pub fn verify_audit(&self) -> Result<std::result::Result<Vec<(i64, Vec<u8>)>, i64>> {
        let ((anchor_seq, anchor_mac), entries) = self.backend.audit_entries()?;
        let (mut prev_seq, mut prev) = (anchor_seq, anchor_mac);
        let mut out = Vec::with_capacity(entries.len());
        for (seq, entry, mac) in entries {
            let want = self.audit_mac(&prev, seq, &entry);
            if seq != prev_seq + 1 || !crate::crypto::ct_eq(&want, &mac) {
                return Ok(Err(seq));
            }
            prev_seq = seq;
            prev = mac;
            out.push((seq, entry));
        }
        Ok(Ok(out))
    }

    /// Drops verified entries up to `through_seq`, keeping the chain anchor.
    pub fn rotate_audit(&self, through_seq: i64) -> Result<()> {
        self.backend.rotate_audit(through_seq)
    }

    /// Checks that no object row of the token was rolled back, restored or
    /// removed behind the module's back (docs/threat-model.md).
    pub fn verify_rollback(&self, token_id: i64) -> Result<bool> {
        let acc = |id: i64, v: i64| self.acc_of(token_id, id, v);
        self.backend.verify_accumulator(token_id, &acc)
    }

    fn seal_object(
        keys: &TokenKeys,
        token_id: i64,
        key_class: u8,
        obj: &Object,
        obj_id: i64,
        version: i64,
    ) -> Result<Vec<u8>> {
        let key = Self::key_for(keys, key_class)?;
        let attrs = obj.attributes();
        let mut plain = Zeroizing::new(Vec::with_capacity(attr::serialized_len(&attrs)));
        attr::serialize(&attrs, &mut plain)?;
        seal::seal(
            key,
            &object_aad(token_id, obj_id, version, key_class),
            &plain,
        )
    }

    /// Stores a new token object; returns its id.
    pub fn insert_object(&self, keys: &TokenKeys, token_id: i64, obj: &Object) -> Result<i64> {
        let key_class = u8::from(obj.is_private());
        let key = Self::key_for(keys, key_class)?;
        let tags = Self::index_tags(token_id, key, obj);
        let seal =
            |id: i64, version: i64| Self::seal_object(keys, token_id, key_class, obj, id, version);
        let acc = |id: i64, v: i64| self.acc_of(token_id, id, v);
        let id = self
            .backend
            .insert_object(token_id, key_class, &tags, &seal, &acc)?;
        self.changed();
        Ok(id)
    }

    /// Replaces an object if it is still at `version`; `false` on conflict.
    pub fn update_object(
        &self,
        keys: &TokenKeys,
        token_id: i64,
        obj_id: i64,
        version: i64,
        obj: &Object,
    ) -> Result<bool> {
        let key_class = u8::from(obj.is_private());
        let key = Self::key_for(keys, key_class)?;
        let tags = Self::index_tags(token_id, key, obj);
        let seal = |id: i64, v: i64| Self::seal_object(keys, token_id, key_class, obj, id, v);
        let acc = |id: i64, v: i64| self.acc_of(token_id, id, v);
        let ok = self
            .backend
            .update_object(token_id, obj_id, version, key_class, &tags, &seal, &acc)?;
        self.changed();
        Ok(ok)
    }

    pub fn delete_object(&self, token_id: i64, obj_id: i64) -> Result<bool> {
        let acc = |id: i64, v: i64| self.acc_of(token_id, id, v);
        let ok = self.backend.delete_object(token_id, obj_id, &acc)?;
        self.changed();
        Ok(ok)
    }

    /// Reads and opens one object. `Ok(None)` if it does not exist or is
    /// private while no user is logged in; `Err(Tampered)` if it fails
    /// authentication.
    pub fn object(
        &self,
        keys: &TokenKeys,
        token_id: i64,
        obj_id: i64,
    ) -> Result<Option<StoredObject>> {
        match self.backend.object(token_id, obj_id)? {
            None => Ok(None),
            Some(raw) => self.open_object(keys, token_id, raw),
        }
    }

    fn open_object(
        &self,
        keys: &TokenKeys,
        token_id: i64,
        raw: RawObject,
    ) -> Result<Option<StoredObject>> {
        let key = match Self::key_for(keys, raw.key_class) {
            Ok(k) => k,
            Err(_) => return Ok(None),
        };
        let plain = seal::open(
            key,
            &object_aad(token_id, raw.obj_id, raw.version, raw.key_class),
            &raw.blob,
        )
        .map_err(|e| Error::Tampered(format!("object {}: {e}", raw.obj_id)))?;
        let object = Object::from_attributes(attr::deserialize(&plain)?);
        if u8::from(object.is_private()) != raw.key_class {
            return Err(Error::Tampered(format!(
                "object {}: key class mismatch",
                raw.obj_id
            )));
        }
        Ok(Some(StoredObject {
            obj_id: raw.obj_id,
            version: raw.version,
            object: Arc::new(object),
        }))
    }

    /// Candidate ids carrying an index tag.
    pub fn ids_by_tag(&self, token_id: i64, tag: &[u8; 16]) -> Result<Vec<i64>> {
        self.backend.objects_by_tag(token_id, tag)
    }

    /// Ids and versions of all objects this caller may see.
    pub fn object_ids(&self, token_id: i64, include_private: bool) -> Result<Vec<(i64, i64)>> {
        self.backend.object_ids(token_id, include_private)
    }

    /// Objects changed since `seq`, and the newest seq.
    pub fn changes_since(&self, token_id: i64, seq: i64) -> Result<(Vec<i64>, i64)> {
        self.backend.changes_since(token_id, seq)
    }

    pub fn current_seq(&self) -> Result<i64> {
        self.backend.current_seq()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::attr::{Attribute, Value};
    use cryptoki_sys::*;

    fn test_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            dir: dir.path().join("nested/store"),
            kdf: KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            max_failures: 10,
            crypto_user_max_failures: 5,
        };
        let s = Store::open(cfg).unwrap();
        (dir, s)
    }

    fn record() -> TokenRecord {
        TokenRecord {
            label: b"t".to_vec(),
            serial: "0001".into(),
            pins: vec![],
            max_failures: 10,
            crypto_user_max_failures: 5,
            epoch: 0,
        }
    }

    #[test]
    fn store_dir_is_created_private() {
        let (_d, s) = test_store();
        let mode = fs::metadata(&s.config.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = fs::metadata(s.config.dir.join("installation.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn token_record_round_trip_and_cas() {
        let (_d, s) = test_store();
        let id = s.create_token(1, &|_| Ok(record())).unwrap().unwrap();
        assert!(s.create_token(1, &|_| Ok(record())).unwrap().is_none());
        let (_, row) = s
            .update_token(id, false, |r| {
                r.serial = "0002".into();
                Ok(())
            })
            .unwrap();
        assert_eq!(row.record.serial, "0002");
        assert_eq!(s.tokens().unwrap()[0].record.serial, "0002");
    }

    #[test]
    fn pin_slot_opens_only_with_the_right_pin() {
        let (_d, s) = test_store();
        let k = SealKey::random().unwrap();
        let slot = s.make_pin_slot(7, Role::User, "", b"1234", &k).unwrap();
        assert_eq!(
            s.open_pin_slot(7, &slot, b"1234").unwrap().expose(),
            k.expose()
        );
        assert_eq!(
            s.open_pin_slot(7, &slot, b"1235").unwrap_err(),
            Error::PinIncorrect
        );
        // Bound to its token: a slot moved to another token does not open.
        assert_eq!(
            s.open_pin_slot(8, &slot, b"1234").unwrap_err(),
            Error::PinIncorrect
        );
    }

    #[test]
    fn objects_are_sealed_indexed_and_tamper_evident() {
        let (_d, s) = test_store();
        let tid = s.create_token(1, &|_| Ok(record())).unwrap().unwrap();
        let keys = TokenKeys {
            installation: s.installation_key().clone(),
            token: Some(SealKey::random().unwrap()),
        };
        let mut o = Object::default();
        o.set(Attribute::new(CKA_CLASS, Value::Ulong(u64::from(CKO_DATA))));
        o.set(Attribute::new(
            CKA_LABEL,
            Value::bytes(b"PLAINTEXT-MARKER".to_vec()),
        ));
        o.set(Attribute::new(CKA_PRIVATE, Value::Bool(true)));
        let id = s.insert_object(&keys, tid, &o).unwrap();
        let got = s.object(&keys, tid, id).unwrap().unwrap();
        assert_eq!(*got.object, o);
        // Without the token key a private object is invisible, not an error.
        let public_only = TokenKeys {
            installation: keys.installation.clone(),
            token: None,
        };
        assert!(s.object(&public_only, tid, id).unwrap().is_none());
        let tag = Store::tag_for(&keys, tid, 1, u64::from(CKA_LABEL), b"PLAINTEXT-MARKER").unwrap();
        assert_eq!(s.ids_by_tag(tid, &tag).unwrap(), vec![id]);
        // No plaintext anywhere in the directory.
        for entry in fs::read_dir(&s.config.dir).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
        }
        // Flip a byte of the sealed blob: that object fails, loudly.
        let conn = rusqlite::Connection::open(s.config.dir.join("strongroom.db")).unwrap();
        let mut blob: Vec<u8> = conn
            .query_row("SELECT blob FROM objects WHERE obj_id=?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        blob[20] ^= 0x01;
        conn.execute(
            "UPDATE objects SET blob=?1 WHERE obj_id=?2",
            rusqlite::params![blob, id],
        )
        .unwrap();
        assert!(matches!(s.object(&keys, tid, id), Err(Error::Tampered(_))));
        // Roll one row back to an older copy of itself: the accumulator sees it.
        let o2 = {
            let mut o2 = o.clone();
            o2.set(Attribute::new(CKA_LABEL, Value::bytes(b"v2".to_vec())));
            o2
        };
        let id2 = s.insert_object(&keys, tid, &o).unwrap();
        let old: (i64, Vec<u8>) = conn
            .query_row(
                "SELECT version, blob FROM objects WHERE obj_id=?1",
                [id2],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(s.verify_rollback(tid).unwrap());
        assert!(s.update_object(&keys, tid, id2, 1, &o2).unwrap());
        assert!(s.verify_rollback(tid).unwrap());
        conn.execute(
            "UPDATE objects SET version=?1, blob=?2 WHERE obj_id=?3",
            rusqlite::params![old.0, old.1, id2],
        )
        .unwrap();
        assert!(
            s.object(&keys, tid, id2).unwrap().is_some(),
            "the old copy itself still opens"
        );
        assert!(
            !s.verify_rollback(tid).unwrap(),
            "rollback of one row must be detected"
        );
        // Update with a stale version is refused (compare-and-swap).
        assert!(!s.update_object(&keys, tid, id, 99, &o).unwrap());
        assert!(s.delete_object(tid, id).unwrap());
        let (changed, _) = s.changes_since(tid, 0).unwrap();
        assert!(changed.contains(&id));
    }
}
