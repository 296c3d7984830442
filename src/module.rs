//! Module-wide state: `None` until C_Initialize, the slot and session tables,
//! session objects, and the general-purpose, slot, session and object
//! functions of PKCS#11 v3.0 §5.4-5.7.
//!
//! Lock order (docs/lock-order.md): MODULE → tokens → sessions →
//! session_objects → one session's ops → a token's login/record/cache. Every
//! table lock is held only to clone an `Arc`; no lock is held during crypto.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ffi::sys;
use crate::handle_map::{HandleMap, ShardedHandleMap};
use crate::object::attr::{Attribute, Encoded, RawAttribute};
use crate::object::rules::{self, Actor, Origin};
use crate::object::Object;
use crate::session::{FindOp, Session};
use crate::store::seal::SealKey;
use crate::store::{Role, Store};
use crate::token::{self, padded, Token};
use cryptoki_sys::*;
use parking_lot::RwLock;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static MODULE: RwLock<Option<Arc<Module>>> = RwLock::new(None);

/// How C_Initialize was called (the pointer checks happen in `ffi`).
#[derive(Clone, Copy, Debug, Default)]
pub struct InitArgs {
    pub os_locking_ok: bool,
    /// Number of mutex callbacks supplied (0 or 4 are valid, v3.0 §5.4).
    pub mutex_callbacks: u8,
}

/// A session object and the session that owns it.
pub struct SessionObject {
    pub session: CK_SESSION_HANDLE,
    pub token_id: i64,
    pub object: Arc<Object>,
}

/// Where an object handle points.
#[derive(Clone)]
pub enum ObjectRef {
    /// A token object of the session's token.
    Token {
        obj_id: i64,
        version: i64,
    },
    Session {
        handle: CK_OBJECT_HANDLE,
    },
}

/// A resolved object: where it lives and its current attributes.
#[derive(Clone)]
pub struct Resolved {
    pub at: ObjectRef,
    pub object: Arc<Object>,
}

