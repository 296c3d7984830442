//! Sessions (PKCS#11 v3.0 §5.6): read-only or read/write, their state derived
//! from the token's login, and one slot per kind of operation so that
//! "operation active" and "not initialized" come from one place.

use crate::error::{Error, Result};
use crate::mechanism::ops::{CipherOp, DigestOp, MessageOp, SignOp, VerifyOp};
use crate::token::Token;
use cryptoki_sys::*;
use parking_lot::Mutex;
use std::sync::Arc;

/// An active C_FindObjects search: the handles still to hand out.
pub struct FindOp {
    pub remaining: std::collections::VecDeque<CK_OBJECT_HANDLE>,
}

/// The operations a session can have active, one per kind.
#[derive(Default)]
pub struct Ops {
    pub find: Option<FindOp>,
    pub encrypt: Option<CipherOp>,
    pub decrypt: Option<CipherOp>,
    pub digest: Option<DigestOp>,
    pub sign: Option<SignOp>,
    pub verify: Option<VerifyOp>,
    pub message_encrypt: Option<MessageOp>,
    pub message_decrypt: Option<MessageOp>,
}

impl Ops {
    /// Ends every operation (C_SessionCancel with all flags, logout...).
    pub fn clear(&mut self) {
        *self = Ops::default();
    }
}

/// Takes the operation in `slot`, or `CKR_OPERATION_NOT_INITIALIZED`.
pub fn active<T>(slot: &mut Option<T>) -> Result<&mut T> {
    slot.as_mut().ok_or(Error::OperationNotInitialized)
}

/// Refuses to start an operation of a kind that is already active.
pub fn idle<T>(slot: &Option<T>) -> Result<()> {
    if slot.is_some() {
        Err(Error::OperationActive)
    } else {
        Ok(())
    }
}

/// One session.
pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub token: Arc<Token>,
    pub rw: bool,
    pub ops: Mutex<Ops>,
    /// Keys this session used lately (see [`KeyCache`]).
    pub keys: Mutex<KeyCache>,
}

/// When a cached key was resolved: the module's object/login epoch, the
/// store's change counter (other processes) and a coarse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStamp {
    pub epoch: u64,
    pub counter: u64,
    pub ms: u64,
}

impl KeyStamp {
    /// Whether a key resolved at `self` may still be used at `now`: nothing
    /// changed in this process or in the store, and at most a second passed
    /// (the token object cache's own staleness bound, for a writer killed
    /// between its commit and its counter bump).
    fn still_valid(&self, now: &KeyStamp) -> bool {
        self.epoch == now.epoch
            && self.counter == now.counter
            && now.ms.saturating_sub(self.ms) < 1000
    }
}

/// The last few keys a session resolved, each with a private copy of the
/// object. A repeated C_SignInit or C_WrapKey with the same key then finds it
/// here, under the session's own lock, instead of in the module's shared
/// tables: no shared lock word, no reference count that every thread using
/// the key increments, no visibility check against the shared login state.
/// Authorisation still runs on every use.
#[derive(Default)]
pub struct KeyCache {
    entries: Vec<CachedKey>,
    next: usize,
}

struct CachedKey {
    handle: CK_OBJECT_HANDLE,
    stamp: KeyStamp,
    /// The session's private copy.
    private: crate::module::Resolved,
    /// The shared object it was copied from: when the epoch moved for some
    /// other object (a destroyed data key, say), a fresh resolve that finds
    /// this very object again only renews the stamp.
    source: Arc<crate::object::Object>,
}

/// Keys remembered per session.
const CACHED_KEYS: usize = 4;

impl KeyCache {
    pub fn get(&self, h: CK_OBJECT_HANDLE, now: &KeyStamp) -> Option<crate::module::Resolved> {
        self.entries
            .iter()
            .find(|e| e.handle == h && e.stamp.still_valid(now))
            .map(|e| e.private.clone())
    }

    /// Drops the entries of these handles.
    pub fn forget(&mut self, handles: &[CK_OBJECT_HANDLE]) {
        self.entries.retain(|e| !handles.contains(&e.handle));
        self.next = 0;
    }

    /// Remembers a key resolved at `stamp` (taken before it was resolved)
    /// and returns the session's copy of it.
    pub fn put(
        &mut self,
        h: CK_OBJECT_HANDLE,
        stamp: KeyStamp,
        r: crate::module::Resolved,
    ) -> crate::module::Resolved {
        if let Some(e) = self.entries.iter_mut().find(|e| e.handle == h) {
            if Arc::ptr_eq(&e.source, &r.object) {
                e.stamp = stamp;
                e.private.at = r.at;
                return e.private.clone();
            }
        }
        let entry = CachedKey {
            handle: h,
            stamp,
            private: crate::module::Resolved {
                at: r.at.clone(),
                object: Arc::new((*r.object).clone()),
            },
            source: r.object,
        };
        let copy = entry.private.clone();
        if let Some(e) = self.entries.iter_mut().find(|e| e.handle == h) {
            *e = entry;
        } else if self.entries.len() < CACHED_KEYS {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % CACHED_KEYS;
        }
        copy
    }
}

impl Session {
    /// CKS_* state from the read/write flag and the token's login.
    pub fn state(&self) -> CK_STATE {
        match (self.token.user_type(), self.rw) {
            (None, false) => CKS_RO_PUBLIC_SESSION,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (Some(CKU_SO), _) => CKS_RW_SO_FUNCTIONS,
            (Some(_), false) => CKS_RO_USER_FUNCTIONS,
            (Some(_), true) => CKS_RW_USER_FUNCTIONS,
        }
    }

    pub fn info(&self) -> CK_SESSION_INFO {
        let mut flags = CKF_SERIAL_SESSION;
        if self.rw {
            flags |= CKF_RW_SESSION;
        }
        CK_SESSION_INFO {
            slotID: self.token.slot_id,
            state: self.state(),
            flags,
            ulDeviceError: 0,
        }
    }

    /// Writes to token objects need a read/write session.
    pub fn require_rw(&self) -> Result<()> {
        if self.rw {
            Ok(())
        } else {
            Err(Error::SessionReadOnly)
        }
    }
}
