//! RSA on the RustCrypto `rsa` crate (0.10, features `pkcs1v15` and `hazmat`).
//!
//! # Side channels on decryption (Marvin attack)
//!
//! What rsa 0.10.0 does (read from its source and CHANGELOG, "Security" section of 0.10.0):
//! * Big-integer arithmetic moved from `num-bigint-dig` to `crypto-bigint`; the private
//!   exponentiation (`pow` in Montgomery form) is constant time in the base and exponent.
//! * Every private operation here passes an RNG, which turns on base blinding (`c * r^e`),
//!   exponent blinding of d / dP / dQ and blinding of the CRT moduli, with fresh factors per
//!   operation; the result is checked by re-encryption (fault attack defence).
//! * `I2OSP` of the decrypted integer is constant time (`i2osp_zeroizing`).
//! * PKCS#1 v1.5 decryption implements *implicit rejection* (draft-irtf-cfrg-rsa-guidance §7.2):
//!   invalid padding yields a deterministic synthetic message derived from the private key and
//!   the ciphertext instead of an error, and the choice is made with constant-time selection. So
//!   [`RsaPrivateKey::decrypt_pkcs1v15`] returns `Ok` for a bad padding; the caller must not
//!   expect `EncryptedDataInvalid` there. Only a wrong ciphertext length (public) or an
//!   out-of-range representative (public) are errors.
//! * OAEP decoding checks the label hash, the zero run and the 0x01 separator with
//!   constant-time choices and returns one error value for all causes; this module maps every
//!   OAEP failure to the single `EncryptedDataInvalid`.
//!
//! Caveat: the crate's `pkcs1v15` module doc comment still says it is "still vulnerable" to
//! Marvin (RustCrypto/RSA#626); that text predates the 0.10.0 changes listed above.
//!
//! RSASSA-PSS is encoded here (EMSA-PSS, RFC 8017 §9.1) over the crate's raw blinded private
//! operation so that the MGF1 hash can differ from the message hash, which `rsa::Pss` cannot do.

use super::super::{
    CryptoError, CryptoResult, HashAlg, RsaPrivateKey, RsaPrivateParts, RsaPublicKey, Zeroizing,
};
use super::hash::DigestState;
use super::OsRng;
use rsa::hazmat::{rsa_decrypt_and_check, rsa_encrypt};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BoxedUint;

/// Smallest and largest modulus accepted for use.
const MIN_BITS: usize = 1024;
const MAX_BITS: usize = 8192;

fn strip(be: &[u8]) -> &[u8] {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    &be[start..]
}

/// Big-endian bytes to an integer with a precision of whole 64-bit limbs.
fn to_uint(be: &[u8]) -> CryptoResult<BoxedUint> {
    let bits = (be.len().max(1) * 8).div_ceil(64) * 64;
    let bits = u32::try_from(bits).map_err(|_| CryptoError::KeySize)?;
    BoxedUint::from_be_slice(be, bits).map_err(|_| CryptoError::InvalidKey)
}

/// Integer to big-endian bytes without leading zeros.
fn from_uint(v: &BoxedUint) -> Vec<u8> {
    let b = v.to_be_bytes();
    strip(&b).to_vec()
}

/// Integer to big-endian bytes without leading zeros, in a zeroizing buffer.
fn from_uint_secret(v: &BoxedUint) -> Zeroizing<Vec<u8>> {
    let b = Zeroizing::new(v.to_be_bytes().to_vec());
    Zeroizing::new(strip(&b).to_vec())
}

/// Left-align `data` into a k-byte block; `DataLen` if longer than k.
fn left_pad(data: &[u8], k: usize) -> CryptoResult<Zeroizing<Vec<u8>>> {
    if data.len() > k {
        return Err(CryptoError::DataLen);
    }
    let mut out = Zeroizing::new(vec![0u8; k]);
    out[k - data.len()..].copy_from_slice(data);
    Ok(out)
}

/// Integer to exactly `k` big-endian bytes (value known to be < n < 256^k).
fn to_k_bytes(v: &BoxedUint, k: usize) -> Zeroizing<Vec<u8>> {
    let b = Zeroizing::new(v.to_be_bytes().to_vec());
    let mut out = Zeroizing::new(vec![0u8; k]);
    if b.len() >= k {
        out.copy_from_slice(&b[b.len() - k..]);
    } else {
        out[k - b.len()..].copy_from_slice(&b);
    }
    out
}

fn check_bits(bits: usize) -> CryptoResult<()> {
    if (MIN_BITS..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(CryptoError::KeySize)
    }
}

