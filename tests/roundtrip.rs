//! Ring 3: round trips through the built `libstrongroom_pkcs11.so`, loaded
//! with the `cryptoki` crate as an application would.
//!
//! The module keeps process-global state, so every test re-executes this
//! binary as a child (`<test> --exact` with `SR_RT_CHILD=<test>`) on a fresh
//! store; the parent asserts the child passed and shows its output. A crash
//! inside the module fails only the test that caused it.
//!
//! Mechanisms `cryptoki` 0.12 has no variant for (CKM_AES_CTR,
//! CKM_AES_KEY_WRAP_KWP, CKM_AES_CMAC_GENERAL, CKM_SHA256_HMAC_GENERAL) are
//! driven through the module's own function list ([`Raw`]) on the sessions
//! and objects cryptoki made.
//!
//! RSA keys are 2048 bits only: 3072/4096-bit generation is too slow for a
//! debug build and may not be skipped there, so it is left out.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::{GcmMessageParams, GcmParams, GeneratorFunction};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType, MessageParam};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::*;
use std::ffi::{c_void, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;
use std::ptr::null_mut;

const ROLE: &str = "SR_RT_CHILD";
const SO_PIN: &str = "so-pin-roundtrip";
const USER_PIN: &str = "user-pin-roundtrip";
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

// ----- process plumbing ---------------------------------------------------------------

/// `target/<profile>/libstrongroom_pkcs11.so`, next to `deps/` holding this binary.
fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let name = "libstrongroom_pkcs11.so";
    [
        deps.parent().expect("profile dir").join(name),
        deps.join(name),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("{name} not found next to {}", exe.display()))
}

