//! Rings 1/2: known-answer tests driven through the exported C API.
//!
//! Every vector comes from a published document and lives as data in
//! `tests/vectors/*.txt` (each file names its source in its header) or, for
//! policy and §5.2 convention checks, is made up on the spot. The vectors are
//! imported with C_CreateObject and run through C_Encrypt/C_Decrypt (single
//! and multi-part), C_Sign/C_Verify, C_Digest, C_WrapKey/C_UnwrapKey and
//! C_DeriveKey, comparing every output byte for byte.
//!
//! The fixture (fresh store, token, logged-in session) and the template,
//! mechanism and two-call helpers are shared: see `tests/common/mod.rs`.

mod common;

use common::*;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use strongroom_pkcs11::ffi::exports::*;

/// DER OID of P-256 (prime256v1), as CKA_EC_PARAMS.
const P256_PARAMS: &str = "06082a8648ce3d030107";

// ----- vectors as data ---------------------------------------------------------

/// One record of a vector file: `(field, value)` in file order.
struct Record(Vec<(String, String)>);

impl Record {
    fn text(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("field {field} missing in {:?}", self.0))
    }

    /// A hex field; "-" is empty.
    fn hex(&self, field: &str) -> Vec<u8> {
        match self.text(field) {
            "-" => Vec::new(),
            v => hex::decode(v).unwrap_or_else(|e| panic!("field {field}: {e}")),
        }
    }

    fn source(&self) -> &str {
        self.text("source")
    }
}

/// Reads `tests/vectors/<name>`: records separated by blank lines, lines
/// "<field> <value>", '#' comments.
fn vectors(name: &str) -> Vec<Record> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(Record(std::mem::take(&mut cur)));
            }
            continue;
        }
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        cur.push((k.to_string(), v.trim().to_string()));
    }
    if !cur.is_empty() {
        out.push(Record(cur));
    }
    assert!(!out.is_empty(), "{path} holds no vectors");
    out
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex literal")
}

// ----- templates ----------------------------------------------------------------------

fn secret(key_type: CK_KEY_TYPE, value: &[u8]) -> Tmpl {
    Tmpl::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, key_type)
        .bytes(CKA_VALUE, value)
}

#[track_caller]
fn must_create(s: CK_SESSION_HANDLE, t: Tmpl) -> CK_OBJECT_HANDLE {
    create(s, t).unwrap_or_else(|rv| panic!("C_CreateObject returned {rv:#x}"))
}

fn aes_key(s: CK_SESSION_HANDLE, value: &[u8]) -> CK_OBJECT_HANDLE {
    must_create(s, secret(CKK_AES, value))
}

fn generic_key(s: CK_SESSION_HANDLE, value: &[u8]) -> CK_OBJECT_HANDLE {
    must_create(s, secret(CKK_GENERIC_SECRET, value))
}

/// DER OCTET STRING around an uncompressed point 04||X||Y (CKA_EC_POINT).
fn ec_point_der(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut p = vec![0x04, (1 + x.len() + y.len()) as u8, 0x04];
    p.extend_from_slice(x);
    p.extend_from_slice(y);
    p
}

fn ec_public(s: CK_SESSION_HANDLE, params: &str, x: &[u8], y: &[u8]) -> CK_OBJECT_HANDLE {
    must_create(
        s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
            .ulong(CKA_KEY_TYPE, CKK_EC)
            .bytes(CKA_EC_PARAMS, &h(params))
            .bytes(CKA_EC_POINT, &ec_point_der(x, y)),
    )
}

fn ec_private(s: CK_SESSION_HANDLE, params: &str, d: &[u8]) -> CK_OBJECT_HANDLE {
    must_create(
        s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
            .ulong(CKA_KEY_TYPE, CKK_EC)
            .bytes(CKA_EC_PARAMS, &h(params))
            .bytes(CKA_VALUE, d),
    )
}

