//! Known-answer and round-trip tests for the crypto provider (all through the public trait).

use super::*;

fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("test vector hex")
}

/// Runs each named test (a `fn(&'static dyn Provider)`) once per built-in provider, as
/// `<provider>::<name>`.
macro_rules! provider_tests {
    ($($name:ident),* $(,)?) => {
        mod rustcrypto_provider {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::crypto::rustcrypto::RUSTCRYPTO)
                }
            )*
        }
        #[cfg(feature = "aws-lc")]
        mod awslc_provider {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::crypto::awslc::AWSLC)
                }
            )*
        }
    };
}

provider_tests!(
    sha_kat_fips180,
    hmac_kat_rfc4231_rfc2202,
    cmac_kat_rfc4493,
    aes_modes_kat_sp800_38a,
    aes_bad_key_and_partial_blocks,
    cbc_pad_roundtrip_all_lengths,
    cbc_pad_rejects_bad_padding,
    ctr_counter_bits_and_wrap_refusal,
    gcm_kat_mcgrew_viega,
    gcm_tamper_and_params,
    gcm_kat_non96_iv_mcgrew_viega_tc5,
    kw_kat_rfc3394,
    kwp_kat_rfc5649,
    hkdf_kat_rfc5869,
    x963_kdf_structure,
    ec_public_from_private_rfc6979_keys,
    ecdsa_verify_rfc6979_vectors,
    ecdh_kat_cavp_p256_count0,
    ec_generate_sign_verify_ecdh_roundtrip,
    rsa_pkcs1v15_verify_wycheproof,
    rsa_generate_and_parse,
    rsa_pkcs1v15_sign_verify,
    rsa_pss_roundtrip,
    rsa_oaep_and_pkcs1v15_encryption,
    rsa_raw_x509,
    rsa_private_parts_recomputes_crt,
    ed25519_kat_rfc8032,
    ed25519_generate_and_bad_inputs,
);

#[test]
fn default_provider_and_list() {
    let names: Vec<&str> = providers().iter().map(|p| p.name()).collect();
    assert_eq!(names[0], provider().name());
    assert!(names.contains(&"rustcrypto"));
    #[cfg(feature = "aws-lc")]
    assert_eq!(names, ["aws-lc", "rustcrypto"]);
    #[cfg(not(feature = "aws-lc"))]
    assert_eq!(names, ["rustcrypto"]);
}

// ---------------------------------------------------------------------------------------------
// SHA (FIPS 180-4 examples, "abc" / empty / two-block message)
// ---------------------------------------------------------------------------------------------