/// In the parent: runs `name` in a child on a fresh store and asserts it
/// passed. In the child (`SR_RT_CHILD=name`): sets up a token and runs `body`.
fn in_child(name: &str, body: fn(&Session, &Raw)) {
    if std::env::var(ROLE).ok().as_deref() == Some(name) {
        let p = Pkcs11::new(lib_path()).expect("load module");
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        let slot = p.get_all_slots().expect("slots")[0];
        p.init_token(slot, &AuthPin::from(SO_PIN), "roundtrip")
            .expect("C_InitToken");
        let so = p.open_rw_session(slot).expect("session");
        so.login(UserType::So, Some(&AuthPin::from(SO_PIN)))
            .expect("SO login");
        so.init_pin(&AuthPin::from(USER_PIN)).expect("C_InitPIN");
        so.close().expect("close");
        let s = p.open_rw_session(slot).expect("session");
        s.login(UserType::User, Some(&AuthPin::from(USER_PIN)))
            .expect("user login");
        let raw = Raw::load();
        body(&s, &raw);
        drop(s);
        p.finalize().expect("C_Finalize");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, name)
        .env("STRONGROOM_STORE", tmp.path().join("store"))
        .env("STRONGROOM_KDF_MEMORY_KIB", "64")
        .env("STRONGROOM_KDF_ITERATIONS", "1")
        .env_remove("STRONGROOM_CONF")
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed: {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- raw access for mechanisms cryptoki lacks ------------------------------------------

/// The module's CK_FUNCTION_LIST (the same loaded library cryptoki uses) and
/// its dlopen handle for v3.0 functions outside that list.
struct Raw(*const CK_FUNCTION_LIST, *mut c_void);

/// A mechanism with a byte-copied parameter structure.
fn mech_bytes<T: Copy>(p: &T) -> Vec<u8> {
    // SAFETY: T is a plain-old-data PKCS#11 parameter structure.
    unsafe { std::slice::from_raw_parts(p as *const T as *const u8, std::mem::size_of::<T>()) }
        .to_vec()
}

fn rv(r: CK_RV) -> Result<(), CK_RV> {
    if r == CKR_OK {
        Ok(())
    } else {
        Err(r)
    }
}

fn nz(v: &mut [u8]) -> *mut u8 {
    if v.is_empty() {
        null_mut()
    } else {
        v.as_mut_ptr()
    }
}

type OutFn = unsafe extern "C" fn(
    CK_SESSION_HANDLE,
    *mut CK_BYTE,
    CK_ULONG,
    *mut CK_BYTE,
    *mut CK_ULONG,
) -> CK_RV;
type FinalFn = unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG) -> CK_RV;

impl Raw {
    fn load() -> Raw {
        let path = CString::new(lib_path().as_os_str().as_bytes()).expect("path");
        // SAFETY: dlopen of the library cryptoki already loaded (refcounted);
        // C_GetFunctionList has the PKCS#11 signature.
        unsafe {
            let h = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
            assert!(!h.is_null(), "dlopen");
            let sym = libc::dlsym(h, c"C_GetFunctionList".as_ptr());
            assert!(!sym.is_null(), "dlsym C_GetFunctionList");
            let f: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV =
                std::mem::transmute(sym);
            let mut fl = null_mut();
            assert_eq!(f(&mut fl), CKR_OK);
            Raw(fl, h)
        }
    }

    /// C_MessageEncryptInit / C_MessageDecryptInit with CKM_AES_GCM and a
    /// CK_GCM_PARAMS parameter (a NULL parameter is refused with
    /// CKR_MECHANISM_PARAM_INVALID by this module; the per-message
    /// CK_GCM_MESSAGE_PARAMS carry what each message needs).
    fn message_init(&self, s: &Session, encrypt: bool, key: ObjectHandle) -> CK_RV {
        let name = if encrypt {
            c"C_MessageEncryptInit"
        } else {
            c"C_MessageDecryptInit"
        };
        // SAFETY: an exported PKCS#11 v3.0 function of the loaded module.
        unsafe {
            let sym = libc::dlsym(self.1, name.as_ptr());
            assert!(!sym.is_null(), "dlsym {name:?}");
            let f: unsafe extern "C" fn(
                CK_SESSION_HANDLE,
                *mut CK_MECHANISM,
                CK_OBJECT_HANDLE,
            ) -> CK_RV = std::mem::transmute(sym);
            let mut iv = [0u8; 12];
            let mut p = CK_GCM_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: null_mut(),
                ulAADLen: 0,
                ulTagBits: 128,
            };
            let mut m = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: &mut p as *mut CK_GCM_PARAMS as *mut c_void,
                ulParameterLen: std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            };
            f(s.handle(), &mut m, key.handle())
        }
    }

    fn f(&self) -> &CK_FUNCTION_LIST {
        // SAFETY: the module's static function list.
        unsafe { &*self.0 }
    }

    fn out(&self, s: &Session, f: OutFn, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut input = data.to_vec();
        let mut n: CK_ULONG = 0;
        // SAFETY: buffers outlive the call; NULL output asks for the length.
        rv(unsafe {
            f(
                s.handle(),
                nz(&mut input),
                input.len() as CK_ULONG,
                null_mut(),
                &mut n,
            )
        })?;
        let mut out = vec![0u8; (n as usize).max(1)];
        // SAFETY: `out` holds at least `n` bytes.
        rv(unsafe {
            f(
                s.handle(),
                nz(&mut input),
                input.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n,
            )
        })?;
        out.truncate(n as usize);
        Ok(out)
    }

    fn fin(&self, s: &Session, f: FinalFn) -> Result<Vec<u8>, CK_RV> {
        let mut n: CK_ULONG = 0;
        // SAFETY: NULL output asks for the length.
        rv(unsafe { f(s.handle(), null_mut(), &mut n) })?;
        let mut out = vec![0u8; (n as usize).max(1)];
        // SAFETY: `out` holds at least `n` bytes.
        rv(unsafe { f(s.handle(), out.as_mut_ptr(), &mut n) })?;
        out.truncate(n as usize);
        Ok(out)
    }

    /// C_Encrypt/C_Decrypt single-part, or in `parts`-byte Updates plus Final;
    /// the mechanism is its type and parameter bytes.
    fn crypt(
        &self,
        s: &Session,
        enc: bool,
        (ty, mut param): (CK_MECHANISM_TYPE, Vec<u8>),
        key: ObjectHandle,
        data: &[u8],
        parts: Option<usize>,
    ) -> Result<Vec<u8>, CK_RV> {
        let f = self.f();
        let mut m = CK_MECHANISM {
            mechanism: ty,
            pParameter: nz(&mut param) as *mut c_void,
            ulParameterLen: param.len() as CK_ULONG,
        };
        let (init, one, update, fin) = if enc {
            (
                f.C_EncryptInit.expect("C_EncryptInit"),
                f.C_Encrypt.expect("C_Encrypt"),
                f.C_EncryptUpdate.expect("C_EncryptUpdate"),
                f.C_EncryptFinal.expect("C_EncryptFinal"),
            )
        } else {
            (
                f.C_DecryptInit.expect("C_DecryptInit"),
                f.C_Decrypt.expect("C_Decrypt"),
                f.C_DecryptUpdate.expect("C_DecryptUpdate"),
                f.C_DecryptFinal.expect("C_DecryptFinal"),
            )
        };
        // SAFETY: the mechanism and its parameter outlive the call.
        rv(unsafe { init(s.handle(), &mut m, key.handle()) })?;
        match parts {
            None => self.out(s, one, data),
            Some(n) => {
                let mut out = Vec::new();
                for c in data.chunks(n) {
                    out.extend(self.out(s, update, c)?);
                }
                out.extend(self.fin(s, fin)?);
                Ok(out)
            }
        }
    }

    fn sign(
        &self,
        s: &Session,
        ty: CK_MECHANISM_TYPE,
        mut param: Vec<u8>,
        key: ObjectHandle,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        let f = self.f();
        let mut m = CK_MECHANISM {
            mechanism: ty,
            pParameter: nz(&mut param) as *mut c_void,
            ulParameterLen: param.len() as CK_ULONG,
        };
        // SAFETY: the mechanism outlives the call.
        rv(unsafe { f.C_SignInit.expect("C_SignInit")(s.handle(), &mut m, key.handle()) })?;
        self.out(s, f.C_Sign.expect("C_Sign"), data)
    }

    fn verify(
        &self,
        s: &Session,
        ty: CK_MECHANISM_TYPE,
        mut param: Vec<u8>,
        key: ObjectHandle,
        data: &[u8],
        sig: &[u8],
    ) -> CK_RV {
        let f = self.f();
        let mut m = CK_MECHANISM {
            mechanism: ty,
            pParameter: nz(&mut param) as *mut c_void,
            ulParameterLen: param.len() as CK_ULONG,
        };
        let (mut d, mut g) = (data.to_vec(), sig.to_vec());
        // SAFETY: all buffers outlive the calls.
        unsafe {
            let r = f.C_VerifyInit.expect("C_VerifyInit")(s.handle(), &mut m, key.handle());
            if r != CKR_OK {
                return r;
            }
            f.C_Verify.expect("C_Verify")(
                s.handle(),
                nz(&mut d),
                d.len() as CK_ULONG,
                nz(&mut g),
                g.len() as CK_ULONG,
            )
        }
    }

    fn wrap(
        &self,
        s: &Session,
        ty: CK_MECHANISM_TYPE,
        kek: ObjectHandle,
        key: ObjectHandle,
    ) -> Result<Vec<u8>, CK_RV> {
        let f = self.f().C_WrapKey.expect("C_WrapKey");
        let mut m = CK_MECHANISM {
            mechanism: ty,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut n: CK_ULONG = 0;
        // SAFETY: NULL output asks for the length.
        rv(unsafe {
            f(
                s.handle(),
                &mut m,
                kek.handle(),
                key.handle(),
                null_mut(),
                &mut n,
            )
        })?;
        let mut out = vec![0u8; n as usize];
        // SAFETY: `out` holds `n` bytes.
        rv(unsafe {
            f(
                s.handle(),
                &mut m,
                kek.handle(),
                key.handle(),
                out.as_mut_ptr(),
                &mut n,
            )
        })?;
        out.truncate(n as usize);
        Ok(out)
    }

    /// Unwraps a readable generic secret.
    fn unwrap_generic(
        &self,
        s: &Session,
        ty: CK_MECHANISM_TYPE,
        kek: ObjectHandle,
        wrapped: &[u8],
    ) -> Result<ObjectHandle, CK_RV> {
        let f = self.f().C_UnwrapKey.expect("C_UnwrapKey");
        let mut m = CK_MECHANISM {
            mechanism: ty,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut class: CK_OBJECT_CLASS = CKO_SECRET_KEY;
        let mut kt: CK_KEY_TYPE = CKK_GENERIC_SECRET;
        let mut f_: CK_BBOOL = CK_FALSE;
        let ul = std::mem::size_of::<CK_ULONG>() as CK_ULONG;
        let mut t = [
            CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: &mut class as *mut _ as *mut c_void,
                ulValueLen: ul,
            },
            CK_ATTRIBUTE {
                type_: CKA_KEY_TYPE,
                pValue: &mut kt as *mut _ as *mut c_void,
                ulValueLen: ul,
            },
            CK_ATTRIBUTE {
                type_: CKA_SENSITIVE,
                pValue: &mut f_ as *mut _ as *mut c_void,
                ulValueLen: 1,
            },
        ];
        let mut w = wrapped.to_vec();
        let mut h: CK_OBJECT_HANDLE = 0;
        // SAFETY: every buffer outlives the call.
        rv(unsafe {
            f(
                s.handle(),
                &mut m,
                kek.handle(),
                w.as_mut_ptr(),
                w.len() as CK_ULONG,
                t.as_mut_ptr(),
                t.len() as CK_ULONG,
                &mut h,
            )
        })?;
        // SAFETY: a handle the module just returned.
        Ok(unsafe { ObjectHandle::new_from_raw(h) })
    }
}

