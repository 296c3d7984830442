//! Ring 2: in-process tests of the C ABI. Every test calls the exported
//! `C_*` functions directly and asserts exact `CK_RV` codes.
//!
//! The module state is process-global, so every test gets a fresh store
//! (`tests/common/mod.rs`: it holds the test lock, points `STRONGROOM_STORE`
//! at a fresh temporary directory and finalizes the module when it drops,
//! also on panic).

mod common;

use common::{init_pin, init_token, label32, login, Store, SO_PIN, USER_PIN};
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use strongroom_pkcs11::ffi::exports::*;
const RO: CK_FLAGS = CKF_SERIAL_SESSION;
const RW: CK_FLAGS = CKF_SERIAL_SESSION | CKF_RW_SESSION;

/// One test's module: a fresh store, finalized on drop.
struct Fixture {
    _store: Store,
}

impl Fixture {
    /// Takes the lock and configures a fresh store, without initializing.
    fn uninitialized(max_failures: u32) -> Fixture {
        let store = Store::fresh();
        std::env::set_var("STRONGROOM_MAX_PIN_FAILURES", max_failures.to_string());
        Fixture { _store: store }
    }

    fn new() -> Fixture {
        let f = Fixture::uninitialized(10);
        f.initialize();
        f
    }

    fn initialize(&self) {
        // SAFETY: NULL arguments are allowed.
        assert_eq!(unsafe { C_Initialize(null_mut()) }, CKR_OK);
    }

    fn finalize(&self) {
        // SAFETY: NULL is the only valid argument.
        assert_eq!(unsafe { C_Finalize(null_mut()) }, CKR_OK);
    }

    /// Finalizes and initializes again on the same store.
    fn restart(&self) {
        self.finalize();
        self.initialize();
    }
}

// ----- small wrappers -------------------------------------------------------

fn open(slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE, CK_RV> {
    let mut h = 0;
    // SAFETY: `h` is a valid out-pointer.
    let rv = unsafe { C_OpenSession(slot, flags, null_mut(), None, &mut h) };
    if rv == CKR_OK {
        Ok(h)
    } else {
        Err(rv)
    }
}

fn close(h: CK_SESSION_HANDLE) -> CK_RV {
    // SAFETY: plain value arguments.
    unsafe { C_CloseSession(h) }
}

fn logout(h: CK_SESSION_HANDLE) -> CK_RV {
    // SAFETY: plain value arguments.
    unsafe { C_Logout(h) }
}

fn set_pin(h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> CK_RV {
    // SAFETY: both PINs outlive the call.
    unsafe {
        C_SetPIN(
            h,
            old.as_ptr() as *mut u8,
            old.len() as CK_ULONG,
            new.as_ptr() as *mut u8,
            new.len() as CK_ULONG,
        )
    }
}

fn session_state(h: CK_SESSION_HANDLE) -> CK_STATE {
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    // SAFETY: `info` is a valid out-pointer.
    assert_eq!(unsafe { C_GetSessionInfo(h, &mut info) }, CKR_OK);
    info.state
}

fn token_info(slot: CK_SLOT_ID) -> CK_TOKEN_INFO {
    // SAFETY: CK_TOKEN_INFO is plain old data; all-zero is a valid value.
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid out-pointer.
    assert_eq!(unsafe { C_GetTokenInfo(slot, &mut info) }, CKR_OK);
    info
}

fn slot_list() -> Vec<CK_SLOT_ID> {
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL list asks for the count.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, null_mut(), &mut n) },
        CKR_OK
    );
    let mut v = vec![0; n as usize];
    // SAFETY: `v` holds `n` slots.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, v.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    v.truncate(n as usize);
    v
}

/// A token in slot 0 with SO and user PINs set; no session left open.
fn ready_token() -> CK_SLOT_ID {
    assert_eq!(init_token(0, SO_PIN, "abi"), CKR_OK);
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(h, USER_PIN), CKR_OK);
    assert_eq!(close(h), CKR_OK);
    0
}

/// A session on [`ready_token`], logged in as the user.
fn user_session() -> CK_SESSION_HANDLE {
    let slot = ready_token();
    let h = open(slot, RW).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    h
}

/// Attribute values for templates.
#[derive(Clone)]
enum V {
    B(bool),
    U(CK_ULONG),
    S(&'static [u8]),
    Raw(Vec<u8>),
}

/// An owned template: the attribute array and the buffers it points to.
struct Template {
    _bufs: Vec<Vec<u8>>,
    attrs: Vec<CK_ATTRIBUTE>,
}

impl Template {
    fn new(items: &[(CK_ATTRIBUTE_TYPE, V)]) -> Template {
        let mut bufs: Vec<Vec<u8>> = items
            .iter()
            .map(|(_, v)| match v {
                V::B(b) => vec![u8::from(*b)],
                V::U(u) => u.to_ne_bytes().to_vec(),
                V::S(s) => s.to_vec(),
                V::Raw(r) => r.clone(),
            })
            .collect();
        let attrs = items
            .iter()
            .zip(bufs.iter_mut())
            .map(|((ty, _), b)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: if b.is_empty() {
                    null_mut()
                } else {
                    b.as_mut_ptr() as *mut c_void
                },
                ulValueLen: b.len() as CK_ULONG,
            })
            .collect();
        Template { _bufs: bufs, attrs }
    }

    fn ptr(&mut self) -> *mut CK_ATTRIBUTE {
        if self.attrs.is_empty() {
            null_mut()
        } else {
            self.attrs.as_mut_ptr()
        }
    }

    fn len(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }
}

fn create(
    h: CK_SESSION_HANDLE,
    items: &[(CK_ATTRIBUTE_TYPE, V)],
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut t = Template::new(items);
    let mut o = 0;
    // SAFETY: the template and out-pointer outlive the call.
    let rv = unsafe { C_CreateObject(h, t.ptr(), t.len(), &mut o) };
    if rv == CKR_OK {
        Ok(o)
    } else {
        Err(rv)
    }
}

fn set_attrs(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, items: &[(CK_ATTRIBUTE_TYPE, V)]) -> CK_RV {
    let mut t = Template::new(items);
    // SAFETY: the template outlives the call.
    unsafe { C_SetAttributeValue(h, o, t.ptr(), t.len()) }
}

fn copy(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    items: &[(CK_ATTRIBUTE_TYPE, V)],
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut t = Template::new(items);
    let mut n = 0;
    // SAFETY: the template and out-pointer outlive the call.
    let rv = unsafe { C_CopyObject(h, o, t.ptr(), t.len(), &mut n) };
    if rv == CKR_OK {
        Ok(n)
    } else {
        Err(rv)
    }
}

fn destroy(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: plain value arguments.
    unsafe { C_DestroyObject(h, o) }
}

