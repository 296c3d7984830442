//! Ed25519 (RFC 8032 §5.1, "pure" Ed25519 only) on `ed25519-dalek` 3.
//!
//! Keys are handled as the 32-byte seed (RFC 8032 "private key") and the 32-byte compressed
//! public point. Verification is the crate's RFC 8032 `verify` (cofactorless, rejects
//! non-canonical `S`), the behaviour of OpenSSL and SoftHSM; small-order public keys are not
//! refused, for interoperability.

use super::super::{CryptoError, CryptoResult, Zeroizing};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Length of a seed, a public key, and half a signature.
pub(crate) const KEY_LEN: usize = 32;
/// Length of a signature `R || S`.
pub(crate) const SIG_LEN: usize = 64;

fn signing_key(seed: &[u8]) -> CryptoResult<SigningKey> {
    let seed: Zeroizing<[u8; KEY_LEN]> =
        Zeroizing::new(seed.try_into().map_err(|_| CryptoError::InvalidKey)?);
    Ok(SigningKey::from_bytes(&seed))
}

fn verifying_key(public: &[u8]) -> CryptoResult<VerifyingKey> {
    let bytes: [u8; KEY_LEN] = public.try_into().map_err(|_| CryptoError::InvalidKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CryptoError::InvalidKey)
}

/// A fresh seed from the OS CSPRNG and its public key.
pub(crate) fn generate() -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let mut seed = Zeroizing::new(vec![0u8; KEY_LEN]);
    super::fill_random(&mut seed)?;
    let public = public_from_seed(&seed)?;
    Ok((seed, public))
}

/// Public key of a 32-byte seed.
pub(crate) fn public_from_seed(seed: &[u8]) -> CryptoResult<Vec<u8>> {
    Ok(signing_key(seed)?.verifying_key().to_bytes().to_vec())
}

/// Checks that `public` is 32 bytes encoding a point on the curve.
pub(crate) fn check_public(public: &[u8]) -> CryptoResult<()> {
    verifying_key(public).map(|_| ())
}

/// Pure Ed25519 signature over `msg`.
pub(crate) fn sign(seed: &[u8], msg: &[u8]) -> CryptoResult<Vec<u8>> {
    let key = signing_key(seed)?;
    let sig: Signature = key
        .try_sign(msg)
        .map_err(|_| CryptoError::Internal("ed25519 sign"))?;
    Ok(sig.to_bytes().to_vec())
}

/// Verifies a pure Ed25519 signature.
pub(crate) fn verify(public: &[u8], msg: &[u8], sig: &[u8]) -> CryptoResult<()> {
    let key = verifying_key(public)?;
    let sig: [u8; SIG_LEN] = sig.try_into().map_err(|_| CryptoError::SignatureLen)?;
    key.verify(msg, &Signature::from_bytes(&sig))
        .map_err(|_| CryptoError::SignatureInvalid)
}