// ----- small helpers ------------------------------------------------------------------------

fn rv_of<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(e, _)) => e,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

fn aes(s: &Session, len: u64) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::ValueLen(len.into()),
        ],
    )
    .expect("AES keygen")
}

fn generic(s: &Session, len: u64, sensitive: bool) -> ObjectHandle {
    s.generate_key(
        &Mechanism::GenericSecretKeyGen,
        &[
            Attribute::ValueLen(len.into()),
            Attribute::Sensitive(sensitive),
        ],
    )
    .expect("generic secret keygen")
}

fn ec_pair(s: &Session, params: &[u8]) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(params.to_vec())],
        &[Attribute::Derive(true)],
    )
    .expect("EC keygen")
}

fn rsa_pair(s: &Session) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::ModulusBits(2048.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ],
        &[],
    )
    .expect("RSA-2048 keygen")
}

fn get(s: &Session, o: ObjectHandle, t: AttributeType) -> Attribute {
    s.get_attributes(o, &[t])
        .expect("C_GetAttributeValue")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("attribute {t:?} missing"))
}

fn bytes_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match get(s, o, t) {
        Attribute::Value(v) | Attribute::EcPoint(v) | Attribute::Modulus(v) => v,
        other => panic!("unexpected {other:?}"),
    }
}

fn bool_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> bool {
    match get(s, o, t) {
        Attribute::Local(b)
        | Attribute::AlwaysSensitive(b)
        | Attribute::NeverExtractable(b)
        | Attribute::Sensitive(b)
        | Attribute::Extractable(b) => b,
        other => panic!("unexpected {other:?}"),
    }
}

fn value_len(s: &Session, o: ObjectHandle) -> CK_ULONG {
    match get(s, o, AttributeType::ValueLen) {
        Attribute::ValueLen(n) => CK_ULONG::from(n),
        other => panic!("unexpected {other:?}"),
    }
}

/// The raw point 04||X||Y inside a DER OCTET STRING CKA_EC_POINT.
fn raw_point(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x04, "OCTET STRING");
    let (len, rest) = if der[1] == 0x81 {
        (usize::from(der[2]), &der[3..])
    } else {
        (usize::from(der[1]), &der[2..])
    };
    assert_eq!(len, rest.len(), "DER length");
    assert_eq!(rest[0], 0x04, "uncompressed point");
    rest.to_vec()
}

/// Two keys are the same AES key: they encrypt a block alike.
fn same_aes(s: &Session, a: ObjectHandle, b: ObjectHandle) {
    let block = [0x5au8; 16];
    let x = s.encrypt(&Mechanism::AesEcb, a, &block).expect("ECB a");
    let y = s.encrypt(&Mechanism::AesEcb, b, &block).expect("ECB b");
    assert_eq!(x, y, "keys differ");
    assert_ne!(x, block, "ECB is not the identity");
}

/// Two keys are the same HMAC key.
fn same_hmac(s: &Session, a: ObjectHandle, b: ObjectHandle) {
    let x = s
        .sign(&Mechanism::Sha256Hmac, a, b"same key?")
        .expect("HMAC a");
    let y = s
        .sign(&Mechanism::Sha256Hmac, b, b"same key?")
        .expect("HMAC b");
    assert_eq!(x, y, "keys differ");
}

fn flip(v: &[u8], at: usize) -> Vec<u8> {
    let mut w = v.to_vec();
    w[at] ^= 0x80;
    w
}

// ===== tests ===============================================================================

