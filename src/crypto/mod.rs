//! Crypto provider interface.
//!
//! Everything the token computes goes through the narrow [`Provider`] trait. Mechanism logic
//! (the PKCS#11 layer) maps `CKM_*` mechanisms and parameters onto these calls and maps
//! [`CryptoError`] onto `CK_RV`; this module knows nothing about PKCS#11 types.
//!
//! Two implementations, chosen at build time by [`provider`]:
//! * `rustcrypto` (always built): pure Rust on the RustCrypto crates;
//! * `awslc` (cargo feature `aws-lc`, on by default): AWS-LC through `aws-lc-rs` for ECDSA,
//!   EC key generation and most RSA signing, verification and OAEP/PKCS#1 encryption,
//!   delegating everything else (and every case whose exact semantics AWS-LC does not offer)
//!   to `rustcrypto`; the table is in `awslc/mod.rs`. Both return the same [`CryptoError`] for
//!   the same input. `--no-default-features` builds without it.
//!
//! Only those two directories name crypto crates.
//!
//! Conventions:
//! * secret outputs are returned in [`Zeroizing`] buffers; secret-holding types never print
//!   secrets through `Debug`;
//! * no function panics on any input: bad input yields a [`CryptoError`];
//! * MAC and tag comparisons are constant time ([`ct_eq`]).

use std::fmt;

pub use zeroize::Zeroizing;

#[cfg(feature = "aws-lc")]
mod awslc;
mod rustcrypto;

#[cfg(test)]
mod tests;

/// Errors of the crypto layer; the caller maps them to `CK_RV` codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Key length or key size out of range for the algorithm.
    KeySize,
    /// Key material is malformed (not a valid scalar, point, RSA component, ...).
    InvalidKey,
    /// Input length wrong for the mode, or input too long (e.g. for RSA).
    DataLen,
    /// Input data invalid (e.g. RSA input not below the modulus).
    DataInvalid,
    /// Ciphertext length wrong for the mode.
    EncryptedDataLen,
    /// Ciphertext invalid: bad padding, bad tag, OAEP failure (causes never distinguished).
    EncryptedDataInvalid,
    /// Signature did not verify.
    SignatureInvalid,
    /// Signature has the wrong length.
    SignatureLen,
    /// Wrapped key failed its integrity check (AES-KW / AES-KWP).
    WrappedKeyInvalid,
    /// Wrapped key has an impossible length.
    WrappedKeyLen,
    /// Mechanism parameter invalid (IV length, salt length, tag length, peer point, ...).
    ParamInvalid,
    /// Curve, key size, hash or parameter combination not supported by this provider.
    Unsupported,
    /// The random number generator failed.
    Rng,
    /// Internal failure that the caller cannot fix (never carries secrets).
    Internal(&'static str),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::KeySize => f.write_str("key size out of range"),
            CryptoError::InvalidKey => f.write_str("invalid key material"),
            CryptoError::DataLen => f.write_str("data length invalid"),
            CryptoError::DataInvalid => f.write_str("data invalid"),
            CryptoError::EncryptedDataLen => f.write_str("encrypted data length invalid"),
            CryptoError::EncryptedDataInvalid => f.write_str("encrypted data invalid"),
            CryptoError::SignatureInvalid => f.write_str("signature invalid"),
            CryptoError::SignatureLen => f.write_str("signature length invalid"),
            CryptoError::WrappedKeyInvalid => f.write_str("wrapped key invalid"),
            CryptoError::WrappedKeyLen => f.write_str("wrapped key length invalid"),
            CryptoError::ParamInvalid => f.write_str("mechanism parameter invalid"),
            CryptoError::Unsupported => f.write_str("not supported"),
            CryptoError::Rng => f.write_str("random number generator failure"),
            CryptoError::Internal(what) => write!(f, "internal crypto error: {what}"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// Result alias of the crypto layer.
pub type CryptoResult<T> = Result<T, CryptoError>;

/// Hash functions supported by the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (FIPS 180-4).
    Sha1,
    /// SHA-224 (FIPS 180-4).
    Sha224,
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
}

impl HashAlg {
    /// All supported hashes, for tests and enumeration.
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// Digest output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Internal block length in bytes (the HMAC block size).
    pub const fn block_len(self) -> usize {
        match self {
            HashAlg::Sha1 | HashAlg::Sha224 | HashAlg::Sha256 => 64,
            HashAlg::Sha384 | HashAlg::Sha512 => 128,
        }
    }

    /// DER prefix of the PKCS#1 `DigestInfo` for this hash (RFC 8017 §9.2 note 1); append the digest.
    pub const fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            HashAlg::Sha224 => &[
                0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x04, 0x05, 0x00, 0x04, 0x1c,
            ],
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// Full DER `DigestInfo` (prefix || digest); `DataLen` if `digest` has the wrong length.
    pub fn digest_info(self, digest: &[u8]) -> CryptoResult<Vec<u8>> {
        if digest.len() != self.output_len() {
            return Err(CryptoError::DataLen);
        }
        let mut v = Vec::with_capacity(self.digest_info_prefix().len() + digest.len());
        v.extend_from_slice(self.digest_info_prefix());
        v.extend_from_slice(digest);
        Ok(v)
    }
}

/// Elliptic curves supported for ECDSA and ECDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl Curve {
    /// Length in bytes of a field element and of a private scalar.
    pub const fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// Length in bytes of an uncompressed point `04 || X || Y`.
    pub const fn point_len(self) -> usize {
        1 + 2 * self.field_len()
    }

    /// DER encoding of the curve OID (the `CKA_EC_PARAMS` namedCurve form).
    pub const fn oid_der(self) -> &'static [u8] {
        match self {
            Curve::P256 => &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            Curve::P384 => &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22],
        }
    }

    /// Curve named by a DER-encoded OID, if supported.
    pub fn from_oid_der(der: &[u8]) -> Option<Curve> {
        [Curve::P256, Curve::P384]
            .into_iter()
            .find(|c| c.oid_der() == der)
    }
}

