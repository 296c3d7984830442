//! Cross-provider tests: whatever one provider produces the other accepts, both give the same
//! error for the same bad input, and the AWS-LC fast paths are really taken. The known-answer
//! tests in `crypto/tests.rs` run against both providers as well.

use super::super::rustcrypto::RUSTCRYPTO;
use super::super::{CryptoError, Curve, HashAlg, Provider, RsaPrivateParts};
use super::AWSLC;

fn both() -> [&'static dyn Provider; 2] {
    [&AWSLC, &RUSTCRYPTO]
}

/// Every ordered pair (a, b) of providers, including (a, a).
fn pairs() -> Vec<(&'static dyn Provider, &'static dyn Provider)> {
    let mut v = Vec::new();
    for a in both() {
        for b in both() {
            v.push((a, b));
        }
    }
    v
}

/// `a - b` for big-endian numbers of equal length with a >= b.
fn be_sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

fn order(curve: Curve) -> Vec<u8> {
    hex::decode(match curve {
        Curve::P256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        Curve::P384 => "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// ECDSA
// ---------------------------------------------------------------------------------------------

#[test]
fn ecdsa_cross_provider() {
    for curve in [Curve::P256, Curve::P384] {
        let fl = curve.field_len();
        for gen in both() {
            let (d, q) = gen.ec_generate(curve).unwrap();
            for (signer, verifier) in pairs() {
                let sk = signer.ec_private(curve, &d).unwrap();
                let pk = verifier.ec_public(curve, &q).unwrap();
                assert_eq!(sk.public_point(), q);
                assert_eq!(pk.public_point(), q);
                for len in [0usize, 1, 20, 31, 32, 33, 47, 48, 49, 64, 100] {
                    let hash: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                    let sig = sk.sign_prehashed(&hash).unwrap();
                    let ctx = format!(
                        "{curve:?} {} -> {} len {len}",
                        signer.name(),
                        verifier.name()
                    );
                    assert_eq!(sig.len(), 2 * fl, "{ctx}");
                    assert_eq!(pk.verify_prehashed(&hash, &sig), Ok(()), "{ctx}");
                    // Bytes beyond the field length do not count; a changed byte inside does.
                    if len > fl {
                        let mut longer = hash.clone();
                        longer[len - 1] ^= 0xff;
                        assert_eq!(pk.verify_prehashed(&longer, &sig), Ok(()), "{ctx}");
                    }
                    if len > 0 {
                        let mut other = hash.clone();
                        other[0] ^= 1;
                        assert_eq!(
                            pk.verify_prehashed(&other, &sig),
                            Err(CryptoError::SignatureInvalid),
                            "{ctx}"
                        );
                    }
                    // A short hash is the same integer as its zero-padded form.
                    if len < fl {
                        let mut padded = vec![0u8; fl - len];
                        padded.extend_from_slice(&hash);
                        assert_eq!(pk.verify_prehashed(&padded, &sig), Ok(()), "{ctx}");
                    }
                }
            }
        }
    }
}

#[test]
fn ecdsa_error_parity() {
    for curve in [Curve::P256, Curve::P384] {
        let fl = curve.field_len();
        let (d, q) = RUSTCRYPTO.ec_generate(curve).unwrap();
        let hash = vec![0x5au8; 32];
        let sig = RUSTCRYPTO
            .ec_private(curve, &d)
            .unwrap()
            .sign_prehashed(&hash)
            .unwrap();
        let n = order(curve);
        let (r, s) = sig.split_at(fl);
        let high_s = [r, &be_sub(&n, s)[..]].concat();
        let r_is_n = [&n[..], s].concat();
        let zero_r = [&vec![0u8; fl][..], s].concat();
        let mut flipped = sig.clone();
        flipped[fl + 3] ^= 0x40;
        let inputs: Vec<(&str, Vec<u8>)> = vec![
            ("valid", sig.clone()),
            ("high s (n - s)", high_s),
            ("r = n", r_is_n),
            ("r = 0", zero_r),
            ("all zero", vec![0u8; 2 * fl]),
            ("all ff", vec![0xffu8; 2 * fl]),
            ("flipped bit", flipped),
            ("short", sig[1..].to_vec()),
            ("long", [&sig[..], &[0u8][..]].concat()),
            ("empty", Vec::new()),
        ];
        for (what, s) in &inputs {
            let got: Vec<_> = both()
                .iter()
                .map(|p| p.ec_public(curve, &q).unwrap().verify_prehashed(&hash, s))
                .collect();
            assert_eq!(got[0], got[1], "{curve:?} {what}");
        }
        // Both accept a valid signature, reject the mangled ones the same way.
        let rc = RUSTCRYPTO.ec_public(curve, &q).unwrap();
        assert_eq!(rc.verify_prehashed(&hash, &inputs[0].1), Ok(()));
        assert_eq!(
            rc.verify_prehashed(&hash, &inputs[7].1),
            Err(CryptoError::SignatureLen)
        );
        // Key parsing errors are the same too.
        for bad in [vec![0u8; fl], vec![0xffu8; fl], vec![1u8; fl + 1]] {
            assert_eq!(
                AWSLC.ec_private(curve, &bad).err(),
                RUSTCRYPTO.ec_private(curve, &bad).err()
            );
        }
        let mut off = q.clone();
        off[fl] ^= 1;
        assert_eq!(
            AWSLC.ec_public(curve, &off).err(),
            RUSTCRYPTO.ec_public(curve, &off).err()
        );
    }
}

#[test]
fn ec_fast_path_is_taken() {
    for curve in [Curve::P256, Curve::P384] {
        let (d, q) = AWSLC.ec_generate(curve).unwrap();
        assert!(super::ec::parse_private(curve, &d).unwrap().is_fast());
        assert!(super::ec::parse_public(curve, &q).unwrap().is_fast());
        // A compressed point is accepted (RustCrypto decompresses it for AWS-LC).
        let mut compressed = vec![0x02 | (q[q.len() - 1] & 1)];
        compressed.extend_from_slice(&q[1..=curve.field_len()]);
        let pk = super::ec::parse_public(curve, &compressed).unwrap();
        assert!(pk.is_fast());
        use super::super::EcPublicKey;
        assert_eq!(pk.public_point(), q);
    }
}

// ---------------------------------------------------------------------------------------------
// RSA
// ---------------------------------------------------------------------------------------------

fn keys() -> &'static [RsaPrivateParts; 2] {
    static KEYS: std::sync::OnceLock<[RsaPrivateParts; 2]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        [
            AWSLC.rsa_generate(2048, &[1, 0, 1]).unwrap(),
            RUSTCRYPTO.rsa_generate(2048, &[1, 0, 1]).unwrap(),
        ]
    })
}

