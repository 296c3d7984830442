//! Regression tests at the C ABI: one test per module fix that a real client
//! needed. Each test calls the exported `C_*` functions the way that client
//! does and checks the PKCS#11 return codes and outputs.
//!
//! 1. libp11 passes OpenSSL's "max salt" (`(CK_ULONG)-3`) as the PSS `sLen`:
//!    C_SignInit must refuse it with CKR_MECHANISM_PARAM_INVALID, accept the
//!    largest legal salt, and leave no operation active either way.
//! 2. C_MessageEncryptInit(CKM_AES_GCM) with a CK_GCM_MESSAGE_PARAMS parameter
//!    (as some clients pass) and with a NULL parameter both work, and
//!    C_EncryptMessage with CKG_GENERATE_COUNTER writes the IV back.
//! 3. C_GetInterface hands out a CK_INTERFACE in writable memory: pkcs11-spy
//!    writes its `flags` field.
//!
//! The fixture (fresh store, token, logged-in session) and the template,
//! mechanism and two-call helpers are shared: see `tests/common/mod.rs`.

mod common;

use common::*;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use strongroom_pkcs11::ffi::exports::*;

// ----- 1. PSS salt length ---------------------------------------------------------

/// libp11 maps OpenSSL's RSA_PSS_SALTLEN_MAX (-3) straight into `sLen`.
const SLEN_OPENSSL_MAX: CK_ULONG = (-3i64) as CK_ULONG;

fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, s_len: CK_ULONG) -> Mech {
    let p = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: hash,
        mgf,
        sLen: s_len,
    };
    Mech::with(CKM_RSA_PKCS_PSS, &p, Vec::new())
}

/// An RSA-2048 key pair (public, private) made on the token.
fn rsa_2048(s: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut m = Mech::plain(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let mut public = Tmpl::new()
        .ulong(CKA_MODULUS_BITS, 2048)
        .bytes(CKA_PUBLIC_EXPONENT, &[0x01, 0x00, 0x01])
        .bool(CKA_VERIFY, true)
        .bool(CKA_TOKEN, false);
    let mut private = Tmpl::new()
        .bool(CKA_SIGN, true)
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_TOKEN, false);
    let ((pp, pn), (qp, qn)) = (public.ptr(), private.ptr());
    let (mut pubk, mut privk) = (0, 0);
    // SAFETY: mechanism, templates and out-pointers outlive the call.
    ck(
        unsafe { C_GenerateKeyPair(s, m.ptr(), pp, pn, qp, qn, &mut pubk, &mut privk) },
        "C_GenerateKeyPair(RSA 2048)",
    );
    (pubk, privk)
}

/// C_Sign with the §5.2 two-call convention.
fn sign(s: CK_SESSION_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let mut d = data.to_vec();
    let mut n: CK_ULONG = 0;
    // SAFETY: input outlives the call; NULL output asks for the length.
    let rv = unsafe { C_Sign(s, ptr_of(&mut d), d.len() as CK_ULONG, null_mut(), &mut n) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; (n as usize).max(1)];
    // SAFETY: `out` holds at least `n` bytes.
    let rv = unsafe {
        C_Sign(
            s,
            ptr_of(&mut d),
            d.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut n,
        )
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(n as usize);
    Ok(out)
}

fn verify(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
) -> CK_RV {
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_VerifyInit(s, m.ptr(), k) };
    if rv != CKR_OK {
        return rv;
    }
    common::verify(s, data, sig)
}