/// AES block-cipher modes for [`Provider::aes_cipher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AesMode {
    /// Electronic codebook, no padding (data a multiple of 16 bytes).
    Ecb,
    /// Cipher block chaining, no padding (data a multiple of 16 bytes).
    Cbc {
        /// Initialisation vector.
        iv: [u8; 16],
    },
    /// Cipher block chaining with PKCS#7 padding (`CKM_AES_CBC_PAD`).
    CbcPad {
        /// Initialisation vector.
        iv: [u8; 16],
    },
    /// Counter mode as `CK_AES_CTR_PARAMS`: the low `counter_bits` bits of the block count.
    Ctr {
        /// Initial counter block.
        counter_block: [u8; 16],
        /// Width of the counter field in bits (1..=128); wrapping is an error.
        counter_bits: u32,
    },
}

/// Incremental hash computation.
pub trait DigestCtx: Send + Sync {
    /// Hash algorithm of this context.
    fn alg(&self) -> HashAlg;
    /// Absorb more data.
    fn update(&mut self, data: &[u8]);
    /// Finish and return the digest.
    fn finalize(self: Box<Self>) -> Vec<u8>;
    /// Copy the current state (for length queries that must not consume the context).
    fn box_clone(&self) -> Box<dyn DigestCtx>;
}

/// Incremental MAC computation (HMAC, CMAC).
pub trait MacCtx: Send + Sync {
    /// Full MAC length in bytes.
    fn output_len(&self) -> usize;
    /// Absorb more data.
    fn update(&mut self, data: &[u8]);
    /// Finish and return the full-length MAC (the caller truncates for `_GENERAL`).
    fn finalize(self: Box<Self>) -> Zeroizing<Vec<u8>>;
    /// Copy the current state.
    fn box_clone(&self) -> Box<dyn MacCtx>;
}