fn find(h: CK_SESSION_HANDLE, items: &[(CK_ATTRIBUTE_TYPE, V)]) -> Vec<CK_OBJECT_HANDLE> {
    let mut t = Template::new(items);
    // SAFETY: the template outlives the call.
    assert_eq!(unsafe { C_FindObjectsInit(h, t.ptr(), t.len()) }, CKR_OK);
    let mut out = Vec::new();
    loop {
        let mut buf = [0 as CK_OBJECT_HANDLE; 3];
        let mut n = 0;
        // SAFETY: `buf` holds 3 handles.
        assert_eq!(
            unsafe { C_FindObjects(h, buf.as_mut_ptr(), 3, &mut n) },
            CKR_OK
        );
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: plain value arguments.
    assert_eq!(unsafe { C_FindObjectsFinal(h) }, CKR_OK);
    out.sort_unstable();
    out
}

/// Reads one attribute with the two-call convention.
fn get(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<Vec<u8>, CK_RV> {
    let mut a = CK_ATTRIBUTE {
        type_: ty,
        pValue: null_mut(),
        ulValueLen: 0,
    };
    // SAFETY: one attribute with a NULL value pointer.
    let rv = unsafe { C_GetAttributeValue(h, o, &mut a, 1) };
    if rv != CKR_OK {
        if matches!(rv, CKR_ATTRIBUTE_SENSITIVE | CKR_ATTRIBUTE_TYPE_INVALID) {
            assert_eq!(
                a.ulValueLen, CK_UNAVAILABLE_INFORMATION,
                "length of a failed attribute"
            );
        }
        return Err(rv);
    }
    let mut buf = vec![0u8; a.ulValueLen as usize];
    a.pValue = buf.as_mut_ptr() as *mut c_void;
    // SAFETY: `buf` holds ulValueLen bytes.
    let rv = unsafe { C_GetAttributeValue(h, o, &mut a, 1) };
    if rv != CKR_OK {
        return Err(rv);
    }
    buf.truncate(a.ulValueLen as usize);
    Ok(buf)
}

fn get_bool(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
    let v = get(h, o, ty).expect("bool attribute");
    assert_eq!(v.len(), 1);
    v[0] != 0
}

fn data_object(label: &'static [u8], token: bool, private: bool) -> Vec<(CK_ATTRIBUTE_TYPE, V)> {
    vec![
        (CKA_CLASS, V::U(CKO_DATA)),
        (CKA_TOKEN, V::B(token)),
        (CKA_PRIVATE, V::B(private)),
        (CKA_LABEL, V::S(label)),
        (CKA_VALUE, V::S(b"data value")),
    ]
}

fn aes_key(label: &'static [u8]) -> Vec<(CK_ATTRIBUTE_TYPE, V)> {
    vec![
        (CKA_CLASS, V::U(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, V::U(CKK_AES)),
        (CKA_VALUE, V::S(&[0x42; 32])),
        (CKA_LABEL, V::S(label)),
    ]
}

// ----- general purpose functions --------------------------------------------

#[test]
fn functions_before_initialize_report_not_initialized() {
    let f = Fixture::uninitialized(10);
    let mut n: CK_ULONG = 0;
    // SAFETY: valid out-pointers throughout.
    unsafe {
        assert_eq!(
            C_GetSlotList(CK_FALSE, null_mut(), &mut n),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        let mut h = 0;
        assert_eq!(
            C_OpenSession(0, RW, null_mut(), None, &mut h),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        let mut info: CK_INFO = std::mem::zeroed();
        assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    f.initialize();
    // SAFETY: NULL arguments are allowed.
    assert_eq!(
        unsafe { C_Initialize(null_mut()) },
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    let mut reserved = 0u8;
    // SAFETY: a non-NULL pReserved must be refused without being used.
    assert_eq!(
        unsafe { C_Finalize(&mut reserved as *mut u8 as *mut c_void) },
        CKR_ARGUMENTS_BAD
    );
    // Still initialized after the refused C_Finalize.
    assert_eq!(slot_list(), vec![0]);
    f.finalize();
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, null_mut(), &mut n) },
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
}

unsafe extern "C" fn create_mutex(_m: *mut *mut c_void) -> CK_RV {
    CKR_OK
}
unsafe extern "C" fn mutex_op(_m: *mut c_void) -> CK_RV {
    CKR_OK
}

fn init_with(args: &CK_C_INITIALIZE_ARGS) -> CK_RV {
    let mut a = *args;
    // SAFETY: `a` is a valid CK_C_INITIALIZE_ARGS for the call.
    unsafe { C_Initialize(&mut a as *mut CK_C_INITIALIZE_ARGS as *mut c_void) }
}

#[test]
fn initialize_arguments() {
    let f = Fixture::uninitialized(10);
    let none = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: 0,
        pReserved: null_mut(),
    };
    // No callbacks, no flags: the library may use whatever locking it likes.
    assert_eq!(init_with(&none), CKR_OK);
    f.finalize();
    assert_eq!(
        init_with(&CK_C_INITIALIZE_ARGS {
            flags: CKF_OS_LOCKING_OK,
            ..none
        }),
        CKR_OK
    );
    f.finalize();
    let all = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_mutex),
        DestroyMutex: Some(mutex_op),
        LockMutex: Some(mutex_op),
        UnlockMutex: Some(mutex_op),
        flags: CKF_OS_LOCKING_OK,
        pReserved: null_mut(),
    };
    assert_eq!(init_with(&all), CKR_OK);
    f.finalize();
    for partial in [
        CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            ..all
        },
        CK_C_INITIALIZE_ARGS {
            UnlockMutex: None,
            ..all
        },
        CK_C_INITIALIZE_ARGS {
            LockMutex: None,
            DestroyMutex: None,
            ..all
        },
        CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create_mutex),
            ..none
        },
    ] {
        assert_eq!(init_with(&partial), CKR_ARGUMENTS_BAD);
        // A refused C_Initialize leaves the library uninitialized.
        // SAFETY: NULL is the only valid argument.
        assert_eq!(
            unsafe { C_Finalize(null_mut()) },
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
    }
    let mut reserved = 0u8;
    let with_reserved = CK_C_INITIALIZE_ARGS {
        pReserved: &mut reserved as *mut u8 as *mut c_void,
        ..none
    };
    assert_eq!(init_with(&with_reserved), CKR_ARGUMENTS_BAD);
    // SAFETY: NULL is the only valid argument.
    assert_eq!(
        unsafe { C_Finalize(null_mut()) },
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
}

/// Every function pointer of a function list, read as raw words after the
/// version field.
///
/// # Safety
/// `list` points to a function table of at least `size` bytes.
unsafe fn function_pointers(list: *const u8, first: usize, size: usize) -> Vec<usize> {
    (first..size)
        .step_by(std::mem::size_of::<usize>())
        // SAFETY: in bounds of the table per the caller.
        .map(|off| unsafe { (list.add(off) as *const usize).read_unaligned() })
        .collect()
}

#[test]
fn function_list_and_interfaces() {
    let _f = Fixture::uninitialized(10);
    // These work before C_Initialize.
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetFunctionList(&mut list) }, CKR_OK);
    assert!(!list.is_null());
    // SAFETY: the module returned a pointer to a static CK_FUNCTION_LIST.
    let fl = unsafe { &*list };
    assert_eq!((fl.version.major, fl.version.minor), (2, 40));
    let first = std::mem::offset_of!(CK_FUNCTION_LIST, C_Initialize);
    let size = std::mem::size_of::<CK_FUNCTION_LIST>();
    // SAFETY: `list` points to a full CK_FUNCTION_LIST.
    let ptrs = unsafe { function_pointers(list as *const u8, first, size) };
    assert_eq!(ptrs.len(), 68, "a v2.40 table has 68 functions");
    for (i, p) in ptrs.iter().enumerate() {
        assert_ne!(*p, 0, "function pointer {i} of the v2.40 list is NULL");
    }
    // SAFETY: NULL out-pointer must be refused.
    assert_eq!(unsafe { C_GetFunctionList(null_mut()) }, CKR_ARGUMENTS_BAD);

    // C_GetInterfaceList, two calls.
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL list asks for the count.
    assert_eq!(unsafe { C_GetInterfaceList(null_mut(), &mut n) }, CKR_OK);
    assert_eq!(n, 2);
    let blank = CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    };
    let mut ifs = [blank; 2];
    let mut short: CK_ULONG = 1;
    // SAFETY: `ifs` holds 2 entries; we claim 1.
    assert_eq!(
        unsafe { C_GetInterfaceList(ifs.as_mut_ptr(), &mut short) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, 2, "the needed count is written back");
    // SAFETY: `ifs` holds `n` entries.
    assert_eq!(
        unsafe { C_GetInterfaceList(ifs.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    let mut versions = Vec::new();
    for i in &ifs {
        // SAFETY: interface names are NUL-terminated static strings.
        let name = unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName as *const std::ffi::c_char) };
        assert_eq!(name.to_bytes(), b"PKCS 11");
        // SAFETY: every function list starts with its CK_VERSION.
        let v = unsafe { &*(i.pFunctionList as *const CK_VERSION) };
        versions.push((v.major, v.minor));
    }
    assert_eq!(versions, vec![(3, 0), (2, 40)]);
    // SAFETY: NULL count pointer must be refused.
    assert_eq!(
        unsafe { C_GetInterfaceList(null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );

    // C_GetInterface: the default is 3.0.
    let mut pi: *mut CK_INTERFACE = null_mut();
    // SAFETY: valid out-pointer; NULL name and version ask for the default.
    assert_eq!(
        unsafe { C_GetInterface(null_mut(), null_mut(), &mut pi, 0) },
        CKR_OK
    );
    // SAFETY: the module returned a static interface with a function list.
    let v3 = unsafe { &*((*pi).pFunctionList as *const CK_FUNCTION_LIST_3_0) };
    assert_eq!((v3.version.major, v3.version.minor), (3, 0));
    assert!(
        v3.C_GetInterface.is_some() && v3.C_LoginUser.is_some() && v3.C_SessionCancel.is_some()
    );
    let first = std::mem::offset_of!(CK_FUNCTION_LIST_3_0, C_Initialize);
    let size = std::mem::size_of::<CK_FUNCTION_LIST_3_0>();
    // SAFETY: the list is a full CK_FUNCTION_LIST_3_0.
    let ptrs =
        unsafe { function_pointers(v3 as *const CK_FUNCTION_LIST_3_0 as *const u8, first, size) };
    assert!(
        ptrs.iter().all(|p| *p != 0),
        "a v3.0 function pointer is NULL"
    );

    let mut name = *b"PKCS 11\0";
    let mut v240 = CK_VERSION {
        major: 2,
        minor: 40,
    };
    let mut pi2: *mut CK_INTERFACE = null_mut();
    // SAFETY: NUL-terminated name, valid version and out-pointer.
    assert_eq!(
        unsafe { C_GetInterface(name.as_mut_ptr(), &mut v240, &mut pi2, 0) },
        CKR_OK
    );
    // SAFETY: as above.
    let v2 = unsafe { &*((*pi2).pFunctionList as *const CK_FUNCTION_LIST) };
    assert_eq!((v2.version.major, v2.version.minor), (2, 40));

    let mut unknown = *b"PKCS 12\0";
    let mut pi3: *mut CK_INTERFACE = null_mut();
    // SAFETY: NUL-terminated name and valid out-pointer.
    let rv = unsafe { C_GetInterface(unknown.as_mut_ptr(), null_mut(), &mut pi3, 0) };
    assert_ne!(rv, CKR_OK, "an unknown interface name must fail");
    assert!(pi3.is_null());
    let mut v9 = CK_VERSION { major: 9, minor: 9 };
    // SAFETY: as above.
    assert_ne!(
        unsafe { C_GetInterface(name.as_mut_ptr(), &mut v9, &mut pi3, 0) },
        CKR_OK
    );
}

#[test]
fn slot_list_two_call_convention() {
    let _f = Fixture::new();
    // One free slot before any token exists.
    assert_eq!(slot_list(), vec![0]);
    assert_eq!(init_token(0, SO_PIN, "first"), CKR_OK);
    // The token keeps slot 0 and a new free slot is listed last.
    assert_eq!(slot_list(), vec![0, 1]);
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL list asks for the count.
    assert_eq!(
        unsafe { C_GetSlotList(CK_TRUE, null_mut(), &mut n) },
        CKR_OK
    );
    assert_eq!(n, 2);
    let mut buf = [CK_SLOT_ID::MAX; 2];
    let mut short: CK_ULONG = 1;
    // SAFETY: `buf` holds 2 slots; we claim 1.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, buf.as_mut_ptr(), &mut short) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, 2, "the needed count is written back");
    // SAFETY: NULL count pointer must be refused.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, buf.as_mut_ptr(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: NULL count pointer must be refused.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );

    // The free slot takes a second token.
    assert_eq!(init_token(1, SO_PIN, "second"), CKR_OK);
    assert_eq!(slot_list(), vec![0, 1, 2]);
    assert_eq!(&token_info(1).label, &label32("second"));
    let mut info: CK_SLOT_INFO = CK_SLOT_INFO {
        slotDescription: [0; 64],
        manufacturerID: [0; 32],
        flags: 0,
        hardwareVersion: CK_VERSION { major: 0, minor: 0 },
        firmwareVersion: CK_VERSION { major: 0, minor: 0 },
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetSlotInfo(2, &mut info) }, CKR_OK);
    assert_ne!(info.flags & CKF_TOKEN_PRESENT, 0);
    // The free slot has no initialised token: sessions cannot be opened.
    assert_eq!(open(2, RW), Err(CKR_TOKEN_NOT_RECOGNIZED));
    assert_eq!(token_info(2).flags & CKF_TOKEN_INITIALIZED, 0);
}

fn assert_blank_padded(field: &[u8], what: &str) {
    assert!(!field.contains(&0), "{what} contains a NUL byte: {field:?}");
    assert!(
        field.iter().all(|b| (0x20..0x7f).contains(b)),
        "{what} is not printable: {field:?}"
    );
}

#[test]
fn token_info_strings_flags_and_pin_counter() {
    let f = Fixture::uninitialized(3);
    f.initialize();
    assert_eq!(init_token(0, SO_PIN, "info test"), CKR_OK);
    let info = token_info(0);
    assert_eq!(&info.label, &label32("info test"));
    assert_blank_padded(&info.label, "label");
    assert_blank_padded(&info.manufacturerID, "manufacturerID");
    assert_blank_padded(&info.model, "model");
    assert_blank_padded(&info.serialNumber, "serialNumber");
    let serial = info.serialNumber;
    assert!(serial.iter().any(|b| *b != b' '), "empty serial number");
    for flag in [CKF_TOKEN_INITIALIZED, CKF_LOGIN_REQUIRED, CKF_RNG] {
        assert_ne!(info.flags & flag, 0, "flag {flag:#x} missing");
    }
    assert_eq!(info.flags & CKF_USER_PIN_INITIALIZED, 0);
    assert_eq!(info.ulSessionCount, 0);

    let h = open(0, RW).unwrap();
    let ro = open(0, RO).unwrap();
    let info = token_info(0);
    assert_eq!((info.ulSessionCount, info.ulRwSessionCount), (2, 1));
    assert_eq!(close(ro), CKR_OK);
    assert_eq!(login(h, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(h, USER_PIN), CKR_OK);
    assert_ne!(token_info(0).flags & CKF_USER_PIN_INITIALIZED, 0);
    assert_eq!(close(h), CKR_OK);

    // The serial number survives C_Finalize/C_Initialize.
    f.restart();
    assert_eq!(token_info(0).serialNumber, serial);

    let user_flags = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"wrong-pin"), CKR_PIN_INCORRECT);
    assert_eq!(token_info(0).flags & user_flags, CKF_USER_PIN_COUNT_LOW);
    // The counter is persisted, not kept in process memory.
    f.restart();
    assert_eq!(token_info(0).flags & user_flags, CKF_USER_PIN_COUNT_LOW);
    // A right PIN resets it.
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(token_info(0).flags & user_flags, 0);
    assert_eq!(logout(h), CKR_OK);

    assert_eq!(login(h, CKU_USER, b"wrong-pin"), CKR_PIN_INCORRECT);
    assert_eq!(login(h, CKU_USER, b"wrong-pin"), CKR_PIN_INCORRECT);
    // max - 1 failures: one try left.
    assert_eq!(
        token_info(0).flags & user_flags,
        CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
    );
    // The attempt that uses the last try locks the PIN.
    assert_eq!(login(h, CKU_USER, b"wrong-pin"), CKR_PIN_LOCKED);
    assert_eq!(
        token_info(0).flags & CKF_USER_PIN_LOCKED,
        CKF_USER_PIN_LOCKED
    );
    assert_eq!(
        login(h, CKU_USER, USER_PIN),
        CKR_PIN_LOCKED,
        "a locked PIN refuses even the right PIN"
    );
    assert_eq!(session_state(h), CKS_RW_PUBLIC_SESSION);
    f.restart();
    assert_ne!(token_info(0).flags & CKF_USER_PIN_LOCKED, 0);
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
    // The SO PIN has its own counter and still works; C_InitPIN unlocks.
    assert_eq!(
        token_info(0).flags & (CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_LOCKED),
        0
    );
    assert_eq!(login(h, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(h, b"new-user-pin"), CKR_OK);
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(token_info(0).flags & user_flags, 0);
    assert_eq!(login(h, CKU_USER, b"new-user-pin"), CKR_OK);
}

#[test]
fn bad_handles() {
    let _f = Fixture::new();
    let slot = ready_token();
    assert_eq!(close(999), CKR_SESSION_HANDLE_INVALID);
    let mut info: CK_SLOT_INFO = CK_SLOT_INFO {
        slotDescription: [0; 64],
        manufacturerID: [0; 32],
        flags: 0,
        hardwareVersion: CK_VERSION { major: 0, minor: 0 },
        firmwareVersion: CK_VERSION { major: 0, minor: 0 },
    };
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { C_GetSlotInfo(999, &mut info) },
        CKR_SLOT_ID_INVALID
    );
    // SAFETY: CK_TOKEN_INFO is plain old data.
    let mut ti: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetTokenInfo(999, &mut ti) }, CKR_SLOT_ID_INVALID);
    assert_eq!(open(999, RW), Err(CKR_SLOT_ID_INVALID));

    let h = open(slot, RW).unwrap();
    for bad in [0, 12346, 12347] {
        let mut a = CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        // SAFETY: one attribute with a NULL value.
        assert_eq!(
            unsafe { C_GetAttributeValue(h, bad, &mut a, 1) },
            CKR_OBJECT_HANDLE_INVALID,
            "handle {bad}"
        );
        assert_eq!(destroy(h, bad), CKR_OBJECT_HANDLE_INVALID, "handle {bad}");
    }
    // Session handles are never reused after close.
    let mut seen = vec![h];
    assert_eq!(close(h), CKR_OK);
    for _ in 0..5 {
        let n = open(slot, RO).unwrap();
        assert!(!seen.contains(&n), "session handle {n} was reused");
        seen.push(n);
        assert_eq!(close(n), CKR_OK);
        assert_eq!(close(n), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(session_state_rv(n), CKR_SESSION_HANDLE_INVALID);
    }
}

