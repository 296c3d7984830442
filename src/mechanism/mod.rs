//! Mechanisms: parsed at the C boundary into typed values ([`Mechanism`]),
//! described by one table ([`table`]), authorised by one check
//! ([`authorize`]), and run by the operations in [`ops`].

pub mod keys;
pub mod ops;
pub mod pkcs8;
pub mod run;
pub mod table;

#[cfg(test)]
mod tests;

use crate::crypto::{CryptoError, HashAlg};
use crate::error::{Error, Result};
use crate::object::Object;
use cryptoki_sys::*;
use table::Family;
use zeroize::Zeroizing;

/// A mechanism with validated, owned parameters.
#[derive(Clone, Debug)]
pub struct Mechanism {
    pub ty: CK_MECHANISM_TYPE,
    pub param: Param,
}

/// Mechanism parameters, one variant per parameter structure (v3.0 §6).
#[derive(Clone, Debug)]
pub enum Param {
    None,
    /// Opaque bytes: an IV (CBC), an optional KW IV, EC params...
    Bytes(Vec<u8>),
    /// CK_MAC_GENERAL_PARAMS: the requested MAC length in bytes.
    MacLen(u64),
    /// CK_AES_CTR_PARAMS.
    Ctr {
        counter_bits: u64,
        block: [u8; 16],
    },
    /// CK_GCM_PARAMS.
    Gcm {
        iv: Vec<u8>,
        iv_bits: u64,
        aad: Vec<u8>,
        tag_bits: u64,
    },
    /// CK_RSA_PKCS_OAEP_PARAMS (source 0 with no label is accepted, as
    /// pkcs11-tool 0.23 sends it).
    Oaep {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        label: Vec<u8>,
    },
    /// CK_RSA_PKCS_PSS_PARAMS.
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: u64,
    },
    /// CK_ECDH1_DERIVE_PARAMS.
    Ecdh {
        kdf: CK_EC_KDF_TYPE,
        shared_data: Vec<u8>,
        public_data: Vec<u8>,
    },
    /// CK_HKDF_PARAMS.
    Hkdf {
        extract: bool,
        expand: bool,
        prf: CK_MECHANISM_TYPE,
        salt_type: CK_ULONG,
        salt: Zeroizing<Vec<u8>>,
        salt_key: CK_OBJECT_HANDLE,
        info: Vec<u8>,
    },
    /// CK_EDDSA_PARAMS.
    Eddsa {
        prehash: bool,
        context: Vec<u8>,
    },
    /// CK_GCM_MESSAGE_PARAMS of one C_EncryptMessage call.
    GcmMessage {
        iv: Vec<u8>,
        iv_fixed_bits: u64,
        generator: CK_GENERATOR_FUNCTION,
        tag_bits: u64,
    },
}

impl Mechanism {
    pub fn plain(ty: CK_MECHANISM_TYPE) -> Mechanism {
        Mechanism {
            ty,
            param: Param::None,
        }
    }
}

/// What an output-producing call returns under the §5.2 convention: the
/// needed length (size query, operation stays active) or the data.
pub enum Output {
    Length(usize),
    Data(Zeroizing<Vec<u8>>),
    /// This many bytes were written straight into the caller's buffer.
    Written(usize),
}

/// What a key is about to be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Derive,
    MessageEncrypt,
    MessageDecrypt,
}

impl Usage {
    fn attribute(self) -> CK_ATTRIBUTE_TYPE {
        match self {
            Usage::Encrypt | Usage::MessageEncrypt => CKA_ENCRYPT,
            Usage::Decrypt | Usage::MessageDecrypt => CKA_DECRYPT,
            Usage::Sign => CKA_SIGN,
            Usage::Verify => CKA_VERIFY,
            Usage::Wrap => CKA_WRAP,
            Usage::Unwrap => CKA_UNWRAP,
            Usage::Derive => CKA_DERIVE,
        }
    }

    fn flag(self) -> CK_FLAGS {
        match self {
            Usage::Encrypt => CKF_ENCRYPT,
            Usage::Decrypt => CKF_DECRYPT,
            Usage::Sign => CKF_SIGN,
            Usage::Verify => CKF_VERIFY,
            Usage::Wrap => CKF_WRAP,
            Usage::Unwrap => CKF_UNWRAP,
            Usage::Derive => CKF_DERIVE,
            Usage::MessageEncrypt => CKF_MESSAGE_ENCRYPT,
            Usage::MessageDecrypt => CKF_MESSAGE_DECRYPT,
        }
    }

    /// The object class the key must be for this usage and key family.
    fn class(self, family: Family) -> CK_OBJECT_CLASS {
        match (family, self) {
            (
                Family::Rsa | Family::Ec | Family::Edwards,
                Usage::Encrypt | Usage::Verify | Usage::Wrap,
            ) => CKO_PUBLIC_KEY,
            (Family::Rsa | Family::Ec | Family::Edwards, _) => CKO_PRIVATE_KEY,
            _ => CKO_SECRET_KEY,
        }
    }
}