/// A 1024-bit key: below what AWS-LC accepts, so every operation takes the RustCrypto path.
fn small_key() -> RsaPrivateParts {
    use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let mut rng = super::super::rustcrypto::OsRng;
    let key = ::rsa::PrivateKey::new(&mut rng, 1024).unwrap();
    let bare = RsaPrivateParts {
        n: key.n_bytes().to_vec(),
        e: key.e_bytes().to_vec(),
        d: super::super::Zeroizing::new(key.d().to_be_bytes().to_vec()),
        ..Default::default()
    };
    RUSTCRYPTO
        .rsa_private(&bare)
        .unwrap()
        .private_parts()
        .unwrap()
}

#[test]
fn rsa_keys_are_consistent_across_providers() {
    for (i, parts) in keys().iter().enumerate() {
        assert_eq!(super::super::bit_len(&parts.n), 2048, "key {i}");
        assert_eq!(parts.e, [1, 0, 1]);
        // Both providers accept the key and agree on its public parts and recomputed parts.
        for p in both() {
            let sk = p.rsa_private(parts).unwrap();
            assert_eq!(sk.public_parts(), (parts.n.clone(), parts.e.clone()));
            let again = sk.private_parts().unwrap();
            assert_eq!(again.n, parts.n);
            assert_eq!(&again.d[..], &parts.d[..]);
        }
        assert!(super::rsa::parse_private(parts).unwrap().is_fast());
        assert!(super::rsa::parse_public(&parts.n, &parts.e)
            .unwrap()
            .is_fast());
    }
    assert_eq!(
        AWSLC.rsa_generate(1024, &[1, 0, 1]).err(),
        Some(CryptoError::KeySize)
    );
    assert_eq!(
        AWSLC.rsa_generate(2048, &[3]).err(),
        Some(CryptoError::Unsupported)
    );
    assert_eq!(
        AWSLC.rsa_generate(1000, &[3]).err(),
        RUSTCRYPTO.rsa_generate(1000, &[3]).err()
    );
}

