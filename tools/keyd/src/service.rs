//! The key service proper: key ids with versioned data keys (DEKs) wrapped
//! under a master key in the token, clients and their policies, audit.
//! Shared by the HTTP server and the admin commands.

use crate::store::{self, Client, Dek};
use crate::token::{Token, TokenError};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Length of every DEK (AES-256).
pub const DEK_LEN: usize = 32;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    /// No, unknown or revoked client token.
    BadToken,
    /// The policy does not allow it, or the key is disabled.
    Forbidden(String),
    NotFound,
    Conflict(String),
    /// The token is unreachable or not logged in.
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::BadToken | ApiError::Forbidden(_) => 403,
            ApiError::NotFound => 404,
            ApiError::Conflict(_) => 409,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }
    /// Short result word for the audit log.
    pub fn audit_word(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::BadToken => "bad_token",
            ApiError::Forbidden(_) => "denied",
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "error",
        }
    }
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m) => m.clone(),
            ApiError::BadToken => "permission denied".into(),
            ApiError::Forbidden(m) => m.clone(),
            ApiError::NotFound => String::new(),
            ApiError::Conflict(m) => m.clone(),
            ApiError::Unavailable(m) => format!("key store unavailable: {m}"),
            ApiError::Internal(m) => m.clone(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Unavailable(m) => ApiError::Unavailable(m),
            TokenError::Failed(m) => ApiError::Internal(m),
        }
    }
}
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(format!("{e:#}"))
    }
}
impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Key ids: what MariaDB sends (decimal numbers) and names; no path syntax.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && id != "."
        && id != ".."
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    #[serde(rename = "KeyId")]
    pub key_id: String,
    #[serde(rename = "LatestVersion")]
    pub latest: u32,
    #[serde(rename = "Versions")]
    pub versions: Vec<u32>,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "MasterLabel")]
    pub master_label: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: i64,
}

type CacheEntry = (Instant, Zeroizing<Vec<u8>>);

pub struct Service {
    token: Mutex<Token>,
    db: Mutex<Connection>,
    pub mount: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<(String, u32), CacheEntry>>,
}

const BLOB_MAGIC: &[u8; 4] = b"SRK1";

/// An envelope ciphertext blob: `SRK1 | len(key id) | key id | version (u32
/// BE) | KWP(DEK(key id, version), data key)`.
pub fn encode_blob(key_id: &str, version: u32, wrapped: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + key_id.len() + wrapped.len());
    b.extend_from_slice(BLOB_MAGIC);
    b.push(key_id.len() as u8);
    b.extend_from_slice(key_id.as_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(wrapped);
    b
}

pub fn decode_blob(b: &[u8]) -> Option<(String, u32, &[u8])> {
    let rest = b.strip_prefix(BLOB_MAGIC.as_slice())?;
    let (&n, rest) = rest.split_first()?;
    let n = n as usize;
    if rest.len() < n + 4 + 16 {
        return None;
    }
    let id = std::str::from_utf8(&rest[..n]).ok()?.to_string();
    if !valid_key_id(&id) {
        return None;
    }
    let version = u32::from_be_bytes(rest[n..n + 4].try_into().ok()?);
    Some((id, version, &rest[n + 4..]))
}