/// MGF1 (RFC 8017 B.2.1) XORed into `out`.
fn mgf1_xor(hash: HashAlg, seed: &[u8], out: &mut [u8]) {
    let mut counter: u32 = 0;
    for chunk in out.chunks_mut(hash.output_len()) {
        let mut st = DigestState::new(hash);
        st.update(seed);
        st.update(&counter.to_be_bytes());
        let mask = st.finalize();
        for (o, m) in chunk.iter_mut().zip(mask.iter()) {
            *o ^= *m;
        }
        counter = counter.wrapping_add(1);
    }
}

/// EME-OAEP decoding (RFC 8017 §7.1.2 step 3) in constant time: every check
/// is folded into one `Choice`, and every failure is the same error, so the
/// caller learns nothing about which check failed.
fn eme_oaep_decode(
    hash: HashAlg,
    mgf_hash: HashAlg,
    label: &[u8],
    em: &mut [u8],
) -> CryptoResult<Zeroizing<Vec<u8>>> {
    use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
    let h_len = hash.output_len();
    let k = em.len();
    if k < 2 * h_len + 2 {
        return Err(CryptoError::EncryptedDataInvalid);
    }
    let l_hash = {
        let mut st = DigestState::new(hash);
        st.update(label);
        st.finalize()
    };
    let (y, rest) = em.split_at_mut(1);
    let (masked_seed, masked_db) = rest.split_at_mut(h_len);
    mgf1_xor(mgf_hash, masked_db, masked_seed);
    mgf1_xor(mgf_hash, masked_seed, masked_db);
    let db: &[u8] = masked_db;
    let mut good = y[0].ct_eq(&0) & db[..h_len].ct_eq(&l_hash[..]);
    let mut looking = Choice::from(1);
    let mut start: u32 = 0;
    for (i, b) in db[h_len..].iter().enumerate() {
        let is_one = b.ct_eq(&1);
        let is_zero = b.ct_eq(&0);
        let here = u32::try_from(i + 1).unwrap_or(u32::MAX);
        start = u32::conditional_select(&start, &here, looking & is_one);
        good &= !(looking & !is_zero & !is_one);
        looking &= !is_one;
    }
    good &= !looking;
    if !bool::from(good) {
        return Err(CryptoError::EncryptedDataInvalid);
    }
    let from = h_len + start as usize;
    Ok(Zeroizing::new(db[from..].to_vec()))
}

/// `Hash(0x00*8 || mHash || salt)` (RFC 8017 §9.1.1 steps 5-6).
fn pss_h(hash: HashAlg, m_hash: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut st = DigestState::new(hash);
    st.update(&[0u8; 8]);
    st.update(m_hash);
    st.update(salt);
    st.finalize()
}

/// EMSA-PSS-ENCODE with a random salt; returns EM of `ceil(em_bits/8)` bytes.
fn emsa_pss_encode(
    hash: HashAlg,
    mgf_hash: HashAlg,
    salt_len: usize,
    m_hash: &[u8],
    em_bits: usize,
) -> CryptoResult<Vec<u8>> {
    let h_len = hash.output_len();
    if m_hash.len() != h_len {
        return Err(CryptoError::DataLen);
    }
    let em_len = em_bits.div_ceil(8);
    if salt_len
        .checked_add(h_len + 2)
        .is_none_or(|need| em_len < need)
    {
        return Err(CryptoError::ParamInvalid);
    }
    let mut salt = vec![0u8; salt_len];
    super::fill_random(&mut salt)?;
    let h = pss_h(hash, m_hash, &salt);
    let db_len = em_len - h_len - 1;
    let mut em = vec![0u8; em_len];
    em[db_len - salt_len - 1] = 0x01;
    em[db_len - salt_len..db_len].copy_from_slice(&salt);
    mgf1_xor(mgf_hash, &h, &mut em[..db_len]);
    em[0] &= 0xffu8 >> (8 * em_len - em_bits);
    em[db_len..em_len - 1].copy_from_slice(&h);
    em[em_len - 1] = 0xbc;
    Ok(em)
}

