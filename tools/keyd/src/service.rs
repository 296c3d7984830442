//! The key service proper: key ids with versioned data keys (DEKs) wrapped
//! under a master key in the token, clients and their policies, audit.
//! Shared by the HTTP server and the admin commands.

use crate::store::{self, Client, Dek, Grant};
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
    /// The path exists but not for this HTTP method.
    MethodNotAllowed(String),
    /// No, unknown or revoked client token.
    BadToken,
    /// The policy does not allow it, or the key is disabled.
    Forbidden(String),
    NotFound,
    Conflict(String),
    /// VerifyMac: the MAC does not verify (KMS: KMSInvalidMacException).
    InvalidMac,
    /// The token is unreachable or not logged in.
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidMac => 400,
            ApiError::MethodNotAllowed(_) => 405,
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
            ApiError::MethodNotAllowed(_) => "bad_method",
            ApiError::BadToken => "bad_token",
            ApiError::Forbidden(_) => "denied",
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::InvalidMac => "invalid_mac",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "error",
        }
    }
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m) | ApiError::MethodNotAllowed(m) => m.clone(),
            ApiError::BadToken => "permission denied".into(),
            ApiError::Forbidden(m) => m.clone(),
            ApiError::NotFound => String::new(),
            ApiError::Conflict(m) => m.clone(),
            ApiError::InvalidMac => "KMSInvalidMacException: the MAC does not verify".into(),
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

/// What a key id holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// Versioned 32-byte data keys wrapped under the master key (what
    /// MariaDB reads; envelope encryption).
    Aes256,
    /// Versioned HMAC-SHA256 keys kept in the token (GenerateMac/VerifyMac).
    Hmac256,
}

impl KeySpec {
    /// KMS names: `SYMMETRIC_DEFAULT` / `AES_256` and `HMAC_256`.
    pub fn parse(s: &str) -> ApiResult<KeySpec> {
        match s {
            "AES_256" | "SYMMETRIC_DEFAULT" => Ok(KeySpec::Aes256),
            "HMAC_256" => Ok(KeySpec::Hmac256),
            _ => Err(ApiError::BadRequest(format!(
                "KeySpec {s:?}: AES_256 (or SYMMETRIC_DEFAULT) or HMAC_256"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            KeySpec::Aes256 => "AES_256",
            KeySpec::Hmac256 => "HMAC_256",
        }
    }
}

/// Longest rotation period accepted (10 years).
pub const MAX_ROTATION_SECONDS: u64 = 10 * 366 * 86400;
/// Longest grant accepted (one year).
pub const MAX_GRANT_SECONDS: u64 = 366 * 86400;
/// Longest message GenerateMac/VerifyMac take.
pub const MAX_MAC_MESSAGE: usize = 16 * 1024;

/// Parses a duration: `90d`, `12h`, `30m`, `45s` or plain seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// How a request was allowed to use a key: by the client's standing policy
/// or by a grant (whose id goes to the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Policy,
    Grant(String),
}

impl Access {
    pub fn grant(&self) -> Option<&str> {
        match self {
            Access::Policy => None,
            Access::Grant(g) => Some(g),
        }
    }
}

/// A key id rotated by the scheduler.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub key_id: String,
    pub version: u32,
    pub period: u64,
    pub previous_created_at: i64,
}

/// The result of Decrypt.
pub struct Decrypted {
    pub key_id: String,
    pub version: u32,
    pub plaintext: Zeroizing<Vec<u8>>,
    pub access: Access,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    #[serde(rename = "KeyId")]
    pub key_id: String,
    #[serde(rename = "KeySpec")]
    pub spec: &'static str,
    #[serde(rename = "LatestVersion")]
    pub latest: u32,
    #[serde(rename = "Versions")]
    pub versions: Vec<u32>,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    /// The master key wrapping the data keys (empty for HMAC keys, which
    /// live in the token).
    #[serde(rename = "MasterLabel")]
    pub master_label: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: i64,
    /// Creation time of the latest version.
    #[serde(rename = "LatestCreatedAt")]
    pub latest_created_at: i64,
    #[serde(rename = "RotationPeriodSeconds")]
    pub rotation_seconds: Option<u64>,
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
        self.audit_detail(client, key_id, version, action, result, remote, None)
    }

