//! RSA with AWS-LC where `aws-lc-rs` has the exact operation, RustCrypto elsewhere.
//!
//! Every key is parsed by the RustCrypto provider first (so validation and its errors are
//! unchanged) and kept for the operations AWS-LC does not offer safely:
//! * PKCS#1 v1.5 decryption: AWS-LC reports bad padding as an error (no implicit rejection);
//!   the RustCrypto provider's implicit rejection is kept, see `rustcrypto/rsa.rs`;
//! * the raw private and public operations (`CKM_RSA_X_509`): not in the safe API;
//! * PKCS#1 v1.5 signing of anything but a SHA-256/384/512 `DigestInfo` (raw `CKM_RSA_PKCS`
//!   data, SHA-1 and SHA-224 `DigestInfo`s): `aws-lc-rs` signs only digests of those hashes;
//! * PSS with an MGF1 hash other than the message hash or a salt length other than the hash
//!   length, OAEP with a different MGF1 hash or SHA-224: `aws-lc-rs` fixes those parameters;
//! * keys below 2048 bits, which `aws-lc-rs` refuses.
//!
//! AWS-LC's private operations are blinded and constant time, and its OAEP decoding checks
//! all of the encoding (leading zero byte included) before reporting one undistinguished
//! failure, which maps to the single `EncryptedDataInvalid`.

use std::sync::OnceLock;

use super::super::rustcrypto::RUSTCRYPTO;
use super::super::{
    CryptoError, CryptoResult, HashAlg, Provider, RsaPrivateKey, RsaPrivateParts, RsaPublicKey,
    Zeroizing,
};
use super::strip;
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
    OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};
use aws_lc_rs::signature::{
    ParsedPublicKey, RsaKeyPair, RsaParameters, RsaPublicKeyComponents, RsaSignatureEncoding,
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384,
    RSA_PKCS1_SHA512, RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512,
    RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512,
};

/// Modulus sizes `aws-lc-rs` accepts for every operation used here.
fn fast_bits(bits: usize) -> bool {
    (2048..=8192).contains(&bits)
}

fn digest_alg(hash: HashAlg) -> Option<&'static digest::Algorithm> {
    match hash {
        HashAlg::Sha1 => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha224 => None,
        HashAlg::Sha256 => Some(&digest::SHA256),
        HashAlg::Sha384 => Some(&digest::SHA384),
        HashAlg::Sha512 => Some(&digest::SHA512),
    }
}

fn import_digest(hash: HashAlg, value: &[u8]) -> Option<Digest> {
    Digest::import_less_safe(value, digest_alg(hash)?).ok()
}

/// `(hash, digest)` if `data` is exactly a DER `DigestInfo` of one of our hashes.
fn parse_digest_info(data: &[u8]) -> Option<(HashAlg, &[u8])> {
    HashAlg::ALL.into_iter().find_map(|alg| {
        let prefix = alg.digest_info_prefix();
        (data.len() == prefix.len() + alg.output_len() && data.starts_with(prefix))
            .then(|| (alg, &data[prefix.len()..]))
    })
}

fn pkcs1_signing(hash: HashAlg) -> Option<&'static RsaSignatureEncoding> {
    match hash {
        HashAlg::Sha256 => Some(&RSA_PKCS1_SHA256),
        HashAlg::Sha384 => Some(&RSA_PKCS1_SHA384),
        HashAlg::Sha512 => Some(&RSA_PKCS1_SHA512),
        HashAlg::Sha1 | HashAlg::Sha224 => None,
    }
}

/// PSS with MGF1(hash) and a salt of the hash length (the `aws-lc-rs` default).
fn pss_signing(hash: HashAlg) -> Option<&'static RsaSignatureEncoding> {
    match hash {
        HashAlg::Sha256 => Some(&RSA_PSS_SHA256),
        HashAlg::Sha384 => Some(&RSA_PSS_SHA384),
        HashAlg::Sha512 => Some(&RSA_PSS_SHA512),
        HashAlg::Sha1 | HashAlg::Sha224 => None,
    }
}

fn oaep_alg(hash: HashAlg, mgf_hash: HashAlg) -> Option<&'static OaepAlgorithm> {
    if hash != mgf_hash {
        return None;
    }
    match hash {
        HashAlg::Sha1 => Some(&OAEP_SHA1_MGF1SHA1),
        HashAlg::Sha224 => None,
        HashAlg::Sha256 => Some(&OAEP_SHA256_MGF1SHA256),
        HashAlg::Sha384 => Some(&OAEP_SHA384_MGF1SHA384),
        HashAlg::Sha512 => Some(&OAEP_SHA512_MGF1SHA512),
    }
}