/// The one authorisation check before a key is used (v3.0 §5.8ff, §4.7):
/// the mechanism supports the usage, the key's class and type fit the
/// mechanism, the key allows the usage, CKA_ALLOWED_MECHANISMS lists the
/// mechanism, and the key size is in the mechanism's range.
pub fn authorize(key: &Object, mech: &Mechanism, usage: Usage) -> Result<()> {
    let row = table::row_of(mech.ty).ok_or(Error::MechanismInvalid)?;
    if row.flags & usage.flag() == 0 {
        return Err(Error::MechanismInvalid);
    }
    let type_ok = matches!(
        (row.family, key.key_type()),
        (Family::Aes, Some(CKK_AES))
            // HMAC keys are generic secrets (v3.0 mechanisms §2.20-§2.25:
            // "The keys it uses are generic secret keys"); an AES key is
            // CKR_KEY_TYPE_INCONSISTENT.
            | (Family::Hmac, Some(CKK_GENERIC_SECRET))
            | (Family::Secret, Some(CKK_GENERIC_SECRET | CKK_AES))
            | (Family::Rsa, Some(CKK_RSA))
            | (Family::Ec, Some(CKK_EC))
            | (Family::Edwards, Some(CKK_EC_EDWARDS))
    );
    // The v2.40 HMAC key types (CKK_SHA256_HMAC, ...) serve the HMAC of
    // their own hash only.
    let type_ok = type_ok
        || (row.family == Family::Hmac
            && key
                .key_type()
                .is_some_and(|t| hmac_key_type(mech.ty) == Some(t)));
    if !type_ok || key.class() != usage.class(row.family) {
        return Err(Error::KeyTypeInconsistent);
    }
    if !key.bool(usage.attribute()) {
        return Err(Error::KeyFunctionNotPermitted);
    }
    if let Some(crate::object::attr::Value::Mechanisms(allowed)) =
        key.get(u64::from(CKA_ALLOWED_MECHANISMS))
    {
        if !allowed.is_empty() && !allowed.contains(&u64::from(mech.ty)) {
            return Err(Error::MechanismInvalid);
        }
    }
    let size = keys::key_size(key).ok_or(Error::KeyTypeInconsistent)?;
    if size < u64::from(row.min) || size > u64::from(row.max) {
        return Err(Error::KeySizeRange);
    }
    Ok(())
}

/// The v2.40 HMAC key type that goes with an HMAC mechanism.
fn hmac_key_type(ty: CK_MECHANISM_TYPE) -> Option<CK_KEY_TYPE> {
    Some(match ty {
        CKM_SHA_1_HMAC | CKM_SHA_1_HMAC_GENERAL => CKK_SHA_1_HMAC,
        CKM_SHA224_HMAC | CKM_SHA224_HMAC_GENERAL => CKK_SHA224_HMAC,
        CKM_SHA256_HMAC | CKM_SHA256_HMAC_GENERAL => CKK_SHA256_HMAC,
        CKM_SHA384_HMAC | CKM_SHA384_HMAC_GENERAL => CKK_SHA384_HMAC,
        CKM_SHA512_HMAC | CKM_SHA512_HMAC_GENERAL => CKK_SHA512_HMAC,
        _ => return None,
    })
}

/// The hash of a digest mechanism (or of a hash parameter such as OAEP's).
pub fn hash_of(ty: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match ty {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224 => HashAlg::Sha224,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

/// The hash of an MGF1 identifier (CKG_MGF1_*).
pub fn mgf_hash(mgf: CK_RSA_PKCS_MGF_TYPE) -> Option<HashAlg> {
    Some(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

/// Default mapping of crypto errors; callers refine it where the context
/// names a more precise code (unwrap, verify).
impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::KeySize => Error::KeySizeRange,
            CryptoError::InvalidKey => Error::KeyTypeInconsistent,
            CryptoError::DataLen => Error::DataLenRange,
            CryptoError::DataInvalid => Error::DataInvalid,
            CryptoError::EncryptedDataLen => Error::EncryptedDataLenRange,
            CryptoError::EncryptedDataInvalid => Error::EncryptedDataInvalid,
            CryptoError::SignatureInvalid => Error::SignatureInvalid,
            CryptoError::SignatureLen => Error::SignatureLenRange,
            CryptoError::WrappedKeyInvalid => Error::WrappedKeyInvalid,
            CryptoError::WrappedKeyLen => Error::WrappedKeyLenRange,
            CryptoError::ParamInvalid => Error::MechanismParamInvalid,
            CryptoError::Unsupported => Error::MechanismParamInvalid,
            CryptoError::Rng => Error::general("random number generator failed"),
            CryptoError::Internal(w) => Error::general(w),
        }
    }
}

/// The §5.2 convention for a one-shot output: answers size queries from
/// `hint` (exact when `exact`), computes once, and keeps a computed result
/// that did not fit in `pending` so the next call returns it. Returns the
/// output and whether the operation is finished.
pub fn two_call(
    cap: Option<usize>,
    hint: usize,
    exact: bool,
    pending: &mut Option<Zeroizing<Vec<u8>>>,
    compute: impl FnOnce() -> Result<Zeroizing<Vec<u8>>>,
) -> Result<(Output, bool)> {
    if let Some(p) = pending.as_ref() {
        let n = p.len();
        return match cap {
            None => Ok((Output::Length(n), false)),
            Some(c) if c >= n => Ok((Output::Data(pending.take().unwrap_or_default()), true)),
            Some(_) => Err(Error::BufferTooSmall { needed: n }),
        };
    }
    let cap = match cap {
        None => return Ok((Output::Length(hint), false)),
        Some(c) => c,
    };
    if exact && cap < hint {
        return Err(Error::BufferTooSmall { needed: hint });
    }
    let out = compute()?;
    if out.len() <= cap {
        Ok((Output::Data(out), true))
    } else {
        let n = out.len();
        *pending = Some(out);
        Err(Error::BufferTooSmall { needed: n })
    }
}
