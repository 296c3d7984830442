//! The cryptographic functions of v3.0 §5.8-5.18 on sessions.

use super::{Mechanism, Output, Param};
use crate::error::{Error, Result};
use crate::module::Module;
use crate::object::attr::RawAttribute;
use crate::session::Session;
use cryptoki_sys::*;

/// Which operation slot an error should end.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    Encrypt,
    Decrypt,
    Digest,
    Sign,
    Verify,
}

impl Module {
    /// After an error other than a size query, the operation ends (v3.0 §5.2:
    /// a call that returns an error other than CKR_BUFFER_TOO_SMALL ends it).
    pub fn end_on_error(&self, s: &Session, slot: Slot, r: Result<()>) -> Result<()> {
        if let Err(e) = &r {
            if !matches!(e, Error::BufferTooSmall { .. } | Error::OperationNotInitialized | Error::ArgumentsBad(_)) {
                Self::end(s, slot);
            }
        }
        r
    }

    /// C_Verify and C_VerifyFinal end the operation whatever the outcome.
    pub fn end_always(&self, s: &Session, slot: Slot, r: Result<()>) -> Result<()> {
        if !matches!(r, Err(Error::OperationNotInitialized)) {
            Self::end(s, slot);
        }
        r
    }

    fn end(s: &Session, slot: Slot) {
        let mut ops = s.ops.lock();
        match slot {
            Slot::Encrypt => ops.encrypt = None,
            Slot::Decrypt => ops.decrypt = None,
            Slot::Digest => ops.digest = None,
            Slot::Sign => ops.sign = None,
            Slot::Verify => ops.verify = None,
        }
    }

    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.slot_info(slot)?;
        Ok(Vec::new())
    }

    pub fn mechanism_info(&self, slot: CK_SLOT_ID, _ty: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
        self.slot_info(slot)?;
        Err(Error::MechanismInvalid)
    }

    pub fn crypt_init(&self, h: CK_SESSION_HANDLE, _encrypt: bool, _m: &Mechanism, _key: CK_OBJECT_HANDLE) -> Result<()> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn crypt(&self, _s: &Session, _encrypt: bool, _data: &[u8], _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn crypt_update(&self, _s: &Session, _encrypt: bool, _data: &[u8], _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn crypt_final(&self, _s: &Session, _encrypt: bool, _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn digest_init(&self, h: CK_SESSION_HANDLE, _m: &Mechanism) -> Result<()> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn digest(&self, _s: &Session, _data: &[u8], _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn digest_update(&self, _s: &Session, _data: &[u8]) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }
    pub fn digest_key(&self, _s: &Session, _key: CK_OBJECT_HANDLE) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }
    pub fn digest_final(&self, _s: &Session, _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn sign_init(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _key: CK_OBJECT_HANDLE) -> Result<()> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn sign(&self, _s: &Session, _data: &[u8], _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn sign_update(&self, _s: &Session, _data: &[u8]) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }
    pub fn sign_final(&self, _s: &Session, _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn verify_init(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _key: CK_OBJECT_HANDLE) -> Result<()> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn verify(&self, _s: &Session, _data: &[u8], _sig: &[u8]) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }
    pub fn verify_update(&self, _s: &Session, _data: &[u8]) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }
    pub fn verify_final(&self, _s: &Session, _sig: &[u8]) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }
    pub fn generate_key(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _t: &[RawAttribute]) -> Result<CK_OBJECT_HANDLE> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn generate_key_pair(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _p: &[RawAttribute], _s: &[RawAttribute]) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn wrap_key(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _w: CK_OBJECT_HANDLE, _k: CK_OBJECT_HANDLE, _cap: Option<usize>) -> Result<Output> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn unwrap_key(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _u: CK_OBJECT_HANDLE, _w: &[u8], _t: &[RawAttribute]) -> Result<CK_OBJECT_HANDLE> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn derive_key(&self, h: CK_SESSION_HANDLE, _m: &Mechanism, _b: CK_OBJECT_HANDLE, _t: &[RawAttribute]) -> Result<Option<CK_OBJECT_HANDLE>> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    pub fn session_cancel(&self, h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        if flags & CKF_FIND_OBJECTS != 0 { ops.find = None; }
        if flags & CKF_ENCRYPT != 0 { ops.encrypt = None; }
        if flags & CKF_DECRYPT != 0 { ops.decrypt = None; }
        if flags & CKF_DIGEST != 0 { ops.digest = None; }
        if flags & CKF_SIGN != 0 { ops.sign = None; }
        if flags & CKF_VERIFY != 0 { ops.verify = None; }
        if flags & CKF_MESSAGE_ENCRYPT != 0 { ops.message_encrypt = None; }
        if flags & CKF_MESSAGE_DECRYPT != 0 { ops.message_decrypt = None; }
        Ok(())
    }
    pub fn message_init(&self, h: CK_SESSION_HANDLE, _encrypt: bool, _m: &Mechanism, _key: CK_OBJECT_HANDLE) -> Result<()> {
        self.session(h)?;
        Err(Error::MechanismInvalid)
    }
    #[allow(clippy::type_complexity)]
    pub fn encrypt_message(&self, _s: &Session, _p: Param, _aad: &[u8], _pt: &[u8], _cap: Option<usize>) -> Result<(Output, Option<Vec<u8>>, Option<Vec<u8>>)> {
        Err(Error::OperationNotInitialized)
    }
    pub fn decrypt_message(&self, _s: &Session, _p: Param, _tag: &[u8], _aad: &[u8], _ct: &[u8], _cap: Option<usize>) -> Result<Output> {
        Err(Error::OperationNotInitialized)
    }
    pub fn message_final(&self, h: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        let slot = if encrypt { &mut ops.message_encrypt } else { &mut ops.message_decrypt };
        crate::session::active(slot)?;
        *slot = None;
        Ok(())
    }
}