#[test]
fn rsa_pkcs1v15_signatures_identical() {
    for parts in keys() {
        let sks: Vec<_> = both()
            .iter()
            .map(|p| p.rsa_private(parts).unwrap())
            .collect();
        let pks: Vec<_> = both()
            .iter()
            .map(|p| p.rsa_public(&parts.n, &parts.e).unwrap())
            .collect();
        let mut inputs: Vec<Vec<u8>> = HashAlg::ALL
            .iter()
            .map(|&a| a.digest_info(&RUSTCRYPTO.digest(a, b"msg")).unwrap())
            .collect();
        inputs.push(b"raw CKM_RSA_PKCS data".to_vec());
        inputs.push(vec![7u8; 245]);
        // A DigestInfo prefix with a digest of the wrong length is raw data.
        let mut odd = HashAlg::Sha256.digest_info_prefix().to_vec();
        odd.extend_from_slice(&[1u8; 31]);
        inputs.push(odd);
        for data in &inputs {
            let sigs: Vec<_> = sks.iter().map(|k| k.sign_pkcs1v15(data).unwrap()).collect();
            // PKCS#1 v1.5 signing is deterministic: the providers must agree byte for byte.
            assert_eq!(sigs[0], sigs[1], "data len {}", data.len());
            for pk in &pks {
                assert_eq!(pk.verify_pkcs1v15(data, &sigs[0]), Ok(()));
                let mut bad = sigs[0].clone();
                bad[17] ^= 1;
                assert_eq!(
                    pk.verify_pkcs1v15(data, &bad),
                    Err(CryptoError::SignatureInvalid)
                );
            }
        }
        // Signature of one DigestInfo does not verify another hash's DigestInfo.
        let d256 = HashAlg::Sha256
            .digest_info(&RUSTCRYPTO.digest(HashAlg::Sha256, b"msg"))
            .unwrap();
        let d384 = HashAlg::Sha384
            .digest_info(&RUSTCRYPTO.digest(HashAlg::Sha384, b"msg"))
            .unwrap();
        let sig = sks[0].sign_pkcs1v15(&d256).unwrap();
        for pk in &pks {
            assert_eq!(
                pk.verify_pkcs1v15(&d384, &sig),
                Err(CryptoError::SignatureInvalid)
            );
        }
    }
}

