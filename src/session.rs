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
