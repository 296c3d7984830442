//! ECDSA on P-256 / P-384 with AWS-LC; ECDH and key validation stay with RustCrypto.
//!
//! `CKM_ECDSA` signs a hash of any length: FIPS 186-4 §6.4 uses its leftmost `field_len`
//! bytes, or the same integer zero-padded on the left if it is shorter. AWS-LC's
//! `ECDSA_sign` applies the same rule, and both curves are byte aligned, so normalising the
//! input to exactly `field_len` bytes first gives the same integer on either provider. That
//! normalised value is handed to `aws-lc-rs` as a SHA-256 (P-256) or SHA-384 (P-384)
//! "digest" (`Digest::import_less_safe`), the only input form its prehash API takes; the
//! label is not used in the computation, so every hash length gets the fast path.
//!
//! Nonces: AWS-LC draws k from its DRBG with SHA-512(private key || digest) as additional
//! input, a hedge against RNG failure like the RustCrypto provider's RFC 6979 + entropy.

use super::super::rustcrypto::RUSTCRYPTO;
use super::super::{
    CryptoError, CryptoResult, Curve, EcPrivateKey, EcPublicKey, Provider, Zeroizing,
};
use super::left_pad;
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, ParsedPublicKey,
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};

fn signing_alg(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
    }
}

fn verification_alg(curve: Curve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &ECDSA_P384_SHA384_FIXED,
    }
}

/// The hash as the `field_len`-byte integer ECDSA uses, wrapped as the curve's digest type.
fn curve_digest(curve: Curve, hash: &[u8]) -> CryptoResult<Digest> {
    let fl = curve.field_len();
    let z = if hash.len() >= fl {
        hash[..fl].to_vec()
    } else {
        let mut z = vec![0u8; fl];
        z[fl - hash.len()..].copy_from_slice(hash);
        z
    };
    let alg = match curve {
        Curve::P256 => &digest::SHA256,
        Curve::P384 => &digest::SHA384,
    };
    Digest::import_less_safe(&z, alg).map_err(|_| CryptoError::Internal("ecdsa digest"))
}

/// Private key: RustCrypto for ECDH and the public point, AWS-LC for signing.
pub(super) struct PrivKey {
    rc: Box<dyn EcPrivateKey>,
    /// `None` only if AWS-LC refused a key RustCrypto accepted (then RustCrypto signs).
    fast: Option<EcdsaKeyPair>,
}

impl PrivKey {
    #[cfg(test)]
    pub(super) fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// AWS-LC signature; `None` to fall back to RustCrypto.
    pub(super) fn try_fast_sign(&self, hash: &[u8]) -> Option<Vec<u8>> {
        let kp = self.fast.as_ref()?;
        let d = curve_digest(self.curve(), hash).ok()?;
        Some(kp.sign_digest(&d).ok()?.as_ref().to_vec())
    }
}

impl EcPrivateKey for PrivKey {
    fn curve(&self) -> Curve {
        self.rc.curve()
    }

    fn sign_prehashed(&self, hash: &[u8]) -> CryptoResult<Vec<u8>> {
        match self.try_fast_sign(hash) {
            Some(sig) => Ok(sig),
            None => self.rc.sign_prehashed(hash),
        }
    }

    fn ecdh(&self, peer_point: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        self.rc.ecdh(peer_point)
    }

    fn public_point(&self) -> Vec<u8> {
        self.rc.public_point()
    }
}

/// Public key: RustCrypto parses and validates, AWS-LC verifies.
pub(super) struct PubKey {
    rc: Box<dyn EcPublicKey>,
    fast: Option<ParsedPublicKey>,
}

impl PubKey {
    #[cfg(test)]
    pub(super) fn is_fast(&self) -> bool {
        self.fast.is_some()
    }
}

impl EcPublicKey for PubKey {
    fn curve(&self) -> Curve {
        self.rc.curve()
    }

    fn verify_prehashed(&self, hash: &[u8], sig_rs: &[u8]) -> CryptoResult<()> {
        let Some(key) = &self.fast else {
            return self.rc.verify_prehashed(hash, sig_rs);
        };
        if sig_rs.len() != 2 * self.curve().field_len() {
            return Err(CryptoError::SignatureLen);
        }
        let d = curve_digest(self.curve(), hash)?;
        key.verify_digest_sig(&d, sig_rs)
            .map_err(|_| CryptoError::SignatureInvalid)
    }

    fn public_point(&self) -> Vec<u8> {
        self.rc.public_point()
    }
}

/// Fresh key pair from AWS-LC: (scalar, uncompressed point).
pub(super) fn generate(curve: Curve) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let kp = EcdsaKeyPair::generate(signing_alg(curve))
        .map_err(|_| CryptoError::Internal("ec keygen"))?;
    let scalar = kp
        .private_key()
        .as_be_bytes()
        .map_err(|_| CryptoError::Internal("ec keygen export"))?;
    let scalar = Zeroizing::new(scalar.as_ref().to_vec());
    let point = kp.public_key().as_ref().to_vec();
    if scalar.len() != curve.field_len() || point.len() != curve.point_len() {
        return Err(CryptoError::Internal("ec keygen export"));
    }
    Ok((scalar, point))
}

/// Parse a private scalar (RustCrypto validates; errors are its errors).
pub(super) fn private(curve: Curve, scalar: &[u8]) -> CryptoResult<Box<dyn EcPrivateKey>> {
    Ok(Box::new(parse_private(curve, scalar)?))
}

/// Parse a public point (RustCrypto validates; errors are its errors).
pub(super) fn public(curve: Curve, point: &[u8]) -> CryptoResult<Box<dyn EcPublicKey>> {
    Ok(Box::new(parse_public(curve, point)?))
}

pub(super) fn parse_private(curve: Curve, scalar: &[u8]) -> CryptoResult<PrivKey> {
    let rc = RUSTCRYPTO.ec_private(curve, scalar)?;
    let fast = left_pad(scalar, curve.field_len()).and_then(|d| {
        EcdsaKeyPair::from_private_key_and_public_key(signing_alg(curve), &d, &rc.public_point())
            .ok()
    });
    Ok(PrivKey { rc, fast })
}

pub(super) fn parse_public(curve: Curve, point: &[u8]) -> CryptoResult<PubKey> {
    let rc = RUSTCRYPTO.ec_public(curve, point)?;
    let fast = ParsedPublicKey::new(verification_alg(curve), rc.public_point()).ok();
    Ok(PubKey { rc, fast })
}