#[test]
fn pss_salt_len_openssl_max_is_refused_and_max_legal_salt_works() {
    let f = Fixture::new();
    let (pubk, privk) = rsa_2048(f.s);
    // CKM_RSA_PKCS_PSS signs a hash: the SHA-256 of something (any 32 bytes).
    let digest: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();

    // (CK_ULONG)-3, as libp11 passes OpenSSL's "max": refused at C_SignInit.
    let mut m = pss(CKM_SHA256, CKG_MGF1_SHA256, SLEN_OPENSSL_MAX);
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_SignInit(f.s, m.ptr(), privk) };
    assert_eq!(
        rv, CKR_MECHANISM_PARAM_INVALID,
        "C_SignInit(CKM_RSA_PKCS_PSS, sLen=(CK_ULONG)-3) returned {rv:#x}"
    );
    // The failed init left nothing active: C_Sign has no operation...
    let rv = sign(f.s, &digest).err().unwrap_or(CKR_OK);
    assert_eq!(
        rv, CKR_OPERATION_NOT_INITIALIZED,
        "C_Sign after a refused C_SignInit returned {rv:#x}"
    );

    // The largest legal salt: emLen - hLen - 2 = 256 - 32 - 2 = 222.
    let mut m = pss(CKM_SHA256, CKG_MGF1_SHA256, 222);
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_SignInit(f.s, m.ptr(), privk) };
    assert_eq!(
        rv, CKR_OK,
        "C_SignInit(CKM_RSA_PKCS_PSS, sLen=222) returned {rv:#x}"
    );
    let sig = sign(f.s, &digest)
        .unwrap_or_else(|rv| panic!("C_Sign(CKM_RSA_PKCS_PSS, sLen=222) returned {rv:#x}"));
    assert_eq!(sig.len(), 256, "RSA-2048 signature length");
    let rv = verify(
        f.s,
        &mut pss(CKM_SHA256, CKG_MGF1_SHA256, 222),
        pubk,
        &digest,
        &sig,
    );
    assert_eq!(
        rv, CKR_OK,
        "C_Verify(sLen=222) of the token's own signature returned {rv:#x}"
    );
    // The verification is real: another salt length or another hash is refused.
    let rv = verify(
        f.s,
        &mut pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
        pubk,
        &digest,
        &sig,
    );
    assert_eq!(
        rv, CKR_SIGNATURE_INVALID,
        "C_Verify(sLen=32) of a sLen=222 signature returned {rv:#x}"
    );
    let mut other = digest.clone();
    other[0] ^= 1;
    let rv = verify(
        f.s,
        &mut pss(CKM_SHA256, CKG_MGF1_SHA256, 222),
        pubk,
        &other,
        &sig,
    );
    assert_eq!(
        rv, CKR_SIGNATURE_INVALID,
        "C_Verify over another hash returned {rv:#x}"
    );

    // One byte more than the maximum cannot be encoded: refused at init or at
    // sign time, and again no operation is left behind.
    let mut m = pss(CKM_SHA256, CKG_MGF1_SHA256, 223);
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_SignInit(f.s, m.ptr(), privk) };
    if rv == CKR_OK {
        let rv = sign(f.s, &digest).err().unwrap_or(CKR_OK);
        assert_ne!(
            rv, CKR_OK,
            "C_Sign(sLen=223) with RSA-2048/SHA-256 succeeded"
        );
    } else {
        assert_eq!(
            rv, CKR_MECHANISM_PARAM_INVALID,
            "C_SignInit(sLen=223) returned {rv:#x}"
        );
    }

    // The session can start a new signing operation, which works.
    let mut m = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_SignInit(f.s, m.ptr(), privk) };
    assert_eq!(
        rv, CKR_OK,
        "C_SignInit after the PSS calls returned {rv:#x}"
    );
    let sig = sign(f.s, &digest).unwrap_or_else(|rv| panic!("C_Sign(sLen=32) returned {rv:#x}"));
    let rv = verify(
        f.s,
        &mut pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
        pubk,
        &digest,
        &sig,
    );
    assert_eq!(rv, CKR_OK, "C_Verify(sLen=32) returned {rv:#x}");
}

// ----- 2. AES-GCM message encryption ------------------------------------------------

fn aes_key(s: CK_SESSION_HANDLE, value: &[u8]) -> CK_OBJECT_HANDLE {
    let mut t = Tmpl::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .bool(CKA_TOKEN, false)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_DECRYPT, true)
        .bytes(CKA_VALUE, value);
    let (p, n) = t.ptr();
    let mut o = 0;
    // SAFETY: the template and out-pointer outlive the call.
    ck(
        unsafe { C_CreateObject(s, p, n, &mut o) },
        "C_CreateObject(AES)",
    );
    o
}

/// How the test calls C_MessageEncryptInit/C_MessageDecryptInit.
#[derive(Clone, Copy, Debug)]
enum InitParam {
    /// A CK_GCM_MESSAGE_PARAMS block (its contents are per-message, so unused).
    GcmMessageParams,
    /// pParameter NULL, ulParameterLen 0.
    Null,
}

fn message_mech(how: InitParam, iv: &mut [u8], tag: &mut [u8]) -> Mech {
    match how {
        InitParam::GcmMessageParams => {
            let p = CK_GCM_MESSAGE_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: iv.len() as CK_ULONG,
                ulIvFixedBits: 0,
                ivGenerator: CKG_NO_GENERATE,
                pTag: tag.as_mut_ptr(),
                ulTagBits: (tag.len() * 8) as CK_ULONG,
            };
            Mech::with(CKM_AES_GCM, &p, Vec::new())
        }
        InitParam::Null => Mech::plain(CKM_AES_GCM),
    }
}