/// EMSA-PSS-VERIFY with a fixed salt length (RFC 8017 §9.1.2).
fn emsa_pss_verify(
    hash: HashAlg,
    mgf_hash: HashAlg,
    salt_len: usize,
    m_hash: &[u8],
    em: &[u8],
    em_bits: usize,
) -> CryptoResult<()> {
    let bad = Err(CryptoError::SignatureInvalid);
    let h_len = hash.output_len();
    let em_len = em.len();
    if salt_len
        .checked_add(h_len + 2)
        .is_none_or(|need| em_len < need)
        || em[em_len - 1] != 0xbc
    {
        return bad;
    }
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if em[0] & !top_mask != 0 {
        return bad;
    }
    let db_len = em_len - h_len - 1;
    let h = &em[db_len..em_len - 1];
    let mut db = em[..db_len].to_vec();
    mgf1_xor(mgf_hash, h, &mut db);
    db[0] &= top_mask;
    let ps_len = db_len - salt_len - 1;
    if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 0x01 {
        return bad;
    }
    let h2 = pss_h(hash, m_hash, &db[ps_len + 1..]);
    if h2 == h {
        Ok(())
    } else {
        bad
    }
}

/// Run `$body` with `$d` / `$m` bound to the digest types of `$hash` / `$mgf`.
macro_rules! with_hashes {
    ($hash:expr, $mgf:expr, |$d:ident, $m:ident| $body:expr) => {{
        macro_rules! inner {
            ($dd:ty) => {{
                type $d = $dd;
                match $mgf {
                    HashAlg::Sha1 => {
                        type $m = sha1::Sha1;
                        $body
                    }
                    HashAlg::Sha224 => {
                        type $m = sha2::Sha224;
                        $body
                    }
                    HashAlg::Sha256 => {
                        type $m = sha2::Sha256;
                        $body
                    }
                    HashAlg::Sha384 => {
                        type $m = sha2::Sha384;
                        $body
                    }
                    HashAlg::Sha512 => {
                        type $m = sha2::Sha512;
                        $body
                    }
                }
            }};
        }
        match $hash {
            HashAlg::Sha1 => inner!(sha1::Sha1),
            HashAlg::Sha224 => inner!(sha2::Sha224),
            HashAlg::Sha256 => inner!(sha2::Sha256),
            HashAlg::Sha384 => inner!(sha2::Sha384),
            HashAlg::Sha512 => inner!(sha2::Sha512),
        }
    }};
}

/// Parsed RSA private key (the crate zeroizes its components on drop and redacts `Debug`).
pub(crate) struct PrivKey {
    key: rsa::PrivateKey,
}

/// Parsed RSA public key.
pub(crate) struct PubKey {
    key: rsa::PublicKey,
}

fn k_of(key: &impl PublicKeyParts) -> usize {
    key.size()
}

fn bits_of(key: &impl PublicKeyParts) -> usize {
    key.n().as_ref().bit_width() as usize
}

/// Raw public operation on a k-byte block; `DataInvalid` if the value is not below n.
fn raw_public(key: &rsa::PublicKey, data: &[u8]) -> CryptoResult<Vec<u8>> {
    let k = k_of(key);
    let block = left_pad(data, k)?;
    let m = BoxedUint::from_be_slice(&block, key.n_bits_precision())
        .map_err(|_| CryptoError::DataInvalid)?;
    if m >= *key.n().as_ref() {
        return Err(CryptoError::DataInvalid);
    }
    let c = rsa_encrypt(key, &m).map_err(|_| CryptoError::Internal("rsa public op"))?;
    Ok(to_k_bytes(&c, k).to_vec())
}

impl PrivKey {
    /// Raw blinded private operation on a k-byte block.
    fn raw_private(&self, data: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let k = k_of(&self.key);
        let block = left_pad(data, k)?;
        let c = Zeroizing::new(
            BoxedUint::from_be_slice(&block, self.key.n_bits_precision())
                .map_err(|_| CryptoError::DataInvalid)?,
        );
        if *c >= *self.key.n().as_ref() {
            return Err(CryptoError::DataInvalid);
        }
        let m = Zeroizing::new(
            rsa_decrypt_and_check(&self.key, Some(&mut OsRng), &c)
                .map_err(|_| CryptoError::Internal("rsa private op"))?,
        );
        Ok(to_k_bytes(&m, k))
    }
}

impl RsaPrivateKey for PrivKey {
    fn modulus_len(&self) -> usize {
        k_of(&self.key)
    }

    fn modulus_bits(&self) -> usize {
        bits_of(&self.key)
    }

    fn sign_pkcs1v15(&self, data: &[u8]) -> CryptoResult<Vec<u8>> {
        if data.len() + 11 > self.modulus_len() {
            return Err(CryptoError::DataLen);
        }
        self.key
            .sign_with_rng(&mut OsRng, rsa::Pkcs1v15Sign::new_unprefixed(), data)
            .map_err(|e| match e {
                rsa::Error::MessageTooLong => CryptoError::DataLen,
                rsa::Error::Rng => CryptoError::Rng,
                _ => CryptoError::Internal("rsa pkcs1 sign"),
            })
    }