impl Service {
    pub fn new(token: Token, db: Connection, mount: &str, cache_seconds: u64) -> Service {
        Service {
            token: Mutex::new(token),
            db: Mutex::new(db),
            mount: mount.to_string(),
            cache_ttl: Duration::from_secs(cache_seconds),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn token(&self) -> MutexGuard<'_, Token> {
        self.token.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn clear_cache(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Checks that the token is reachable and logged in.
    pub fn health(&self) -> ApiResult<()> {
        Ok(self.token().check()?)
    }

    pub fn authenticate(&self, token: Option<&str>) -> ApiResult<Client> {
        let t = token.ok_or(ApiError::BadToken)?;
        if t.is_empty() || t.len() > 256 {
            return Err(ApiError::BadToken);
        }
        store::client_by_token(&self.db(), t)?.ok_or(ApiError::BadToken)
    }

    pub fn audit(
        &self,
        client: &str,
        key_id: Option<&str>,
        version: Option<u32>,
        action: &str,
        result: &str,
        remote: Option<&str>,
    ) {
        let rec = store::AuditRecord {
            client,
            key_id,
            version,
            action,
            result,
            remote,
        };
        if let Err(e) = store::audit(&self.db(), &rec) {
            eprintln!("strongroom-keyd: cannot write the audit log: {e:#}");
        }
    }

    pub fn audit_tail(&self, n: u32) -> ApiResult<Vec<String>> {
        Ok(store::audit_tail(&self.db(), n)?)
    }

    /// The label of the current master key, creating the first one in the
    /// token when there is none yet. Caller holds the db lock (inside a
    /// transaction) and the token lock.
    fn ensure_master(db: &Connection, tok: &mut Token) -> ApiResult<String> {
        if let Some((_, label)) = store::current_master(db)? {
            return Ok(label);
        }
        Self::new_master(db, tok)
    }

    /// Generates master `keyd-master-<n>` in the token, with n above any
    /// master the database or the token already has, and makes it current.
    fn new_master(db: &Connection, tok: &mut Token) -> ApiResult<String> {
        let mut seq = store::max_master_seq(db)? + 1;
        let label = loop {
            let label = format!("keyd-master-{seq}");
            if !tok.has_label(&label)? {
                break label;
            }
            seq += 1;
        };
        tok.create_master(&label)?;
        store::set_current_master(db, seq, &label)?;
        Ok(label)
    }

    /// Makes version `version` of `key_id` from fresh token randomness,
    /// wrapped under the current master. Caller is inside a transaction.
    fn add_version(
        db: &Connection,
        tok: &mut Token,
        key_id: &str,
        version: u32,
        enabled: bool,
    ) -> ApiResult<()> {
        let master = Self::ensure_master(db, tok)?;
        let dek = tok.random(DEK_LEN)?;
        let wrapped = tok.wrap_bytes(&master, &dek)?;
        store::insert_dek(
            db,
            &Dek {
                key_id: key_id.to_string(),
                version,
                wrapped,
                master_label: master,
                created_at: store::now(),
                enabled,
            },
        )?;
        Ok(())
    }

    /// CreateKey: a new key id with version 1.
    pub fn create_key(&self, key_id: &str) -> ApiResult<u32> {
        if !valid_key_id(key_id) {
            return Err(ApiError::BadRequest(format!("invalid key id {key_id:?}")));
        }
        let mut tok = self.token();
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if store::get_dek(&tx, key_id, None)?.is_some() {
            return Err(ApiError::Conflict(format!("key {key_id} exists")));
        }
        Self::add_version(&tx, &mut tok, key_id, 1, true)?;
        tx.commit()?;
        Ok(1)
    }

    /// RotateKey: a new DEK version for `key_id`; older versions stay readable.
    pub fn rotate_key(&self, key_id: &str) -> ApiResult<u32> {
        let mut tok = self.token();
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let latest = store::get_dek(&tx, key_id, None)?.ok_or(ApiError::NotFound)?;
        let v = latest.version + 1;
        Self::add_version(&tx, &mut tok, key_id, v, latest.enabled)?;
        tx.commit()?;
        Ok(v)
    }

    /// RotateMaster: a new master key in the token; every DEK re-wrapped
    /// under it inside the token. Old master keys stay in the token (blobs
    /// made before may still name them) and are no longer used.
    pub fn rotate_master(&self) -> ApiResult<(String, usize)> {
        let mut tok = self.token();
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let deks = store::all_deks(&tx)?;
        let label = Self::new_master(&tx, &mut tok)?;
        for d in &deks {
            let w = tok.rewrap(&d.master_label, &label, &d.wrapped)?;
            tx.execute(
                "UPDATE deks SET wrapped_dek = ?3, master_label = ?4 WHERE key_id = ?1 AND version = ?2",
                rusqlite::params![d.key_id, d.version, w, label],
            )?;
        }
        tx.commit()?;
        drop(db);
        drop(tok);
        self.clear_cache();
        Ok((label, deks.len()))
    }

    pub fn set_enabled(&self, key_id: &str, enabled: bool) -> ApiResult<()> {
        if store::set_enabled(&self.db(), key_id, enabled)? == 0 {
            return Err(ApiError::NotFound);
        }
        self.clear_cache();
        Ok(())
    }

    pub fn list_keys(&self) -> ApiResult<Vec<KeyInfo>> {
        let deks = store::all_deks(&self.db())?;
        let mut out: Vec<KeyInfo> = Vec::new();
        for d in deks {
            match out.last_mut() {
                Some(k) if k.key_id == d.key_id => {
                    k.versions.push(d.version);
                    k.latest = d.version;
                    k.master_label = d.master_label;
                    k.enabled = d.enabled;
                }
                _ => out.push(KeyInfo {
                    key_id: d.key_id,
                    latest: d.version,
                    versions: vec![d.version],
                    enabled: d.enabled,
                    master_label: d.master_label,
                    created_at: d.created_at,
                }),
            }
        }
        Ok(out)
    }

    /// The plaintext DEK of `key_id` (latest, or `version`). Unknown id or
    /// version: NotFound; disabled: Forbidden; token away: Unavailable (also
    /// when the value is cached: a cache never outlives the token's login).
    pub fn get_key(
        &self,
        key_id: &str,
        version: Option<u32>,
    ) -> ApiResult<(u32, Zeroizing<Vec<u8>>)> {
        if !valid_key_id(key_id) {
            return Err(ApiError::NotFound);
        }
        let dek = store::get_dek(&self.db(), key_id, version)?.ok_or(ApiError::NotFound)?;
        if !dek.enabled {
            return Err(ApiError::Forbidden(format!("key {key_id} is disabled")));
        }
        let mut tok = self.token();
        tok.check()?;
        let ck = (dek.key_id.clone(), dek.version);
        if !self.cache_ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((t, v)) = cache.get(&ck) {
                if t.elapsed() < self.cache_ttl {
                    return Ok((dek.version, v.clone()));
                }
            }
        }
        let plain = tok.unwrap_bytes(&dek.master_label, &dek.wrapped)?;
        if plain.len() != DEK_LEN {
            return Err(ApiError::Internal(format!(
                "key {key_id} v{} has length {}",
                dek.version,
                plain.len()
            )));
        }
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|_, (t, _)| t.elapsed() < self.cache_ttl);
            cache.insert(ck, (Instant::now(), plain.clone()));
        }
        Ok((dek.version, plain))
    }

