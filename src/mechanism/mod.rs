//! Mechanisms: parsed at the C boundary into typed values ([`Mechanism`]),
//! described by one table ([`table`]), authorised by one check
//! ([`authorize`]), and run by the operations in [`ops`].

pub mod keys;
pub mod ops;
pub mod run;

use cryptoki_sys::*;
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
    Ctr { counter_bits: u64, block: [u8; 16] },
    /// CK_GCM_PARAMS.
    Gcm { iv: Vec<u8>, iv_bits: u64, aad: Vec<u8>, tag_bits: u64 },
    /// CK_RSA_PKCS_OAEP_PARAMS (source 0 with no label is accepted, as
    /// pkcs11-tool 0.23 sends it).
    Oaep { hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, label: Vec<u8> },
    /// CK_RSA_PKCS_PSS_PARAMS.
    Pss { hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, salt_len: u64 },
    /// CK_ECDH1_DERIVE_PARAMS.
    Ecdh { kdf: CK_EC_KDF_TYPE, shared_data: Vec<u8>, public_data: Vec<u8> },
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
    Eddsa { prehash: bool, context: Vec<u8> },
    /// CK_GCM_MESSAGE_PARAMS of one C_EncryptMessage call.
    GcmMessage { iv: Vec<u8>, iv_fixed_bits: u64, generator: CK_GENERATOR_FUNCTION, tag_bits: u64 },
}

impl Mechanism {
    pub fn plain(ty: CK_MECHANISM_TYPE) -> Mechanism {
        Mechanism { ty, param: Param::None }
    }
}

/// What an output-producing call returns under the §5.2 convention: the
/// needed length (size query, operation stays active) or the data.
pub enum Output {
    Length(usize),
    Data(Zeroizing<Vec<u8>>),
}
