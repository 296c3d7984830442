//! The cryptographic functions of v3.0 §5.8-5.18 on sessions: parse, check
//! with [`super::authorize`], set up an operation, run it under the §5.2
//! rules. Crypto runs under the calling session's own lock only.

use super::keys::{self, MacAlg, Prepared};
use super::ops::{
    self, CipherEngine, CipherOp, DigestOp, KwKind, MessageOp, RsaScheme, SignKind, SignOp,
};
use super::{authorize, hash_of, mgf_hash, table, two_call, Mechanism, Output, Param, Usage};
use crate::crypto::{self, HashAlg};
use crate::error::{Error, Result};
use crate::module::{Module, Resolved};
use crate::object::attr::{Attribute, RawAttribute, Value};
use crate::object::rules::{self, Origin};
use crate::object::Object;
use crate::session::{active, idle, Session};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Which operation slot an error should end.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    Encrypt,
    Decrypt,
    Digest,
    Sign,
    Verify,
}

const PREPARED_LIMIT: usize = 10_000;

fn ulong_in(template: &[Attribute], ty: CK_ATTRIBUTE_TYPE) -> Option<u64> {
    template
        .iter()
        .find_map(|a| match (&a.value, a.ty == u64::from(ty)) {
            (Value::Ulong(v), true) => Some(*v),
            _ => None,
        })
}

fn bytes_in(template: &[Attribute], ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    template
        .iter()
        .find_map(|a| match (&a.value, a.ty == u64::from(ty)) {
            (Value::Bytes(v), true) => Some(v.as_slice()),
            _ => None,
        })
}

fn ul(ty: CK_ATTRIBUTE_TYPE, v: u64) -> Attribute {
    Attribute::new(ty, Value::Ulong(v))
}

