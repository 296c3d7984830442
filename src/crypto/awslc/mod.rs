//! The AWS-LC provider (`aws-lc-rs`, cargo feature `aws-lc`, on by default).
//!
//! It is the RustCrypto provider with the hot public-key operations moved to AWS-LC, and only
//! where AWS-LC offers exactly the same semantics through the safe `aws-lc-rs` API:
//!
//! | operation | AWS-LC when | otherwise |
//! | --- | --- | --- |
//! | ECDSA P-256/P-384 sign, verify (any hash length) | always | - |
//! | EC key generation | always | - |
//! | RSA PKCS#1 v1.5 sign / verify | data is a SHA-1 (verify only), SHA-256/384/512 `DigestInfo` | RustCrypto (raw data, SHA-224, SHA-1 sign) |
//! | RSA-PSS sign / verify | hash = MGF1 hash = SHA-256/384/512 and salt length = hash length | RustCrypto |
//! | RSA-OAEP decrypt / encrypt | hash = MGF1 hash = SHA-1/256/384/512 | RustCrypto |
//! | RSA PKCS#1 v1.5 encrypt | always | - |
//! | RSA PKCS#1 v1.5 decrypt | never: AWS-LC has no implicit rejection | RustCrypto |
//! | raw RSA (`CKM_RSA_X_509`) | never: not in the safe API | RustCrypto |
//! | RSA key generation | never: AWS-LC measured no faster here (see below) | RustCrypto |
//! | ECDH, Ed25519, hashes, MACs, AES, KDFs | never | RustCrypto |
//!
//! All RSA fast paths need a 2048..=8192-bit modulus (the range `aws-lc-rs` accepts); smaller
//! keys use RustCrypto for everything. Keys are always parsed by RustCrypto first, so key
//! validation and its errors are the RustCrypto provider's; the AWS-LC key is built from the
//! validated components, and if AWS-LC refuses a key that RustCrypto accepted (e.g. a public
//! exponent above 33 bits) that key silently uses RustCrypto. Input checks that yield errors
//! (lengths, parameters) are made before choosing a path, with the RustCrypto provider's
//! error values, so both providers return the same `CryptoError` for the same input.
//!
//! RSA key generation stays with RustCrypto: on the 2-core dev machine (release, 12 keys per
//! size) AWS-LC took 69 / 411 / 863 ms per 2048 / 3072 / 4096-bit key against RustCrypto's
//! 59 / 385 / 774 ms. `provider_throughput` in `tests.rs` times both again.

use super::rustcrypto::RUSTCRYPTO;
use super::{
    AesMode, CipherCtx, CryptoResult, Curve, DigestCtx, EcPrivateKey, EcPublicKey, HashAlg, MacCtx,
    Provider, RsaPrivateKey, RsaPrivateParts, RsaPublicKey, Zeroizing,
};

mod ec;
mod rsa;

#[cfg(test)]
mod tests;

/// The AWS-LC provider (stateless).
pub(crate) struct AwsLc;

/// The single provider instance.
pub(crate) static AWSLC: AwsLc = AwsLc;

