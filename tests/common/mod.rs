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
