//! The mechanism table: what C_GetMechanismList and C_GetMechanismInfo report,
//! and what [`super::authorize`] checks a key and a usage against. One row per
//! mechanism; nothing else in the crate lists mechanisms.

use cryptoki_sys::*;

/// Key families a mechanism accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// No key (digests).
    None,
    Aes,
    /// HMAC accepts generic secrets.
    Hmac,
    Rsa,
    Ec,
    /// Edwards curves (CKK_EC_EDWARDS): Ed25519 only.
    Edwards,
    /// Generic secret (HKDF base keys; AES keys accepted too).
    Secret,
}

/// One row of the table (v3.0 §5.5 CK_MECHANISM_INFO).
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub ty: CK_MECHANISM_TYPE,
    pub family: Family,
    pub min: CK_ULONG,
    pub max: CK_ULONG,
    pub flags: CK_FLAGS,
}

const ENC: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT;
const SIG: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const WRAP: CK_FLAGS = CKF_WRAP | CKF_UNWRAP;
const EC_CAPS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
/// Edwards keys name their curve by OID or by the printable string "edwards25519" (v3.0 §6.3.5).
const ED_CAPS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_CURVENAME;
/// Ed25519 key size in bits, as SoftHSM reports it (the field is 255 bits; the keys are 256).
pub const ED25519_BITS: CK_ULONG = 255;

const fn row(
    ty: CK_MECHANISM_TYPE,
    family: Family,
    min: CK_ULONG,
    max: CK_ULONG,
    flags: CK_FLAGS,
) -> Row {
    Row {
        ty,
        family,
        min,
        max,
        flags,
    }
}

/// Key sizes: bytes for AES, HMAC and HKDF keys, bits for RSA, EC, Edwards
/// and generic secret generation.
pub const ROWS: &[Row] = &[
    // Digests (§6.20ff).
    row(CKM_SHA_1, Family::None, 0, 0, CKF_DIGEST),
    row(CKM_SHA224, Family::None, 0, 0, CKF_DIGEST),
    row(CKM_SHA256, Family::None, 0, 0, CKF_DIGEST),
    row(CKM_SHA384, Family::None, 0, 0, CKF_DIGEST),
    row(CKM_SHA512, Family::None, 0, 0, CKF_DIGEST),
    // Key generation.
    row(CKM_AES_KEY_GEN, Family::Aes, 16, 32, CKF_GENERATE),
    row(
        CKM_GENERIC_SECRET_KEY_GEN,
        Family::Secret,
        1,
        512,
        CKF_GENERATE,
    ),
    row(
        CKM_EC_KEY_PAIR_GEN,
        Family::Ec,
        256,
        384,
        CKF_GENERATE_KEY_PAIR | EC_CAPS,
    ),
    row(
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        Family::Edwards,
        ED25519_BITS,
        ED25519_BITS,
        CKF_GENERATE_KEY_PAIR | ED_CAPS,
    ),
    row(
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        Family::Rsa,
        2048,
        4096,
        CKF_GENERATE_KEY_PAIR,
    ),
    // AES (§6.8ff). Key wrap also encrypts single-part, as the spec allows.
    row(CKM_AES_ECB, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_CBC, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_CBC_PAD, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_CTR, Family::Aes, 16, 32, ENC),
    row(
        CKM_AES_GCM,
        Family::Aes,
        16,
        32,
        ENC | WRAP | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT,
    ),
    row(CKM_AES_KEY_WRAP, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_KEY_WRAP_PAD, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_KEY_WRAP_KWP, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_KEY_WRAP_PKCS7, Family::Aes, 16, 32, ENC | WRAP),
    row(CKM_AES_CMAC, Family::Aes, 16, 32, SIG),
    row(CKM_AES_CMAC_GENERAL, Family::Aes, 16, 32, SIG),
    // HMAC (§6.20ff): key sizes in bytes.
    row(CKM_SHA_1_HMAC, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA_1_HMAC_GENERAL, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA224_HMAC, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA224_HMAC_GENERAL, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA256_HMAC, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA256_HMAC_GENERAL, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA384_HMAC, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA384_HMAC_GENERAL, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA512_HMAC, Family::Hmac, 1, 512, SIG),
    row(CKM_SHA512_HMAC_GENERAL, Family::Hmac, 1, 512, SIG),
    // RSA (§6.1).
    row(CKM_RSA_PKCS, Family::Rsa, 1024, 8192, ENC | SIG | WRAP),
    row(CKM_RSA_PKCS_OAEP, Family::Rsa, 1024, 8192, ENC | WRAP),
    row(CKM_RSA_X_509, Family::Rsa, 1024, 8192, ENC | SIG),
    row(CKM_RSA_PKCS_PSS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA1_RSA_PKCS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA224_RSA_PKCS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA256_RSA_PKCS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA384_RSA_PKCS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA512_RSA_PKCS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA1_RSA_PKCS_PSS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA224_RSA_PKCS_PSS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA256_RSA_PKCS_PSS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA384_RSA_PKCS_PSS, Family::Rsa, 1024, 8192, SIG),
    row(CKM_SHA512_RSA_PKCS_PSS, Family::Rsa, 1024, 8192, SIG),
    // EC (§6.3).
    row(CKM_ECDSA, Family::Ec, 256, 384, SIG | EC_CAPS),
    row(CKM_ECDSA_SHA1, Family::Ec, 256, 384, SIG | EC_CAPS),
    row(CKM_ECDSA_SHA224, Family::Ec, 256, 384, SIG | EC_CAPS),
    row(CKM_ECDSA_SHA256, Family::Ec, 256, 384, SIG | EC_CAPS),
    row(CKM_ECDSA_SHA384, Family::Ec, 256, 384, SIG | EC_CAPS),
    row(CKM_ECDSA_SHA512, Family::Ec, 256, 384, SIG | EC_CAPS),
    row(CKM_ECDH1_DERIVE, Family::Ec, 256, 384, CKF_DERIVE | EC_CAPS),
    // EdDSA (v3.0 §6.3.7): pure Ed25519.
    row(
        CKM_EDDSA,
        Family::Edwards,
        ED25519_BITS,
        ED25519_BITS,
        SIG | ED_CAPS,
    ),
    // HKDF (v3.0 §6.43).
    row(CKM_HKDF_DERIVE, Family::Secret, 1, 512, CKF_DERIVE),
    row(CKM_HKDF_DATA, Family::Secret, 1, 512, CKF_DERIVE),
];

/// The row for a mechanism, if this token supports it.
pub fn row_of(ty: CK_MECHANISM_TYPE) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.ty == ty)
}