/// Verification parameters, in the order of [`PubFast::parsed`].
const VERIFY_PARAMS: [&RsaParameters; 7] = [
    &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    &RSA_PKCS1_2048_8192_SHA256,
    &RSA_PKCS1_2048_8192_SHA384,
    &RSA_PKCS1_2048_8192_SHA512,
    &RSA_PSS_2048_8192_SHA256,
    &RSA_PSS_2048_8192_SHA384,
    &RSA_PSS_2048_8192_SHA512,
];

fn pkcs1_verify_index(hash: HashAlg) -> Option<usize> {
    match hash {
        HashAlg::Sha1 => Some(0),
        HashAlg::Sha224 => None,
        HashAlg::Sha256 => Some(1),
        HashAlg::Sha384 => Some(2),
        HashAlg::Sha512 => Some(3),
    }
}

fn pss_verify_index(hash: HashAlg) -> Option<usize> {
    match hash {
        HashAlg::Sha256 => Some(4),
        HashAlg::Sha384 => Some(5),
        HashAlg::Sha512 => Some(6),
        HashAlg::Sha1 | HashAlg::Sha224 => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Private keys
// ---------------------------------------------------------------------------------------------

/// AWS-LC half of a private key.
struct PrivFast {
    kp: RsaKeyPair,
    /// Built on first OAEP decryption (`None` if AWS-LC refused it).
    oaep: OnceLock<Option<OaepPrivateDecryptingKey>>,
}

impl PrivFast {
    fn oaep(&self) -> Option<&OaepPrivateDecryptingKey> {
        self.oaep
            .get_or_init(|| {
                let doc = self.kp.as_der().ok()?;
                let key = PrivateDecryptingKey::from_pkcs8(doc.as_ref()).ok()?;
                OaepPrivateDecryptingKey::new(key).ok()
            })
            .as_ref()
    }
}

/// Parsed RSA private key.
pub(super) struct PrivKey {
    rc: Box<dyn RsaPrivateKey>,
    fast: Option<PrivFast>,
}

impl PrivKey {
    #[cfg(test)]
    pub(super) fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// Whether the AWS-LC OAEP decryption key could be built.
    #[cfg(test)]
    pub(super) fn fast_oaep(&self) -> bool {
        self.fast.as_ref().and_then(PrivFast::oaep).is_some()
    }

    /// AWS-LC PKCS#1 v1.5 signature of a SHA-256/384/512 `DigestInfo`; `None` to fall back.
    pub(super) fn try_fast_pkcs1(&self, data: &[u8]) -> Option<Vec<u8>> {
        let fast = self.fast.as_ref()?;
        let (hash, value) = parse_digest_info(data)?;
        let d = import_digest(hash, value)?;
        let mut sig = vec![0u8; self.modulus_len()];
        fast.kp
            .sign_digest(pkcs1_signing(hash)?, &d, &mut sig)
            .ok()?;
        Some(sig)
    }

    /// AWS-LC PSS signature (MGF1 hash = hash, salt = hash length); `None` to fall back.
    pub(super) fn try_fast_pss(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
    ) -> Option<Vec<u8>> {
        let fast = self.fast.as_ref()?;
        if hash != mgf_hash || salt_len != hash.output_len() {
            return None;
        }
        let d = import_digest(hash, digest)?;
        let mut sig = vec![0u8; self.modulus_len()];
        fast.kp.sign_digest(pss_signing(hash)?, &d, &mut sig).ok()?;
        Some(sig)
    }
}

impl RsaPrivateKey for PrivKey {
    fn modulus_len(&self) -> usize {
        self.rc.modulus_len()
    }

    fn modulus_bits(&self) -> usize {
        self.rc.modulus_bits()
    }

    fn sign_pkcs1v15(&self, data: &[u8]) -> CryptoResult<Vec<u8>> {
        match self.try_fast_pkcs1(data) {
            Some(sig) => Ok(sig),
            None => self.rc.sign_pkcs1v15(data),
        }
    }

    fn sign_pss(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
    ) -> CryptoResult<Vec<u8>> {
        match self.try_fast_pss(hash, mgf_hash, salt_len, digest) {
            Some(sig) => Ok(sig),
            None => self.rc.sign_pss(hash, mgf_hash, salt_len, digest),
        }
    }

    fn raw(&self, data: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        self.rc.raw(data)
    }

    fn decrypt_pkcs1v15(&self, ct: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        self.rc.decrypt_pkcs1v15(ct)
    }

    fn decrypt_oaep(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        label: &[u8],
        ct: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let key = self.fast.as_ref().and_then(PrivFast::oaep);
        let (Some(key), Some(alg)) = (key, oaep_alg(hash, mgf_hash)) else {
            return self.rc.decrypt_oaep(hash, mgf_hash, label, ct);
        };
        if ct.len() != self.modulus_len() {
            return Err(CryptoError::EncryptedDataLen);
        }
        let mut out = Zeroizing::new(vec![0u8; self.modulus_len()]);
        let label = (!label.is_empty()).then_some(label);
        let n = key
            .decrypt(alg, ct, &mut out, label)
            .map_err(|_| CryptoError::EncryptedDataInvalid)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn public_parts(&self) -> (Vec<u8>, Vec<u8>) {
        self.rc.public_parts()
    }

    fn private_parts(&self) -> CryptoResult<RsaPrivateParts> {
        self.rc.private_parts()
    }
}

/// Parse a private key: RustCrypto validates (and recovers missing primes / CRT values), then
/// AWS-LC gets the full component set.
pub(super) fn parse_private(parts: &RsaPrivateParts) -> CryptoResult<PrivKey> {
    let rc = RUSTCRYPTO.rsa_private(parts)?;
    let fast = if fast_bits(rc.modulus_bits()) {
        rc.private_parts().ok().and_then(|full| {
            let components = aws_lc_rs::rsa::KeyPairComponents {
                public_key: RsaPublicKeyComponents {
                    n: strip(&full.n),
                    e: strip(&full.e),
                },
                d: &full.d[..],
                p: &full.p[..],
                q: &full.q[..],
                dP: &full.dp[..],
                dQ: &full.dq[..],
                qInv: &full.qinv[..],
            };
            let kp = RsaKeyPair::from_components(&components).ok()?;
            Some(PrivFast {
                kp,
                oaep: OnceLock::new(),
            })
        })
    } else {
        None
    };
    Ok(PrivKey { rc, fast })
}

pub(super) fn private(parts: &RsaPrivateParts) -> CryptoResult<Box<dyn RsaPrivateKey>> {
    Ok(Box::new(parse_private(parts)?))
}

// ---------------------------------------------------------------------------------------------
// Public keys
// ---------------------------------------------------------------------------------------------

/// Encryption keys built from one SPKI document.
struct EncKeys {
    oaep: OaepPublicEncryptingKey,
    pkcs1: Pkcs1PublicEncryptingKey,
}

/// AWS-LC half of a public key; each parsed form is built on first use.
struct PubFast {
    n: Vec<u8>,
    e: Vec<u8>,
    parsed: [OnceLock<Option<ParsedPublicKey>>; 7],
    enc: OnceLock<Option<EncKeys>>,
}

impl PubFast {
    fn parsed(&self, i: usize) -> Option<&ParsedPublicKey> {
        self.parsed[i]
            .get_or_init(|| {
                RsaPublicKeyComponents {
                    n: &self.n[..],
                    e: &self.e[..],
                }
                .to_parsed_public_key(VERIFY_PARAMS[i])
                .ok()
            })
            .as_ref()
    }

    fn enc(&self) -> Option<&EncKeys> {
        self.enc
            .get_or_init(|| {
                let spki = self.parsed(1)?.as_der().ok()?;
                let key = PublicEncryptingKey::from_der(spki.as_ref()).ok()?;
                Some(EncKeys {
                    oaep: OaepPublicEncryptingKey::new(key.clone()).ok()?,
                    pkcs1: Pkcs1PublicEncryptingKey::new(key).ok()?,
                })
            })
            .as_ref()
    }

    /// `Some(result)` if AWS-LC could run the check, `None` to fall back.
    fn verify(&self, index: usize, hash: HashAlg, value: &[u8], sig: &[u8]) -> Option<bool> {
        let key = self.parsed(index)?;
        let d = import_digest(hash, value)?;
        Some(key.verify_digest_sig(&d, sig).is_ok())
    }
}

/// Parsed RSA public key.
pub(super) struct PubKey {
    rc: Box<dyn RsaPublicKey>,
    fast: Option<PubFast>,
}

impl PubKey {
    #[cfg(test)]
    pub(super) fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// Whether every AWS-LC form of the key (7 verification, 2 encryption) could be built.
    #[cfg(test)]
    pub(super) fn all_fast_forms(&self) -> bool {
        self.fast.as_ref().is_some_and(|f| {
            (0..VERIFY_PARAMS.len()).all(|i| f.parsed(i).is_some()) && f.enc().is_some()
        })
    }

    /// AWS-LC PKCS#1 v1.5 encryption (length already checked); `None` to fall back.
    pub(super) fn try_fast_encrypt_pkcs1(&self, pt: &[u8]) -> Option<Vec<u8>> {
        let enc = self.fast.as_ref()?.enc()?;
        let mut out = vec![0u8; self.modulus_len()];
        let n = enc.pkcs1.encrypt(pt, &mut out).ok()?.len();
        out.truncate(n);
        Some(out)
    }

    /// AWS-LC OAEP encryption (length already checked); `None` to fall back.
    pub(super) fn try_fast_encrypt_oaep(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        label: &[u8],
        pt: &[u8],
    ) -> Option<Vec<u8>> {
        let alg = oaep_alg(hash, mgf_hash)?;
        let enc = self.fast.as_ref()?.enc()?;
        let mut out = vec![0u8; self.modulus_len()];
        let label = (!label.is_empty()).then_some(label);
        let n = enc.oaep.encrypt(alg, pt, &mut out, label).ok()?.len();
        out.truncate(n);
        Some(out)
    }
}

fn verdict(ok: bool) -> CryptoResult<()> {
    if ok {
        Ok(())
    } else {
        Err(CryptoError::SignatureInvalid)
    }
}

impl RsaPublicKey for PubKey {
    fn modulus_len(&self) -> usize {
        self.rc.modulus_len()
    }

    fn modulus_bits(&self) -> usize {
        self.rc.modulus_bits()
    }

    fn verify_pkcs1v15(&self, data: &[u8], sig: &[u8]) -> CryptoResult<()> {
        if sig.len() != self.modulus_len() {
            return Err(CryptoError::SignatureLen);
        }
        if data.len() + 11 > self.modulus_len() {
            return Err(CryptoError::DataLen);
        }
        if let (Some(fast), Some((hash, value))) = (&self.fast, parse_digest_info(data)) {
            if let Some(ok) =
                pkcs1_verify_index(hash).and_then(|i| fast.verify(i, hash, value, sig))
            {
                return verdict(ok);
            }
        }
        self.rc.verify_pkcs1v15(data, sig)
    }

    fn verify_pss(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
        sig: &[u8],
    ) -> CryptoResult<()> {
        if sig.len() != self.modulus_len() {
            return Err(CryptoError::SignatureLen);
        }
        if digest.len() != hash.output_len() {
            return Err(CryptoError::DataLen);
        }
        if let Some(fast) = &self.fast {
            if hash == mgf_hash && salt_len == hash.output_len() {
                if let Some(ok) =
                    pss_verify_index(hash).and_then(|i| fast.verify(i, hash, digest, sig))
                {
                    return verdict(ok);
                }
            }
        }
        self.rc.verify_pss(hash, mgf_hash, salt_len, digest, sig)
    }

    fn encrypt_pkcs1v15(&self, pt: &[u8]) -> CryptoResult<Vec<u8>> {
        if pt.len() + 11 > self.modulus_len() {
            return Err(CryptoError::DataLen);
        }
        match self.try_fast_encrypt_pkcs1(pt) {
            Some(ct) => Ok(ct),
            None => self.rc.encrypt_pkcs1v15(pt),
        }
    }

    fn encrypt_oaep(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        label: &[u8],
        pt: &[u8],
    ) -> CryptoResult<Vec<u8>> {
        if pt.len() + 2 * hash.output_len() + 2 > self.modulus_len() {
            return Err(CryptoError::DataLen);
        }
        match self.try_fast_encrypt_oaep(hash, mgf_hash, label, pt) {
            Some(ct) => Ok(ct),
            None => self.rc.encrypt_oaep(hash, mgf_hash, label, pt),
        }
    }

    fn raw(&self, data: &[u8]) -> CryptoResult<Vec<u8>> {
        self.rc.raw(data)
    }

    fn public_parts(&self) -> (Vec<u8>, Vec<u8>) {
        self.rc.public_parts()
    }
}

/// Parse a public key: RustCrypto validates, AWS-LC forms are built lazily.
pub(super) fn parse_public(n: &[u8], e: &[u8]) -> CryptoResult<PubKey> {
    let rc = RUSTCRYPTO.rsa_public(n, e)?;
    let fast = fast_bits(rc.modulus_bits()).then(|| {
        let (n, e) = rc.public_parts();
        PubFast {
            n,
            e,
            parsed: Default::default(),
            enc: OnceLock::new(),
        }
    });
    Ok(PubKey { rc, fast })
}

pub(super) fn public(n: &[u8], e: &[u8]) -> CryptoResult<Box<dyn RsaPublicKey>> {
    Ok(Box::new(parse_public(n, e)?))
}
