//! Operation state kept in a session between C_*Init and the final call, and
//! the per-mechanism computations on it. Nothing here touches a lock or a
//! store: a session's operation runs on data the session owns.

use super::keys::Prepared;
use crate::crypto::{self, AesMode, CipherCtx, DigestCtx, HashAlg, MacCtx};
use crate::error::{Error, Result};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Largest input buffered by single-part-only mechanisms driven through
/// C_*Update (RSA, raw ECDSA, EdDSA, GCM, key wrap).
const MAX_BUFFER: usize = 64 * 1024 * 1024;

fn buffer(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) -> Result<()> {
    if buf.len() + data.len() > MAX_BUFFER {
        return Err(Error::DataLenRange);
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// RSA encryption schemes.
#[derive(Clone)]
pub enum RsaScheme {
    Pkcs1,
    Oaep {
        hash: HashAlg,
        mgf: HashAlg,
        label: Vec<u8>,
    },
    Raw,
}

/// AES key wrap flavours (see docs/mechanisms.md for 0x210A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KwKind {
    /// RFC 3394, input a multiple of 8 bytes.
    Kw,
    /// RFC 5649.
    Kwp,
    /// CKM_AES_KEY_WRAP_PAD: wraps as RFC 5649 (as SoftHSM and nShield do);
    /// unwraps RFC 5649 or, failing that, PKCS#7-padded RFC 3394 (v3.0 text).
    Pad,
    /// CKM_AES_KEY_WRAP_PKCS7: PKCS#7 padding to 8 bytes, then RFC 3394.
    Pkcs7,
}

impl KwKind {
    pub fn wrapped_len(self, n: usize) -> usize {
        match self {
            KwKind::Kw => n + 8,
            KwKind::Kwp | KwKind::Pad => n.div_ceil(8).max(1) * 8 + 8,
            KwKind::Pkcs7 => (n / 8 + 1) * 8 + 8,
        }
    }

    pub fn wrap(self, kek: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let p = crypto::provider();
        let out = match self {
            KwKind::Kw => p.aes_kw_wrap(kek, data)?,
            KwKind::Kwp | KwKind::Pad => p.aes_kwp_wrap(kek, data)?,
            KwKind::Pkcs7 => {
                let pad = 8 - data.len() % 8;
                // Allocated at its final size: growing would leave a copy of
                // the key in freed memory. (`repeat_n` needs Rust 1.82 > MSRV.)
                let mut padded = Zeroizing::new(Vec::with_capacity(data.len() + pad));
                padded.extend_from_slice(data);
                padded.resize(data.len() + pad, pad as u8);
                p.aes_kw_wrap(kek, &padded)?
            }
        };
        Ok(Zeroizing::new(out))
    }

    pub fn unwrap(self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let p = crypto::provider();
        let pkcs7 = |kek: &[u8]| -> Result<Zeroizing<Vec<u8>>> {
            let mut v = p.aes_kw_unwrap(kek, wrapped)?;
            let pad = usize::from(*v.last().ok_or(Error::WrappedKeyInvalid)?);
            // The padding is checked after the RFC 3394 integrity check
            // passed, so its bytes are authentic: no oracle here.
            if pad == 0
                || pad > 8
                || pad > v.len()
                || !v[v.len() - pad..].iter().all(|b| usize::from(*b) == pad)
            {
                return Err(Error::WrappedKeyInvalid);
            }
            let n = v.len() - pad;
            v.truncate(n);
            Ok(v)
        };
        match self {
            KwKind::Kw => Ok(p.aes_kw_unwrap(kek, wrapped)?),
            KwKind::Kwp => Ok(p.aes_kwp_unwrap(kek, wrapped)?),
            KwKind::Pkcs7 => pkcs7(kek),
            // RFC 5649 first; the PKCS#7 reading is tried only where it can
            // apply, and a failure of both reports the RFC 5649 verdict.
            KwKind::Pad => match p.aes_kwp_unwrap(kek, wrapped) {
                Ok(v) => Ok(v),
                Err(e) => pkcs7(kek).map_err(|_| Error::from(e)),
            },
        }
    }
}

/// The engine of an encryption or decryption.
pub enum CipherEngine {
    /// AES ECB, CBC, CBC-PAD, CTR: streaming; `padded` for CBC-PAD.
    Stream {
        ctx: Box<dyn CipherCtx>,
        padded: bool,
    },
    /// AES-GCM: input buffered, output at the end (decryption releases
    /// plaintext only after the tag verified).
    Gcm {
        key: Zeroizing<Vec<u8>>,
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_len: usize,
        buf: Zeroizing<Vec<u8>>,
    },
    /// RSA: single-part.
    Rsa {
        key: Arc<Prepared>,
        scheme: RsaScheme,
        buf: Zeroizing<Vec<u8>>,
    },
    /// AES key wrap used as a cipher: single-part.
    KeyWrap {
        key: Zeroizing<Vec<u8>>,
        kind: KwKind,
        buf: Zeroizing<Vec<u8>>,
    },
}

/// An active encryption or decryption.
pub struct CipherOp {
    pub encrypt: bool,
    pub engine: CipherEngine,
    /// A result computed for a buffer that was too small (§5.2).
    pub pending: Option<Zeroizing<Vec<u8>>>,
    /// SHA-256 of the single-part input `pending` was computed from: a
    /// retry with other data computes afresh instead of answering for the
    /// old data.
    /// (A digest of the plaintext when encrypting: wiped like it.)
    pub pending_for: Option<Zeroizing<Vec<u8>>>,
    /// C_*Update was called: single-part calls are refused from now on.
    pub multi: bool,
    /// A single-part call asked for the length or got
    /// CKR_BUFFER_TOO_SMALL: update and final calls are refused from now on.
    pub single: bool,
}

impl CipherOp {
    pub fn new(encrypt: bool, engine: CipherEngine) -> CipherOp {
        CipherOp {
            encrypt,
            engine,
            pending: None,
            pending_for: None,
            multi: false,
            single: false,
        }
    }

    /// Output size for `n` input bytes in one call, and whether it is exact.
    pub fn oneshot_hint(&self, n: usize) -> (usize, bool) {
        match &self.engine {
            CipherEngine::Stream { padded: false, .. } => (n, true),
            // PKCS#7 always adds 1..=16 bytes; decryption removes an unknown amount.
            CipherEngine::Stream { padded: true, .. } if self.encrypt => ((n / 16 + 1) * 16, true),
            CipherEngine::Stream { padded: true, .. } => (n, false),
            CipherEngine::Gcm { tag_len, buf, .. } => {
                let total = buf.len() + n;
                if self.encrypt {
                    (total + tag_len, true)
                } else {
                    (total.saturating_sub(*tag_len), true)
                }
            }
            // Encryption output is exactly k; decryption at most k.
            CipherEngine::Rsa { key, .. } => (rsa_len(key), self.encrypt),
            CipherEngine::KeyWrap { kind, .. } => {
                if self.encrypt {
                    (kind.wrapped_len(n), true)
                } else {
                    (n.saturating_sub(8), false)
                }
            }
        }
    }

    /// The whole operation on `data` (C_Encrypt / C_Decrypt).
    pub fn oneshot(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match &mut self.engine {
            CipherEngine::Stream { ctx, .. } => {
                let mut work = ctx.box_clone();
                let mut out = work.update(data)?;
                out.extend_from_slice(&work.finalize()?);
                Ok(out)
            }
            // Single-part GCM works on the caller's data directly: no copy of
            // a large input into the buffer (the benchmark's 1 MiB case).
            CipherEngine::Gcm {
                key,
                iv,
                aad,
                tag_len,
                buf,
            } if buf.is_empty() => {
                let p = crypto::provider();
                if self.encrypt {
                    Ok(Zeroizing::new(p.gcm_encrypt(key, iv, aad, data, *tag_len)?))
                } else {
                    if data.len() < *tag_len {
                        return Err(Error::EncryptedDataLenRange);
                    }
                    Ok(p.gcm_decrypt(key, iv, aad, data, *tag_len)?)
                }
            }
            _ => {
                self.update_buffered(data)?;
                self.finish()
            }
        }
    }

    /// [`Self::oneshot`] written into `out` (at least the exact output
    /// length), for engines that can; `None` when this one cannot.
    pub fn oneshot_into(&mut self, data: &[u8], out: &mut [u8]) -> Result<Option<usize>> {
        match &self.engine {
            CipherEngine::Gcm {
                key,
                iv,
                aad,
                tag_len,
                buf,
            } if self.encrypt && buf.is_empty() => Ok(Some(
                crypto::provider().gcm_encrypt_into(key, iv, aad, data, *tag_len, out)?,
            )),
            _ => Ok(None),
        }
    }

    fn update_buffered(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.engine {
            CipherEngine::Gcm { buf, .. }
            | CipherEngine::Rsa { buf, .. }
            | CipherEngine::KeyWrap { buf, .. } => buffer(buf, data),
            CipherEngine::Stream { .. } => Err(Error::general("stream engines do not buffer")),
        }
    }

    /// Exact output size of an update of `n` bytes.
    pub fn update_len(&self, n: usize) -> usize {
        match &self.engine {
            CipherEngine::Stream { ctx, .. } => ctx.update_len(n),
            _ => 0,
        }
    }

    /// C_*Update: streams or buffers.
    pub fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.multi = true;
        match &mut self.engine {
            CipherEngine::Stream { ctx, .. } => Ok(ctx.update(data)?),
            CipherEngine::Rsa { .. } | CipherEngine::KeyWrap { .. } => {
                Err(Error::FunctionNotSupported)
            }
            _ => {
                self.update_buffered(data)?;
                Ok(Zeroizing::new(Vec::new()))
            }
        }
    }

    /// Output size hint of the final call.
    pub fn final_hint(&self) -> (usize, bool) {
        match &self.engine {
            CipherEngine::Stream { ctx, padded } => (ctx.final_len(), self.encrypt || !padded),
            _ => self.oneshot_hint(0),
        }
    }

    /// C_*Final. Computes on a copy for streams, so a short buffer keeps the
    /// operation intact.
    pub fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let encrypt = self.encrypt;
        let p = crypto::provider();
        match &mut self.engine {
            CipherEngine::Stream { ctx, .. } => Ok(ctx.box_clone().finalize()?),
            CipherEngine::Gcm {
                key,
                iv,
                aad,
                tag_len,
                buf,
            } => {
                if encrypt {
                    Ok(Zeroizing::new(p.gcm_encrypt(key, iv, aad, buf, *tag_len)?))
                } else {
                    if buf.len() < *tag_len {
                        return Err(Error::EncryptedDataLenRange);
                    }
                    Ok(p.gcm_decrypt(key, iv, aad, buf, *tag_len)?)
                }
            }
            CipherEngine::Rsa { key, scheme, buf } => rsa_crypt(key, scheme, encrypt, buf),
            CipherEngine::KeyWrap { key, kind, buf } => {
                if encrypt {
                    kind.wrap(key, buf)
                } else {
                    kind.unwrap(key, buf).map_err(|e| match e {
                        Error::WrappedKeyInvalid => Error::EncryptedDataInvalid,
                        Error::WrappedKeyLenRange => Error::EncryptedDataLenRange,
                        other => other,
                    })
                }
            }
        }
    }
}