pub struct Module {
    fork_generation: u64,
    pub store: Arc<Store>,
    tokens: RwLock<BTreeMap<CK_SLOT_ID, Arc<Token>>>,
    /// Open sessions, sharded by handle (threads in their own sessions
    /// take different locks).
    sessions: ShardedHandleMap<Arc<Session>>,
    session_objects: RwLock<HandleMap<CK_OBJECT_HANDLE, SessionObject>>,
    next_session: AtomicU64,
    next_session_object: AtomicU64,
    /// This process's queue of audit entries.
    pub audit: crate::audit::AuditLog,
    /// Keys parsed once for the provider, by handle (handles are never
    /// reused and key material never changes, so entries never go stale).
    pub(crate) prepared: RwLock<HandleMap<CK_OBJECT_HANDLE, Arc<crate::mechanism::keys::Prepared>>>,
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match &cfg.log_file {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => builder
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .try_init(),
            Err(_) => builder.with_writer(std::io::stderr).try_init(),
        },
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// C_Initialize (v3.0 §5.4).
pub fn initialize(args: InitArgs) -> Result<()> {
    if args.mutex_callbacks != 0 && args.mutex_callbacks != 4 {
        return Err(Error::ArgumentsBad(
            "mutex callbacks must be all set or all NULL",
        ));
    }
    // Mutex callbacks without CKF_OS_LOCKING_OK: we use our own (native)
    // locks, which the spec allows only when the OS locking flag is set; the
    // callbacks themselves cannot be used from safe code we trust, so refuse.
    if args.mutex_callbacks == 4 && !args.os_locking_ok {
        return Err(Error::CantLock);
    }
    sys::watch_forks();
    let mut slot = MODULE.write();
    if let Some(m) = slot.as_ref() {
        if m.fork_generation == sys::fork_generation() {
            return Err(Error::AlreadyInitialized);
        }
        // A child after fork: the parent's state (sessions, logins, store
        // handles) is not ours. Forget it without running destructors, which
        // would close the parent's SQLite connections and locks.
        if let Some(old) = slot.take() {
            std::mem::forget(old);
        }
    }
    let cfg = Config::load().inspect_err(|e| eprintln!("strongroom: configuration error: {e}"))?;
    init_logging(&cfg);
    let store = Store::open(cfg.store.clone()).map_err(|e| {
        tracing::error!(store = %cfg.store.dir.display(), "cannot open store: {e}");
        e
    })?;
    let store = Arc::new(store);
    let module = Module {
        fork_generation: sys::fork_generation(),
        store: store.clone(),
        tokens: RwLock::new(BTreeMap::new()),
        sessions: ShardedHandleMap::default(),
        session_objects: RwLock::new(HandleMap::default()),
        next_session: AtomicU64::new(1),
        next_session_object: AtomicU64::new(0),
        prepared: RwLock::new(HandleMap::default()),
        audit: crate::audit::AuditLog::new(store.clone()),
    };
    module.refresh_slots()?;
    tracing::debug!(store = %cfg.store.dir.display(), "initialized");
    *slot = Some(Arc::new(module));
    EPOCH.fetch_add(1, Ordering::Release);
    Ok(())
}

/// C_Finalize (v3.0 §5.4).
pub fn finalize() -> Result<()> {
    let mut slot = MODULE.write();
    match slot.take() {
        Some(m) if m.fork_generation == sys::fork_generation() => {
            if let Err(e) = m.audit.flush() {
                tracing::error!("audit log write failed at C_Finalize: {e}");
            }
            for t in m.tokens.read().values() {
                t.reset_login();
            }
            // Threads that have not called since keep a reference to this
            // module until their next call: leave nothing in it worth having.
            m.sessions.clear();
            m.session_objects.write().clear();
            objects_changed();
            m.prepared.write().clear();
            EPOCH.fetch_add(1, Ordering::Release);
            forget_cached();
            Ok(())
        }
        Some(m) => {
            std::mem::forget(m);
            Err(Error::NotInitialized)
        }
        None => Err(Error::NotInitialized),
    }
}

/// Bumped whenever an object or a login of this process changes (a session
/// object destroyed or modified, a token object updated or deleted here, a
/// login or logout, a token cleared): a session's cached keys
/// ([`crate::session::KeyCache`]) are valid only under the epoch they were
/// resolved in. Changes by other processes move the store's change counter,
/// which the cache checks too.
static KEY_EPOCH: crate::handle_map::Padded<AtomicU64> =
    crate::handle_map::Padded(AtomicU64::new(0));

/// Invalidates every session's cached keys.
pub(crate) fn objects_changed() {
    KEY_EPOCH.0.fetch_add(1, Ordering::AcqRel);
}

/// The module as a call holds it: a thread-local reference count around the
/// shared one. Every exported function starts with [`get`]; cloning the
/// `Arc` itself there would make all threads increment one shared counter
/// (and take one shared lock) three times per signature, and two threads
/// would spend their time passing that cache line back and forth.
pub type ModuleRef = Rc<Arc<Module>>;

/// Bumped by C_Initialize and C_Finalize: a thread's cached [`ModuleRef`] is
/// valid while the epoch it was taken in is current.
static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Lazily initialised on purpose: glibc then keeps the library mapped
    // while this destructor is pending (see also `-z nodelete` in build.rs).
    #[allow(clippy::missing_const_for_thread_local)]
    static CACHED: RefCell<Option<(u64, ModuleRef)>> = RefCell::new(None);
}

