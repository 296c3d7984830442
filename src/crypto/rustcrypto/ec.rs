//! ECDSA and ECDH on P-256 / P-384 with the RustCrypto `p256`, `p384` and `ecdsa` crates.
//!
//! Signing uses RFC 6979 deterministic nonces hedged with 32/48 fresh random bytes
//! (`RandomizedPrehashSigner`), so a weak RNG cannot leak the key and fault attacks on
//! deterministic signing are harder.

use super::super::{CryptoError, CryptoResult, Curve, EcPrivateKey, EcPublicKey, Zeroizing};
use super::OsRng;

/// Left-pad (or reject) a big-endian scalar to exactly `field_len` bytes.
fn normalize_scalar(scalar: &[u8], field_len: usize) -> CryptoResult<Zeroizing<Vec<u8>>> {
    let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
    let sig = &scalar[start..];
    if sig.len() > field_len {
        return Err(CryptoError::InvalidKey);
    }
    let mut out = Zeroizing::new(vec![0u8; field_len]);
    out[field_len - sig.len()..].copy_from_slice(sig);
    Ok(out)
}

/// Hash to exactly `field_len` bytes as CKM_ECDSA expects (FIPS 186-4 §6.4: leftmost bits of a
/// longer hash; a shorter hash is the same integer, i.e. zero-padded on the left).
fn normalize_hash(hash: &[u8], field_len: usize) -> Vec<u8> {
    if hash.len() >= field_len {
        hash[..field_len].to_vec()
    } else {
        let mut out = vec![0u8; field_len];
        out[field_len - hash.len()..].copy_from_slice(hash);
        out
    }
}

macro_rules! curve_impl {
    ($modname:ident, $krate:ident, $curve:expr) => {
        pub(crate) mod $modname {
            use super::*;
            use $krate::ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
            use $krate::elliptic_curve::sec1::ToSec1Point;
            use $krate::elliptic_curve::Generate;

            const CURVE: Curve = $curve;

            fn encode_point(pk: &$krate::PublicKey) -> Vec<u8> {
                pk.as_affine().to_sec1_point(false).as_bytes().to_vec()
            }

            /// Parsed private key.
            pub(crate) struct PrivKey {
                secret: $krate::SecretKey,
                signing: $krate::ecdsa::SigningKey,
                public: Vec<u8>,
            }

            impl PrivKey {
                pub(crate) fn from_scalar(scalar: &[u8]) -> CryptoResult<Self> {
                    let bytes = normalize_scalar(scalar, CURVE.field_len())?;
                    let secret = $krate::SecretKey::from_slice(&bytes)
                        .map_err(|_| CryptoError::InvalidKey)?;
                    let signing = $krate::ecdsa::SigningKey::from_slice(&bytes)
                        .map_err(|_| CryptoError::InvalidKey)?;
                    let public = encode_point(&secret.public_key());
                    Ok(PrivKey {
                        secret,
                        signing,
                        public,
                    })
                }

                /// Deterministic RFC 6979 signature (no added entropy); for known-answer tests.
                #[cfg(test)]
                pub(crate) fn sign_deterministic(&self, hash: &[u8]) -> CryptoResult<Vec<u8>> {
                    use $krate::ecdsa::signature::hazmat::PrehashSigner;
                    let z = normalize_hash(hash, CURVE.field_len());
                    let sig: $krate::ecdsa::Signature = self
                        .signing
                        .sign_prehash(&z)
                        .map_err(|_| CryptoError::Internal("ecdsa sign"))?;
                    Ok(sig.to_bytes().to_vec())
                }
            }

            impl EcPrivateKey for PrivKey {
                fn curve(&self) -> Curve {
                    CURVE
                }

                fn sign_prehashed(&self, hash: &[u8]) -> CryptoResult<Vec<u8>> {
                    let z = normalize_hash(hash, CURVE.field_len());
                    let sig: $krate::ecdsa::Signature = self
                        .signing
                        .sign_prehash_with_rng(&mut OsRng, &z)
                        .map_err(|_| CryptoError::Rng)?;
                    Ok(sig.to_bytes().to_vec())
                }

                fn ecdh(&self, peer_point: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
                    let peer = $krate::PublicKey::from_sec1_bytes(peer_point)
                        .map_err(|_| CryptoError::ParamInvalid)?;
                    let shared = self.secret.diffie_hellman(&peer);
                    Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
                }

                fn public_point(&self) -> Vec<u8> {
                    self.public.clone()
                }
            }

            /// Parsed public key.
            pub(crate) struct PubKey {
                verifying: $krate::ecdsa::VerifyingKey,
                public: Vec<u8>,
            }

            impl PubKey {
                pub(crate) fn from_point(point: &[u8]) -> CryptoResult<Self> {
                    let pk = $krate::PublicKey::from_sec1_bytes(point)
                        .map_err(|_| CryptoError::InvalidKey)?;
                    let verifying = $krate::ecdsa::VerifyingKey::from(pk);
                    Ok(PubKey {
                        verifying,
                        public: encode_point(&pk),
                    })
                }
            }

            impl EcPublicKey for PubKey {
                fn curve(&self) -> Curve {
                    CURVE
                }

                fn verify_prehashed(&self, hash: &[u8], sig_rs: &[u8]) -> CryptoResult<()> {
                    if sig_rs.len() != 2 * CURVE.field_len() {
                        return Err(CryptoError::SignatureLen);
                    }
                    let sig = $krate::ecdsa::Signature::from_slice(sig_rs)
                        .map_err(|_| CryptoError::SignatureInvalid)?;
                    let z = normalize_hash(hash, CURVE.field_len());
                    self.verifying
                        .verify_prehash(&z, &sig)
                        .map_err(|_| CryptoError::SignatureInvalid)
                }

                fn public_point(&self) -> Vec<u8> {
                    self.public.clone()
                }
            }

            /// Fresh key pair: (scalar, uncompressed point).
            pub(crate) fn generate() -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
                let sk = $krate::SecretKey::try_generate_from_rng(&mut OsRng)
                    .map_err(|_| CryptoError::Rng)?;
                let scalar = Zeroizing::new(sk.to_bytes().to_vec());
                Ok((scalar, encode_point(&sk.public_key())))
            }
        }
    };
}

