//! The token side: everything the service asks of the HSM, through PKCS#11
//! only (the `cryptoki` crate), so any PKCS#11 token can stand behind it.
//!
//! Data keys (DEKs) are kept only as `CKM_AES_KEY_WRAP_PAD` (0x210A, RFC 5649 in
//! Strongroom and SoftHSM) blobs
//! made under a master key that lives in the token (AES-256, sensitive,
//! never extractable).
//!
//! Reading a DEK's value (what MariaDB asks for) is `C_Decrypt` with the KWP
//! mechanism on the blob, and storing one is `C_Encrypt`. The output of RFC
//! 5649 is the same whether the token calls it a key wrap or an encryption, so
//! the blobs are interchangeable with `C_WrapKey`/`C_UnwrapKey`. We chose the
//! encrypt/decrypt pair for the value paths because it creates no object in
//! the token: an unwrap-then-read path would have to make the DEK a
//! non-sensitive, extractable session object, read `CKA_VALUE` and destroy it,
//! three calls instead of one and a window where a readable key object exists
//! for every other session of this login. The plaintext lands directly in a
//! `Zeroizing` buffer of this process, which needs it anyway to answer.
//!
//! Re-wrapping under a new master key (`RotateMaster`) is the other way: the
//! DEK is unwrapped with `C_UnwrapKey` into a *sensitive* session object and
//! wrapped again with `C_WrapKey` under the new master, so the plaintext never
//! leaves the token at all. The envelope operations of the KMS API
//! (`GenerateDataKey`/`Decrypt`) likewise unwrap the key id's DEK as a
//! sensitive, non-extractable session key and use it in the token.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::Path;
use zeroize::Zeroizing;

/// Why a token call failed: `Unavailable` becomes HTTP 503 (the token cannot
/// be reached, is not logged in, lost the session ...); `Failed` is an error
/// of the request itself (a corrupt blob, a missing master key).
#[derive(Debug)]
pub enum TokenError {
    Unavailable(String),
    Failed(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Unavailable(m) => write!(f, "token unavailable: {m}"),
            TokenError::Failed(m) => write!(f, "token operation failed: {m}"),
        }
    }
}
impl std::error::Error for TokenError {}

pub type TResult<T> = Result<T, TokenError>;

/// Return codes that say "the token/login/session is gone" rather than "this
/// request is wrong".
fn classify(what: &str, e: CkError) -> TokenError {
    let unavailable = match &e {
        CkError::Pkcs11(rv, _) => matches!(
            rv,
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::UserNotLoggedIn
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::DeviceRemoved
                | RvError::CryptokiNotInitialized
                | RvError::PinExpired
                | RvError::PinLocked
                | RvError::PinIncorrect
                | RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::HostMemory
                | RvError::SlotIdInvalid
        ),
        CkError::LibraryLoading(_) | CkError::NotSupported => true,
        _ => false,
    };
    let msg = format!("{what}: {e}");
    if unavailable {
        TokenError::Unavailable(msg)
    } else {
        TokenError::Failed(msg)
    }
}

/// The padded AES key wrap used for data keys: CKM_AES_KEY_WRAP_PAD
/// (0x210A), which Strongroom (and SoftHSM) implement as RFC 5649, the same
/// bytes as CKM_AES_KEY_WRAP_KWP. cryptoki 0.12 has a safe variant only for
/// 0x210A; since the service wraps and unwraps with the same token, any
/// token's reading of 0x210A round-trips.
fn kwp() -> Mechanism<'static> {
    Mechanism::AesKeyWrapPad
}

/// A logged-in connection to one token, re-established on demand.
pub struct Token {
    ctx: Pkcs11,
    label: String,
    pin: Zeroizing<String>,
    session: Option<Session>,
    handles: HashMap<String, ObjectHandle>,
    /// Set when the token said the PIN is wrong (or locked): no more login
    /// attempts, so a misconfigured service cannot lock the user PIN.
    pin_rejected: Option<String>,
}

