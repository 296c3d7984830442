//! The same primitives straight through `strongroom_pkcs11::crypto::provider()`: no PKCS#11,
//! no sessions, no object store; keys parsed once.
//!
//! The Strongroom child measures each bare figure right after the matching PKCS#11 figure
//! (same process, adjacent in time), so the Strongroom÷bare ratio suffers least from other
//! load on the machine.

use crate::common::*;
use anyhow::{anyhow, Result};
use strongroom_pkcs11::crypto::{
    provider, CryptoError, Curve, EcPrivateKey, EcPublicKey, HashAlg, RsaPrivateKey, RsaPublicKey,
};

fn c<T>(r: Result<T, CryptoError>) -> Result<T> {
    r.map_err(|e| anyhow!("crypto provider: {e}"))
}

const HASH: [u8; 32] = [0x42; 32];
const MSG: &[u8] = b"strongroom-bench message to sign";
const KEK: [u8; 32] = [0x13; 32];
const KEY: [u8; 32] = [0x37; 32];
const MAC_KEY: [u8; 32] = [0x5a; 32];

/// EC private key, public key, and a signature to verify.
type EcKeys = (Box<dyn EcPrivateKey>, Box<dyn EcPublicKey>, Vec<u8>);
/// RSA private and public key.
type RsaKeys = (Box<dyn RsaPrivateKey>, Box<dyn RsaPublicKey>);

/// Keys and inputs prepared once.
pub struct Bare {
    ec: Result<EcKeys, String>,
    rsa: Result<RsaKeys, String>,
    kib: Vec<u8>,
    k64: Vec<u8>,
    big: Vec<u8>,
}

impl Bare {
    pub fn new() -> Bare {
        let p = provider();
        let ec = (|| -> Result<_> {
            let (d, q) = c(p.ec_generate(Curve::P256))?;
            let k = c(p.ec_private(Curve::P256, &d))?;
            let sig = c(k.sign_prehashed(&HASH))?;
            Ok((k, c(p.ec_public(Curve::P256, &q))?, sig))
        })()
        .map_err(|e| e.to_string());
        eprintln!("[bare] generating RSA-2048 key");
        let rsa = (|| -> Result<_> {
            let parts = c(p.rsa_generate(2048, &[1, 0, 1]))?;
            Ok((
                c(p.rsa_private(&parts))?,
                c(p.rsa_public(&parts.n, &parts.e))?,
            ))
        })()
        .map_err(|e| e.to_string());
        Bare {
            ec,
            rsa,
            kib: vec![0x3c; 1024],
            k64: vec![0x77; 64 * 1024],
            big: vec![0xa5; 1 << 20],
        }
    }

    /// The bare figure for a main-table row, if it has one.
    pub fn measure(&self, id: &str, cfg: &Cfg) -> Option<Result<f64>> {
        let p = provider();
        let ec = || self.ec.as_ref().map_err(|e| anyhow!("{e}"));
        let rsa = || self.rsa.as_ref().map_err(|e| anyhow!("{e}"));
        let di = || c(HashAlg::Sha256.digest_info(&p.digest(HashAlg::Sha256, MSG)));
        let hmac = |data: &[u8]| -> Result<()> {
            let mut m = c(p.hmac(HashAlg::Sha256, &MAC_KEY))?;
            m.update(data);
            m.finalize();
            Ok(())
        };
        Some(match id {
            "ecdsa_sign" => {
                ec().and_then(|(k, _, _)| timed(cfg, |_| c(k.sign_prehashed(&HASH)).map(drop)))
            }
            "ecdsa_verify" => {
                ec().and_then(|(_, q, sig)| timed(cfg, |_| c(q.verify_prehashed(&HASH, sig))))
            }
            "rsa_sign_pkcs1" => {
                rsa().and_then(|(k, _)| timed(cfg, |_| c(k.sign_pkcs1v15(&di()?)).map(drop)))
            }
            "rsa_sign_pss" => rsa().and_then(|(k, _)| {
                timed(cfg, |_| {
                    let d = p.digest(HashAlg::Sha256, MSG);
                    c(k.sign_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &d)).map(drop)
                })
            }),
            "rsa_verify_pkcs1" => rsa().and_then(|(k, pk)| {
                let sig = c(k.sign_pkcs1v15(&di()?))?;
                timed(cfg, |_| c(pk.verify_pkcs1v15(&di()?, &sig)))
            }),
            "rsa_decrypt_oaep" => rsa().and_then(|(k, pk)| {
                let ct = c(pk.encrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, &[], &HASH))?;
                timed(cfg, |_| {
                    c(k.decrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, &[], &ct)).map(drop)
                })
            }),
            "aes_wrap" => timed(cfg, |_| c(p.aes_kw_wrap(&KEK, &KEY)).map(drop)),
            "aes_unwrap" => c(p.aes_kw_wrap(&KEK, &KEY))
                .and_then(|w| timed(cfg, |_| c(p.aes_kw_unwrap(&KEK, &w)).map(drop))),
            "hmac_1k" => timed(cfg, |_| hmac(&self.kib)),
            "hmac_64k" => timed(cfg, |_| hmac(&self.k64)),
            "gcm_1m" => timed(cfg, |i| {
                let mut iv = [0u8; 12];
                iv[4..].copy_from_slice(&i.to_be_bytes());
                c(p.gcm_encrypt(&KEY, &iv, &[], &self.big, 16)).map(drop)
            }),
            "cmac_1k" => timed(cfg, |_| {
                let mut m = c(p.cmac_aes(&KEY))?;
                m.update(&self.kib);
                m.finalize();
                Ok(())
            }),
            // Key generation without persistence.
            "keygen_aes" => timed(cfg, |_| {
                let mut k = [0u8; 32];
                c(p.fill_random(&mut k))
            }),
            "keygen_ec" => timed(cfg, |_| c(p.ec_generate(Curve::P256)).map(drop)),
            _ => return None,
        })
    }
}

/// Every bare figure in one go (used when the Strongroom child could not provide them).
pub fn run(cfg: &Cfg) -> Vec<(String, Measure)> {
    let bare = Bare::new();
    OPS.iter()
        .filter_map(|op| {
            bare.measure(op.id, cfg)
                .map(|r| (op.id.to_string(), record("bare", op.id, r)))
        })
        .collect()
}