curve_impl!(p256_impl, p256, Curve::P256);
curve_impl!(p384_impl, p384, Curve::P384);

/// Generate a key pair on `curve`.
pub(crate) fn generate(curve: Curve) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    match curve {
        Curve::P256 => p256_impl::generate(),
        Curve::P384 => p384_impl::generate(),
    }
}

/// Parse a private scalar on `curve`.
pub(crate) fn private(curve: Curve, scalar: &[u8]) -> CryptoResult<Box<dyn EcPrivateKey>> {
    Ok(match curve {
        Curve::P256 => Box::new(p256_impl::PrivKey::from_scalar(scalar)?),
        Curve::P384 => Box::new(p384_impl::PrivKey::from_scalar(scalar)?),
    })
}

/// Parse a public point on `curve`.
pub(crate) fn public(curve: Curve, point: &[u8]) -> CryptoResult<Box<dyn EcPublicKey>> {
    Ok(match curve {
        Curve::P256 => Box::new(p256_impl::PubKey::from_point(point)?),
        Curve::P384 => Box::new(p384_impl::PubKey::from_point(point)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::HashAlg;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// RFC 6979 A.2.5 (P-256) and A.2.6 (P-384), messages "sample" and "test", with the hash
    /// matching the curve (the `ecdsa` crate runs the RFC 6979 HMAC-DRBG with the curve's hash).
    #[test]
    fn rfc6979_deterministic_signatures() {
        let p256_x = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
        let p384_x = "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5";
        let k256 = p256_impl::PrivKey::from_scalar(&h(p256_x)).unwrap();
        let k384 = p384_impl::PrivKey::from_scalar(&h(p384_x)).unwrap();
        let d = |alg, m: &[u8]| super::super::hash::digest(alg, m);
        assert_eq!(
            k256.sign_deterministic(&d(HashAlg::Sha256, b"sample")).unwrap(),
            h("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8")
        );
        assert_eq!(
            k256.sign_deterministic(&d(HashAlg::Sha256, b"test")).unwrap(),
            h("f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083")
        );
        assert_eq!(
            k384.sign_deterministic(&d(HashAlg::Sha384, b"sample")).unwrap(),
            h("94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe4699ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8")
        );
        assert_eq!(
            k384.sign_deterministic(&d(HashAlg::Sha384, b"test")).unwrap(),
            h("8203b63d3c853e8d77227fb377bcf7b7b772e97892a80f36ab775d509d7a5feb0542a7f0812998da8f1dd3ca3cf023dbddd0760448d42d8a43af45af836fce4de8be06b485e9b61b827c2f13173923e06a739f040649a667bf3b828246baa5a5")
        );
    }

    #[test]
    fn scalar_normalisation() {
        assert_eq!(&normalize_scalar(&[0, 0, 1], 4).unwrap()[..], &[0, 0, 0, 1]);
        assert_eq!(
            &normalize_scalar(&[0, 0, 0, 0, 0, 7], 4).unwrap()[..],
            &[0, 0, 0, 7]
        );
        assert_eq!(
            normalize_scalar(&[1, 0, 0, 0, 0], 4),
            Err(CryptoError::InvalidKey)
        );
        assert_eq!(normalize_hash(&[1, 2, 3, 4, 5], 4), vec![1, 2, 3, 4]);
        assert_eq!(normalize_hash(&[9], 4), vec![0, 0, 0, 9]);
        assert_eq!(normalize_hash(&[], 2), vec![0, 0]);
    }
}