impl Token {
    /// Loads and initialises the module. The token is looked up and logged in
    /// lazily (and again after any loss), so a service can start while the
    /// token is away and answer 503 until it is back.
    pub fn open(module: &Path, label: &str, pin: Zeroizing<String>) -> anyhow::Result<Token> {
        let ctx = Pkcs11::new(module)
            .map_err(|e| anyhow::anyhow!("loading PKCS#11 module {}: {e}", module.display()))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => anyhow::bail!("C_Initialize of {}: {e}", module.display()),
        }
        Ok(Token {
            ctx,
            label: label.to_string(),
            pin,
            session: None,
            handles: HashMap::new(),
            pin_rejected: None,
        })
    }

    fn find_slot(&self) -> TResult<Slot> {
        let slots = self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(|e| classify("C_GetSlotList", e))?;
        for slot in slots {
            if let Ok(info) = self.ctx.get_token_info(slot) {
                if info.label().trim_end() == self.label {
                    return Ok(slot);
                }
            }
        }
        Err(TokenError::Unavailable(format!(
            "no token labelled \"{}\"",
            self.label
        )))
    }

    /// The logged-in session, opened (and logged in) when there is none or
    /// the one we had is no longer a logged-in read/write session.
    pub fn session(&mut self) -> TResult<&Session> {
        let healthy = match &self.session {
            Some(s) => {
                matches!(s.get_session_info(), Ok(i) if matches!(i.session_state(), SessionState::RwUser))
            }
            None => false,
        };
        if !healthy {
            if let Some(m) = &self.pin_rejected {
                return Err(TokenError::Unavailable(m.clone()));
            }
            self.session = None;
            self.handles.clear();
            let slot = self.find_slot()?;
            let s = self
                .ctx
                .open_rw_session(slot)
                .map_err(|e| TokenError::Unavailable(format!("C_OpenSession: {e}")))?;
            let pin = AuthPin::from(self.pin.as_str().to_string());
            match s.login(UserType::User, Some(&pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => {
                    let msg = format!("C_Login: {e}");
                    if matches!(
                        e,
                        CkError::Pkcs11(
                            RvError::PinIncorrect | RvError::PinLocked | RvError::PinLenRange,
                            _
                        )
                    ) {
                        self.pin_rejected = Some(format!(
                            "{msg} (not retried: fix the PIN and restart the service)"
                        ));
                    }
                    return Err(TokenError::Unavailable(msg));
                }
            }
            self.session = Some(s);
        }
        Ok(self.session.as_ref().expect("session just set"))
    }

    /// Checks that the token is reachable and logged in (cheap: one
    /// `C_GetSessionInfo` when all is well).
    pub fn check(&mut self) -> TResult<()> {
        self.session().map(|_| ())
    }

    /// Runs `f` on the session; an error saying the session or login is gone
    /// drops the session so the next call reconnects.
    fn with<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> TResult<T> {
        let s = self.session()?;
        match f(s) {
            Ok(v) => Ok(v),
            Err(e) => {
                let err = classify(what, e);
                if matches!(err, TokenError::Unavailable(_)) {
                    self.session = None;
                    self.handles.clear();
                }
                Err(err)
            }
        }
    }

    /// `n` random bytes from the token's RNG.
    pub fn random(&mut self, n: usize) -> TResult<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(vec![0u8; n]);
        self.with("C_GenerateRandom", |s| s.generate_random_slice(&mut buf))?;
        Ok(buf)
    }

    fn find_label(&mut self, label: &str) -> TResult<Vec<ObjectHandle>> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        self.with("C_FindObjects", |s| s.find_objects(&template))
    }

    /// Whether the token holds an object with this label.
    pub fn has_label(&mut self, label: &str) -> TResult<bool> {
        Ok(!self.find_label(label)?.is_empty())
    }

    /// The handle of the secret key (master or HMAC key) labelled `label`.
    fn master(&mut self, label: &str) -> TResult<ObjectHandle> {
        if let Some(h) = self.handles.get(label) {
            return Ok(*h);
        }
        let found = self.find_label(label)?;
        match found.as_slice() {
            [h] => {
                self.handles.insert(label.to_string(), *h);
                Ok(*h)
            }
            [] => Err(TokenError::Failed(format!(
                "key \"{label}\" is not in the token"
            ))),
            _ => Err(TokenError::Failed(format!(
                "{} objects labelled \"{label}\" in the token",
                found.len()
            ))),
        }
    }

    /// Runs `f` with the handle of master `label`; a stale cached handle (the
    /// object went away, another process re-created it) is looked up again once.
    fn with_master<T>(
        &mut self,
        label: &str,
        what: &str,
        f: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> TResult<T> {
        let h = self.master(label)?;
        let first = {
            let s = self.session()?;
            f(s, h)
        };
        match first {
            Ok(v) => Ok(v),
            Err(CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)) => {
                self.handles.remove(label);
                let h = self.master(label)?;
                self.with(what, |s| f(s, h))
            }
            Err(e) => {
                let err = classify(what, e);
                if matches!(err, TokenError::Unavailable(_)) {
                    self.session = None;
                    self.handles.clear();
                }
                Err(err)
            }
        }
    }

    /// Generates a master key in the token: AES-256, token object, private,
    /// sensitive, never extractable, usable to wrap/unwrap and to
    /// encrypt/decrypt (KWP) data keys.
    pub fn create_master(&mut self, label: &str) -> TResult<()> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(label.as_bytes().to_vec()),
        ];
        let h = self.with("C_GenerateKey(CKM_AES_KEY_GEN)", |s| {
            s.generate_key(&Mechanism::AesKeyGen, &template)
        })?;
        self.handles.insert(label.to_string(), h);
        Ok(())
    }

    /// Generates an HMAC key in the token: CKK_GENERIC_SECRET (the key type
    /// every token accepts for HMAC; CKK_SHA256_HMAC is not universal), 32
    /// bytes, token object, private, sensitive, never extractable, usable
    /// only to sign and verify, and only with CKM_SHA256_HMAC.
    pub fn create_hmac(&mut self, label: &str) -> TResult<()> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::AllowedMechanisms(vec![MechanismType::SHA256_HMAC]),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(label.as_bytes().to_vec()),
        ];
        let h = self.with("C_GenerateKey(CKM_GENERIC_SECRET_KEY_GEN)", |s| {
            s.generate_key(&Mechanism::GenericSecretKeyGen, &template)
        })?;
        self.handles.insert(label.to_string(), h);
        Ok(())
    }

    /// HMAC-SHA256 of `data` with the token key `label` (`C_Sign`).
    pub fn mac(&mut self, label: &str, data: &[u8]) -> TResult<Vec<u8>> {
        self.with_master(label, "C_Sign(CKM_SHA256_HMAC)", |s, h| {
            s.sign(&Mechanism::Sha256Hmac, h, data)
        })
    }

    /// Whether `mac` is the HMAC-SHA256 of `data` under the token key
    /// `label`. The comparison is the token's (`C_Verify`, constant time in
    /// Strongroom); a wrong MAC or a MAC of the wrong length is `false`.
    pub fn verify_mac(&mut self, label: &str, data: &[u8], mac: &[u8]) -> TResult<bool> {
        self.with_master(label, "C_Verify(CKM_SHA256_HMAC)", |s, h| {
            match s.verify(&Mechanism::Sha256Hmac, h, data, mac) {
                Ok(()) => Ok(true),
                Err(CkError::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// KWP-encrypts `plain` under master `label` (`C_Encrypt`).
    pub fn wrap_bytes(&mut self, label: &str, plain: &[u8]) -> TResult<Vec<u8>> {
        self.with_master(label, "C_Encrypt(CKM_AES_KEY_WRAP_PAD)", |s, h| {
            s.encrypt(&kwp(), h, plain)
        })
    }

    /// KWP-decrypts `wrapped` under master `label` (`C_Decrypt`).
    pub fn unwrap_bytes(&mut self, label: &str, wrapped: &[u8]) -> TResult<Zeroizing<Vec<u8>>> {
        self.with_master(label, "C_Decrypt(CKM_AES_KEY_WRAP_PAD)", |s, h| {
            s.decrypt(&kwp(), h, wrapped)
        })
        .map(Zeroizing::new)
    }

    /// Template of a DEK unwrapped as a session object that stays in the
    /// token: sensitive, not extractable unless `extractable` (re-wrapping
    /// needs `C_WrapKey` to be allowed on it, which CKA_EXTRACTABLE governs).
    fn dek_template(extractable: bool) -> Vec<Attribute> {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(extractable),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ]
    }

    /// Re-wraps a DEK from master `old` to master `new` inside the token:
    /// `C_UnwrapKey` into a sensitive session object, `C_WrapKey` under the
    /// new master, `C_DestroyObject`.
    pub fn rewrap(&mut self, old: &str, new: &str, wrapped: &[u8]) -> TResult<Vec<u8>> {
        let new_h = self.master(new)?;
        let template = Self::dek_template(true);
        let tmp = self.with_master(old, "C_UnwrapKey(CKM_AES_KEY_WRAP_PAD)", |s, h| {
            s.unwrap_key(&kwp(), h, wrapped, &template)
        })?;
        let out = self.with("C_WrapKey(CKM_AES_KEY_WRAP_PAD)", |s| {
            s.wrap_key(&kwp(), new_h, tmp)
        });
        let _ = self.with("C_DestroyObject", |s| s.destroy_object(tmp));
        out
    }

    /// Envelope encryption inside the token: unwraps the DEK `wrapped` (under
    /// master `label`) as a sensitive, non-extractable session key and
    /// KWP-encrypts (`decrypt == false`) or -decrypts `data` with it.
    pub fn with_dek(
        &mut self,
        label: &str,
        wrapped: &[u8],
        data: &[u8],
        decrypt: bool,
    ) -> TResult<Zeroizing<Vec<u8>>> {
        let template = Self::dek_template(false);
        let tmp = self.with_master(label, "C_UnwrapKey(CKM_AES_KEY_WRAP_PAD)", |s, h| {
            s.unwrap_key(&kwp(), h, wrapped, &template)
        })?;
        let out = if decrypt {
            self.with("C_Decrypt(CKM_AES_KEY_WRAP_PAD)", |s| {
                s.decrypt(&kwp(), tmp, data)
            })
        } else {
            self.with("C_Encrypt(CKM_AES_KEY_WRAP_PAD)", |s| {
                s.encrypt(&kwp(), tmp, data)
            })
        };
        let _ = self.with("C_DestroyObject", |s| s.destroy_object(tmp));
        out.map(Zeroizing::new)
    }

    /// Drops the session (and with it the login of this process, when it
    /// was the last one).
    pub fn logout(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.logout();
        }
        self.handles.clear();
    }
}