#[test]
fn rsa_pss_cross_provider() {
    let combos = [
        (HashAlg::Sha256, HashAlg::Sha256),
        (HashAlg::Sha384, HashAlg::Sha384),
        (HashAlg::Sha512, HashAlg::Sha512),
        (HashAlg::Sha1, HashAlg::Sha1),
        (HashAlg::Sha224, HashAlg::Sha224),
        (HashAlg::Sha256, HashAlg::Sha1),
    ];
    let parts = &keys()[0];
    for (signer, verifier) in pairs() {
        let sk = signer.rsa_private(parts).unwrap();
        let pk = verifier.rsa_public(&parts.n, &parts.e).unwrap();
        for (hash, mgf) in combos {
            let digest = RUSTCRYPTO.digest(hash, b"pss");
            let h_len = hash.output_len();
            for salt in [0usize, h_len, 100] {
                let sig = sk.sign_pss(hash, mgf, salt, &digest).unwrap();
                let ctx = format!(
                    "{} -> {} {hash:?}/{mgf:?} salt {salt}",
                    signer.name(),
                    verifier.name()
                );
                assert_eq!(
                    pk.verify_pss(hash, mgf, salt, &digest, &sig),
                    Ok(()),
                    "{ctx}"
                );
                // The salt length must match exactly, in both directions around hLen.
                for other in [0usize, h_len, h_len - 1, h_len + 1, 100] {
                    if other != salt {
                        assert_eq!(
                            pk.verify_pss(hash, mgf, other, &digest, &sig),
                            Err(CryptoError::SignatureInvalid),
                            "{ctx} verified as salt {other}"
                        );
                    }
                }
                let mut bad = sig.clone();
                bad[200] ^= 2;
                assert_eq!(
                    pk.verify_pss(hash, mgf, salt, &digest, &bad),
                    Err(CryptoError::SignatureInvalid),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn rsa_oaep_and_pkcs1v15_encryption_cross_provider() {
    let msg = b"thirty-two byte key for wrapping";
    let parts = &keys()[1];
    for (enc, dec) in pairs() {
        let pk = enc.rsa_public(&parts.n, &parts.e).unwrap();
        let sk = dec.rsa_private(parts).unwrap();
        for hash in HashAlg::ALL {
            for (mgf, label) in [
                (hash, &b""[..]),
                (hash, &b"label"[..]),
                (HashAlg::Sha1, &b"L"[..]),
            ] {
                let ctx = format!("{} -> {} {hash:?}/{mgf:?}", enc.name(), dec.name());
                let ct = pk.encrypt_oaep(hash, mgf, label, msg).unwrap();
                assert_eq!(ct.len(), 256);
                assert_eq!(
                    &sk.decrypt_oaep(hash, mgf, label, &ct).unwrap()[..],
                    &msg[..],
                    "{ctx}"
                );
                assert_eq!(
                    sk.decrypt_oaep(hash, mgf, b"other", &ct),
                    Err(CryptoError::EncryptedDataInvalid),
                    "{ctx}"
                );
                let wrong_hash = if hash == HashAlg::Sha512 {
                    HashAlg::Sha384
                } else {
                    HashAlg::Sha512
                };
                assert_eq!(
                    sk.decrypt_oaep(wrong_hash, wrong_hash, label, &ct),
                    Err(CryptoError::EncryptedDataInvalid),
                    "{ctx}"
                );
                // Empty plaintext and the maximum length.
                let max = 256 - 2 * hash.output_len() - 2;
                for pt in [Vec::new(), vec![0xa5u8; max]] {
                    let ct = pk.encrypt_oaep(hash, mgf, label, &pt).unwrap();
                    assert_eq!(
                        &sk.decrypt_oaep(hash, mgf, label, &ct).unwrap()[..],
                        &pt[..]
                    );
                }
            }
        }
        let ct = pk.encrypt_pkcs1v15(msg).unwrap();
        assert_eq!(&sk.decrypt_pkcs1v15(&ct).unwrap()[..], &msg[..]);
        let ct = pk.encrypt_pkcs1v15(&[]).unwrap();
        assert!(sk.decrypt_pkcs1v15(&ct).unwrap().is_empty());
    }
}

/// Same input, same result (`Ok` payloads compared only where deterministic).
#[test]
fn rsa_error_parity() {
    let parts = &keys()[0];
    let sks: Vec<_> = both()
        .iter()
        .map(|p| p.rsa_private(parts).unwrap())
        .collect();
    let pks: Vec<_> = both()
        .iter()
        .map(|p| p.rsa_public(&parts.n, &parts.e).unwrap())
        .collect();
    let k = 256;
    let di = HashAlg::Sha256.digest_info(&[3u8; 32]).unwrap();
    let sig = sks[1].sign_pkcs1v15(&di).unwrap();
    let pss = sks[1]
        .sign_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &[3u8; 32])
        .unwrap();
    let n = parts.n.clone();
    let mut n_plus = n.clone();
    n_plus[k - 1] = n_plus[k - 1].wrapping_add(1);
    let sig_inputs: Vec<(&str, Vec<u8>)> = vec![
        ("valid", sig.clone()),
        ("short", sig[1..].to_vec()),
        ("long", [&sig[..], &[0][..]].concat()),
        ("zero", vec![0u8; k]),
        ("one", {
            let mut v = vec![0u8; k];
            v[k - 1] = 1;
            v
        }),
        ("n", n.clone()),
        ("n+1", n_plus.clone()),
        ("ff", vec![0xffu8; k]),
        ("pss sig", pss.clone()),
    ];
    for (what, s) in &sig_inputs {
        let a = pks[0].verify_pkcs1v15(&di, s);
        let b = pks[1].verify_pkcs1v15(&di, s);
        assert_eq!(a, b, "pkcs1 verify {what}");
        let a = pks[0].verify_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &[3u8; 32], s);
        let b = pks[1].verify_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &[3u8; 32], s);
        assert_eq!(a, b, "pss verify {what}");
        for (hash, mgf) in [
            (HashAlg::Sha256, HashAlg::Sha256),
            (HashAlg::Sha1, HashAlg::Sha1),
            (HashAlg::Sha256, HashAlg::Sha1),
        ] {
            let a = sks[0].decrypt_oaep(hash, mgf, b"", s);
            let b = sks[1].decrypt_oaep(hash, mgf, b"", s);
            assert_eq!(a, b, "oaep decrypt {what} {hash:?}/{mgf:?}");
        }
    }
    // Length and parameter errors.
    for (i, (sk, pk)) in sks.iter().zip(&pks).enumerate() {
        let ctx = both()[i].name();
        assert_eq!(
            pk.verify_pkcs1v15(&[1u8; 246], &sig),
            Err(CryptoError::DataLen),
            "{ctx}"
        );
        assert_eq!(
            pk.verify_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &[3u8; 31], &pss),
            Err(CryptoError::DataLen),
            "{ctx}"
        );
        assert_eq!(
            sk.sign_pkcs1v15(&[1u8; 246]),
            Err(CryptoError::DataLen),
            "{ctx}"
        );
        assert_eq!(
            sk.sign_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &[3u8; 33]),
            Err(CryptoError::DataLen),
            "{ctx}"
        );
        assert_eq!(
            sk.sign_pss(HashAlg::Sha256, HashAlg::Sha256, 223, &[3u8; 32]),
            Err(CryptoError::ParamInvalid),
            "{ctx}"
        );
        for hash in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512] {
            let max = k - 2 * hash.output_len() - 2;
            assert_eq!(
                pk.encrypt_oaep(hash, hash, b"", &vec![0u8; max + 1]),
                Err(CryptoError::DataLen),
                "{ctx}"
            );
            assert_eq!(
                sk.decrypt_oaep(hash, hash, b"", &[1u8; 255]),
                Err(CryptoError::EncryptedDataLen),
                "{ctx}"
            );
        }
        assert_eq!(
            pk.encrypt_pkcs1v15(&[0u8; 246]),
            Err(CryptoError::DataLen),
            "{ctx}"
        );
    }
    // Key parsing errors.
    let mut bad = parts.clone();
    bad.p[10] ^= 1;
    assert_eq!(
        AWSLC.rsa_private(&bad).err(),
        RUSTCRYPTO.rsa_private(&bad).err()
    );
    assert_eq!(
        AWSLC.rsa_public(&parts.n[..64], &parts.e).err(),
        RUSTCRYPTO.rsa_public(&parts.n[..64], &parts.e).err()
    );
    assert_eq!(
        AWSLC.rsa_public(&parts.n, &[]).err(),
        RUSTCRYPTO.rsa_public(&parts.n, &[]).err()
    );
}