#[test]
fn keygen_all_types() {
    in_child("keygen_all_types", |s, _| {
        for len in [16u64, 24, 32] {
            let k = aes(s, len);
            assert_eq!(value_len(s, k), len, "AES-{} CKA_VALUE_LEN", len * 8);
            assert!(bool_attr(s, k, AttributeType::Local), "CKA_LOCAL");
            assert!(bool_attr(s, k, AttributeType::AlwaysSensitive));
            assert!(!bool_attr(s, k, AttributeType::NeverExtractable));
            let pt = [7u8; 32];
            let ct = s.encrypt(&Mechanism::AesEcb, k, &pt).expect("ECB");
            assert_ne!(ct[..], pt[..]);
            assert_eq!(s.decrypt(&Mechanism::AesEcb, k, &ct).expect("ECB"), pt);
        }
        // Two AES keys differ.
        let (a, b) = (aes(s, 16), aes(s, 16));
        let x = s.encrypt(&Mechanism::AesEcb, a, &[0u8; 16]).unwrap();
        let y = s.encrypt(&Mechanism::AesEcb, b, &[0u8; 16]).unwrap();
        assert_ne!(x, y, "two generated AES keys agree");
        assert_eq!(
            rv_of(s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(20.into())])),
            RvError::KeySizeRange
        );

        let g = generic(s, 48, false);
        assert_eq!(value_len(s, g), 48);
        assert_eq!(bytes_attr(s, g, AttributeType::Value).len(), 48);
        let mac = s.sign(&Mechanism::Sha384Hmac, g, b"msg").expect("HMAC");
        assert_eq!(mac.len(), 48);
        s.verify(&Mechanism::Sha384Hmac, g, b"msg", &mac)
            .expect("HMAC verify");

        for (params, point_len, mech, field) in [
            (P256, 65usize, Mechanism::EcdsaSha256, 32usize),
            (P384, 97, Mechanism::EcdsaSha384, 48),
        ] {
            let (public, private) = ec_pair(s, params);
            let point = raw_point(&bytes_attr(s, public, AttributeType::EcPoint));
            assert_eq!(point.len(), point_len, "EC point");
            assert_eq!(
                raw_point(&bytes_attr(s, private, AttributeType::EcPoint)),
                point,
                "private key's CKA_EC_POINT"
            );
            assert!(bool_attr(s, private, AttributeType::Local));
            let sig = s.sign(&mech, private, b"data").expect("ECDSA sign");
            assert_eq!(sig.len(), 2 * field);
            s.verify(&mech, public, b"data", &sig)
                .expect("ECDSA verify");
        }

        let (public, private) = rsa_pair(s);
        assert_eq!(bytes_attr(s, public, AttributeType::Modulus).len(), 256);
        assert_eq!(
            bytes_attr(s, private, AttributeType::Modulus),
            bytes_attr(s, public, AttributeType::Modulus)
        );
        let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, b"data").unwrap();
        assert_eq!(sig.len(), 256);
        s.verify(&Mechanism::Sha256RsaPkcs, public, b"data", &sig)
            .expect("RSA verify");
    });
}

#[test]
fn wrap_unwrap_every_mechanism() {
    in_child("wrap_unwrap_every_mechanism", |s, raw| {
        let kek = aes(s, 32);
        let target = aes(s, 32);
        let aes_tmpl = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
        ];
        // AES key wrap (RFC 3394).
        let w = s
            .wrap_key(&Mechanism::AesKeyWrap, kek, target)
            .expect("KW wrap");
        assert_eq!(w.len(), 40);
        let back = s
            .unwrap_key(&Mechanism::AesKeyWrap, kek, &w, &aes_tmpl)
            .expect("KW unwrap");
        same_aes(s, target, back);
        assert_eq!(
            rv_of(s.unwrap_key(&Mechanism::AesKeyWrap, kek, &flip(&w, 5), &aes_tmpl)),
            RvError::WrappedKeyInvalid
        );

        // RFC 5649 with a 20-byte generic secret: KWP (0x210B) and 0x210A agree.
        let odd = generic(s, 20, true);
        let kwp = raw
            .wrap(s, CKM_AES_KEY_WRAP_KWP, kek, odd)
            .expect("KWP wrap");
        assert_eq!(kwp.len(), 32);
        let pad = s
            .wrap_key(&Mechanism::AesKeyWrapPad, kek, odd)
            .expect("0x210A wrap");
        assert_eq!(pad, kwp, "CKM_AES_KEY_WRAP_PAD and _KWP differ");
        let b1 = raw
            .unwrap_generic(s, CKM_AES_KEY_WRAP_KWP, kek, &kwp)
            .expect("KWP unwrap");
        same_hmac(s, odd, b1);
        let b2 = s
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &pad,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                ],
            )
            .expect("0x210A unwrap");
        same_hmac(s, odd, b2);
        assert_eq!(value_len(s, b2), 20);

        // AES-CBC-PAD.
        let iv = [3u8; 16];
        let w = s
            .wrap_key(&Mechanism::AesCbcPad(iv), kek, target)
            .expect("CBC_PAD wrap");
        assert_eq!(w.len(), 48);
        let back = s
            .unwrap_key(&Mechanism::AesCbcPad(iv), kek, &w, &aes_tmpl)
            .expect("CBC_PAD unwrap");
        same_aes(s, target, back);

        // AES-GCM.
        let mut giv = [9u8; 12];
        let gp = GcmParams::new(&mut giv, b"wrap aad", 128.into()).expect("GCM params");
        let w = s
            .wrap_key(&Mechanism::AesGcm(gp), kek, target)
            .expect("GCM wrap");
        assert_eq!(w.len(), 32 + 16);
        let mut giv = [9u8; 12];
        let gp = GcmParams::new(&mut giv, b"wrap aad", 128.into()).unwrap();
        let back = s
            .unwrap_key(&Mechanism::AesGcm(gp), kek, &w, &aes_tmpl)
            .expect("GCM unwrap");
        same_aes(s, target, back);
        let mut giv = [9u8; 12];
        let gp = GcmParams::new(&mut giv, b"other aad", 128.into()).unwrap();
        assert_eq!(
            rv_of(s.unwrap_key(&Mechanism::AesGcm(gp), kek, &w, &aes_tmpl)),
            RvError::WrappedKeyInvalid,
            "GCM unwrap with other AAD"
        );

        // RSA: OAEP SHA-256 with a label, OAEP SHA-1, PKCS#1 v1.5.
        let (public, private) = rsa_pair(s);
        let label = b"strongroom label";
        let oaeps = [
            PkcsOaepParams::new(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                PkcsOaepSource::data_specified(label),
            ),
            PkcsOaepParams::new(
                MechanismType::SHA1,
                PkcsMgfType::MGF1_SHA1,
                PkcsOaepSource::empty(),
            ),
        ];
        for p in oaeps {
            let w = s
                .wrap_key(&Mechanism::RsaPkcsOaep(p), public, target)
                .expect("OAEP wrap");
            assert_eq!(w.len(), 256);
            let back = s
                .unwrap_key(&Mechanism::RsaPkcsOaep(p), private, &w, &aes_tmpl)
                .expect("OAEP unwrap");
            same_aes(s, target, back);
        }
        let wrong_label = PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::data_specified(b"another label"),
        );
        let w = s
            .wrap_key(&Mechanism::RsaPkcsOaep(oaeps[0]), public, target)
            .unwrap();
        assert!(
            s.unwrap_key(&Mechanism::RsaPkcsOaep(wrong_label), private, &w, &aes_tmpl)
                .is_err(),
            "OAEP unwrap with another label"
        );
        let w = s
            .wrap_key(&Mechanism::RsaPkcs, public, target)
            .expect("RSA_PKCS wrap");
        let back = s
            .unwrap_key(&Mechanism::RsaPkcs, private, &w, &aes_tmpl)
            .expect("RSA_PKCS unwrap");
        same_aes(s, target, back);
    });
}

