//! Tokens as this process sees them: slot ids, token info, login state, PINs
//! (PKCS#11 v3.0 §5.5-5.6), and the per-process cache of opened objects.

use crate::error::{Error, Result};
use crate::handle_map::HandleMap;
use crate::object::Object;
use crate::store::seal::SealKey;
use crate::store::{Role, Store, StoredObject, TokenKeys, TokenRecord, TokenRow};
use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Shortest and longest PIN accepted (bytes).
pub const MIN_PIN_LEN: usize = 4;
pub const MAX_PIN_LEN: usize = 255;
/// Objects kept opened in memory per token (each about its attribute size).
const CACHE_LIMIT: usize = 50_000;

/// Who is logged in to a token in this process (v3.0 §5.6: login is shared
/// by all sessions of the application).
#[derive(Clone)]
pub enum Login {
    Public,
    User {
        name: String,
        key: SealKey,
        epoch: u64,
    },
    So {
        key: SealKey,
        epoch: u64,
    },
}

impl Login {
    pub fn user_type(&self) -> Option<CK_USER_TYPE> {
        match self {
            Login::Public => None,
            Login::User { .. } => Some(CKU_USER),
            Login::So { .. } => Some(CKU_SO),
        }
    }
}

struct Cache {
    objects: HandleMap<i64, StoredObject>,
    seen_counter: u64,
    seen_seq: i64,
    /// When the store was last asked for changes (coarse monotonic ms): a
    /// writer killed between its commit and the counter bump is noticed
    /// within a second.
    checked_at_ms: u64,
}

impl Cache {
    /// Whether the cache may answer without asking the store.
    fn fresh(&self, counter: u64) -> bool {
        counter == self.seen_counter
            && crate::ffi::sys::coarse_monotonic_ms().saturating_sub(self.checked_at_ms)
                < MAX_STALENESS_MS
    }
}

/// Longest time a cached object is trusted without asking the store.
const MAX_STALENESS_MS: u64 = 1000;

/// One initialised token.
pub struct Token {
    pub token_id: i64,
    pub slot_id: CK_SLOT_ID,
    store: Arc<Store>,
    login: RwLock<Login>,
    /// Serialises C_Login/C_Logout of this process so that two logins cannot
    /// both pass the "already logged in" check; never held by crypto.
    login_gate: Mutex<()>,
    record: RwLock<TokenRow>,
    /// Decrypted token objects. Readers share it; only a refresh (another
    /// process wrote) or a miss takes it exclusively.
    cache: RwLock<Cache>,
}

/// Blank-pads `s` into a fixed-size PKCS#11 string field.
pub fn padded<const N: usize>(s: &[u8]) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s[..n]);
    out
}

pub fn check_pin_len(pin: &[u8]) -> Result<()> {
    if pin.len() < MIN_PIN_LEN || pin.len() > MAX_PIN_LEN {
        return Err(Error::PinLenRange);
    }
    Ok(())
}