/// The AWS-LC paths themselves succeed (the public methods would fall back silently), and what
/// they produce is accepted by RustCrypto.
#[test]
fn fast_paths_are_taken() {
    for curve in [Curve::P256, Curve::P384] {
        let (d, q) = AWSLC.ec_generate(curve).unwrap();
        let sk = super::ec::parse_private(curve, &d).unwrap();
        let rc = RUSTCRYPTO.ec_public(curve, &q).unwrap();
        for len in [0usize, 20, 32, 48, 64] {
            let hash = vec![0x11u8; len];
            let sig = sk.try_fast_sign(&hash).expect("AWS-LC ECDSA sign");
            assert_eq!(rc.verify_prehashed(&hash, &sig), Ok(()));
        }
    }
    let parts = &keys()[1];
    let sk = super::rsa::parse_private(parts).unwrap();
    let pk = super::rsa::parse_public(&parts.n, &parts.e).unwrap();
    assert!(sk.fast_oaep());
    assert!(pk.all_fast_forms());
    let rc_sk = RUSTCRYPTO.rsa_private(parts).unwrap();
    let rc_pk = RUSTCRYPTO.rsa_public(&parts.n, &parts.e).unwrap();
    for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let digest = RUSTCRYPTO.digest(hash, b"fast");
        let di = hash.digest_info(&digest).unwrap();
        let sig = sk.try_fast_pkcs1(&di).expect("AWS-LC PKCS#1 sign");
        assert_eq!(sig, rc_sk.sign_pkcs1v15(&di).unwrap());
        let sig = sk
            .try_fast_pss(hash, hash, hash.output_len(), &digest)
            .expect("AWS-LC PSS sign");
        assert_eq!(
            rc_pk.verify_pss(hash, hash, hash.output_len(), &digest, &sig),
            Ok(())
        );
    }
    assert!(sk.try_fast_pkcs1(b"raw").is_none());
    assert!(sk
        .try_fast_pss(HashAlg::Sha256, HashAlg::Sha1, 32, &[0u8; 32])
        .is_none());
    assert!(sk
        .try_fast_pss(HashAlg::Sha256, HashAlg::Sha256, 20, &[0u8; 32])
        .is_none());
    for hash in [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ] {
        let ct = pk
            .try_fast_encrypt_oaep(hash, hash, b"lbl", b"pt")
            .expect("AWS-LC OAEP encrypt");
        assert_eq!(
            &rc_sk.decrypt_oaep(hash, hash, b"lbl", &ct).unwrap()[..],
            b"pt"
        );
    }
    let ct = pk
        .try_fast_encrypt_pkcs1(b"pt")
        .expect("AWS-LC PKCS#1 encrypt");
    assert_eq!(&rc_sk.decrypt_pkcs1v15(&ct).unwrap()[..], b"pt");
}