/// The initialised module of this process, or `CKR_CRYPTOKI_NOT_INITIALIZED`
/// (also in a forked child until it calls C_Initialize itself).
pub fn get() -> Result<ModuleRef> {
    let epoch = EPOCH.load(Ordering::Acquire);
    // `try_with`: at process exit the thread-locals may be gone before the
    // exit-time audit flush runs; it then takes the slow path.
    let cached = CACHED
        .try_with(|c| match &*c.borrow() {
            Some((e, m)) if *e == epoch && m.fork_generation == sys::fork_generation() => {
                Some(m.clone())
            }
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(m) = cached {
        return Ok(m);
    }
    let fresh = match MODULE.read().as_ref() {
        Some(m) if m.fork_generation == sys::fork_generation() => Rc::new(m.clone()),
        _ => {
            forget_cached();
            return Err(Error::NotInitialized);
        }
    };
    // The old reference is dropped after the borrow ends (dropping the last
    // reference to a finalized module runs its destructors).
    let old = CACHED
        .try_with(|c| c.borrow_mut().replace((epoch, fresh.clone())))
        .ok()
        .flatten();
    if let Some((_, old)) = old {
        drop_cached(old);
    }
    Ok(fresh)
}

/// Drops this thread's cached module reference.
fn forget_cached() {
    if let Some((_, old)) = CACHED.try_with(|c| c.borrow_mut().take()).ok().flatten() {
        drop_cached(old);
    }
}

/// A module of the parent process (after fork) is never dropped in the
/// child: its destructors would close the parent's SQLite connections.
fn drop_cached(m: ModuleRef) {
    if m.fork_generation != sys::fork_generation() {
        std::mem::forget(m);
    }
}

/// CK_INFO (C_GetInfo).
pub fn info() -> CK_INFO {
    CK_INFO {
        cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
        manufacturerID: padded::<32>(b"Strongroom"),
        flags: 0,
        libraryDescription: padded::<32>(b"Strongroom PKCS#11 soft HSM"),
        libraryVersion: CK_VERSION { major: 0, minor: 1 },
    }
}

fn serial_for(token_id: i64) -> Result<String> {
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).map_err(|e| Error::general(format!("getrandom: {e}")))?;
    Ok(format!(
        "{:08x}{:08x}",
        token_id as u32,
        u32::from_le_bytes(r)
    ))
}

impl Module {
    // ----- slots and tokens -----

    /// Picks up tokens created by any process since we last looked.
    pub fn refresh_slots(&self) -> Result<()> {
        let rows = self.store.tokens()?;
        let mut tokens = self.tokens.write();
        for row in rows {
            let slot_id = CK_SLOT_ID::try_from(row.slot_id).map_err(Error::general)?;
            let stale = tokens
                .get(&slot_id)
                .is_some_and(|t| t.token_id != row.token_id);
            if stale || !tokens.contains_key(&slot_id) {
                tokens.insert(slot_id, Arc::new(Token::new(self.store.clone(), row)?));
            }
        }
        Ok(())
    }

    /// The slot that holds no token yet: one past the highest used id.
    fn free_slot(&self) -> CK_SLOT_ID {
        self.tokens.read().keys().next_back().map_or(0, |s| s + 1)
    }

    /// C_GetSlotList: every token's slot plus one free slot for C_InitToken.
    pub fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>> {
        self.refresh_slots()?;
        let mut list: Vec<CK_SLOT_ID> = self.tokens.read().keys().copied().collect();
        list.push(self.free_slot());
        Ok(list)
    }

    fn check_slot(&self, slot: CK_SLOT_ID) -> Result<Option<Arc<Token>>> {
        if let Some(t) = self.tokens.read().get(&slot) {
            return Ok(Some(t.clone()));
        }
        self.refresh_slots()?;
        if let Some(t) = self.tokens.read().get(&slot) {
            return Ok(Some(t.clone()));
        }
        if slot == self.free_slot() {
            Ok(None)
        } else {
            Err(Error::SlotIdInvalid)
        }
    }

    /// The initialised token in `slot`; an empty slot is `CKR_TOKEN_NOT_RECOGNIZED`.
    pub fn token(&self, slot: CK_SLOT_ID) -> Result<Arc<Token>> {
        self.check_slot(slot)?.ok_or(Error::TokenNotRecognized)
    }

    pub fn slot_info(&self, slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        self.check_slot(slot)?;
        let version = CK_VERSION { major: 0, minor: 1 };
        Ok(CK_SLOT_INFO {
            slotDescription: padded::<64>(format!("Strongroom slot {slot}").as_bytes()),
            manufacturerID: padded::<32>(b"Strongroom"),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: version,
            firmwareVersion: version,
        })
    }

    fn session_counts(&self, slot: CK_SLOT_ID) -> (usize, usize) {
        let sessions = self.sessions.values();
        let mine = sessions.iter().filter(|s| s.token.slot_id == slot);
        let (mut all, mut rw) = (0, 0);
        for s in mine {
            all += 1;
            rw += usize::from(s.rw);
        }
        (all, rw)
    }

    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        match self.check_slot(slot)? {
            Some(t) => {
                let (all, rw) = self.session_counts(slot);
                t.info(all, rw)
            }
            None => Ok(token::token_info(
                b"",
                &format!("free-slot-{slot}"),
                CKF_RNG | CKF_LOGIN_REQUIRED,
                0,
                0,
            )),
        }
    }

    /// C_InitToken (v3.0 §5.5).
    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        token::check_pin_len(so_pin)?;
        match self.check_slot(slot)? {
            Some(t) => {
                if self.sessions.any(|s| s.token.slot_id == slot) {
                    return Err(Error::SessionExists);
                }
                t.reinitialize(so_pin, label)?;
                // Session objects of the old token are gone with it.
                objects_changed();
                self.session_objects
                    .write()
                    .retain(|_, o| o.token_id != t.token_id);
                Ok(())
            }
            None => {
                let key = SealKey::random()?;
                let slot_id = i64::try_from(slot).map_err(|_| Error::SlotIdInvalid)?;
                let store = self.store.clone();
                // Argon2id runs here, before the store's write transaction.
                let so_kek = self.store.stretch_new_pin(so_pin)?;
                let created = self.store.create_token(slot_id, &|token_id| {
                    token::new_token_record(
                        &store,
                        token_id,
                        &so_kek,
                        label,
                        &serial_for(token_id)?,
                        &key,
                    )
                })?;
                if created.is_none() {
                    // Another process initialised this slot first: now it is
                    // an existing token, and re-initialising needs its SO PIN.
                    self.refresh_slots()?;
                    if self.tokens.read().contains_key(&slot) {
                        return self.init_token(slot, so_pin, label);
                    }
                    return Err(Error::device(format!(
                        "slot {slot} holds a token whose record cannot be read"
                    )));
                }
                self.refresh_slots()
            }
        }
    }

    // ----- sessions -----

    /// Looks a session up; the table lock is released before returning.
    pub fn session(&self, h: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        let s = self
            .sessions
            .get(h as u64)
            .ok_or(Error::SessionHandleInvalid)?;
        crate::audit::note_actor(s.token.slot_id as u64, |out| s.token.audit_user(out));
        Ok(s)
    }

    /// C_OpenSession (v3.0 §5.6).
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let token = self.token(slot)?;
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && token.user_type() == Some(CKU_SO) {
            return Err(Error::SessionReadWriteSoExists);
        }
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        let handle = CK_SESSION_HANDLE::try_from(n).map_err(|_| Error::SessionCount)?;
        let s = Arc::new(Session {
            handle,
            token,
            rw,
            ops: Default::default(),
            keys: Default::default(),
        });
        self.sessions.insert(handle as u64, s);
        Ok(handle)
    }

    /// C_CloseSession: destroys the session's objects; closing the last
    /// session of a token logs it out (v3.0 §5.6).
    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self
            .sessions
            .remove(h as u64)
            .ok_or(Error::SessionHandleInvalid)?;
        let mut gone = Vec::new();
        objects_changed();
        self.session_objects.write().retain(|handle, o| {
            let keep = o.session != h;
            if !keep {
                gone.push(*handle);
            }
            keep
        });
        if !gone.is_empty() {
            {
                let mut prepared = self.prepared.write();
                for handle in &gone {
                    prepared.remove(handle);
                }
            }
            self.forget_keys(&gone);
        }
        let token_still_open = self.sessions.any(|o| o.token.slot_id == s.token.slot_id);
        if !token_still_open {
            s.token.reset_login();
        }
        Ok(())
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        let token = self.token(slot)?;
        let handles: Vec<_> = self
            .sessions
            .values()
            .into_iter()
            .filter(|s| s.token.slot_id == slot)
            .map(|s| s.handle)
            .collect();
        for h in handles {
            let _ = self.close_session(h);
        }
        token.reset_login();
        Ok(())
    }

    // ----- login -----

    /// C_Login / C_LoginUser (v3.0 §5.6). `user_name` names a crypto user.
    pub fn login(
        &self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
        user_name: Option<&[u8]>,
    ) -> Result<()> {
        let s = self.session(h)?;
        let role = match user_type {
            CKU_SO => Role::SecurityOfficer,
            CKU_USER => Role::User,
            CKU_CONTEXT_SPECIFIC => return Err(Error::OperationNotInitialized),
            _ => return Err(Error::UserTypeInvalid),
        };
        if role == Role::SecurityOfficer
            && self
                .sessions
                .any(|o| o.token.slot_id == s.token.slot_id && !o.rw)
        {
            return Err(Error::SessionReadOnlyExists);
        }
        // Crypto users (CloudHSM style): C_LoginUser names the user, C_Login
        // takes `name:password` when `name` is a crypto user of this token;
        // any other PIN is the default user's (or the SO's).
        match (role, user_name) {
            (_, Some(n)) => {
                let name = std::str::from_utf8(n)
                    .map_err(|_| Error::ArgumentsBad("user name is not UTF-8"))?;
                if role == Role::SecurityOfficer && !name.is_empty() {
                    return Err(Error::UserTypeInvalid);
                }
                s.token.login(role, name, pin)
            }
            (Role::User, None) => match token::addressed_user(pin) {
                Some((name, password)) => s.token.login(role, name, password),
                None => s.token.login(role, "", pin),
            },
            (_, None) => s.token.login(role, "", pin),
        }
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session(h)?;
        s.token.logout()?;
        // Operations of every session of this token end with the login.
        let sessions: Vec<_> = self
            .sessions
            .values()
            .into_iter()
            .filter(|o| o.token.slot_id == s.token.slot_id)
            .collect();
        for o in sessions {
            o.ops.lock().clear();
        }
        Ok(())
    }

    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        if s.state() != CKS_RW_SO_FUNCTIONS {
            return Err(Error::UserNotLoggedIn);
        }
        s.token.init_user_pin(pin)
    }

    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        s.require_rw()?;
        s.token.set_pin(old, new)
    }

    // ----- objects -----

    pub(crate) fn actor(s: &Session) -> Actor {
        Actor {
            is_so: s.token.user_type() == Some(CKU_SO),
        }
    }

    /// Object handle layout: token objects are `2 * id` (ids from the store,
    /// never reused), session objects odd numbers from a counter.
    pub fn token_handle(obj_id: i64) -> Result<CK_OBJECT_HANDLE> {
        obj_id
            .checked_mul(2)
            .and_then(|h| CK_OBJECT_HANDLE::try_from(h).ok())
            .ok_or_else(|| Error::general("object id does not fit a handle"))
    }

    /// Drops destroyed objects from every session's key cache, so that no
    /// copy of their key material outlives them there (the epoch already
    /// makes the entries unusable).
    fn forget_keys(&self, handles: &[CK_OBJECT_HANDLE]) {
        for session in self.sessions.values() {
            session.keys.lock().forget(handles);
        }
    }

    /// What a cached key's validity is checked against.
    pub(crate) fn key_stamp(&self) -> crate::session::KeyStamp {
        crate::session::KeyStamp {
            epoch: KEY_EPOCH.0.load(Ordering::Acquire),
            counter: self.store.change_counter(),
            ms: sys::coarse_monotonic_ms(),
        }
    }

    /// Finds the object a handle names, as visible from this session.
    pub fn resolve(&self, s: &Session, h: CK_OBJECT_HANDLE) -> Result<Resolved> {
        if h == CK_INVALID_HANDLE {
            return Err(Error::ObjectHandleInvalid);
        }
        if h % 2 == 1 {
            let objs = self.session_objects.read();
            let o = objs.get(&h).ok_or(Error::ObjectHandleInvalid)?;
            if o.token_id != s.token.token_id || !s.token.visible(&o.object) {
                return Err(Error::ObjectHandleInvalid);
            }
            crate::audit::note_key(h as u64, o.object.label());
            return Ok(Resolved {
                at: ObjectRef::Session { handle: h },
                object: o.object.clone(),
            });
        }
        let obj_id = i64::try_from(h / 2).map_err(|_| Error::ObjectHandleInvalid)?;
        let found = s.token.object(obj_id)?.ok_or(Error::ObjectHandleInvalid)?;
        crate::audit::note_key(h as u64, found.object.label());
        Ok(Resolved {
            at: ObjectRef::Token {
                obj_id,
                version: found.version,
            },
            object: found.object,
        })
    }

    /// Users an object is only shared with may use it, not destroy, modify,
    /// copy, export or re-share it (CloudHSM key sharing).
    pub(crate) fn check_owner(s: &Session, obj: &Object) -> Result<()> {
        if s.token.user_owns(obj) {
            Ok(())
        } else {
            Err(Error::ActionProhibited)
        }
    }

    /// Checks that this session may create or change an object like `obj`.
    fn check_write(s: &Session, obj: &Object) -> Result<()> {
        if obj.is_token() {
            s.require_rw()?;
        }
        if obj.is_private() && !s.token.user_logged_in() {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    /// Stores a new object (token or session) and returns its handle.
    pub fn store_new(&self, s: &Session, mut obj: Object) -> Result<CK_OBJECT_HANDLE> {
        Self::check_write(s, &obj)?;
        // CKA_UNIQUE_ID (v3.0 §4.4.1): assigned by the token, new for copies.
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| Error::general(format!("getrandom: {e}")))?;
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        obj.set(Attribute::new(
            CKA_UNIQUE_ID,
            crate::object::attr::Value::bytes(hex.into_bytes()),
        ));
        // The creating user owns the object (CKA_SR_OWNER, vendor-defined).
        if let Some(user) = s.token.user_name() {
            obj.set(Attribute::new(
                token::ownership::CKA_SR_OWNER,
                crate::object::attr::Value::bytes(user.into_bytes()),
            ));
        }
        if obj.is_token() {
            let id = s.token.insert_object(&obj)?;
            Self::token_handle(id)
        } else {
            let n = self.next_session_object.fetch_add(1, Ordering::Relaxed);
            let h = n
                .checked_mul(2)
                .and_then(|v| v.checked_add(1))
                .ok_or(Error::DeviceMemory)?;
            let h = CK_OBJECT_HANDLE::try_from(h).map_err(|_| Error::DeviceMemory)?;
            self.session_objects.write().insert(
                h,
                SessionObject {
                    session: s.handle,
                    token_id: s.token.token_id,
                    object: Arc::new(obj),
                },
            );
            Ok(h)
        }
    }

    fn parse_template(raw: &[RawAttribute]) -> Result<Vec<Attribute>> {
        raw.iter().map(RawAttribute::parse).collect()
    }

    /// C_CreateObject (v3.0 §5.7). Key material of imported keys is checked
    /// and completed by the mechanism layer.
    pub fn create_object(
        &self,
        h: CK_SESSION_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        let template = Self::parse_template(raw)?;
        let obj = rules::build(&template, &[], Origin::Create, Self::actor(&s))?;
        let obj = crate::mechanism::keys::complete_imported(obj)?;
        self.store_new(&s, obj)
    }

    pub fn copy_object(
        &self,
        h: CK_SESSION_HANDLE,
        src: CK_OBJECT_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        let template = Self::parse_template(raw)?;
        let found = self.resolve(&s, src)?;
        // A copy is a way out of the owner's control: only the owner copies.
        Self::check_owner(&s, &found.object)?;
        let obj = rules::modify(&found.object, &template, true, Self::actor(&s))?;
        self.store_new(&s, obj)
    }

    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<()> {
        let s = self.session(h)?;
        let found = self.resolve(&s, oh)?;
        if !found.object.bool_or(CKA_DESTROYABLE, true) {
            return Err(Error::ActionProhibited);
        }
        Self::check_owner(&s, &found.object)?;
        Self::check_write(&s, &found.object)?;
        self.prepared.write().remove(&oh);
        self.forget_keys(&[oh]);
        match found.at {
            ObjectRef::Session { handle } => {
                self.session_objects.write().remove(&handle);
                objects_changed();
            }
            ObjectRef::Token { obj_id, .. } => {
                if !s.token.delete_object(obj_id)? {
                    return Err(Error::ObjectHandleInvalid);
                }
            }
        }
        Ok(())
    }

    pub fn object_size(&self, h: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<usize> {
        let s = self.session(h)?;
        Ok(self.resolve(&s, oh)?.object.size())
    }

    /// C_GetAttributeValue: one result per requested type, in order.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        types: &[u64],
    ) -> Result<Vec<Result<Encoded>>> {
        let s = self.session(h)?;
        let found = self.resolve(&s, oh)?;
        let owner = Self::check_owner(&s, &found.object).is_ok();
        Ok(types
            .iter()
            .map(|t| {
                if !owner && !rules::readable_by_non_owner(&found.object, *t) {
                    return Err(Error::AttributeSensitive);
                }
                found.object.read(*t)
            })
            .collect())
    }

    /// C_SetAttributeValue (v3.0 §5.7).
    pub fn set_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<()> {
        let s = self.session(h)?;
        let template = Self::parse_template(raw)?;
        for _ in 0..100 {
            let found = self.resolve(&s, oh)?;
            Self::check_owner(&s, &found.object)?;
            let updated = rules::modify(&found.object, &template, false, Self::actor(&s))?;
            Self::check_write(&s, &found.object)?;
            match found.at {
                ObjectRef::Session { handle } => {
                    objects_changed();
                    if let Some(o) = self.session_objects.write().get_mut(&handle) {
                        o.object = Arc::new(updated);
                    }
                    return Ok(());
                }
                ObjectRef::Token { obj_id, version } => {
                    if s.token.update_object(obj_id, version, &updated)? {
                        return Ok(());
                    }
                    // Another process changed it first: redo on fresh data.
                }
            }
        }
        Err(Error::device("object kept changing under us"))
    }

    /// C_FindObjectsInit: the matching handles are collected now.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, raw: &[RawAttribute]) -> Result<()> {
        let s = self.session(h)?;
        // An unparsable template matches nothing rather than failing.
        let template: Option<Vec<Attribute>> = raw.iter().map(|a| a.parse().ok()).collect();
        crate::session::idle(&s.ops.lock().find)?;
        // The search runs without the session's lock (lock order: the
        // session-object table comes before a session's operations).
        let mut found = std::collections::VecDeque::new();
        if let Some(template) = template {
            for id in s.token.candidates(&template)? {
                match s.token.object(id) {
                    Ok(Some(o)) if o.object.matches(&template) => {
                        found.push_back(Self::token_handle(id)?)
                    }
                    Ok(_) => {}
                    // A damaged record is logged and skipped; the rest of the token works.
                    Err(Error::Tampered(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let objs = self.session_objects.read();
            let mut session_hits: Vec<_> = objs
                .iter()
                .filter(|(_, o)| {
                    o.token_id == s.token.token_id
                        && s.token.visible(&o.object)
                        && o.object.matches(&template)
                })
                .map(|(h, _)| *h)
                .collect();
            session_hits.sort_unstable();
            found.extend(session_hits);
        }
        let mut ops = s.ops.lock();
        crate::session::idle(&ops.find)?;
        ops.find = Some(FindOp { remaining: found });
        Ok(())
    }

    pub fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        let f = crate::session::active(&mut ops.find)?;
        let n = max.min(f.remaining.len());
        Ok(f.remaining.drain(..n).collect())
    }

    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        crate::session::active(&mut ops.find)?;
        ops.find = None;
        Ok(())
    }
}