    fn dek_for_envelope(&self, key_id: &str, version: Option<u32>) -> ApiResult<Dek> {
        let dek = store::get_dek(&self.db(), key_id, version)?.ok_or(ApiError::NotFound)?;
        if !dek.enabled {
            return Err(ApiError::Forbidden(format!("key {key_id} is disabled")));
        }
        Ok(dek)
    }

    /// GenerateDataKey: a fresh data key from the token RNG, returned in the
    /// clear and as a blob KWP-encrypted (in the token) under the latest DEK
    /// of `key_id`.
    pub fn generate_data_key(
        &self,
        key_id: &str,
        n: usize,
    ) -> ApiResult<(u32, Zeroizing<Vec<u8>>, Vec<u8>)> {
        if !(16..=64).contains(&n) {
            return Err(ApiError::BadRequest("NumberOfBytes must be 16..64".into()));
        }
        let dek = self.dek_for_envelope(key_id, None)?;
        let mut tok = self.token();
        let plain = tok.random(n)?;
        let wrapped = tok.with_dek(&dek.master_label, &dek.wrapped, &plain, false)?;
        Ok((
            dek.version,
            plain,
            encode_blob(key_id, dek.version, &wrapped),
        ))
    }

    /// Decrypt: the data key inside an envelope blob. Returns (key id, version, plaintext).
    pub fn decrypt(
        &self,
        blob: &[u8],
        client: &Client,
    ) -> ApiResult<(String, u32, Zeroizing<Vec<u8>>)> {
        let (id, version, wrapped) = decode_blob(blob)
            .ok_or_else(|| ApiError::BadRequest("not a ciphertext blob of this service".into()))?;
        if !client.may_read(&id) {
            return Err(ApiError::Forbidden(format!(
                "client {} may not use key {id}",
                client.name
            )));
        }
        let dek = self.dek_for_envelope(&id, Some(version))?;
        let plain = self
            .token()
            .with_dek(&dek.master_label, &dek.wrapped, wrapped, true)
            .map_err(|e| match e {
                TokenError::Failed(_) => ApiError::BadRequest(
                    "the ciphertext blob does not decrypt (corrupt or not ours)".into(),
                ),
                e => e.into(),
            })?;
        Ok((id, version, plain))
    }