#[test]
fn rsa_small_key_falls_back() {
    let parts = small_key();
    assert_eq!(super::super::bit_len(&parts.n), 1024);
    let sk = super::rsa::parse_private(&parts).unwrap();
    let pk = super::rsa::parse_public(&parts.n, &parts.e).unwrap();
    assert!(!sk.is_fast() && !pk.is_fast());
    use super::super::{RsaPrivateKey, RsaPublicKey};
    let rc = RUSTCRYPTO.rsa_public(&parts.n, &parts.e).unwrap();
    let di = HashAlg::Sha256.digest_info(&[1u8; 32]).unwrap();
    assert_eq!(
        rc.verify_pkcs1v15(&di, &sk.sign_pkcs1v15(&di).unwrap()),
        Ok(())
    );
    let d = [2u8; 32];
    let sig = sk
        .sign_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &d)
        .unwrap();
    assert_eq!(
        pk.verify_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &d, &sig),
        Ok(())
    );
    let ct = pk
        .encrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, b"", b"x")
        .unwrap();
    assert_eq!(
        &sk.decrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, b"", &ct)
            .unwrap()[..],
        b"x"
    );
}

// ---------------------------------------------------------------------------------------------
// Throughput, for comparing the providers:
//   cargo test --release --lib -- --ignored --nocapture provider_throughput
// ---------------------------------------------------------------------------------------------