fn rsa_len(key: &Prepared) -> usize {
    match key {
        Prepared::RsaPrivate(k) => k.modulus_len(),
        Prepared::RsaPublic(k) => k.modulus_len(),
        _ => 0,
    }
}

/// RSA encryption with a public key or decryption with a private key.
pub fn rsa_crypt(
    key: &Prepared,
    scheme: &RsaScheme,
    encrypt: bool,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    match (key, encrypt) {
        (Prepared::RsaPublic(k), true) => {
            let out = match scheme {
                RsaScheme::Pkcs1 => k.encrypt_pkcs1v15(data)?,
                RsaScheme::Oaep { hash, mgf, label } => k.encrypt_oaep(*hash, *mgf, label, data)?,
                RsaScheme::Raw => k.raw(data)?,
            };
            Ok(Zeroizing::new(out))
        }
        (Prepared::RsaPrivate(k), false) => {
            if data.len() != k.modulus_len() {
                return Err(Error::EncryptedDataLenRange);
            }
            Ok(match scheme {
                RsaScheme::Pkcs1 => k.decrypt_pkcs1v15(data)?,
                RsaScheme::Oaep { hash, mgf, label } => k.decrypt_oaep(*hash, *mgf, label, data)?,
                RsaScheme::Raw => k.raw(data)?,
            })
        }
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// An active digest.
pub struct DigestOp {
    pub ctx: Box<dyn DigestCtx>,
    pub multi: bool,
    /// As [`CipherOp::single`].
    pub single: bool,
}

/// How a signature is computed over the data.
pub enum SignKind {
    /// HMAC or CMAC, truncated to `len` for the _GENERAL forms. `None`
    /// once finalised (a MAC is computed only when the output fits, and that
    /// ends the operation, so the state is consumed rather than copied).
    Mac {
        ctx: Option<Box<dyn MacCtx>>,
        len: usize,
    },
    /// ECDSA over a digest (`hash` set) or over the data as the hash.
    Ecdsa {
        key: Arc<Prepared>,
        hash: Option<Box<dyn DigestCtx>>,
        field_len: usize,
    },
    /// RSA PKCS#1 v1.5 with a DigestInfo (`hash` set) or over raw data.
    RsaPkcs1 {
        key: Arc<Prepared>,
        hash: Option<(HashAlg, Box<dyn DigestCtx>)>,
    },
    /// RSA-PSS over a digest (`ctx` set) or over the given hash.
    RsaPss {
        key: Arc<Prepared>,
        hash: HashAlg,
        mgf: HashAlg,
        salt: usize,
        ctx: Option<Box<dyn DigestCtx>>,
    },
    /// Raw RSA (X.509).
    RsaRaw { key: Arc<Prepared> },
    /// Pure Ed25519 over the whole (buffered) message.
    Eddsa { key: Arc<Prepared> },
}

fn mac_state(ctx: &mut Option<Box<dyn MacCtx>>) -> Result<&mut Box<dyn MacCtx>> {
    ctx.as_mut().ok_or(Error::OperationNotInitialized)
}

/// An active signature, MAC or verification.
pub struct SignOp {
    pub kind: SignKind,
    /// Input of mechanisms that sign the data itself, not a running hash.
    pub buf: Zeroizing<Vec<u8>>,
    pub multi: bool,
    /// As [`CipherOp::single`].
    pub single: bool,
}

/// Verification keeps the same state as signing.
pub type VerifyOp = SignOp;

impl SignOp {
    pub fn new(kind: SignKind) -> SignOp {
        SignOp {
            kind,
            buf: Zeroizing::new(Vec::new()),
            multi: false,
            single: false,
        }
    }

    /// Signature length (exact; v3.0 §5.2 size queries need no computing).
    pub fn sig_len(&self) -> usize {
        match &self.kind {
            SignKind::Mac { len, .. } => *len,
            SignKind::Ecdsa { field_len, .. } => 2 * field_len,
            SignKind::RsaPkcs1 { key, .. }
            | SignKind::RsaPss { key, .. }
            | SignKind::RsaRaw { key } => rsa_len(key),
            SignKind::Eddsa { .. } => 64,
        }
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.kind {
            SignKind::Mac { ctx, .. } => mac_state(ctx)?.update(data),
            SignKind::Ecdsa { hash: Some(h), .. } => h.update(data),
            SignKind::RsaPkcs1 {
                hash: Some((_, h)), ..
            } => h.update(data),
            SignKind::RsaPss { ctx: Some(h), .. } => h.update(data),
            _ => buffer(&mut self.buf, data)?,
        }
        Ok(())
    }

    /// The bytes the private-key operation signs: a digest, a DigestInfo or
    /// the buffered data. Consumes running hashes.
    fn message(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let take =
            |h: &mut Option<Box<dyn DigestCtx>>| h.take().map(|h| Zeroizing::new(h.finalize()));
        Ok(match &mut self.kind {
            SignKind::Ecdsa { hash, .. } => take(hash).unwrap_or_else(|| self.buf.clone()),
            SignKind::RsaPss { ctx, .. } => take(ctx).unwrap_or_else(|| self.buf.clone()),
            SignKind::RsaPkcs1 { hash, .. } => match hash.take() {
                Some((alg, h)) => Zeroizing::new(alg.digest_info(&h.finalize())?),
                None => self.buf.clone(),
            },
            _ => self.buf.clone(),
        })
    }

    /// Computes the signature or MAC, ending the running state.
    pub fn sign(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        if let SignKind::Mac { ctx, len } = &mut self.kind {
            let mut full = ctx.take().ok_or(Error::OperationNotInitialized)?.finalize();
            full.truncate(*len);
            return Ok(full);
        }
        let msg = self.message()?;
        let out = match &self.kind {
            SignKind::Ecdsa { key, .. } => match &**key {
                Prepared::EcPrivate(k) => k.sign_prehashed(&msg)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::RsaPkcs1 { key, .. } => match &**key {
                Prepared::RsaPrivate(k) => k.sign_pkcs1v15(&msg)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::RsaPss {
                key,
                hash,
                mgf,
                salt,
                ..
            } => match &**key {
                Prepared::RsaPrivate(k) => k.sign_pss(*hash, *mgf, *salt, &msg)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::RsaRaw { key } => match &**key {
                Prepared::RsaPrivate(k) => k.raw(&msg)?.to_vec(),
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::Eddsa { key } => match &**key {
                Prepared::EdPrivate { seed, .. } => crypto::provider().ed25519_sign(seed, &msg)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::Mac { .. } => unreachable_mac(),
        };
        Ok(Zeroizing::new(out))
    }

    /// Checks a signature or MAC (constant time for MACs), ending the state.
    pub fn verify(&mut self, sig: &[u8]) -> Result<()> {
        if let SignKind::Mac { ctx, len } = &mut self.kind {
            if sig.len() != *len {
                return Err(Error::SignatureLenRange);
            }
            let full = ctx.take().ok_or(Error::OperationNotInitialized)?.finalize();
            return if crypto::ct_eq(&full[..*len], sig) {
                Ok(())
            } else {
                Err(Error::SignatureInvalid)
            };
        }
        if sig.len() != self.sig_len() {
            return Err(Error::SignatureLenRange);
        }
        let msg = self.message()?;
        match &self.kind {
            SignKind::Ecdsa { key, .. } => match &**key {
                Prepared::EcPublic(k) => k.verify_prehashed(&msg, sig)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::RsaPkcs1 { key, .. } => match &**key {
                Prepared::RsaPublic(k) => k.verify_pkcs1v15(&msg, sig)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::RsaPss {
                key,
                hash,
                mgf,
                salt,
                ..
            } => match &**key {
                Prepared::RsaPublic(k) => k.verify_pss(*hash, *mgf, *salt, &msg, sig)?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::RsaRaw { key } => match &**key {
                Prepared::RsaPublic(k) => {
                    let recovered = k.raw(sig)?;
                    let mut expected = vec![0u8; recovered.len().saturating_sub(msg.len())];
                    expected.extend_from_slice(&msg);
                    if !crypto::ct_eq(&recovered, &expected) {
                        return Err(Error::SignatureInvalid);
                    }
                }
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::Eddsa { key } => match &**key {
                Prepared::EdPublic(public) => crypto::provider()
                    .ed25519_verify(public, &msg, sig)
                    .map_err(|e| match e {
                        crypto::CryptoError::InvalidKey => {
                            Error::general("stored key material is invalid")
                        }
                        other => other.into(),
                    })?,
                _ => return Err(Error::KeyTypeInconsistent),
            },
            SignKind::Mac { .. } => unreachable_mac(),
        }
        Ok(())
    }
}

#[allow(clippy::panic)]
fn unreachable_mac() -> ! {
    // MACs return before this match; reaching here is a logic error that
    // the export macro turns into CKR_GENERAL_ERROR.
    panic!("MAC handled above")
}

/// An active message-based (v3.0 §5.13) AES-GCM encryption or decryption.
pub struct MessageOp {
    pub key: Zeroizing<Vec<u8>>,
    /// Messages encrypted with a token-made counter IV (never repeats).
    pub counter: u64,
    /// Fixed IV prefixes already used with a counter, to refuse reuse.
    pub used: std::collections::HashSet<Vec<u8>>,
    /// A message in progress (C_EncryptMessageBegin ... C_EncryptMessageNext
    /// with CKF_END_OF_MESSAGE).
    pub partial: Option<PartialMessage>,
}

/// A multi-part message: its parts are buffered and processed at the last
/// part (decryption releases plaintext only after the tag verified).
pub struct PartialMessage {
    pub iv: Vec<u8>,
    pub aad: Vec<u8>,
    pub tag_len: usize,
    pub buf: Zeroizing<Vec<u8>>,
}

/// AES mode for a streaming cipher mechanism.
pub fn aes_mode(ty: cryptoki_sys::CK_MECHANISM_TYPE, param: &super::Param) -> Result<AesMode> {
    use cryptoki_sys::*;
    let iv16 = |p: &super::Param| -> Result<[u8; 16]> {
        match p {
            super::Param::Bytes(b) => b
                .as_slice()
                .try_into()
                .map_err(|_| Error::MechanismParamInvalid),
            _ => Err(Error::MechanismParamInvalid),
        }
    };
    Ok(match ty {
        CKM_AES_ECB => AesMode::Ecb,
        CKM_AES_CBC => AesMode::Cbc { iv: iv16(param)? },
        CKM_AES_CBC_PAD => AesMode::CbcPad { iv: iv16(param)? },
        CKM_AES_CTR => match param {
            super::Param::Ctr {
                counter_bits,
                block,
            } => AesMode::Ctr {
                counter_block: *block,
                counter_bits: u32::try_from(*counter_bits)
                    .ok()
                    .filter(|b| (1..=128).contains(b))
                    .ok_or(Error::MechanismParamInvalid)?,
            },
            _ => return Err(Error::MechanismParamInvalid),
        },
        _ => return Err(Error::MechanismInvalid),
    })
}