#[test]
fn sign_verify_every_mechanism() {
    in_child("sign_verify_every_mechanism", |s, raw| {
        let data = b"The quick brown fox jumps over the lazy dog".to_vec();
        let check = |m: &Mechanism, private: ObjectHandle, public: ObjectHandle, what: &str| {
            let sig = s
                .sign(m, private, &data)
                .unwrap_or_else(|e| panic!("{what} sign: {e}"));
            s.verify(m, public, &data, &sig)
                .unwrap_or_else(|e| panic!("{what} verify: {e}"));
            assert_eq!(
                rv_of(s.verify(m, public, &data, &flip(&sig, sig.len() / 2))),
                RvError::SignatureInvalid,
                "{what}: tampered signature"
            );
            assert_eq!(
                rv_of(s.verify(m, public, b"other data", &sig)),
                RvError::SignatureInvalid,
                "{what}: other data"
            );
            // Multi-part agrees with single-part verification.
            s.sign_init(m, private).unwrap();
            s.sign_update(&data[..10]).unwrap();
            s.sign_update(&data[10..]).unwrap();
            let sig2 = s.sign_final().unwrap();
            s.verify(m, public, &data, &sig2)
                .unwrap_or_else(|e| panic!("{what} multi-part signature: {e}"));
            sig
        };

        // ECDSA on both curves.
        for (params, hash_len) in [(P256, 32usize), (P384, 48)] {
            let (public, private) = ec_pair(s, params);
            for (m, what) in [
                (Mechanism::EcdsaSha1, "ECDSA-SHA1"),
                (Mechanism::EcdsaSha224, "ECDSA-SHA224"),
                (Mechanism::EcdsaSha256, "ECDSA-SHA256"),
                (Mechanism::EcdsaSha384, "ECDSA-SHA384"),
                (Mechanism::EcdsaSha512, "ECDSA-SHA512"),
            ] {
                check(&m, private, public, what);
            }
            let hash = s.digest(&Mechanism::Sha256, &data).unwrap();
            let mut h = hash.clone();
            h.resize(hash_len, 0x11);
            let sig = s.sign(&Mechanism::Ecdsa, private, &h).expect("raw ECDSA");
            s.verify(&Mechanism::Ecdsa, public, &h, &sig)
                .expect("raw ECDSA verify");
            assert_eq!(
                rv_of(s.verify(&Mechanism::Ecdsa, public, &flip(&h, 0), &sig)),
                RvError::SignatureInvalid
            );
        }

        // RSA PKCS#1 v1.5 and PSS.
        let (public, private) = rsa_pair(s);
        for (m, what) in [
            (Mechanism::Sha1RsaPkcs, "SHA1-RSA"),
            (Mechanism::Sha224RsaPkcs, "SHA224-RSA"),
            (Mechanism::Sha256RsaPkcs, "SHA256-RSA"),
            (Mechanism::Sha384RsaPkcs, "SHA384-RSA"),
            (Mechanism::Sha512RsaPkcs, "SHA512-RSA"),
        ] {
            let sig = check(&m, private, public, what);
            assert_eq!(
                s.sign(&m, private, &data).unwrap(),
                sig,
                "{what} is deterministic"
            );
        }
        // CKM_RSA_PKCS over a DigestInfo equals CKM_SHA256_RSA_PKCS.
        let mut di = vec![
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        di.extend(s.digest(&Mechanism::Sha256, &data).unwrap());
        let raw_sig = s.sign(&Mechanism::RsaPkcs, private, &di).expect("RSA_PKCS");
        assert_eq!(
            raw_sig,
            s.sign(&Mechanism::Sha256RsaPkcs, private, &data).unwrap(),
            "CKM_RSA_PKCS(DigestInfo) == CKM_SHA256_RSA_PKCS"
        );
        s.verify(&Mechanism::RsaPkcs, public, &di, &raw_sig)
            .expect("RSA_PKCS verify");
        let pss = |hash: MechanismType, mgf: PkcsMgfType, len: u64| PkcsPssParams {
            hash_alg: hash,
            mgf,
            s_len: len.into(),
        };
        for (m, what) in [
            (
                Mechanism::Sha1RsaPkcsPss(pss(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, 20)),
                "SHA1-PSS",
            ),
            (
                Mechanism::Sha256RsaPkcsPss(pss(
                    MechanismType::SHA256,
                    PkcsMgfType::MGF1_SHA256,
                    32,
                )),
                "SHA256-PSS",
            ),
            (
                Mechanism::Sha384RsaPkcsPss(pss(
                    MechanismType::SHA384,
                    PkcsMgfType::MGF1_SHA384,
                    48,
                )),
                "SHA384-PSS",
            ),
            (
                Mechanism::Sha512RsaPkcsPss(pss(
                    MechanismType::SHA512,
                    PkcsMgfType::MGF1_SHA512,
                    64,
                )),
                "SHA512-PSS",
            ),
        ] {
            let a = check(&m, private, public, what);
            let b = s.sign(&m, private, &data).unwrap();
            assert_ne!(a, b, "{what} with a salt is randomised");
        }
        let p = pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32);
        let hash = s.digest(&Mechanism::Sha256, &data).unwrap();
        let sig = s
            .sign(&Mechanism::RsaPkcsPss(p), private, &hash)
            .expect("raw PSS");
        s.verify(&Mechanism::RsaPkcsPss(p), public, &hash, &sig)
            .expect("raw PSS verify");
        s.verify(&Mechanism::Sha256RsaPkcsPss(p), public, &data, &sig)
            .expect("CKM_RSA_PKCS_PSS verifies as CKM_SHA256_RSA_PKCS_PSS");

        // HMAC with a generic secret.
        let g = generic(s, 32, true);
        for (m, len, what) in [
            (Mechanism::Sha1Hmac, 20usize, "HMAC-SHA1"),
            (Mechanism::Sha224Hmac, 28, "HMAC-SHA224"),
            (Mechanism::Sha256Hmac, 32, "HMAC-SHA256"),
            (Mechanism::Sha384Hmac, 48, "HMAC-SHA384"),
            (Mechanism::Sha512Hmac, 64, "HMAC-SHA512"),
        ] {
            let mac = check(&m, g, g, what);
            assert_eq!(mac.len(), len, "{what} length");
        }
        let full = s.sign(&Mechanism::Sha256Hmac, g, &data).unwrap();
        let p16 = mech_bytes(&(16 as CK_MAC_GENERAL_PARAMS));
        let short = raw
            .sign(s, CKM_SHA256_HMAC_GENERAL, p16.clone(), g, &data)
            .expect("HMAC_GENERAL");
        assert_eq!(short, full[..16], "HMAC_GENERAL(16) is the truncated HMAC");
        assert_eq!(
            raw.verify(s, CKM_SHA256_HMAC_GENERAL, p16, g, &data, &short),
            CKR_OK
        );

        // AES-CMAC.
        let k = aes(s, 32);
        let mac = check(&Mechanism::AesCMac, k, k, "AES-CMAC");
        assert_eq!(mac.len(), 16);
        let p8 = mech_bytes(&(8 as CK_MAC_GENERAL_PARAMS));
        let short = raw
            .sign(s, CKM_AES_CMAC_GENERAL, p8.clone(), k, &data)
            .expect("CMAC_GENERAL");
        assert_eq!(short, mac[..8], "CMAC_GENERAL(8) is the truncated CMAC");
        assert_eq!(
            raw.verify(s, CKM_AES_CMAC_GENERAL, p8.clone(), k, &data, &short),
            CKR_OK
        );
        assert_eq!(
            raw.verify(s, CKM_AES_CMAC_GENERAL, p8, k, &data, &flip(&short, 0)),
            CKR_SIGNATURE_INVALID
        );
    });
}