/// Streaming AES block-mode encryption or decryption.
pub trait CipherCtx: Send + Sync {
    /// Process `input`; returns the output available now (whole blocks; CBC-PAD decrypt holds back the last block).
    fn update(&mut self, input: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>>;
    /// Finish: flush, add or check-and-strip padding, reject leftover partial blocks.
    fn finalize(self: Box<Self>) -> CryptoResult<Zeroizing<Vec<u8>>>;
    /// Exact number of bytes `update(input_len bytes)` would return now (no state change).
    fn update_len(&self, input_len: usize) -> usize;
    /// Exact (CBC-PAD decrypt: maximal) number of bytes `finalize` would return now.
    fn final_len(&self) -> usize;
    /// Copy the current state.
    fn box_clone(&self) -> Box<dyn CipherCtx>;
}

/// A parsed EC private key, ready for repeated use.
pub trait EcPrivateKey: Send + Sync {
    /// Curve of the key.
    fn curve(&self) -> Curve;
    /// Raw ECDSA (`CKM_ECDSA`) over `hash` of any length; returns `r || s`, each `field_len` bytes.
    fn sign_prehashed(&self, hash: &[u8]) -> CryptoResult<Vec<u8>>;
    /// ECDH: x-coordinate of `d * peer`; the peer point is SEC1 (uncompressed or compressed).
    fn ecdh(&self, peer_point: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>>;
    /// Public point, uncompressed `04 || X || Y`.
    fn public_point(&self) -> Vec<u8>;
}

/// A parsed EC public key, ready for repeated use.
pub trait EcPublicKey: Send + Sync {
    /// Curve of the key.
    fn curve(&self) -> Curve;
    /// Verify raw ECDSA `r || s` over `hash`: `SignatureLen` if not `2*field_len`, else `SignatureInvalid`.
    fn verify_prehashed(&self, hash: &[u8], sig_rs: &[u8]) -> CryptoResult<()>;
    /// Public point, uncompressed `04 || X || Y`.
    fn public_point(&self) -> Vec<u8>;
}

/// RSA private key components as big-endian unsigned integers (no leading-zero requirement).
#[derive(Clone, Default)]
pub struct RsaPrivateParts {
    /// Modulus.
    pub n: Vec<u8>,
    /// Public exponent.
    pub e: Vec<u8>,
    /// Private exponent.
    pub d: Zeroizing<Vec<u8>>,
    /// First prime (empty if unknown).
    pub p: Zeroizing<Vec<u8>>,
    /// Second prime (empty if unknown).
    pub q: Zeroizing<Vec<u8>>,
    /// d mod (p-1) (empty if unknown).
    pub dp: Zeroizing<Vec<u8>>,
    /// d mod (q-1) (empty if unknown).
    pub dq: Zeroizing<Vec<u8>>,
    /// q^-1 mod p (empty if unknown).
    pub qinv: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RsaPrivateParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateParts")
            .field("modulus_bits", &bit_len(&self.n))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A parsed RSA private key (with CRT values), ready for repeated use.
pub trait RsaPrivateKey: Send + Sync {
    /// Modulus length `k` in bytes.
    fn modulus_len(&self) -> usize;
    /// Modulus length in bits.
    fn modulus_bits(&self) -> usize;
    /// PKCS#1 v1.5 signature (type 1 padding) over `data` (a DigestInfo, or raw for `CKM_RSA_PKCS`); `DataLen` if longer than k-11.
    fn sign_pkcs1v15(&self, data: &[u8]) -> CryptoResult<Vec<u8>>;
    /// RSASSA-PSS signature over `digest` (must be `hash.output_len()` bytes) with MGF1(`mgf_hash`) and a random salt.
    fn sign_pss(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
    ) -> CryptoResult<Vec<u8>>;
    /// Raw RSA private operation (`CKM_RSA_X_509`): data left-padded to k bytes; `DataInvalid` if >= n.
    fn raw(&self, data: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>>;
    /// PKCS#1 v1.5 decryption with implicit rejection (bad padding yields a synthetic message, no error).
    fn decrypt_pkcs1v15(&self, ct: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>>;
    /// RSAES-OAEP decryption; any decoding failure is `EncryptedDataInvalid`.
    fn decrypt_oaep(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        label: &[u8],
        ct: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>>;
    /// Public components `(n, e)`, big-endian without leading zeros.
    fn public_parts(&self) -> (Vec<u8>, Vec<u8>);
    /// All components, the CRT values computed if the key was imported without them
    /// (big-endian without leading zeros); `Unsupported` for keys with more than two primes.
    fn private_parts(&self) -> CryptoResult<RsaPrivateParts>;
}

/// A parsed RSA public key, ready for repeated use.
pub trait RsaPublicKey: Send + Sync {
    /// Modulus length `k` in bytes.
    fn modulus_len(&self) -> usize;
    /// Modulus length in bits.
    fn modulus_bits(&self) -> usize;
    /// Verify a PKCS#1 v1.5 signature over `data` (DigestInfo or raw data).
    fn verify_pkcs1v15(&self, data: &[u8], sig: &[u8]) -> CryptoResult<()>;
    /// Verify an RSASSA-PSS signature over `digest` with MGF1(`mgf_hash`) and exactly `salt_len` salt bytes.
    fn verify_pss(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
        sig: &[u8],
    ) -> CryptoResult<()>;
    /// PKCS#1 v1.5 encryption (type 2 padding); `DataLen` if longer than k-11.
    fn encrypt_pkcs1v15(&self, pt: &[u8]) -> CryptoResult<Vec<u8>>;
    /// RSAES-OAEP encryption; `DataLen` if longer than k-2*hLen-2.
    fn encrypt_oaep(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        label: &[u8],
        pt: &[u8],
    ) -> CryptoResult<Vec<u8>>;
    /// Raw RSA public operation (`CKM_RSA_X_509`): data left-padded to k bytes; `DataInvalid` if >= n.
    fn raw(&self, data: &[u8]) -> CryptoResult<Vec<u8>>;
    /// Public components `(n, e)`, big-endian without leading zeros.
    fn public_parts(&self) -> (Vec<u8>, Vec<u8>);
}

/// The algorithm provider: every cryptographic primitive the token uses.
pub trait Provider: Send + Sync {
    /// Short provider name for logs (e.g. "rustcrypto").
    fn name(&self) -> &'static str;

    /// Fill `buf` from the OS CSPRNG.
    fn fill_random(&self, buf: &mut [u8]) -> CryptoResult<()>;

    /// Start an incremental digest.
    fn digest_ctx(&self, alg: HashAlg) -> Box<dyn DigestCtx>;

    /// One-shot digest.
    fn digest(&self, alg: HashAlg, data: &[u8]) -> Vec<u8> {
        let mut ctx = self.digest_ctx(alg);
        ctx.update(data);
        ctx.finalize()
    }

    /// Start an HMAC with any key length (including empty).
    fn hmac(&self, alg: HashAlg, key: &[u8]) -> CryptoResult<Box<dyn MacCtx>>;

    /// Start an AES-CMAC (RFC 4493); key 16/24/32 bytes else `KeySize`.
    fn cmac_aes(&self, key: &[u8]) -> CryptoResult<Box<dyn MacCtx>>;

    /// Start a streaming AES block-mode operation; key 16/24/32 bytes else `KeySize`.
    fn aes_cipher(
        &self,
        mode: AesMode,
        key: &[u8],
        encrypt: bool,
    ) -> CryptoResult<Box<dyn CipherCtx>>;

    /// One-shot AES block-mode operation (update + finalize).
    fn aes_oneshot(
        &self,
        mode: AesMode,
        key: &[u8],
        encrypt: bool,
        data: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let mut ctx = self.aes_cipher(mode, key, encrypt)?;
        let mut out = ctx.update(data)?;
        out.extend_from_slice(&ctx.finalize()?);
        Ok(out)
    }

    /// AES-GCM encryption; returns `ciphertext || tag` (IV 1..=256 bytes; tag `tag_len` bytes: 4, 8 or 12..=16).
    fn gcm_encrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
    ) -> CryptoResult<Vec<u8>>;

    /// AES-GCM encryption straight into `out` (at least `plaintext.len() + tag_len`
    /// bytes, else `DataLen`); returns the length written. Saves the copy of a
    /// large message through an intermediate buffer.
    fn gcm_encrypt_into(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
        out: &mut [u8],
    ) -> CryptoResult<usize> {
        let ct = self.gcm_encrypt(key, iv, aad, plaintext, tag_len)?;
        out.get_mut(..ct.len())
            .ok_or(CryptoError::DataLen)?
            .copy_from_slice(&ct);
        Ok(ct.len())
    }

    /// AES-GCM decryption of `ciphertext || tag`; bad tag is `EncryptedDataInvalid`.
    fn gcm_decrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
        tag_len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>>;

    /// AES key wrap (RFC 3394); input a multiple of 8 bytes and at least 16, else `DataLen`.
    fn aes_kw_wrap(&self, kek: &[u8], key_data: &[u8]) -> CryptoResult<Vec<u8>>;

    /// AES key unwrap (RFC 3394); bad length `WrappedKeyLen`, integrity failure `WrappedKeyInvalid`.
    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>>;

    /// AES key wrap with padding (RFC 5649); input 1..2^32-1 bytes, else `DataLen`.
    fn aes_kwp_wrap(&self, kek: &[u8], key_data: &[u8]) -> CryptoResult<Vec<u8>>;

    /// AES key unwrap with padding (RFC 5649); bad length `WrappedKeyLen`, integrity failure `WrappedKeyInvalid`.
    fn aes_kwp_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>>;

    /// Generate an EC key pair: (private scalar, `field_len` bytes big-endian; uncompressed point).
    fn ec_generate(&self, curve: Curve) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)>;

    /// Parse an EC private scalar (big-endian, at most `field_len` significant bytes).
    fn ec_private(&self, curve: Curve, scalar: &[u8]) -> CryptoResult<Box<dyn EcPrivateKey>>;

    /// Parse an EC public point (SEC1 uncompressed or compressed); invalid point is `InvalidKey`.
    fn ec_public(&self, curve: Curve, point: &[u8]) -> CryptoResult<Box<dyn EcPublicKey>>;

    /// Uncompressed public point of a private scalar.
    fn ec_public_from_private(&self, curve: Curve, scalar: &[u8]) -> CryptoResult<Vec<u8>> {
        Ok(self.ec_private(curve, scalar)?.public_point())
    }

    /// Generate an Ed25519 key pair: (32-byte seed, the RFC 8032 private key; 32-byte public key).
    fn ed25519_generate(&self) -> CryptoResult<(Zeroizing<Vec<u8>>, Vec<u8>)>;

    /// Ed25519 public key of a 32-byte seed; any other length is `InvalidKey`.
    fn ed25519_public_from_seed(&self, seed: &[u8]) -> CryptoResult<Vec<u8>>;

    /// Check an Ed25519 public key (32 bytes, a valid point encoding), else `InvalidKey`.
    fn ed25519_check_public(&self, public: &[u8]) -> CryptoResult<()>;

    /// Pure Ed25519 (RFC 8032 §5.1.6) signature over `msg` with a 32-byte seed; 64 bytes `R || S`.
    fn ed25519_sign(&self, seed: &[u8], msg: &[u8]) -> CryptoResult<Vec<u8>>;

    /// Verify a pure Ed25519 signature: `InvalidKey` for a bad public key, `SignatureLen` if
    /// not 64 bytes, else `SignatureInvalid`.
    fn ed25519_verify(&self, public: &[u8], msg: &[u8], sig: &[u8]) -> CryptoResult<()>;

    /// Generate an RSA key (2048, 3072 or 4096 bits; public exponent 65537 only).
    fn rsa_generate(&self, bits: usize, public_exponent: &[u8]) -> CryptoResult<RsaPrivateParts>;

    /// Parse an RSA private key (n, e, d required; primes recovered if missing); 1024..=8192 bits.
    fn rsa_private(&self, parts: &RsaPrivateParts) -> CryptoResult<Box<dyn RsaPrivateKey>>;

    /// Parse an RSA public key; 1024..=8192 bits.
    fn rsa_public(&self, n: &[u8], e: &[u8]) -> CryptoResult<Box<dyn RsaPublicKey>>;

    /// HKDF-Extract (RFC 5869): `PRK = HMAC(salt, ikm)`; empty salt means `HashLen` zeros.
    fn hkdf_extract(
        &self,
        alg: HashAlg,
        salt: &[u8],
        ikm: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let zeros = vec![0u8; alg.output_len()];
        let salt = if salt.is_empty() { &zeros[..] } else { salt };
        let mut mac = self.hmac(alg, salt)?;
        mac.update(ikm);
        Ok(mac.finalize())
    }

    /// HKDF-Expand (RFC 5869); `len` above 255*HashLen is `ParamInvalid`.
    fn hkdf_expand(
        &self,
        alg: HashAlg,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        if len > 255 * alg.output_len() {
            return Err(CryptoError::ParamInvalid);
        }
        let base = self.hmac(alg, prk)?;
        let mut okm = Zeroizing::new(Vec::with_capacity(len));
        let mut t: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        let mut counter: u8 = 1;
        while okm.len() < len {
            let mut mac = base.box_clone();
            mac.update(&t);
            mac.update(info);
            mac.update(&[counter]);
            t = mac.finalize();
            let take = (len - okm.len()).min(t.len());
            okm.extend_from_slice(&t[..take]);
            counter = counter.wrapping_add(1);
        }
        Ok(okm)
    }

    /// ANSI X9.63 KDF (SEC1 §3.6.1): `Hash(Z || counter32 || SharedInfo)` blocks, for `CKD_SHA*_KDF`.
    fn x963_kdf(
        &self,
        alg: HashAlg,
        shared: &[u8],
        shared_info: &[u8],
        len: usize,
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        // The counter is 32 bits; refuse lengths that would wrap it.
        let blocks = len.div_ceil(alg.output_len());
        if u32::try_from(blocks).is_err() {
            return Err(CryptoError::ParamInvalid);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        let mut counter: u32 = 1;
        while out.len() < len {
            let mut ctx = self.digest_ctx(alg);
            ctx.update(shared);
            ctx.update(&counter.to_be_bytes());
            ctx.update(shared_info);
            let block = Zeroizing::new(ctx.finalize());
            let take = (len - out.len()).min(block.len());
            out.extend_from_slice(&block[..take]);
            counter = counter.wrapping_add(1);
        }
        Ok(out)
    }
}

/// The provider used by the token: AWS-LC with the `aws-lc` feature (the default), else RustCrypto.
pub fn provider() -> &'static dyn Provider {
    #[cfg(feature = "aws-lc")]
    {
        &awslc::AWSLC
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        &rustcrypto::RUSTCRYPTO
    }
}

/// Every provider built in, [`provider`] first (for tests, benchmarks and comparisons).
pub fn providers() -> &'static [&'static dyn Provider] {
    #[cfg(feature = "aws-lc")]
    static ALL: [&dyn Provider; 2] = [&awslc::AWSLC, &rustcrypto::RUSTCRYPTO];
    #[cfg(not(feature = "aws-lc"))]
    static ALL: [&dyn Provider; 1] = [&rustcrypto::RUSTCRYPTO];
    &ALL
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(i) => (be.len() - i - 1) * 8 + (8 - be[i].leading_zeros() as usize),
        None => 0,
    }
}