    /// An audit record with a detail (grant id, scheduler reason); never a
    /// key value.
    #[allow(clippy::too_many_arguments)]
    pub fn audit_detail(
        &self,
        client: &str,
        key_id: Option<&str>,
        version: Option<u32>,
        action: &str,
        result: &str,
        remote: Option<&str>,
        detail: Option<&str>,
    ) {
        let rec = store::AuditRecord {
            client,
            key_id,
            version,
            action,
            result,
            remote,
            detail,
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

    /// Makes version `version` of HMAC key `key_id`: a new HMAC key object
    /// in the token. Caller is inside a transaction.
    fn add_mac_version(
        db: &Connection,
        tok: &mut Token,
        key_id: &str,
        version: u32,
        enabled: bool,
    ) -> ApiResult<()> {
        let base = format!("keyd-hmac-{key_id}-{version}");
        let mut label = base.clone();
        let mut n = 1;
        while tok.has_label(&label)? {
            n += 1;
            label = format!("{base}.{n}");
        }
        tok.create_hmac(&label)?;
        store::insert_mac(
            db,
            &store::MacKey {
                key_id: key_id.to_string(),
                version,
                label,
                created_at: store::now(),
                enabled,
            },
        )?;
        Ok(())
    }

    /// What `key_id` holds, if it exists: (spec, latest version, its
    /// creation time, enabled).
    fn latest(db: &Connection, key_id: &str) -> ApiResult<Option<(KeySpec, u32, i64, bool)>> {
        if let Some(d) = store::get_dek(db, key_id, None)? {
            return Ok(Some((KeySpec::Aes256, d.version, d.created_at, d.enabled)));
        }
        if let Some(m) = store::get_mac(db, key_id, None)? {
            return Ok(Some((KeySpec::Hmac256, m.version, m.created_at, m.enabled)));
        }
        Ok(None)
    }

    /// Whether key id `key_id` exists (either kind).
    pub fn key_exists(&self, key_id: &str) -> ApiResult<bool> {
        Ok(valid_key_id(key_id) && Self::latest(&self.db(), key_id)?.is_some())
    }

    /// CreateKey: a new key id with version 1.
    pub fn create_key(&self, key_id: &str) -> ApiResult<u32> {
        self.create_key_spec(key_id, KeySpec::Aes256)
    }

    /// CreateKey with a key spec: data keys (AES_256) or an HMAC key (HMAC_256).
    pub fn create_key_spec(&self, key_id: &str, spec: KeySpec) -> ApiResult<u32> {
        if !valid_key_id(key_id) {
            return Err(ApiError::BadRequest(format!("invalid key id {key_id:?}")));
        }
        let mut tok = self.token();
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if Self::latest(&tx, key_id)?.is_some() {
            return Err(ApiError::Conflict(format!("key {key_id} exists")));
        }
        match spec {
            KeySpec::Aes256 => Self::add_version(&tx, &mut tok, key_id, 1, true)?,
            KeySpec::Hmac256 => Self::add_mac_version(&tx, &mut tok, key_id, 1, true)?,
        }
        tx.commit()?;
        Ok(1)
    }

    /// A new version of `key_id` (caller holds both locks, inside a transaction).
    fn rotate_locked(db: &Connection, tok: &mut Token, key_id: &str) -> ApiResult<u32> {
        let (spec, latest, _, enabled) = Self::latest(db, key_id)?.ok_or(ApiError::NotFound)?;
        let v = latest + 1;
        match spec {
            KeySpec::Aes256 => Self::add_version(db, tok, key_id, v, enabled)?,
            KeySpec::Hmac256 => Self::add_mac_version(db, tok, key_id, v, enabled)?,
        }
        Ok(v)
    }

    /// RotateKey: a new version for `key_id` (a data key, or an HMAC key in
    /// the token); older versions stay usable.
    pub fn rotate_key(&self, key_id: &str) -> ApiResult<u32> {
        let mut tok = self.token();
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let v = Self::rotate_locked(&tx, &mut tok, key_id)?;
        tx.commit()?;
        Ok(v)
    }

    /// Sets (or with `None` clears) the rotation period of `key_id`.
    pub fn set_rotation(&self, key_id: &str, seconds: Option<u64>) -> ApiResult<()> {
        if let Some(s) = seconds {
            if s == 0 || s > MAX_ROTATION_SECONDS {
                return Err(ApiError::BadRequest(format!(
                    "rotation period must be 1..{MAX_ROTATION_SECONDS} seconds"
                )));
            }
        }
        let db = self.db();
        if !valid_key_id(key_id) || Self::latest(&db, key_id)?.is_none() {
            return Err(ApiError::NotFound);
        }
        store::set_rotation_period(&db, key_id, seconds)?;
        Ok(())
    }

    /// (rotation period, time the next scheduled rotation is due) of `key_id`.
    pub fn rotation_status(&self, key_id: &str) -> ApiResult<(Option<u64>, Option<i64>)> {
        let db = self.db();
        let (_, _, created, _) = Self::latest(&db, key_id)?.ok_or(ApiError::NotFound)?;
        let period = store::rotation_period(&db, key_id)?;
        Ok((period, period.map(|p| created.saturating_add(p as i64))))
    }

    /// Rotates every enabled key id whose latest version is at least its
    /// rotation period old at `now`. Each key is checked again inside its
    /// own transaction, so two service processes on one database rotate a
    /// key once. Returns what was rotated and, per key id, what failed.
    pub fn rotate_due(&self, now: i64) -> (Vec<Rotated>, Vec<(String, ApiError)>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let scheduled = match store::scheduled_rotations(&self.db()) {
            Ok(s) => s,
            Err(e) => return (done, vec![(String::new(), e.into())]),
        };
        for (id, period) in scheduled {
            let r = (|| -> ApiResult<Option<Rotated>> {
                let mut tok = self.token();
                let mut db = self.db();
                let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let Some((_, _, created, enabled)) = Self::latest(&tx, &id)? else {
                    return Ok(None);
                };
                if !enabled || created.saturating_add(period as i64) > now {
                    return Ok(None);
                }
                let v = Self::rotate_locked(&tx, &mut tok, &id)?;
                tx.commit()?;
                Ok(Some(Rotated {
                    key_id: id.clone(),
                    version: v,
                    period,
                    previous_created_at: created,
                }))
            })();
            match r {
                Ok(Some(r)) => done.push(r),
                Ok(None) => {}
                Err(e) => failed.push((id, e)),
            }
        }
        (done, failed)
    }

    /// One pass of the rotation scheduler: rotates what is due and audits
    /// every rotation (and every failure) as client `scheduler`.
    pub fn run_scheduled_rotations(&self) -> usize {
        let (done, failed) = self.rotate_due(store::now());
        for r in &done {
            let detail = format!(
                "period {}s, previous version created at {}",
                r.period, r.previous_created_at
            );
            self.audit_detail(
                "scheduler",
                Some(&r.key_id),
                Some(r.version),
                "ScheduledRotation",
                "ok",
                None,
                Some(&detail),
            );
            eprintln!(
                "strongroom-keyd: scheduled rotation: key {} version {}",
                r.key_id, r.version
            );
        }
        for (id, e) in &failed {
            let msg = e.message();
            self.audit_detail(
                "scheduler",
                (!id.is_empty()).then_some(id.as_str()),
                None,
                "ScheduledRotation",
                e.audit_word(),
                None,
                Some(&msg),
            );
            eprintln!("strongroom-keyd: scheduled rotation of key {id} failed: {msg}");
        }
        done.len()
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

    /// Enables or disables every version of `key_id` (either kind).
    pub fn set_enabled(&self, key_id: &str, enabled: bool) -> ApiResult<()> {
        if store::set_enabled(&self.db(), key_id, enabled)? == 0 {
            return Err(ApiError::NotFound);
        }
        self.clear_cache();
        Ok(())
    }

    pub fn list_keys(&self) -> ApiResult<Vec<KeyInfo>> {
        let db = self.db();
        let deks = store::all_deks(&db)?;
        let macs = store::all_macs(&db)?;
        let mut out: Vec<KeyInfo> = Vec::new();
        let rows = deks
            .into_iter()
            .map(|d| {
                (
                    KeySpec::Aes256,
                    d.key_id,
                    d.version,
                    d.enabled,
                    d.master_label,
                    d.created_at,
                )
            })
            .chain(macs.into_iter().map(|m| {
                (
                    KeySpec::Hmac256,
                    m.key_id,
                    m.version,
                    m.enabled,
                    String::new(),
                    m.created_at,
                )
            }));
        for (spec, key_id, version, enabled, master_label, created_at) in rows {
            match out.last_mut() {
                Some(k) if k.key_id == key_id => {
                    k.versions.push(version);
                    k.latest = version;
                    k.master_label = master_label;
                    k.enabled = enabled;
                    k.latest_created_at = created_at;
                }
                _ => out.push(KeyInfo {
                    key_id,
                    spec: spec.name(),
                    latest: version,
                    versions: vec![version],
                    enabled,
                    master_label,
                    created_at,
                    latest_created_at: created_at,
                    rotation_seconds: None,
                }),
            }
        }
        for k in &mut out {
            k.rotation_seconds = store::rotation_period(&db, &k.key_id)?;
        }
        out.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(out)
    }

    /// Whether `client` may use key `key_id`: its standing policy, else a
    /// grant in force. A refusal says why (an expired or revoked grant is
    /// named), and is a 403.
    pub fn authorize(&self, client: &Client, key_id: &str) -> ApiResult<Access> {
        if client.may_read(key_id) {
            return Ok(Access::Policy);
        }
        let db = self.db();
        let now = store::now();
        if let Some(g) = store::active_grant(&db, &client.name, key_id, now)? {
            return Ok(Access::Grant(g.grant_id));
        }
        let last = store::list_grants(&db, Some(&client.name), Some(key_id))?
            .into_iter()
            .max_by_key(|g| g.expires_at);
        let why = match last {
            Some(g) if g.revoked_at.is_some() => format!(" (grant {} was revoked)", g.grant_id),
            Some(g) => format!(" (grant {} expired at {})", g.grant_id, g.expires_at),
            None => String::new(),
        };
        Err(ApiError::Forbidden(format!(
            "client {} may not use key {key_id}{why}",
            client.name
        )))
    }

    /// CreateGrant: `client` may use `key_id` for `seconds` from now.
    pub fn create_grant(&self, client: &str, key_id: &str, seconds: u64) -> ApiResult<Grant> {
        if seconds == 0 || seconds > MAX_GRANT_SECONDS {
            return Err(ApiError::BadRequest(format!(
                "a grant lasts 1..{MAX_GRANT_SECONDS} seconds"
            )));
        }
        if !valid_key_id(key_id) {
            return Err(ApiError::BadRequest(format!("invalid key id {key_id:?}")));
        }
        let id = format!("grant.{}", hex::encode(&*self.token().random(12)?));
        let db = self.db();
        if !store::client_exists(&db, client)? {
            return Err(ApiError::BadRequest(format!("no client named {client:?}")));
        }
        if Self::latest(&db, key_id)?.is_none() {
            return Err(ApiError::NotFound);
        }
        let now = store::now();
        let g = Grant {
            grant_id: id,
            client: client.to_string(),
            key_id: key_id.to_string(),
            created_at: now,
            expires_at: now.saturating_add(seconds as i64),
            revoked_at: None,
        };
        store::insert_grant(&db, &g)?;
        Ok(g)
    }

    pub fn list_grants(&self, client: Option<&str>, key_id: Option<&str>) -> ApiResult<Vec<Grant>> {
        Ok(store::list_grants(&self.db(), client, key_id)?)
    }

    /// RevokeGrant; when `key_id` is given the grant must be on that key.
    pub fn revoke_grant(&self, grant_id: &str, key_id: Option<&str>) -> ApiResult<Grant> {
        let db = self.db();
        let g = store::get_grant(&db, grant_id)?.ok_or(ApiError::NotFound)?;
        if key_id.is_some_and(|k| k != g.key_id) {
            return Err(ApiError::BadRequest(format!(
                "grant {grant_id} is not on key {}",
                key_id.unwrap_or_default()
            )));
        }
        if g.revoked_at.is_some() {
            return Err(ApiError::Conflict(format!(
                "grant {grant_id} is already revoked"
            )));
        }
        store::revoke_grant(&db, grant_id, store::now())?;
        Ok(store::get_grant(&db, grant_id)?.unwrap_or(g))
    }

    /// The HMAC key version to use: the latest, or `version`. A data key id
    /// is a 400 (wrong key usage), a disabled key a 403.
    fn mac_key(&self, key_id: &str, version: Option<u32>) -> ApiResult<store::MacKey> {
        let db = self.db();
        match store::get_mac(&db, key_id, version)? {
            Some(m) if m.enabled => Ok(m),
            Some(_) => Err(ApiError::Forbidden(format!("key {key_id} is disabled"))),
            None if store::get_dek(&db, key_id, None)?.is_some() => {
                Err(ApiError::BadRequest(format!(
                    "key {key_id} is an AES_256 key: GenerateMac/VerifyMac need a HMAC_256 key"
                )))
            }
            None => Err(ApiError::NotFound),
        }
    }

    /// GenerateMac: HMAC-SHA256 of `message` in the token with the latest
    /// version of HMAC key `key_id`. Returns (version, MAC).
    pub fn generate_mac(&self, key_id: &str, message: &[u8]) -> ApiResult<(u32, Vec<u8>)> {
        if message.is_empty() || message.len() > MAX_MAC_MESSAGE {
            return Err(ApiError::BadRequest(format!(
                "Message must be 1..{MAX_MAC_MESSAGE} bytes"
            )));
        }
        let m = self.mac_key(key_id, None)?;
        let mac = self.token().mac(&m.label, message)?;
        Ok((m.version, mac))
    }

    /// VerifyMac with `C_Verify` in the token (constant-time comparison
    /// there): with `version`, against that version; without, against every
    /// enabled version, newest first (a MAC made before a rotation still
    /// verifies). Returns the version that verified, or InvalidMac.
    pub fn verify_mac(
        &self,
        key_id: &str,
        version: Option<u32>,
        message: &[u8],
        mac: &[u8],
    ) -> ApiResult<u32> {
        if message.is_empty() || message.len() > MAX_MAC_MESSAGE {
            return Err(ApiError::BadRequest(format!(
                "Message must be 1..{MAX_MAC_MESSAGE} bytes"
            )));
        }
        let latest = self.mac_key(key_id, version)?;
        let candidates: Vec<store::MacKey> = if version.is_some() {
            vec![latest]
        } else {
            let mut all: Vec<_> = store::all_macs(&self.db())?
                .into_iter()
                .filter(|m| m.key_id == key_id && m.enabled)
                .collect();
            all.sort_by_key(|m| std::cmp::Reverse(m.version));
            all
        };
        let mut tok = self.token();
        for m in candidates {
            if tok.verify_mac(&m.label, message, mac)? {
                return Ok(m.version);
            }
        }
        Err(ApiError::InvalidMac)
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
        let db = self.db();
        let Some(dek) = store::get_dek(&db, key_id, version)? else {
            if store::get_mac(&db, key_id, None)?.is_some() {
                return Err(ApiError::BadRequest(format!(
                    "key {key_id} is a HMAC_256 key: only GenerateMac/VerifyMac use it"
                )));
            }
            return Err(ApiError::NotFound);
        };
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

    /// Decrypt: the data key inside an envelope blob, if `client` may use
    /// the blob's key id.
    pub fn decrypt(&self, blob: &[u8], client: &Client) -> ApiResult<Decrypted> {
        let (id, version, wrapped) = decode_blob(blob)
            .ok_or_else(|| ApiError::BadRequest("not a ciphertext blob of this service".into()))?;
        let access = self.authorize(client, &id)?;
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
        Ok(Decrypted {
            key_id: id,
            version,
            plaintext: plain,
            access,
        })
    }

    /// ReEncrypt: an envelope blob moved to the latest version of `dest`.
    /// Returns (source key id, destination version, new blob, the grants
    /// used for the source and the destination).
    pub fn re_encrypt(
        &self,
        blob: &[u8],
        dest: &str,
        client: &Client,
    ) -> ApiResult<(String, u32, Vec<u8>, Vec<String>)> {
        let dest_access = self.authorize(client, dest)?;
        let d = self.decrypt(blob, client)?;
        let dek = self.dek_for_envelope(dest, None)?;
        let wrapped =
            self.token()
                .with_dek(&dek.master_label, &dek.wrapped, &d.plaintext, false)?;
        let grants = [d.access.grant(), dest_access.grant()]
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
        Ok((
            d.key_id,
            dek.version,
            encode_blob(dest, dek.version, &wrapped),
            grants,
        ))
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
        // An empty entry (`--keys ''`): no standing policy, grants only.
        let keys: Vec<String> = keys.iter().filter(|k| !k.is_empty()).cloned().collect();
        for k in &keys {
            if k != "*" && !valid_key_id(k) {
                return Err(ApiError::BadRequest(format!("invalid key id {k:?}")));
            }
        }
        let raw = self.token().random(32)?;
        let token = format!("srk.{}", hex::encode(&*raw));
        store::insert_client(&self.db(), name, &token, &keys, admin)?;
        Ok(token)
    }

    pub fn revoke_client(&self, name: &str) -> ApiResult<()> {
        if store::revoke_client(&self.db(), name)? == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    /// Starts the rotation scheduler: a thread that runs
    /// [`Service::run_scheduled_rotations`] now and then every `every`.
    pub fn spawn_rotation_scheduler(
        self: &std::sync::Arc<Self>,
        every: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let svc = self.clone();
        std::thread::Builder::new()
            .name("keyd-rotation".into())
            .spawn(move || loop {
                svc.run_scheduled_rotations();
                std::thread::sleep(every);
            })
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
    fn durations() {
        assert_eq!(parse_duration("90d"), Some(90 * 86400));
        assert_eq!(parse_duration("12h"), Some(12 * 3600));
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("45s"), Some(45));
        assert_eq!(parse_duration("2w"), Some(14 * 86400));
        assert_eq!(parse_duration("7"), Some(7));
        for bad in ["", "d", "1x", "-1d", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
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