#[test]
fn encrypt_decrypt_every_mechanism() {
    in_child("encrypt_decrypt_every_mechanism", |s, raw| {
        let pt: Vec<u8> = (0..100u8).collect();
        let block_pt = &pt[..96];
        for len in [16u64, 24, 32] {
            let k = aes(s, len);
            let iv = [0x42u8; 16];
            for (m, input) in [
                (Mechanism::AesEcb, block_pt),
                (Mechanism::AesCbc(iv), block_pt),
                (Mechanism::AesCbcPad(iv), &pt[..]),
            ] {
                let ct = s.encrypt(&m, k, input).expect("encrypt");
                assert_ne!(ct[..input.len()], input[..], "{m:?} leaves data alone");
                assert_eq!(s.decrypt(&m, k, &ct).expect("decrypt"), input, "{m:?}");
                // Multi-part, with ragged parts for the padded mode.
                let step = if matches!(m, Mechanism::AesCbcPad(_)) {
                    7
                } else {
                    32
                };
                s.encrypt_init(&m, k).unwrap();
                let mut multi = Vec::new();
                for c in input.chunks(step) {
                    multi.extend(s.encrypt_update(c).expect("encrypt update"));
                }
                multi.extend(s.encrypt_final().expect("encrypt final"));
                assert_eq!(multi, ct, "{m:?} multi-part encrypt");
                s.decrypt_init(&m, k).unwrap();
                let mut back = Vec::new();
                for c in ct.chunks(step) {
                    back.extend(s.decrypt_update(c).expect("decrypt update"));
                }
                back.extend(s.decrypt_final().expect("decrypt final"));
                assert_eq!(back, input, "{m:?} multi-part decrypt");
            }
            // CBC_PAD adds a whole block to aligned input.
            assert_eq!(
                s.encrypt(&Mechanism::AesCbcPad(iv), k, block_pt)
                    .unwrap()
                    .len(),
                112
            );
            // CTR (raw: cryptoki has no CKM_AES_CTR) with a 32-bit counter.
            let mut cb = [0u8; 16];
            cb[..12].copy_from_slice(&[0xc0; 12]);
            let cp = mech_bytes(&CK_AES_CTR_PARAMS {
                ulCounterBits: 32,
                cb,
            });
            let ct = raw
                .crypt(s, true, (CKM_AES_CTR, cp.clone()), k, &pt, None)
                .expect("CTR encrypt");
            assert_eq!(ct.len(), pt.len());
            assert_ne!(ct, pt);
            assert_eq!(
                raw.crypt(s, true, (CKM_AES_CTR, cp.clone()), k, &pt, Some(9))
                    .expect("CTR multi-part"),
                ct
            );
            assert_eq!(
                raw.crypt(s, false, (CKM_AES_CTR, cp.clone()), k, &ct, Some(13))
                    .expect("CTR decrypt"),
                pt
            );
            // The first CTR block is ECB of the counter block.
            let ks = s.encrypt(&Mechanism::AesEcb, k, &cb).unwrap();
            let first: Vec<u8> = pt[..16].iter().zip(&ks).map(|(a, b)| a ^ b).collect();
            assert_eq!(ct[..16], first[..], "CTR keystream");
            // GCM single and multi-part.
            let mut giv = [0x24u8; 12];
            let gp = GcmParams::new(&mut giv, b"header", 128.into()).unwrap();
            let ct = s.encrypt(&Mechanism::AesGcm(gp), k, &pt).expect("GCM");
            assert_eq!(ct.len(), pt.len() + 16);
            let mut giv = [0x24u8; 12];
            let gp = GcmParams::new(&mut giv, b"header", 128.into()).unwrap();
            assert_eq!(s.decrypt(&Mechanism::AesGcm(gp), k, &ct).unwrap(), pt);
            let mut giv = [0x24u8; 12];
            let gp = GcmParams::new(&mut giv, b"header", 128.into()).unwrap();
            s.encrypt_init(&Mechanism::AesGcm(gp), k).unwrap();
            let mut multi = Vec::new();
            for c in pt.chunks(33) {
                multi.extend(s.encrypt_update(c).unwrap());
            }
            multi.extend(s.encrypt_final().unwrap());
            assert_eq!(multi, ct, "GCM multi-part encrypt");
            let mut giv = [0x24u8; 12];
            let gp = GcmParams::new(&mut giv, b"header", 128.into()).unwrap();
            s.decrypt_init(&Mechanism::AesGcm(gp), k).unwrap();
            let mut back = Vec::new();
            for c in ct.chunks(33) {
                back.extend(s.decrypt_update(c).unwrap());
            }
            back.extend(s.decrypt_final().unwrap());
            assert_eq!(back, pt, "GCM multi-part decrypt");
            let mut giv = [0x24u8; 12];
            let gp = GcmParams::new(&mut giv, b"header", 128.into()).unwrap();
            assert_eq!(
                rv_of(s.decrypt(&Mechanism::AesGcm(gp), k, &flip(&ct, 3))),
                RvError::EncryptedDataInvalid
            );
        }

        // RSA OAEP (SHA-256 + label, SHA-1) and PKCS#1 v1.5.
        let (public, private) = rsa_pair(s);
        let msg = b"a secret for RSA";
        let label = b"label";
        for p in [
            PkcsOaepParams::new(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                PkcsOaepSource::data_specified(label),
            ),
            PkcsOaepParams::new(
                MechanismType::SHA1,
                PkcsMgfType::MGF1_SHA1,
                PkcsOaepSource::empty(),
            ),
        ] {
            let m = Mechanism::RsaPkcsOaep(p);
            let ct = s.encrypt(&m, public, msg).expect("OAEP encrypt");
            assert_eq!(ct.len(), 256);
            assert_ne!(
                ct,
                s.encrypt(&m, public, msg).unwrap(),
                "OAEP is randomised"
            );
            assert_eq!(s.decrypt(&m, private, &ct).expect("OAEP decrypt"), msg);
        }
        let ct = s
            .encrypt(&Mechanism::RsaPkcs, public, msg)
            .expect("RSA_PKCS");
        assert_eq!(ct.len(), 256);
        assert_eq!(s.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(), msg);
    });
}