impl Token {
    pub fn new(store: Arc<Store>, row: TokenRow) -> Result<Token> {
        let slot_id = CK_SLOT_ID::try_from(row.slot_id).map_err(Error::general)?;
        let seq = store.current_seq()?;
        // Once per process and token: every object row must be the one the
        // module last wrote (a single row rolled back to an older copy is
        // authentic on its own; only the accumulator shows it).
        match store.verify_rollback(row.token_id) {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                token_id = row.token_id,
                "store integrity: object rows were rolled back, restored or removed outside Strongroom"
            ),
            Err(e) => tracing::error!(token_id = row.token_id, "store integrity check failed: {e}"),
        }
        Ok(Token {
            token_id: row.token_id,
            slot_id,
            login: RwLock::new(Login::Public),
            login_gate: Mutex::new(()),
            cache: RwLock::new(Cache {
                objects: HandleMap::default(),
                seen_counter: store.change_counter(),
                seen_seq: seq,
                checked_at_ms: crate::ffi::sys::coarse_monotonic_ms(),
            }),
            record: RwLock::new(row),
            store,
        })
    }

    pub fn login_state(&self) -> Login {
        self.login.read().clone()
    }

    pub fn user_type(&self) -> Option<CK_USER_TYPE> {
        self.login.read().user_type()
    }

    /// The keys that open this token's records right now.
    pub fn keys(&self) -> TokenKeys {
        let token = match &*self.login.read() {
            Login::User { key, .. } | Login::So { key, .. } => Some(key.clone()),
            Login::Public => None,
        };
        TokenKeys {
            installation: self.store.installation_key().clone(),
            token,
        }
    }

    /// Whether private objects are visible (a normal user is logged in).
    pub fn user_logged_in(&self) -> bool {
        matches!(*self.login.read(), Login::User { .. })
    }

    pub fn refresh_record(&self) -> Result<TokenRow> {
        let row = self.store.token(self.token_id)?;
        *self.record.write() = row.clone();
        Ok(row)
    }

    pub fn record(&self) -> TokenRow {
        self.record.read().clone()
    }

    fn set_record(&self, row: TokenRow) {
        *self.record.write() = row;
    }

    /// CK_TOKEN_INFO (v3.0 §5.5 C_GetTokenInfo), PIN flags from the store.
    pub fn info(&self, session_count: usize, rw_count: usize) -> Result<CK_TOKEN_INFO> {
        let row = self.refresh_record()?;
        let r = &row.record;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED;
        if let Some(user) = r.pin(Role::User, "") {
            flags |= CKF_USER_PIN_INITIALIZED;
            flags |= pin_flags(
                user.failures,
                r.max_failures,
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            );
        }
        if let Some(so) = r.pin(Role::SecurityOfficer, "") {
            flags |= pin_flags(
                so.failures,
                r.max_failures,
                CKF_SO_PIN_COUNT_LOW,
                CKF_SO_PIN_FINAL_TRY,
                CKF_SO_PIN_LOCKED,
            );
        }
        Ok(token_info(
            &r.label,
            &r.serial,
            flags,
            session_count,
            rw_count,
        ))
    }

    // ----- login -----

    /// C_Login for the SO or the default user: counts the attempt before the
    /// PIN is checked (so parallel guessing cannot outrun the counter), resets
    /// the count on success.
    pub fn login(&self, role: Role, name: &str, pin: &[u8]) -> Result<()> {
        let who = match (role, name) {
            (Role::SecurityOfficer, _) => "so",
            (Role::User, "") => "user",
            (Role::User, n) => n,
        };
        crate::audit::note_actor(self.slot_id as u64, |out| {
            out.push_str(who);
            true
        });
        let _gate = self.login_gate.lock();
        let wanted = match role {
            Role::User => CKU_USER,
            Role::SecurityOfficer => CKU_SO,
        };
        match self.user_type() {
            Some(t) if t == wanted => return Err(Error::UserAlreadyLoggedIn),
            Some(_) => return Err(Error::UserAnotherAlreadyLoggedIn),
            None => {}
        }
        let key = self.check_pin(role, name, pin)?;
        let epoch = self.record.read().record.epoch;
        *self.login.write() = match role {
            Role::User => Login::User {
                name: name.to_string(),
                key,
                epoch,
            },
            Role::SecurityOfficer => Login::So { key, epoch },
        };
        self.clear_cache();
        crate::module::objects_changed();
        Ok(())
    }

    /// Fails with `CKR_USER_NOT_LOGGED_IN` (and logs out) when another
    /// process re-initialised the token since this login: the key we hold
    /// no longer opens anything and must not seal new records.
    pub fn check_epoch(&self) -> Result<()> {
        let held = match &*self.login.read() {
            Login::User { epoch, .. } | Login::So { epoch, .. } => *epoch,
            Login::Public => return Ok(()),
        };
        if self.refresh_record()?.record.epoch != held {
            self.reset_login();
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    /// Verifies a PIN with the persisted failure counter; returns the token key.
    pub fn check_pin(&self, role: Role, name: &str, pin: &[u8]) -> Result<SealKey> {
        let (slot, row) = self.store.update_token(self.token_id, false, |rec| {
            let max = rec.limit_for(role, name);
            let slot = rec.pin_mut(role, name).ok_or(match role {
                // A crypto user that does not exist: a wrong PIN, like any
                // other (no hint that the name is unknown), counted nowhere.
                Role::User if !name.is_empty() => Error::PinIncorrect,
                Role::User => Error::UserPinNotInitialized,
                Role::SecurityOfficer => Error::general("token has no SO PIN"),
            })?;
            if slot.failures >= max {
                return Err(Error::PinLocked);
            }
            slot.failures += 1;
            Ok(slot.clone())
        })?;
        self.set_record(row);
        let key = match self.store.open_pin_slot(self.token_id, &slot, pin) {
            Ok(k) => k,
            Err(e) => {
                let limit = self.record.read().record.limit_for(role, name);
                tracing::info!(token_id = self.token_id, role = ?role, user = name, "wrong PIN ({} of {limit} tries used)", slot.failures);
                if slot.failures >= limit {
                    return Err(Error::PinLocked);
                }
                return Err(e);
            }
        };
        let ((), row) = self.store.update_token(self.token_id, false, |rec| {
            if let Some(s) = rec.pin_mut(role, name) {
                s.failures = 0;
            }
            Ok(())
        })?;
        self.set_record(row);
        Ok(key)
    }

    pub fn logout(&self) -> Result<()> {
        let _gate = self.login_gate.lock();
        let mut login = self.login.write();
        if matches!(*login, Login::Public) {
            return Err(Error::UserNotLoggedIn);
        }
        *login = Login::Public;
        drop(login);
        self.clear_cache();
        Ok(())
    }

    /// Forgets the login (last session closed, C_Finalize).
    pub fn reset_login(&self) {
        *self.login.write() = Login::Public;
        self.clear_cache();
        crate::module::objects_changed();
    }

    /// C_InitPIN (SO logged in): a new PIN slot for the token key. A PIN of
    /// the form `name:password` creates (or resets and unlocks) the crypto
    /// user `name`, as AWS CloudHSM's PIN format does; any other PIN is the
    /// default user's.
    pub fn init_user_pin(&self, pin: &[u8]) -> Result<()> {
        let (name, password) = match split_user_pin(pin) {
            Some((n, p)) => (n.to_string(), p),
            None => (String::new(), pin),
        };
        self.put_user(&name, password)
    }

    /// Creates or resets a user's PIN slot (SO logged in). Resetting also
    /// clears the user's failure count: this is how the SO unlocks a user.
    pub fn put_user(&self, name: &str, pin: &[u8]) -> Result<()> {
        check_pin_len(pin)?;
        if !name.is_empty() {
            check_user_name(name)?;
        }
        let (key, epoch) = match &*self.login.read() {
            Login::So { key, epoch } => (key.clone(), *epoch),
            _ => return Err(Error::UserNotLoggedIn),
        };
        let slot = self
            .store
            .make_pin_slot(self.token_id, Role::User, name, pin, &key)?;
        let ((), row) = self.store.update_token(self.token_id, false, |rec| {
            if rec.epoch != epoch {
                return Err(Error::UserNotLoggedIn);
            }
            rec.pins
                .retain(|p| !(p.role == Role::User && p.name == name));
            rec.pins.push(slot.clone());
            Ok(())
        })?;
        self.set_record(row);
        Ok(())
    }

    /// Deletes a crypto user (SO logged in). Objects the user owns stay:
    /// others they were shared with keep using them.
    pub fn delete_user(&self, name: &str) -> Result<()> {
        if !matches!(*self.login.read(), Login::So { .. }) {
            return Err(Error::UserNotLoggedIn);
        }
        let ((), row) = self.store.update_token(self.token_id, false, |rec| {
            let before = rec.pins.len();
            rec.pins
                .retain(|p| !(p.role == Role::User && p.name == name));
            if rec.pins.len() == before {
                return Err(Error::ArgumentsBad("no such user"));
            }
            Ok(())
        })?;
        self.set_record(row);
        Ok(())
    }

    /// C_SetPIN: changes the PIN of the logged-in user (or the default user's
    /// PIN when nobody is logged in; `name:old`/`name:new` names a crypto
    /// user then). Only that user's slot is rewrapped.
    pub fn set_pin(&self, old: &[u8], new: &[u8]) -> Result<()> {
        let (role, name) = match &*self.login.read() {
            Login::So { .. } => (Role::SecurityOfficer, String::new()),
            Login::User { name, .. } => (Role::User, name.clone()),
            Login::Public => match addressed_user(old) {
                Some((n, _)) => (Role::User, n.to_string()),
                None => (Role::User, String::new()),
            },
        };
        // A named user may write the PINs with or without the name prefix.
        let strip = |pin: &'_ [u8]| -> Vec<u8> {
            match split_user_pin(pin) {
                Some((n, p)) if !name.is_empty() && n == name => p.to_vec(),
                _ => pin.to_vec(),
            }
        };
        let (old, new) = (Zeroizing::new(strip(old)), Zeroizing::new(strip(new)));
        let (old, new) = (&old[..], &new[..]);
        check_pin_len(new)?;
        if role == Role::User && name.is_empty() && addressed_user(new).is_some() {
            // It would read as a crypto user's `name:password` at login.
            return Err(Error::PinInvalid);
        }
        // The key comes from the old PIN itself, so it is always current.
        let key = self.check_pin(role, &name, old)?;
        let slot = self
            .store
            .make_pin_slot(self.token_id, role, &name, new, &key)?;
        let ((), row) = self.store.update_token(self.token_id, false, |rec| {
            let s = rec
                .pin_mut(role, &name)
                .ok_or(Error::UserPinNotInitialized)?;
            *s = slot.clone();
            Ok(())
        })?;
        self.set_record(row);
        Ok(())
    }

    /// Who is acting, for the audit log: writes "so", "user" (the default
    /// user) or the crypto user's name to `out`; false before login.
    pub fn audit_user(&self, out: &mut String) -> bool {
        match &*self.login.read() {
            Login::So { .. } => out.push_str("so"),
            Login::User { name, .. } if name.is_empty() => out.push_str("user"),
            Login::User { name, .. } => out.push_str(name),
            Login::Public => return false,
        }
        true
    }

    /// Whether a crypto user of this name exists.
    pub fn has_user(&self, name: &str) -> bool {
        self.record.read().record.pin(Role::User, name).is_some()
    }

    /// Whether the logged-in user may act as the object's owner (always
    /// true outside a user login: the SO and public sessions are governed by
    /// other rules). No allocation: this runs on every C_WrapKey.
    pub fn user_owns(&self, obj: &Object) -> bool {
        match &*self.login.read() {
            Login::User { name, .. } => ownership::owns(obj, name),
            _ => true,
        }
    }

    /// The logged-in user's name (`Some("")` for the default user).
    pub fn user_name(&self) -> Option<String> {
        match &*self.login.read() {
            Login::User { name, .. } => Some(name.clone()),
            _ => None,
        }
    }

    // ----- objects -----

    fn clear_cache(&self) {
        self.cache.write().objects.clear();
        crate::module::objects_changed();
    }

    /// Drops cached objects that any process changed since we last looked:
    /// one atomic load when nothing changed, one indexed query otherwise.
    fn refresh_cache(&self, c: &mut Cache) -> Result<()> {
        let counter = self.store.change_counter();
        if c.fresh(counter) {
            return Ok(());
        }
        c.checked_at_ms = crate::ffi::sys::coarse_monotonic_ms();
        let (changed, newest) = self.store.changes_since(self.token_id, c.seen_seq)?;
        for id in changed {
            c.objects.remove(&id);
        }
        c.seen_seq = newest;
        c.seen_counter = counter;
        Ok(())
    }

    /// Reads a token object through the cache; `None` when it does not exist
    /// or is not visible to the current login.
    pub fn object(&self, obj_id: i64) -> Result<Option<StoredObject>> {
        {
            // The common case: nothing changed, the object is cached.
            let c = self.cache.read();
            if c.fresh(self.store.change_counter()) {
                if let Some(o) = c.objects.get(&obj_id) {
                    return Ok(self.visible(&o.object).then(|| o.clone()));
                }
            }
        }
        {
            let mut c = self.cache.write();
            self.refresh_cache(&mut c)?;
            if let Some(o) = c.objects.get(&obj_id) {
                return Ok(self.visible(&o.object).then(|| o.clone()));
            }
        }
        let keys = self.keys();
        let counter_before = self.store.change_counter();
        let found = match self.store.object(&keys, self.token_id, obj_id) {
            Ok(f) => f,
            Err(e @ Error::Tampered(_)) => {
                tracing::error!(token_id = self.token_id, obj_id, "{e}");
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let Some(found) = found else { return Ok(None) };
        let mut c = self.cache.write();
        // Cache only if nothing changed while we read: otherwise a refresh in
        // between could have evicted a newer state we would now hide.
        if c.seen_counter == counter_before && self.store.change_counter() == counter_before {
            // A full cache gives up one arbitrary entry for the new one:
            // memory stays bounded, an object asked for again and again (a
            // find-one among 100,000) stays opened, and a scan over more
            // objects than the limit still finds part of its set opened on
            // the next pass (clearing all would lose that).
            if c.objects.len() >= CACHE_LIMIT {
                if let Some(victim) = c.objects.keys().next().copied() {
                    c.objects.remove(&victim);
                }
            }
            c.objects.insert(obj_id, found.clone());
        }
        Ok(self.visible(&found.object).then_some(found))
    }

    /// Private objects are visible to the normal user only (v3.0 §4.4).
    pub fn visible(&self, obj: &Object) -> bool {
        if !obj.is_private() {
            return true;
        }
        match &*self.login.read() {
            Login::User { name, .. } => ownership::may_use(obj, name),
            _ => false,
        }
    }

    /// Ids of candidate objects for a find: through the keyed index when the
    /// template names an indexed attribute, all visible objects otherwise.
    pub fn candidates(&self, template: &[crate::object::attr::Attribute]) -> Result<Vec<i64>> {
        let keys = self.keys();
        let private = self.user_logged_in();
        for ty in crate::store::INDEXED {
            let wanted = template.iter().find_map(|a| match &a.value {
                crate::object::attr::Value::Bytes(b) if a.ty == u64::from(ty) => Some(b.clone()),
                _ => None,
            });
            if let Some(value) = wanted {
                let mut ids = Vec::new();
                for class in [0u8, 1] {
                    if class == 1 && !private {
                        continue;
                    }
                    if let Some(tag) =
                        Store::tag_for(&keys, self.token_id, class, u64::from(ty), &value)
                    {
                        ids.extend(self.store.ids_by_tag(self.token_id, &tag)?);
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                return Ok(ids);
            }
        }
        Ok(self
            .store
            .object_ids(self.token_id, private)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    pub fn insert_object(&self, obj: &Object) -> Result<i64> {
        if obj.is_private() {
            self.check_epoch()?;
        }
        self.store.insert_object(&self.keys(), self.token_id, obj)
    }

    /// Writes a changed object; fails with `KeyChanged`-free semantics: if
    /// another process changed it first, the caller retries on fresh data.
    pub fn update_object(&self, obj_id: i64, version: i64, obj: &Object) -> Result<bool> {
        if obj.is_private() {
            self.check_epoch()?;
        }
        let ok = self
            .store
            .update_object(&self.keys(), self.token_id, obj_id, version, obj)?;
        self.cache.write().objects.remove(&obj_id);
        crate::module::objects_changed();
        Ok(ok)
    }

    pub fn delete_object(&self, obj_id: i64) -> Result<bool> {
        let ok = self.store.delete_object(self.token_id, obj_id)?;
        self.cache.write().objects.remove(&obj_id);
        crate::module::objects_changed();
        Ok(ok)
    }

    /// C_InitToken on an initialised token: SO PIN checked, every object
    /// wiped, a new token key, the user PIN removed.
    pub fn reinitialize(&self, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        self.check_pin(Role::SecurityOfficer, "", so_pin)?;
        let key = SealKey::random()?;
        let so =
            self.store
                .make_pin_slot(self.token_id, Role::SecurityOfficer, "", so_pin, &key)?;
        let epoch = random_epoch()?;
        let ((), row) = self.store.update_token(self.token_id, true, |rec| {
            rec.label = label.to_vec();
            rec.pins = vec![so.clone()];
            rec.epoch = epoch;
            Ok(())
        })?;
        self.set_record(row);
        self.reset_login();
        Ok(())
    }
}

fn pin_flags(
    failures: u32,
    max: u32,
    low: CK_FLAGS,
    final_try: CK_FLAGS,
    locked: CK_FLAGS,
) -> CK_FLAGS {
    if failures >= max {
        locked
    } else if failures + 1 == max {
        final_try | low
    } else if failures > 0 {
        low
    } else {
        0
    }
}

/// Makes a new token record with its SO PIN slot (C_InitToken on a free
/// slot); the PIN was stretched before the store transaction began.
pub fn new_token_record(
    store: &Store,
    token_id: i64,
    so_kek: &crate::store::PinKek,
    label: &[u8; 32],
    serial: &str,
    token_key: &SealKey,
) -> Result<TokenRecord> {
    let so = store.seal_pin_slot(token_id, Role::SecurityOfficer, "", so_kek, token_key)?;
    Ok(TokenRecord {
        label: label.to_vec(),
        serial: serial.to_string(),
        pins: vec![so],
        max_failures: store.config.max_failures,
        crypto_user_max_failures: store.config.crypto_user_max_failures,
        epoch: random_epoch()?,
    })
}

fn random_epoch() -> Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::general(format!("getrandom: {e}")))?;
    Ok(u64::from_le_bytes(b))
}

/// Splits a `name:password` PIN (AWS CloudHSM's crypto-user format).
pub fn split_user_pin(pin: &[u8]) -> Option<(&str, &[u8])> {
    let colon = pin.iter().position(|b| *b == b':')?;
    let name = std::str::from_utf8(&pin[..colon]).ok()?;
    (!name.is_empty()).then_some((name, &pin[colon + 1..]))
}

/// The crypto user a C_Login / C_SetPIN PIN addresses: `name:password`
/// with a valid user name always means crypto user `name` (CloudHSM's PIN
/// format), whether or not it exists; any other PIN is the default user's.
/// So a login for an unknown or deleted user fails as a wrong PIN without
/// touching the default user's failure counter, and the default user's PIN
/// can never take that form (C_InitPIN would make it a crypto user,
/// C_SetPIN refuses it).
pub fn addressed_user(pin: &[u8]) -> Option<(&str, &[u8])> {
    split_user_pin(pin).filter(|(name, _)| check_user_name(name).is_ok())
}

/// Crypto user names: 1-32 characters of `[A-Za-z0-9._-]`.
pub fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::ArgumentsBad(
            "user names are 1-32 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// Who owns an object and whom it is shared with (vendor attributes
/// CKA_SR_OWNER and CKA_SR_SHARED_WITH, include/strongroom.h).
pub mod ownership {
    use crate::object::Object;

    /// CKA_VENDOR_DEFINED | 0x53520001: the crypto user that created the
    /// object (read-only; absent on objects made without a user login).
    pub const CKA_SR_OWNER: cryptoki_sys::CK_ATTRIBUTE_TYPE = 0x8000_0000 | 0x5352_0001;
    /// CKA_VENDOR_DEFINED | 0x53520002: comma-separated user names that may
    /// use (not destroy, modify, export or re-share) the object.
    pub const CKA_SR_SHARED_WITH: cryptoki_sys::CK_ATTRIBUTE_TYPE = 0x8000_0000 | 0x5352_0002;

    /// The owner, if the object has one.
    pub fn owner(obj: &Object) -> Option<&str> {
        obj.bytes(CKA_SR_OWNER)
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Whether `user` owns the object (objects without an owner belong to
    /// whoever can see them, as in a single-user token).
    pub fn owns(obj: &Object, user: &str) -> bool {
        owner(obj).is_none_or(|o| crate::same_str(o, user))
    }

    /// Whether `user` may use the object: owner or a user it is shared with.
    pub fn may_use(obj: &Object, user: &str) -> bool {
        owns(obj, user)
            || obj
                .bytes(CKA_SR_SHARED_WITH)
                .and_then(|b| std::str::from_utf8(b).ok())
                .is_some_and(|list| {
                    // Empty entries never match (the default user's name is
                    // the empty string; an emptied list must share nothing).
                    !user.is_empty()
                        && list
                            .split(',')
                            .map(str::trim)
                            .any(|u| !u.is_empty() && crate::same_str(u, user))
                })
    }
}

/// CK_TOKEN_INFO with every field filled (strings blank padded).
pub fn token_info(
    label: &[u8],
    serial: &str,
    flags: CK_FLAGS,
    sessions: usize,
    rw: usize,
) -> CK_TOKEN_INFO {
    let version = CK_VERSION { major: 0, minor: 1 };
    CK_TOKEN_INFO {
        label: padded::<32>(label),
        manufacturerID: padded::<32>(b"Strongroom"),
        model: padded::<16>(b"Strongroom soft"),
        serialNumber: padded::<16>(serial.as_bytes()),
        flags,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw as CK_ULONG,
        ulMaxPinLen: MAX_PIN_LEN as CK_ULONG,
        ulMinPinLen: MIN_PIN_LEN as CK_ULONG,
        ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
        hardwareVersion: version,
        firmwareVersion: version,
        utcTime: [b' '; 16],
    }
}