fn rate(what: &str, provider: &str, mut op: impl FnMut()) {
    use std::time::{Duration, Instant};
    op();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_millis(1500) {
        op();
        n += 1;
    }
    let per_s = f64::from(n) / start.elapsed().as_secs_f64();
    println!("{provider:>10}  {what:<28} {per_s:>10.0} ops/s");
}

#[test]
#[ignore = "benchmark; run in release with --nocapture"]
fn provider_throughput() {
    let parts = &keys()[0];
    let (d, q) = RUSTCRYPTO.ec_generate(Curve::P256).unwrap();
    let hash = RUSTCRYPTO.digest(HashAlg::Sha256, b"benchmark message");
    let di = HashAlg::Sha256.digest_info(&hash).unwrap();
    for p in both() {
        let name = p.name();
        let sk = p.ec_private(Curve::P256, &d).unwrap();
        let pk = p.ec_public(Curve::P256, &q).unwrap();
        let sig = sk.sign_prehashed(&hash).unwrap();
        rate("P-256 ECDSA sign", name, || {
            sk.sign_prehashed(&hash).unwrap();
        });
        rate("P-256 ECDSA verify", name, || {
            pk.verify_prehashed(&hash, &sig).unwrap();
        });
        let rsk = p.rsa_private(parts).unwrap();
        let rpk = p.rsa_public(&parts.n, &parts.e).unwrap();
        let rsig = rsk.sign_pkcs1v15(&di).unwrap();
        rate("RSA-2048 PKCS#1 sign", name, || {
            rsk.sign_pkcs1v15(&di).unwrap();
        });
        rate("RSA-2048 PKCS#1 verify", name, || {
            rpk.verify_pkcs1v15(&di, &rsig).unwrap();
        });
        rate("RSA-2048 PSS-SHA256 sign", name, || {
            rsk.sign_pss(HashAlg::Sha256, HashAlg::Sha256, 32, &hash)
                .unwrap();
        });
        let ct = rpk
            .encrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, b"", &hash)
            .unwrap();
        rate("RSA-2048 OAEP-SHA256 decrypt", name, || {
            rsk.decrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, b"", &ct)
                .unwrap();
        });
        let ct1 = rpk.encrypt_pkcs1v15(&hash).unwrap();
        rate("RSA-2048 PKCS#1 decrypt", name, || {
            rsk.decrypt_pkcs1v15(&ct1).unwrap();
        });
        rate("RSA-2048 OAEP encrypt", name, || {
            rpk.encrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, b"", &hash)
                .unwrap();
        });
        rate("P-256 keygen", name, || {
            p.ec_generate(Curve::P256).unwrap();
        });
        let keys: u32 = std::env::var("KEYGEN_SAMPLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        for bits in [2048usize, 3072, 4096] {
            let start = std::time::Instant::now();
            for _ in 0..keys {
                p.rsa_generate(bits, &[1, 0, 1]).unwrap();
            }
            println!(
                "{name:>10}  RSA-{bits} keygen ({keys} keys)     {:>10.0} ms/key",
                start.elapsed().as_secs_f64() * 1000.0 / f64::from(keys)
            );
        }
    }
    // AWS-LC's own RSA key generation, which the provider does not use (it is no faster).
    let keys: u32 = std::env::var("KEYGEN_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for (bits, size) in [
        (2048, aws_lc_rs::rsa::KeySize::Rsa2048),
        (3072, aws_lc_rs::rsa::KeySize::Rsa3072),
        (4096, aws_lc_rs::rsa::KeySize::Rsa4096),
    ] {
        let start = std::time::Instant::now();
        for _ in 0..keys {
            aws_lc_rs::rsa::KeyPair::generate(size).unwrap();
        }
        println!(
            "{:>10}  RSA-{bits} keygen ({keys} keys)     {:>10.0} ms/key",
            "aws-lc-rs",
            start.elapsed().as_secs_f64() * 1000.0 / f64::from(keys)
        );
    }
}