#[test]
fn derive_ecdh_hkdf_and_random() {
    in_child("derive_ecdh_hkdf_and_random", |s, _| {
        let readable = |len: Option<u64>| {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            if let Some(l) = len {
                t.push(Attribute::ValueLen(l.into()));
            }
            t
        };
        for (params, field) in [(P256, 32usize), (P384, 48)] {
            let (a_pub, a_priv) = ec_pair(s, params);
            let (b_pub, b_priv) = ec_pair(s, params);
            let a_point = raw_point(&bytes_attr(s, a_pub, AttributeType::EcPoint));
            let b_point = raw_point(&bytes_attr(s, b_pub, AttributeType::EcPoint));
            let za = s
                .derive_key(
                    &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &b_point)),
                    a_priv,
                    &readable(None),
                )
                .expect("ECDH A");
            let zb = s
                .derive_key(
                    &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &a_point)),
                    b_priv,
                    &readable(None),
                )
                .expect("ECDH B");
            let (va, vb) = (
                bytes_attr(s, za, AttributeType::Value),
                bytes_attr(s, zb, AttributeType::Value),
            );
            assert_eq!(va.len(), field);
            assert_eq!(va, vb, "both sides agree");
            assert!(va.iter().any(|b| *b != 0));
            // A third party derives something else.
            let (_, c_priv) = ec_pair(s, params);
            let zc = s
                .derive_key(
                    &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &b_point)),
                    c_priv,
                    &readable(None),
                )
                .unwrap();
            assert_ne!(bytes_attr(s, zc, AttributeType::Value), va);
            // With a KDF both sides agree too.
            let kdf_a = s
                .derive_key(
                    &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(
                        EcKdf::sha256(b"shared"),
                        &b_point,
                    )),
                    a_priv,
                    &readable(Some(40)),
                )
                .expect("ECDH SHA256 KDF A");
            let kdf_b = s
                .derive_key(
                    &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(
                        EcKdf::sha256(b"shared"),
                        &a_point,
                    )),
                    b_priv,
                    &readable(Some(40)),
                )
                .expect("ECDH SHA256 KDF B");
            let ka = bytes_attr(s, kdf_a, AttributeType::Value);
            assert_eq!(ka.len(), 40);
            assert_eq!(ka, bytes_attr(s, kdf_b, AttributeType::Value));
        }

        // HKDF (RFC 5869 A.1 as a sanity value) into a key and a data object.
        let ikm = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(vec![0x0b; 22]),
            ])
            .expect("IKM");
        let salt: Vec<u8> = (0..=0x0cu8).collect();
        let info: Vec<u8> = (0xf0..=0xf9u8).collect();
        let okm = hex::decode(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        )
        .unwrap();
        let hp = || {
            HkdfParams::new(
                MechanismType::SHA256,
                Some(HkdfSalt::Data(&salt)),
                Some(&info),
            )
        };
        let k = s
            .derive_key(&Mechanism::HkdfDerive(hp()), ikm, &readable(Some(42)))
            .expect("HKDF derive");
        assert_eq!(bytes_attr(s, k, AttributeType::Value), okm);
        let d = s
            .derive_key(
                &Mechanism::HkdfData(hp()),
                ikm,
                &[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::ValueLen(42.into()),
                ],
            )
            .expect("HKDF data");
        assert_eq!(bytes_attr(s, d, AttributeType::Value), okm);
        // A derived AES key works as one.
        let a = s
            .derive_key(
                &Mechanism::HkdfDerive(hp()),
                ikm,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                ],
            )
            .expect("HKDF AES key");
        let ct = s.encrypt(&Mechanism::AesEcb, a, &[1u8; 16]).unwrap();
        assert_eq!(s.decrypt(&Mechanism::AesEcb, a, &ct).unwrap(), [1u8; 16]);

        // C_GenerateRandom.
        let r1 = s.generate_random_vec(64).expect("C_GenerateRandom");
        let r2 = s.generate_random_vec(64).expect("C_GenerateRandom");
        assert_eq!(r1.len(), 64);
        assert_ne!(r1, r2);
        assert!(r1.iter().any(|b| *b != 0));
        let mut one = [0u8; 1000];
        s.generate_random_slice(&mut one).unwrap();
        let distinct = one.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(
            distinct > 100,
            "1000 random bytes take only {distinct} values"
        );
    });
}