    /// ReEncrypt: an envelope blob moved to the latest version of `dest`.
    pub fn re_encrypt(
        &self,
        blob: &[u8],
        dest: &str,
        client: &Client,
    ) -> ApiResult<(String, u32, Vec<u8>)> {
        if !client.may_read(dest) {
            return Err(ApiError::Forbidden(format!(
                "client {} may not use key {dest}",
                client.name
            )));
        }
        let (src, _, plain) = self.decrypt(blob, client)?;
        let dek = self.dek_for_envelope(dest, None)?;
        let wrapped = self
            .token()
            .with_dek(&dek.master_label, &dek.wrapped, &plain, false)?;
        Ok((src, dek.version, encode_blob(dest, dek.version, &wrapped)))
    }

    pub fn random(&self, n: usize) -> ApiResult<Zeroizing<Vec<u8>>> {
        if n == 0 || n > 1024 {
            return Err(ApiError::BadRequest("NumberOfBytes must be 1..1024".into()));
        }
        Ok(self.token().random(n)?)
    }

    /// Adds a client; returns its token (shown once, stored only as SHA-256).
    pub fn create_client(&self, name: &str, keys: &[String], admin: bool) -> ApiResult<String> {
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::BadRequest(format!(
                "invalid client name {name:?}"
            )));
        }
        for k in keys {
            if k != "*" && !valid_key_id(k) {
                return Err(ApiError::BadRequest(format!("invalid key id {k:?}")));
            }
        }
        let raw = self.token().random(32)?;
        let token = format!("srk.{}", hex::encode(&*raw));
        store::insert_client(&self.db(), name, &token, keys, admin)?;
        Ok(token)
    }

    pub fn revoke_client(&self, name: &str) -> ApiResult<()> {
        if store::revoke_client(&self.db(), name)? == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    /// Logs the token session out (tests use this to check the 503 path).
    pub fn logout_token(&self) {
        self.token().logout();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip_and_rejects() {
        let w = [7u8; 40];
        let b = encode_blob("12", 3, &w);
        let (id, v, rest) = decode_blob(&b).expect("decodes");
        assert_eq!((id.as_str(), v, rest), ("12", 3, &w[..]));
        assert!(decode_blob(&b[..b.len() - 30]).is_none(), "too short");
        assert!(
            decode_blob(b"XXXX\x0212\0\0\0\x03aaaaaaaaaaaaaaaa").is_none(),
            "bad magic"
        );
        let mut bad_id = encode_blob("12", 3, &w);
        bad_id[5] = b'/';
        assert!(decode_blob(&bad_id).is_none(), "path syntax in the key id");
    }

    #[test]
    fn key_ids() {
        for ok in ["1", "4294967295", "app-key_2.v"] {
            assert!(valid_key_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "x?version=1", &"k".repeat(65)] {
            assert!(!valid_key_id(bad), "{bad}");
        }
    }
}