/// One encrypt/decrypt round through the v3.0 message functions.
fn gcm_message_round(s: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, how: InitParam) {
    let (mut init_iv, mut init_tag) = ([0u8; 12], [0u8; 16]);
    let mut m = message_mech(how, &mut init_iv, &mut init_tag);
    // SAFETY: the mechanism (and what it points to) outlives the call.
    let rv = unsafe { C_MessageEncryptInit(s, m.ptr(), key) };
    assert_eq!(
        rv, CKR_OK,
        "C_MessageEncryptInit(CKM_AES_GCM, {how:?}) returned {rv:#x}"
    );

    let plain = b"regression: GCM message encryption, counter IV".to_vec();
    let aad = b"associated".to_vec();
    let fixed = [0xA1u8, 0xB2, 0xC3, 0xD4];
    let mut seen_ivs = Vec::new();
    let mut messages = Vec::new();
    for round in 0..2 {
        // 32 fixed bits, then a counter part the token must overwrite.
        let mut iv = [0xEEu8; 12];
        iv[..4].copy_from_slice(&fixed);
        let mut tag = [0u8; 16];
        let mut p = CK_GCM_MESSAGE_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvFixedBits: 32,
            ivGenerator: CKG_GENERATE_COUNTER,
            pTag: tag.as_mut_ptr(),
            ulTagBits: 128,
        };
        let (mut pt, mut ad) = (plain.clone(), aad.clone());
        let mut ct = vec![0u8; pt.len() + 32];
        let mut ct_len = ct.len() as CK_ULONG;
        // SAFETY: parameter, inputs and output buffer outlive the call.
        let rv = unsafe {
            C_EncryptMessage(
                s,
                &mut p as *mut CK_GCM_MESSAGE_PARAMS as *mut c_void,
                std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG,
                ad.as_mut_ptr(),
                ad.len() as CK_ULONG,
                pt.as_mut_ptr(),
                pt.len() as CK_ULONG,
                ct.as_mut_ptr(),
                &mut ct_len,
            )
        };
        assert_eq!(
            rv, CKR_OK,
            "C_EncryptMessage(CKG_GENERATE_COUNTER) #{round} after init {how:?} returned {rv:#x}"
        );
        ct.truncate(ct_len as usize);
        assert_eq!(ct.len(), plain.len(), "GCM ciphertext length");
        assert_ne!(ct, plain, "the ciphertext is the plaintext");
        assert_eq!(iv[..4], fixed, "the generated IV lost the fixed prefix");
        assert_ne!(
            iv[4..],
            [0xEEu8; 8],
            "the generated IV was not written back"
        );
        assert_ne!(tag, [0u8; 16], "the tag was not written back");
        seen_ivs.push(iv);
        messages.push((iv, tag, ct));
    }
    assert_ne!(
        seen_ivs[0], seen_ivs[1],
        "CKG_GENERATE_COUNTER gave the same IV twice"
    );
    // SAFETY: plain value argument.
    let rv = unsafe { C_MessageEncryptFinal(s) };
    assert_eq!(rv, CKR_OK, "C_MessageEncryptFinal returned {rv:#x}");

    let (mut init_iv, mut init_tag) = ([0u8; 12], [0u8; 16]);
    let mut m = message_mech(how, &mut init_iv, &mut init_tag);
    // SAFETY: the mechanism (and what it points to) outlives the call.
    let rv = unsafe { C_MessageDecryptInit(s, m.ptr(), key) };
    assert_eq!(
        rv, CKR_OK,
        "C_MessageDecryptInit(CKM_AES_GCM, {how:?}) returned {rv:#x}"
    );
    let decrypt = |iv: &mut [u8; 12], tag: &mut [u8; 16], ct: &[u8]| -> Result<Vec<u8>, CK_RV> {
        let mut p = CK_GCM_MESSAGE_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvFixedBits: 0,
            ivGenerator: CKG_NO_GENERATE,
            pTag: tag.as_mut_ptr(),
            ulTagBits: 128,
        };
        let (mut ad, mut c) = (aad.clone(), ct.to_vec());
        let mut out = vec![0u8; c.len() + 32];
        let mut out_len = out.len() as CK_ULONG;
        // SAFETY: parameter, inputs and output buffer outlive the call.
        let rv = unsafe {
            C_DecryptMessage(
                s,
                &mut p as *mut CK_GCM_MESSAGE_PARAMS as *mut c_void,
                std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG,
                ad.as_mut_ptr(),
                ad.len() as CK_ULONG,
                c.as_mut_ptr(),
                c.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut out_len,
            )
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        out.truncate(out_len as usize);
        Ok(out)
    };
    for (i, (iv, tag, ct)) in messages.iter().enumerate() {
        let (mut iv, mut tag) = (*iv, *tag);
        let out = decrypt(&mut iv, &mut tag, ct).unwrap_or_else(|rv| {
            panic!("C_DecryptMessage #{i} after init {how:?} returned {rv:#x}")
        });
        assert_eq!(
            out, plain,
            "C_DecryptMessage #{i} did not return the plaintext"
        );
    }
    // SAFETY: plain value argument.
    let rv = unsafe { C_MessageDecryptFinal(s) };
    assert_eq!(rv, CKR_OK, "C_MessageDecryptFinal returned {rv:#x}");

    // The decryption is real: a tampered ciphertext is refused.
    let mut m = message_mech(how, &mut init_iv, &mut init_tag);
    // SAFETY: the mechanism (and what it points to) outlives the call.
    let rv = unsafe { C_MessageDecryptInit(s, m.ptr(), key) };
    assert_eq!(
        rv, CKR_OK,
        "C_MessageDecryptInit(CKM_AES_GCM, {how:?}) returned {rv:#x}"
    );
    let (mut iv, mut tag, mut ct) = messages[0].clone();
    ct[0] ^= 0x80;
    let rv = decrypt(&mut iv, &mut tag, &ct).err().unwrap_or(CKR_OK);
    assert_ne!(
        rv, CKR_OK,
        "C_DecryptMessage accepted a tampered ciphertext"
    );
    // SAFETY: plain value argument; the tamper may have ended the operation.
    unsafe { C_MessageDecryptFinal(s) };
}