/// Message-based AES-GCM as cryptoki 0.12 drives it: C_MessageEncryptInit
/// gets CKM_AES_GCM with a CK_GCM_MESSAGE_PARAMS parameter.
///
/// Regression (fixed in src/ffi/mechanism.rs, `mechanism_in`, the CKM_AES_GCM arm, used
/// by C_MessageEncryptInit in src/ffi/exports.rs): a 48-byte
/// CK_GCM_MESSAGE_PARAMS is read as a 48-byte CK_GCM_PARAMS, so ivGenerator
/// becomes pAAD and the pTag pointer becomes ulAADLen; copying that "AAD"
/// aborts the process ("memory allocation of ~1.4e14 bytes failed") or reads
/// wild memory. Expected: CKR_OK (or at worst CKR_MECHANISM_PARAM_INVALID);
/// actual: the application is killed with SIGABRT.
#[test]
fn message_gcm_counter_iv() {
    in_child("message_gcm_counter_iv", |s, raw| message_gcm(s, raw, true));
}

/// The same message-based round trip with CK_GCM_PARAMS given to
/// C_MessageEncryptInit/C_MessageDecryptInit (through the raw entry points),
/// so the per-message calls are covered despite the bug above.
#[test]
fn message_gcm_counter_iv_gcm_params_init() {
    in_child("message_gcm_counter_iv_gcm_params_init", |s, raw| {
        message_gcm(s, raw, false)
    });
}

fn message_gcm(s: &Session, raw: &Raw, cryptoki_init: bool) {
    {
        let k = aes(s, 32);
        let prefix = [0xa1u8, 0xa2, 0xa3, 0xa4];
        let msgs: [&[u8]; 3] = [b"first message", b"second", b""];
        let mut sent = Vec::new();
        {
            let mut iv0 = [0u8; 12];
            iv0[..4].copy_from_slice(&prefix);
            let mut tag0 = [0u8; 16];
            let init = GcmMessageParams::new(
                &mut iv0,
                32.into(),
                GeneratorFunction::GenerateCounter,
                &mut tag0,
            )
            .unwrap();
            if cryptoki_init {
                s.message_encrypt_init(&Mechanism::AesGcmMessage(init), k)
                    .expect("C_MessageEncryptInit");
            } else {
                assert_eq!(raw.message_init(s, true, k), CKR_OK, "C_MessageEncryptInit");
            }
            for m in msgs {
                let mut iv = [0u8; 12];
                iv[..4].copy_from_slice(&prefix);
                let mut tag = [0u8; 16];
                let p = GcmMessageParams::new(
                    &mut iv,
                    32.into(),
                    GeneratorFunction::GenerateCounter,
                    &mut tag,
                )
                .unwrap();
                let ct = s
                    .encrypt_message(&MessageParam::AesGcmMessage(p), b"aad", m)
                    .expect("C_EncryptMessage");
                assert_eq!(ct.len(), m.len());
                sent.push((iv, tag, ct));
            }
            s.message_encrypt_final().expect("C_MessageEncryptFinal");
        }
        for (i, (iv, tag, _)) in sent.iter().enumerate() {
            assert_eq!(iv[..4], prefix, "fixed part of IV {i}");
            assert_ne!(tag, &[0u8; 16], "tag {i} written back");
        }
        assert_ne!(sent[0].0, sent[1].0, "token IVs repeat");
        assert_ne!(sent[1].0, sent[2].0, "token IVs repeat");
        // Each message decrypts with its IV and tag, also as one-shot GCM.
        let mut iv0 = sent[0].0;
        let mut tag0 = sent[0].1;
        let init =
            GcmMessageParams::new(&mut iv0, 0.into(), GeneratorFunction::NoGenerate, &mut tag0)
                .unwrap();
        if cryptoki_init {
            s.message_decrypt_init(&Mechanism::AesGcmMessage(init), k)
                .expect("C_MessageDecryptInit");
        } else {
            assert_eq!(
                raw.message_init(s, false, k),
                CKR_OK,
                "C_MessageDecryptInit"
            );
        }
        for (i, (iv, tag, ct)) in sent.iter().enumerate() {
            let (mut iv, mut tag) = (*iv, *tag);
            let p =
                GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag)
                    .unwrap();
            let pt = s
                .decrypt_message(&MessageParam::AesGcmMessage(p), b"aad", ct)
                .unwrap_or_else(|e| panic!("C_DecryptMessage {i}: {e}"));
            assert_eq!(pt, msgs[i]);
        }
        let (mut iv, mut tag) = (sent[0].0, sent[0].1);
        tag[0] ^= 1;
        let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag)
            .unwrap();
        assert_eq!(
            rv_of(s.decrypt_message(&MessageParam::AesGcmMessage(p), b"aad", &sent[0].2)),
            RvError::EncryptedDataInvalid
        );
        s.message_decrypt_final().expect("C_MessageDecryptFinal");
        let (iv, tag, ct) = &sent[0];
        let mut civ = *iv;
        let gp = GcmParams::new(&mut civ, b"aad", 128.into()).unwrap();
        let mut joined = ct.clone();
        joined.extend_from_slice(tag);
        assert_eq!(
            s.decrypt(&Mechanism::AesGcm(gp), k, &joined).unwrap(),
            msgs[0],
            "message-based and one-shot GCM agree"
        );
    }
}