fn session_state_rv(h: CK_SESSION_HANDLE) -> CK_RV {
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { C_GetSessionInfo(h, &mut info) }
}

// ----- sessions and login (v3.0 §5.6) -----------------------------------------

#[test]
fn session_states_follow_login() {
    let _f = Fixture::new();
    let slot = ready_token();
    let ro = open(slot, RO).unwrap();
    let rw = open(slot, RW).unwrap();
    assert_eq!(session_state(ro), CKS_RO_PUBLIC_SESSION);
    assert_eq!(session_state(rw), CKS_RW_PUBLIC_SESSION);
    assert_eq!(logout(rw), CKR_USER_NOT_LOGGED_IN);
    // The SO cannot log in while a read-only session is open.
    assert_eq!(login(rw, CKU_SO, SO_PIN), CKR_SESSION_READ_ONLY_EXISTS);
    assert_eq!(login(ro, CKU_USER, USER_PIN), CKR_OK);
    // Login is per application: every session changes state.
    assert_eq!(session_state(ro), CKS_RO_USER_FUNCTIONS);
    assert_eq!(session_state(rw), CKS_RW_USER_FUNCTIONS);
    assert_eq!(login(ro, CKU_USER, USER_PIN), CKR_USER_ALREADY_LOGGED_IN);
    // With the RO session still open an SO login could as well report
    // CKR_SESSION_READ_ONLY_EXISTS (the spec sets no precedence), so close it
    // first: the login stays, held by the RW session.
    assert_eq!(close(ro), CKR_OK);
    assert_eq!(session_state(rw), CKS_RW_USER_FUNCTIONS);
    assert_eq!(
        login(rw, CKU_SO, SO_PIN),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(logout(rw), CKR_OK);
    assert_eq!(session_state(rw), CKS_RW_PUBLIC_SESSION);

    assert_eq!(login(rw, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(session_state(rw), CKS_RW_SO_FUNCTIONS);
    assert_eq!(open(slot, RO), Err(CKR_SESSION_READ_WRITE_SO_EXISTS));
    let rw2 = open(slot, RW).unwrap();
    assert_eq!(session_state(rw2), CKS_RW_SO_FUNCTIONS);
    assert_eq!(login(rw, CKU_SO, SO_PIN), CKR_USER_ALREADY_LOGGED_IN);
    assert_eq!(
        login(rw, CKU_USER, USER_PIN),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(logout(rw), CKR_OK);
    assert_eq!(logout(rw), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(login(rw, 77, USER_PIN), CKR_USER_TYPE_INVALID);

    assert_eq!(
        open(slot, CKF_RW_SESSION),
        Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    );
    assert_eq!(open(slot, 0), Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED));
    let mut h = 0;
    // SAFETY: NULL session out-pointer must be refused.
    assert_eq!(
        unsafe { C_OpenSession(slot, RW, null_mut(), None, null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { C_OpenSession(slot, RW, null_mut(), None, &mut h) },
        CKR_OK
    );
    assert_eq!(close(h), CKR_OK);
    assert_eq!(close(rw2), CKR_OK);
    assert_eq!(close(rw), CKR_OK);
}

#[test]
fn closing_the_last_session_logs_out() {
    let _f = Fixture::new();
    let slot = ready_token();
    let a = open(slot, RW).unwrap();
    let b = open(slot, RO).unwrap();
    assert_eq!(login(a, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(close(a), CKR_OK);
    assert_eq!(
        session_state(b),
        CKS_RO_USER_FUNCTIONS,
        "another session still open: still logged in"
    );
    assert_eq!(close(b), CKR_OK);
    let c = open(slot, RW).unwrap();
    assert_eq!(session_state(c), CKS_RW_PUBLIC_SESSION);
    assert_eq!(login(c, CKU_USER, USER_PIN), CKR_OK);
    // SAFETY: plain value arguments.
    assert_eq!(unsafe { C_CloseAllSessions(slot) }, CKR_OK);
    assert_eq!(close(c), CKR_SESSION_HANDLE_INVALID);
    let d = open(slot, RO).unwrap();
    assert_eq!(session_state(d), CKS_RO_PUBLIC_SESSION);
}

#[test]
fn pin_management_rules() {
    let f = Fixture::new();
    assert_eq!(init_token(0, b"123", "short"), CKR_PIN_LEN_RANGE);
    assert_eq!(init_token(0, SO_PIN, "pins"), CKR_OK);
    let h = open(0, RW).unwrap();
    // C_InitToken refuses while a session is open on the token.
    assert_eq!(init_token(0, SO_PIN, "again"), CKR_SESSION_EXISTS);
    // C_InitPIN needs the SO.
    assert_eq!(init_pin(h, USER_PIN), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_USER_PIN_NOT_INITIALIZED);
    assert_eq!(login(h, CKU_SO, b"wrong-so-pin"), CKR_PIN_INCORRECT);
    assert_eq!(login(h, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(h, b"123"), CKR_PIN_LEN_RANGE);
    assert_eq!(init_pin(h, &[b'x'; 256]), CKR_PIN_LEN_RANGE);
    assert_eq!(init_pin(h, USER_PIN), CKR_OK);
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    // A user cannot run C_InitPIN either.
    assert_eq!(init_pin(h, b"other-pin"), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(logout(h), CKR_OK);

    // C_Login with a NULL PIN: there is no protected authentication path.
    // SAFETY: a NULL PIN must be refused without being read.
    assert_eq!(
        unsafe { C_Login(h, CKU_USER, null_mut(), 4) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: as above.
    assert_eq!(unsafe { C_InitPIN(h, null_mut(), 0) }, CKR_ARGUMENTS_BAD);

    // C_SetPIN needs a read/write session.
    let ro = open(0, RO).unwrap();
    assert_eq!(set_pin(ro, USER_PIN, b"changed-pin"), CKR_SESSION_READ_ONLY);
    assert_eq!(close(ro), CKR_OK);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(set_pin(h, USER_PIN, b"12"), CKR_PIN_LEN_RANGE);
    assert_eq!(
        set_pin(h, b"not-the-pin", b"changed-pin"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(set_pin(h, USER_PIN, b"changed-pin"), CKR_OK);
    assert_eq!(close(h), CKR_OK);
    f.restart();
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_PIN_INCORRECT);
    assert_eq!(login(h, CKU_USER, b"changed-pin"), CKR_OK);
    assert_eq!(close(h), CKR_OK);

    // Re-initialising wipes objects and the user PIN; it needs the SO PIN.
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"changed-pin"), CKR_OK);
    create(h, &data_object(b"wiped", true, false)).unwrap();
    assert_eq!(close(h), CKR_OK);
    assert_eq!(init_token(0, b"wrong-so-pin", "renamed"), CKR_PIN_INCORRECT);
    assert_eq!(init_token(0, SO_PIN, "renamed"), CKR_OK);
    assert_eq!(&token_info(0).label, &label32("renamed"));
    assert_eq!(token_info(0).flags & CKF_USER_PIN_INITIALIZED, 0);
    let h = open(0, RO).unwrap();
    assert!(
        find(h, &[]).is_empty(),
        "C_InitToken must destroy every object"
    );
}

// ----- objects (v3.0 §5.7) -----------------------------------------------------

#[test]
fn object_access_follows_session_and_login() {
    let _f = Fixture::new();
    let slot = ready_token();
    let ro = open(slot, RO).unwrap();
    let rw = open(slot, RW).unwrap();
    // Public session objects are fine without login, even in RO sessions.
    let pub_session = create(ro, &data_object(b"pub-session", false, false)).unwrap();
    assert_eq!(pub_session % 2, 1, "session objects have odd handles");
    // Token objects need a RW session.
    assert_eq!(
        create(ro, &data_object(b"tok", true, false)),
        Err(CKR_SESSION_READ_ONLY)
    );
    let pub_token = create(rw, &data_object(b"pub-token", true, false)).unwrap();
    assert_eq!(pub_token % 2, 0, "token objects have even handles");
    assert_eq!(destroy(ro, pub_token), CKR_SESSION_READ_ONLY);
    // Private objects need the user.
    assert_eq!(
        create(rw, &data_object(b"priv", false, true)),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    assert_eq!(
        create(rw, &aes_key(b"key")),
        Err(CKR_USER_NOT_LOGGED_IN),
        "keys are private by default"
    );

    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(
        create(ro, &data_object(b"tok", true, true)),
        Err(CKR_SESSION_READ_ONLY)
    );
    let priv_token = create(rw, &data_object(b"priv-token", true, true)).unwrap();
    let priv_session = create(ro, &data_object(b"priv-session", false, true)).unwrap();
    let key = create(rw, &aes_key(b"key")).unwrap();
    assert!(get_bool(rw, key, CKA_PRIVATE));
    assert!(get_bool(rw, key, CKA_SENSITIVE));
    assert!(get_bool(rw, key, CKA_EXTRACTABLE));
    assert!(!get_bool(rw, key, CKA_TOKEN));
    assert!(!get_bool(rw, key, CKA_LOCAL));
    assert_eq!(
        get(rw, key, CKA_VALUE_LEN).unwrap(),
        (32 as CK_ULONG).to_ne_bytes()
    );
    let all = find(rw, &[]);
    for h in [pub_session, pub_token, priv_token, priv_session, key] {
        assert!(all.contains(&h), "handle {h} not found while logged in");
    }
    assert_eq!(all.len(), 5);

    assert_eq!(logout(rw), CKR_OK);
    // Private objects disappear: from finds and by handle.
    let all = find(rw, &[]);
    let mut expected = vec![pub_session, pub_token];
    expected.sort_unstable();
    assert_eq!(all, expected);
    for h in [priv_token, priv_session, key] {
        assert_eq!(
            get(rw, h, CKA_LABEL),
            Err(CKR_OBJECT_HANDLE_INVALID),
            "handle {h}"
        );
        assert_eq!(destroy(rw, h), CKR_OBJECT_HANDLE_INVALID, "handle {h}");
    }
    assert_eq!(get(rw, pub_token, CKA_LABEL).unwrap(), b"pub-token");

    // After logging in again they are back, with the same handles.
    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(get(rw, priv_token, CKA_LABEL).unwrap(), b"priv-token");
    assert_eq!(get(rw, priv_session, CKA_LABEL).unwrap(), b"priv-session");
}

#[test]
fn get_attribute_value_conventions() {
    let _f = Fixture::new();
    let h = user_session();
    let data = create(h, &data_object(b"hello", false, false)).unwrap();
    let key = create(h, &aes_key(b"secret")).unwrap();

    // NULL pValue: lengths only.
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 99,
        },
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: null_mut(),
            ulValueLen: 0,
        },
    ];
    // SAFETY: three attributes with NULL values.
    assert_eq!(
        unsafe { C_GetAttributeValue(h, data, t.as_mut_ptr(), 3) },
        CKR_OK
    );
    assert_eq!(t[0].ulValueLen, 5);
    assert_eq!(t[1].ulValueLen as usize, std::mem::size_of::<CK_ULONG>());
    assert_eq!(t[2].ulValueLen, b"data value".len() as CK_ULONG);

    // A short buffer: CKR_BUFFER_TOO_SMALL and CK_UNAVAILABLE_INFORMATION,
    // while the attribute that fits is still written.
    let mut small = [0u8; 4];
    let mut class = [0u8; std::mem::size_of::<CK_ULONG>()];
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: small.as_mut_ptr() as *mut c_void,
            ulValueLen: 4,
        },
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: class.as_mut_ptr() as *mut c_void,
            ulValueLen: class.len() as CK_ULONG,
        },
    ];
    // SAFETY: each pValue holds ulValueLen bytes.
    assert_eq!(
        unsafe { C_GetAttributeValue(h, data, t.as_mut_ptr(), 2) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(t[1].ulValueLen as usize, class.len());
    assert_eq!(CK_ULONG::from_ne_bytes(class), CKO_DATA);

    // A sensitive value: CKR_ATTRIBUTE_SENSITIVE, the rest still filled.
    let mut value = [0u8; 32];
    let mut label = [0u8; 16];
    let mut key_type = [0u8; std::mem::size_of::<CK_ULONG>()];
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr() as *mut c_void,
            ulValueLen: 16,
        },
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_mut_ptr() as *mut c_void,
            ulValueLen: 32,
        },
        CK_ATTRIBUTE {
            type_: CKA_KEY_TYPE,
            pValue: key_type.as_mut_ptr() as *mut c_void,
            ulValueLen: key_type.len() as CK_ULONG,
        },
    ];
    // SAFETY: each pValue holds ulValueLen bytes.
    assert_eq!(
        unsafe { C_GetAttributeValue(h, key, t.as_mut_ptr(), 3) },
        CKR_ATTRIBUTE_SENSITIVE
    );
    assert_eq!(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(value, [0u8; 32], "a sensitive value must not be written");
    assert_eq!(t[0].ulValueLen, 6);
    assert_eq!(&label[..6], b"secret");
    assert_eq!(CK_ULONG::from_ne_bytes(key_type), CKK_AES);

    // An attribute the object does not have: CKR_ATTRIBUTE_TYPE_INVALID.
    let mut label = [0u8; 16];
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_MODULUS,
            pValue: null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr() as *mut c_void,
            ulValueLen: 16,
        },
    ];
    // SAFETY: as above.
    assert_eq!(
        unsafe { C_GetAttributeValue(h, data, t.as_mut_ptr(), 2) },
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(t[1].ulValueLen, 5);
    assert_eq!(&label[..5], b"hello");

    // C_GetObjectSize.
    let mut size: CK_ULONG = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetObjectSize(h, data, &mut size) }, CKR_OK);
    assert!(size > 0);
    let mut big: CK_ULONG = 0;
    let large = create(
        h,
        &[
            (CKA_CLASS, V::U(CKO_DATA)),
            (CKA_VALUE, V::Raw(vec![7u8; 4096])),
            (CKA_LABEL, V::S(b"hello")),
        ],
    )
    .unwrap();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetObjectSize(h, large, &mut big) }, CKR_OK);
    assert!(
        big > size,
        "a 4 KiB value must make the object bigger ({big} <= {size})"
    );
    // SAFETY: NULL size pointer must be refused.
    assert_eq!(
        unsafe { C_GetObjectSize(h, data, null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { C_GetObjectSize(h, 12346, &mut size) },
        CKR_OBJECT_HANDLE_INVALID
    );

    // A non-sensitive key reveals its value.
    let mut t = aes_key(b"open");
    t.push((CKA_SENSITIVE, V::B(false)));
    let open_key = create(h, &t).unwrap();
    assert_eq!(get(h, open_key, CKA_VALUE).unwrap(), vec![0x42; 32]);
    // ...until it becomes unextractable.
    assert_eq!(
        set_attrs(h, open_key, &[(CKA_EXTRACTABLE, V::B(false))]),
        CKR_OK
    );
    assert_eq!(get(h, open_key, CKA_VALUE), Err(CKR_ATTRIBUTE_SENSITIVE));
}

#[test]
fn create_object_template_errors() {
    let _f = Fixture::new();
    let h = user_session();
    // Unknown to the class (and vendor-defined) attributes.
    let mut t = data_object(b"x", false, false);
    t.push((CKA_MODULUS, V::S(b"\x01\x00\x01")));
    assert_eq!(create(h, &t), Err(CKR_ATTRIBUTE_TYPE_INVALID));
    let mut t = data_object(b"x", false, false);
    t.push((CKA_VENDOR_DEFINED | 0x1234, V::S(b"v")));
    assert_eq!(create(h, &t), Err(CKR_ATTRIBUTE_TYPE_INVALID));
    // Attributes only the token sets.
    let mut t = aes_key(b"x");
    t.push((CKA_LOCAL, V::B(true)));
    assert_eq!(create(h, &t), Err(CKR_ATTRIBUTE_READ_ONLY));
    let mut t = aes_key(b"x");
    t.push((CKA_LOCAL, V::B(false)));
    assert_eq!(create(h, &t), Err(CKR_ATTRIBUTE_READ_ONLY));
    // Missing class, missing key type, missing key value.
    assert_eq!(
        create(h, &[(CKA_LABEL, V::S(b"x"))]),
        Err(CKR_TEMPLATE_INCOMPLETE)
    );
    assert_eq!(create(h, &[]), Err(CKR_TEMPLATE_INCOMPLETE));
    assert_eq!(
        create(
            h,
            &[
                (CKA_CLASS, V::U(CKO_SECRET_KEY)),
                (CKA_VALUE, V::S(&[1; 16]))
            ]
        ),
        Err(CKR_TEMPLATE_INCOMPLETE)
    );
    assert_eq!(
        create(
            h,
            &[
                (CKA_CLASS, V::U(CKO_SECRET_KEY)),
                (CKA_KEY_TYPE, V::U(CKK_AES))
            ]
        ),
        Err(CKR_TEMPLATE_INCOMPLETE)
    );
    // Wrongly sized values.
    let mut t = data_object(b"x", false, false);
    t.push((CKA_MODIFIABLE, V::Raw(vec![1, 0])));
    assert_eq!(create(h, &t), Err(CKR_ATTRIBUTE_VALUE_INVALID));
    assert_eq!(
        create(h, &[(CKA_CLASS, V::Raw(vec![0, 0, 0]))]),
        Err(CKR_ATTRIBUTE_VALUE_INVALID)
    );
    let mut t = aes_key(b"x");
    t[2] = (CKA_VALUE, V::S(&[1; 15]));
    assert_eq!(
        create(h, &t),
        Err(CKR_ATTRIBUTE_VALUE_INVALID),
        "AES keys are 16, 24 or 32 bytes"
    );
    for len in [16usize, 24, 32] {
        let mut t = aes_key(b"x");
        t[2] = (CKA_VALUE, V::Raw(vec![1; len]));
        let k = create(h, &t).unwrap();
        assert_eq!(
            get(h, k, CKA_VALUE_LEN).unwrap(),
            (len as CK_ULONG).to_ne_bytes()
        );
    }
    // Conflicting duplicates.
    let mut t = data_object(b"x", false, false);
    t.push((CKA_TOKEN, V::B(true)));
    assert_eq!(create(h, &t), Err(CKR_TEMPLATE_INCONSISTENT));
    // Certificates need a subject and a value.
    let cert = [
        (CKA_CLASS, V::U(CKO_CERTIFICATE)),
        (CKA_CERTIFICATE_TYPE, V::U(CKC_X_509)),
        (
            CKA_SUBJECT,
            V::S(b"0\x0b1\x090\x07\x06\x03U\x04\x03\x0c\x00"),
        ),
        (CKA_VALUE, V::S(b"0\x03\x02\x01\x00")),
        (CKA_LABEL, V::S(b"cert")),
    ];
    let c = create(h, &cert).unwrap();
    assert!(
        !get_bool(h, c, CKA_PRIVATE),
        "certificates are public by default"
    );
    assert!(!get_bool(h, c, CKA_TRUSTED));
    assert_eq!(
        create(h, &[cert[0].clone(), cert[1].clone(), cert[3].clone()]),
        Err(CKR_TEMPLATE_INCOMPLETE)
    );
    assert_eq!(
        create(h, &[cert[0].clone(), cert[1].clone(), cert[2].clone()]),
        Err(CKR_TEMPLATE_INCOMPLETE)
    );
    // NULL template with a count, NULL handle pointer.
    let mut o = 0;
    // SAFETY: a NULL template with a non-zero count must be refused.
    assert_eq!(
        unsafe { C_CreateObject(h, null_mut(), 2, &mut o) },
        CKR_ARGUMENTS_BAD
    );
    let mut t = Template::new(&data_object(b"x", false, false));
    // SAFETY: a NULL handle out-pointer must be refused.
    assert_eq!(
        unsafe { C_CreateObject(h, t.ptr(), t.len(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn set_copy_destroy_rules() {
    let _f = Fixture::new();
    let h = user_session();
    let key = create(h, &aes_key(b"k")).unwrap();
    // CKA_SENSITIVE only moves to TRUE; CKA_EXTRACTABLE only to FALSE.
    assert_eq!(
        set_attrs(h, key, &[(CKA_SENSITIVE, V::B(false))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(set_attrs(h, key, &[(CKA_SENSITIVE, V::B(true))]), CKR_OK);
    assert_eq!(set_attrs(h, key, &[(CKA_EXTRACTABLE, V::B(false))]), CKR_OK);
    assert_eq!(
        set_attrs(h, key, &[(CKA_EXTRACTABLE, V::B(true))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert!(!get_bool(h, key, CKA_EXTRACTABLE));
    let mut t = aes_key(b"soft");
    t.push((CKA_SENSITIVE, V::B(false)));
    let soft = create(h, &t).unwrap();
    assert_eq!(set_attrs(h, soft, &[(CKA_SENSITIVE, V::B(true))]), CKR_OK);
    assert!(get_bool(h, soft, CKA_SENSITIVE));
    assert_eq!(
        set_attrs(h, soft, &[(CKA_SENSITIVE, V::B(false))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    // Ordinary changes work and are visible.
    assert_eq!(
        set_attrs(
            h,
            key,
            &[(CKA_LABEL, V::S(b"renamed")), (CKA_ID, V::S(b"\x01\x02"))]
        ),
        CKR_OK
    );
    assert_eq!(get(h, key, CKA_LABEL).unwrap(), b"renamed");
    // Computed and fixed attributes cannot be set.
    assert_eq!(
        set_attrs(h, key, &[(CKA_CLASS, V::U(CKO_DATA))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        set_attrs(h, key, &[(CKA_KEY_TYPE, V::U(CKK_GENERIC_SECRET))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        set_attrs(h, key, &[(CKA_LOCAL, V::B(true))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        set_attrs(h, key, &[(CKA_TOKEN, V::B(true))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    // A user may not mark anything trusted, neither at creation nor later.
    assert_eq!(
        set_attrs(h, key, &[(CKA_TRUSTED, V::B(true))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let mut t = aes_key(b"trusted");
    t.push((CKA_TRUSTED, V::B(true)));
    assert_eq!(create(h, &t), Err(CKR_ATTRIBUTE_READ_ONLY));

    // CKA_MODIFIABLE = FALSE.
    let mut t = data_object(b"fixed", false, false);
    t.push((CKA_MODIFIABLE, V::B(false)));
    let fixed = create(h, &t).unwrap();
    assert_eq!(
        set_attrs(h, fixed, &[(CKA_LABEL, V::S(b"nope"))]),
        CKR_ACTION_PROHIBITED
    );
    assert_eq!(get(h, fixed, CKA_LABEL).unwrap(), b"fixed");

    // CKA_COPYABLE = FALSE; a copyable object copies with changes.
    let mut t = data_object(b"nocopy", false, false);
    t.push((CKA_COPYABLE, V::B(false)));
    let nocopy = create(h, &t).unwrap();
    assert_eq!(copy(h, nocopy, &[]), Err(CKR_ACTION_PROHIBITED));
    let c = copy(
        h,
        key,
        &[(CKA_LABEL, V::S(b"copy")), (CKA_TOKEN, V::B(true))],
    )
    .unwrap();
    assert_ne!(c, key);
    assert_eq!(c % 2, 0, "a copy with CKA_TOKEN=TRUE is a token object");
    assert_eq!(get(h, c, CKA_LABEL).unwrap(), b"copy");
    assert_eq!(get(h, key, CKA_LABEL).unwrap(), b"renamed");
    assert_eq!(
        copy(h, key, &[(CKA_SENSITIVE, V::B(false))]),
        Err(CKR_ATTRIBUTE_READ_ONLY)
    );
    assert_eq!(copy(h, 12346, &[]), Err(CKR_OBJECT_HANDLE_INVALID));

    // CKA_DESTROYABLE = FALSE.
    let mut t = data_object(b"keep", true, false);
    t.push((CKA_DESTROYABLE, V::B(false)));
    let keep = create(h, &t).unwrap();
    assert_eq!(destroy(h, keep), CKR_ACTION_PROHIBITED);
    assert_eq!(get(h, keep, CKA_LABEL).unwrap(), b"keep");
    assert_eq!(destroy(h, c), CKR_OK);
    assert_eq!(destroy(h, c), CKR_OBJECT_HANDLE_INVALID);
    assert_eq!(get(h, c, CKA_LABEL), Err(CKR_OBJECT_HANDLE_INVALID));
}

#[test]
fn security_officer_may_set_trusted_on_public_objects() {
    let _f = Fixture::new();
    let slot = ready_token();
    let h = open(slot, RW).unwrap();
    assert_eq!(login(h, CKU_SO, SO_PIN), CKR_OK);
    // The SO cannot create private objects.
    assert_eq!(
        create(h, &aes_key(b"so-private")),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    let mut t = aes_key(b"so-public");
    t.push((CKA_PRIVATE, V::B(false)));
    t.push((CKA_TOKEN, V::B(true)));
    let key = create(h, &t).unwrap();
    assert!(!get_bool(h, key, CKA_TRUSTED));
    assert_eq!(set_attrs(h, key, &[(CKA_TRUSTED, V::B(true))]), CKR_OK);
    assert!(get_bool(h, key, CKA_TRUSTED));
    let cert = create(
        h,
        &[
            (CKA_CLASS, V::U(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, V::U(CKC_X_509)),
            (CKA_SUBJECT, V::S(b"subject")),
            (CKA_VALUE, V::S(b"certificate")),
            (CKA_TRUSTED, V::B(true)),
        ],
    )
    .unwrap();
    assert!(get_bool(h, cert, CKA_TRUSTED));
    assert_eq!(logout(h), CKR_OK);
    // The user sees the trusted key (persisted) but cannot untrust... or
    // re-trust: only the SO may set CKA_TRUSTED to TRUE.
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert!(get_bool(h, key, CKA_TRUSTED));
    let mut t = aes_key(b"user-key");
    t.push((CKA_PRIVATE, V::B(false)));
    let user_key = create(h, &t).unwrap();
    assert_eq!(
        set_attrs(h, user_key, &[(CKA_TRUSTED, V::B(true))]),
        CKR_ATTRIBUTE_READ_ONLY
    );
}

#[test]
fn find_objects() {
    let _f = Fixture::new();
    let h = user_session();
    let a = create(
        h,
        &[
            (CKA_CLASS, V::U(CKO_DATA)),
            (CKA_LABEL, V::S(b"alpha")),
            (CKA_TOKEN, V::B(true)),
        ],
    )
    .unwrap();
    let b = create(
        h,
        &[(CKA_CLASS, V::U(CKO_DATA)), (CKA_LABEL, V::S(b"beta"))],
    )
    .unwrap();
    let mut t = aes_key(b"alpha");
    t.push((CKA_ID, V::S(b"\xca\xfe")));
    t.push((CKA_TOKEN, V::B(true)));
    let k = create(h, &t).unwrap();
    let mut t = aes_key(b"gamma");
    t.push((CKA_ID, V::S(b"\xca\xfe")));
    let k2 = create(h, &t).unwrap();

    let mut by_label = vec![a, k];
    by_label.sort_unstable();
    assert_eq!(find(h, &[(CKA_LABEL, V::S(b"alpha"))]), by_label);
    assert_eq!(find(h, &[(CKA_LABEL, V::S(b"beta"))]), vec![b]);
    assert_eq!(
        find(h, &[(CKA_LABEL, V::S(b"none"))]),
        Vec::<CK_OBJECT_HANDLE>::new()
    );
    let mut by_id = vec![k, k2];
    by_id.sort_unstable();
    assert_eq!(find(h, &[(CKA_ID, V::S(b"\xca\xfe"))]), by_id);
    assert_eq!(
        find(
            h,
            &[(CKA_ID, V::S(b"\xca\xfe")), (CKA_LABEL, V::S(b"gamma"))]
        ),
        vec![k2]
    );
    let mut data = vec![a, b];
    data.sort_unstable();
    assert_eq!(find(h, &[(CKA_CLASS, V::U(CKO_DATA))]), data);
    assert_eq!(find(h, &[(CKA_CLASS, V::U(CKO_SECRET_KEY))]), by_id);
    assert_eq!(
        find(h, &[(CKA_CLASS, V::U(CKO_DATA)), (CKA_TOKEN, V::B(true))]),
        vec![a]
    );
    let mut all = vec![a, b, k, k2];
    all.sort_unstable();
    assert_eq!(find(h, &[]), all);
    // A template that cannot match anything (malformed value) finds nothing.
    assert_eq!(
        find(h, &[(CKA_CLASS, V::Raw(vec![1, 2, 3]))]),
        Vec::<CK_OBJECT_HANDLE>::new()
    );

    // Operation state errors.
    let mut o = [0 as CK_OBJECT_HANDLE; 4];
    let mut n: CK_ULONG = 0;
    // SAFETY: `o` holds 4 handles.
    unsafe {
        assert_eq!(
            C_FindObjects(h, o.as_mut_ptr(), 4, &mut n),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(C_FindObjectsInit(h, null_mut(), 0), CKR_OK);
        assert_eq!(C_FindObjectsInit(h, null_mut(), 0), CKR_OPERATION_ACTIVE);
        // Results come in chunks and end with zero.
        assert_eq!(C_FindObjects(h, o.as_mut_ptr(), 3, &mut n), CKR_OK);
        assert_eq!(n, 3);
        assert_eq!(C_FindObjects(h, o.as_mut_ptr(), 3, &mut n), CKR_OK);
        assert_eq!(n, 1);
        assert_eq!(C_FindObjects(h, o.as_mut_ptr(), 3, &mut n), CKR_OK);
        assert_eq!(n, 0);
        assert_eq!(
            C_FindObjects(h, o.as_mut_ptr(), 3, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_FindObjectsFinal(h), CKR_OK);
        assert_eq!(C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
    }
}

#[test]
fn session_objects_die_with_their_session() {
    let _f = Fixture::new();
    let slot = ready_token();
    let a = open(slot, RW).unwrap();
    let b = open(slot, RO).unwrap();
    let obj = create(a, &data_object(b"ephemeral", false, false)).unwrap();
    let tok = create(a, &data_object(b"durable", true, false)).unwrap();
    // Visible from another session of the same application.
    assert_eq!(get(b, obj, CKA_LABEL).unwrap(), b"ephemeral");
    assert_eq!(close(a), CKR_OK);
    assert_eq!(get(b, obj, CKA_LABEL), Err(CKR_OBJECT_HANDLE_INVALID));
    assert_eq!(find(b, &[]), vec![tok]);
    assert_eq!(get(b, tok, CKA_LABEL).unwrap(), b"durable");
}

#[test]
fn token_objects_survive_finalize() {
    let f = Fixture::new();
    let h = user_session();
    let tok = create(h, &data_object(b"kept", true, true)).unwrap();
    let ses = create(h, &data_object(b"lost", false, false)).unwrap();
    f.restart();
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(
        find(h, &[]),
        vec![tok],
        "the token object keeps its handle; the session object is gone"
    );
    assert_eq!(get(h, tok, CKA_VALUE).unwrap(), b"data value");
    assert_eq!(get(h, ses, CKA_LABEL), Err(CKR_OBJECT_HANDLE_INVALID));
}

#[test]
fn random_numbers() {
    let _f = Fixture::new();
    let slot = ready_token();
    let h = open(slot, RO).unwrap();
    let mut seed = [1u8; 16];
    // SAFETY: `seed` holds 16 bytes.
    assert_eq!(
        unsafe { C_SeedRandom(h, seed.as_mut_ptr(), 16) },
        CKR_RANDOM_SEED_NOT_SUPPORTED
    );
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    // SAFETY: each buffer holds 64 bytes.
    unsafe {
        assert_eq!(C_GenerateRandom(h, a.as_mut_ptr(), 64), CKR_OK);
        assert_eq!(C_GenerateRandom(h, b.as_mut_ptr(), 64), CKR_OK);
        assert_eq!(C_GenerateRandom(h, null_mut(), 0), CKR_OK);
        assert_eq!(C_GenerateRandom(h, null_mut(), 8), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_GenerateRandom(999, a.as_mut_ptr(), 8),
            CKR_SESSION_HANDLE_INVALID
        );
    }
    assert_ne!(a, [0u8; 64]);
    assert_ne!(a, b, "two C_GenerateRandom calls returned the same bytes");
}

// ----- crypto users (CloudHSM model) -----------------------------------------

const CKA_SR_OWNER: CK_ATTRIBUTE_TYPE = 0x8000_0000 | 0x5352_0001;
const CKA_SR_SHARED_WITH: CK_ATTRIBUTE_TYPE = 0x8000_0000 | 0x5352_0002;

fn login_user(h: CK_SESSION_HANDLE, name: &[u8], pin: &[u8]) -> CK_RV {
    // SAFETY: the PIN and name outlive the call.
    unsafe {
        C_LoginUser(
            h,
            CKU_USER,
            pin.as_ptr() as *mut u8,
            pin.len() as CK_ULONG,
            name.as_ptr() as *mut u8,
            name.len() as CK_ULONG,
        )
    }
}

fn encrypt_ecb(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<Vec<u8>, CK_RV> {
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_ECB,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_EncryptInit(h, &mut m, key) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut data = [7u8; 16];
    let mut out = [0u8; 16];
    let mut n: CK_ULONG = 16;
    // SAFETY: 16-byte buffers.
    let rv = unsafe { C_Encrypt(h, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n) };
    if rv == CKR_OK {
        Ok(out.to_vec())
    } else {
        Err(rv)
    }
}

#[test]
fn crypto_users_own_and_share_keys() {
    let _f = Fixture::new();
    let slot = ready_token();
    // The SO makes two crypto users with C_InitPIN("name:password").
    let so = open(slot, RW).unwrap();
    assert_eq!(login(so, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(so, b"app1:secret-1"), CKR_OK);
    assert_eq!(init_pin(so, b"app2:secret-2"), CKR_OK);
    assert_eq!(init_pin(so, b"bad name:secret-3"), CKR_ARGUMENTS_BAD);
    assert_eq!(close(so), CKR_OK);

    // app1 logs in with the CloudHSM PIN form and makes a token key.
    let h = open(slot, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_OK);
    let mut t = aes_key(b"app1-key");
    t.push((CKA_TOKEN, V::B(true)));
    t.push((CKA_SENSITIVE, V::B(false)));
    let k1 = create(h, &t).unwrap();
    assert_eq!(get(h, k1, CKA_SR_OWNER).unwrap(), b"app1");
    assert_eq!(
        get(h, k1, CKA_VALUE).unwrap(),
        vec![0x42; 32],
        "the owner reads a non-sensitive value"
    );
    let expected = encrypt_ecb(h, k1).unwrap();
    assert_eq!(logout(h), CKR_OK);

    // app2 (through C_LoginUser) does not see it until it is shared.
    assert_eq!(login_user(h, b"app2", b"secret-2"), CKR_OK);
    assert!(find(h, &[(CKA_LABEL, V::S(b"app1-key"))]).is_empty());
    assert_eq!(get(h, k1, CKA_LABEL), Err(CKR_OBJECT_HANDLE_INVALID));
    // The default user does not see it either.
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert!(find(h, &[(CKA_LABEL, V::S(b"app1-key"))]).is_empty());
    assert_eq!(logout(h), CKR_OK);

    // The owner shares it; the owner's frozen attributes do not stop that.
    assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_OK);
    assert_eq!(
        set_attrs(h, k1, &[(CKA_SR_SHARED_WITH, V::S(b"app2"))]),
        CKR_OK
    );
    assert_eq!(logout(h), CKR_OK);

    assert_eq!(login_user(h, b"app2", b"secret-2"), CKR_OK);
    assert_eq!(find(h, &[(CKA_LABEL, V::S(b"app1-key"))]), vec![k1]);
    assert_eq!(
        encrypt_ecb(h, k1).unwrap(),
        expected,
        "a shared user may use the key"
    );
    assert_eq!(
        get(h, k1, CKA_VALUE),
        Err(CKR_ATTRIBUTE_SENSITIVE),
        "but never read it"
    );
    assert_eq!(destroy(h, k1), CKR_ACTION_PROHIBITED);
    assert_eq!(
        set_attrs(h, k1, &[(CKA_LABEL, V::S(b"mine"))]),
        CKR_ACTION_PROHIBITED
    );
    assert_eq!(
        set_attrs(h, k1, &[(CKA_SR_SHARED_WITH, V::S(b"app2,app3"))]),
        CKR_ACTION_PROHIBITED
    );
    assert_eq!(copy(h, k1, &[]), Err(CKR_ACTION_PROHIBITED));
    assert_eq!(
        set_attrs(h, k1, &[(CKA_SR_OWNER, V::S(b"app2"))]),
        CKR_ACTION_PROHIBITED
    );
    // Wrapping it out is export: refused for a shared user.
    let mut w = aes_key(b"app2-wrapper");
    w.push((CKA_WRAP, V::B(true)));
    let wk = create(h, &w).unwrap();
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_KEY_WRAP,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut out = [0u8; 64];
    let mut n: CK_ULONG = 64;
    // SAFETY: the mechanism and 64-byte buffer outlive the call.
    let rv = unsafe { C_WrapKey(h, &mut m, wk, k1, out.as_mut_ptr(), &mut n) };
    assert_eq!(rv, CKR_KEY_UNEXTRACTABLE);
    assert_eq!(logout(h), CKR_OK);

    // The owner still may destroy it.
    assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_OK);
    assert_eq!(destroy(h, k1), CKR_OK);
    assert_eq!(close(h), CKR_OK);
}

#[test]
fn crypto_users_lock_after_five_failures_and_the_so_unlocks() {
    let _f = Fixture::new();
    let slot = ready_token();
    let so = open(slot, RW).unwrap();
    assert_eq!(login(so, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(so, b"app1:secret-1"), CKR_OK);
    assert_eq!(close(so), CKR_OK);

    let h = open(slot, RW).unwrap();
    for i in 1..=4 {
        assert_eq!(
            login(h, CKU_USER, b"app1:wrong"),
            CKR_PIN_INCORRECT,
            "try {i}"
        );
    }
    assert_eq!(login(h, CKU_USER, b"app1:wrong"), CKR_PIN_LOCKED);
    assert_eq!(
        login(h, CKU_USER, b"app1:secret-1"),
        CKR_PIN_LOCKED,
        "locked even with the right PIN"
    );
    // Other users are not affected by app1's lockout.
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(close(h), CKR_OK);

    // The SO resets the user's password, which unlocks it.
    let so = open(slot, RW).unwrap();
    assert_eq!(login(so, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(so, b"app1:secret-9"), CKR_OK);
    assert_eq!(close(so), CKR_OK);
    let h = open(slot, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_PIN_INCORRECT);
    assert_eq!(login(h, CKU_USER, b"app1:secret-9"), CKR_OK);
    // A crypto user changes its own PIN, with or without the name prefix.
    assert_eq!(set_pin(h, b"secret-9", b"app1:secret-10"), CKR_OK);
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(login_user(h, b"app1", b"secret-10"), CKR_OK);
    assert_eq!(close(h), CKR_OK);
}

#[test]
fn logins_for_an_unknown_crypto_user_do_not_lock_the_default_user() {
    let _f = Fixture::new(); // 10 failures lock a PIN
    let slot = ready_token();
    let h = open(slot, RW).unwrap();
    for i in 1..=12 {
        assert_eq!(
            login(h, CKU_USER, b"ghost:whatever"),
            CKR_PIN_INCORRECT,
            "try {i}"
        );
        assert_eq!(
            login_user(h, b"ghost", b"whatever"),
            CKR_PIN_INCORRECT,
            "C_LoginUser try {i}"
        );
    }
    let info = token_info(slot);
    assert_eq!(
        info.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED),
        0,
        "the default user's counter was not touched"
    );
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    // The default user's PIN cannot take the crypto-user form.
    assert_eq!(set_pin(h, USER_PIN, b"ghost:new-pin-1"), CKR_PIN_INVALID);
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(close(h), CKR_OK);
}

// ----- audit log --------------------------------------------------------------

/// The store's whole audit log as JSON lines (after the module finalized).
fn exported_audit_log() -> String {
    let store = strongroom_pkcs11::admin::open_store().unwrap();
    let mut out = Vec::new();
    strongroom_pkcs11::admin::audit_export(&store, &mut out)
        .unwrap()
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// The entries of one function in an exported audit log.
fn audit_entries_of(text: &str, function: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.contains(&format!("\"function\":\"{function}\"")))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn audit_log_records_key_use_and_detects_tampering() {
    let f = Fixture::new();
    let h = user_session();
    let mut t = aes_key(b"audited-key");
    t.push((CKA_TOKEN, V::B(true)));
    let k = create(h, &t).unwrap();
    assert!(encrypt_ecb(h, k).is_ok());
    assert_eq!(login(h, CKU_USER, b"wrong-pin"), CKR_USER_ALREADY_LOGGED_IN);
    assert_eq!(destroy(h, k), CKR_OK);
    assert_eq!(close(h), CKR_OK);
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"wrong-pin"), CKR_PIN_INCORRECT);
    assert_eq!(close(h), CKR_OK);
    f.finalize(); // flushes the queue

    let store = strongroom_pkcs11::admin::open_store().unwrap();
    let mut out = Vec::new();
    let n = strongroom_pkcs11::admin::audit_export(&store, &mut out)
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(n >= 6, "{text}");
    for needle in [
        "\"function\":\"C_InitToken\"",
        "\"function\":\"C_InitPIN\"",
        "\"function\":\"C_CreateObject\"",
        "\"function\":\"C_EncryptInit\"",
        "\"function\":\"C_DestroyObject\"",
        "\"label\":\"audited-key\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // The failed login is there with its code and the user it tried.
    assert!(
        text.lines().any(|l| l.contains("C_Login")
            && l.contains(&format!("\"rv\":{}", CKR_PIN_INCORRECT))
            && l.contains("\"user\":\"user\"")),
        "{text}"
    );
    assert!(
        !text.contains("wrong-pin") && !text.contains(std::str::from_utf8(USER_PIN).unwrap()),
        "no PIN in the log"
    );

    // Change one byte of one entry: verification names that entry.
    let db =
        std::path::PathBuf::from(std::env::var("STRONGROOM_STORE").unwrap()).join("strongroom.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    let (seq, mut entry): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT seq, entry FROM audit ORDER BY seq LIMIT 1 OFFSET 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    entry[5] ^= 1;
    conn.execute(
        "UPDATE audit SET entry=?1 WHERE seq=?2",
        rusqlite::params![entry, seq],
    )
    .unwrap();
    match strongroom_pkcs11::admin::audit_verify(&store).unwrap() {
        strongroom_pkcs11::admin::AuditCheck::Broken { at_seq } => assert_eq!(at_seq, seq),
        strongroom_pkcs11::admin::AuditCheck::Intact { .. } => panic!("tampering not detected"),
    }
    // Restore it; rotation then keeps the rest verifiable.
    entry[5] ^= 1;
    conn.execute(
        "UPDATE audit SET entry=?1 WHERE seq=?2",
        rusqlite::params![entry, seq],
    )
    .unwrap();
    assert!(matches!(
        strongroom_pkcs11::admin::audit_rotate(&store, seq).unwrap(),
        Ok(())
    ));
    match strongroom_pkcs11::admin::audit_verify(&store).unwrap() {
        strongroom_pkcs11::admin::AuditCheck::Intact { entries } => {
            assert_eq!(entries, n - seq as usize)
        }
        strongroom_pkcs11::admin::AuditCheck::Broken { at_seq } => {
            panic!("broken at {at_seq} after rotation")
        }
    }
}

// ----- backup and restore -------------------------------------------------------

#[test]
fn backup_restores_into_a_new_store_and_refuses_tampering() {
    let f = Fixture::new();
    let h = user_session();
    let mut t = aes_key(b"backed-up");
    t.push((CKA_TOKEN, V::B(true)));
    let k = create(h, &t).unwrap();
    let expected = encrypt_ecb(h, k).unwrap();
    assert_eq!(close(h), CKR_OK);
    f.finalize();

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("store.srbk");
    let size = strongroom_pkcs11::admin::backup(&file, b"backup passphrase").unwrap();
    assert!(size > 100);
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(9).any(|w| w == b"backed-up"),
        "no plaintext in the backup"
    );

    // Tampered and truncated copies are refused and write nothing.
    let target = work.path().join("restored");
    std::env::set_var("STRONGROOM_STORE", &target);
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let bad_file = work.path().join("bad.srbk");
    std::fs::write(&bad_file, &bad).unwrap();
    assert!(strongroom_pkcs11::admin::restore(&bad_file, b"backup passphrase").is_err());
    std::fs::write(&bad_file, &bytes[..bytes.len() - 10]).unwrap();
    assert!(strongroom_pkcs11::admin::restore(&bad_file, b"backup passphrase").is_err());
    assert!(strongroom_pkcs11::admin::restore(&file, b"wrong passphrase").is_err());
    assert!(
        !target.join("strongroom.db").exists(),
        "a refused restore writes nothing"
    );

    // The real one restores; the key works there exactly as before.
    strongroom_pkcs11::admin::restore(&file, b"backup passphrase").unwrap();
    assert!(
        strongroom_pkcs11::admin::restore(&file, b"backup passphrase").is_err(),
        "never over a store"
    );
    f.initialize();
    let h = open(0, RW).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let found = find(h, &[(CKA_LABEL, V::S(b"backed-up"))]);
    assert_eq!(found.len(), 1);
    assert_eq!(encrypt_ecb(h, found[0]).unwrap(), expected);
    assert_eq!(close(h), CKR_OK);
}

// ----- multi-part message-based AES-GCM (v3.0 §5.13) --------------------------

#[test]
fn message_gcm_multi_part_matches_single_part() {
    let _f = Fixture::new();
    let h = user_session();
    let k = create(h, &aes_key(b"msg-key")).unwrap();
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let psize = std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
    let aad = b"header".to_vec();
    let msg = b"a message in three parts, encrypted as one".to_vec();

    // Single-part with a fixed IV: the reference ciphertext and tag.
    // SAFETY: the mechanism outlives the call.
    assert_eq!(unsafe { C_MessageEncryptInit(h, &mut mech, k) }, CKR_OK);
    let mut iv = [9u8; 12];
    let mut tag = [0u8; 16];
    let mut p = CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvFixedBits: 0,
        ivGenerator: CKG_NO_GENERATE,
        pTag: tag.as_mut_ptr(),
        ulTagBits: 128,
    };
    let mut ct = vec![0u8; msg.len()];
    let mut n = ct.len() as CK_ULONG;
    let mut m2 = msg.clone();
    let mut a2 = aad.clone();
    // SAFETY: every buffer outlives the call and has the stated length.
    let rv = unsafe {
        C_EncryptMessage(
            h,
            &mut p as *mut _ as *mut c_void,
            psize,
            a2.as_mut_ptr(),
            a2.len() as CK_ULONG,
            m2.as_mut_ptr(),
            m2.len() as CK_ULONG,
            ct.as_mut_ptr(),
            &mut n,
        )
    };
    assert_eq!(rv, CKR_OK);
    let reference = (ct.clone(), tag);
    // SAFETY: plain value argument.
    assert_eq!(unsafe { C_MessageEncryptFinal(h) }, CKR_OK);

    // Multi-part with the same IV (a new operation): same bytes.
    // SAFETY: as above.
    assert_eq!(unsafe { C_MessageEncryptInit(h, &mut mech, k) }, CKR_OK);
    let mut tag2 = [0u8; 16];
    p.pTag = tag2.as_mut_ptr();
    // SAFETY: as above.
    let rv = unsafe {
        C_EncryptMessageBegin(
            h,
            &mut p as *mut _ as *mut c_void,
            psize,
            a2.as_mut_ptr(),
            a2.len() as CK_ULONG,
        )
    };
    assert_eq!(rv, CKR_OK);
    let mut out = Vec::new();
    for (i, chunk) in msg.chunks(16).enumerate() {
        let last = (i + 1) * 16 >= msg.len();
        let mut c = chunk.to_vec();
        let mut buf = vec![0u8; msg.len()];
        let mut n = buf.len() as CK_ULONG;
        // SAFETY: as above.
        let rv = unsafe {
            C_EncryptMessageNext(
                h,
                &mut p as *mut _ as *mut c_void,
                psize,
                c.as_mut_ptr(),
                c.len() as CK_ULONG,
                buf.as_mut_ptr(),
                &mut n,
                if last { CKF_END_OF_MESSAGE } else { 0 },
            )
        };
        assert_eq!(rv, CKR_OK);
        out.extend_from_slice(&buf[..n as usize]);
    }
    assert_eq!(out, reference.0);
    assert_eq!(tag2, reference.1);
    // SAFETY: plain value argument.
    assert_eq!(unsafe { C_MessageEncryptFinal(h) }, CKR_OK);

    // Multi-part decryption gives the message back; a bad tag gives nothing.
    for (good, want) in [(true, CKR_OK), (false, CKR_ENCRYPTED_DATA_INVALID)] {
        // SAFETY: as above.
        assert_eq!(unsafe { C_MessageDecryptInit(h, &mut mech, k) }, CKR_OK);
        let mut t = reference.1;
        if !good {
            t[0] ^= 1;
        }
        p.pTag = t.as_mut_ptr();
        // SAFETY: as above.
        let rv = unsafe {
            C_DecryptMessageBegin(
                h,
                &mut p as *mut _ as *mut c_void,
                psize,
                a2.as_mut_ptr(),
                a2.len() as CK_ULONG,
            )
        };
        assert_eq!(rv, CKR_OK);
        let mut plain = Vec::new();
        let mut last_rv = CKR_OK;
        let chunks: Vec<&[u8]> = reference.0.chunks(20).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let mut c = chunk.to_vec();
            let mut buf = vec![0u8; msg.len()];
            let mut n = buf.len() as CK_ULONG;
            // SAFETY: as above.
            last_rv = unsafe {
                C_DecryptMessageNext(
                    h,
                    &mut p as *mut _ as *mut c_void,
                    psize,
                    c.as_mut_ptr(),
                    c.len() as CK_ULONG,
                    buf.as_mut_ptr(),
                    &mut n,
                    if last { CKF_END_OF_MESSAGE } else { 0 },
                )
            };
            if last_rv == CKR_OK {
                plain.extend_from_slice(&buf[..n as usize]);
            }
        }
        assert_eq!(last_rv, want);
        if good {
            assert_eq!(plain, msg);
        } else {
            assert!(plain.is_empty(), "no plaintext before the tag verifies");
        }
        // SAFETY: plain value argument.
        assert_eq!(unsafe { C_MessageDecryptFinal(h) }, CKR_OK);
    }
    assert_eq!(close(h), CKR_OK);
}

#[test]
fn an_emptied_share_list_shares_nothing() {
    let _f = Fixture::new();
    let slot = ready_token();
    let so = open(slot, RW).unwrap();
    assert_eq!(login(so, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(so, b"app1:secret-1"), CKR_OK);
    assert_eq!(close(so), CKR_OK);
    let h = open(slot, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_OK);
    let mut t = aes_key(b"unshared");
    t.push((CKA_TOKEN, V::B(true)));
    let k = create(h, &t).unwrap();
    for list in [&b""[..], b",", b"app2,", b" , "] {
        assert_eq!(
            set_attrs(h, k, &[(CKA_SR_SHARED_WITH, V::Raw(list.to_vec()))]),
            CKR_OK
        );
        assert_eq!(logout(h), CKR_OK);
        assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
        assert!(
            find(h, &[(CKA_LABEL, V::S(b"unshared"))]).is_empty(),
            "{list:?} shared with the default user"
        );
        assert_eq!(encrypt_ecb(h, k), Err(CKR_KEY_HANDLE_INVALID));
        assert_eq!(logout(h), CKR_OK);
        assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_OK);
    }
    assert_eq!(close(h), CKR_OK);
}

#[test]
fn audit_log_covers_every_kind_of_event() {
    let f = Fixture::new();
    let slot = ready_token();
    let so = open(slot, RW).unwrap();
    assert_eq!(login(so, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(so, b"app1:secret-1"), CKR_OK); // user change
    assert_eq!(close(so), CKR_OK);
    let h = open(slot, RW).unwrap();
    assert_eq!(login(h, CKU_USER, b"app1:wrong"), CKR_PIN_INCORRECT); // failed login
    assert_eq!(login(h, CKU_USER, b"app1:secret-1"), CKR_OK);
    // Key generation.
    let mut gen = CK_MECHANISM {
        mechanism: CKM_AES_KEY_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut t = Template::new(&[
        (CKA_VALUE_LEN, V::U(32)),
        (CKA_LABEL, V::S(b"kek")),
        (CKA_WRAP, V::B(true)),
        (CKA_UNWRAP, V::B(true)),
    ]);
    let mut kek = 0;
    // SAFETY: mechanism, template and out-pointer outlive the call.
    assert_eq!(
        unsafe { C_GenerateKey(h, &mut gen, t.ptr(), t.len(), &mut kek) },
        CKR_OK
    );
    // Import, then wrap and unwrap it.
    let target = create(h, &aes_key(b"target")).unwrap();
    let mut kw = CK_MECHANISM {
        mechanism: CKM_AES_KEY_WRAP,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut wrapped = [0u8; 40];
    let mut n: CK_ULONG = 40;
    // SAFETY: buffers outlive the call.
    assert_eq!(
        unsafe { C_WrapKey(h, &mut kw, kek, target, wrapped.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    let mut ut = Template::new(&[
        (CKA_CLASS, V::U(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, V::U(CKK_AES)),
    ]);
    let mut unwrapped = 0;
    // SAFETY: as above.
    let rv = unsafe {
        C_UnwrapKey(
            h,
            &mut kw,
            kek,
            wrapped.as_mut_ptr(),
            n,
            ut.ptr(),
            ut.len(),
            &mut unwrapped,
        )
    };
    assert_eq!(rv, CKR_OK);
    // A MAC (sign) and a decryption.
    let mut cmac = CK_MECHANISM {
        mechanism: CKM_AES_CMAC,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { C_SignInit(h, &mut cmac, target) }, CKR_OK);
    let mut data = [1u8; 16];
    let mut mac = [0u8; 16];
    let mut n: CK_ULONG = 16;
    // SAFETY: as above.
    assert_eq!(
        unsafe { C_Sign(h, data.as_mut_ptr(), 16, mac.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    let mut ecb = CK_MECHANISM {
        mechanism: CKM_AES_ECB,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { C_DecryptInit(h, &mut ecb, target) }, CKR_OK);
    let mut n: CK_ULONG = 16;
    // SAFETY: as above.
    assert_eq!(
        unsafe { C_Decrypt(h, data.as_mut_ptr(), 16, mac.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    // Share, destroy, logout.
    assert_eq!(
        set_attrs(h, target, &[(CKA_SR_SHARED_WITH, V::S(b"app2"))]),
        CKR_OK
    );
    assert_eq!(destroy(h, unwrapped), CKR_OK);
    assert_eq!(logout(h), CKR_OK);
    assert_eq!(close(h), CKR_OK);
    f.finalize();

    let text = exported_audit_log();
    let has = |function: &str, extra: &str| {
        text.lines()
            .any(|l| l.contains(&format!("\"function\":\"{function}\"")) && l.contains(extra))
    };
    assert!(has("C_InitPIN", "\"user\":\"so\""), "{text}");
    assert!(
        has("C_Login", &format!("\"rv\":{}", CKR_PIN_INCORRECT)),
        "{text}"
    );
    assert!(has("C_Login", "\"user\":\"app1\""), "{text}");
    assert!(
        has("C_GenerateKey", &format!("\"mechanism\":{CKM_AES_KEY_GEN}")),
        "{text}"
    );
    assert!(has("C_CreateObject", "\"user\":\"app1\""), "{text}");
    assert!(has("C_WrapKey", "\"label\":\"kek\""), "{text}");
    assert!(has("C_UnwrapKey", "\"label\":\"kek\""), "{text}");
    assert!(
        has("C_SignInit", &format!("\"mechanism\":{CKM_AES_CMAC}")),
        "{text}"
    );
    assert!(has("C_DecryptInit", "\"label\":\"target\""), "{text}");
    assert!(has("C_SetAttributeValue", "\"label\":\"target\""), "{text}");
    assert!(has("C_DestroyObject", "\"user\":\"app1\""), "{text}");
    assert!(has("C_Logout", "\"user\":\"app1\""), "{text}");
    for line in text.lines() {
        assert!(
            line.contains("\"pid\":") && line.contains("\"time_ms\":"),
            "{line}"
        );
    }
    assert!(
        !text.contains("secret-1") && !text.contains("wrong"),
        "no PIN in the log"
    );
}

/// C_UnwrapKey of `wrapped` under `kek` with CKA_TOKEN = `token`.
fn unwrap_aes(
    h: CK_SESSION_HANDLE,
    kek: CK_OBJECT_HANDLE,
    wrapped: &mut [u8],
    token: bool,
) -> CK_RV {
    let mut kw = CK_MECHANISM {
        mechanism: CKM_AES_KEY_WRAP,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut t = Template::new(&[
        (CKA_CLASS, V::U(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, V::U(CKK_AES)),
        (CKA_TOKEN, V::B(token)),
    ]);
    let mut out = 0;
    // SAFETY: mechanism, buffers and template outlive the call.
    unsafe {
        C_UnwrapKey(
            h,
            &mut kw,
            kek,
            wrapped.as_mut_ptr(),
            wrapped.len() as CK_ULONG,
            t.ptr(),
            t.len(),
            &mut out,
        )
    }
}

#[test]
fn unwraps_into_session_objects_are_counted_unwraps_into_the_token_are_not() {
    let f = Fixture::new();
    let h = user_session();
    let mut kek_t = aes_key(b"unwrap-kek");
    kek_t.push((CKA_WRAP, V::B(true)));
    kek_t.push((CKA_UNWRAP, V::B(true)));
    let kek = create(h, &kek_t).unwrap();
    let target = create(h, &aes_key(b"unwrap-target")).unwrap();
    let mut kw = CK_MECHANISM {
        mechanism: CKM_AES_KEY_WRAP,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut wrapped = [0u8; 40];
    let mut n: CK_ULONG = 40;
    // SAFETY: buffers outlive the call.
    assert_eq!(
        unsafe { C_WrapKey(h, &mut kw, kek, target, wrapped.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    for _ in 0..5 {
        assert_eq!(unwrap_aes(h, kek, &mut wrapped, false), CKR_OK);
    }
    assert_eq!(unwrap_aes(h, kek, &mut wrapped, true), CKR_OK);
    assert_eq!(unwrap_aes(h, kek, &mut wrapped, true), CKR_OK);
    assert_eq!(close(h), CKR_OK);
    f.finalize();

    let text = exported_audit_log();
    let unwraps = audit_entries_of(&text, "C_UnwrapKey");
    let counted: Vec<_> = unwraps
        .iter()
        .filter(|e| e.get("count").is_some())
        .collect();
    let single = unwraps.len() - counted.len();
    assert_eq!(counted.len(), 1, "{text}");
    assert_eq!(counted[0]["count"], 5, "{text}");
    assert_eq!(counted[0]["label"], "unwrap-kek");
    assert_eq!(single, 2, "one entry per unwrap into the token: {text}");
}

#[test]
fn repeated_key_uses_are_counted_in_one_audit_entry() {
    let f = Fixture::new();
    let h = user_session();
    let k = create(h, &aes_key(b"hot-key")).unwrap();
    for _ in 0..300 {
        assert!(encrypt_ecb(h, k).is_ok());
    }
    // A failing use is not folded into the successful ones.
    let mut ecb = CK_MECHANISM {
        mechanism: CKM_AES_ECB,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: the mechanism outlives the call.
    assert_eq!(unsafe { C_SignInit(h, &mut ecb, k) }, CKR_MECHANISM_INVALID);
    assert_eq!(close(h), CKR_OK);
    f.finalize();

    let text = exported_audit_log();
    let uses = audit_entries_of(&text, "C_EncryptInit");
    // Every use is accounted for, in far fewer entries than uses.
    let total: u64 = uses
        .iter()
        .map(|e| e.get("count").map_or(1, |c| c.as_u64().unwrap()))
        .sum();
    assert_eq!(total, 300, "{text}");
    assert!(uses.len() < 10, "{} entries for 300 uses", uses.len());
    for e in &uses {
        assert_eq!(e["label"], "hot-key");
        assert_eq!(e["rv"], 0);
        assert_eq!(e["mechanism"], CKM_AES_ECB);
        if e.get("count").is_some() {
            assert!(e["last_ms"].as_u64().unwrap() >= e["time_ms"].as_u64().unwrap());
        }
    }
    assert!(
        text.lines()
            .any(|l| l.contains("\"function\":\"C_SignInit\"")
                && l.contains(&format!("\"rv\":{CKR_MECHANISM_INVALID}"))
                && !l.contains("\"count\"")),
        "{text}"
    );
}

/// C_EncryptInit with AES-ECB on `k`, ended again at once.
fn ecb_init(h: CK_SESSION_HANDLE, k: CK_OBJECT_HANDLE) -> CK_RV {
    let mut ecb = CK_MECHANISM {
        mechanism: CKM_AES_ECB,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: the mechanism outlives the call.
    let rv = unsafe { C_EncryptInit(h, &mut ecb, k) };
    if rv == CKR_OK {
        // SAFETY: a NULL mechanism cancels the operation.
        assert_eq!(unsafe { C_EncryptInit(h, null_mut(), k) }, CKR_OK);
    }
    rv
}

#[test]
fn a_key_used_before_is_checked_again_after_any_change() {
    let _f = Fixture::new();
    let a = user_session();
    let b = open(0, RW).unwrap();
    let mut session_key = aes_key(b"cached");
    session_key.push((CKA_ENCRYPT, V::B(true)));
    let mut token_key = session_key.clone();
    token_key.push((CKA_TOKEN, V::B(true)));
    for template in [session_key, token_key] {
        let k = create(a, &template).unwrap();
        // Used twice (the second use comes from session a's key cache) ...
        assert_eq!(ecb_init(a, k), CKR_OK);
        assert_eq!(ecb_init(a, k), CKR_OK);
        // ... then changed through another session: a sees the change.
        assert_eq!(set_attrs(b, k, &[(CKA_ENCRYPT, V::B(false))]), CKR_OK);
        assert_eq!(ecb_init(a, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
        assert_eq!(set_attrs(b, k, &[(CKA_ENCRYPT, V::B(true))]), CKR_OK);
        assert_eq!(ecb_init(a, k), CKR_OK);
        // Logged out, the private key is gone from view; back in, usable.
        assert_eq!(logout(b), CKR_OK);
        assert_eq!(ecb_init(a, k), CKR_KEY_HANDLE_INVALID);
        assert_eq!(login(b, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(ecb_init(a, k), CKR_OK);
        // Destroyed elsewhere: invalid here at once.
        assert_eq!(destroy(b, k), CKR_OK);
        assert_eq!(ecb_init(a, k), CKR_KEY_HANDLE_INVALID);
    }
    assert_eq!(close(b), CKR_OK);
    assert_eq!(close(a), CKR_OK);
}

#[test]
fn a_retry_after_buffer_too_small_with_other_data_answers_for_that_data() {
    let _f = Fixture::new();
    let h = user_session();
    let mut t = aes_key(b"cbc-pad");
    t.push((CKA_ENCRYPT, V::B(true)));
    t.push((CKA_DECRYPT, V::B(true)));
    let k = create(h, &t).unwrap();
    let mut iv = [7u8; 16];
    let mut cbc = CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: iv.as_mut_ptr() as *mut c_void,
        ulParameterLen: 16,
    };
    let mut encrypt = |msg: &[u8]| -> Vec<u8> {
        let mut input = msg.to_vec();
        let mut out = [0u8; 64];
        let mut n: CK_ULONG = 64;
        // SAFETY: mechanism and buffers outlive the calls.
        unsafe {
            assert_eq!(C_EncryptInit(h, &mut cbc, k), CKR_OK);
            assert_eq!(
                C_Encrypt(
                    h,
                    input.as_mut_ptr(),
                    input.len() as CK_ULONG,
                    out.as_mut_ptr(),
                    &mut n
                ),
                CKR_OK
            );
        }
        out[..n as usize].to_vec()
    };
    let (m1, m2) = (
        b"first message, 20 b".to_vec(),
        b"second one: 21 bytes!".to_vec(),
    );
    let (mut c1, mut c2) = (encrypt(&m1), encrypt(&m2));
    let mut cbc = CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: iv.as_mut_ptr() as *mut c_void,
        ulParameterLen: 16,
    };
    let mut out = [0u8; 64];
    let mut n: CK_ULONG = 4;
    // SAFETY: as above.
    unsafe {
        assert_eq!(C_DecryptInit(h, &mut cbc, k), CKR_OK);
        assert_eq!(
            C_Decrypt(
                h,
                c1.as_mut_ptr(),
                c1.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n
            ),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n as usize, m1.len());
        // The retry brings other data: its plaintext, not the first one's.
        n = 64;
        assert_eq!(
            C_Decrypt(
                h,
                c2.as_mut_ptr(),
                c2.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n
            ),
            CKR_OK
        );
    }
    assert_eq!(&out[..n as usize], &m2[..]);
    // The same data again after a short buffer gets the kept result.
    let mut n: CK_ULONG = 4;
    // SAFETY: as above.
    unsafe {
        assert_eq!(C_DecryptInit(h, &mut cbc, k), CKR_OK);
        assert_eq!(
            C_Decrypt(
                h,
                c1.as_mut_ptr(),
                c1.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n
            ),
            CKR_BUFFER_TOO_SMALL
        );
        n = 64;
        assert_eq!(
            C_Decrypt(
                h,
                c1.as_mut_ptr(),
                c1.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n
            ),
            CKR_OK
        );
    }
    assert_eq!(&out[..n as usize], &m1[..]);
    assert_eq!(close(h), CKR_OK);
}

#[test]
fn generic_secret_generation_makes_the_hmac_key_type_the_template_names() {
    let _f = Fixture::new();
    let h = user_session();
    let mut gen = CK_MECHANISM {
        mechanism: CKM_GENERIC_SECRET_KEY_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    for (asked, made) in [
        (None, CKK_GENERIC_SECRET),
        (Some(CKK_SHA256_HMAC), CKK_SHA256_HMAC),
        (Some(CKK_SHA512_HMAC), CKK_SHA512_HMAC),
    ] {
        let mut items = vec![(CKA_VALUE_LEN, V::U(32))];
        if let Some(t) = asked {
            items.push((CKA_KEY_TYPE, V::U(t)));
        }
        let mut t = Template::new(&items);
        let mut k = 0;
        // SAFETY: mechanism, template and out-pointer outlive the call.
        assert_eq!(
            unsafe { C_GenerateKey(h, &mut gen, t.ptr(), t.len(), &mut k) },
            CKR_OK,
            "{asked:?}"
        );
        let kt = get(h, k, CKA_KEY_TYPE).unwrap();
        assert_eq!(
            CK_KEY_TYPE::from_ne_bytes(kt.try_into().unwrap()),
            made,
            "{asked:?}"
        );
    }
    assert_eq!(close(h), CKR_OK);
}