fn sha_kat_fips180(prov: &'static dyn Provider) {
    let p = || prov;
    let two_block = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    let cases: &[(HashAlg, &[u8], &str)] = &[
        (HashAlg::Sha1, b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (HashAlg::Sha1, two_block, "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (HashAlg::Sha224, b"abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
        (HashAlg::Sha256, b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (HashAlg::Sha256, b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (HashAlg::Sha256, two_block, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (HashAlg::Sha384, b"abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        (HashAlg::Sha512, b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    ];
    for (alg, msg, want) in cases {
        assert_eq!(p().digest(*alg, msg), h(want), "{alg:?}");
        assert_eq!(p().digest(*alg, msg).len(), alg.output_len());
        // Incremental, byte by byte, with a clone half-way.
        let mut ctx = p().digest_ctx(*alg);
        assert_eq!(ctx.alg(), *alg);
        let (a, b) = msg.split_at(msg.len() / 2);
        for byte in a {
            ctx.update(std::slice::from_ref(byte));
        }
        let copy = ctx.box_clone();
        ctx.update(b);
        assert_eq!(ctx.finalize(), h(want));
        // The clone is independent: finishing it with the same tail gives the same digest.
        let mut copy = copy;
        copy.update(b);
        assert_eq!(copy.finalize(), h(want));
    }
}

#[test]
fn digest_info_prefixes() {
    // Lengths and the OID arc (RFC 8017 §9.2 note 1): prefix || hash is a complete DER SEQUENCE.
    for alg in HashAlg::ALL {
        let di = alg.digest_info(&vec![0u8; alg.output_len()]).unwrap();
        assert_eq!(di[0], 0x30);
        assert_eq!(di[1] as usize, di.len() - 2, "{alg:?}");
        assert_eq!(
            *di.iter().rev().nth(alg.output_len()).unwrap() as usize,
            alg.output_len()
        );
        assert_eq!(alg.digest_info(&[0u8; 3]), Err(CryptoError::DataLen));
    }
    assert_eq!(
        HashAlg::Sha256.digest_info_prefix(),
        &h("3031300d060960864801650304020105000420")[..]
    );
    assert_eq!(
        HashAlg::Sha1.digest_info_prefix(),
        &h("3021300906052b0e03021a05000414")[..]
    );
}

// ---------------------------------------------------------------------------------------------
// HMAC: RFC 2202 (SHA-1) and RFC 4231 (SHA-2) test cases 1, 2, 3, 6
// ---------------------------------------------------------------------------------------------

fn hmac_kat_rfc4231_rfc2202(prov: &'static dyn Provider) {
    let p = || prov;
    let k1 = vec![0x0bu8; 20];
    let k3 = vec![0xaau8; 20];
    let d3 = vec![0xddu8; 50];
    let k6 = vec![0xaau8; 131];
    let m6: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";
    let cases: &[(HashAlg, &[u8], &[u8], &str)] = &[
        // RFC 2202 §3 test cases 1 and 2
        (HashAlg::Sha1, &k1, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
        (HashAlg::Sha1, b"Jefe", b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        // RFC 4231 §4.2 test case 1
        (HashAlg::Sha224, &k1, b"Hi There", "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"),
        (HashAlg::Sha256, &k1, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (HashAlg::Sha384, &k1, b"Hi There", "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
        (HashAlg::Sha512, &k1, b"Hi There", "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
        // RFC 4231 §4.3 test case 2
        (HashAlg::Sha224, b"Jefe", b"what do ya want for nothing?", "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"),
        (HashAlg::Sha256, b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (HashAlg::Sha384, b"Jefe", b"what do ya want for nothing?", "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        (HashAlg::Sha512, b"Jefe", b"what do ya want for nothing?", "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        // RFC 4231 §4.4 test case 3
        (HashAlg::Sha256, &k3, &d3, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (HashAlg::Sha512, &k3, &d3, "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"),
        // RFC 4231 §4.7 test case 6 (key longer than the block)
        (HashAlg::Sha256, &k6, m6, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ];
    for (alg, key, msg, want) in cases {
        let mut mac = p().hmac(*alg, key).unwrap();
        assert_eq!(mac.output_len(), alg.output_len());
        let copy = mac.box_clone();
        mac.update(msg);
        assert_eq!(&mac.finalize()[..], &h(want)[..], "{alg:?}");
        let mut copy = copy;
        copy.update(msg);
        assert_eq!(&copy.finalize()[..], &h(want)[..]);
    }
    // Empty key is allowed.
    assert!(p().hmac(HashAlg::Sha256, b"").is_ok());
}

// ---------------------------------------------------------------------------------------------
// AES-CMAC: RFC 4493 §4 examples 1-4
// ---------------------------------------------------------------------------------------------

const SP800_38A_PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                            30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const AES128_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const AES256_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";

fn cmac_kat_rfc4493(prov: &'static dyn Provider) {
    let p = || prov;
    let m = h(SP800_38A_PT);
    let cases: &[(usize, &str)] = &[
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ];
    for (len, want) in cases {
        let mut mac = p().cmac_aes(&h(AES128_KEY)).unwrap();
        assert_eq!(mac.output_len(), 16);
        mac.update(&m[..*len]);
        assert_eq!(&mac.finalize()[..], &h(want)[..], "len {len}");
    }
    for bad in [0usize, 8, 15, 17, 33] {
        assert!(matches!(
            p().cmac_aes(&vec![0u8; bad]),
            Err(CryptoError::KeySize)
        ));
    }
}

#[test]
fn ct_eq_works() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(ct_eq(b"", b""));
}

// ---------------------------------------------------------------------------------------------
// AES block modes: NIST SP 800-38A F.1.1/F.1.5 (ECB), F.2.1/F.2.5 (CBC), F.5.1/F.5.5 (CTR)
// ---------------------------------------------------------------------------------------------

fn sp800_38a_cases() -> Vec<(&'static str, AesMode, &'static str, &'static str)> {
    let iv: [u8; 16] = h("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
    let ctr: [u8; 16] = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap();
    let ctr_mode = AesMode::Ctr {
        counter_block: ctr,
        counter_bits: 128,
    };
    vec![
        ("F.1.1", AesMode::Ecb, AES128_KEY,
         "3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf 43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4"),
        ("F.1.5", AesMode::Ecb, AES256_KEY,
         "f3eed1bdb5d2a03c064b5a7e3db181f8 591ccb10d410ed26dc5ba74a31362870 b6ed21b99ca6f4f9f153e7b1beafed1d 23304b7a39f9f3ff067d8d8f9e24ecc7"),
        ("F.2.1", AesMode::Cbc { iv }, AES128_KEY,
         "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7"),
        ("F.2.5", AesMode::Cbc { iv }, AES256_KEY,
         "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d 39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b"),
        ("F.5.1", ctr_mode, AES128_KEY,
         "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff 5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee"),
        ("F.5.5", ctr_mode, AES256_KEY,
         "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5 2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6"),
    ]
}

fn aes_modes_kat_sp800_38a(prov: &'static dyn Provider) {
    let p = || prov;
    let pt = h(SP800_38A_PT);
    for (name, mode, key, ct) in sp800_38a_cases() {
        let key = h(key);
        let ct = h(ct);
        assert_eq!(
            &p().aes_oneshot(mode, &key, true, &pt).unwrap()[..],
            &ct[..],
            "{name} enc"
        );
        assert_eq!(
            &p().aes_oneshot(mode, &key, false, &ct).unwrap()[..],
            &pt[..],
            "{name} dec"
        );
        // Streaming in odd-sized pieces gives the same result, and update_len is exact.
        for encrypt in [true, false] {
            let (input, want) = if encrypt { (&pt, &ct) } else { (&ct, &pt) };
            let mut ctx = p().aes_cipher(mode, &key, encrypt).unwrap();
            let mut out = Vec::new();
            for piece in input.chunks(7) {
                let n = ctx.update_len(piece.len());
                let got = ctx.update(piece).unwrap();
                assert_eq!(got.len(), n, "{name} update_len");
                out.extend_from_slice(&got);
            }
            assert_eq!(ctx.final_len(), 0);
            out.extend_from_slice(&ctx.finalize().unwrap());
            assert_eq!(&out, want, "{name} streaming");
        }
    }
}

fn aes_bad_key_and_partial_blocks(prov: &'static dyn Provider) {
    let p = || prov;
    for bad in [0usize, 1, 15, 17, 31, 33, 64] {
        assert!(matches!(
            p().aes_cipher(AesMode::Ecb, &vec![0u8; bad], true),
            Err(CryptoError::KeySize)
        ));
        assert_eq!(
            p().gcm_encrypt(&vec![0u8; bad], &[0u8; 12], b"", b"", 16),
            Err(CryptoError::KeySize)
        );
        assert_eq!(
            p().aes_kw_wrap(&vec![0u8; bad], &[0u8; 16]),
            Err(CryptoError::KeySize)
        );
    }
    let key = [7u8; 16];
    let iv = [1u8; 16];
    for mode in [AesMode::Ecb, AesMode::Cbc { iv }] {
        assert_eq!(
            p().aes_oneshot(mode, &key, true, &[0u8; 17]),
            Err(CryptoError::DataLen)
        );
        assert_eq!(
            p().aes_oneshot(mode, &key, false, &[0u8; 31]),
            Err(CryptoError::EncryptedDataLen)
        );
        assert_eq!(p().aes_oneshot(mode, &key, true, &[]).unwrap().len(), 0);
    }
    // CBC-PAD decrypt of a non-multiple or empty input.
    assert_eq!(
        p().aes_oneshot(AesMode::CbcPad { iv }, &key, false, &[0u8; 17]),
        Err(CryptoError::EncryptedDataLen)
    );
    assert_eq!(
        p().aes_oneshot(AesMode::CbcPad { iv }, &key, false, &[]),
        Err(CryptoError::EncryptedDataLen)
    );
}

fn cbc_pad_roundtrip_all_lengths(prov: &'static dyn Provider) {
    let p = || prov;
    let key = h(AES256_KEY);
    let iv: [u8; 16] = h("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
    let mode = AesMode::CbcPad { iv };
    for len in 0..=33usize {
        let pt: Vec<u8> = (0..len as u8).collect();
        let ct = p().aes_oneshot(mode, &key, true, &pt).unwrap();
        assert_eq!(ct.len(), (len / 16 + 1) * 16, "len {len}");
        // Padding is PKCS#7: CBC-decrypting without padding removal shows it.
        let raw = p()
            .aes_oneshot(AesMode::Cbc { iv }, &key, false, &ct)
            .unwrap();
        let pad = 16 - len % 16;
        assert!(raw[len..].iter().all(|&b| b as usize == pad), "len {len}");
        assert_eq!(
            &p().aes_oneshot(mode, &key, false, &ct).unwrap()[..],
            &pt[..]
        );
        // Streaming decrypt: update never releases the last block; final_len is an upper bound.
        let mut ctx = p().aes_cipher(mode, &key, false).unwrap();
        let mut out = Vec::new();
        for piece in ct.chunks(5) {
            let n = ctx.update_len(piece.len());
            let got = ctx.update(piece).unwrap();
            assert_eq!(got.len(), n);
            out.extend_from_slice(&got);
        }
        assert_eq!(out.len(), ct.len() - 16);
        let max = ctx.final_len();
        let fin = ctx.finalize().unwrap();
        assert!(fin.len() <= max);
        out.extend_from_slice(&fin);
        assert_eq!(out, pt);
        // Streaming encrypt: final_len exact.
        let mut ctx = p().aes_cipher(mode, &key, true).unwrap();
        let mut out = ctx.update(&pt).unwrap().to_vec();
        assert_eq!(ctx.final_len(), 16);
        out.extend_from_slice(&ctx.finalize().unwrap());
        assert_eq!(&out[..], &ct[..]);
    }
}

fn cbc_pad_rejects_bad_padding(prov: &'static dyn Provider) {
    let p = || prov;
    let key = [9u8; 16];
    let iv = [3u8; 16];
    // Craft last plaintext blocks with invalid padding by CBC-encrypting without padding.
    let bad_blocks: Vec<[u8; 16]> = vec![
        [0u8; 16], // pad byte 0
        {
            let mut b = [0u8; 16];
            b[15] = 17;
            b
        }, // pad byte > 16
        {
            let mut b = [2u8; 16];
            b[14] = 3;
            b
        }, // inconsistent pad bytes
        {
            let mut b = [16u8; 16];
            b[0] = 15;
            b
        }, // full-block pad with one bad byte
    ];
    for blk in bad_blocks {
        let ct = p()
            .aes_oneshot(AesMode::Cbc { iv }, &key, true, &blk)
            .unwrap();
        assert_eq!(
            p().aes_oneshot(AesMode::CbcPad { iv }, &key, false, &ct),
            Err(CryptoError::EncryptedDataInvalid)
        );
    }
    // And valid edge cases: pad 16 and pad 1.
    for (blk, keep) in [
        ([16u8; 16], 0usize),
        (
            {
                let mut b = [0xffu8; 16];
                b[15] = 1;
                b
            },
            15,
        ),
    ] {
        let ct = p()
            .aes_oneshot(AesMode::Cbc { iv }, &key, true, &blk)
            .unwrap();
        assert_eq!(
            p().aes_oneshot(AesMode::CbcPad { iv }, &key, false, &ct)
                .unwrap()
                .len(),
            keep
        );
    }
}

fn ctr_counter_bits_and_wrap_refusal(prov: &'static dyn Provider) {
    let p = || prov;
    let key = [5u8; 16];
    // 8-bit counter at 0xfe: two blocks fit (0xfe, 0xff), a third would wrap.
    let mut cb = [0u8; 16];
    cb[15] = 0xfe;
    let mode = AesMode::Ctr {
        counter_block: cb,
        counter_bits: 8,
    };
    assert_eq!(
        p().aes_oneshot(mode, &key, true, &[0u8; 32]).unwrap().len(),
        32
    );
    assert_eq!(
        p().aes_oneshot(mode, &key, true, &[0u8; 33]),
        Err(CryptoError::DataLen)
    );
    // Streaming: the refusal happens on the update that would wrap, earlier output stands.
    let mut ctx = p().aes_cipher(mode, &key, true).unwrap();
    assert_eq!(ctx.update(&[0u8; 20]).unwrap().len(), 20);
    assert_eq!(ctx.update(&[0u8; 13]), Err(CryptoError::DataLen));
    assert_eq!(ctx.update(&[0u8; 12]).unwrap().len(), 12);
    // Keystream equals ECB of the counter blocks; the bits above the counter never change.
    let ks = p().aes_oneshot(mode, &key, true, &[0u8; 32]).unwrap();
    let mut blocks = cb.to_vec();
    let mut second = cb;
    second[15] = 0xff;
    blocks.extend_from_slice(&second);
    assert_eq!(
        &ks[..],
        &p().aes_oneshot(AesMode::Ecb, &key, true, &blocks).unwrap()[..]
    );
    // 128-bit counter at all-ones: one block, then refuse.
    let mode = AesMode::Ctr {
        counter_block: [0xff; 16],
        counter_bits: 128,
    };
    assert_eq!(
        p().aes_oneshot(mode, &key, true, &[0u8; 16]).unwrap().len(),
        16
    );
    assert_eq!(
        p().aes_oneshot(mode, &key, true, &[0u8; 17]),
        Err(CryptoError::DataLen)
    );
    // counter_bits out of range.
    for bits in [0u32, 129] {
        let mode = AesMode::Ctr {
            counter_block: [0; 16],
            counter_bits: bits,
        };
        assert!(matches!(
            p().aes_cipher(mode, &key, true),
            Err(CryptoError::ParamInvalid)
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// AES-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 1-4, 13-16
// ---------------------------------------------------------------------------------------------

const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const GCM_K: &str = "feffe9928665731c6d6a8f9467308308";

fn gcm_cases() -> Vec<(&'static str, String, String, String, String, String, String)> {
    let k256 = format!("{GCM_K}{GCM_K}");
    let p60 = GCM_P[..120].to_string();
    let z = |n: usize| "00".repeat(n);
    vec![
        ("TC1", z(16), z(12), String::new(), String::new(), String::new(), "58e2fccefa7e3061367f1d57a4e7455a".into()),
        ("TC2", z(16), z(12), z(16), String::new(), "0388dace60b6a392f328c2b971b2fe78".into(), "ab6e47d42cec13bdf53a67b21257bddf".into()),
        ("TC3", GCM_K.into(), "cafebabefacedbaddecaf888".into(), GCM_P.into(), String::new(),
         "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985".into(),
         "4d5c2af327cd64a62cf35abd2ba6fab4".into()),
        ("TC4", GCM_K.into(), "cafebabefacedbaddecaf888".into(), p60.clone(), GCM_A.into(),
         "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091".into(),
         "5bc94fbc3221a5db94fae95ae7121a47".into()),
        ("TC13", z(32), z(12), String::new(), String::new(), String::new(), "530f8afbc74536b9a963b4f1c4cb738b".into()),
        ("TC14", z(32), z(12), z(16), String::new(), "cea7403d4d606b6e074ec5d3baf39d18".into(), "d0d1c8a799996bf0265b98b5d48ab919".into()),
        ("TC15", k256.clone(), "cafebabefacedbaddecaf888".into(), GCM_P.into(), String::new(),
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad".into(),
         "b094dac5d93471bdec1a502270e3cc6c".into()),
        ("TC16", k256, "cafebabefacedbaddecaf888".into(), p60, GCM_A.into(),
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662".into(),
         "76fc6ece0f4e1768cddf8853bb2d551b".into()),
    ]
}

fn gcm_kat_mcgrew_viega(prov: &'static dyn Provider) {
    let p = || prov;
    for (name, k, iv, pt, aad, ct, tag) in gcm_cases() {
        let (k, iv, pt, aad, ct, tag) = (h(&k), h(&iv), h(&pt), h(&aad), h(&ct), h(&tag));
        let mut want = ct.clone();
        want.extend_from_slice(&tag);
        assert_eq!(
            p().gcm_encrypt(&k, &iv, &aad, &pt, 16).unwrap(),
            want,
            "{name}"
        );
        assert_eq!(
            &p().gcm_decrypt(&k, &iv, &aad, &want, 16).unwrap()[..],
            &pt[..],
            "{name}"
        );
        // Truncated tags are the leading bytes of the full tag.
        for tl in [4usize, 8, 12, 13, 14, 15] {
            let mut want_t = ct.clone();
            want_t.extend_from_slice(&tag[..tl]);
            assert_eq!(
                p().gcm_encrypt(&k, &iv, &aad, &pt, tl).unwrap(),
                want_t,
                "{name} t{tl}"
            );
            assert_eq!(
                &p().gcm_decrypt(&k, &iv, &aad, &want_t, tl).unwrap()[..],
                &pt[..]
            );
        }
    }
}

fn gcm_tamper_and_params(prov: &'static dyn Provider) {
    let p = || prov;
    let k = [1u8; 32];
    let iv = [2u8; 12];
    let msg = b"attack at dawn, bring snacks";
    for tl in [4usize, 8, 12, 16] {
        let ct = p().gcm_encrypt(&k, &iv, b"hdr", msg, tl).unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                p().gcm_decrypt(&k, &iv, b"hdr", &bad, tl),
                Err(CryptoError::EncryptedDataInvalid),
                "byte {i}"
            );
        }
        assert_eq!(
            p().gcm_decrypt(&k, &iv, b"hdX", &ct, tl),
            Err(CryptoError::EncryptedDataInvalid)
        );
        assert_eq!(
            p().gcm_decrypt(&k, &[3u8; 12], b"hdr", &ct, tl),
            Err(CryptoError::EncryptedDataInvalid)
        );
        assert_eq!(
            &p().gcm_decrypt(&k, &iv, b"hdr", &ct, tl).unwrap()[..],
            &msg[..]
        );
        // Shorter than the tag.
        assert_eq!(
            p().gcm_decrypt(&k, &iv, b"hdr", &ct[..tl - 1], tl),
            Err(CryptoError::EncryptedDataLen)
        );
    }
    for bad_tl in [0usize, 1, 3, 5, 7, 9, 11, 17] {
        assert_eq!(
            p().gcm_encrypt(&k, &iv, b"", msg, bad_tl),
            Err(CryptoError::ParamInvalid)
        );
        assert_eq!(
            p().gcm_decrypt(&k, &iv, b"", &[0u8; 32], bad_tl),
            Err(CryptoError::ParamInvalid)
        );
    }
    assert_eq!(
        p().gcm_encrypt(&k, &[], b"", msg, 16),
        Err(CryptoError::ParamInvalid)
    );
    assert_eq!(
        p().gcm_encrypt(&k, &[0u8; 257], b"", msg, 16),
        Err(CryptoError::ParamInvalid)
    );
    // Non-12-byte IVs round-trip and reject tampering too.
    for iv_len in [1usize, 8, 16, 60, 256] {
        let iv = vec![0x5au8; iv_len];
        let ct = p().gcm_encrypt(&k, &iv, b"a", msg, 12).unwrap();
        assert_eq!(
            &p().gcm_decrypt(&k, &iv, b"a", &ct, 12).unwrap()[..],
            &msg[..]
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            p().gcm_decrypt(&k, &iv, b"a", &bad, 12),
            Err(CryptoError::EncryptedDataInvalid)
        );
    }
}

fn gcm_kat_non96_iv_mcgrew_viega_tc5(prov: &'static dyn Provider) {
    let p = || prov;
    // McGrew & Viega test case 5: 64-bit IV (J0 derived through GHASH).
    let k = h(GCM_K);
    let iv = h("cafebabefacedbad");
    let pt = h(&GCM_P[..120]);
    let aad = h(GCM_A);
    let want = h("61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598 3612d2e79e3b0785561be14aaca2fccb");
    assert_eq!(p().gcm_encrypt(&k, &iv, &aad, &pt, 16).unwrap(), want);
    assert_eq!(
        &p().gcm_decrypt(&k, &iv, &aad, &want, 16).unwrap()[..],
        &pt[..]
    );
}

// ---------------------------------------------------------------------------------------------
// AES key wrap: RFC 3394 §4.1, 4.2, 4.3, 4.6; RFC 5649 §6 (both examples)
// ---------------------------------------------------------------------------------------------

fn kw_kat_rfc3394(prov: &'static dyn Provider) {
    let p = || prov;
    let kek128 = h("000102030405060708090A0B0C0D0E0F");
    let kek192 = h("000102030405060708090A0B0C0D0E0F1011121314151617");
    let kek256 = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    let data128 = h("00112233445566778899AABBCCDDEEFF");
    let data256 = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
    let cases = [
        (
            "4.1",
            &kek128,
            &data128,
            "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5",
        ),
        (
            "4.2",
            &kek192,
            &data128,
            "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D",
        ),
        (
            "4.3",
            &kek256,
            &data128,
            "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7",
        ),
        (
            "4.6",
            &kek256,
            &data256,
            "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21",
        ),
    ];
    for (name, kek, data, want) in cases {
        let w = p().aes_kw_wrap(kek, data).unwrap();
        assert_eq!(w, h(want), "{name}");
        assert_eq!(
            &p().aes_kw_unwrap(kek, &w).unwrap()[..],
            &data[..],
            "{name}"
        );
        for i in 0..w.len() {
            let mut bad = w.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                p().aes_kw_unwrap(kek, &bad),
                Err(CryptoError::WrappedKeyInvalid),
                "{name} byte {i}"
            );
        }
    }
    assert_eq!(
        p().aes_kw_wrap(&kek128, &[0u8; 8]),
        Err(CryptoError::DataLen)
    );
    assert_eq!(
        p().aes_kw_wrap(&kek128, &[0u8; 20]),
        Err(CryptoError::DataLen)
    );
    assert_eq!(
        p().aes_kw_unwrap(&kek128, &[0u8; 16]),
        Err(CryptoError::WrappedKeyLen)
    );
    assert_eq!(
        p().aes_kw_unwrap(&kek128, &[0u8; 25]),
        Err(CryptoError::WrappedKeyLen)
    );
}

fn kwp_kat_rfc5649(prov: &'static dyn Provider) {
    let p = || prov;
    let kek = h("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8");
    let cases = [
        (
            "20 octets",
            "c37b7e6492584340 bed1220780894115 5068f738",
            "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a",
        ),
        (
            "7 octets",
            "466f7250617369",
            "afbeb0f07dfbf541 9200f2ccb50bb24f",
        ),
    ];
    for (name, key, want) in cases {
        let w = p().aes_kwp_wrap(&kek, &h(key)).unwrap();
        assert_eq!(w, h(want), "{name}");
        assert_eq!(&p().aes_kwp_unwrap(&kek, &w).unwrap()[..], &h(key)[..]);
        let mut bad = w.clone();
        bad[3] ^= 1;
        assert_eq!(
            p().aes_kwp_unwrap(&kek, &bad),
            Err(CryptoError::WrappedKeyInvalid)
        );
    }
    // Every length 1..=40 round-trips.
    for len in 1..=40usize {
        let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
        let w = p().aes_kwp_wrap(&kek, &data).unwrap();
        assert_eq!(w.len(), len.div_ceil(8) * 8 + 8);
        assert_eq!(&p().aes_kwp_unwrap(&kek, &w).unwrap()[..], &data[..]);
    }
    assert_eq!(p().aes_kwp_wrap(&kek, &[]), Err(CryptoError::DataLen));
    assert_eq!(
        p().aes_kwp_unwrap(&kek, &[0u8; 8]),
        Err(CryptoError::WrappedKeyLen)
    );
    assert_eq!(
        p().aes_kwp_unwrap(&kek, &[0u8; 17]),
        Err(CryptoError::WrappedKeyLen)
    );
}

// ---------------------------------------------------------------------------------------------
// HKDF: RFC 5869 appendix A, test cases 1-4; X9.63 KDF structure
// ---------------------------------------------------------------------------------------------

#[allow(clippy::type_complexity)]
fn hkdf_kat_rfc5869(prov: &'static dyn Provider) {
    let p = || prov;
    let seq = |a: u8, b: u8| (a..=b).collect::<Vec<u8>>();
    let cases: Vec<(&str, HashAlg, Vec<u8>, Vec<u8>, Vec<u8>, usize, &str, &str)> = vec![
        ("A.1", HashAlg::Sha256, vec![0x0b; 22], seq(0x00, 0x0c), seq(0xf0, 0xf9), 42,
         "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
        ("A.2", HashAlg::Sha256, seq(0x00, 0x4f), seq(0x60, 0xaf), seq(0xb0, 0xff), 82,
         "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
         "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
        ("A.3", HashAlg::Sha256, vec![0x0b; 22], vec![], vec![], 42,
         "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
        ("A.4", HashAlg::Sha1, vec![0x0b; 11], seq(0x00, 0x0c), seq(0xf0, 0xf9), 42,
         "9b6c18c432a7bf8f0e71c8eb88f4b30baa2ba243",
         "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896"),
    ];
    for (name, alg, ikm, salt, info, len, prk_hex, okm_hex) in cases {
        let prk = p().hkdf_extract(alg, &salt, &ikm).unwrap();
        assert_eq!(&prk[..], &h(prk_hex)[..], "{name} PRK");
        let okm = p().hkdf_expand(alg, &prk, &info, len).unwrap();
        assert_eq!(&okm[..], &h(okm_hex)[..], "{name} OKM");
    }
    assert_eq!(
        p().hkdf_expand(HashAlg::Sha256, &[1u8; 32], b"", 255 * 32)
            .unwrap()
            .len(),
        255 * 32
    );
    assert_eq!(
        p().hkdf_expand(HashAlg::Sha256, &[1u8; 32], b"", 255 * 32 + 1),
        Err(CryptoError::ParamInvalid)
    );
}

fn x963_kdf_structure(prov: &'static dyn Provider) {
    let p = || prov;
    // SEC1 §3.6.1: K = Hash(Z || 00000001 || SI) || Hash(Z || 00000002 || SI) ..., truncated.
    let z = b"shared secret z";
    let si = b"info";
    let out = p().x963_kdf(HashAlg::Sha256, z, si, 40).unwrap();
    let mut b1 = z.to_vec();
    b1.extend_from_slice(&[0, 0, 0, 1]);
    b1.extend_from_slice(si);
    let mut b2 = z.to_vec();
    b2.extend_from_slice(&[0, 0, 0, 2]);
    b2.extend_from_slice(si);
    let mut want = p().digest(HashAlg::Sha256, &b1);
    want.extend_from_slice(&p().digest(HashAlg::Sha256, &b2)[..8]);
    assert_eq!(&out[..], &want[..]);
    assert_eq!(p().x963_kdf(HashAlg::Sha1, z, b"", 0).unwrap().len(), 0);
}

// ---------------------------------------------------------------------------------------------
// EC: RFC 6979 A.2.5/A.2.6 keys and signatures (verify, incl. hash shorter/longer than the
// field), NIST CAVP ECC CDH P-256 COUNT=0, generation and round trips
// ---------------------------------------------------------------------------------------------

const P256_X: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
const P256_U: &str = "04 60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6 7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
const P384_X: &str = "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5";
const P384_U: &str = "04 ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc13 8015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720";

#[test]
fn ec_curve_oids() {
    assert_eq!(Curve::P256.oid_der(), &h("06082A8648CE3D030107")[..]);
    assert_eq!(Curve::P384.oid_der(), &h("06052B81040022")[..]);
    assert_eq!(
        Curve::from_oid_der(&h("06082A8648CE3D030107")),
        Some(Curve::P256)
    );
    assert_eq!(Curve::from_oid_der(&h("06052B81040022")), Some(Curve::P384));
    assert_eq!(Curve::from_oid_der(&h("06052B81040023")), None);
    assert_eq!(Curve::P384.point_len(), 97);
}

fn ec_public_from_private_rfc6979_keys(prov: &'static dyn Provider) {
    let p = || prov;
    assert_eq!(
        p().ec_public_from_private(Curve::P256, &h(P256_X)).unwrap(),
        h(P256_U)
    );
    assert_eq!(
        p().ec_public_from_private(Curve::P384, &h(P384_X)).unwrap(),
        h(P384_U)
    );
    // Scalar 0 and >= n are invalid; too long is invalid; leading zeros are fine.
    assert!(matches!(
        p().ec_private(Curve::P256, &[0u8; 32]),
        Err(CryptoError::InvalidKey)
    ));
    assert!(matches!(
        p().ec_private(Curve::P256, &[0xffu8; 32]),
        Err(CryptoError::InvalidKey)
    ));
    assert!(matches!(
        p().ec_private(Curve::P256, &[1u8; 33]),
        Err(CryptoError::InvalidKey)
    ));
    let mut padded = vec![0u8; 4];
    padded.extend_from_slice(&h(P256_X));
    assert_eq!(
        p().ec_public_from_private(Curve::P256, &padded).unwrap(),
        h(P256_U)
    );
}

fn ecdsa_verify_rfc6979_vectors(prov: &'static dyn Provider) {
    let p = || prov;
    let cases: &[(Curve, &str, HashAlg, &[u8], &str)] = &[
        // A.2.5, SHA-256 "sample"
        (Curve::P256, P256_U, HashAlg::Sha256, b"sample",
         "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"),
        // A.2.5, SHA-512 "sample": hash longer than the field, truncated
        (Curve::P256, P256_U, HashAlg::Sha512, b"sample",
         "8496a60b5e9b47c825488827e0495b0e3fa109ec4568fd3f8d1097678eb97f002362ab1adbe2b8adf9cb9edab740ea6049c028114f2460f96554f61fae3302fe"),
        // A.2.6, SHA-256 "sample": hash shorter than the field
        (Curve::P384, P384_U, HashAlg::Sha256, b"sample",
         "21b13d1e013c7fa1392d03c5f99af8b30c570c6f98d4ea8e354b63a21d3daa33bde1e888e63355d92fa2b3c36d8fb2cdf3aa443fb107745bf4bd77cb3891674632068a10ca67e3d45db2266fa7d1feebefdc63eccd1ac42ec0cb8668a4fa0ab0"),
        // A.2.6, SHA-384 "sample"
        (Curve::P384, P384_U, HashAlg::Sha384, b"sample",
         "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe4699ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8"),
    ];
    for (curve, point, alg, msg, sig) in cases {
        let key = p().ec_public(*curve, &h(point)).unwrap();
        assert_eq!(key.curve(), *curve);
        assert_eq!(key.public_point(), h(point));
        let digest = p().digest(*alg, msg);
        let sig = h(sig);
        assert_eq!(
            key.verify_prehashed(&digest, &sig),
            Ok(()),
            "{curve:?} {alg:?}"
        );
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert_eq!(
            key.verify_prehashed(&digest, &bad),
            Err(CryptoError::SignatureInvalid)
        );
        assert_eq!(
            key.verify_prehashed(&p().digest(*alg, b"other"), &sig),
            Err(CryptoError::SignatureInvalid)
        );
        assert_eq!(
            key.verify_prehashed(&digest, &sig[1..]),
            Err(CryptoError::SignatureLen)
        );
        assert_eq!(
            key.verify_prehashed(&digest, &vec![0u8; sig.len()]),
            Err(CryptoError::SignatureInvalid)
        );
    }
}

fn ecdh_kat_cavp_p256_count0(prov: &'static dyn Provider) {
    let p = || prov;
    let d = h("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534");
    let q_iut = h("04 ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230 28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141");
    let q_cavs = h("04 700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287 db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac");
    let z = h("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b");
    let key = p().ec_private(Curve::P256, &d).unwrap();
    assert_eq!(key.public_point(), q_iut);
    assert_eq!(&key.ecdh(&q_cavs).unwrap()[..], &z[..]);
    // Compressed form of the same peer point (y is even: 0xac).
    let mut compressed = vec![0x02];
    compressed.extend_from_slice(&q_cavs[1..33]);
    assert_eq!(&key.ecdh(&compressed).unwrap()[..], &z[..]);
    // A point not on the curve, the wrong curve's point, and garbage are rejected.
    let mut off = q_cavs.clone();
    off[64] ^= 1;
    assert_eq!(key.ecdh(&off), Err(CryptoError::ParamInvalid));
    assert_eq!(key.ecdh(&h(P384_U)), Err(CryptoError::ParamInvalid));
    assert_eq!(key.ecdh(&[0x04]), Err(CryptoError::ParamInvalid));
    assert!(matches!(
        p().ec_public(Curve::P256, &off),
        Err(CryptoError::InvalidKey)
    ));
}

fn ec_generate_sign_verify_ecdh_roundtrip(prov: &'static dyn Provider) {
    let p = || prov;
    for curve in [Curve::P256, Curve::P384] {
        let (d1, q1) = p().ec_generate(curve).unwrap();
        let (d2, q2) = p().ec_generate(curve).unwrap();
        assert_eq!(d1.len(), curve.field_len());
        assert_eq!(q1.len(), curve.point_len());
        assert_eq!(q1[0], 0x04);
        assert_ne!(&d1[..], &d2[..]);
        let k1 = p().ec_private(curve, &d1).unwrap();
        let k2 = p().ec_private(curve, &d2).unwrap();
        assert_eq!(k1.curve(), curve);
        assert_eq!(k1.public_point(), q1);
        assert_eq!(&k1.ecdh(&q2).unwrap()[..], &k2.ecdh(&q1).unwrap()[..]);
        let pubk = p().ec_public(curve, &q1).unwrap();
        for len in [0usize, 1, 20, 32, 48, 64, 100] {
            let hash: Vec<u8> = (0..len as u8).collect();
            let sig = k1.sign_prehashed(&hash).unwrap();
            assert_eq!(sig.len(), 2 * curve.field_len());
            assert_eq!(
                pubk.verify_prehashed(&hash, &sig),
                Ok(()),
                "{curve:?} len {len}"
            );
            // Hedged signing: two signatures of the same hash differ.
            assert_ne!(k1.sign_prehashed(&hash).unwrap(), sig);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RSA: Wycheproof PKCS#1 v1.5 verify vectors (tests/vectors), generated-key round trips
// ---------------------------------------------------------------------------------------------

fn rsa_pkcs1v15_verify_wycheproof(prov: &'static dyn Provider) {
    let p = || prov;
    let text = include_str!("../../tests/vectors/rsa_pkcs1v15_2048_sha256_wycheproof.txt");
    let mut n = Vec::new();
    let mut e = Vec::new();
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "n" => n = h(f[1]),
            "e" => e = h(f[1]),
            tc => {
                let key = p().rsa_public(&n, &e).unwrap();
                assert_eq!(key.modulus_bits(), 2048);
                let msg = if f[1] == "-" { Vec::new() } else { h(f[1]) };
                let di = HashAlg::Sha256
                    .digest_info(&p().digest(HashAlg::Sha256, &msg))
                    .unwrap();
                let res = key.verify_pkcs1v15(&di, &h(f[2]));
                match f[3] {
                    "valid" => assert_eq!(res, Ok(()), "tcId {tc}"),
                    // "acceptable" (missing NULL): a strict verifier rejects it, as we do.
                    _ => assert_eq!(res, Err(CryptoError::SignatureInvalid), "tcId {tc}"),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 9);
    let key = p().rsa_public(&n, &e).unwrap();
    assert_eq!(key.public_parts(), (n.clone(), e.clone()));
    assert_eq!(
        key.verify_pkcs1v15(b"x", &[0u8; 255]),
        Err(CryptoError::SignatureLen)
    );
}

/// One 2048-bit key per provider, generated by that provider.
fn rsa_test_key(prov: &'static dyn Provider) -> &'static RsaPrivateParts {
    static KEYS: [std::sync::OnceLock<RsaPrivateParts>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    let slot = usize::from(prov.name() != "rustcrypto");
    KEYS[slot].get_or_init(|| prov.rsa_generate(2048, &[0x01, 0x00, 0x01]).unwrap())
}

fn rsa_generate_and_parse(prov: &'static dyn Provider) {
    let p = || prov;
    let parts = rsa_test_key(prov);
    assert_eq!(parts.n.len(), 256);
    assert_eq!(parts.e, vec![1, 0, 1]);
    assert!(!parts.p.is_empty() && !parts.q.is_empty() && !parts.qinv.is_empty());
    assert!(!format!("{parts:?}").contains(&hex::encode(&parts.d[..8])));
    let full = p().rsa_private(parts).unwrap();
    assert_eq!(full.modulus_len(), 256);
    assert_eq!(full.modulus_bits(), 2048);
    assert_eq!(full.public_parts(), (parts.n.clone(), parts.e.clone()));
    // n, e, d only: primes recovered.
    let ned = RsaPrivateParts {
        n: parts.n.clone(),
        e: parts.e.clone(),
        d: parts.d.clone(),
        ..Default::default()
    };
    let k2 = p().rsa_private(&ned).unwrap();
    let di = HashAlg::Sha256.digest_info(&[7u8; 32]).unwrap();
    assert_eq!(
        k2.sign_pkcs1v15(&di).unwrap(),
        full.sign_pkcs1v15(&di).unwrap()
    );
    // n, e, d, p, q.
    let nedpq = RsaPrivateParts {
        p: parts.p.clone(),
        q: parts.q.clone(),
        ..ned.clone()
    };
    assert!(p().rsa_private(&nedpq).is_ok());
    // Inconsistent parts are rejected.
    let mut bad = nedpq.clone();
    bad.p[10] ^= 1;
    assert!(matches!(
        p().rsa_private(&bad),
        Err(CryptoError::InvalidKey)
    ));
    // Unsupported generation parameters.
    assert!(matches!(
        p().rsa_generate(1024, &[1, 0, 1]),
        Err(CryptoError::KeySize)
    ));
    assert!(matches!(
        p().rsa_generate(2048, &[3]),
        Err(CryptoError::Unsupported)
    ));
    // Moduli outside 1024..=8192 bits.
    assert!(matches!(
        p().rsa_public(&parts.n[..64], &parts.e),
        Err(CryptoError::KeySize)
    ));
    assert!(matches!(
        p().rsa_public(&[0xffu8; 1025], &parts.e),
        Err(CryptoError::KeySize)
    ));
}

fn rsa_pkcs1v15_sign_verify(prov: &'static dyn Provider) {
    let p = || prov;
    let parts = rsa_test_key(prov);
    let sk = p().rsa_private(parts).unwrap();
    let pk = p().rsa_public(&parts.n, &parts.e).unwrap();
    for alg in HashAlg::ALL {
        let di = alg.digest_info(&p().digest(alg, b"message")).unwrap();
        let sig = sk.sign_pkcs1v15(&di).unwrap();
        assert_eq!(sig.len(), 256);
        assert_eq!(pk.verify_pkcs1v15(&di, &sig), Ok(()));
        // The recovered block is 00 01 FF.. 00 DigestInfo.
        let em = pk.raw(&sig).unwrap();
        assert_eq!(&em[..2], &[0x00, 0x01]);
        assert_eq!(&em[256 - di.len()..], &di[..]);
        assert_eq!(em[256 - di.len() - 1], 0);
        assert!(em[2..256 - di.len() - 1].iter().all(|&b| b == 0xff));
        let mut bad = sig.clone();
        bad[100] ^= 4;
        assert_eq!(
            pk.verify_pkcs1v15(&di, &bad),
            Err(CryptoError::SignatureInvalid)
        );
    }
    // Raw CKM_RSA_PKCS data up to k-11 bytes.
    assert!(sk.sign_pkcs1v15(&[5u8; 245]).is_ok());
    assert_eq!(sk.sign_pkcs1v15(&[5u8; 246]), Err(CryptoError::DataLen));
    assert_eq!(
        pk.verify_pkcs1v15(&[5u8; 246], &[0u8; 256]),
        Err(CryptoError::DataLen)
    );
}

fn rsa_pss_roundtrip(prov: &'static dyn Provider) {
    let p = || prov;
    let parts = rsa_test_key(prov);
    let sk = p().rsa_private(parts).unwrap();
    let pk = p().rsa_public(&parts.n, &parts.e).unwrap();
    let combos = [
        (HashAlg::Sha1, HashAlg::Sha1),
        (HashAlg::Sha224, HashAlg::Sha224),
        (HashAlg::Sha256, HashAlg::Sha256),
        (HashAlg::Sha384, HashAlg::Sha384),
        (HashAlg::Sha512, HashAlg::Sha512),
        (HashAlg::Sha256, HashAlg::Sha1),
        (HashAlg::Sha512, HashAlg::Sha256),
    ];
    for (hash, mgf) in combos {
        let digest = p().digest(hash, b"pss message");
        for salt in [0usize, hash.output_len(), 256 - hash.output_len() - 2] {
            let sig = sk.sign_pss(hash, mgf, salt, &digest).unwrap();
            assert_eq!(
                pk.verify_pss(hash, mgf, salt, &digest, &sig),
                Ok(()),
                "{hash:?}/{mgf:?} salt {salt}"
            );
            // Wrong salt length, wrong MGF hash, wrong digest, tampered signature.
            assert_eq!(
                pk.verify_pss(hash, mgf, salt + 1, &digest, &sig),
                Err(CryptoError::SignatureInvalid)
            );
            let other_mgf = if mgf == HashAlg::Sha384 {
                HashAlg::Sha1
            } else {
                HashAlg::Sha384
            };
            assert_eq!(
                pk.verify_pss(hash, other_mgf, salt, &digest, &sig),
                Err(CryptoError::SignatureInvalid)
            );
            let mut d2 = digest.clone();
            d2[0] ^= 1;
            assert_eq!(
                pk.verify_pss(hash, mgf, salt, &d2, &sig),
                Err(CryptoError::SignatureInvalid)
            );
            let mut bad = sig.clone();
            bad[0] ^= 0x10;
            assert_eq!(
                pk.verify_pss(hash, mgf, salt, &digest, &bad),
                Err(CryptoError::SignatureInvalid)
            );
        }
        // Salt too long for the key, digest of the wrong length, signature of the wrong length.
        assert_eq!(
            sk.sign_pss(hash, mgf, 256 - hash.output_len() - 1, &digest),
            Err(CryptoError::ParamInvalid)
        );
        assert_eq!(
            sk.sign_pss(hash, mgf, 0, &digest[1..]),
            Err(CryptoError::DataLen)
        );
        assert_eq!(
            pk.verify_pss(hash, mgf, 0, &digest, &[0u8; 255]),
            Err(CryptoError::SignatureLen)
        );
    }
}

fn rsa_oaep_and_pkcs1v15_encryption(prov: &'static dyn Provider) {
    let p = || prov;
    let parts = rsa_test_key(prov);
    let sk = p().rsa_private(parts).unwrap();
    let pk = p().rsa_public(&parts.n, &parts.e).unwrap();
    let msg = b"a key to wrap, 32 bytes long....";
    for hash in HashAlg::ALL {
        for (mgf, label) in [
            (hash, &b""[..]),
            (hash, &b"label"[..]),
            (HashAlg::Sha1, &b"L"[..]),
        ] {
            let ct = pk.encrypt_oaep(hash, mgf, label, msg).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(
                &sk.decrypt_oaep(hash, mgf, label, &ct).unwrap()[..],
                &msg[..],
                "{hash:?}/{mgf:?}"
            );
            assert_eq!(
                sk.decrypt_oaep(hash, mgf, b"wrong", &ct),
                Err(CryptoError::EncryptedDataInvalid)
            );
            let mut bad = ct.clone();
            bad[7] ^= 1;
            assert_eq!(
                sk.decrypt_oaep(hash, mgf, label, &bad),
                Err(CryptoError::EncryptedDataInvalid)
            );
        }
        let max = 256 - 2 * hash.output_len() - 2;
        assert!(pk.encrypt_oaep(hash, hash, b"", &vec![1u8; max]).is_ok());
        assert_eq!(
            pk.encrypt_oaep(hash, hash, b"", &vec![1u8; max + 1]),
            Err(CryptoError::DataLen)
        );
    }
    assert_eq!(
        sk.decrypt_oaep(HashAlg::Sha256, HashAlg::Sha256, b"", &[1u8; 255]),
        Err(CryptoError::EncryptedDataLen)
    );

    // PKCS#1 v1.5 encryption.
    let ct = pk.encrypt_pkcs1v15(msg).unwrap();
    assert_ne!(ct, pk.encrypt_pkcs1v15(msg).unwrap(), "random padding");
    assert_eq!(&sk.decrypt_pkcs1v15(&ct).unwrap()[..], &msg[..]);
    assert!(pk.encrypt_pkcs1v15(&[0u8; 245]).is_ok());
    assert_eq!(pk.encrypt_pkcs1v15(&[0u8; 246]), Err(CryptoError::DataLen));
    assert_eq!(
        sk.decrypt_pkcs1v15(&ct[1..]),
        Err(CryptoError::EncryptedDataLen)
    );
    // Implicit rejection: a bad padding gives a deterministic synthetic message, not an error.
    let mut block = vec![0u8; 256];
    block[1] = 0x07; // not 00 02
    block[255] = 1;
    let bad_ct = pk.raw(&block).unwrap();
    let r1 = sk.decrypt_pkcs1v15(&bad_ct).unwrap();
    let r2 = sk.decrypt_pkcs1v15(&bad_ct).unwrap();
    assert_eq!(&r1[..], &r2[..]);
    assert_ne!(&r1[..], &block[..]);
}

fn rsa_raw_x509(prov: &'static dyn Provider) {
    let p = || prov;
    let parts = rsa_test_key(prov);
    let sk = p().rsa_private(parts).unwrap();
    let pk = p().rsa_public(&parts.n, &parts.e).unwrap();
    for data in [
        vec![0u8],
        vec![2u8],
        b"short raw data".to_vec(),
        vec![0x42u8; 255],
    ] {
        let c = pk.raw(&data).unwrap();
        assert_eq!(c.len(), 256);
        let m = sk.raw(&c).unwrap();
        assert_eq!(m.len(), 256);
        assert_eq!(&m[256 - data.len()..], &data[..]);
        assert!(m[..256 - data.len()].iter().all(|&b| b == 0));
    }
    // data >= n is invalid; longer than k is a length error.
    assert_eq!(pk.raw(&parts.n), Err(CryptoError::DataInvalid));
    assert_eq!(sk.raw(&[0xff; 256]), Err(CryptoError::DataInvalid));
    assert_eq!(pk.raw(&[1u8; 257]), Err(CryptoError::DataLen));
}

fn rsa_private_parts_recomputes_crt(prov: &'static dyn Provider) {
    let p = || prov;
    let parts = rsa_test_key(prov);
    // Only n, e, d: primes and CRT values are recovered.
    let bare = RsaPrivateParts {
        n: parts.n.clone(),
        e: parts.e.clone(),
        d: parts.d.clone(),
        ..Default::default()
    };
    let full = p().rsa_private(&bare).unwrap().private_parts().unwrap();
    let strip = |v: &[u8]| {
        v.iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect::<Vec<u8>>()
    };
    assert_eq!(strip(&full.n), strip(&parts.n));
    assert_eq!(strip(&full.d), strip(&parts.d));
    // The recovered primes are {p, q} in some order; check the CRT relations instead.
    let sk = p().rsa_private(&full).unwrap();
    let pk = p().rsa_public(&full.n, &full.e).unwrap();
    let c = pk.raw(b"crt check").unwrap();
    assert_eq!(&sk.raw(&c).unwrap()[256 - 9..], b"crt check");
    assert!(!full.p.is_empty() && !full.q.is_empty() && !full.qinv.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Ed25519 (RFC 8032 §7.1 TEST 1, 2, 3 and TEST SHA(abc); 2, 3 and SHA(abc) also checked
// against `openssl pkeyutl -sign -rawin`)
// ---------------------------------------------------------------------------------------------

fn ed25519_kat_rfc8032(prov: &'static dyn Provider) {
    let p = || prov;
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac\
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            // SHA-512("abc")
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589\
             09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];
    for (seed, public, msg, sig) in cases {
        let (seed, public, msg, sig) = (h(seed), h(public), h(msg), h(sig));
        assert_eq!(p().ed25519_public_from_seed(&seed).unwrap(), public);
        assert_eq!(p().ed25519_sign(&seed, &msg).unwrap(), sig);
        p().ed25519_check_public(&public).unwrap();
        p().ed25519_verify(&public, &msg, &sig).unwrap();
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert_eq!(
            p().ed25519_verify(&public, &msg, &bad),
            Err(CryptoError::SignatureInvalid)
        );
        let mut other = msg.clone();
        other.push(0);
        assert_eq!(
            p().ed25519_verify(&public, &other, &sig),
            Err(CryptoError::SignatureInvalid)
        );
    }
    // SHA-512("abc") really is the message of the last case.
    assert_eq!(
        p().digest(HashAlg::Sha512, b"abc"),
        h(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
           2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        )
    );
}

fn ed25519_generate_and_bad_inputs(prov: &'static dyn Provider) {
    let p = || prov;
    let (seed, public) = p().ed25519_generate().unwrap();
    assert_eq!((seed.len(), public.len()), (32, 32));
    assert_eq!(p().ed25519_public_from_seed(&seed).unwrap(), public);
    let sig = p().ed25519_sign(&seed, b"message").unwrap();
    assert_eq!(sig.len(), 64);
    p().ed25519_verify(&public, b"message", &sig).unwrap();
    assert_eq!(
        p().ed25519_verify(&public, b"message", &sig[..63]),
        Err(CryptoError::SignatureLen)
    );
    assert_eq!(
        p().ed25519_sign(&seed[..31], b"m"),
        Err(CryptoError::InvalidKey)
    );
    assert_eq!(
        p().ed25519_public_from_seed(&[0u8; 33]),
        Err(CryptoError::InvalidKey)
    );
    assert_eq!(
        p().ed25519_verify(&public[..31], b"message", &sig),
        Err(CryptoError::InvalidKey)
    );
    // An encoding whose point decompression fails (y = 2 gives no square x^2).
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert_eq!(
        p().ed25519_check_public(&not_a_point),
        Err(CryptoError::InvalidKey)
    );
}
