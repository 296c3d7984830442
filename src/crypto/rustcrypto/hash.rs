//! SHA-1/SHA-2 digests, HMAC and AES-CMAC on the RustCrypto `sha1`, `sha2`, `hmac`, `cmac` crates.

use super::super::{CryptoError, CryptoResult, DigestCtx, HashAlg, MacCtx, Zeroizing};
use hmac::{KeyInit, Mac};
use sha2::Digest;

/// Digest state for every supported hash.
#[derive(Clone)]
pub(crate) enum DigestState {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl DigestState {
    /// Fresh state for `alg`.
    pub(crate) fn new(alg: HashAlg) -> Self {
        match alg {
            HashAlg::Sha1 => DigestState::Sha1(sha1::Sha1::new()),
            HashAlg::Sha224 => DigestState::Sha224(sha2::Sha224::new()),
            HashAlg::Sha256 => DigestState::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => DigestState::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => DigestState::Sha512(sha2::Sha512::new()),
        }
    }

    fn alg(&self) -> HashAlg {
        match self {
            DigestState::Sha1(_) => HashAlg::Sha1,
            DigestState::Sha224(_) => HashAlg::Sha224,
            DigestState::Sha256(_) => HashAlg::Sha256,
            DigestState::Sha384(_) => HashAlg::Sha384,
            DigestState::Sha512(_) => HashAlg::Sha512,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            DigestState::Sha1(h) => h.update(data),
            DigestState::Sha224(h) => h.update(data),
            DigestState::Sha256(h) => h.update(data),
            DigestState::Sha384(h) => h.update(data),
            DigestState::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finalize(self) -> Vec<u8> {
        match self {
            DigestState::Sha1(h) => h.finalize().to_vec(),
            DigestState::Sha224(h) => h.finalize().to_vec(),
            DigestState::Sha256(h) => h.finalize().to_vec(),
            DigestState::Sha384(h) => h.finalize().to_vec(),
            DigestState::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// One-shot digest.
pub(crate) fn digest(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    let mut st = DigestState::new(alg);
    st.update(data);
    st.finalize()
}

impl DigestCtx for DigestState {
    fn alg(&self) -> HashAlg {
        DigestState::alg(self)
    }
    fn update(&mut self, data: &[u8]) {
        DigestState::update(self, data);
    }
    fn finalize(self: Box<Self>) -> Vec<u8> {
        DigestState::finalize(*self)
    }
    fn box_clone(&self) -> Box<dyn DigestCtx> {
        Box::new(self.clone())
    }
}

/// HMAC state for every supported hash (key schedule zeroized by the crate on drop is not
/// guaranteed, so the state is only kept inside the token and never printed).
#[derive(Clone)]
pub(crate) enum HmacState {
    Sha1(hmac::Hmac<sha1::Sha1>),
    Sha224(hmac::Hmac<sha2::Sha224>),
    Sha256(hmac::Hmac<sha2::Sha256>),
    Sha384(hmac::Hmac<sha2::Sha384>),
    Sha512(hmac::Hmac<sha2::Sha512>),
}

fn mac_init<M: KeyInit>(key: &[u8]) -> CryptoResult<M> {
    M::new_from_slice(key).map_err(|_| CryptoError::KeySize)
}

impl HmacState {
    /// Keyed HMAC state; any key length is accepted.
    pub(crate) fn new(alg: HashAlg, key: &[u8]) -> CryptoResult<Self> {
        Ok(match alg {
            HashAlg::Sha1 => HmacState::Sha1(mac_init(key)?),
            HashAlg::Sha224 => HmacState::Sha224(mac_init(key)?),
            HashAlg::Sha256 => HmacState::Sha256(mac_init(key)?),
            HashAlg::Sha384 => HmacState::Sha384(mac_init(key)?),
            HashAlg::Sha512 => HmacState::Sha512(mac_init(key)?),
        })
    }

    fn alg(&self) -> HashAlg {
        match self {
            HmacState::Sha1(_) => HashAlg::Sha1,
            HmacState::Sha224(_) => HashAlg::Sha224,
            HmacState::Sha256(_) => HashAlg::Sha256,
            HmacState::Sha384(_) => HashAlg::Sha384,
            HmacState::Sha512(_) => HashAlg::Sha512,
        }
    }
}

impl MacCtx for HmacState {
    fn output_len(&self) -> usize {
        self.alg().output_len()
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            HmacState::Sha1(m) => m.update(data),
            HmacState::Sha224(m) => m.update(data),
            HmacState::Sha256(m) => m.update(data),
            HmacState::Sha384(m) => m.update(data),
            HmacState::Sha512(m) => m.update(data),
        }
    }
    fn finalize(self: Box<Self>) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match *self {
            HmacState::Sha1(m) => m.finalize().into_bytes().to_vec(),
            HmacState::Sha224(m) => m.finalize().into_bytes().to_vec(),
            HmacState::Sha256(m) => m.finalize().into_bytes().to_vec(),
            HmacState::Sha384(m) => m.finalize().into_bytes().to_vec(),
            HmacState::Sha512(m) => m.finalize().into_bytes().to_vec(),
        })
    }
    fn box_clone(&self) -> Box<dyn MacCtx> {
        Box::new(self.clone())
    }
}

/// AES-CMAC state for the three AES key sizes.
#[derive(Clone)]
pub(crate) enum CmacState {
    Aes128(cmac::Cmac<aes::Aes128>),
    Aes192(cmac::Cmac<aes::Aes192>),
    Aes256(cmac::Cmac<aes::Aes256>),
}

impl CmacState {
    /// Keyed CMAC state; key must be 16, 24 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> CryptoResult<Self> {
        Ok(match key.len() {
            16 => CmacState::Aes128(mac_init(key)?),
            24 => CmacState::Aes192(mac_init(key)?),
            32 => CmacState::Aes256(mac_init(key)?),
            _ => return Err(CryptoError::KeySize),
        })
    }
}

impl MacCtx for CmacState {
    fn output_len(&self) -> usize {
        16
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            CmacState::Aes128(m) => m.update(data),
            CmacState::Aes192(m) => m.update(data),
            CmacState::Aes256(m) => m.update(data),
        }
    }
    fn finalize(self: Box<Self>) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match *self {
            CmacState::Aes128(m) => m.finalize().into_bytes().to_vec(),
            CmacState::Aes192(m) => m.finalize().into_bytes().to_vec(),
            CmacState::Aes256(m) => m.finalize().into_bytes().to_vec(),
        })
    }
    fn box_clone(&self) -> Box<dyn MacCtx> {
        Box::new(self.clone())
    }
}
