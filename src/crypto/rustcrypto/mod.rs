//! The RustCrypto implementation of [`Provider`]. This directory is the only place that names
//! crypto crates.

use super::{
    AesMode, CipherCtx, CryptoError, CryptoResult, Curve, DigestCtx, EcPrivateKey, EcPublicKey,
    HashAlg, MacCtx, Provider, RsaPrivateKey, RsaPrivateParts, RsaPublicKey, Zeroizing,
};

pub(crate) mod aes;
pub(crate) mod ec;
pub(crate) mod ed25519;
pub(crate) mod hash;
pub(crate) mod rsa;

/// The RustCrypto provider (stateless).
pub(crate) struct RustCrypto;

/// The single provider instance.
pub(crate) static RUSTCRYPTO: RustCrypto = RustCrypto;

/// A `rand_core` RNG over the OS CSPRNG (`getrandom`), with errors propagated.
#[derive(Clone, Copy, Default)]
pub(crate) struct OsRng;

impl rand_core::TryRng for OsRng {
    type Error = getrandom::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst)
    }
}

impl rand_core::TryCryptoRng for OsRng {}

/// Fill from the OS CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> CryptoResult<()> {
    getrandom::fill(buf).map_err(|_| CryptoError::Rng)
}

impl Provider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn fill_random(&self, buf: &mut [u8]) -> CryptoResult<()> {
        fill_random(buf)
    }

    fn digest_ctx(&self, alg: HashAlg) -> Box<dyn DigestCtx> {
        Box::new(hash::DigestState::new(alg))
    }

    fn digest(&self, alg: HashAlg, data: &[u8]) -> Vec<u8> {
        hash::digest(alg, data)
    }

    fn hmac(&self, alg: HashAlg, key: &[u8]) -> CryptoResult<Box<dyn MacCtx>> {
        Ok(Box::new(hash::HmacState::new(alg, key)?))
    }

    fn cmac_aes(&self, key: &[u8]) -> CryptoResult<Box<dyn MacCtx>> {
        Ok(Box::new(hash::CmacState::new(key)?))
    }

    fn aes_cipher(
        &self,
        mode: AesMode,
        key: &[u8],
        encrypt: bool,
    ) -> CryptoResult<Box<dyn CipherCtx>> {
        aes::aes_cipher(mode, key, encrypt)
    }

    fn gcm_encrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
    ) -> CryptoResult<Vec<u8>> {
        aes::gcm_encrypt(key, iv, aad, plaintext, tag_len)
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
        aes::gcm_encrypt_into(key, iv, aad, plaintext, tag_len, out)
    }

    fn gcm_decrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
        tag_len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        aes::gcm_decrypt(key, iv, aad, ciphertext_and_tag, tag_len)
    }

    fn aes_kw_wrap(&self, kek: &[u8], key_data: &[u8]) -> CryptoResult<Vec<u8>> {
        aes::kw_wrap(kek, key_data)
    }

    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        aes::kw_unwrap(kek, wrapped)
    }

    fn aes_kwp_wrap(&self, kek: &[u8], key_data: &[u8]) -> CryptoResult<Vec<u8>> {
        aes::kwp_wrap(kek, key_data)
    }

    fn aes_kwp_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        aes::kwp_unwrap(kek, wrapped)
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

    fn ed25519_generate(&self) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        ed25519::generate()
    }

    fn ed25519_public_from_seed(&self, seed: &[u8]) -> CryptoResult<Vec<u8>> {
        ed25519::public_from_seed(seed)
    }

    fn ed25519_check_public(&self, public: &[u8]) -> CryptoResult<()> {
        ed25519::check_public(public)
    }

    fn ed25519_sign(&self, seed: &[u8], msg: &[u8]) -> CryptoResult<Vec<u8>> {
        ed25519::sign(seed, msg)
    }

    fn ed25519_verify(&self, public: &[u8], msg: &[u8], sig: &[u8]) -> CryptoResult<()> {
        ed25519::verify(public, msg, sig)
    }

    fn rsa_generate(&self, bits: usize, public_exponent: &[u8]) -> CryptoResult<RsaPrivateParts> {
        rsa::generate(bits, public_exponent)
    }

    fn rsa_private(&self, parts: &RsaPrivateParts) -> CryptoResult<Box<dyn RsaPrivateKey>> {
        rsa::private(parts)
    }

    fn rsa_public(&self, n: &[u8], e: &[u8]) -> CryptoResult<Box<dyn RsaPublicKey>> {
        rsa::public(n, e)
    }
}