    fn sign_pss(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
    ) -> CryptoResult<Vec<u8>> {
        let em = emsa_pss_encode(hash, mgf_hash, salt_len, digest, self.modulus_bits() - 1)?;
        Ok(self.raw_private(&em)?.to_vec())
    }

    fn raw(&self, data: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        self.raw_private(data)
    }

    fn decrypt_pkcs1v15(&self, ct: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        if ct.len() != self.modulus_len() {
            return Err(CryptoError::EncryptedDataLen);
        }
        self.key
            .pkcs1v15_decrypt_with_rng(&mut OsRng, ct)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::EncryptedDataInvalid)
    }

    fn decrypt_oaep(
        &self,
        hash: HashAlg,
        mgf_hash: HashAlg,
        label: &[u8],
        ct: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        if ct.len() != self.modulus_len() {
            return Err(CryptoError::EncryptedDataLen);
        }
        // The blinded raw operation, then our own constant-time EME-OAEP
        // decoding: rsa 0.10.0 does not check that the first byte of EM is
        // zero (RFC 8017 §7.1.2 step 3g; Wycheproof OAEP tcId 23).
        let mut em = self
            .raw_private(ct)
            .map_err(|_| CryptoError::EncryptedDataInvalid)?;
        eme_oaep_decode(hash, mgf_hash, label, &mut em)
    }

    fn public_parts(&self) -> (Vec<u8>, Vec<u8>) {
        (
            strip(&self.key.n_bytes()).to_vec(),
            strip(&self.key.e_bytes()).to_vec(),
        )
    }

    fn private_parts(&self) -> CryptoResult<RsaPrivateParts> {
        parts_of(&self.key).map_err(|e| match e {
            CryptoError::Internal(_) => CryptoError::Unsupported,
            other => other,
        })
    }
}

impl RsaPublicKey for PubKey {
    fn modulus_len(&self) -> usize {
        k_of(&self.key)
    }

    fn modulus_bits(&self) -> usize {
        bits_of(&self.key)
    }

    fn verify_pkcs1v15(&self, data: &[u8], sig: &[u8]) -> CryptoResult<()> {
        if sig.len() != self.modulus_len() {
            return Err(CryptoError::SignatureLen);
        }
        if data.len() + 11 > self.modulus_len() {
            return Err(CryptoError::DataLen);
        }
        self.key
            .verify(rsa::Pkcs1v15Sign::new_unprefixed(), data, sig)
            .map_err(|_| CryptoError::SignatureInvalid)
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
        let m = raw_public(&self.key, sig).map_err(|_| CryptoError::SignatureInvalid)?;
        let em_bits = self.modulus_bits() - 1;
        let em_len = em_bits.div_ceil(8);
        // EM = I2OSP(m, emLen): any excess leading byte must be zero.
        let excess = m.len() - em_len;
        if m[..excess].iter().any(|&b| b != 0) {
            return Err(CryptoError::SignatureInvalid);
        }
        emsa_pss_verify(hash, mgf_hash, salt_len, digest, &m[excess..], em_bits)
    }

    fn encrypt_pkcs1v15(&self, pt: &[u8]) -> CryptoResult<Vec<u8>> {
        if pt.len() + 11 > self.modulus_len() {
            return Err(CryptoError::DataLen);
        }
        self.key
            .pkcs1v15_encrypt_with_rng(&mut OsRng, pt)
            .map_err(|e| match e {
                rsa::Error::MessageTooLong => CryptoError::DataLen,
                rsa::Error::Rng => CryptoError::Rng,
                _ => CryptoError::Internal("rsa pkcs1 encrypt"),
            })
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
        let res = with_hashes!(hash, mgf_hash, |D, M| self.key.encrypt(
            &mut OsRng,
            rsa::Oaep::<D, M>::new_with_mgf_hash_and_label(label),
            pt
        ));
        res.map_err(|e| match e {
            rsa::Error::MessageTooLong => CryptoError::DataLen,
            rsa::Error::Rng => CryptoError::Rng,
            _ => CryptoError::Internal("rsa oaep encrypt"),
        })
    }

    fn raw(&self, data: &[u8]) -> CryptoResult<Vec<u8>> {
        raw_public(&self.key, data)
    }

    fn public_parts(&self) -> (Vec<u8>, Vec<u8>) {
        (
            strip(&self.key.n_bytes()).to_vec(),
            strip(&self.key.e_bytes()).to_vec(),
        )
    }
}