#[test]
fn gcm_message_init_with_params_or_null_and_generated_counter_iv() {
    let f = Fixture::new();
    let key = aes_key(
        f.s,
        &hex::decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap(),
    );
    gcm_message_round(f.s, key, InitParam::GcmMessageParams);
    gcm_message_round(f.s, key, InitParam::Null);
}

// ----- 3. C_GetInterface memory ----------------------------------------------------

/// Whether `addr..addr+len` lies in one writable mapping of this process.
fn writable(addr: usize, len: usize) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    maps.lines().any(|line| {
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            return false;
        };
        let Some((lo, hi)) = range.split_once('-') else {
            return false;
        };
        let lo = usize::from_str_radix(lo, 16).unwrap_or(usize::MAX);
        let hi = usize::from_str_radix(hi, 16).unwrap_or(0);
        lo <= addr && addr + len <= hi && perms.as_bytes().get(1) == Some(&b'w')
    })
}

#[test]
fn get_interface_points_to_writable_memory() {
    let _f = Fixture::new();
    // The check can fail: a string literal lives in read-only memory.
    assert!(
        !writable(b"read-only probe".as_ptr() as usize, 1),
        "/proc/self/maps check sees .rodata as writable"
    );
    let mut name = *b"PKCS 11\0";
    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    let cases: [(&str, *mut CK_UTF8CHAR, *mut CK_VERSION); 3] = [
        ("default (NULL name, NULL version)", null_mut(), null_mut()),
        ("\"PKCS 11\", NULL version", name.as_mut_ptr(), null_mut()),
        ("\"PKCS 11\" 3.0", name.as_mut_ptr(), &mut v30),
    ];
    for (what, n, v) in cases {
        let mut iface: *mut CK_INTERFACE = null_mut();
        // SAFETY: name, version and out-pointer outlive the call.
        let rv = unsafe { C_GetInterface(n, v, &mut iface, 0) };
        assert_eq!(rv, CKR_OK, "C_GetInterface({what}) returned {rv:#x}");
        assert!(!iface.is_null(), "C_GetInterface({what}) gave NULL");
        let flags_addr = iface as usize + std::mem::offset_of!(CK_INTERFACE, flags);
        // Checked first, so that read-only memory fails the assertion
        // instead of crashing the test process with SIGSEGV.
        assert!(
            writable(flags_addr, std::mem::size_of::<CK_FLAGS>()),
            "C_GetInterface({what}) returned {iface:p}, not in a writable mapping \
             (pkcs11-spy writes CK_INTERFACE.flags there)"
        );
        // SAFETY: the mapping is writable (checked above); the value is unchanged.
        let (before, after) = unsafe {
            let before = std::ptr::read_volatile(&(*iface).flags);
            std::ptr::write_volatile(&mut (*iface).flags, before);
            (before, std::ptr::read_volatile(&(*iface).flags))
        };
        assert_eq!(
            before, after,
            "CK_INTERFACE.flags changed after writing it back"
        );
        // The interface is still usable: its function list answers C_GetInfo.
        // SAFETY: pFunctionList of a "PKCS 11" interface is a CK_FUNCTION_LIST(_3_0).
        let list = unsafe { &*((*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0) };
        let get_info = list.C_GetInfo.expect("C_GetInfo in the interface's list");
        let mut info = std::mem::MaybeUninit::<CK_INFO>::zeroed();
        // SAFETY: `info` is a valid out-pointer.
        let rv = unsafe { get_info(info.as_mut_ptr()) };
        assert_eq!(
            rv, CKR_OK,
            "C_GetInfo through the interface ({what}) returned {rv:#x}"
        );
    }
}