impl Provider for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc"
    }

    fn fill_random(&self, buf: &mut [u8]) -> CryptoResult<()> {
        RUSTCRYPTO.fill_random(buf)
    }

    fn digest_ctx(&self, alg: HashAlg) -> Box<dyn DigestCtx> {
        RUSTCRYPTO.digest_ctx(alg)
    }

    fn digest(&self, alg: HashAlg, data: &[u8]) -> Vec<u8> {
        RUSTCRYPTO.digest(alg, data)
    }

    fn hmac(&self, alg: HashAlg, key: &[u8]) -> CryptoResult<Box<dyn MacCtx>> {
        RUSTCRYPTO.hmac(alg, key)
    }

    fn cmac_aes(&self, key: &[u8]) -> CryptoResult<Box<dyn MacCtx>> {
        RUSTCRYPTO.cmac_aes(key)
    }

    fn aes_cipher(
        &self,
        mode: AesMode,
        key: &[u8],
        encrypt: bool,
    ) -> CryptoResult<Box<dyn CipherCtx>> {
        RUSTCRYPTO.aes_cipher(mode, key, encrypt)
    }

    fn aes_oneshot(
        &self,
        mode: AesMode,
        key: &[u8],
        encrypt: bool,
        data: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.aes_oneshot(mode, key, encrypt, data)
    }

    fn gcm_encrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
    ) -> CryptoResult<Vec<u8>> {
        RUSTCRYPTO.gcm_encrypt(key, iv, aad, plaintext, tag_len)
    }

    fn gcm_encrypt_into(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
        out: &mut [u8],
    ) -> CryptoResult<usize> {
        RUSTCRYPTO.gcm_encrypt_into(key, iv, aad, plaintext, tag_len, out)
    }

    fn gcm_decrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
        tag_len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.gcm_decrypt(key, iv, aad, ciphertext_and_tag, tag_len)
    }

    fn aes_kw_wrap(&self, kek: &[u8], key_data: &[u8]) -> CryptoResult<Vec<u8>> {
        RUSTCRYPTO.aes_kw_wrap(kek, key_data)
    }

    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.aes_kw_unwrap(kek, wrapped)
    }

    fn aes_kwp_wrap(&self, kek: &[u8], key_data: &[u8]) -> CryptoResult<Vec<u8>> {
        RUSTCRYPTO.aes_kwp_wrap(kek, key_data)
    }

    fn aes_kwp_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.aes_kwp_unwrap(kek, wrapped)
    }

    fn ec_generate(&self, curve: Curve) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        ec::generate(curve)
    }

    fn ec_private(&self, curve: Curve, scalar: &[u8]) -> CryptoResult<Box<dyn EcPrivateKey>> {
        ec::private(curve, scalar)
    }

    fn ec_public(&self, curve: Curve, point: &[u8]) -> CryptoResult<Box<dyn EcPublicKey>> {
        ec::public(curve, point)
    }

    fn ec_public_from_private(&self, curve: Curve, scalar: &[u8]) -> CryptoResult<Vec<u8>> {
        RUSTCRYPTO.ec_public_from_private(curve, scalar)
    }

    fn ed25519_generate(&self) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        RUSTCRYPTO.ed25519_generate()
    }

    fn ed25519_public_from_seed(&self, seed: &[u8]) -> CryptoResult<Vec<u8>> {
        RUSTCRYPTO.ed25519_public_from_seed(seed)
    }

    fn ed25519_check_public(&self, public: &[u8]) -> CryptoResult<()> {
        RUSTCRYPTO.ed25519_check_public(public)
    }

    fn ed25519_sign(&self, seed: &[u8], msg: &[u8]) -> CryptoResult<Vec<u8>> {
        RUSTCRYPTO.ed25519_sign(seed, msg)
    }

    fn ed25519_verify(&self, public: &[u8], msg: &[u8], sig: &[u8]) -> CryptoResult<()> {
        RUSTCRYPTO.ed25519_verify(public, msg, sig)
    }

    fn rsa_generate(&self, bits: usize, public_exponent: &[u8]) -> CryptoResult<RsaPrivateParts> {
        RUSTCRYPTO.rsa_generate(bits, public_exponent)
    }

    fn rsa_private(&self, parts: &RsaPrivateParts) -> CryptoResult<Box<dyn RsaPrivateKey>> {
        rsa::private(parts)
    }

    fn rsa_public(&self, n: &[u8], e: &[u8]) -> CryptoResult<Box<dyn RsaPublicKey>> {
        rsa::public(n, e)
    }

    fn hkdf_extract(
        &self,
        alg: HashAlg,
        salt: &[u8],
        ikm: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.hkdf_extract(alg, salt, ikm)
    }

    fn hkdf_expand(
        &self,
        alg: HashAlg,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.hkdf_expand(alg, prk, info, len)
    }

    fn x963_kdf(
        &self,
        alg: HashAlg,
        shared: &[u8],
        shared_info: &[u8],
        len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        RUSTCRYPTO.x963_kdf(alg, shared, shared_info, len)
    }
}

/// Left-pad a big-endian integer to exactly `len` bytes (it must fit).
fn left_pad(be: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    let sig = &be[start..];
    if sig.len() > len {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    out[len - sig.len()..].copy_from_slice(sig);
    Some(out)
}

/// The same integer without leading zero bytes.
fn strip(be: &[u8]) -> &[u8] {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    &be[start..]
}