/// Parse a public key (1024..=8192 bits).
pub(crate) fn public(n: &[u8], e: &[u8]) -> CryptoResult<Box<dyn RsaPublicKey>> {
    let n = strip(n);
    let e = strip(e);
    check_bits(super::super::bit_len(n))?;
    if e.is_empty() || e.len() > 8 {
        return Err(CryptoError::InvalidKey);
    }
    let key = rsa::PublicKey::new(to_uint(n)?, to_uint(e)?).map_err(|_| CryptoError::InvalidKey)?;
    Ok(Box::new(PubKey { key }))
}

/// Parse a private key from its parts (n, e, d required; p and q used if both present).
pub(crate) fn private(parts: &RsaPrivateParts) -> CryptoResult<Box<dyn RsaPrivateKey>> {
    let n = strip(&parts.n);
    let e = strip(&parts.e);
    check_bits(super::super::bit_len(n))?;
    if e.is_empty() || e.len() > 8 || strip(&parts.d).is_empty() {
        return Err(CryptoError::InvalidKey);
    }
    let primes = if !strip(&parts.p).is_empty() && !strip(&parts.q).is_empty() {
        vec![to_uint(strip(&parts.p))?, to_uint(strip(&parts.q))?]
    } else {
        Vec::new()
    };
    let d = to_uint(strip(&parts.d))?;
    let key = rsa::PrivateKey::from_components(to_uint(n)?, to_uint(e)?, d, primes)
        .map_err(|_| CryptoError::InvalidKey)?;
    Ok(Box::new(PrivKey { key }))
}

/// Generate a 2048/3072/4096-bit key with e = 65537.
pub(crate) fn generate(bits: usize, public_exponent: &[u8]) -> CryptoResult<RsaPrivateParts> {
    if !matches!(bits, 2048 | 3072 | 4096) {
        return Err(CryptoError::KeySize);
    }
    if strip(public_exponent) != [0x01, 0x00, 0x01] {
        return Err(CryptoError::Unsupported);
    }
    let key = rsa::PrivateKey::new_with_exp(&mut OsRng, bits, BoxedUint::from(65537u64)).map_err(
        |e| match e {
            rsa::Error::Rng => CryptoError::Rng,
            _ => CryptoError::Internal("rsa keygen"),
        },
    )?;
    parts_of(&key)
}

/// All components of a two-prime key with its precomputed CRT values.
fn parts_of(key: &rsa::PrivateKey) -> CryptoResult<RsaPrivateParts> {
    let primes = key.primes();
    let (p, q) = match primes {
        [p, q] => (from_uint_secret(p.as_ref()), from_uint_secret(q.as_ref())),
        _ => return Err(CryptoError::Internal("rsa keygen primes")),
    };
    let (dp, dq, qinv) = match (key.dp(), key.dq(), key.qinv()) {
        (Some(dp), Some(dq), Some(qinv)) => (
            from_uint_secret(dp),
            from_uint_secret(dq),
            from_uint_secret(&Zeroizing::new(qinv.retrieve())),
        ),
        _ => return Err(CryptoError::Internal("rsa keygen crt")),
    };
    Ok(RsaPrivateParts {
        n: from_uint(key.n().as_ref()),
        e: from_uint(key.e()),
        d: from_uint_secret(key.d()),
        p,
        q,
        dp,
        dq,
        qinv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our EMSA-PSS (separate MGF hash capable) interoperates with the crate's `rsa::Pss` when
    /// both hashes are SHA-256: each verifies the other's signatures.
    #[test]
    fn pss_interoperates_with_rsa_crate() {
        let key = rsa::PrivateKey::new(&mut OsRng, 1025 + 1024).unwrap();
        let ours = PrivKey { key: key.clone() };
        let pubk = PubKey {
            key: key.to_public_key(),
        };
        let digest = super::super::hash::digest(HashAlg::Sha256, b"interop");
        let sig = ours
            .sign_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &digest)
            .unwrap();
        key.to_public_key()
            .verify(rsa::Pss::<sha2::Sha256>::new_with_salt(32), &digest, &sig)
            .unwrap();
        let theirs = key
            .sign_with_rng(
                &mut OsRng,
                rsa::Pss::<sha2::Sha256>::new_with_salt(20),
                &digest,
            )
            .unwrap();
        assert_eq!(
            pubk.verify_pss(HashAlg::Sha256, HashAlg::Sha256, 20, &digest, &theirs),
            Ok(())
        );
        assert_eq!(
            pubk.verify_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &digest, &theirs),
            Err(CryptoError::SignatureInvalid)
        );
    }
}