fn by(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Attribute {
    Attribute::new(ty, Value::bytes(v.to_vec()))
}

fn parse(raw: &[RawAttribute]) -> Result<Vec<Attribute>> {
    raw.iter().map(RawAttribute::parse).collect()
}

/// Adds a key's wrap/unwrap/derive template to an application template; a
/// conflicting value is `CKR_TEMPLATE_INCONSISTENT` (v3.0 §4.10, §5.18).
fn apply_template(template: &mut Vec<Attribute>, forced: Option<&Value>) -> Result<()> {
    if let Some(Value::Template(forced)) = forced {
        for f in forced {
            match template.iter().find(|a| a.ty == f.ty) {
                Some(a) if a.value != f.value => return Err(Error::TemplateInconsistent),
                Some(_) => {}
                None => template.push(f.clone()),
            }
        }
    }
    Ok(())
}

fn tag_len(tag_bits: u64) -> Result<usize> {
    match tag_bits {
        32 | 64 | 96 | 104 | 112 | 120 | 128 => Ok((tag_bits / 8) as usize),
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn oaep(param: &Param) -> Result<RsaScheme> {
    match param {
        Param::Oaep { hash, mgf, label } => Ok(RsaScheme::Oaep {
            hash: hash_of(*hash).ok_or(Error::MechanismParamInvalid)?,
            mgf: mgf_hash(*mgf).ok_or(Error::MechanismParamInvalid)?,
            label: label.clone(),
        }),
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn kw_kind(ty: CK_MECHANISM_TYPE) -> Option<KwKind> {
    Some(match ty {
        CKM_AES_KEY_WRAP => KwKind::Kw,
        CKM_AES_KEY_WRAP_KWP => KwKind::Kwp,
        CKM_AES_KEY_WRAP_PAD => KwKind::Pad,
        CKM_AES_KEY_WRAP_PKCS7 => KwKind::Pkcs7,
        _ => return None,
    })
}

fn secret_key(p: &Prepared) -> Result<&keys::SecretKey> {
    match p {
        Prepared::Secret(k) => Ok(k),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

fn secret_of(p: &Prepared) -> Result<&[u8]> {
    match p {
        Prepared::Secret(k) => Ok(k.value()),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

fn hmac_alg(ty: CK_MECHANISM_TYPE) -> Option<(HashAlg, bool)> {
    Some(match ty {
        CKM_SHA_1_HMAC => (HashAlg::Sha1, false),
        CKM_SHA224_HMAC => (HashAlg::Sha224, false),
        CKM_SHA256_HMAC => (HashAlg::Sha256, false),
        CKM_SHA384_HMAC => (HashAlg::Sha384, false),
        CKM_SHA512_HMAC => (HashAlg::Sha512, false),
        CKM_SHA_1_HMAC_GENERAL => (HashAlg::Sha1, true),
        CKM_SHA224_HMAC_GENERAL => (HashAlg::Sha224, true),
        CKM_SHA256_HMAC_GENERAL => (HashAlg::Sha256, true),
        CKM_SHA384_HMAC_GENERAL => (HashAlg::Sha384, true),
        CKM_SHA512_HMAC_GENERAL => (HashAlg::Sha512, true),
        _ => return None,
    })
}

/// The hash built into a hash-and-sign mechanism.
fn sign_hash(ty: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match ty {
        CKM_ECDSA_SHA1 | CKM_SHA1_RSA_PKCS | CKM_SHA1_RSA_PKCS_PSS => HashAlg::Sha1,
        CKM_ECDSA_SHA224 | CKM_SHA224_RSA_PKCS | CKM_SHA224_RSA_PKCS_PSS => HashAlg::Sha224,
        CKM_ECDSA_SHA256 | CKM_SHA256_RSA_PKCS | CKM_SHA256_RSA_PKCS_PSS => HashAlg::Sha256,
        CKM_ECDSA_SHA384 | CKM_SHA384_RSA_PKCS | CKM_SHA384_RSA_PKCS_PSS => HashAlg::Sha384,
        CKM_ECDSA_SHA512 | CKM_SHA512_RSA_PKCS | CKM_SHA512_RSA_PKCS_PSS => HashAlg::Sha512,
        _ => return None,
    })
}

fn mac_len(param: &Param, max: usize) -> Result<usize> {
    match param {
        Param::MacLen(n) if *n >= 1 && *n <= max as u64 => Ok(*n as usize),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// Update and final calls after a single-part call asked for its length (or
/// got CKR_BUFFER_TOO_SMALL) are refused with CKR_OPERATION_ACTIVE and, as
/// failed update and final calls, end the operation (v3.0 §5.8-§5.12: an
/// update "which results in an error" and a final call "always" terminate
/// it, CKR_BUFFER_TOO_SMALL and length queries excepted).
fn refuse_after_single<T>(slot: &mut Option<T>, single: impl Fn(&T) -> bool) -> Result<()> {
    if slot.as_ref().is_some_and(single) {
        *slot = None;
        return Err(Error::OperationActive);
    }
    Ok(())
}

impl Module {
    /// Runs one call of an active operation and ends the operation when the
    /// call fails (v3.0 §5.8-§5.12: C_Encrypt, C_EncryptFinal and their kin
    /// "always" terminate it unless they return CKR_BUFFER_TOO_SMALL or answer
    /// a length query; C_EncryptUpdate and its kin on any error) - bad
    /// arguments included. Left alone: CKR_OPERATION_NOT_INITIALIZED (there is
    /// none) and CKR_OPERATION_ACTIVE, a single-part call refused during a
    /// multi-part operation, which it "cannot be used to terminate"; update and
    /// final calls refused after a single-part call end it themselves
    /// ([`refuse_after_single`]). A panic, caught here, counts as an error, so
    /// no operation is left active behind a bug.
    pub fn end_on_error(
        &self,
        s: &Session,
        slot: Slot,
        call: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let r = Self::caught(call);
        if let Err(e) = &r {
            if !matches!(
                e,
                Error::BufferTooSmall { .. }
                    | Error::OperationNotInitialized
                    | Error::OperationActive
            ) {
                Self::end(s, slot);
            }
        }
        r
    }

    /// C_Verify and C_VerifyFinal end the operation whatever the outcome
    /// (v3.0 §5.12: "always terminates"), bad arguments included, except when
    /// there was none or C_Verify was refused during a multi-part operation.
    pub fn end_always(
        &self,
        s: &Session,
        slot: Slot,
        call: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let r = Self::caught(call);
        if !matches!(
            r,
            Err(Error::OperationNotInitialized | Error::OperationActive)
        ) {
            Self::end(s, slot);
        }
        r
    }

    /// C_EncryptInit, C_DecryptInit, C_DigestInit, C_SignInit and C_VerifyInit
    /// with a NULL mechanism end the active operation of their kind (v3.0
    /// §5.8-§5.12). With none active the NULL mechanism is a bad argument, as
    /// in v2.40.
    pub fn cancel(&self, h: CK_SESSION_HANDLE, slot: Slot) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        let was_active = match slot {
            Slot::Encrypt => ops.encrypt.take().is_some(),
            Slot::Decrypt => ops.decrypt.take().is_some(),
            Slot::Digest => ops.digest.take().is_some(),
            Slot::Sign => ops.sign.take().is_some(),
            Slot::Verify => ops.verify.take().is_some(),
        };
        if was_active {
            Ok(())
        } else {
            Err(Error::ArgumentsBad(
                "NULL mechanism with no active operation to cancel",
            ))
        }
    }

    fn caught(call: impl FnOnce() -> Result<()>) -> Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            .unwrap_or_else(|_| Err(Error::general("panic inside a cryptographic operation")))
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

    /// C_GetMechanismList: every row of the table.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.slot_info(slot)?;
        Ok(table::ROWS.iter().map(|r| r.ty).collect())
    }

    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        ty: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        self.slot_info(slot)?;
        let r = table::row_of(ty).ok_or(Error::MechanismInvalid)?;
        Ok(CK_MECHANISM_INFO {
            ulMinKeySize: r.min,
            ulMaxKeySize: r.max,
            flags: r.flags,
        })
    }

    /// Resolves a key handle for use; an unknown handle is `invalid`.
    /// A key for a cryptographic operation: from the session's cache of
    /// recently used keys while nothing changed, else resolved afresh.
    fn key(&self, s: &Session, h: CK_OBJECT_HANDLE, invalid: Error) -> Result<Resolved> {
        let now = self.key_stamp();
        if let Some(r) = s.keys.lock().get(h, &now) {
            crate::audit::note_key(h as u64, r.object.label());
            return Ok(r);
        }
        let r = self.resolve(s, h).map_err(|e| match e {
            Error::ObjectHandleInvalid => invalid,
            other => other,
        })?;
        Ok(s.keys.lock().put(h, now, r))
    }

    /// The provider-ready form of a key, parsed once per handle.
    fn prepared(&self, h: CK_OBJECT_HANDLE, obj: &Object) -> Result<Arc<Prepared>> {
        if let Some(p) = self.prepared.read().get(&h) {
            return Ok(p.clone());
        }
        let p = Arc::new(keys::prepare(obj)?);
        let mut cache = self.prepared.write();
        if cache.len() >= PREPARED_LIMIT {
            cache.clear();
        }
        cache.insert(h, p.clone());
        Ok(p)
    }

    // ----- encrypt / decrypt -----

    fn cipher_engine(
        &self,
        encrypt: bool,
        m: &Mechanism,
        h: CK_OBJECT_HANDLE,
        key: &Object,
    ) -> Result<CipherEngine> {
        let prepared = self.prepared(h, key)?;
        Ok(match m.ty {
            CKM_AES_ECB | CKM_AES_CBC | CKM_AES_CBC_PAD | CKM_AES_CTR => CipherEngine::Stream {
                ctx: crypto::provider().aes_cipher(
                    ops::aes_mode(m.ty, &m.param)?,
                    secret_of(&prepared)?,
                    encrypt,
                )?,
                padded: m.ty == CKM_AES_CBC_PAD,
            },
            CKM_AES_GCM => match &m.param {
                Param::Gcm {
                    iv, aad, tag_bits, ..
                } if !iv.is_empty() => CipherEngine::Gcm {
                    key: Zeroizing::new(secret_of(&prepared)?.to_vec()),
                    iv: iv.clone(),
                    aad: aad.clone(),
                    tag_len: tag_len(*tag_bits)?,
                    buf: Zeroizing::new(Vec::new()),
                },
                _ => return Err(Error::MechanismParamInvalid),
            },
            ty if kw_kind(ty).is_some() => CipherEngine::KeyWrap {
                key: Zeroizing::new(secret_of(&prepared)?.to_vec()),
                kind: kw_kind(ty).ok_or(Error::MechanismInvalid)?,
                buf: Zeroizing::new(Vec::new()),
            },
            CKM_RSA_PKCS => CipherEngine::Rsa {
                key: prepared,
                scheme: RsaScheme::Pkcs1,
                buf: Zeroizing::new(Vec::new()),
            },
            CKM_RSA_X_509 => CipherEngine::Rsa {
                key: prepared,
                scheme: RsaScheme::Raw,
                buf: Zeroizing::new(Vec::new()),
            },
            CKM_RSA_PKCS_OAEP => CipherEngine::Rsa {
                key: prepared,
                scheme: oaep(&m.param)?,
                buf: Zeroizing::new(Vec::new()),
            },
            _ => return Err(Error::MechanismInvalid),
        })
    }

    /// C_EncryptInit / C_DecryptInit.
    pub fn crypt_init(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let s = self.session(h)?;
        {
            let ops = s.ops.lock();
            idle(if encrypt { &ops.encrypt } else { &ops.decrypt })?;
        }
        let k = self.key(&s, key, Error::KeyHandleInvalid)?;
        authorize(
            &k.object,
            m,
            if encrypt {
                Usage::Encrypt
            } else {
                Usage::Decrypt
            },
        )?;
        let engine = self.cipher_engine(encrypt, m, key, &k.object)?;
        let mut ops = s.ops.lock();
        let slot = if encrypt {
            &mut ops.encrypt
        } else {
            &mut ops.decrypt
        };
        idle(slot)?;
        *slot = Some(CipherOp::new(encrypt, engine));
        Ok(())
    }

    /// C_Encrypt / C_Decrypt.
    pub fn crypt(
        &self,
        s: &Session,
        encrypt: bool,
        data: &[u8],
        cap: Option<usize>,
        direct: Option<&mut [u8]>,
    ) -> Result<Output> {
        let mut ops = s.ops.lock();
        let slot = if encrypt {
            &mut ops.encrypt
        } else {
            &mut ops.decrypt
        };
        let op = active(slot)?;
        if op.multi {
            return Err(Error::OperationActive);
        }
        op.single = true;
        let (hint, exact) = op.oneshot_hint(data.len());
        // Straight into the caller's buffer when it is big enough and the
        // engine can (single-part GCM encryption): no copy of the output.
        if let Some(out) = direct {
            if exact && op.pending.is_none() && out.len() >= hint {
                if let Some(n) = op.oneshot_into(data, out)? {
                    *slot = None;
                    return Ok(Output::Written(n));
                }
            }
        }
        // A result kept after CKR_BUFFER_TOO_SMALL answers only the same data.
        let fingerprint = |d: &[u8]| crypto::provider().digest(HashAlg::Sha256, d);
        if op.pending.is_some()
            && op.pending_for.as_deref().map(|d| &d[..]) != Some(&fingerprint(data)[..])
        {
            op.pending = None;
        }
        let had_pending = op.pending.is_some();
        let mut pending = op.pending.take();
        let r = two_call(cap, hint, exact, &mut pending, || op.oneshot(data));
        op.pending = pending;
        if op.pending.is_some() && !had_pending {
            op.pending_for = Some(Zeroizing::new(fingerprint(data)));
        }
        let (out, done) = r?;
        if done {
            *slot = None;
        }
        Ok(out)
    }

    /// C_EncryptUpdate / C_DecryptUpdate.
    pub fn crypt_update(
        &self,
        s: &Session,
        encrypt: bool,
        data: &[u8],
        cap: Option<usize>,
    ) -> Result<Output> {
        let mut ops = s.ops.lock();
        let slot = if encrypt {
            &mut ops.encrypt
        } else {
            &mut ops.decrypt
        };
        refuse_after_single(slot, |o| o.single)?;
        let op = active(slot)?;
        let n = op.update_len(data.len());
        match cap {
            None => Ok(Output::Length(n)),
            Some(c) if c < n => Err(Error::BufferTooSmall { needed: n }),
            Some(_) => Ok(Output::Data(op.update(data)?)),
        }
    }

    /// C_EncryptFinal / C_DecryptFinal.
    pub fn crypt_final(&self, s: &Session, encrypt: bool, cap: Option<usize>) -> Result<Output> {
        let mut ops = s.ops.lock();
        let slot = if encrypt {
            &mut ops.encrypt
        } else {
            &mut ops.decrypt
        };
        refuse_after_single(slot, |o| o.single)?;
        let op = active(slot)?;
        let (hint, exact) = op.final_hint();
        let mut pending = op.pending.take();
        let r = two_call(cap, hint, exact, &mut pending, || op.finish());
        op.pending = pending;
        let (out, done) = r?;
        if done {
            *slot = None;
        }
        Ok(out)
    }

    // ----- digest -----

    pub fn digest_init(&self, h: CK_SESSION_HANDLE, m: &Mechanism) -> Result<()> {
        let s = self.session(h)?;
        let alg = hash_of(m.ty).ok_or(Error::MechanismInvalid)?;
        if !matches!(m.param, Param::None) {
            return Err(Error::MechanismParamInvalid);
        }
        let mut ops = s.ops.lock();
        idle(&ops.digest)?;
        ops.digest = Some(DigestOp {
            ctx: crypto::provider().digest_ctx(alg),
            multi: false,
            single: false,
        });
        Ok(())
    }

    pub fn digest(&self, s: &Session, data: &[u8], cap: Option<usize>) -> Result<Output> {
        let mut ops = s.ops.lock();
        let op = active(&mut ops.digest)?;
        if op.multi {
            return Err(Error::OperationActive);
        }
        op.single = true;
        let len = op.ctx.alg().output_len();
        let (out, done) = two_call(cap, len, true, &mut None, || {
            let mut c = op.ctx.box_clone();
            c.update(data);
            Ok(Zeroizing::new(c.finalize()))
        })?;
        if done {
            ops.digest = None;
        }
        Ok(out)
    }

    pub fn digest_update(&self, s: &Session, data: &[u8]) -> Result<()> {
        let mut ops = s.ops.lock();
        refuse_after_single(&mut ops.digest, |o| o.single)?;
        let op = active(&mut ops.digest)?;
        op.multi = true;
        op.ctx.update(data);
        Ok(())
    }

    /// C_DigestKey: secret keys only (v3.0 §5.12).
    pub fn digest_key(&self, s: &Session, key: CK_OBJECT_HANDLE) -> Result<()> {
        {
            let mut ops = s.ops.lock();
            active(&mut ops.digest)?;
        }
        let k = self.key(s, key, Error::KeyHandleInvalid)?;
        if k.object.class() != CKO_SECRET_KEY {
            return Err(Error::KeyIndigestible);
        }
        let value = k
            .object
            .bytes(CKA_VALUE)
            .ok_or(Error::KeyIndigestible)?
            .to_vec();
        let value = Zeroizing::new(value);
        self.digest_update(s, &value)
    }

    pub fn digest_final(&self, s: &Session, cap: Option<usize>) -> Result<Output> {
        let mut ops = s.ops.lock();
        refuse_after_single(&mut ops.digest, |o| o.single)?;
        let op = active(&mut ops.digest)?;
        let len = op.ctx.alg().output_len();
        let (out, done) = two_call(cap, len, true, &mut None, || {
            Ok(Zeroizing::new(op.ctx.box_clone().finalize()))
        })?;
        if done {
            ops.digest = None;
        }
        Ok(out)
    }

    // ----- sign / verify / MAC -----

    fn sign_kind(&self, m: &Mechanism, h: CK_OBJECT_HANDLE, key: &Object) -> Result<SignKind> {
        let p = crypto::provider();
        let prepared = self.prepared(h, key)?;
        if let Some((alg, general)) = hmac_alg(m.ty) {
            let len = if general {
                mac_len(&m.param, alg.output_len())?
            } else {
                alg.output_len()
            };
            return Ok(SignKind::Mac {
                ctx: Some(secret_key(&prepared)?.mac(MacAlg::Hmac(alg))?),
                len,
            });
        }
        Ok(match m.ty {
            CKM_AES_CMAC => SignKind::Mac {
                ctx: Some(secret_key(&prepared)?.mac(MacAlg::Cmac)?),
                len: 16,
            },
            CKM_AES_CMAC_GENERAL => SignKind::Mac {
                ctx: Some(secret_key(&prepared)?.mac(MacAlg::Cmac)?),
                len: mac_len(&m.param, 16)?,
            },
            CKM_ECDSA | CKM_ECDSA_SHA1 | CKM_ECDSA_SHA224 | CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384
            | CKM_ECDSA_SHA512 => {
                let field_len = match &*prepared {
                    Prepared::EcPrivate(k) => k.curve().field_len(),
                    Prepared::EcPublic(k) => k.curve().field_len(),
                    _ => return Err(Error::KeyTypeInconsistent),
                };
                SignKind::Ecdsa {
                    key: prepared,
                    hash: sign_hash(m.ty).map(|a| p.digest_ctx(a)),
                    field_len,
                }
            }
            CKM_RSA_PKCS | CKM_SHA1_RSA_PKCS | CKM_SHA224_RSA_PKCS | CKM_SHA256_RSA_PKCS
            | CKM_SHA384_RSA_PKCS | CKM_SHA512_RSA_PKCS => SignKind::RsaPkcs1 {
                key: prepared,
                hash: sign_hash(m.ty).map(|a| (a, p.digest_ctx(a))),
            },
            CKM_RSA_X_509 => SignKind::RsaRaw { key: prepared },
            CKM_EDDSA => {
                // Pure Ed25519 only: Ed25519ph and Ed25519ctx are not offered.
                match &m.param {
                    Param::None => {}
                    Param::Eddsa {
                        prehash: false,
                        context,
                    } if context.is_empty() => {}
                    _ => return Err(Error::MechanismParamInvalid),
                }
                if !matches!(
                    &*prepared,
                    Prepared::EdPrivate { .. } | Prepared::EdPublic(_)
                ) {
                    return Err(Error::KeyTypeInconsistent);
                }
                SignKind::Eddsa { key: prepared }
            }
            CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS => {
                let (hash, mgf, salt) = match &m.param {
                    Param::Pss {
                        hash,
                        mgf,
                        salt_len,
                    } => (
                        hash_of(*hash).ok_or(Error::MechanismParamInvalid)?,
                        mgf_hash(*mgf).ok_or(Error::MechanismParamInvalid)?,
                        usize::try_from(*salt_len).map_err(|_| Error::MechanismParamInvalid)?,
                    ),
                    _ => return Err(Error::MechanismParamInvalid),
                };
                let builtin = sign_hash(m.ty);
                if builtin.is_some_and(|b| b != hash) {
                    return Err(Error::MechanismParamInvalid);
                }
                // RFC 8017 §9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits-1)/8).
                let mod_bits = match &*prepared {
                    Prepared::RsaPrivate(k) => k.modulus_bits(),
                    Prepared::RsaPublic(k) => k.modulus_bits(),
                    _ => return Err(Error::KeyTypeInconsistent),
                };
                let em_len = mod_bits.saturating_sub(1).div_ceil(8);
                if salt
                    .checked_add(hash.output_len() + 2)
                    .is_none_or(|need| need > em_len)
                {
                    return Err(Error::MechanismParamInvalid);
                }
                SignKind::RsaPss {
                    key: prepared,
                    hash,
                    mgf,
                    salt,
                    ctx: builtin.map(|a| p.digest_ctx(a)),
                }
            }
            _ => return Err(Error::MechanismInvalid),
        })
    }

    fn sign_or_verify_init(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
        usage: Usage,
    ) -> Result<()> {
        let s = self.session(h)?;
        let sign = usage == Usage::Sign;
        {
            let ops = s.ops.lock();
            idle(if sign { &ops.sign } else { &ops.verify })?;
        }
        let k = self.key(&s, key, Error::KeyHandleInvalid)?;
        authorize(&k.object, m, usage)?;
        let kind = self.sign_kind(m, key, &k.object)?;
        let mut ops = s.ops.lock();
        let slot = if sign { &mut ops.sign } else { &mut ops.verify };
        idle(slot)?;
        *slot = Some(SignOp::new(kind));
        Ok(())
    }

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.sign_or_verify_init(h, m, key, Usage::Sign)
    }

    pub fn sign(&self, s: &Session, data: &[u8], cap: Option<usize>) -> Result<Output> {
        let mut ops = s.ops.lock();
        let op = active(&mut ops.sign)?;
        if op.multi {
            return Err(Error::OperationActive);
        }
        op.single = true;
        let len = op.sig_len();
        let (out, done) = two_call(cap, len, true, &mut None, || {
            op.update(data)?;
            op.sign()
        })?;
        if done {
            ops.sign = None;
        }
        Ok(out)
    }

    pub fn sign_update(&self, s: &Session, data: &[u8]) -> Result<()> {
        let mut ops = s.ops.lock();
        refuse_after_single(&mut ops.sign, |o| o.single)?;
        let op = active(&mut ops.sign)?;
        op.multi = true;
        op.update(data)
    }

    pub fn sign_final(&self, s: &Session, cap: Option<usize>) -> Result<Output> {
        let mut ops = s.ops.lock();
        refuse_after_single(&mut ops.sign, |o| o.single)?;
        let op = active(&mut ops.sign)?;
        let len = op.sig_len();
        let (out, done) = two_call(cap, len, true, &mut None, || op.sign())?;
        if done {
            ops.sign = None;
        }
        Ok(out)
    }

    pub fn verify_init(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.sign_or_verify_init(h, m, key, Usage::Verify)
    }

    pub fn verify(&self, s: &Session, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut ops = s.ops.lock();
        let op = active(&mut ops.verify)?;
        if op.multi {
            return Err(Error::OperationActive);
        }
        op.update(data)?;
        op.verify(sig)
    }

    pub fn verify_update(&self, s: &Session, data: &[u8]) -> Result<()> {
        let mut ops = s.ops.lock();
        let op = active(&mut ops.verify)?;
        op.multi = true;
        op.update(data)
    }

    pub fn verify_final(&self, s: &Session, sig: &[u8]) -> Result<()> {
        let mut ops = s.ops.lock();
        active(&mut ops.verify)?.verify(sig)
    }

    // ----- key generation -----

    fn random(n: usize) -> Result<Zeroizing<Vec<u8>>> {
        let mut v = Zeroizing::new(vec![0u8; n]);
        crypto::provider().fill_random(&mut v)?;
        Ok(v)
    }

    /// Material attributes of a secret key value.
    fn secret_material(key_type: CK_KEY_TYPE, value: &[u8]) -> Result<Vec<Attribute>> {
        let mut m = vec![
            ul(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
            ul(CKA_KEY_TYPE, u64::from(key_type)),
            by(CKA_VALUE, value),
            ul(CKA_VALUE_LEN, value.len() as u64),
        ];
        if key_type == CKK_AES {
            m.push(by(CKA_CHECK_VALUE, &keys::aes_check_value(value)?));
        }
        Ok(m)
    }

    /// C_GenerateKey (v3.0 §5.18): AES and generic secret keys.
    pub fn generate_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        let template = parse(raw)?;
        let row = table::row_of(m.ty)
            .filter(|r| r.flags & CKF_GENERATE != 0)
            .ok_or(Error::MechanismInvalid)?;
        let key_type = match m.ty {
            CKM_AES_KEY_GEN => CKK_AES,
            // A generic secret, or one of the v2.40 HMAC key types when the
            // template names it.
            _ => match ulong_in(&template, CKA_KEY_TYPE) {
                Some(t) if rules::HMAC_KEY_TYPES.iter().any(|k| u64::from(*k) == t) => {
                    CK_KEY_TYPE::try_from(t).map_err(|_| Error::TemplateInconsistent)?
                }
                _ => CKK_GENERIC_SECRET,
            },
        };
        let len = ulong_in(&template, CKA_VALUE_LEN).ok_or(Error::TemplateIncomplete)?;
        let ok = match key_type {
            CKK_AES => matches!(len, 16 | 24 | 32),
            _ => len * 8 >= u64::from(row.min) && len * 8 <= u64::from(row.max),
        };
        if !ok {
            return Err(Error::KeySizeRange);
        }
        let value = Self::random(len as usize)?;
        let material = Self::secret_material(key_type, &value)?;
        let obj = rules::build(
            &template,
            &material,
            Origin::Generate { mechanism: m.ty },
            Self::actor(&s),
        )?;
        self.store_new(&s, obj)
    }

    /// CKA_EC_PARAMS of a key-pair template (public first, as the spec puts it).
    fn ec_params_of(pub_t: &[Attribute], priv_t: &[Attribute]) -> Result<Vec<u8>> {
        Ok(bytes_in(pub_t, CKA_EC_PARAMS)
            .or_else(|| bytes_in(priv_t, CKA_EC_PARAMS))
            .ok_or(Error::TemplateIncomplete)?
            .to_vec())
    }

    /// Material of an EC or Edwards key pair: the point (DER OCTET STRING) on
    /// both halves, the parameters and the private value on the private one.
    fn curve_pair_material(
        key_type: CK_KEY_TYPE,
        params: &[u8],
        private_value: &[u8],
        point: &[u8],
    ) -> (Vec<Attribute>, Vec<Attribute>) {
        let point_der = keys::ec_point_der(point);
        let kt = u64::from(key_type);
        (
            vec![
                ul(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
                ul(CKA_KEY_TYPE, kt),
                by(CKA_EC_POINT, &point_der),
            ],
            vec![
                ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
                ul(CKA_KEY_TYPE, kt),
                by(CKA_EC_PARAMS, params),
                by(CKA_VALUE, private_value),
                by(CKA_EC_POINT, &point_der),
            ],
        )
    }

    /// C_GenerateKeyPair (v3.0 §5.18): EC P-256/P-384, Ed25519 and RSA 2048-4096.
    pub fn generate_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        pub_raw: &[RawAttribute],
        priv_raw: &[RawAttribute],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let s = self.session(h)?;
        let (pub_t, priv_t) = (parse(pub_raw)?, parse(priv_raw)?);
        let p = crypto::provider();
        let (pub_m, priv_m) = match m.ty {
            CKM_EC_KEY_PAIR_GEN => {
                let params = Self::ec_params_of(&pub_t, &priv_t)?;
                let (scalar, point) = p.ec_generate(keys::curve_of(&params)?)?;
                Self::curve_pair_material(CKK_EC, &params, &scalar, &point)
            }
            CKM_EC_EDWARDS_KEY_PAIR_GEN => {
                let params = Self::ec_params_of(&pub_t, &priv_t)?;
                keys::edwards_curve_of(&params)?;
                let (seed, public) = p.ed25519_generate()?;
                Self::curve_pair_material(CKK_EC_EDWARDS, &params, &seed, &public)
            }
            CKM_RSA_PKCS_KEY_PAIR_GEN => {
                let bits = ulong_in(&pub_t, CKA_MODULUS_BITS).ok_or(Error::TemplateIncomplete)?;
                if !matches!(bits, 2048 | 3072 | 4096) {
                    return Err(Error::KeySizeRange);
                }
                let e = bytes_in(&pub_t, CKA_PUBLIC_EXPONENT).unwrap_or(&[1, 0, 1]);
                let e_trimmed: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
                if e_trimmed != [1, 0, 1] {
                    return Err(Error::TemplateInconsistent);
                }
                let parts = p.rsa_generate(bits as usize, &e_trimmed)?;
                let kt = u64::from(CKK_RSA);
                (
                    vec![
                        ul(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
                        ul(CKA_KEY_TYPE, kt),
                        by(CKA_MODULUS, &parts.n),
                        ul(CKA_MODULUS_BITS, bits),
                    ],
                    vec![
                        ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
                        ul(CKA_KEY_TYPE, kt),
                        by(CKA_MODULUS, &parts.n),
                        by(CKA_PUBLIC_EXPONENT, &parts.e),
                        by(CKA_PRIVATE_EXPONENT, &parts.d),
                        by(CKA_PRIME_1, &parts.p),
                        by(CKA_PRIME_2, &parts.q),
                        by(CKA_EXPONENT_1, &parts.dp),
                        by(CKA_EXPONENT_2, &parts.dq),
                        by(CKA_COEFFICIENT, &parts.qinv),
                    ],
                )
            }
            _ => return Err(Error::MechanismInvalid),
        };
        let mut pub_m = pub_m;
        if m.ty == CKM_RSA_PKCS_KEY_PAIR_GEN && bytes_in(&pub_t, CKA_PUBLIC_EXPONENT).is_none() {
            pub_m.push(by(CKA_PUBLIC_EXPONENT, &[1, 0, 1]));
        }
        let origin = Origin::Generate { mechanism: m.ty };
        let public = rules::build(&pub_t, &pub_m, origin, Self::actor(&s))?;
        let private = rules::build(&priv_t, &priv_m, origin, Self::actor(&s))?;
        let hp = self.store_new(&s, public)?;
        match self.store_new(&s, private) {
            Ok(hs) => Ok((hp, hs)),
            Err(e) => {
                // Do not leave half a pair behind.
                let _ = self.destroy_object(h, hp);
                Err(e)
            }
        }
    }

    // ----- wrap / unwrap -----

    /// The bytes a key is wrapped as: the value of a secret key, or a
    /// private key as unencrypted PKCS#8 PrivateKeyInfo DER (RSA, EC, Ed25519).
    fn wrappable_bytes(m: &Mechanism, key: &Object) -> Result<Zeroizing<Vec<u8>>> {
        match key.class() {
            CKO_SECRET_KEY => Ok(Zeroizing::new(
                key.bytes(CKA_VALUE).ok_or(Error::KeyNotWrappable)?.to_vec(),
            )),
            CKO_PRIVATE_KEY => {
                // Private keys only under mechanisms that take any length (or
                // plain RFC 3394 when the DER happens to be a multiple of 8).
                if !matches!(
                    m.ty,
                    CKM_AES_KEY_WRAP
                        | CKM_AES_KEY_WRAP_KWP
                        | CKM_AES_KEY_WRAP_PAD
                        | CKM_AES_KEY_WRAP_PKCS7
                        | CKM_AES_CBC_PAD
                        | CKM_AES_GCM
                ) {
                    return Err(Error::KeyNotWrappable);
                }
                keys::private_key_info(key)
            }
            _ => Err(Error::KeyNotWrappable),
        }
    }

    /// Output length of a wrap, exact; a key length the mechanism cannot take
    /// is `CKR_KEY_SIZE_RANGE` already here, so size queries fail like the
    /// real call.
    fn wrap_len(m: &Mechanism, kek: &Prepared, n: usize) -> Result<usize> {
        Ok(match m.ty {
            CKM_AES_KEY_WRAP if !n.is_multiple_of(8) || n < 16 => return Err(Error::KeySizeRange),
            ty if kw_kind(ty).is_some() => kw_kind(ty).map_or(0, |k| k.wrapped_len(n)),
            CKM_AES_CBC_PAD => (n / 16 + 1) * 16,
            CKM_AES_ECB | CKM_AES_CBC if !n.is_multiple_of(16) => return Err(Error::KeySizeRange),
            CKM_AES_ECB | CKM_AES_CBC => n,
            CKM_AES_GCM => match &m.param {
                Param::Gcm { tag_bits, .. } => n + tag_len(*tag_bits)?,
                _ => return Err(Error::MechanismParamInvalid),
            },
            CKM_RSA_PKCS | CKM_RSA_PKCS_OAEP => match kek {
                Prepared::RsaPublic(k) => k.modulus_len(),
                _ => return Err(Error::WrappingKeyTypeInconsistent),
            },
            _ => return Err(Error::MechanismInvalid),
        })
    }

    /// Encrypts key bytes under a wrapping mechanism.
    fn wrap_bytes(m: &Mechanism, kek: &Prepared, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let p = crypto::provider();
        Ok(match m.ty {
            ty if kw_kind(ty).is_some() => {
                let kind = kw_kind(ty).ok_or(Error::MechanismInvalid)?;
                if kind == KwKind::Kw && (!data.len().is_multiple_of(8) || data.len() < 16) {
                    return Err(Error::KeySizeRange);
                }
                kind.wrap(secret_of(kek)?, data)?
            }
            CKM_AES_CBC_PAD | CKM_AES_ECB | CKM_AES_CBC => {
                if m.ty != CKM_AES_CBC_PAD && !data.len().is_multiple_of(16) {
                    return Err(Error::KeySizeRange);
                }
                p.aes_oneshot(ops::aes_mode(m.ty, &m.param)?, secret_of(kek)?, true, data)?
            }
            CKM_AES_GCM => match &m.param {
                Param::Gcm {
                    iv, aad, tag_bits, ..
                } if !iv.is_empty() => Zeroizing::new(p.gcm_encrypt(
                    secret_of(kek)?,
                    iv,
                    aad,
                    data,
                    tag_len(*tag_bits)?,
                )?),
                _ => return Err(Error::MechanismParamInvalid),
            },
            // A key too long for the modulus is a key size error in C_WrapKey
            // (CKR_DATA_LEN_RANGE is not among its return values).
            CKM_RSA_PKCS => {
                ops::rsa_crypt(kek, &RsaScheme::Pkcs1, true, data).map_err(Self::key_too_long)?
            }
            CKM_RSA_PKCS_OAEP => {
                ops::rsa_crypt(kek, &oaep(&m.param)?, true, data).map_err(Self::key_too_long)?
            }
            _ => return Err(Error::MechanismInvalid),
        })
    }

    fn key_too_long(e: Error) -> Error {
        match e {
            Error::DataLenRange => Error::KeySizeRange,
            other => other,
        }
    }

    /// Decrypts a wrapped key; integrity and length failures are
    /// `CKR_WRAPPED_KEY_INVALID` / `CKR_WRAPPED_KEY_LEN_RANGE`.
    fn unwrap_bytes(m: &Mechanism, kek: &Prepared, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let p = crypto::provider();
        let r = match m.ty {
            ty if kw_kind(ty).is_some() => kw_kind(ty)
                .ok_or(Error::MechanismInvalid)
                .and_then(|k| k.unwrap(secret_of(kek)?, wrapped)),
            CKM_AES_CBC_PAD | CKM_AES_ECB | CKM_AES_CBC => ops::aes_mode(m.ty, &m.param)
                .and_then(|mode| Ok(p.aes_oneshot(mode, secret_of(kek)?, false, wrapped)?)),
            CKM_AES_GCM => match &m.param {
                Param::Gcm {
                    iv, aad, tag_bits, ..
                } if !iv.is_empty() => tag_len(*tag_bits)
                    .and_then(|t| Ok(p.gcm_decrypt(secret_of(kek)?, iv, aad, wrapped, t)?)),
                _ => return Err(Error::MechanismParamInvalid),
            },
            CKM_RSA_PKCS => ops::rsa_crypt(kek, &RsaScheme::Pkcs1, false, wrapped),
            CKM_RSA_PKCS_OAEP => ops::rsa_crypt(kek, &oaep(&m.param)?, false, wrapped),
            _ => return Err(Error::MechanismInvalid),
        };
        r.map_err(|e| match e {
            Error::EncryptedDataInvalid | Error::WrappedKeyInvalid | Error::DataInvalid => {
                Error::WrappedKeyInvalid
            }
            Error::EncryptedDataLenRange | Error::DataLenRange | Error::WrappedKeyLenRange => {
                Error::WrappedKeyLenRange
            }
            other => other,
        })
    }

    /// Maps errors about a key to the wrapping-key codes of C_WrapKey.
    fn as_wrapping(e: Error, unwrap: bool) -> Error {
        match (e, unwrap) {
            (Error::KeyTypeInconsistent, false) => Error::WrappingKeyTypeInconsistent,
            (Error::KeySizeRange, false) => Error::WrappingKeySizeRange,
            (Error::KeyTypeInconsistent, true) => Error::UnwrappingKeyTypeInconsistent,
            (Error::KeySizeRange, true) => Error::UnwrappingKeySizeRange,
            (other, _) => other,
        }
    }

    /// C_WrapKey (v3.0 §5.18): honours CKA_WRAP, CKA_EXTRACTABLE,
    /// CKA_WRAP_WITH_TRUSTED with CKA_TRUSTED, and CKA_WRAP_TEMPLATE.
    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        cap: Option<usize>,
    ) -> Result<Output> {
        let s = self.session(h)?;
        let wk = self.key(&s, wrapping, Error::WrappingKeyHandleInvalid)?;
        let k = self.key(&s, key, Error::KeyHandleInvalid)?;
        authorize(&wk.object, m, Usage::Wrap).map_err(|e| Self::as_wrapping(e, false))?;
        if !k.object.bool(CKA_EXTRACTABLE) {
            return Err(Error::KeyUnextractable);
        }
        // Wrapping exports: only the key's owner may, not users it is shared with.
        Self::check_owner(&s, &k.object).map_err(|_| Error::KeyUnextractable)?;
        if k.object.bool(CKA_WRAP_WITH_TRUSTED) && !wk.object.bool(CKA_TRUSTED) {
            return Err(Error::KeyNotWrappable);
        }
        if let Some(Value::Template(t)) = wk.object.get(u64::from(CKA_WRAP_TEMPLATE)) {
            if !k.object.matches(t) {
                return Err(Error::KeyNotWrappable);
            }
        }
        let kek = self.prepared(wrapping, &wk.object)?;
        let data = Self::wrappable_bytes(m, &k.object)?;
        let len = Self::wrap_len(m, &kek, data.len())?;
        let (out, _) = two_call(cap, len, true, &mut None, || {
            Self::wrap_bytes(m, &kek, &data)
        })?;
        if matches!(out, Output::Length(_)) {
            crate::audit::not_a_use();
        }
        Ok(out)
    }

    /// C_UnwrapKey (v3.0 §5.18): applies CKA_UNWRAP_TEMPLATE; the new key is
    /// never CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE. A CKO_PRIVATE_KEY
    /// template takes PKCS#8 PrivateKeyInfo DER (CKA_KEY_TYPE optional, else
    /// it must match the DER); bad DER is CKR_WRAPPED_KEY_INVALID.
    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        let uk = self.key(&s, unwrapping, Error::UnwrappingKeyHandleInvalid)?;
        authorize(&uk.object, m, Usage::Unwrap).map_err(|e| Self::as_wrapping(e, true))?;
        let mut template = parse(raw)?;
        apply_template(&mut template, uk.object.get(u64::from(CKA_UNWRAP_TEMPLATE)))?;
        let class = ulong_in(&template, CKA_CLASS).ok_or(Error::TemplateIncomplete)?;
        if class == u64::from(CKO_PRIVATE_KEY) {
            let kek = self.prepared(unwrapping, &uk.object)?;
            let der = Self::unwrap_bytes(m, &kek, wrapped)?;
            let obj = keys::unwrap_private_key(&der, &template, Self::actor(&s))?;
            if !obj.bool(CKA_TOKEN) {
                crate::audit::count_as_key_use();
            }
            return self.store_new(&s, obj);
        }
        if class != u64::from(CKO_SECRET_KEY) {
            return Err(Error::TemplateInconsistent);
        }
        let key_type = ulong_in(&template, CKA_KEY_TYPE).ok_or(Error::TemplateIncomplete)?;
        let key_type = CK_KEY_TYPE::try_from(key_type).map_err(|_| Error::AttributeValueInvalid)?;
        let kek = self.prepared(unwrapping, &uk.object)?;
        let mut value = Self::unwrap_bytes(m, &kek, wrapped)?;
        if let Some(want) = ulong_in(&template, CKA_VALUE_LEN) {
            let want = usize::try_from(want).map_err(|_| Error::TemplateInconsistent)?;
            // RFC 3394 input is padded with zeros to 8 bytes by some tokens
            // (SoftHSM): accept that padding when the template names the length.
            if m.ty == CKM_AES_KEY_WRAP
                && want < value.len()
                && value.len() - want < 8
                && value[want..].iter().all(|b| *b == 0)
            {
                value.truncate(want);
            }
        }
        if key_type == CKK_AES && !matches!(value.len(), 16 | 24 | 32) {
            return Err(Error::WrappedKeyInvalid);
        }
        if value.is_empty() {
            return Err(Error::WrappedKeyInvalid);
        }
        let material = Self::secret_material(key_type, &value)?;
        let obj = rules::build(&template, &material, Origin::Unwrap, Self::actor(&s))?;
        if !obj.bool(CKA_TOKEN) {
            crate::audit::count_as_key_use();
        }
        self.store_new(&s, obj)
    }

    // ----- derive -----

    /// C_DeriveKey (v3.0 §5.18): ECDH1 (CKD_NULL, CKD_SHA*_KDF) and HKDF.
    pub fn derive_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        base: CK_OBJECT_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<Option<CK_OBJECT_HANDLE>> {
        let s = self.session(h)?;
        let bk = self.key(&s, base, Error::KeyHandleInvalid)?;
        authorize(&bk.object, m, Usage::Derive)?;
        let mut template = parse(raw)?;
        apply_template(&mut template, bk.object.get(u64::from(CKA_DERIVE_TEMPLATE)))?;
        let p = crypto::provider();
        let prepared = self.prepared(base, &bk.object)?;
        let want_len = ulong_in(&template, CKA_VALUE_LEN)
            .map(|v| usize::try_from(v).map_err(|_| Error::TemplateInconsistent))
            .transpose()?;
        let key_type = match ulong_in(&template, CKA_KEY_TYPE) {
            Some(k) => CK_KEY_TYPE::try_from(k).map_err(|_| Error::AttributeValueInvalid)?,
            None => CKK_GENERIC_SECRET,
        };
        let default_len = |full: usize| match (want_len, key_type) {
            (Some(l), _) => Ok(l),
            (None, CKK_AES) => Err(Error::TemplateIncomplete),
            (None, _) => Ok(full),
        };
        let value: Zeroizing<Vec<u8>> = match (m.ty, &m.param) {
            (
                CKM_ECDH1_DERIVE,
                Param::Ecdh {
                    kdf,
                    shared_data,
                    public_data,
                },
            ) => {
                let Prepared::EcPrivate(k) = &*prepared else {
                    return Err(Error::KeyTypeInconsistent);
                };
                let z = k
                    .ecdh(keys::ec_point_raw(
                        public_data,
                        &keys::ec_raw_lens(k.curve()),
                    ))
                    .map_err(|_| Error::MechanismParamInvalid)?;
                match *kdf {
                    CKD_NULL => {
                        if !shared_data.is_empty() {
                            return Err(Error::MechanismParamInvalid);
                        }
                        let len = default_len(z.len())?;
                        if len > z.len() || len == 0 {
                            return Err(Error::TemplateInconsistent);
                        }
                        Zeroizing::new(z[..len].to_vec())
                    }
                    kdf => {
                        let alg = match kdf {
                            CKD_SHA1_KDF => HashAlg::Sha1,
                            CKD_SHA224_KDF => HashAlg::Sha224,
                            CKD_SHA256_KDF => HashAlg::Sha256,
                            CKD_SHA384_KDF => HashAlg::Sha384,
                            CKD_SHA512_KDF => HashAlg::Sha512,
                            _ => return Err(Error::MechanismParamInvalid),
                        };
                        let len = want_len.ok_or(Error::TemplateIncomplete)?;
                        p.x963_kdf(alg, &z, shared_data, len)?
                    }
                }
            }
            (
                CKM_HKDF_DERIVE | CKM_HKDF_DATA,
                Param::Hkdf {
                    extract,
                    expand,
                    prf,
                    salt_type,
                    salt,
                    salt_key,
                    info,
                },
            ) => {
                let alg = hash_of(*prf).ok_or(Error::MechanismParamInvalid)?;
                if !extract && !expand {
                    return Err(Error::MechanismParamInvalid);
                }
                let ikm = secret_of(&prepared)?;
                let prk = if *extract {
                    let salt: Zeroizing<Vec<u8>> = match *salt_type {
                        CKF_HKDF_SALT_NULL => Zeroizing::new(vec![0u8; alg.output_len()]),
                        CKF_HKDF_SALT_DATA => salt.clone(),
                        CKF_HKDF_SALT_KEY => {
                            let sk = self.key(&s, *salt_key, Error::MechanismParamInvalid)?;
                            if sk.object.class() != CKO_SECRET_KEY {
                                return Err(Error::MechanismParamInvalid);
                            }
                            Zeroizing::new(
                                sk.object
                                    .bytes(CKA_VALUE)
                                    .ok_or(Error::MechanismParamInvalid)?
                                    .to_vec(),
                            )
                        }
                        _ => return Err(Error::MechanismParamInvalid),
                    };
                    p.hkdf_extract(alg, &salt, ikm)?
                } else {
                    Zeroizing::new(ikm.to_vec())
                };
                if *expand {
                    let len = want_len.ok_or(Error::TemplateIncomplete)?;
                    p.hkdf_expand(alg, &prk, info, len)
                        .map_err(|_| Error::TemplateInconsistent)?
                } else {
                    let len = default_len(prk.len())?;
                    if len > prk.len() {
                        return Err(Error::TemplateInconsistent);
                    }
                    Zeroizing::new(prk[..len].to_vec())
                }
            }
            _ => return Err(Error::MechanismParamInvalid),
        };
        let origin = Origin::Derive {
            base_always_sensitive: bk.object.bool(CKA_ALWAYS_SENSITIVE),
            base_never_extractable: bk.object.bool(CKA_NEVER_EXTRACTABLE),
        };
        let obj = if m.ty == CKM_HKDF_DATA {
            template.retain(|a| a.ty != u64::from(CKA_VALUE_LEN));
            let material = vec![ul(CKA_CLASS, u64::from(CKO_DATA)), by(CKA_VALUE, &value)];
            rules::build(&template, &material, Origin::Create, Self::actor(&s))?
        } else {
            if key_type == CKK_AES && !matches!(value.len(), 16 | 24 | 32) {
                return Err(Error::TemplateInconsistent);
            }
            let material = Self::secret_material(key_type, &value)?;
            rules::build(&template, &material, origin, Self::actor(&s))?
        };
        self.store_new(&s, obj).map(Some)
    }

    // ----- session cancel and message-based encryption -----

    /// C_SessionCancel (v3.0 §5.6): ends the operations named by `flags`.
    pub fn session_cancel(&self, h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        if flags & CKF_FIND_OBJECTS != 0 {
            ops.find = None;
        }
        if flags & CKF_ENCRYPT != 0 {
            ops.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            ops.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            ops.digest = None;
        }
        if flags & CKF_SIGN != 0 {
            ops.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            ops.verify = None;
        }
        if flags & CKF_MESSAGE_ENCRYPT != 0 {
            ops.message_encrypt = None;
        }
        if flags & CKF_MESSAGE_DECRYPT != 0 {
            ops.message_decrypt = None;
        }
        Ok(())
    }

    /// C_MessageEncryptInit / C_MessageDecryptInit: AES-GCM.
    pub fn message_init(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let s = self.session(h)?;
        {
            let ops = s.ops.lock();
            idle(if encrypt {
                &ops.message_encrypt
            } else {
                &ops.message_decrypt
            })?;
        }
        if m.ty != CKM_AES_GCM {
            return Err(Error::MechanismInvalid);
        }
        let k = self.key(&s, key, Error::KeyHandleInvalid)?;
        authorize(
            &k.object,
            m,
            if encrypt {
                Usage::MessageEncrypt
            } else {
                Usage::MessageDecrypt
            },
        )?;
        let prepared = self.prepared(key, &k.object)?;
        let op = MessageOp {
            key: Zeroizing::new(secret_of(&prepared)?.to_vec()),
            counter: 0,
            used: Default::default(),
            partial: None,
        };
        let mut ops = s.ops.lock();
        let slot = if encrypt {
            &mut ops.message_encrypt
        } else {
            &mut ops.message_decrypt
        };
        idle(slot)?;
        *slot = Some(op);
        Ok(())
    }

    /// C_EncryptMessage with CK_GCM_MESSAGE_PARAMS. Returns the ciphertext,
    /// the IV when the token made it, and the tag. Token-made IVs are a fixed
    /// prefix from the application plus a counter (or random bytes); an IV
    /// is never used twice in one operation.
    #[allow(clippy::type_complexity)]
    pub fn encrypt_message(
        &self,
        s: &Session,
        param: Param,
        aad: &[u8],
        pt: &[u8],
        cap: Option<usize>,
    ) -> Result<(Output, Option<Vec<u8>>, Option<Vec<u8>>)> {
        let mut ops = s.ops.lock();
        let op = active(&mut ops.message_encrypt)?;
        let Param::GcmMessage {
            iv,
            iv_fixed_bits,
            generator,
            tag_bits,
        } = param
        else {
            return Err(Error::MechanismParamInvalid);
        };
        let tl = tag_len(tag_bits)?;
        match cap {
            None => return Ok((Output::Length(pt.len()), None, None)),
            Some(c) if c < pt.len() => return Err(Error::BufferTooSmall { needed: pt.len() }),
            _ => {}
        }
        let (iv, generated) = Self::message_iv(op, iv, iv_fixed_bits, generator)?;
        let mut ct = crypto::provider().gcm_encrypt(&op.key, &iv, aad, pt, tl)?;
        let tag = ct.split_off(ct.len() - tl);
        Ok((
            Output::Data(Zeroizing::new(ct)),
            generated.then_some(iv),
            Some(tag),
        ))
    }

    /// The IV of the next message: the application's, or one the token makes
    /// (fixed prefix + counter, or + random bytes). An IV is never used twice
    /// in one operation.
    fn message_iv(
        op: &mut MessageOp,
        iv: Vec<u8>,
        iv_fixed_bits: u64,
        generator: CK_GENERATOR_FUNCTION,
    ) -> Result<(Vec<u8>, bool)> {
        if iv.is_empty() {
            return Err(Error::MechanismParamInvalid);
        }
        let (iv, generated) = match generator {
            CKG_NO_GENERATE => (iv, false),
            CKG_GENERATE | CKG_GENERATE_COUNTER | CKG_GENERATE_RANDOM => {
                let fixed =
                    usize::try_from(iv_fixed_bits / 8).map_err(|_| Error::MechanismParamInvalid)?;
                if !iv_fixed_bits.is_multiple_of(8) || fixed >= iv.len() {
                    return Err(Error::MechanismParamInvalid);
                }
                let mut new_iv = iv[..fixed].to_vec();
                let free = iv.len() - fixed;
                if generator == CKG_GENERATE_RANDOM {
                    new_iv.extend_from_slice(&Self::random(free)?);
                } else {
                    let c = op.counter;
                    if free < 8 && c >> (free * 8) != 0 {
                        return Err(Error::MechanismParamInvalid);
                    }
                    let be = c.to_be_bytes();
                    let mut field = vec![0u8; free];
                    let take = free.min(8);
                    field[free - take..].copy_from_slice(&be[8 - take..]);
                    new_iv.extend_from_slice(&field);
                    op.counter = c.checked_add(1).ok_or(Error::MechanismParamInvalid)?;
                }
                (new_iv, true)
            }
            _ => return Err(Error::MechanismParamInvalid),
        };
        if !op.used.insert(iv.clone()) {
            // The same IV twice under one key breaks GCM: refuse.
            return Err(Error::MechanismParamInvalid);
        }
        Ok((iv, generated))
    }

    /// C_EncryptMessageBegin / C_DecryptMessageBegin: starts a multi-part
    /// message; returns the IV when the token made it.
    pub fn message_begin(
        &self,
        s: &Session,
        encrypt: bool,
        param: Param,
        aad: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let mut ops = s.ops.lock();
        let op = active(if encrypt {
            &mut ops.message_encrypt
        } else {
            &mut ops.message_decrypt
        })?;
        if op.partial.is_some() {
            return Err(Error::OperationActive);
        }
        let Param::GcmMessage {
            iv,
            iv_fixed_bits,
            generator,
            tag_bits,
        } = param
        else {
            return Err(Error::MechanismParamInvalid);
        };
        let tag_len = tag_len(tag_bits)?;
        let (iv, generated) = if encrypt {
            Self::message_iv(op, iv, iv_fixed_bits, generator)?
        } else if iv.is_empty() {
            return Err(Error::MechanismParamInvalid);
        } else {
            (iv, false)
        };
        op.partial = Some(ops::PartialMessage {
            iv: iv.clone(),
            aad: aad.to_vec(),
            tag_len,
            buf: Zeroizing::new(Vec::new()),
        });
        Ok(generated.then_some(iv))
    }

    /// C_EncryptMessageNext / C_DecryptMessageNext: buffers a part; with
    /// `end` (CKF_END_OF_MESSAGE) processes the message and, when encrypting,
    /// returns the tag. `tag` is the application's tag when decrypting.
    pub fn message_next(
        &self,
        s: &Session,
        encrypt: bool,
        part: &[u8],
        tag: &[u8],
        end: bool,
        cap: Option<usize>,
    ) -> Result<(Output, Option<Vec<u8>>)> {
        let mut ops = s.ops.lock();
        let op = active(if encrypt {
            &mut ops.message_encrypt
        } else {
            &mut ops.message_decrypt
        })?;
        let partial = op.partial.as_mut().ok_or(Error::OperationNotInitialized)?;
        if !end {
            if cap.is_some() {
                if partial.buf.len() + part.len() > 64 * 1024 * 1024 {
                    return Err(Error::DataLenRange);
                }
                partial.buf.extend_from_slice(part);
                return Ok((Output::Data(Zeroizing::new(Vec::new())), None));
            }
            return Ok((Output::Length(0), None));
        }
        let total = partial.buf.len() + part.len();
        match cap {
            None => return Ok((Output::Length(total), None)),
            Some(c) if c < total => return Err(Error::BufferTooSmall { needed: total }),
            _ => {}
        }
        let mut input = Zeroizing::new(Vec::with_capacity(total + partial.tag_len));
        input.extend_from_slice(&partial.buf);
        input.extend_from_slice(part);
        let p = crypto::provider();
        let result = if encrypt {
            p.gcm_encrypt(&op.key, &partial.iv, &partial.aad, &input, partial.tag_len)
                .map(|mut ct| {
                    let t = ct.split_off(ct.len() - partial.tag_len);
                    (Output::Data(Zeroizing::new(ct)), Some(t))
                })
        } else if tag.len() != partial.tag_len {
            op.partial = None;
            return Err(Error::MechanismParamInvalid);
        } else {
            input.extend_from_slice(tag);
            p.gcm_decrypt(&op.key, &partial.iv, &partial.aad, &input, partial.tag_len)
                .map(|pt| (Output::Data(pt), None))
        };
        op.partial = None;
        Ok(result?)
    }

    /// C_DecryptMessage with CK_GCM_MESSAGE_PARAMS.
    pub fn decrypt_message(
        &self,
        s: &Session,
        param: Param,
        tag: &[u8],
        aad: &[u8],
        ct: &[u8],
        cap: Option<usize>,
    ) -> Result<Output> {
        let mut ops = s.ops.lock();
        let op = active(&mut ops.message_decrypt)?;
        let Param::GcmMessage { iv, tag_bits, .. } = param else {
            return Err(Error::MechanismParamInvalid);
        };
        let tl = tag_len(tag_bits)?;
        match cap {
            None => return Ok(Output::Length(ct.len())),
            Some(c) if c < ct.len() => return Err(Error::BufferTooSmall { needed: ct.len() }),
            _ => {}
        }
        if tag.len() != tl || iv.is_empty() {
            return Err(Error::MechanismParamInvalid);
        }
        let mut input = Zeroizing::new(ct.to_vec());
        input.extend_from_slice(tag);
        Ok(Output::Data(
            crypto::provider().gcm_decrypt(&op.key, &iv, aad, &input, tl)?,
        ))
    }

    pub fn message_final(&self, h: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.ops.lock();
        let slot = if encrypt {
            &mut ops.message_encrypt
        } else {
            &mut ops.message_decrypt
        };
        active(slot)?;
        *slot = None;
        Ok(())
    }
}