/// Reads one attribute's value.
fn attr(
    s: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
) -> Result<Vec<u8>, CK_RV> {
    let mut a = CK_ATTRIBUTE {
        type_: ty,
        pValue: null_mut(),
        ulValueLen: 0,
    };
    // SAFETY: one attribute, NULL value asks for the length.
    let rv = unsafe { C_GetAttributeValue(s, o, &mut a, 1) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut buf = vec![0u8; a.ulValueLen as usize];
    a.pValue = buf.as_mut_ptr() as *mut c_void;
    // SAFETY: `buf` holds ulValueLen bytes.
    let rv = unsafe { C_GetAttributeValue(s, o, &mut a, 1) };
    buf.truncate(a.ulValueLen as usize);
    res(rv, buf)
}

#[track_caller]
fn value(s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> Vec<u8> {
    attr(s, o, CKA_VALUE).unwrap_or_else(|rv| panic!("CKA_VALUE: {rv:#x}"))
}

#[track_caller]
fn attr_bool(s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
    let v = attr(s, o, ty).unwrap_or_else(|rv| panic!("attribute {ty:#x}: {rv:#x}"));
    assert_eq!(v.len(), 1, "CK_BBOOL attribute {ty:#x}");
    v[0] != CK_FALSE
}

// ----- mechanisms --------------------------------------------------------------------

fn ctr(counter_block: &[u8], bits: CK_ULONG) -> Mech {
    let mut cb = [0u8; 16];
    cb.copy_from_slice(counter_block);
    let p = CK_AES_CTR_PARAMS {
        ulCounterBits: bits,
        cb,
    };
    Mech::with(CKM_AES_CTR, &p, Vec::new())
}

fn mac_general(ty: CK_MECHANISM_TYPE, len: CK_ULONG) -> Mech {
    let p: CK_MAC_GENERAL_PARAMS = len;
    Mech::with(ty, &p, Vec::new())
}

fn hkdf(ty: CK_MECHANISM_TYPE, salt: Option<&[u8]>, info: &[u8]) -> Mech {
    let mut salt_v = salt.unwrap_or_default().to_vec();
    let mut info_v = info.to_vec();
    let p = CK_HKDF_PARAMS {
        bExtract: CK_TRUE,
        bExpand: CK_TRUE,
        prfHashMechanism: CKM_SHA256,
        ulSaltType: if salt.is_some() {
            CKF_HKDF_SALT_DATA
        } else {
            CKF_HKDF_SALT_NULL
        },
        pSalt: ptr_of(&mut salt_v),
        ulSaltLen: salt_v.len() as CK_ULONG,
        hSaltKey: CK_INVALID_HANDLE,
        pInfo: ptr_of(&mut info_v),
        ulInfoLen: info_v.len() as CK_ULONG,
    };
    Mech::with(ty, &p, vec![salt_v, info_v])
}

fn ecdh(public: &[u8]) -> Mech {
    let mut pubv = public.to_vec();
    let p = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: null_mut(),
        ulPublicDataLen: pubv.len() as CK_ULONG,
        pPublicData: pubv.as_mut_ptr(),
    };
    Mech::with(CKM_ECDH1_DERIVE, &p, vec![pubv])
}

// ----- operations ----------------------------------------------------------------------

fn encrypt_init(s: CK_SESSION_HANDLE, m: &mut Mech, k: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: the mechanism outlives the call.
    unsafe { C_EncryptInit(s, m.ptr(), k) }
}

fn decrypt_init(s: CK_SESSION_HANDLE, m: &mut Mech, k: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: the mechanism outlives the call.
    unsafe { C_DecryptInit(s, m.ptr(), k) }
}

fn sign_init(s: CK_SESSION_HANDLE, m: &mut Mech, k: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: the mechanism outlives the call.
    unsafe { C_SignInit(s, m.ptr(), k) }
}

fn verify_init(s: CK_SESSION_HANDLE, m: &mut Mech, k: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: the mechanism outlives the call.
    unsafe { C_VerifyInit(s, m.ptr(), k) }
}

fn encrypt(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    res(encrypt_init(s, m, k), ())?;
    two_call(s, C_Encrypt, data)
}

fn decrypt(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    res(decrypt_init(s, m, k), ())?;
    two_call(s, C_Decrypt, data)
}

/// Multi-part: Update over `chunks` of the input, then Final.
fn crypt_parts(
    s: CK_SESSION_HANDLE,
    enc: bool,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
    chunks: &[usize],
) -> Result<Vec<u8>, CK_RV> {
    let (init, update, fin): (_, OutFn, FinalFn) = if enc {
        (encrypt_init(s, m, k), C_EncryptUpdate, C_EncryptFinal)
    } else {
        (decrypt_init(s, m, k), C_DecryptUpdate, C_DecryptFinal)
    };
    res(init, ())?;
    let mut out = Vec::new();
    let mut rest = data;
    for &c in chunks.iter().chain(std::iter::once(&usize::MAX)) {
        let take = c.min(rest.len());
        let (part, tail) = rest.split_at(take);
        out.extend(two_call(s, update, part)?);
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    out.extend(two_call_final(s, fin)?);
    Ok(out)
}

fn sign(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    res(sign_init(s, m, k), ())?;
    two_call(s, C_Sign, data)
}

fn sign_parts(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, CK_RV> {
    res(sign_init(s, m, k), ())?;
    for part in data.chunks(chunk.max(1)) {
        let mut p = part.to_vec();
        // SAFETY: `p` outlives the call.
        res(
            unsafe { C_SignUpdate(s, p.as_mut_ptr(), p.len() as CK_ULONG) },
            (),
        )?;
    }
    two_call_final(s, C_SignFinal)
}

fn verify(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
) -> CK_RV {
    let rv = verify_init(s, m, k);
    if rv != CKR_OK {
        return rv;
    }
    common::verify(s, data, sig)
}

fn verify_parts(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    k: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
    chunk: usize,
) -> CK_RV {
    let rv = verify_init(s, m, k);
    if rv != CKR_OK {
        return rv;
    }
    for part in data.chunks(chunk.max(1)) {
        let mut p = part.to_vec();
        // SAFETY: `p` outlives the call.
        let rv = unsafe { C_VerifyUpdate(s, p.as_mut_ptr(), p.len() as CK_ULONG) };
        if rv != CKR_OK {
            return rv;
        }
    }
    let mut g = sig.to_vec();
    // SAFETY: `g` outlives the call.
    unsafe { C_VerifyFinal(s, ptr_of(&mut g), g.len() as CK_ULONG) }
}

fn wrap(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    kek: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Result<Vec<u8>, CK_RV> {
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL output asks for the length.
    let rv = unsafe { C_WrapKey(s, m.ptr(), kek, key, null_mut(), &mut n) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; n as usize];
    // SAFETY: `out` holds `n` bytes.
    let rv = unsafe { C_WrapKey(s, m.ptr(), kek, key, out.as_mut_ptr(), &mut n) };
    out.truncate(n as usize);
    res(rv, out)
}

fn unwrap(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    kek: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    mut t: Tmpl,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut w = wrapped.to_vec();
    let (p, n) = t.ptr();
    let mut o = 0;
    // SAFETY: all buffers outlive the call.
    let rv = unsafe {
        C_UnwrapKey(
            s,
            m.ptr(),
            kek,
            ptr_of(&mut w),
            w.len() as CK_ULONG,
            p,
            n,
            &mut o,
        )
    };
    res(rv, o)
}

fn derive(
    s: CK_SESSION_HANDLE,
    m: &mut Mech,
    base: CK_OBJECT_HANDLE,
    mut t: Tmpl,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let (p, n) = t.ptr();
    let mut o = 0;
    // SAFETY: all buffers outlive the call.
    let rv = unsafe { C_DeriveKey(s, m.ptr(), base, p, n, &mut o) };
    res(rv, o)
}

fn digest(s: CK_SESSION_HANDLE, ty: CK_MECHANISM_TYPE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let mut m = Mech::plain(ty);
    // SAFETY: the mechanism outlives the call.
    res(unsafe { C_DigestInit(s, m.ptr()) }, ())?;
    two_call(s, C_Digest, data)
}

fn digest_parts(
    s: CK_SESSION_HANDLE,
    ty: CK_MECHANISM_TYPE,
    data: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, CK_RV> {
    let mut m = Mech::plain(ty);
    // SAFETY: the mechanism outlives the call.
    res(unsafe { C_DigestInit(s, m.ptr()) }, ())?;
    for part in data.chunks(chunk.max(1)) {
        let mut p = part.to_vec();
        // SAFETY: `p` outlives the call.
        res(
            unsafe { C_DigestUpdate(s, p.as_mut_ptr(), p.len() as CK_ULONG) },
            (),
        )?;
    }
    two_call_final(s, C_DigestFinal)
}

/// A session-object secret key template for unwrap/derive results that can be read back.
fn readable_secret(key_type: CK_KEY_TYPE) -> Tmpl {
    Tmpl::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, key_type)
        .bool(CKA_SENSITIVE, false)
        .bool(CKA_EXTRACTABLE, true)
}

fn flip(v: &[u8], byte: usize) -> Vec<u8> {
    let mut w = v.to_vec();
    w[byte] ^= 0x01;
    w
}

// ===== Ring 1: known answers ===========================================================

#[test]
fn digest_fips180_4() {
    let f = Fixture::new();
    let recs = vectors("sha_fips180_4.txt");
    assert_eq!(recs.len(), 10);
    for r in &recs {
        let ty = match r.text("alg") {
            "sha1" => CKM_SHA_1,
            "sha224" => CKM_SHA224,
            "sha256" => CKM_SHA256,
            "sha384" => CKM_SHA384,
            "sha512" => CKM_SHA512,
            other => panic!("unknown alg {other}"),
        };
        let (msg, md) = (r.hex("msg"), r.hex("md"));
        let name = format!("{} of {} bytes", r.text("alg"), msg.len());
        assert_eq!(digest(f.s, ty, &msg).unwrap(), md, "{name} single-part");
        for chunk in [1, 3, 64, 1000] {
            assert_eq!(
                digest_parts(f.s, ty, &msg, chunk).unwrap(),
                md,
                "{name} in parts of {chunk}"
            );
        }
    }
}

#[test]
fn aes_sp800_38a_ecb_cbc_ctr() {
    let f = Fixture::new();
    let recs = vectors("aes_sp800_38a.txt");
    assert_eq!(recs.len(), 6);
    for r in &recs {
        let (key, iv, pt, ct) = (r.hex("key"), r.hex("iv"), r.hex("pt"), r.hex("ct"));
        let k = aes_key(f.s, &key);
        let mode = r.text("mode");
        let mech = || match mode {
            "ecb" => Mech::plain(CKM_AES_ECB),
            "cbc" => Mech::bytes(CKM_AES_CBC, &iv),
            "ctr" => ctr(&iv, 128),
            other => panic!("unknown mode {other}"),
        };
        let src = r.source();
        assert_eq!(
            encrypt(f.s, &mut mech(), k, &pt).unwrap(),
            ct,
            "{src} encrypt"
        );
        assert_eq!(
            decrypt(f.s, &mut mech(), k, &ct).unwrap(),
            pt,
            "{src} decrypt"
        );
        // Block-aligned parts for all modes; CTR also takes ragged parts.
        let mut splits: Vec<&[usize]> = vec![&[16, 16, 16, 16], &[32, 0, 32], &[48]];
        if mode == "ctr" {
            splits.extend([&[1, 5, 17, 30][..], &[63]]);
        }
        for chunks in splits {
            assert_eq!(
                crypt_parts(f.s, true, &mut mech(), k, &pt, chunks).unwrap(),
                ct,
                "{src} multi-part encrypt {chunks:?}"
            );
            assert_eq!(
                crypt_parts(f.s, false, &mut mech(), k, &ct, chunks).unwrap(),
                pt,
                "{src} multi-part decrypt {chunks:?}"
            );
        }
    }
}

#[test]
fn aes_gcm_mcgrew_viega() {
    let f = Fixture::new();
    let recs = vectors("gcm_mcgrew_viega.txt");
    assert_eq!(recs.len(), 6);
    for r in &recs {
        let (key, iv, aad, pt) = (r.hex("key"), r.hex("iv"), r.hex("aad"), r.hex("pt"));
        let mut ct_tag = r.hex("ct");
        ct_tag.extend(r.hex("tag"));
        let src = format!("GCM test case {}", r.source());
        let k = aes_key(f.s, &key);
        assert_eq!(
            encrypt(f.s, &mut gcm(&iv, &aad, 128), k, &pt).unwrap(),
            ct_tag,
            "{src} encrypt"
        );
        assert_eq!(
            decrypt(f.s, &mut gcm(&iv, &aad, 128), k, &ct_tag).unwrap(),
            pt,
            "{src} decrypt"
        );
        // Single-part encryption writes straight into the caller's buffer when
        // it can: in place (output over the input), into a larger buffer
        // (nothing written past the output), and a short buffer keeps the
        // operation alive.
        let mut buf = pt.clone();
        buf.resize(ct_tag.len() + 5, 0xee);
        assert_eq!(encrypt_init(f.s, &mut gcm(&iv, &aad, 128), k), CKR_OK);
        let mut n = buf.len() as CK_ULONG;
        // SAFETY: `buf` holds the input and room for the output; aliasing is
        // the point of the check.
        let rv = unsafe {
            C_Encrypt(
                f.s,
                buf.as_mut_ptr(),
                pt.len() as CK_ULONG,
                buf.as_mut_ptr(),
                &mut n,
            )
        };
        assert_eq!(rv, CKR_OK, "{src} in place");
        assert_eq!(&buf[..n as usize], &ct_tag[..], "{src} in place");
        let mut mech = gcm(&iv, &aad, 128);
        assert_eq!(encrypt_init(f.s, &mut mech, k), CKR_OK);
        let mut out = vec![0u8; ct_tag.len() + 7];
        let mut input = pt.clone();
        let mut encrypt_into_out = |cap: usize, n: &mut CK_ULONG| {
            *n = cap as CK_ULONG;
            // SAFETY: `out` has room for `cap` bytes; `input` is separate.
            unsafe {
                C_Encrypt(
                    f.s,
                    ptr_of(&mut input),
                    pt.len() as CK_ULONG,
                    out.as_mut_ptr(),
                    n,
                )
            }
        };
        let mut n: CK_ULONG = 0;
        let rv = encrypt_into_out(ct_tag.len() - 1, &mut n);
        assert_eq!(rv, CKR_BUFFER_TOO_SMALL, "{src} short buffer");
        assert_eq!(n as usize, ct_tag.len());
        let rv = encrypt_into_out(ct_tag.len() + 7, &mut n);
        assert_eq!(rv, CKR_OK, "{src} after a short buffer");
        assert_eq!(&out[..n as usize], &ct_tag[..], "{src} larger buffer");
        assert!(
            out[n as usize..].iter().all(|&b| b == 0),
            "{src} wrote past"
        );
        assert_eq!(
            crypt_parts(f.s, true, &mut gcm(&iv, &aad, 128), k, &pt, &[7, 16]).unwrap(),
            ct_tag,
            "{src} multi-part encrypt"
        );
        assert_eq!(
            crypt_parts(f.s, false, &mut gcm(&iv, &aad, 128), k, &ct_tag, &[7, 16]).unwrap(),
            pt,
            "{src} multi-part decrypt"
        );
        // One flipped bit in the ciphertext, then in the tag.
        for at in [0, ct_tag.len() - 1] {
            assert_eq!(
                decrypt(f.s, &mut gcm(&iv, &aad, 128), k, &flip(&ct_tag, at)),
                Err(CKR_ENCRYPTED_DATA_INVALID),
                "{src} tampered at byte {at}"
            );
        }
        if !aad.is_empty() {
            assert_eq!(
                decrypt(f.s, &mut gcm(&iv, &flip(&aad, 0), 128), k, &ct_tag),
                Err(CKR_ENCRYPTED_DATA_INVALID),
                "{src} tampered AAD"
            );
        }
    }
}

#[test]
fn aes_key_wrap_rfc3394_rfc5649() {
    let f = Fixture::new();
    let recs = vectors("keywrap_rfc3394_rfc5649.txt");
    assert_eq!(recs.len(), 4);
    for r in &recs {
        let (kek_v, key_v, wrapped) = (r.hex("kek"), r.hex("key"), r.hex("wrapped"));
        let src = r.source();
        let kek = aes_key(f.s, &kek_v);
        // RFC 3394 key data is an AES key; RFC 5649 keys (20 and 7 bytes) are
        // generic secrets.
        let (key_type, mechs): (CK_KEY_TYPE, &[CK_MECHANISM_TYPE]) = match r.text("kind") {
            "kw" => (CKK_AES, &[CKM_AES_KEY_WRAP]),
            "kwp" => (
                CKK_GENERIC_SECRET,
                &[CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD],
            ),
            other => panic!("unknown kind {other}"),
        };
        let key = must_create(f.s, secret(key_type, &key_v).bool(CKA_EXTRACTABLE, true));
        for &mt in mechs {
            assert_eq!(
                wrap(f.s, &mut Mech::plain(mt), kek, key).unwrap(),
                wrapped,
                "{src} C_WrapKey with mechanism {mt:#x}"
            );
            let back = unwrap(
                f.s,
                &mut Mech::plain(mt),
                kek,
                &wrapped,
                readable_secret(key_type),
            )
            .unwrap_or_else(|rv| panic!("{src} C_UnwrapKey {mt:#x}: {rv:#x}"));
            assert_eq!(value(f.s, back), key_v, "{src} unwrapped value ({mt:#x})");
            assert_eq!(
                attr(f.s, back, CKA_VALUE_LEN).unwrap(),
                (key_v.len() as CK_ULONG).to_ne_bytes().to_vec(),
                "{src} unwrapped CKA_VALUE_LEN"
            );
            // The same operation through C_Encrypt/C_Decrypt of the raw bytes.
            assert_eq!(
                encrypt(f.s, &mut Mech::plain(mt), kek, &key_v).unwrap(),
                wrapped,
                "{src} C_Encrypt with mechanism {mt:#x}"
            );
            assert_eq!(
                decrypt(f.s, &mut Mech::plain(mt), kek, &wrapped).unwrap(),
                key_v,
                "{src} C_Decrypt with mechanism {mt:#x}"
            );
        }
    }
}

fn hmac_mech(alg: &str, general: Option<CK_ULONG>) -> Mech {
    let (plain, gen) = match alg {
        "sha1" => (CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL),
        "sha224" => (CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL),
        "sha256" => (CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL),
        "sha384" => (CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL),
        "sha512" => (CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL),
        other => panic!("unknown alg {other}"),
    };
    match general {
        None => Mech::plain(plain),
        Some(n) => mac_general(gen, n),
    }
}

#[test]
fn hmac_rfc4231_rfc2202() {
    let f = Fixture::new();
    let recs = vectors("hmac_rfc4231_rfc2202.txt");
    assert_eq!(recs.len(), 4 * 7 + 3);
    for r in &recs {
        let (key, data, mac) = (r.hex("key"), r.hex("data"), r.hex("mac"));
        let alg = r.text("alg");
        let src = format!("{} {alg}", r.source());
        let k = generic_key(f.s, &key);
        // RFC 4231 case 5 is truncated to 128 bits: the _GENERAL mechanism.
        let general = (r.source() == "rfc4231-5").then_some(16);
        let m = || hmac_mech(alg, general);
        assert_eq!(sign(f.s, &mut m(), k, &data).unwrap(), mac, "{src} C_Sign");
        // The v2.40 HMAC key type of this hash gives the same MAC; another
        // hash's key type is refused.
        let (own, other) = match alg {
            "sha1" => (CKK_SHA_1_HMAC, CKK_SHA256_HMAC),
            "sha224" => (CKK_SHA224_HMAC, CKK_SHA_1_HMAC),
            "sha256" => (CKK_SHA256_HMAC, CKK_SHA512_HMAC),
            "sha384" => (CKK_SHA384_HMAC, CKK_SHA256_HMAC),
            _ => (CKK_SHA512_HMAC, CKK_SHA384_HMAC),
        };
        let typed = must_create(f.s, secret(own, &key));
        assert_eq!(
            sign(f.s, &mut m(), typed, &data).unwrap(),
            mac,
            "{src} with its HMAC key type"
        );
        let wrong = must_create(f.s, secret(other, &key));
        assert_eq!(
            sign(f.s, &mut m(), wrong, &data),
            Err(CKR_KEY_TYPE_INCONSISTENT),
            "{src} with another hash's HMAC key type"
        );
        assert_eq!(
            sign_parts(f.s, &mut m(), k, &data, 7).unwrap(),
            mac,
            "{src} C_SignUpdate/C_SignFinal"
        );
        assert_eq!(
            verify(f.s, &mut m(), k, &data, &mac),
            CKR_OK,
            "{src} C_Verify"
        );
        assert_eq!(
            verify_parts(f.s, &mut m(), k, &data, &mac, 5),
            CKR_OK,
            "{src} C_VerifyUpdate/C_VerifyFinal"
        );
        assert_eq!(
            verify(f.s, &mut m(), k, &data, &flip(&mac, mac.len() / 2)),
            CKR_SIGNATURE_INVALID,
            "{src} wrong MAC"
        );
        assert_eq!(
            verify(f.s, &mut m(), k, &flip(&data, 0), &mac),
            CKR_SIGNATURE_INVALID,
            "{src} wrong data"
        );
        assert_eq!(
            verify(f.s, &mut m(), k, &data, &mac[..mac.len() - 1]),
            CKR_SIGNATURE_LEN_RANGE,
            "{src} short MAC"
        );
        let mut long = mac.clone();
        long.push(0);
        assert_eq!(
            verify(f.s, &mut m(), k, &data, &long),
            CKR_SIGNATURE_LEN_RANGE,
            "{src} long MAC"
        );
    }
}

#[test]
fn aes_cmac_rfc4493() {
    let f = Fixture::new();
    let recs = vectors("cmac_rfc4493.txt");
    assert_eq!(recs.len(), 4);
    for r in &recs {
        let (key, msg, mac) = (r.hex("key"), r.hex("msg"), r.hex("mac"));
        let src = format!("RFC 4493 example {}", r.source());
        let k = aes_key(f.s, &key);
        let m = || Mech::plain(CKM_AES_CMAC);
        assert_eq!(sign(f.s, &mut m(), k, &msg).unwrap(), mac, "{src} C_Sign");
        assert_eq!(
            sign_parts(f.s, &mut m(), k, &msg, 13).unwrap(),
            mac,
            "{src} multi-part"
        );
        assert_eq!(
            verify(f.s, &mut m(), k, &msg, &mac),
            CKR_OK,
            "{src} C_Verify"
        );
        assert_eq!(
            verify(f.s, &mut m(), k, &msg, &flip(&mac, 15)),
            CKR_SIGNATURE_INVALID,
            "{src} wrong MAC"
        );
        // CMAC_GENERAL with 8 bytes: the leftmost 8 bytes (SP 800-38B MSB).
        let g = || mac_general(CKM_AES_CMAC_GENERAL, 8);
        assert_eq!(
            sign(f.s, &mut g(), k, &msg).unwrap(),
            mac[..8],
            "{src} CMAC_GENERAL(8)"
        );
        assert_eq!(
            verify(f.s, &mut g(), k, &msg, &mac[..8]),
            CKR_OK,
            "{src} CMAC_GENERAL(8) verify"
        );
        assert_eq!(
            verify(f.s, &mut g(), k, &msg, &mac),
            CKR_SIGNATURE_LEN_RANGE,
            "{src} CMAC_GENERAL(8) verify with 16 bytes"
        );
    }
}

#[test]
fn hkdf_rfc5869() {
    let f = Fixture::new();
    let recs = vectors("hkdf_rfc5869.txt");
    assert_eq!(recs.len(), 3);
    for r in &recs {
        let (ikm, salt, info, okm) = (r.hex("ikm"), r.hex("salt"), r.hex("info"), r.hex("okm"));
        let len: CK_ULONG = r.text("len").parse().expect("len");
        assert_eq!(okm.len() as CK_ULONG, len);
        let src = format!("RFC 5869 {}", r.source());
        // Case 3 has no salt: CKF_HKDF_SALT_NULL.
        let salt = (r.source() != "A.3").then_some(salt.as_slice());
        let base = generic_key(f.s, &ikm);
        let key = derive(
            f.s,
            &mut hkdf(CKM_HKDF_DERIVE, salt, &info),
            base,
            readable_secret(CKK_GENERIC_SECRET).ulong(CKA_VALUE_LEN, len),
        )
        .unwrap_or_else(|rv| panic!("{src} CKM_HKDF_DERIVE: {rv:#x}"));
        assert_eq!(value(f.s, key), okm, "{src} derived key");
        let data = derive(
            f.s,
            &mut hkdf(CKM_HKDF_DATA, salt, &info),
            base,
            Tmpl::new()
                .ulong(CKA_CLASS, CKO_DATA)
                .ulong(CKA_VALUE_LEN, len),
        )
        .unwrap_or_else(|rv| panic!("{src} CKM_HKDF_DATA: {rv:#x}"));
        assert_eq!(
            attr(f.s, data, CKA_CLASS).unwrap(),
            CKO_DATA.to_ne_bytes().to_vec(),
            "{src} CKM_HKDF_DATA object class"
        );
        assert_eq!(value(f.s, data), okm, "{src} data object value");
    }
}

fn ec_vectors() -> (Record, Record) {
    let mut recs = vectors("ec_p256_rfc6979_cavp.txt").into_iter();
    let ecdsa = recs.next().expect("ecdsa record");
    let ecdh = recs.next().expect("ecdh record");
    assert!(ecdsa.source().starts_with("rfc6979"));
    assert!(ecdh.source().starts_with("cavp"));
    (ecdsa, ecdh)
}

#[test]
fn ecdsa_p256_rfc6979() {
    let f = Fixture::new();
    let (r, _) = ec_vectors();
    let (d, qx, qy, msg) = (r.hex("d"), r.hex("qx"), r.hex("qy"), r.hex("msg"));
    let mut sig = r.hex("r");
    sig.extend(r.hex("s"));
    let pubk = ec_public(f.s, P256_PARAMS, &qx, &qy);
    let m256 = || Mech::plain(CKM_ECDSA_SHA256);
    assert_eq!(
        verify(f.s, &mut m256(), pubk, &msg, &sig),
        CKR_OK,
        "CKM_ECDSA_SHA256"
    );
    assert_eq!(
        verify_parts(f.s, &mut m256(), pubk, &msg, &sig, 2),
        CKR_OK,
        "CKM_ECDSA_SHA256 multi-part"
    );
    let hash = digest(f.s, CKM_SHA256, &msg).unwrap();
    assert_eq!(
        verify(f.s, &mut Mech::plain(CKM_ECDSA), pubk, &hash, &sig),
        CKR_OK,
        "CKM_ECDSA over SHA-256(msg)"
    );
    // One bit flipped in r, then in s; and a different message.
    for at in [0, 31, 32, 63] {
        assert_eq!(
            verify(f.s, &mut m256(), pubk, &msg, &flip(&sig, at)),
            CKR_SIGNATURE_INVALID,
            "flipped bit in byte {at}"
        );
    }
    assert_eq!(
        verify(f.s, &mut m256(), pubk, b"samplf", &sig),
        CKR_SIGNATURE_INVALID,
        "other message"
    );
    assert_eq!(
        verify(f.s, &mut m256(), pubk, &msg, &sig[..63]),
        CKR_SIGNATURE_LEN_RANGE,
        "short signature"
    );
    // The RFC's private key signs; its public key verifies.
    let priv_k = ec_private(f.s, P256_PARAMS, &d);
    assert_eq!(
        attr(f.s, priv_k, CKA_EC_POINT).unwrap(),
        ec_point_der(&qx, &qy),
        "CKA_EC_POINT computed from the RFC private key"
    );
    let mine = sign(f.s, &mut m256(), priv_k, &msg).unwrap();
    assert_eq!(mine.len(), 64);
    assert_eq!(
        verify(f.s, &mut m256(), pubk, &msg, &mine),
        CKR_OK,
        "own signature"
    );
    let mine_raw = sign(f.s, &mut Mech::plain(CKM_ECDSA), priv_k, &hash).unwrap();
    assert_eq!(
        verify(f.s, &mut m256(), pubk, &msg, &mine_raw),
        CKR_OK,
        "CKM_ECDSA signature verifies as CKM_ECDSA_SHA256"
    );
}

#[test]
fn ecdh_p256_cavp_count0() {
    let f = Fixture::new();
    let (_, r) = ec_vectors();
    let d = r.hex("diut");
    let mut peer = vec![0x04];
    peer.extend(r.hex("qcavsx"));
    peer.extend(r.hex("qcavsy"));
    let ziut = r.hex("ziut");
    let k = ec_private(f.s, P256_PARAMS, &d);
    assert_eq!(
        attr(f.s, k, CKA_EC_POINT).unwrap(),
        ec_point_der(&r.hex("qiutx"), &r.hex("qiuty")),
        "QIUT computed from dIUT"
    );
    let z = derive(
        f.s,
        &mut ecdh(&peer),
        k,
        readable_secret(CKK_GENERIC_SECRET),
    )
    .unwrap_or_else(|rv| panic!("CKM_ECDH1_DERIVE: {rv:#x}"));
    assert_eq!(value(f.s, z), ziut, "ZIUT");
    let z16 = derive(
        f.s,
        &mut ecdh(&peer),
        k,
        readable_secret(CKK_GENERIC_SECRET).ulong(CKA_VALUE_LEN, 16),
    )
    .unwrap();
    assert_eq!(
        value(f.s, z16),
        ziut[..16],
        "ZIUT truncated to CKA_VALUE_LEN"
    );
}

#[test]
fn rsa_pkcs1v15_sha256_wycheproof() {
    let f = Fixture::new();
    let path = format!(
        "{}/tests/vectors/rsa_pkcs1v15_2048_sha256_wycheproof.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("wycheproof file");
    let mut n = None;
    let mut e = None;
    let mut cases = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["n", v] => n = Some(h(v)),
            ["e", v] => e = Some(h(v)),
            [id, msg, sig, result] => {
                let msg = if *msg == "-" { Vec::new() } else { h(msg) };
                cases.push((id.to_string(), msg, h(sig), result.to_string()));
            }
            other => panic!("unparsed line {other:?}"),
        }
    }
    let key = must_create(
        f.s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
            .ulong(CKA_KEY_TYPE, CKK_RSA)
            .bytes(CKA_MODULUS, &n.expect("n"))
            .bytes(CKA_PUBLIC_EXPONENT, &e.expect("e")),
    );
    assert!(cases.len() >= 9, "only {} cases", cases.len());
    let mut checked = 0;
    for (id, msg, sig, result) in &cases {
        let rv = verify(f.s, &mut Mech::plain(CKM_SHA256_RSA_PKCS), key, msg, sig);
        match result.as_str() {
            "valid" => assert_eq!(rv, CKR_OK, "tcId {id} (valid)"),
            "invalid" => assert!(
                matches!(rv, CKR_SIGNATURE_INVALID | CKR_SIGNATURE_LEN_RANGE),
                "tcId {id} (invalid) returned {rv:#x}"
            ),
            "acceptable" => assert!(
                matches!(rv, CKR_OK | CKR_SIGNATURE_INVALID | CKR_SIGNATURE_LEN_RANGE),
                "tcId {id} (acceptable) returned {rv:#x}"
            ),
            other => panic!("tcId {id}: unknown result {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}

// ===== Ring 2: §5.2 conventions on crypto calls ============================================

/// RFC 4231 case 1 key and data, HMAC-SHA-256.
fn rfc4231_case1(s: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, Vec<u8>, Vec<u8>) {
    let k = generic_key(s, &[0x0b; 20]);
    (
        k,
        b"Hi There".to_vec(),
        h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    )
}

#[test]
fn sign_length_query_and_small_buffer_keep_operation() {
    let f = Fixture::new();
    let (k, mut data, mac) = rfc4231_case1(f.s);
    ck(
        sign_init(f.s, &mut Mech::plain(CKM_SHA256_HMAC), k),
        "C_SignInit",
    );
    let dl = data.len() as CK_ULONG;
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL output asks for the length.
    ck(
        unsafe { C_Sign(f.s, data.as_mut_ptr(), dl, null_mut(), &mut n) },
        "C_Sign(NULL)",
    );
    assert_eq!(n, 32, "length query");
    let mut one = [0u8; 1];
    n = 1;
    // SAFETY: `one` holds 1 byte, as stated.
    let rv = unsafe { C_Sign(f.s, data.as_mut_ptr(), dl, one.as_mut_ptr(), &mut n) };
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL, "1-byte buffer");
    assert_eq!(n, 32, "needed length after CKR_BUFFER_TOO_SMALL");
    let mut out = vec![0u8; 32];
    // SAFETY: `out` holds `n` bytes.
    ck(
        unsafe { C_Sign(f.s, data.as_mut_ptr(), dl, out.as_mut_ptr(), &mut n) },
        "C_Sign after CKR_BUFFER_TOO_SMALL",
    );
    assert_eq!(out, mac);
    // Finished: the next call has no operation.
    // SAFETY: as above.
    let rv = unsafe { C_Sign(f.s, data.as_mut_ptr(), dl, out.as_mut_ptr(), &mut n) };
    assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Sign after completion");
}

#[test]
fn decrypt_cbc_pad_small_buffer_keeps_operation() {
    let f = Fixture::new();
    let k = aes_key(f.s, &h("2b7e151628aed2a6abf7158809cf4f3c"));
    let iv = h("000102030405060708090a0b0c0d0e0f");
    let pt = b"twenty bytes of data".to_vec();
    let ct = encrypt(f.s, &mut Mech::bytes(CKM_AES_CBC_PAD, &iv), k, &pt).unwrap();
    assert_eq!(ct.len(), 32, "CBC_PAD of 20 bytes");
    // The first block agrees with plain CBC of the same data (padding only at the end).
    let cbc = encrypt(f.s, &mut Mech::bytes(CKM_AES_CBC, &iv), k, &pt[..16]).unwrap();
    assert_eq!(ct[..16], cbc[..], "CBC_PAD first block");

    ck(
        decrypt_init(f.s, &mut Mech::bytes(CKM_AES_CBC_PAD, &iv), k),
        "C_DecryptInit",
    );
    let mut c = ct.clone();
    let cl = c.len() as CK_ULONG;
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL output asks for the length.
    ck(
        unsafe { C_Decrypt(f.s, c.as_mut_ptr(), cl, null_mut(), &mut n) },
        "C_Decrypt(NULL)",
    );
    assert!((20..=32).contains(&n), "length query gave {n}");
    let mut one = [0u8; 1];
    n = 1;
    // SAFETY: `one` holds 1 byte.
    let rv = unsafe { C_Decrypt(f.s, c.as_mut_ptr(), cl, one.as_mut_ptr(), &mut n) };
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
    assert!((20..=32).contains(&n), "needed length {n}");
    let mut out = vec![0u8; n as usize];
    // SAFETY: `out` holds `n` bytes.
    ck(
        unsafe { C_Decrypt(f.s, c.as_mut_ptr(), cl, out.as_mut_ptr(), &mut n) },
        "C_Decrypt after CKR_BUFFER_TOO_SMALL",
    );
    out.truncate(n as usize);
    assert_eq!(out, pt);
}

#[test]
fn encrypt_after_update_is_operation_active() {
    let f = Fixture::new();
    let k = aes_key(f.s, &[7u8; 16]);
    ck(
        encrypt_init(f.s, &mut Mech::plain(CKM_AES_ECB), k),
        "C_EncryptInit",
    );
    let block = [1u8; 16];
    assert_eq!(two_call(f.s, C_EncryptUpdate, &block).unwrap().len(), 16);
    assert_eq!(
        two_call(f.s, C_Encrypt, &block),
        Err(CKR_OPERATION_ACTIVE),
        "C_Encrypt inside a multi-part operation"
    );
    // The same rule for C_Sign after C_SignUpdate.
    let (hk, _, _) = rfc4231_case1(f.s);
    ck(
        sign_init(f.s, &mut Mech::plain(CKM_SHA256_HMAC), hk),
        "C_SignInit",
    );
    let mut d = b"abc".to_vec();
    // SAFETY: `d` outlives the call.
    ck(
        unsafe { C_SignUpdate(f.s, d.as_mut_ptr(), 3) },
        "C_SignUpdate",
    );
    assert_eq!(two_call(f.s, C_Sign, b"abc"), Err(CKR_OPERATION_ACTIVE));
}

#[test]
fn error_ends_operation() {
    let f = Fixture::new();
    let k = aes_key(f.s, &[7u8; 16]);
    // ECB with 15 bytes: CKR_DATA_LEN_RANGE, and the operation is over.
    assert_eq!(
        encrypt(f.s, &mut Mech::plain(CKM_AES_ECB), k, &[0u8; 15]),
        Err(CKR_DATA_LEN_RANGE)
    );
    assert_eq!(
        two_call(f.s, C_Encrypt, &[0u8; 16]),
        Err(CKR_OPERATION_NOT_INITIALIZED),
        "after CKR_DATA_LEN_RANGE"
    );
    // A failed tag check ends the decryption.
    let iv = [0u8; 12];
    let ct = encrypt(f.s, &mut gcm(&iv, &[], 128), k, b"hello").unwrap();
    assert_eq!(
        decrypt(f.s, &mut gcm(&iv, &[], 128), k, &flip(&ct, 0)),
        Err(CKR_ENCRYPTED_DATA_INVALID)
    );
    assert_eq!(
        two_call(f.s, C_Decrypt, &ct),
        Err(CKR_OPERATION_NOT_INITIALIZED),
        "after CKR_ENCRYPTED_DATA_INVALID"
    );
    // C_Verify ends the operation whatever the outcome.
    let (hk, data, mac) = rfc4231_case1(f.s);
    assert_eq!(
        verify(
            f.s,
            &mut Mech::plain(CKM_SHA256_HMAC),
            hk,
            &data,
            &flip(&mac, 0)
        ),
        CKR_SIGNATURE_INVALID
    );
    let (mut d, mut g) = (data.clone(), mac.clone());
    // SAFETY: both buffers outlive the call.
    let rv = unsafe { C_Verify(f.s, d.as_mut_ptr(), d.len() as CK_ULONG, g.as_mut_ptr(), 32) };
    assert_eq!(
        rv, CKR_OPERATION_NOT_INITIALIZED,
        "after CKR_SIGNATURE_INVALID"
    );
    // ECB multi-part with a ragged total: C_EncryptFinal fails, then it is over.
    ck(
        encrypt_init(f.s, &mut Mech::plain(CKM_AES_ECB), k),
        "C_EncryptInit",
    );
    let _ = two_call(f.s, C_EncryptUpdate, &[0u8; 20]).unwrap();
    assert_eq!(
        two_call_final(f.s, C_EncryptFinal),
        Err(CKR_DATA_LEN_RANGE),
        "ECB final with 4 bytes left"
    );
    assert_eq!(
        two_call_final(f.s, C_EncryptFinal),
        Err(CKR_OPERATION_NOT_INITIALIZED)
    );
}

// ===== Ring 2: policy ==========================================================================

#[test]
fn policy_sign_false_is_not_permitted() {
    let f = Fixture::new();
    let k = must_create(
        f.s,
        secret(CKK_GENERIC_SECRET, &[1u8; 32]).bool(CKA_SIGN, false),
    );
    assert_eq!(
        sign_init(f.s, &mut Mech::plain(CKM_SHA256_HMAC), k),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    // The same key still verifies (CKA_VERIFY defaults to TRUE).
    assert_eq!(
        verify_init(f.s, &mut Mech::plain(CKM_SHA256_HMAC), k),
        CKR_OK
    );
    let e = must_create(f.s, secret(CKK_AES, &[1u8; 16]).bool(CKA_ENCRYPT, false));
    assert_eq!(
        encrypt_init(f.s, &mut Mech::plain(CKM_AES_ECB), e),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
}

#[test]
fn policy_allowed_mechanisms() {
    let f = Fixture::new();
    let k = must_create(
        f.s,
        secret(CKK_AES, &[2u8; 16]).mechs(CKA_ALLOWED_MECHANISMS, &[CKM_AES_CBC]),
    );
    assert_eq!(
        encrypt_init(f.s, &mut Mech::plain(CKM_AES_ECB), k),
        CKR_MECHANISM_INVALID
    );
    let ct = encrypt(
        f.s,
        &mut Mech::bytes(CKM_AES_CBC, &[0u8; 16]),
        k,
        &[0u8; 16],
    )
    .unwrap();
    assert_eq!(ct.len(), 16);
}

#[test]
fn policy_key_type_and_parameters() {
    let f = Fixture::new();
    let k = aes_key(f.s, &[3u8; 16]);
    assert_eq!(
        sign_init(f.s, &mut Mech::plain(CKM_ECDSA), k),
        CKR_KEY_TYPE_INCONSISTENT,
        "AES key with CKM_ECDSA"
    );
    assert_eq!(
        encrypt_init(f.s, &mut Mech::bytes(CKM_AES_CBC, &[0u8; 8]), k),
        CKR_MECHANISM_PARAM_INVALID,
        "8-byte CBC IV"
    );
    assert_eq!(
        decrypt_init(f.s, &mut Mech::bytes(CKM_AES_CBC_PAD, &[0u8; 17]), k),
        CKR_MECHANISM_PARAM_INVALID,
        "17-byte CBC_PAD IV"
    );
    assert_eq!(
        encrypt(f.s, &mut Mech::plain(CKM_AES_ECB), k, &[0u8; 17]),
        Err(CKR_DATA_LEN_RANGE),
        "ECB input of 17 bytes"
    );
    assert_eq!(
        decrypt(f.s, &mut Mech::plain(CKM_AES_ECB), k, &[0u8; 15]),
        Err(CKR_ENCRYPTED_DATA_LEN_RANGE),
        "ECB ciphertext of 15 bytes"
    );
}

#[test]
fn policy_wrap_unextractable() {
    let f = Fixture::new();
    let kek = aes_key(f.s, &[4u8; 16]);
    let key = must_create(
        f.s,
        secret(CKK_AES, &[5u8; 16]).bool(CKA_EXTRACTABLE, false),
    );
    assert_eq!(
        wrap(f.s, &mut Mech::plain(CKM_AES_KEY_WRAP), kek, key),
        Err(CKR_KEY_UNEXTRACTABLE)
    );
}

#[test]
fn policy_wrap_with_trusted() {
    let f = Fixture::new();
    let s = f.s;
    // A public token KEK made by the user, so the SO can see it.
    let trusted = must_create(
        s,
        secret(CKK_AES, &[6u8; 16])
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, false),
    );
    let untrusted = aes_key(s, &[7u8; 16]);
    // The user may not set CKA_TRUSTED.
    let mut t = Tmpl::new().bool(CKA_TRUSTED, true);
    let (p, n) = t.ptr();
    // SAFETY: the template outlives the call.
    assert_eq!(
        unsafe { C_SetAttributeValue(s, trusted, p, n) },
        CKR_ATTRIBUTE_READ_ONLY,
        "user sets CKA_TRUSTED"
    );
    // SAFETY: plain value argument.
    ck(unsafe { C_Logout(s) }, "C_Logout(user)");
    let so = open_rw();
    ck(login(so, CKU_SO, SO_PIN), "C_Login(SO)");
    let mut t = Tmpl::new().bool(CKA_TRUSTED, true);
    let (p, n) = t.ptr();
    // SAFETY: the template outlives the call.
    ck(
        unsafe { C_SetAttributeValue(so, trusted, p, n) },
        "SO sets CKA_TRUSTED",
    );
    // SAFETY: plain value arguments.
    ck(unsafe { C_Logout(so) }, "C_Logout(SO)");
    // SAFETY: plain value argument.
    ck(unsafe { C_CloseSession(so) }, "C_CloseSession(SO)");
    ck(login(s, CKU_USER, USER_PIN), "C_Login(user) again");
    assert!(
        attr_bool(s, trusted, CKA_TRUSTED),
        "CKA_TRUSTED after the SO set it"
    );

    let key = must_create(
        s,
        secret(CKK_AES, &[8u8; 16]).bool(CKA_WRAP_WITH_TRUSTED, true),
    );
    let untrusted = if attr(s, untrusted, CKA_CLASS).is_ok() {
        untrusted
    } else {
        // Private session objects may not survive the logout: make it again.
        aes_key(s, &[7u8; 16])
    };
    assert_eq!(
        wrap(s, &mut Mech::plain(CKM_AES_KEY_WRAP), untrusted, key),
        Err(CKR_KEY_NOT_WRAPPABLE),
        "untrusted KEK"
    );
    let wrapped = wrap(s, &mut Mech::plain(CKM_AES_KEY_WRAP), trusted, key)
        .unwrap_or_else(|rv| panic!("trusted KEK: {rv:#x}"));
    let back = unwrap(
        s,
        &mut Mech::plain(CKM_AES_KEY_WRAP),
        trusted,
        &wrapped,
        readable_secret(CKK_AES),
    )
    .unwrap();
    assert_eq!(value(s, back), vec![8u8; 16]);
}

#[test]
fn policy_wrap_template() {
    let f = Fixture::new();
    // The KEK only wraps AES keys.
    let kek = must_create(
        f.s,
        secret(CKK_AES, &[9u8; 16])
            .template(CKA_WRAP_TEMPLATE, Tmpl::new().ulong(CKA_KEY_TYPE, CKK_AES)),
    );
    let generic = generic_key(f.s, &[10u8; 16]);
    let aes = aes_key(f.s, &[11u8; 16]);
    assert_eq!(
        wrap(f.s, &mut Mech::plain(CKM_AES_KEY_WRAP), kek, generic),
        Err(CKR_KEY_NOT_WRAPPABLE),
        "CKA_WRAP_TEMPLATE mismatch"
    );
    assert!(
        wrap(f.s, &mut Mech::plain(CKM_AES_KEY_WRAP), kek, aes).is_ok(),
        "CKA_WRAP_TEMPLATE match"
    );
}

#[test]
fn policy_unwrap_template_and_attributes() {
    let f = Fixture::new();
    let kek_v = h("000102030405060708090a0b0c0d0e0f");
    let key_v = h("00112233445566778899aabbccddeeff");
    let wrapped = h("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5");
    // The KEK forces CKA_DECRYPT=FALSE on what it unwraps.
    let kek = must_create(
        f.s,
        secret(CKK_AES, &kek_v).template(CKA_UNWRAP_TEMPLATE, Tmpl::new().bool(CKA_DECRYPT, false)),
    );
    let kw = || Mech::plain(CKM_AES_KEY_WRAP);
    assert_eq!(
        unwrap(
            f.s,
            &mut kw(),
            kek,
            &wrapped,
            readable_secret(CKK_AES).bool(CKA_DECRYPT, true)
        ),
        Err(CKR_TEMPLATE_INCONSISTENT),
        "template conflicts with CKA_UNWRAP_TEMPLATE"
    );
    let k = unwrap(f.s, &mut kw(), kek, &wrapped, readable_secret(CKK_AES)).unwrap();
    assert!(
        !attr_bool(f.s, k, CKA_DECRYPT),
        "CKA_UNWRAP_TEMPLATE applied"
    );
    assert!(
        attr_bool(f.s, k, CKA_ENCRYPT),
        "other usages keep their defaults"
    );
    assert_eq!(value(f.s, k), key_v);
    for a in [CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL] {
        assert!(
            !attr_bool(f.s, k, a),
            "attribute {a:#x} of an unwrapped key"
        );
    }
    // Even a sensitive, unextractable unwrapped key was not always so.
    let plain_kek = aes_key(f.s, &kek_v);
    let locked = unwrap(
        f.s,
        &mut kw(),
        plain_kek,
        &wrapped,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_AES)
            .bool(CKA_SENSITIVE, true)
            .bool(CKA_EXTRACTABLE, false),
    )
    .unwrap();
    assert!(!attr_bool(f.s, locked, CKA_ALWAYS_SENSITIVE));
    assert!(!attr_bool(f.s, locked, CKA_NEVER_EXTRACTABLE));
    assert_eq!(attr(f.s, locked, CKA_VALUE), Err(CKR_ATTRIBUTE_SENSITIVE));
    // CKA_VALUE_LEN in the template: consistent works, inconsistent does not.
    let ok = unwrap(
        f.s,
        &mut kw(),
        plain_kek,
        &wrapped,
        readable_secret(CKK_AES).ulong(CKA_VALUE_LEN, 16),
    )
    .unwrap();
    assert_eq!(value(f.s, ok), key_v);
    assert_eq!(
        unwrap(
            f.s,
            &mut kw(),
            plain_kek,
            &wrapped,
            readable_secret(CKK_AES).ulong(CKA_VALUE_LEN, 32)
        ),
        Err(CKR_TEMPLATE_INCONSISTENT),
        "CKA_VALUE_LEN 32 for a 16-byte key"
    );
    assert_eq!(
        unwrap(
            f.s,
            &mut Mech::plain(CKM_AES_KEY_WRAP_KWP),
            plain_kek,
            &wrap(f.s, &mut Mech::plain(CKM_AES_KEY_WRAP_KWP), plain_kek, ok).unwrap(),
            readable_secret(CKK_GENERIC_SECRET).ulong(CKA_VALUE_LEN, 15)
        ),
        Err(CKR_TEMPLATE_INCONSISTENT),
        "CKA_VALUE_LEN 15 for a 16-byte key (KWP)"
    );
    // A tampered wrapped key fails the RFC 3394 integrity check.
    for at in [0, 12, wrapped.len() - 1] {
        assert_eq!(
            unwrap(
                f.s,
                &mut kw(),
                plain_kek,
                &flip(&wrapped, at),
                readable_secret(CKK_AES)
            ),
            Err(CKR_WRAPPED_KEY_INVALID),
            "tampered wrapped key at byte {at}"
        );
    }
    // RFC 5649 two-block blob (20-byte key), tampered.
    let kek5649 = aes_key(f.s, &h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"));
    let kwp20 = h("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
    for mt in [CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD] {
        for at in [0, 9, kwp20.len() - 1] {
            assert_eq!(
                unwrap(
                    f.s,
                    &mut Mech::plain(mt),
                    kek5649,
                    &flip(&kwp20, at),
                    readable_secret(CKK_GENERIC_SECRET)
                ),
                Err(CKR_WRAPPED_KEY_INVALID),
                "tampered RFC 5649 20-byte-key blob at byte {at} ({mt:#x})"
            );
        }
    }
    // RFC 5649 one-block blob (7-byte key), tampered, with KWP.
    let kwp7 = h("afbeb0f07dfbf5419200f2ccb50bb24f");
    assert_eq!(
        unwrap(
            f.s,
            &mut Mech::plain(CKM_AES_KEY_WRAP_KWP),
            kek5649,
            &flip(&kwp7, 3),
            readable_secret(CKK_GENERIC_SECRET)
        ),
        Err(CKR_WRAPPED_KEY_INVALID),
        "tampered RFC 5649 7-byte-key blob (KWP)"
    );
}

/// Regression (fixed in src/mechanism/ops.rs, `KwKind::unwrap`, the `KwKind::Pad` arm):
/// when RFC 5649 unwrapping fails, CKM_AES_KEY_WRAP_PAD falls back to RFC 3394
/// with PKCS#7 padding, and for a 16-byte blob (the RFC 5649 one-block form,
/// a valid length) that fallback's length error replaces the integrity
/// failure. Expected CKR_WRAPPED_KEY_INVALID (v3.0 §5.18: the wrapped key is
/// not valid), actual CKR_WRAPPED_KEY_LEN_RANGE. CKM_AES_KEY_WRAP_KWP gets it
/// right.
#[test]
fn src_bug_kw_pad_tampered_one_block_blob_is_wrapped_key_invalid() {
    let f = Fixture::new();
    let kek = aes_key(f.s, &h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"));
    let kwp7 = h("afbeb0f07dfbf5419200f2ccb50bb24f");
    assert_eq!(
        unwrap(
            f.s,
            &mut Mech::plain(CKM_AES_KEY_WRAP_PAD),
            kek,
            &flip(&kwp7, 3),
            readable_secret(CKK_GENERIC_SECRET)
        ),
        Err(CKR_WRAPPED_KEY_INVALID),
        "tampered RFC 5649 7-byte-key blob (CKM_AES_KEY_WRAP_PAD)"
    );
}
