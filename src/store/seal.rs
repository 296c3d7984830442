//! The sealing layer: AES-256-GCM over whole records with their identity in
//! the associated data, Argon2id PIN stretching, and keyed index tags.
//! Format details are in docs/store-format.md.

use crate::error::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of every sealing key (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Version byte at the front of every sealed blob.
const FORMAT_V1: u8 = 1;

/// A 256-bit key that is wiped when dropped and never printed.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// A fresh random key from the OS CSPRNG.
    pub fn random() -> Result<SealKey> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut k[..]).map_err(|e| Error::general(format!("getrandom: {e}")))?;
        Ok(SealKey(k))
    }

    pub fn from_bytes(b: &[u8]) -> Result<SealKey> {
        let arr: [u8; KEY_LEN] = b
            .try_into()
            .map_err(|_| Error::Tampered("sealing key has the wrong length".into()))?;
        Ok(SealKey(Zeroizing::new(arr)))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A subkey for one purpose (HMAC-SHA256 of the label under this key).
    pub fn derive(&self, purpose: &[u8]) -> SealKey {
        let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.0[..])
            .expect("HMAC accepts any key length");
        mac.update(b"strongroom-subkey-v1\0");
        mac.update(purpose);
        let out = mac.finalize().into_bytes();
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(&out[..KEY_LEN]);
        SealKey(k)
    }

    /// A 16-byte keyed tag (HMAC-SHA256, truncated) used by the find index, so
    /// that labels and ids never reach the disk in the clear.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 16] {
        let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.0[..])
            .expect("HMAC accepts any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        let out = mac.finalize().into_bytes();
        let mut t = [0u8; 16];
        t.copy_from_slice(&out[..16]);
        t
    }
}

/// Seals `plaintext`: `version(1) || nonce(12) || ciphertext || tag(16)`.
/// `aad` must name the record (kind, ids, version) so it cannot be moved.
pub fn seal(key: &SealKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(&key.0[..]).map_err(Error::general)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| Error::general(format!("getrandom: {e}")))?;
    let ct = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::general("AES-GCM seal failed"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`seal`] made; any change to the blob or the `aad` fails with
/// [`Error::Tampered`].
pub fn open(key: &SealKey, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
        return Err(Error::Tampered(
            "sealed blob too short or of unknown format".into(),
        ));
    }
    let cipher = Aes256Gcm::new_from_slice(&key.0[..]).map_err(Error::general)?;
    let nonce: [u8; NONCE_LEN] = blob[1..1 + NONCE_LEN].try_into().map_err(Error::general)?;
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &blob[1 + NONCE_LEN..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| Error::Tampered("authentication tag mismatch".into()))
}

/// Argon2id cost, stored with every PIN slot so it can change over time.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 2 passes: about 0.15 s on the reference 2-core machine.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Stretches a PIN into a key-encryption key with Argon2id.
pub fn stretch_pin(pin: &[u8], salt: &[u8], p: KdfParams) -> Result<SealKey> {
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(KEY_LEN))
        .map_err(|e| Error::general(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(pin, salt, &mut out[..])
        .map_err(|e| Error::general(format!("argon2: {e}")))?;
    Ok(SealKey(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_every_tamper_is_caught() {
        let k = SealKey::random().unwrap();
        let blob = seal(&k, b"obj|1|2", b"secret attributes").unwrap();
        assert_eq!(
            &open(&k, b"obj|1|2", &blob).unwrap()[..],
            b"secret attributes"
        );
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert!(
                matches!(open(&k, b"obj|1|2", &bad), Err(Error::Tampered(_))),
                "byte {i}"
            );
        }
        assert!(matches!(
            open(&k, b"obj|1|3", &blob),
            Err(Error::Tampered(_))
        ));
        let other = SealKey::random().unwrap();
        assert!(open(&other, b"obj|1|2", &blob).is_err());
    }

    #[test]
    fn argon2id_matches_rfc9106_shape_and_is_deterministic() {
        let p = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let a = stretch_pin(b"1234", b"saltsaltsaltsalt", p).unwrap();
        let b = stretch_pin(b"1234", b"saltsaltsaltsalt", p).unwrap();
        let c = stretch_pin(b"1235", b"saltsaltsaltsalt", p).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
    }

    #[test]
    fn tags_are_keyed_and_unambiguous() {
        let k = SealKey::random().unwrap();
        assert_ne!(k.tag(&[b"ab", b"c"]), k.tag(&[b"a", b"bc"]));
        assert_ne!(k.tag(&[b"x"]), SealKey::random().unwrap().tag(&[b"x"]));
    }
}
