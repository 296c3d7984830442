//! The fixture shared by the in-process test files (`mod common;`): a fresh
//! store per test, an initialised token with a logged-in user session, and
//! the small helpers every file needs to call the exported `C_*` functions
//! (templates, mechanisms, the §5.2 two-call convention).
//!
//! The module state is process-global: every test holds [`LOCK`] through its
//! [`Store`], gets a fresh store in a temporary directory and finalizes the
//! module when the store drops (also on panic).

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use cryptoki_sys::*;
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::{Mutex, MutexGuard};
use strongroom_pkcs11::ffi::exports::*;

pub static LOCK: Mutex<()> = Mutex::new(());

pub const SO_PIN: &[u8] = b"so-pin-test-1234";
pub const USER_PIN: &[u8] = b"user-pin-test-1234";
pub const SLOT: CK_SLOT_ID = 0;

// ----- fixture -------------------------------------------------------------------

/// A fresh, empty store for one test, with the module finalized (not yet
/// initialized). Holds [`LOCK`]; finalizes the module on drop.
pub struct Store {
    pub dir: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Store {
    pub fn fresh() -> Store {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // A previous test that failed before its fixture existed may have
        // left the module initialized; start from a clean state.
        // SAFETY: NULL is the only valid argument.
        unsafe { C_Finalize(null_mut()) };
        let dir = tempfile::tempdir().expect("tempdir");
        std::env::set_var("STRONGROOM_STORE", dir.path().join("store"));
        std::env::set_var("STRONGROOM_KDF_MEMORY_KIB", "64");
        std::env::set_var("STRONGROOM_KDF_ITERATIONS", "1");
        std::env::remove_var("STRONGROOM_CONF");
        std::env::remove_var("STRONGROOM_MAX_PIN_FAILURES");
        Store { dir, _lock: lock }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: NULL is the only valid argument; the result is irrelevant.
        unsafe { C_Finalize(null_mut()) };
    }
}

/// One test's module: a fresh store with an initialised token, a user PIN and
/// a read-write session logged in as the user. Finalized on drop.
pub struct Fixture {
    pub s: CK_SESSION_HANDLE,
    pub store: Store,
}

impl Fixture {
    pub fn new() -> Fixture {
        let store = Store::fresh();
        // SAFETY: NULL arguments are allowed.
        ck(unsafe { C_Initialize(null_mut()) }, "C_Initialize");
        ck(init_token(SLOT, SO_PIN, "strongroom"), "C_InitToken");
        let s = open_rw();
        ck(login(s, CKU_SO, SO_PIN), "C_Login(SO)");
        ck(init_pin(s, USER_PIN), "C_InitPIN");
        // SAFETY: plain value argument.
        ck(unsafe { C_Logout(s) }, "C_Logout(SO)");
        ck(login(s, CKU_USER, USER_PIN), "C_Login(USER)");
        Fixture { s, store }
    }
}

// ----- small wrappers ------------------------------------------------------------

pub fn open_rw() -> CK_SESSION_HANDLE {
    let mut s = 0;
    // SAFETY: `s` is a valid out-pointer.
    ck(
        unsafe {
            C_OpenSession(
                SLOT,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                null_mut(),
                None,
                &mut s,
            )
        },
        "C_OpenSession",
    );
    s
}

/// A label blank-padded to the 32 bytes of CK_TOKEN_INFO.label.
pub fn label32(s: &str) -> [u8; 32] {
    let mut l = [b' '; 32];
    l[..s.len()].copy_from_slice(s.as_bytes());
    l
}

pub fn init_token(slot: CK_SLOT_ID, so_pin: &[u8], label: &str) -> CK_RV {
    let mut l = label32(label);
    // SAFETY: the PIN and the 32-byte label outlive the call.
    unsafe {
        C_InitToken(
            slot,
            so_pin.as_ptr() as *mut u8,
            so_pin.len() as CK_ULONG,
            l.as_mut_ptr(),
        )
    }
}

pub fn init_pin(s: CK_SESSION_HANDLE, pin: &[u8]) -> CK_RV {
    // SAFETY: the PIN outlives the call.
    unsafe { C_InitPIN(s, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG) }
}

pub fn login(s: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> CK_RV {
    // SAFETY: the PIN outlives the call.
    unsafe { C_Login(s, user, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG) }
}

#[track_caller]
pub fn ck(rv: CK_RV, what: &str) {
    assert_eq!(rv, CKR_OK, "{what} returned {rv:#x}");
}

pub fn res<T>(rv: CK_RV, v: T) -> Result<T, CK_RV> {
    if rv == CKR_OK {
        Ok(v)
    } else {
        Err(rv)
    }
}

/// A pointer to `v`'s bytes; NULL when empty.
pub fn ptr_of(v: &mut [u8]) -> *mut u8 {
    if v.is_empty() {
        null_mut()
    } else {
        v.as_mut_ptr()
    }
}

// ----- templates -----------------------------------------------------------------

/// An attribute template that owns the memory its `CK_ATTRIBUTE`s point to.
#[derive(Default)]
pub struct Tmpl {
    pub attrs: Vec<CK_ATTRIBUTE>,
    bytes: Vec<Box<[u8]>>,
    nested: Vec<Box<[CK_ATTRIBUTE]>>,
}

impl Tmpl {
    pub fn new() -> Tmpl {
        Tmpl::default()
    }

    pub fn raw(mut self, ty: CK_ATTRIBUTE_TYPE, v: Vec<u8>) -> Tmpl {
        let mut b = v.into_boxed_slice();
        self.attrs.push(CK_ATTRIBUTE {
            type_: ty,
            pValue: if b.is_empty() {
                null_mut()
            } else {
                b.as_mut_ptr() as *mut c_void
            },
            ulValueLen: b.len() as CK_ULONG,
        });
        self.bytes.push(b);
        self
    }

    pub fn bool(self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> Tmpl {
        self.raw(ty, vec![if v { CK_TRUE } else { CK_FALSE }])
    }

    pub fn ulong(self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Tmpl {
        self.raw(ty, v.to_ne_bytes().to_vec())
    }

    pub fn bytes(self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Tmpl {
        self.raw(ty, v.to_vec())
    }

    pub fn mechs(self, ty: CK_ATTRIBUTE_TYPE, m: &[CK_MECHANISM_TYPE]) -> Tmpl {
        self.raw(ty, m.iter().flat_map(|x| x.to_ne_bytes()).collect())
    }

    /// An attribute whose value is another template (CKA_WRAP_TEMPLATE...).
    pub fn template(mut self, ty: CK_ATTRIBUTE_TYPE, inner: Tmpl) -> Tmpl {
        let Tmpl {
            attrs,
            bytes,
            nested,
        } = inner;
        let mut arr = attrs.into_boxed_slice();
        self.attrs.push(CK_ATTRIBUTE {
            type_: ty,
            pValue: arr.as_mut_ptr() as *mut c_void,
            ulValueLen: (arr.len() * std::mem::size_of::<CK_ATTRIBUTE>()) as CK_ULONG,
        });
        self.bytes.extend(bytes);
        self.nested.extend(nested);
        self.nested.push(arr);
        self
    }

    pub fn ptr(&mut self) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
        (self.attrs.as_mut_ptr(), self.attrs.len() as CK_ULONG)
    }
}

pub fn create(s: CK_SESSION_HANDLE, mut t: Tmpl) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let (p, n) = t.ptr();
    let mut o = 0;
    // SAFETY: the template and out-pointer outlive the call.
    let rv = unsafe { C_CreateObject(s, p, n, &mut o) };
    res(rv, o)
}

// ----- mechanisms ----------------------------------------------------------------

/// A mechanism with an owned parameter block.
pub struct Mech {
    ty: CK_MECHANISM_TYPE,
    param: Vec<u8>,
    /// Buffers the parameter structure points into.
    _keep: Vec<Vec<u8>>,
    raw: CK_MECHANISM,
}

impl Mech {
    pub fn plain(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            ty,
            param: Vec::new(),
            _keep: Vec::new(),
            raw: CK_MECHANISM {
                mechanism: ty,
                pParameter: null_mut(),
                ulParameterLen: 0,
            },
        }
    }

    pub fn bytes(ty: CK_MECHANISM_TYPE, p: &[u8]) -> Mech {
        Mech {
            param: p.to_vec(),
            ..Mech::plain(ty)
        }
    }

    /// A parameter structure `T` (copied); `keep` holds what it points to.
    pub fn with<T: Copy>(ty: CK_MECHANISM_TYPE, p: &T, keep: Vec<Vec<u8>>) -> Mech {
        // SAFETY: T is a plain-old-data PKCS#11 parameter structure.
        let bytes = unsafe {
            std::slice::from_raw_parts(p as *const T as *const u8, std::mem::size_of::<T>())
        };
        Mech {
            param: bytes.to_vec(),
            _keep: keep,
            ..Mech::plain(ty)
        }
    }

    pub fn ptr(&mut self) -> *mut CK_MECHANISM {
        self.raw = CK_MECHANISM {
            mechanism: self.ty,
            pParameter: if self.param.is_empty() {
                null_mut()
            } else {
                self.param.as_mut_ptr() as *mut c_void
            },
            ulParameterLen: self.param.len() as CK_ULONG,
        };
        &mut self.raw
    }
}

/// CKM_AES_GCM with a CK_GCM_PARAMS over copies of `iv` and `aad`.
pub fn gcm(iv: &[u8], aad: &[u8], tag_bits: CK_ULONG) -> Mech {
    let (mut iv, mut aad) = (iv.to_vec(), aad.to_vec());
    let p = CK_GCM_PARAMS {
        pIv: ptr_of(&mut iv),
        ulIvLen: iv.len() as CK_ULONG,
        ulIvBits: (iv.len() * 8) as CK_ULONG,
        pAAD: ptr_of(&mut aad),
        ulAADLen: aad.len() as CK_ULONG,
        ulTagBits: tag_bits,
    };
    Mech::with(CKM_AES_GCM, &p, vec![iv, aad])
}

// ----- the two-call convention ---------------------------------------------------

/// C_Encrypt, C_Decrypt, C_Sign, C_Digest, C_EncryptUpdate...
pub type OutFn = unsafe extern "C" fn(
    CK_SESSION_HANDLE,
    *mut CK_BYTE,
    CK_ULONG,
    *mut CK_BYTE,
    *mut CK_ULONG,
) -> CK_RV;
/// C_EncryptFinal, C_DecryptFinal, C_SignFinal, C_DigestFinal.
pub type FinalFn = unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG) -> CK_RV;

/// The §5.2 two-call convention: ask for the length, then fetch.
pub fn two_call(s: CK_SESSION_HANDLE, f: OutFn, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let mut input = data.to_vec();
    let mut n: CK_ULONG = 0;
    // SAFETY: input outlives the call; NULL output asks for the length.
    let rv = unsafe {
        f(
            s,
            ptr_of(&mut input),
            input.len() as CK_ULONG,
            null_mut(),
            &mut n,
        )
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    // Never NULL: a NULL output would be another length query.
    let mut out = vec![0u8; (n as usize).max(1)];
    // SAFETY: `out` holds at least `n` bytes.
    let rv = unsafe {
        f(
            s,
            ptr_of(&mut input),
            input.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut n,
        )
    };
    out.truncate(n as usize);
    res(rv, out)
}

/// The two-call convention for a final call.
pub fn two_call_final(s: CK_SESSION_HANDLE, f: FinalFn) -> Result<Vec<u8>, CK_RV> {
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL output asks for the length.
    let rv = unsafe { f(s, null_mut(), &mut n) };
    if rv != CKR_OK {
        return Err(rv);
    }
    // Never NULL: a NULL output would be another length query.
    let mut out = vec![0u8; (n as usize).max(1)];
    // SAFETY: `out` holds at least `n` bytes.
    let rv = unsafe { f(s, out.as_mut_ptr(), &mut n) };
    out.truncate(n as usize);
    res(rv, out)
}

// ----- more wrappers (conformance and stress tests) --------------------------------

/// A token with an SO PIN and a user PIN, and no session open (so nobody is
/// logged in: closing the last session logs out).
pub fn token() -> Fixture {
    let f = Fixture::new();
    assert_eq!(close(f.s), CKR_OK);
    f
}

pub fn open(flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE, CK_RV> {
    let mut h = 0;
    // SAFETY: `h` is a valid out-pointer.
    let rv = unsafe { C_OpenSession(SLOT, flags, null_mut(), None, &mut h) };
    res(rv, h)
}

#[track_caller]
pub fn must_open(flags: CK_FLAGS) -> CK_SESSION_HANDLE {
    open(flags).unwrap_or_else(|rv| panic!("C_OpenSession returned {rv:#x}"))
}

pub fn close(h: CK_SESSION_HANDLE) -> CK_RV {
    // SAFETY: plain value argument.
    unsafe { C_CloseSession(h) }
}

pub fn logout(h: CK_SESSION_HANDLE) -> CK_RV {
    // SAFETY: plain value argument.
    unsafe { C_Logout(h) }
}

pub fn session_info(h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, CK_RV> {
    // SAFETY: CK_SESSION_INFO is plain data; zero is a valid value.
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    let rv = unsafe { C_GetSessionInfo(h, &mut info) };
    res(rv, info)
}

#[track_caller]
pub fn state(h: CK_SESSION_HANDLE) -> CK_STATE {
    session_info(h)
        .unwrap_or_else(|rv| panic!("C_GetSessionInfo returned {rv:#x}"))
        .state
}

pub fn token_info() -> CK_TOKEN_INFO {
    // SAFETY: CK_TOKEN_INFO is plain data; zero is a valid value.
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    ck(unsafe { C_GetTokenInfo(SLOT, &mut info) }, "C_GetTokenInfo");
    info
}

/// How a call with a §5.2 output is made.
#[derive(Clone, Copy, Debug)]
pub enum Out {
    /// NULL buffer: a length query.
    Query,
    /// A buffer of this many bytes (never a NULL pointer, even for 0).
    Cap(usize),
    /// A buffer but a NULL length pointer.
    NoLen,
}

/// What a call with a §5.2 output gave back.
pub struct Got {
    pub rv: CK_RV,
    pub len: CK_ULONG,
    /// The whole buffer handed in (filled with 0xAB before the call),
    /// truncated to `len` on success.
    pub buf: Vec<u8>,
}

/// Output buffer and length for `out`; the buffer is 0xAB-filled.
pub fn out_buffer(out: Out) -> (Vec<u8>, CK_ULONG) {
    match out {
        Out::Query => (vec![0xAB; 1], 0),
        Out::Cap(n) => (vec![0xAB; n.max(1)], n as CK_ULONG),
        Out::NoLen => (vec![0xAB; 1024], 1024),
    }
}

pub fn finish(rv: CK_RV, len: CK_ULONG, mut buf: Vec<u8>, out: Out) -> Got {
    if rv == CKR_OK && matches!(out, Out::Cap(_)) {
        buf.truncate(len as usize);
    }
    Got { rv, len, buf }
}

/// Makes one call with a §5.2 output as `out` says: `f` gets the output
/// pointer (NULL for a query) and the length pointer (NULL for
/// [`Out::NoLen`]).
pub fn with_out(out: Out, f: impl FnOnce(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV) -> Got {
    let (mut buf, mut len) = out_buffer(out);
    let p = match out {
        Out::Query => null_mut(),
        _ => buf.as_mut_ptr(),
    };
    let plen: *mut CK_ULONG = match out {
        Out::NoLen => null_mut(),
        _ => &mut len,
    };
    let rv = f(p, plen);
    finish(rv, len, buf, out)
}

/// C_Encrypt, C_Decrypt, C_EncryptUpdate, C_DecryptUpdate, C_Digest, C_Sign.
pub fn call(f: OutFn, s: CK_SESSION_HANDLE, data: &[u8], out: Out) -> Got {
    let mut input = data.to_vec();
    with_out(out, |p, plen| {
        // SAFETY: the input outlives the call; `p` is NULL or holds `*plen`
        // bytes; `plen` is NULL or valid.
        unsafe { f(s, ptr_of(&mut input), input.len() as CK_ULONG, p, plen) }
    })
}

/// C_EncryptFinal, C_DecryptFinal, C_DigestFinal, C_SignFinal.
pub fn call_final(f: FinalFn, s: CK_SESSION_HANDLE, out: Out) -> Got {
    // SAFETY: `p` is NULL or holds `*plen` bytes; `plen` is NULL or valid.
    with_out(out, |p, plen| unsafe { f(s, p, plen) })
}

pub type PartFn = unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG) -> CK_RV;
pub type InitFn =
    unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE) -> CK_RV;

/// C_DigestUpdate, C_SignUpdate, C_VerifyUpdate.
pub fn part(f: PartFn, s: CK_SESSION_HANDLE, data: &[u8]) -> CK_RV {
    let mut input = data.to_vec();
    // SAFETY: the input outlives the call.
    unsafe { f(s, ptr_of(&mut input), input.len() as CK_ULONG) }
}

pub fn init(f: InitFn, s: CK_SESSION_HANDLE, m: &mut Mech, k: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: the mechanism outlives the call.
    unsafe { f(s, m.ptr(), k) }
}

pub fn init_null(f: InitFn, s: CK_SESSION_HANDLE, k: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: a NULL mechanism is a defined argument (v3.0: cancel).
    unsafe { f(s, null_mut(), k) }
}

pub fn digest_init(s: CK_SESSION_HANDLE, ty: CK_MECHANISM_TYPE) -> CK_RV {
    let mut m = Mech::plain(ty);
    // SAFETY: the mechanism outlives the call.
    unsafe { C_DigestInit(s, m.ptr()) }
}

pub fn verify(s: CK_SESSION_HANDLE, data: &[u8], sig: &[u8]) -> CK_RV {
    let (mut d, mut g) = (data.to_vec(), sig.to_vec());
    // SAFETY: both buffers outlive the call.
    unsafe {
        C_Verify(
            s,
            ptr_of(&mut d),
            d.len() as CK_ULONG,
            ptr_of(&mut g),
            g.len() as CK_ULONG,
        )
    }
}

pub fn verify_final(s: CK_SESSION_HANDLE, sig: &[u8]) -> CK_RV {
    let mut g = sig.to_vec();
    // SAFETY: the buffer outlives the call.
    unsafe { C_VerifyFinal(s, ptr_of(&mut g), g.len() as CK_ULONG) }
}

#[track_caller]
pub fn ok(g: Got, what: &str) -> Vec<u8> {
    assert_eq!(g.rv, CKR_OK, "{what} returned {:#x}", g.rv);
    g.buf
}

pub fn generate(
    s: CK_SESSION_HANDLE,
    ty: CK_MECHANISM_TYPE,
    mut t: Tmpl,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut m = Mech::plain(ty);
    let (p, n) = t.ptr();
    let mut h = 0;
    // SAFETY: mechanism, template and out-pointer outlive the call.
    let rv = unsafe { C_GenerateKey(s, m.ptr(), p, n, &mut h) };
    res(rv, h)
}

/// A public session AES-128 key; `extra` adds attributes (no duplicates).
#[track_caller]
pub fn aes(s: CK_SESSION_HANDLE, extra: Tmpl) -> CK_OBJECT_HANDLE {
    let mut t = extra
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, false)
        .ulong(CKA_VALUE_LEN, 16);
    let types: Vec<_> = t.attrs.iter().map(|a| a.type_).collect();
    for usage in [CKA_ENCRYPT, CKA_DECRYPT] {
        if !types.contains(&usage) {
            t = t.bool(usage, true);
        }
    }
    generate(s, CKM_AES_KEY_GEN, t)
        .unwrap_or_else(|rv| panic!("C_GenerateKey(AES) returned {rv:#x}"))
}

pub fn key_pair(
    s: CK_SESSION_HANDLE,
    ty: CK_MECHANISM_TYPE,
    mut public: Tmpl,
    mut private: Tmpl,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
    let mut m = Mech::plain(ty);
    let ((pp, pn), (qp, qn)) = (public.ptr(), private.ptr());
    let (mut a, mut b) = (0, 0);
    // SAFETY: mechanism, templates and out-pointers outlive the call.
    let rv = unsafe { C_GenerateKeyPair(s, m.ptr(), pp, pn, qp, qn, &mut a, &mut b) };
    res(rv, (a, b))
}

/// A public session RSA key pair of `bits`. pkcs11test generates 1024-bit
/// pairs; this token generates 2048-4096 (C_GetMechanismInfo says so, and
/// 1024 gets CKR_KEY_SIZE_RANGE: see generate_key_and_key_pair_arguments).
#[track_caller]
pub fn rsa(
    s: CK_SESSION_HANDLE,
    bits: CK_ULONG,
    public: Tmpl,
    private: Tmpl,
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    key_pair(
        s,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        public
            .ulong(CKA_MODULUS_BITS, bits)
            .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
            .bool(CKA_TOKEN, false)
            .bool(CKA_PRIVATE, false),
        private.bool(CKA_TOKEN, false).bool(CKA_PRIVATE, false),
    )
    .unwrap_or_else(|rv| panic!("C_GenerateKeyPair(RSA) returned {rv:#x}"))
}

/// A P-256 key pair for signing.
#[track_caller]
pub fn p256(s: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    key_pair(
        s,
        CKM_EC_KEY_PAIR_GEN,
        Tmpl::new()
            .bytes(
                CKA_EC_PARAMS,
                &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            )
            .bool(CKA_VERIFY, true)
            .bool(CKA_TOKEN, false),
        Tmpl::new().bool(CKA_SIGN, true).bool(CKA_TOKEN, false),
    )
    .unwrap_or_else(|rv| panic!("C_GenerateKeyPair(EC) returned {rv:#x}"))
}

/// A generic secret for HMAC, as pkcs11test makes it.
#[track_caller]
pub fn hmac_key(s: CK_SESSION_HANDLE, value: &[u8]) -> CK_OBJECT_HANDLE {
    create(
        s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
            .bool(CKA_TOKEN, false)
            .bool(CKA_PRIVATE, false)
            .bool(CKA_SIGN, true)
            .bool(CKA_VERIFY, true)
            .bytes(CKA_VALUE, value),
    )
    .unwrap_or_else(|rv| panic!("C_CreateObject(generic secret) returned {rv:#x}"))
}

/// One attribute with a buffer of `cap` bytes: (rv, ulValueLen, value).
pub fn get_raw(
    s: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
    cap: usize,
) -> (CK_RV, CK_ULONG, Vec<u8>) {
    let mut buf = vec![0u8; cap.max(1)];
    let mut a = CK_ATTRIBUTE {
        type_: ty,
        pValue: buf.as_mut_ptr() as *mut c_void,
        ulValueLen: cap as CK_ULONG,
    };
    // SAFETY: one attribute whose buffer holds `cap` bytes.
    let rv = unsafe { C_GetAttributeValue(s, o, &mut a, 1) };
    if rv == CKR_OK {
        buf.truncate(a.ulValueLen as usize);
    }
    (rv, a.ulValueLen, buf)
}

/// One attribute's value, or the code.
pub fn get(
    s: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
) -> Result<Vec<u8>, CK_RV> {
    let (rv, _, v) = get_raw(s, o, ty, 4096);
    res(rv, v)
}

#[track_caller]
pub fn get_bool(s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
    let v = get(s, o, ty).unwrap_or_else(|rv| panic!("attribute {ty:#x}: {rv:#x}"));
    assert_eq!(v.len(), 1);
    v[0] != CK_FALSE
}

pub fn set(s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, mut t: Tmpl) -> CK_RV {
    let (p, n) = t.ptr();
    // SAFETY: the template outlives the call.
    unsafe { C_SetAttributeValue(s, o, p, n) }
}

pub fn copy(
    s: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    mut t: Tmpl,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let (p, n) = t.ptr();
    let mut h = 0;
    // SAFETY: the template and out-pointer outlive the call.
    let rv = unsafe { C_CopyObject(s, o, p, n, &mut h) };
    res(rv, h)
}

pub fn destroy(s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: plain value arguments.
    unsafe { C_DestroyObject(s, o) }
}

/// Every handle a search finds, fetched `stride` at a time.
#[track_caller]
pub fn find(s: CK_SESSION_HANDLE, mut t: Tmpl, stride: usize) -> BTreeSet<CK_OBJECT_HANDLE> {
    let (p, n) = t.ptr();
    // SAFETY: the template outlives the call.
    ck(unsafe { C_FindObjectsInit(s, p, n) }, "C_FindObjectsInit");
    let mut out = BTreeSet::new();
    loop {
        let mut buf = vec![0 as CK_OBJECT_HANDLE; stride];
        let mut count = 0;
        // SAFETY: `buf` holds `stride` handles.
        ck(
            unsafe { C_FindObjects(s, buf.as_mut_ptr(), stride as CK_ULONG, &mut count) },
            "C_FindObjects",
        );
        if count == 0 {
            break;
        }
        out.extend(&buf[..count as usize]);
    }
    // SAFETY: plain value argument.
    ck(unsafe { C_FindObjectsFinal(s) }, "C_FindObjectsFinal");
    out
}

pub fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).expect("getrandom");
    v
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    let s = open_rw();
    ck(digest_init(s, CKM_SHA256), "C_DigestInit");
    let d = ok(call(C_Digest, s, data, Out::Cap(32)), "C_Digest");
    assert_eq!(close(s), CKR_OK);
    d
}
