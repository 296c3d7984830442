//! Parses `CK_MECHANISM` and message parameters into typed values.

use super::{bytes_in, read_in, to_usize};
use crate::error::{Error, Result};
use crate::mechanism::{Mechanism, Param};
use cryptoki_sys::*;
use std::mem::size_of;
use zeroize::Zeroizing;

/// The CK_GCM_PARAMS layout of PKCS#11 v2.40 drafts without `ulIvBits`,
/// which some applications still send.
#[repr(C)]
#[derive(Clone, Copy)]
struct LegacyGcmParams {
    p_iv: *mut CK_BYTE,
    ul_iv_len: CK_ULONG,
    p_aad: *mut CK_BYTE,
    ul_aad_len: CK_ULONG,
    ul_tag_bits: CK_ULONG,
}

/// Reads a parameter structure of exactly `size_of::<T>()` bytes.
///
/// # Safety
/// `p` must point to `len` readable bytes.
unsafe fn param<T: Copy>(p: *const std::ffi::c_void, len: CK_ULONG) -> Result<T> {
    if p.is_null() || to_usize(len)? != size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL and `len == size_of::<T>()` readable bytes (caller).
    unsafe { read_in(p as *const T) }
}

/// Copies bytes of a parameter field; NULL with a length is a bad parameter.
///
/// # Safety
/// `p` must be NULL or point to `len` readable bytes.
unsafe fn field(p: *const CK_BYTE, len: CK_ULONG) -> Result<Vec<u8>> {
    // No parameter field (IV, AAD, label, salt, info...) is anywhere near
    // this long: a larger length is a mix-up of parameter structures, and
    // must not turn into a huge read or allocation.
    if to_usize(len)? > MAX_PARAM_FIELD {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: forwarded contract.
    unsafe { bytes_in(p, len) }
        .map(<[u8]>::to_vec)
        .map_err(|_| Error::MechanismParamInvalid)
}

/// Largest byte field accepted inside a mechanism parameter structure.
const MAX_PARAM_FIELD: usize = 16 * 1024 * 1024;

/// Parses only the mechanism type, for C_MessageEncryptInit and
/// C_MessageDecryptInit: their parameter (for AES-GCM a CK_GCM_MESSAGE_PARAMS,
/// the same size as CK_GCM_PARAMS) describes no message yet, and each
/// C_EncryptMessage call brings its own.
///
/// # Safety
/// `p` must be NULL or point to a `CK_MECHANISM`.
pub(crate) unsafe fn mechanism_type_in(p: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: forwarded contract.
    let m = unsafe { read_in(p)? };
    crate::audit::note_mechanism(u64::from(m.mechanism));
    Ok(Mechanism {
        ty: m.mechanism,
        param: Param::None,
    })
}

/// Parses an application's mechanism.
///
/// # Safety
/// `p` must be NULL or point to a `CK_MECHANISM` whose parameter pointers are
/// valid for their stated lengths.
pub(crate) unsafe fn mechanism_in(p: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: forwarded contract.
    let m = unsafe { read_in(p)? };
    crate::audit::note_mechanism(u64::from(m.mechanism));
    let (pp, len) = (m.pParameter as *const std::ffi::c_void, m.ulParameterLen);
    let ty = m.mechanism;
    let param = match ty {
        CKM_AES_CTR => {
            // SAFETY: forwarded contract.
            let c: CK_AES_CTR_PARAMS = unsafe { param(pp, len)? };
            Param::Ctr {
                counter_bits: u64::from(c.ulCounterBits),
                block: c.cb,
            }
        }
        CKM_AES_GCM => {
            if to_usize(len)? == size_of::<LegacyGcmParams>()
                && size_of::<LegacyGcmParams>() != size_of::<CK_GCM_PARAMS>()
            {
                // SAFETY: forwarded contract.
                let g: LegacyGcmParams = unsafe { param(pp, len)? };
                // SAFETY: pointers come with their lengths from the application.
                let iv = unsafe { field(g.p_iv, g.ul_iv_len)? };
                Param::Gcm {
                    iv_bits: (iv.len() as u64) * 8,
                    iv,
                    // SAFETY: as above.
                    aad: unsafe { field(g.p_aad, g.ul_aad_len)? },
                    tag_bits: u64::from(g.ul_tag_bits),
                }
            } else {
                // SAFETY: forwarded contract.
                let g: CK_GCM_PARAMS = unsafe { param(pp, len)? };
                Param::Gcm {
                    // SAFETY: pointers come with their lengths from the application.
                    iv: unsafe { field(g.pIv, g.ulIvLen)? },
                    iv_bits: u64::from(g.ulIvBits),
                    // SAFETY: as above.
                    aad: unsafe { field(g.pAAD, g.ulAADLen)? },
                    tag_bits: u64::from(g.ulTagBits),
                }
            }
        }
        CKM_RSA_PKCS_OAEP => {
            // SAFETY: forwarded contract.
            let o: CK_RSA_PKCS_OAEP_PARAMS = unsafe { param(pp, len)? };
            let label = match o.source {
                // pkcs11-tool 0.23 sends source 0 when there is no label.
                0 | CKZ_DATA_SPECIFIED => {
                    // SAFETY: pointer and length from the application.
                    unsafe { field(o.pSourceData as *const u8, o.ulSourceDataLen)? }
                }
                _ => return Err(Error::MechanismParamInvalid),
            };
            if o.source == 0 && !label.is_empty() {
                return Err(Error::MechanismParamInvalid);
            }
            Param::Oaep {
                hash: o.hashAlg,
                mgf: o.mgf,
                label,
            }
        }
        CKM_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => {
            // SAFETY: forwarded contract.
            let s: CK_RSA_PKCS_PSS_PARAMS = unsafe { param(pp, len)? };
            Param::Pss {
                hash: s.hashAlg,
                mgf: s.mgf,
                salt_len: u64::from(s.sLen),
            }
        }
        CKM_SHA_1_HMAC_GENERAL
        | CKM_SHA224_HMAC_GENERAL
        | CKM_SHA256_HMAC_GENERAL
        | CKM_SHA384_HMAC_GENERAL
        | CKM_SHA512_HMAC_GENERAL
        | CKM_AES_CMAC_GENERAL => {
            // SAFETY: forwarded contract.
            let l: CK_MAC_GENERAL_PARAMS = unsafe { param(pp, len)? };
            Param::MacLen(u64::from(l))
        }
        CKM_ECDH1_DERIVE => {
            // SAFETY: forwarded contract.
            let e: CK_ECDH1_DERIVE_PARAMS = unsafe { param(pp, len)? };
            Param::Ecdh {
                kdf: e.kdf,
                // SAFETY: pointers come with their lengths from the application.
                shared_data: unsafe { field(e.pSharedData, e.ulSharedDataLen)? },
                // SAFETY: as above.
                public_data: unsafe { field(e.pPublicData, e.ulPublicDataLen)? },
            }
        }
        CKM_HKDF_DERIVE | CKM_HKDF_DATA => {
            // SAFETY: forwarded contract.
            let h: CK_HKDF_PARAMS = unsafe { param(pp, len)? };
            Param::Hkdf {
                extract: h.bExtract != 0,
                expand: h.bExpand != 0,
                prf: h.prfHashMechanism,
                salt_type: h.ulSaltType,
                // SAFETY: pointers come with their lengths from the application.
                salt: Zeroizing::new(unsafe { field(h.pSalt, h.ulSaltLen)? }),
                salt_key: h.hSaltKey,
                // SAFETY: as above.
                info: unsafe { field(h.pInfo, h.ulInfoLen)? },
            }
        }
        CKM_EDDSA if !pp.is_null() && len != 0 => {
            // SAFETY: forwarded contract.
            let e: CK_EDDSA_PARAMS = unsafe { param(pp, len)? };
            Param::Eddsa {
                prehash: e.phFlag != 0,
                // SAFETY: pointer and length from the application.
                context: unsafe { field(e.pContextData, e.ulContextDataLen)? },
            }
        }
        _ => {
            // SAFETY: the parameter is `len` bytes (caller).
            let bytes = unsafe { field(pp as *const u8, len)? };
            if bytes.is_empty() {
                Param::None
            } else {
                Param::Bytes(bytes)
            }
        }
    };
    Ok(Mechanism { ty, param })
}

/// A message-based call's CK_GCM_MESSAGE_PARAMS with the application's
/// buffers for the IV (written when the token generates it) and the tag.
pub(crate) struct GcmMessageParams {
    pub raw: CK_GCM_MESSAGE_PARAMS,
}

impl GcmMessageParams {
    /// # Safety
    /// `p` must point to `len` readable bytes.
    pub(crate) unsafe fn read(p: *const std::ffi::c_void, len: CK_ULONG) -> Result<Self> {
        // SAFETY: forwarded contract.
        let raw: CK_GCM_MESSAGE_PARAMS = unsafe { param(p, len)? };
        Ok(GcmMessageParams { raw })
    }

    pub(crate) fn to_param(&self) -> Result<Param> {
        // SAFETY: pIv holds ulIvLen bytes per the PKCS#11 contract.
        let iv = unsafe { field(self.raw.pIv, self.raw.ulIvLen)? };
        Ok(Param::GcmMessage {
            iv,
            iv_fixed_bits: u64::from(self.raw.ulIvFixedBits),
            generator: self.raw.ivGenerator,
            tag_bits: u64::from(self.raw.ulTagBits),
        })
    }

    /// The tag the application passed (decrypt side).
    pub(crate) fn tag_in(&self) -> Result<Vec<u8>> {
        let n = self.raw.ulTagBits.div_ceil(8);
        // SAFETY: pTag holds ulTagBits/8 bytes per the PKCS#11 contract.
        unsafe { field(self.raw.pTag, n) }
    }

    /// Writes back a generated IV and the computed tag (encrypt side).
    pub(crate) fn write_back(&self, iv: Option<&[u8]>, tag: Option<&[u8]>) -> Result<()> {
        if let Some(iv) = iv {
            if self.raw.pIv.is_null() || to_usize(self.raw.ulIvLen)? != iv.len() {
                return Err(Error::MechanismParamInvalid);
            }
            // SAFETY: pIv holds ulIvLen == iv.len() writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(iv.as_ptr(), self.raw.pIv, iv.len()) };
        }
        if let Some(tag) = tag {
            if self.raw.pTag.is_null() {
                return Err(Error::MechanismParamInvalid);
            }
            // SAFETY: pTag holds ulTagBits/8 writable bytes, which is tag.len().
            unsafe { std::ptr::copy_nonoverlapping(tag.as_ptr(), self.raw.pTag, tag.len()) };
        }
        Ok(())
    }
}
