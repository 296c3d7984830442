//! Conformance: the behaviours google/pkcs11test asserts (init.cc, slot.cc,
//! session.cc, login.cc, object.cc, key.cc, keypair.cc, cipher.cc,
//! digest.cc, sign.cc, hmac.cc, rng.cc, dual.cc, tookan.cc), checked against
//! the PKCS#11 v2.40/v3.0 base specification, as in-process calls of the
//! exported `C_*` functions with exact `CK_RV` codes. One test per group of
//! behaviours.
//!
//! Where pkcs11test and the specification disagree the specification wins
//! and the test says so (DES, not offered by this token, is left out).
//!
//! The rules for when an operation ends (v3.0 §5.8-§5.12, the same words in
//! v2.40 §5.8-§5.12):
//! - a single-part call (C_Encrypt, C_Digest, C_Sign...) or a final call
//!   ends the operation unless it returns CKR_BUFFER_TOO_SMALL or is a
//!   successful length query; C_Verify and C_VerifyFinal always end it;
//! - an update call ends it on any error (CKR_BUFFER_TOO_SMALL excepted for
//!   the ones with output);
//! - a single-part call "cannot be used to terminate a multi-part operation":
//!   during one it returns CKR_OPERATION_ACTIVE and the multi-part operation
//!   goes on;
//! - C_*Init with a NULL mechanism ends an active operation (v3.0).

mod common;

use common::*;
use cryptoki_sys::*;
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::ptr::null_mut;
use strongroom_pkcs11::ffi::exports::*;

/// The values pkcs11test uses for handles that name nothing.
const BAD_SLOT: CK_SLOT_ID = 88888;
const BAD_SESSION: CK_SESSION_HANDLE = 99999;
const BAD_OBJECT: CK_OBJECT_HANDLE = 77777;

const RO: CK_FLAGS = CKF_SERIAL_SESSION;
const RW: CK_FLAGS = CKF_SERIAL_SESSION | CKF_RW_SESSION;

// ----- general purpose functions (init.cc) ------------------------------------------

fn init_args(flags: CK_FLAGS, reserved: *mut c_void) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags,
        pReserved: reserved,
    }
}

fn initialize(args: &mut CK_C_INITIALIZE_ARGS) -> CK_RV {
    // SAFETY: `args` is a valid CK_C_INITIALIZE_ARGS that outlives the call.
    unsafe { C_Initialize(args as *mut CK_C_INITIALIZE_ARGS as *mut c_void) }
}

fn finalize() -> CK_RV {
    // SAFETY: NULL is the only valid argument.
    unsafe { C_Finalize(null_mut()) }
}

#[test]
fn initialize_finalize_and_info() {
    let _store = Store::fresh();
    // C_Finalize before C_Initialize (init.cc UnexpectedFinalize).
    assert_eq!(finalize(), CKR_CRYPTOKI_NOT_INITIALIZED);
    // C_GetInfo before C_Initialize (init.cc GetInfoNoInit).
    // SAFETY: CK_INFO is plain data.
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { C_GetInfo(&mut info) },
        CKR_CRYPTOKI_NOT_INITIALIZED
    );

    // pReserved must be NULL (v3.0 §5.4; init.cc InitArgsBadReserved passes
    // the pointer value 1, which must not be followed).
    assert_eq!(
        initialize(&mut init_args(0, std::ptr::dangling_mut::<c_void>())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(finalize(), CKR_CRYPTOKI_NOT_INITIALIZED);

    // The library creates no threads of its own that it cannot do without.
    let rv = initialize(&mut init_args(
        CKF_LIBRARY_CANT_CREATE_OS_THREADS,
        null_mut(),
    ));
    assert!(
        rv == CKR_OK || rv == CKR_NEED_TO_CREATE_THREADS,
        "CKF_LIBRARY_CANT_CREATE_OS_THREADS: {rv:#x}"
    );
    if rv == CKR_OK {
        assert_eq!(finalize(), CKR_OK);
    }
    // Zeroed arguments and CKF_OS_LOCKING_OK (InitArgsNoLock, InternalLocks).
    for flags in [0, CKF_OS_LOCKING_OK] {
        assert_eq!(initialize(&mut init_args(flags, null_mut())), CKR_OK);
        assert_eq!(finalize(), CKR_OK);
    }

    // SAFETY: NULL arguments are allowed.
    assert_eq!(unsafe { C_Initialize(null_mut()) }, CKR_OK);
    // SAFETY: as above (InitNestedFail).
    assert_eq!(
        unsafe { C_Initialize(null_mut()) },
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    // C_Finalize with a non-NULL pReserved (FailedTermination): refused, and
    // the library stays initialized.
    // SAFETY: the pointer must be refused without being followed.
    assert_eq!(
        unsafe { C_Finalize(std::ptr::dangling_mut::<c_void>()) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetInfo(&mut info) }, CKR_OK);
    assert!(info.cryptokiVersion.major >= 2);
    // SAFETY: NULL output pointer must be refused.
    assert_eq!(unsafe { C_GetInfo(null_mut()) }, CKR_ARGUMENTS_BAD);
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetFunctionList(&mut list) }, CKR_OK);
    assert!(!list.is_null());
    // SAFETY: NULL output pointer must be refused.
    assert_eq!(unsafe { C_GetFunctionList(null_mut()) }, CKR_ARGUMENTS_BAD);
    assert_eq!(finalize(), CKR_OK);
    assert_eq!(finalize(), CKR_CRYPTOKI_NOT_INITIALIZED);
}

#[test]
fn everything_before_initialize_is_not_initialized() {
    let _store = Store::fresh();
    let mut n: CK_ULONG = 0;
    let mut label = label32("x");
    let mut seed = [1u8; 8];
    // SAFETY: every pointer is valid; none may be used before C_Initialize.
    unsafe {
        // SAFETY: plain data.
        let mut slot_info: CK_SLOT_INFO = std::mem::zeroed();
        // SAFETY: plain data.
        let mut token_info: CK_TOKEN_INFO = std::mem::zeroed();
        // SAFETY: plain data.
        let mut mech_info: CK_MECHANISM_INFO = std::mem::zeroed();
        let mut slot: CK_SLOT_ID = 0;
        let mut h = 0;
        let pin = USER_PIN.as_ptr() as *mut u8;
        let pin_len = USER_PIN.len() as CK_ULONG;
        for (what, rv) in [
            ("C_GetSlotList", C_GetSlotList(CK_FALSE, null_mut(), &mut n)),
            ("C_GetSlotInfo", C_GetSlotInfo(SLOT, &mut slot_info)),
            ("C_GetTokenInfo", C_GetTokenInfo(SLOT, &mut token_info)),
            (
                "C_WaitForSlotEvent",
                C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut()),
            ),
            (
                "C_GetMechanismList",
                C_GetMechanismList(SLOT, null_mut(), &mut n),
            ),
            (
                "C_GetMechanismInfo",
                C_GetMechanismInfo(SLOT, CKM_RSA_PKCS_KEY_PAIR_GEN, &mut mech_info),
            ),
            (
                "C_InitToken",
                C_InitToken(BAD_SLOT, pin, pin_len, label.as_mut_ptr()),
            ),
            ("C_InitPIN", C_InitPIN(BAD_SESSION, pin, pin_len)),
            (
                "C_SetPIN",
                C_SetPIN(BAD_SESSION, pin, pin_len, pin, pin_len),
            ),
            (
                "C_OpenSession",
                C_OpenSession(SLOT, RW, null_mut(), None, &mut h),
            ),
            ("C_CloseSession", C_CloseSession(1)),
            ("C_CloseAllSessions", C_CloseAllSessions(SLOT)),
            ("C_Login", C_Login(1, CKU_USER, pin, pin_len)),
            (
                "C_SeedRandom",
                C_SeedRandom(BAD_SESSION, seed.as_mut_ptr(), 8),
            ),
            (
                "C_GenerateRandom",
                C_GenerateRandom(BAD_SESSION, seed.as_mut_ptr(), 8),
            ),
        ] {
            assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED, "{what}");
        }
    }
}

// ----- slots and tokens (slot.cc) ------------------------------------------------------

fn padded(field: &[u8]) -> bool {
    field.iter().all(|b| (0x20..0x7f).contains(b))
}

#[test]
fn slot_and_token_queries() {
    let _f = token();
    let mut count: CK_ULONG = 0;
    // SAFETY: NULL list asks for the count.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, null_mut(), &mut count) },
        CKR_OK
    );
    assert!(count >= 1);
    let n = count as usize;
    // Too small (a non-NULL buffer of count - 1 entries, at least one
    // pointer's worth so it is never NULL): the count and BUFFER_TOO_SMALL.
    let mut slots = vec![0 as CK_SLOT_ID; n + 3];
    let mut small = count - 1;
    // SAFETY: `slots` holds more than `small` entries.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut small) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(small, count);
    // Over-allocated: OK and the exact count.
    let mut large = count + 3;
    // SAFETY: `slots` holds `count + 3` entries.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut large) },
        CKR_OK
    );
    assert_eq!(large, count);
    // SAFETY: NULL count pointer must be refused.
    assert_eq!(
        unsafe { C_GetSlotList(CK_FALSE, null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    let all: BTreeSet<_> = slots[..n].iter().copied().collect();
    let mut present_count: CK_ULONG = 0;
    // SAFETY: NULL list asks for the count.
    assert_eq!(
        unsafe { C_GetSlotList(CK_TRUE, null_mut(), &mut present_count) },
        CKR_OK
    );
    let mut present = vec![0 as CK_SLOT_ID; present_count as usize];
    // SAFETY: `present` holds `present_count` entries.
    assert_eq!(
        unsafe { C_GetSlotList(CK_TRUE, present.as_mut_ptr(), &mut present_count) },
        CKR_OK
    );
    for id in &present {
        assert!(
            all.contains(id),
            "slot {id} with a token is not in the full list"
        );
    }
    for &id in &slots[..n] {
        // SAFETY: plain data.
        let mut si: CK_SLOT_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { C_GetSlotInfo(id, &mut si) }, CKR_OK);
        assert!(padded(&si.slotDescription) && padded(&si.manufacturerID));
        assert_eq!(
            si.flags & !(CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT),
            0
        );
        // SAFETY: NULL output must be refused.
        assert_eq!(unsafe { C_GetSlotInfo(id, null_mut()) }, CKR_ARGUMENTS_BAD);
        if si.flags & CKF_TOKEN_PRESENT != 0 {
            // SAFETY: plain data.
            let mut ti: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
            // SAFETY: valid out-pointer.
            assert_eq!(unsafe { C_GetTokenInfo(id, &mut ti) }, CKR_OK);
            for field in [
                &ti.label[..],
                &ti.manufacturerID,
                &ti.model,
                &ti.serialNumber,
            ] {
                assert!(padded(field), "token info field not blank-padded");
            }
            let known = CKF_RNG
                | CKF_WRITE_PROTECTED
                | CKF_LOGIN_REQUIRED
                | CKF_USER_PIN_INITIALIZED
                | CKF_RESTORE_KEY_NOT_NEEDED
                | CKF_CLOCK_ON_TOKEN
                | CKF_PROTECTED_AUTHENTICATION_PATH
                | CKF_DUAL_CRYPTO_OPERATIONS
                | CKF_TOKEN_INITIALIZED
                | CKF_SECONDARY_AUTHENTICATION
                | CKF_USER_PIN_COUNT_LOW
                | CKF_USER_PIN_FINAL_TRY
                | CKF_USER_PIN_LOCKED
                | CKF_USER_PIN_TO_BE_CHANGED
                | CKF_SO_PIN_COUNT_LOW
                | CKF_SO_PIN_FINAL_TRY
                | CKF_SO_PIN_LOCKED
                | CKF_SO_PIN_TO_BE_CHANGED;
            assert_eq!(ti.flags & !known, 0, "unknown token flags");
            // The dual-function calls are not offered (see
            // unsupported_functions), so the flag must not be set.
            assert_eq!(ti.flags & CKF_DUAL_CRYPTO_OPERATIONS, 0);
            // SAFETY: NULL output must be refused.
            assert_eq!(unsafe { C_GetTokenInfo(id, null_mut()) }, CKR_ARGUMENTS_BAD);
        } else {
            // SAFETY: plain data.
            let mut ti: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
            // SAFETY: valid out-pointer.
            assert_eq!(
                unsafe { C_GetTokenInfo(id, &mut ti) },
                CKR_TOKEN_NOT_PRESENT
            );
        }
    }
    // SAFETY: plain data.
    let mut si: CK_SLOT_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: plain data.
    let mut ti: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointers.
    unsafe {
        assert_eq!(C_GetSlotInfo(BAD_SLOT, &mut si), CKR_SLOT_ID_INVALID);
        assert_eq!(C_GetTokenInfo(BAD_SLOT, &mut ti), CKR_SLOT_ID_INVALID);
    }
}

#[test]
fn mechanism_list_and_info() {
    let _f = token();
    let mut count: CK_ULONG = 0;
    // SAFETY: NULL list asks for the count.
    assert_eq!(
        unsafe { C_GetMechanismList(SLOT, null_mut(), &mut count) },
        CKR_OK
    );
    assert!(count > 1);
    let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize + 3];
    let mut small = count - 1;
    // SAFETY: `list` holds more than `small` entries.
    assert_eq!(
        unsafe { C_GetMechanismList(SLOT, list.as_mut_ptr(), &mut small) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(small, count);
    let mut large = count + 3;
    // SAFETY: `list` holds `count + 3` entries.
    assert_eq!(
        unsafe { C_GetMechanismList(SLOT, list.as_mut_ptr(), &mut large) },
        CKR_OK
    );
    assert_eq!(large, count);
    // SAFETY: NULL count pointer must be refused; invalid slot.
    unsafe {
        assert_eq!(
            C_GetMechanismList(SLOT, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetMechanismList(BAD_SLOT, null_mut(), &mut count),
            CKR_SLOT_ID_INVALID
        );
    }
    for &ty in &list[..large as usize] {
        // SAFETY: plain data.
        let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { C_GetMechanismInfo(SLOT, ty, &mut info) }, CKR_OK);
        assert!(info.ulMinKeySize <= info.ulMaxKeySize, "mechanism {ty:#x}");
        assert_ne!(info.flags, 0, "mechanism {ty:#x} can do nothing");
    }
    // SAFETY: plain data.
    let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_GetMechanismInfo(SLOT, CKM_VENDOR_DEFINED + 1, &mut info),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(
            C_GetMechanismInfo(BAD_SLOT, CKM_RSA_PKCS_KEY_PAIR_GEN, &mut info),
            CKR_SLOT_ID_INVALID
        );
        assert_eq!(
            C_GetMechanismInfo(SLOT, CKM_RSA_PKCS_KEY_PAIR_GEN, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    }
}

#[test]
fn init_token_rules() {
    let f = token();
    let s = must_open(RO);
    // An open session blocks C_InitToken (v3.0 §5.5; slot.cc TokenInitWithSession).
    assert_eq!(init_token(SLOT, SO_PIN, "again"), CKR_SESSION_EXISTS);
    assert_eq!(close(s), CKR_OK);
    assert_eq!(init_token(BAD_SLOT, SO_PIN, "again"), CKR_SLOT_ID_INVALID);
    assert_eq!(
        init_token(SLOT, b"wrong-so-pin", "again"),
        CKR_PIN_INCORRECT
    );
    // SAFETY: the PIN outlives the call; the label pointer is NULL.
    assert_eq!(
        unsafe {
            C_InitToken(
                SLOT,
                SO_PIN.as_ptr() as *mut u8,
                SO_PIN.len() as CK_ULONG,
                null_mut(),
            )
        },
        CKR_ARGUMENTS_BAD
    );
    // Re-initialization with the right PIN resets the user PIN.
    assert_eq!(init_token(SLOT, SO_PIN, "again"), CKR_OK);
    let s = must_open(RW);
    assert_eq!(login(s, CKU_USER, USER_PIN), CKR_USER_PIN_NOT_INITIALIZED);
    assert_eq!(login(s, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(init_pin(s, USER_PIN), CKR_OK);
    assert_eq!(logout(s), CKR_OK);
    assert_eq!(login(s, CKU_USER, USER_PIN), CKR_OK);
    drop(f);
}

// ----- sessions (session.cc) -----------------------------------------------------------

#[test]
fn sessions_open_close_and_info() {
    let _f = token();
    let mut h = 0;
    // SAFETY: valid out-pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_OpenSession(SLOT, 0, null_mut(), None, &mut h),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        assert_eq!(
            C_OpenSession(BAD_SLOT, RO, null_mut(), None, &mut h),
            CKR_SLOT_ID_INVALID
        );
        assert_eq!(
            C_OpenSession(SLOT, RO, null_mut(), None, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    }
    // A closed session is gone (ClosedSessionErrors).
    let s = must_open(RO);
    assert_eq!(close(s), CKR_OK);
    assert_eq!(session_info(s).err(), Some(CKR_SESSION_HANDLE_INVALID));
    assert_eq!(close(s), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(close(BAD_SESSION), CKR_SESSION_HANDLE_INVALID);

    // ParallelSessions: states and flags, login and logout reach every session.
    let (s1, s2, s3) = (must_open(RO), must_open(RO), must_open(RW));
    for (s, flags, st) in [
        (s1, RO, CKS_RO_PUBLIC_SESSION),
        (s2, RO, CKS_RO_PUBLIC_SESSION),
        (s3, RW, CKS_RW_PUBLIC_SESSION),
    ] {
        let info = session_info(s).expect("session info");
        assert_eq!((info.slotID, info.flags, info.state), (SLOT, flags, st));
    }
    assert_eq!(login(s1, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(
        [state(s1), state(s2), state(s3)],
        [
            CKS_RO_USER_FUNCTIONS,
            CKS_RO_USER_FUNCTIONS,
            CKS_RW_USER_FUNCTIONS
        ]
    );
    assert_eq!(logout(s3), CKR_OK);
    assert_eq!(
        [state(s1), state(s2), state(s3)],
        [
            CKS_RO_PUBLIC_SESSION,
            CKS_RO_PUBLIC_SESSION,
            CKS_RW_PUBLIC_SESSION
        ]
    );
    assert_eq!(close(s2), CKR_OK);
    assert!(session_info(s1).is_ok() && session_info(s3).is_ok());
    assert_eq!(session_info(s2).err(), Some(CKR_SESSION_HANDLE_INVALID));
    // SAFETY: plain value arguments.
    unsafe {
        assert_eq!(C_CloseAllSessions(BAD_SLOT), CKR_SLOT_ID_INVALID);
        assert!(session_info(s1).is_ok() && session_info(s3).is_ok());
        assert_eq!(C_CloseAllSessions(SLOT), CKR_OK);
    }
    for s in [s1, s2, s3] {
        assert_eq!(session_info(s).err(), Some(CKR_SESSION_HANDLE_INVALID));
        assert_eq!(close(s), CKR_SESSION_HANDLE_INVALID);
    }
    // SAFETY: plain value argument.
    assert_eq!(unsafe { C_CloseAllSessions(SLOT) }, CKR_OK);

    let s = must_open(RW);
    // SAFETY: NULL output must be refused.
    assert_eq!(
        unsafe { C_GetSessionInfo(s, null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        session_info(BAD_SESSION).err(),
        Some(CKR_SESSION_HANDLE_INVALID)
    );
    // Legacy parallel functions (v3.0 §5.19).
    // SAFETY: plain value arguments.
    unsafe {
        assert_eq!(C_GetFunctionStatus(s), CKR_FUNCTION_NOT_PARALLEL);
        assert_eq!(C_CancelFunction(s), CKR_FUNCTION_NOT_PARALLEL);
    }
}

// ----- login (login.cc) ------------------------------------------------------------

#[test]
fn login_rules() {
    let _f = token();
    let ro = must_open(RO);
    // An SO cannot log in while a read-only session exists (SOLoginFail).
    assert_eq!(login(ro, CKU_SO, SO_PIN), CKR_SESSION_READ_ONLY_EXISTS);
    assert_eq!(login(ro, CKU_USER, b"simply-wrong"), CKR_PIN_INCORRECT);
    assert_eq!(login(ro, CKU_USER, USER_PIN), CKR_OK);
    // UserLoginAlreadyLoggedIn.
    assert_eq!(login(ro, CKU_USER, USER_PIN), CKR_USER_ALREADY_LOGGED_IN);
    let rw = must_open(RW);
    assert_eq!(state(rw), CKS_RW_USER_FUNCTIONS);
    assert_eq!(close(ro), CKR_OK);
    // The user is still logged in through the other session. v3.0 §5.6
    // C_Login: another user is logged in -> CKR_USER_ANOTHER_ALREADY_LOGGED_IN.
    // (pkcs11test RWUserSessionTest.SOLoginFail expects
    // CKR_SESSION_READ_ONLY_EXISTS here although no read-only session is
    // open; the specification does not allow that code in this state.)
    assert_eq!(
        login(rw, CKU_SO, SO_PIN),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(logout(rw), CKR_OK);
    assert_eq!(logout(rw), CKR_USER_NOT_LOGGED_IN);
    // RWSOSessionTest.UserLoginFail.
    assert_eq!(login(rw, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(state(rw), CKS_RW_SO_FUNCTIONS);
    assert_eq!(
        login(rw, CKU_USER, USER_PIN),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(login(rw, CKU_SO, SO_PIN), CKR_USER_ALREADY_LOGGED_IN);
    // No read-only session while the SO is logged in (v3.0 §5.6 C_OpenSession).
    assert_eq!(open(RO).err(), Some(CKR_SESSION_READ_WRITE_SO_EXISTS));
    assert_eq!(logout(rw), CKR_OK);
    // Other arguments.
    assert_eq!(login(rw, 5, USER_PIN), CKR_USER_TYPE_INVALID);
    assert_eq!(
        login(BAD_SESSION, CKU_USER, USER_PIN),
        CKR_SESSION_HANDLE_INVALID
    );
    // SAFETY: a NULL PIN must be refused (no protected authentication path).
    assert_eq!(
        unsafe { C_Login(rw, CKU_USER, null_mut(), 4) },
        CKR_ARGUMENTS_BAD
    );
    // C_InitPIN only in the "R/W SO Functions" state (v3.0 §5.5).
    assert_eq!(init_pin(rw, USER_PIN), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(init_pin(rw, USER_PIN), CKR_USER_NOT_LOGGED_IN);
    // C_SetPIN needs a read/write session (v3.0 §5.5).
    let ro = must_open(RO);
    // SAFETY: both PINs outlive the call.
    assert_eq!(
        unsafe {
            C_SetPIN(
                ro,
                USER_PIN.as_ptr() as *mut u8,
                USER_PIN.len() as CK_ULONG,
                USER_PIN.as_ptr() as *mut u8,
                USER_PIN.len() as CK_ULONG,
            )
        },
        CKR_SESSION_READ_ONLY
    );
    // Closing the last session logs the user out (v3.0 §5.6 C_CloseSession).
    assert_eq!(close(ro), CKR_OK);
    assert_eq!(close(rw), CKR_OK);
    let s = must_open(RO);
    assert_eq!(state(s), CKS_RO_PUBLIC_SESSION);
}

// ----- objects (object.cc, tookan.cc, cipher.cc) ------------------------------------------

const DEADBEEF: [u8; 4] = [0xDE, 0xAD, 0xBE, 0xEF];
/// pkcs11test passes `sizeof("pkcs11test")`: the NUL is part of the value.
const APP: &[u8] = b"pkcs11test\0";

fn data_object(label: &[u8]) -> Tmpl {
    Tmpl::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bool(CKA_TOKEN, false)
        .bytes(CKA_APPLICATION, APP)
        .bytes(CKA_VALUE, &DEADBEEF)
        .bytes(CKA_LABEL, label)
}

#[test]
fn create_copy_destroy_data_object() {
    let _f = token();
    // A public R/W session, nobody logged in (ReadWriteSessionTest): public
    // session objects are allowed (v3.0 §4.x "Permitted object accesses").
    let s = must_open(RW);
    let o = create(s, data_object(b"OldLabel")).expect("data object in a public session");
    let mut size = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetObjectSize(s, o, &mut size) }, CKR_OK);
    let o2 = copy(s, o, Tmpl::new()).expect("copy");
    let mut size2 = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { C_GetObjectSize(s, o2, &mut size2) }, CKR_OK);
    assert_eq!(size, size2);
    for (ty, v) in [
        (CKA_CLASS, CKO_DATA.to_ne_bytes().to_vec()),
        (CKA_TOKEN, vec![CK_FALSE]),
        (CKA_APPLICATION, APP.to_vec()),
        (CKA_VALUE, DEADBEEF.to_vec()),
        (CKA_LABEL, b"OldLabel".to_vec()),
    ] {
        assert_eq!(get(s, o2, ty), Ok(v), "attribute {ty:#x} of the copy");
    }
    // An attribute the class does not have: ATTRIBUTE_TYPE_INVALID and
    // CK_UNAVAILABLE_INFORMATION (v3.0 §5.7 C_GetAttributeValue).
    let (rv, len, _) = get_raw(s, o2, CKA_CERTIFICATE_TYPE, 256);
    assert_eq!(
        (rv, len),
        (CKR_ATTRIBUTE_TYPE_INVALID, CK_UNAVAILABLE_INFORMATION)
    );
    assert_eq!(set(s, o, Tmpl::new().bytes(CKA_LABEL, b"NewLabel")), CKR_OK);
    assert_eq!(get(s, o2, CKA_LABEL), Ok(b"OldLabel".to_vec()));
    assert_eq!(get(s, o, CKA_LABEL), Ok(b"NewLabel".to_vec()));
    let facefeed = [0xFA, 0xCE, 0xFE, 0xED];
    let o3 = copy(s, o, Tmpl::new().bytes(CKA_VALUE, &facefeed)).expect("copy with a new value");
    assert_eq!(get(s, o3, CKA_VALUE), Ok(facefeed.to_vec()));
    let by_app = || find(s, Tmpl::new().bytes(CKA_APPLICATION, APP), 1);
    assert_eq!(by_app(), BTreeSet::from([o, o2, o3]));
    assert_eq!(destroy(s, o3), CKR_OK);
    assert_eq!(by_app(), BTreeSet::from([o, o2]));
    assert_eq!(destroy(s, o2), CKR_OK);
    assert_eq!(by_app(), BTreeSet::from([o]));
    assert_eq!(destroy(s, o), CKR_OK);
    assert_eq!(by_app(), BTreeSet::new());
}

#[test]
fn object_calls_with_bad_arguments() {
    let _f = token();
    let s = must_open(RW);
    let mut t = data_object(b"Label");
    let (p, n) = t.ptr();
    let mut o = 0;
    // SAFETY: the template outlives every call; NULL pointers are the point.
    unsafe {
        assert_eq!(
            C_CreateObject(BAD_SESSION, p, n, &mut o),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(C_CreateObject(s, p, n, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_CreateObject(s, null_mut(), n, &mut o), CKR_ARGUMENTS_BAD);
        // An empty template has no CKA_CLASS (v3.0 §4.1.2).
        assert_eq!(C_CreateObject(s, p, 0, &mut o), CKR_TEMPLATE_INCOMPLETE);
    }
    assert_eq!(
        create(s, Tmpl::new().bytes(CKA_VALUE, &DEADBEEF)).err(),
        Some(CKR_TEMPLATE_INCOMPLETE)
    );
    // DataObjectTest.CopyDestroyObjectInvalid.
    let o = create(s, data_object(b"Label")).expect("data object");
    let mut size = 0;
    let mut o2 = 0;
    let mut one = Tmpl::new().ulong(CKA_CLASS, CKO_PUBLIC_KEY);
    let (p1, _) = one.ptr();
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_GetObjectSize(BAD_SESSION, o, &mut size),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_GetObjectSize(s, BAD_OBJECT, &mut size),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(C_GetObjectSize(s, o, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_CopyObject(s, o, p1, 0, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_CopyObject(s, o, null_mut(), 1, &mut o2),
            CKR_ARGUMENTS_BAD
        );
        // CKA_CLASS cannot change on copy (v3.0 §4.4 table: not settable).
        assert_eq!(C_CopyObject(s, o, p1, 1, &mut o2), CKR_ATTRIBUTE_READ_ONLY);
        assert_eq!(
            C_CopyObject(s, BAD_OBJECT, p1, 0, &mut o2),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(C_DestroyObject(BAD_SESSION, o), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(C_DestroyObject(s, BAD_OBJECT), CKR_OBJECT_HANDLE_INVALID);
    }
    // DataObjectTest.GetMultipleAttributes / GetMultipleAttributesInvalid /
    // GetSetAttributeInvalid.
    let mut label = [0u8; 128];
    let mut value = [0u8; 128];
    let mut class: CK_OBJECT_CLASS = 0;
    let mut tok: CK_BBOOL = 9;
    let mut attrs = [
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr() as *mut c_void,
            ulValueLen: 128,
        },
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &mut class as *mut CK_OBJECT_CLASS as *mut c_void,
            ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: &mut tok as *mut u8 as *mut c_void,
            ulValueLen: 1,
        },
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_mut_ptr() as *mut c_void,
            ulValueLen: 128,
        },
    ];
    // SAFETY: every buffer holds its stated length.
    assert_eq!(
        unsafe { C_GetAttributeValue(s, o, attrs.as_mut_ptr(), 4) },
        CKR_OK
    );
    assert_eq!((class, tok), (CKO_DATA, CK_FALSE));
    assert_eq!((attrs[0].ulValueLen, &label[..5]), (5, &b"Label"[..]));
    assert_eq!((attrs[3].ulValueLen, &value[..4]), (4, &DEADBEEF[..]));
    class = 0;
    let mut two = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &mut class as *mut CK_OBJECT_CLASS as *mut c_void,
            ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: 999,
            pValue: label.as_mut_ptr() as *mut c_void,
            ulValueLen: 128,
        },
    ];
    // SAFETY: as above.
    assert_eq!(
        unsafe { C_GetAttributeValue(s, o, two.as_mut_ptr(), 2) },
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    // Every attribute is processed; the valid one got its value.
    assert_eq!(class, CKO_DATA);
    assert_eq!(two[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    let mut one_label = CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: label.as_mut_ptr() as *mut c_void,
        ulValueLen: 128,
    };
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_GetAttributeValue(BAD_SESSION, o, &mut one_label, 1),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_GetAttributeValue(s, BAD_OBJECT, &mut one_label, 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(C_GetAttributeValue(s, o, null_mut(), 1), CKR_ARGUMENTS_BAD);
    }
    // A buffer too small for the value (v3.0 §5.7 C_GetAttributeValue, case 4).
    let (rv, len, _) = get_raw(s, o, CKA_LABEL, 1);
    assert_eq!(
        (rv, len),
        (CKR_BUFFER_TOO_SMALL, CK_UNAVAILABLE_INFORMATION)
    );
    let mut new_label = Tmpl::new().bytes(CKA_LABEL, b"NewLabel");
    let (pl, nl) = new_label.ptr();
    // SAFETY: the template outlives the calls.
    unsafe {
        assert_eq!(
            C_SetAttributeValue(BAD_SESSION, o, pl, nl),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_SetAttributeValue(s, BAD_OBJECT, pl, nl),
            CKR_OBJECT_HANDLE_INVALID
        );
    }
    assert_eq!(
        set(s, o, Tmpl::new().ulong(CKA_CLASS, CKO_PUBLIC_KEY)),
        CKR_ATTRIBUTE_READ_ONLY
    );
}

#[test]
fn key_attribute_rules() {
    let _f = token();
    let s = must_open(RW);
    // SetLatchingAttribute / TookanAttackA5a: CKA_SENSITIVE may only become
    // TRUE (v3.0 §4.9 table 27 footnote 11).
    let k = aes(s, Tmpl::new().bool(CKA_SENSITIVE, false));
    assert_eq!(set(s, k, Tmpl::new().bool(CKA_SENSITIVE, true)), CKR_OK);
    assert!(get_bool(s, k, CKA_SENSITIVE));
    assert_eq!(
        set(s, k, Tmpl::new().bool(CKA_SENSITIVE, false)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert!(get_bool(s, k, CKA_SENSITIVE));
    // TookanAttackA3: a sensitive value cannot be read.
    let (rv, len, _) = get_raw(s, k, CKA_VALUE, 4096);
    assert_eq!(
        (rv, len),
        (CKR_ATTRIBUTE_SENSITIVE, CK_UNAVAILABLE_INFORMATION)
    );
    // TookanAttackA4 / A5b: nor an unextractable one, and CKA_EXTRACTABLE
    // may only become FALSE.
    let k = aes(
        s,
        Tmpl::new()
            .bool(CKA_EXTRACTABLE, false)
            .bool(CKA_SENSITIVE, false),
    );
    assert_eq!(get_raw(s, k, CKA_VALUE, 4096).0, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(
        set(s, k, Tmpl::new().bool(CKA_EXTRACTABLE, true)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert!(!get_bool(s, k, CKA_EXTRACTABLE));
    // A generated key is local and names its mechanism; its value is
    // readable when neither sensitive nor unextractable.
    let g = aes(s, Tmpl::new().bool(CKA_SENSITIVE, false));
    assert!(get_bool(s, g, CKA_LOCAL));
    assert_eq!(
        get(s, g, CKA_KEY_GEN_MECHANISM),
        Ok(CKM_AES_KEY_GEN.to_ne_bytes().to_vec())
    );
    assert_eq!(get(s, g, CKA_VALUE).map(|v| v.len()), Ok(16));
    // CreateSecretKeyAttributes: an imported key has been outside the token.
    let c = create(
        s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_AES)
            .bool(CKA_TOKEN, false)
            .bool(CKA_PRIVATE, false)
            .bool(CKA_ENCRYPT, true)
            .bool(CKA_DECRYPT, true)
            .bytes(CKA_VALUE, &[7u8; 16]),
    )
    .expect("imported AES key");
    for ty in [CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL] {
        assert!(!get_bool(s, c, ty), "attribute {ty:#x} of an imported key");
    }
    assert_eq!(
        get(s, c, CKA_KEY_GEN_MECHANISM),
        Ok(CK_UNAVAILABLE_INFORMATION.to_ne_bytes().to_vec())
    );
    // ExtractKeys: public parts readable, private parts of a sensitive RSA
    // key not.
    let (public, private) = rsa(
        s,
        2048,
        Tmpl::new().bool(CKA_ENCRYPT, true),
        Tmpl::new()
            .bool(CKA_DECRYPT, true)
            .bool(CKA_SENSITIVE, true),
    );
    assert!(get(s, public, CKA_MODULUS).is_ok_and(|m| m.len() == 256));
    assert_eq!(get(s, public, CKA_PUBLIC_EXPONENT), Ok(vec![1, 0, 1]));
    for ty in [CKA_PRIME_1, CKA_PRIME_2, CKA_PRIVATE_EXPONENT] {
        assert_eq!(
            get_raw(s, private, ty, 1024).0,
            CKR_ATTRIBUTE_SENSITIVE,
            "{ty:#x}"
        );
    }
}

#[test]
fn find_objects_rules() {
    let _f = token();
    let s = must_open(RW);
    let o = create(s, data_object(b"Label")).expect("data object");
    let mut handles = [0 as CK_OBJECT_HANDLE; 5];
    let mut count = 0;
    let mut t = Tmpl::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bytes(CKA_APPLICATION, APP)
        .bytes(CKA_LABEL, b"Label");
    let (p, n) = t.ptr();
    // FindObjectInvalid.
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_FindObjects(s, handles.as_mut_ptr(), 5, &mut count),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(
            C_FindObjectsInit(BAD_SESSION, p, n),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(C_FindObjectsInit(s, null_mut(), 3), CKR_ARGUMENTS_BAD);
        assert_eq!(C_FindObjectsInit(s, p, n), CKR_OK);
        // v3.0 §5.7 C_FindObjectsInit: one search at a time.
        assert_eq!(C_FindObjectsInit(s, p, n), CKR_OPERATION_ACTIVE);
        assert_eq!(
            C_FindObjects(BAD_SESSION, handles.as_mut_ptr(), 5, &mut count),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_FindObjects(s, null_mut(), 1, &mut count),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_FindObjects(s, handles.as_mut_ptr(), 5, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        // The search survives bad arguments (FindObject after them).
        assert_eq!(
            C_FindObjects(s, handles.as_mut_ptr(), 5, &mut count),
            CKR_OK
        );
        assert_eq!((count, handles[0]), (1, o));
        assert_eq!(
            C_FindObjects(s, handles.as_mut_ptr(), 5, &mut count),
            CKR_OK
        );
        assert_eq!(count, 0);
        assert_eq!(C_FindObjectsFinal(BAD_SESSION), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(C_FindObjectsFinal(s), CKR_OK);
        assert_eq!(
            C_FindObjects(s, handles.as_mut_ptr(), 5, &mut count),
            CKR_OPERATION_NOT_INITIALIZED
        );
    }
    // FindNoObject.
    assert!(find(s, data_object(b"LabelSuffix"), 5).is_empty());
    // FindObjectSubset and ConsistentObjects.
    let label: &[u8] = b"subset";
    let k1 = aes(s, Tmpl::new().bytes(CKA_LABEL, label));
    let k2 = aes(s, Tmpl::new().bytes(CKA_LABEL, label));
    let (p1, q1) = rsa(
        s,
        2048,
        Tmpl::new().bytes(CKA_LABEL, label).bool(CKA_ENCRYPT, true),
        Tmpl::new().bytes(CKA_LABEL, label).bool(CKA_DECRYPT, true),
    );
    let by_label = || Tmpl::new().bytes(CKA_LABEL, label);
    assert_eq!(find(s, by_label(), 10), BTreeSet::from([k1, k2, p1, q1]));
    assert_eq!(
        find(s, by_label().ulong(CKA_KEY_TYPE, CKK_AES), 1),
        BTreeSet::from([k1, k2])
    );
    assert_eq!(
        find(s, by_label().ulong(CKA_CLASS, CKO_PUBLIC_KEY), 1),
        BTreeSet::from([p1])
    );
    assert_eq!(
        find(s, by_label().ulong(CKA_CLASS, CKO_PRIVATE_KEY), 1),
        BTreeSet::from([q1])
    );
    let all = find(s, Tmpl::new(), 1);
    assert_eq!(find(s, Tmpl::new(), 10), all);
    assert_eq!(find(s, Tmpl::new(), 1024), all);
    assert!(all.is_superset(&BTreeSet::from([o, k1, k2, p1, q1])));
}

#[test]
fn read_only_and_public_sessions_limit_objects() {
    let f = Fixture::new();
    // A private token object, made by the logged-in user.
    let private = create(
        f.s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_DATA)
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, true)
            .bytes(CKA_LABEL, b"private"),
    )
    .expect("private token object");
    let public_token = create(
        f.s,
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_DATA)
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, false)
            .bytes(CKA_LABEL, b"public"),
    )
    .expect("public token object");
    // R/O user session (v3.0 §4.x "Permitted object accesses by sessions"):
    // token objects are read-only.
    let ro = must_open(RO);
    let token_object = || {
        Tmpl::new()
            .ulong(CKA_CLASS, CKO_DATA)
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, false)
    };
    assert_eq!(
        create(ro, token_object()).err(),
        Some(CKR_SESSION_READ_ONLY)
    );
    assert_eq!(destroy(ro, public_token), CKR_SESSION_READ_ONLY);
    assert_eq!(
        set(ro, public_token, Tmpl::new().bytes(CKA_LABEL, b"y")),
        CKR_SESSION_READ_ONLY
    );
    assert_eq!(
        generate(
            ro,
            CKM_AES_KEY_GEN,
            Tmpl::new().ulong(CKA_VALUE_LEN, 16).bool(CKA_TOKEN, true)
        )
        .err(),
        Some(CKR_SESSION_READ_ONLY)
    );
    assert_eq!(
        copy(ro, public_token, Tmpl::new()).err(),
        Some(CKR_SESSION_READ_ONLY),
        "a copy of a token object is a token object"
    );
    // Session objects are fine in a R/O session.
    let so = create(ro, data_object(b"session")).expect("session object in a R/O session");
    assert_eq!(destroy(ro, so), CKR_OK);
    assert_eq!(logout(ro), CKR_OK);
    // Public sessions: private objects are invisible and cannot be made.
    assert_eq!(
        get(ro, private, CKA_LABEL).err(),
        Some(CKR_OBJECT_HANDLE_INVALID)
    );
    assert!(!find(ro, Tmpl::new(), 10).contains(&private));
    assert!(find(ro, Tmpl::new(), 10).contains(&public_token));
    assert_eq!(
        create(
            ro,
            Tmpl::new()
                .ulong(CKA_CLASS, CKO_DATA)
                .bool(CKA_TOKEN, false)
                .bool(CKA_PRIVATE, true)
        )
        .err(),
        Some(CKR_USER_NOT_LOGGED_IN)
    );
    // ...but public session keys can be generated and used (pkcs11test's
    // ReadOnlySessionTest fixtures: every SecretKey/KeyPair is CKA_PRIVATE=FALSE).
    let k = aes(ro, Tmpl::new());
    let mut m = Mech::plain(CKM_AES_ECB);
    assert_eq!(init(C_EncryptInit, ro, &mut m, k), CKR_OK);
    assert_eq!(call(C_Encrypt, ro, &[0u8; 16], Out::Cap(16)).rv, CKR_OK);
    let (public, private_key) = rsa(
        ro,
        2048,
        Tmpl::new().bool(CKA_VERIFY, true),
        Tmpl::new().bool(CKA_SIGN, true),
    );
    let mut m = Mech::plain(CKM_SHA256_RSA_PKCS);
    assert_eq!(init(C_SignInit, ro, &mut m, private_key), CKR_OK);
    let sig = ok(call(C_Sign, ro, b"data", Out::Cap(256)), "C_Sign");
    assert_eq!(init(C_VerifyInit, ro, &mut m, public), CKR_OK);
    assert_eq!(verify(ro, b"data", &sig), CKR_OK);
}

// ----- key management (key.cc, keypair.cc, tookan.cc) ------------------------------------

#[test]
fn generate_key_and_key_pair_arguments() {
    let _f = token();
    let s = must_open(RO);
    let mut m = Mech::plain(CKM_AES_KEY_GEN);
    let mut t = Tmpl::new()
        .bytes(CKA_LABEL, b"label")
        .bool(CKA_ENCRYPT, true)
        .ulong(CKA_VALUE_LEN, 16);
    let (p, n) = t.ptr();
    let mut h = 0;
    // GenerateKeyInvalid.
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_GenerateKey(BAD_SESSION, m.ptr(), p, n, &mut h),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_GenerateKey(s, null_mut(), p, n, &mut h),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKey(s, m.ptr(), null_mut(), n, &mut h),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKey(s, m.ptr(), p, n, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    }
    // GenerateKeyPairInvalid.
    let mut m = Mech::plain(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let mut public = Tmpl::new()
        .bytes(CKA_LABEL, b"label")
        .ulong(CKA_MODULUS_BITS, 2048)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
        .bool(CKA_ENCRYPT, true);
    let mut private = Tmpl::new()
        .bytes(CKA_LABEL, b"label")
        .bool(CKA_DECRYPT, true);
    let ((pp, pn), (qp, qn)) = (public.ptr(), private.ptr());
    let (mut a, mut b) = (0, 0);
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_GenerateKeyPair(BAD_SESSION, m.ptr(), pp, pn, qp, qn, &mut a, &mut b),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_GenerateKeyPair(s, null_mut(), pp, pn, qp, qn, &mut a, &mut b),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKeyPair(s, m.ptr(), null_mut(), pn, qp, qn, &mut a, &mut b),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKeyPair(s, m.ptr(), pp, pn, null_mut(), qn, &mut a, &mut b),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKeyPair(s, m.ptr(), pp, pn, qp, qn, null_mut(), &mut b),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKeyPair(s, m.ptr(), pp, pn, qp, qn, &mut a, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    }
    // A mechanism the token does not have.
    assert_eq!(
        generate(s, 999, Tmpl::new().ulong(CKA_VALUE_LEN, 16)).err(),
        Some(CKR_MECHANISM_INVALID)
    );
    // RSA generation: 2048 to 4096 bits, as C_GetMechanismInfo states; a
    // size outside is CKR_KEY_SIZE_RANGE (v3.0 §5.18 C_GenerateKeyPair).
    // SAFETY: plain data.
    let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { C_GetMechanismInfo(SLOT, CKM_RSA_PKCS_KEY_PAIR_GEN, &mut info) },
        CKR_OK
    );
    assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (2048, 4096));
    let rw = must_open(RW);
    let pair = |bits: CK_ULONG, exponent: &[u8]| {
        key_pair(
            rw,
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            Tmpl::new()
                .bool(CKA_ENCRYPT, true)
                .ulong(CKA_MODULUS_BITS, bits)
                .bytes(CKA_PUBLIC_EXPONENT, exponent)
                .bool(CKA_PRIVATE, false),
            Tmpl::new().bool(CKA_DECRYPT, true).bool(CKA_PRIVATE, false),
        )
    };
    assert_eq!(pair(1024, &[1, 0, 1]).err(), Some(CKR_KEY_SIZE_RANGE));
    assert_eq!(pair(8192, &[1, 0, 1]).err(), Some(CKR_KEY_SIZE_RANGE));
    // PublicExponent4Bytes: a leading zero byte is the same exponent.
    let pair = key_pair(
        rw,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        Tmpl::new()
            .bool(CKA_ENCRYPT, true)
            .ulong(CKA_MODULUS_BITS, 2048)
            .bytes(CKA_PUBLIC_EXPONENT, &[0, 1, 0, 1])
            .bool(CKA_PRIVATE, false),
        Tmpl::new().bool(CKA_DECRYPT, true).bool(CKA_PRIVATE, false),
    )
    .expect("65537 written on 4 bytes");
    assert_eq!(destroy(rw, pair.0), CKR_OK);
    assert_eq!(destroy(rw, pair.1), CKR_OK);
    // KeyPairTest.EncryptDecrypt with RSA PKCS#1 v1.5.
    let (public, private) = rsa(
        rw,
        2048,
        Tmpl::new().bool(CKA_ENCRYPT, true),
        Tmpl::new().bool(CKA_DECRYPT, true),
    );
    let mut m = Mech::plain(CKM_RSA_PKCS);
    assert_eq!(init(C_EncryptInit, rw, &mut m, public), CKR_OK);
    let ct = ok(
        call(C_Encrypt, rw, b"0123456789", Out::Cap(1024)),
        "C_Encrypt(RSA)",
    );
    assert_eq!(ct.len(), 256);
    assert_eq!(init(C_DecryptInit, rw, &mut m, private), CKR_OK);
    assert_eq!(
        ok(call(C_Decrypt, rw, &ct, Out::Cap(10)), "C_Decrypt(RSA)"),
        b"0123456789"
    );
}

#[test]
fn wrap_and_unwrap() {
    let _f = token();
    let s = must_open(RO);
    // WrapUnwrap, with AES-ECB in place of DES-ECB.
    let k1 = aes(s, Tmpl::new().bool(CKA_SENSITIVE, false));
    let k2 = aes(
        s,
        Tmpl::new()
            .bool(CKA_WRAP, true)
            .bool(CKA_UNWRAP, true)
            .bool(CKA_DECRYPT, true),
    );
    let mut m = Mech::plain(CKM_AES_ECB);
    let wrap = |m: &mut Mech, wk, k, out: Out| -> Got {
        // SAFETY: the mechanism and buffers outlive the call.
        with_out(out, |p, plen| unsafe {
            C_WrapKey(s, m.ptr(), wk, k, p, plen)
        })
    };
    let wrapped = ok(wrap(&mut m, k2, k1, Out::Cap(4096)), "C_WrapKey");
    assert_eq!(init(C_DecryptInit, s, &mut m, k2), CKR_OK);
    let value = ok(call(C_Decrypt, s, &wrapped, Out::Cap(4096)), "C_Decrypt");
    assert_eq!(get(s, k1, CKA_VALUE), Ok(value.clone()));
    let mut t = Tmpl::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_DECRYPT, true)
        .bool(CKA_PRIVATE, false)
        .bool(CKA_SENSITIVE, false);
    let (tp, tn) = t.ptr();
    let mut w = wrapped.clone();
    let mut k3 = 0;
    // SAFETY: mechanism, wrapped key, template and out-pointer outlive the call.
    assert_eq!(
        unsafe {
            C_UnwrapKey(
                s,
                m.ptr(),
                k2,
                w.as_mut_ptr(),
                w.len() as CK_ULONG,
                tp,
                tn,
                &mut k3,
            )
        },
        CKR_OK
    );
    assert_eq!(get(s, k3, CKA_VALUE), Ok(value));

    // WrapInvalid.
    assert_eq!(wrap(&mut m, k2, k1, Out::Cap(4096)).rv, CKR_OK);
    let (mut buf, mut len) = out_buffer(Out::Cap(4096));
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        assert_eq!(
            C_WrapKey(BAD_SESSION, m.ptr(), k2, k1, buf.as_mut_ptr(), &mut len),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_WrapKey(s, null_mut(), k2, k1, buf.as_mut_ptr(), &mut len),
            CKR_ARGUMENTS_BAD
        );
    }
    assert_eq!(
        wrap(&mut m, BAD_OBJECT, k1, Out::Cap(4096)).rv,
        CKR_WRAPPING_KEY_HANDLE_INVALID
    );
    assert_eq!(
        wrap(&mut m, k2, BAD_OBJECT, Out::Cap(4096)).rv,
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(wrap(&mut m, k2, k1, Out::NoLen).rv, CKR_ARGUMENTS_BAD);
    let q = wrap(&mut m, k2, k1, Out::Query);
    assert_eq!((q.rv, q.len), (CKR_OK, 16));
    let small = wrap(&mut m, k2, k1, Out::Cap(1));
    assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 16));

    // UnwrapInvalid. A NULL (0) unwrapping key is
    // CKR_UNWRAPPING_KEY_HANDLE_INVALID (v3.0 §5.18 C_UnwrapKey; pkcs11test
    // expects the wrapping-key code, which C_UnwrapKey does not list).
    // SAFETY: valid pointers except where NULL is the point.
    unsafe {
        let wl = w.len() as CK_ULONG;
        assert_eq!(
            C_UnwrapKey(
                BAD_SESSION,
                m.ptr(),
                k2,
                w.as_mut_ptr(),
                wl,
                tp,
                tn,
                &mut k3
            ),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_UnwrapKey(s, null_mut(), k2, w.as_mut_ptr(), wl, tp, tn, &mut k3),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_UnwrapKey(
                s,
                m.ptr(),
                CK_INVALID_HANDLE,
                w.as_mut_ptr(),
                wl,
                tp,
                tn,
                &mut k3
            ),
            CKR_UNWRAPPING_KEY_HANDLE_INVALID
        );
        assert_eq!(
            C_UnwrapKey(s, m.ptr(), k2, null_mut(), wl, tp, tn, &mut k3),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_UnwrapKey(s, m.ptr(), k2, w.as_mut_ptr(), wl, null_mut(), 5, &mut k3),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_UnwrapKey(s, m.ptr(), k2, w.as_mut_ptr(), wl, tp, tn, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    }
}

#[test]
fn tookan_wrap_attacks() {
    let _f = token();
    let s = must_open(RW);
    let mut buf = vec![0u8; 4096];
    let mut wrap = |m: &mut Mech, wk, k| {
        let mut len = 4096;
        // SAFETY: the mechanism and buffers outlive the call.
        unsafe { C_WrapKey(s, m.ptr(), wk, k, buf.as_mut_ptr(), &mut len) }
    };
    let k2 = aes(s, Tmpl::new().bool(CKA_WRAP, true).bool(CKA_DECRYPT, true));
    let (public, _private) = rsa(
        s,
        2048,
        Tmpl::new().bool(CKA_WRAP, true),
        Tmpl::new().bool(CKA_DECRYPT, true),
    );
    // TookanAttackA1/A2 wrap a key made with CKA_SENSITIVE=TRUE alone under a
    // key that can also decrypt, and expect a refusal. The specification lets
    // a sensitive key be wrapped when it is extractable, and the default of
    // CKA_EXTRACTABLE is token-specific (v3.0 §4.9 table 27 footnote 8); here
    // it is TRUE, as in SoftHSM and Kryoptic, so the wrap is allowed. The
    // defences the specification gives are the ones below.
    let sensitive = aes(s, Tmpl::new().bool(CKA_SENSITIVE, true));
    assert_eq!(wrap(&mut Mech::plain(CKM_AES_ECB), k2, sensitive), CKR_OK);
    // CKA_EXTRACTABLE=FALSE: CKR_KEY_UNEXTRACTABLE (v3.0 §5.18 C_WrapKey).
    let locked = aes(
        s,
        Tmpl::new()
            .bool(CKA_SENSITIVE, true)
            .bool(CKA_EXTRACTABLE, false),
    );
    assert_eq!(
        wrap(&mut Mech::plain(CKM_AES_ECB), k2, locked),
        CKR_KEY_UNEXTRACTABLE,
        "A1"
    );
    assert_eq!(
        wrap(&mut Mech::plain(CKM_RSA_PKCS), public, locked),
        CKR_KEY_UNEXTRACTABLE,
        "A2"
    );
    // CKA_WRAP_WITH_TRUSTED with an untrusted wrapping key: CKR_KEY_NOT_WRAPPABLE.
    let trusted_only = aes(
        s,
        Tmpl::new()
            .bool(CKA_SENSITIVE, true)
            .bool(CKA_WRAP_WITH_TRUSTED, true),
    );
    assert_eq!(
        wrap(&mut Mech::plain(CKM_AES_ECB), k2, trusted_only),
        CKR_KEY_NOT_WRAPPABLE,
        "A1"
    );
    assert_eq!(
        wrap(&mut Mech::plain(CKM_RSA_PKCS), public, trusted_only),
        CKR_KEY_NOT_WRAPPABLE,
        "A2"
    );
}

// ----- digest (digest.cc) -----------------------------------------------------------------

#[test]
fn digest_two_call_convention_and_termination() {
    let f = Fixture::new();
    let s = f.s;
    let data = random(300);
    let want = sha256(&data);
    // DigestInitInvalid, DigestInvalidSession, DigestUpdateNoInit.
    assert_eq!(digest_init(s, 999), CKR_MECHANISM_INVALID);
    assert_eq!(
        digest_init(BAD_SESSION, CKM_SHA256),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        part(C_DigestUpdate, s, &data[..1]),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // DigestGetSpace: length query, too small (buffer untouched), then OK.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    let q = call(C_Digest, s, &data, Out::Query);
    assert_eq!((q.rv, q.len), (CKR_OK, 32));
    let small = call(C_Digest, s, &data, Out::Cap(2));
    assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 32));
    assert_eq!(small.buf, vec![0xAB; 2], "a short buffer is left alone");
    assert_eq!(
        ok(call(C_Digest, s, &data, Out::Cap(512)), "C_Digest"),
        want
    );
    // A successful C_Digest ends the operation.
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(512)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // DigestInvalid: CKR_ARGUMENTS_BAD ends it too (v3.0 §5.10 C_Digest
    // "always terminates ... unless CKR_BUFFER_TOO_SMALL or a length query").
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(call(C_Digest, s, &data, Out::NoLen).rv, CKR_ARGUMENTS_BAD);
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(512)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // DigestFinalInvalid: after a single-part length query the operation is
    // single-part; C_DigestFinal is refused and, failing, ends it.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(call(C_Digest, s, &data, Out::Query).rv, CKR_OK);
    assert_eq!(
        call_final(C_DigestFinal, s, Out::Cap(512)).rv,
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(512)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Likewise C_DigestUpdate: an error ends the operation (v3.0 §5.10).
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(1)).rv,
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(part(C_DigestUpdate, s, &data), CKR_OPERATION_ACTIVE);
    assert_eq!(
        part(C_DigestUpdate, s, &data),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // DigestUpdateGetSpace / DigestUpdateInvalid.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    // SAFETY: NULL with length 0 is an empty part.
    assert_eq!(unsafe { C_DigestUpdate(s, null_mut(), 0) }, CKR_OK);
    assert_eq!(part(C_DigestUpdate, s, &data[..1]), CKR_OK);
    assert_eq!(part(C_DigestUpdate, s, &data[1..]), CKR_OK);
    // A single-part call cannot end a multi-part operation: refused, and the
    // multi-part operation goes on.
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(512)).rv,
        CKR_OPERATION_ACTIVE
    );
    let q = call_final(C_DigestFinal, s, Out::Query);
    assert_eq!((q.rv, q.len), (CKR_OK, 32));
    assert_eq!(
        call_final(C_DigestFinal, BAD_SESSION, Out::Cap(512)).rv,
        CKR_SESSION_HANDLE_INVALID
    );
    let small = call_final(C_DigestFinal, s, Out::Cap(1));
    assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 32));
    assert_eq!(
        ok(call_final(C_DigestFinal, s, Out::Cap(512)), "C_DigestFinal"),
        want
    );
    assert_eq!(
        call_final(C_DigestFinal, s, Out::Cap(512)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A final call with bad arguments ends the operation.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(
        call_final(C_DigestFinal, s, Out::NoLen).rv,
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call_final(C_DigestFinal, s, Out::Cap(512)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // An update with bad arguments ends it.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    // SAFETY: NULL with a non-zero length must be refused.
    assert_eq!(
        unsafe { C_DigestUpdate(s, null_mut(), 4) },
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        part(C_DigestUpdate, s, &data),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Init twice.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(digest_init(s, CKM_SHA_1), CKR_OPERATION_ACTIVE);
    assert_eq!(
        ok(call(C_Digest, s, &data, Out::Cap(512)), "C_Digest"),
        want
    );
}

#[test]
fn digest_vectors_and_digest_key() {
    let f = Fixture::new();
    let s = f.s;
    // DigestTestVectors (FIPS 180 examples).
    for (ty, input, hex_out) in [
        (
            CKM_SHA_1,
            &b"abc"[..],
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (
            CKM_SHA256,
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            CKM_SHA256,
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            CKM_SHA384,
            b"abc",
            concat!(
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163",
                "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
            ),
        ),
        (
            CKM_SHA512,
            b"abc",
            concat!(
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a",
                "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
            ),
        ),
    ] {
        assert_eq!(digest_init(s, ty), CKR_OK);
        assert_eq!(
            hex::encode(ok(call(C_Digest, s, input, Out::Cap(64)), "C_Digest")),
            hex_out
        );
        // CompareIncremental.
        assert_eq!(digest_init(s, ty), CKR_OK);
        for chunk in input.chunks(1) {
            assert_eq!(part(C_DigestUpdate, s, chunk), CKR_OK);
        }
        assert_eq!(
            hex::encode(ok(
                call_final(C_DigestFinal, s, Out::Cap(64)),
                "C_DigestFinal"
            )),
            hex_out
        );
    }
    // DigestKey: the key's value goes into the digest (v3.0 §5.10).
    let k = aes(s, Tmpl::new().bool(CKA_SENSITIVE, false));
    let value = get(s, k, CKA_VALUE).expect("value");
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    // SAFETY: plain value arguments.
    assert_eq!(unsafe { C_DigestKey(s, k) }, CKR_OK);
    assert_eq!(
        ok(call_final(C_DigestFinal, s, Out::Cap(64)), "C_DigestFinal"),
        sha256(&value)
    );
    // DigestKeyInvalid: bad handles. An error in C_DigestKey ends the
    // operation like one in C_DigestUpdate (the specification leaves this
    // open; pkcs11test accepts either).
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    // SAFETY: plain value arguments.
    unsafe {
        assert_eq!(C_DigestKey(BAD_SESSION, k), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(C_DigestKey(s, k), CKR_OK);
        assert_eq!(C_DigestKey(s, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
    }
    assert_eq!(
        call_final(C_DigestFinal, s, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Not after a single-part length query.
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(call(C_Digest, s, b"x", Out::Query).rv, CKR_OK);
    // SAFETY: plain value arguments.
    assert_eq!(unsafe { C_DigestKey(s, k) }, CKR_OPERATION_ACTIVE);
    assert_eq!(
        call(C_Digest, s, b"x", Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
}

// ----- encrypt / decrypt (cipher.cc) ------------------------------------------------------

const BLOCKS: usize = 4;

/// Makes a fresh mechanism for each init.
type MechMaker = Box<dyn Fn() -> Mech>;

/// AES-ECB and AES-CBC with a random IV: (name, mechanism maker).
fn ciphers() -> Vec<(&'static str, MechMaker)> {
    let iv = random(16);
    vec![
        ("AES-ECB", Box::new(|| Mech::plain(CKM_AES_ECB))),
        ("AES-CBC", Box::new(move || Mech::bytes(CKM_AES_CBC, &iv))),
    ]
}

#[test]
fn encrypt_decrypt_two_call_and_parts() {
    let f = Fixture::new();
    let s = f.s;
    for (name, mech) in ciphers() {
        let k = aes(s, Tmpl::new());
        let pt = random(BLOCKS * 16);
        // EncryptDecryptGetSpace.
        assert_eq!(init(C_EncryptInit, s, &mut mech(), k), CKR_OK, "{name}");
        let q = call(C_Encrypt, s, &pt, Out::Query);
        assert_eq!((q.rv, q.len), (CKR_OK, 64), "{name}");
        let small = call(C_Encrypt, s, &pt, Out::Cap(63));
        assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 64), "{name}");
        assert_eq!(small.buf[0], 0xAB, "{name}: buffer unaffected");
        let ct = ok(call(C_Encrypt, s, &pt, Out::Cap(1024)), name);
        assert_eq!(ct.len(), 64);
        assert_eq!(
            call(C_Encrypt, s, &pt, Out::Cap(1024)).rv,
            CKR_OPERATION_NOT_INITIALIZED,
            "{name}"
        );
        assert_eq!(init(C_DecryptInit, s, &mut mech(), k), CKR_OK);
        let q = call(C_Decrypt, s, &ct, Out::Query);
        assert_eq!((q.rv, q.len), (CKR_OK, 64), "{name}");
        let small = call(C_Decrypt, s, &ct, Out::Cap(63));
        assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 64), "{name}");
        assert_eq!(ok(call(C_Decrypt, s, &ct, Out::Cap(1024)), name), pt);
        // EncryptDecryptParts: block by block equals one shot.
        assert_eq!(init(C_EncryptInit, s, &mut mech(), k), CKR_OK);
        let mut ct2 = Vec::new();
        for block in pt.chunks(16) {
            let g = call(C_EncryptUpdate, s, block, Out::Cap(1024));
            assert_eq!((g.rv, g.len), (CKR_OK, 16), "{name}");
            ct2.extend(g.buf);
        }
        let fin = call_final(C_EncryptFinal, s, Out::Cap(1024));
        assert_eq!((fin.rv, fin.len), (CKR_OK, 0), "{name}");
        assert_eq!(ct2, ct, "{name}");
        assert_eq!(init(C_DecryptInit, s, &mut mech(), k), CKR_OK);
        let mut pt2 = Vec::new();
        for block in ct.chunks(16) {
            pt2.extend(ok(call(C_DecryptUpdate, s, block, Out::Cap(1024)), name));
        }
        let fin = call_final(C_DecryptFinal, s, Out::Cap(1024));
        assert_eq!((fin.rv, fin.len), (CKR_OK, 0), "{name}");
        assert_eq!(pt2, pt, "{name}");
        // EncryptFailDecrypt: unpadded modes decrypt a corrupted text.
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(init(C_DecryptInit, s, &mut mech(), k), CKR_OK);
        let got = ok(call(C_Decrypt, s, &bad, Out::Cap(1024)), name);
        assert_eq!(got.len(), 64);
        assert_ne!(got, pt);
        // EncryptFinalImmediate.
        assert_eq!(init(C_EncryptInit, s, &mut mech(), k), CKR_OK);
        let fin = call_final(C_EncryptFinal, s, Out::Cap(1024));
        assert_eq!((fin.rv, fin.len), (CKR_OK, 0), "{name}");
        // An update that is too small keeps the operation and its input.
        assert_eq!(init(C_EncryptInit, s, &mut mech(), k), CKR_OK);
        let small = call(C_EncryptUpdate, s, &pt[..32], Out::Cap(16));
        assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 32), "{name}");
        let first = ok(call(C_EncryptUpdate, s, &pt[..32], Out::Cap(32)), name);
        let rest = ok(call(C_EncryptUpdate, s, &pt[32..], Out::Cap(32)), name);
        assert_eq!([first, rest].concat(), ct, "{name}");
        let q = call_final(C_EncryptFinal, s, Out::Query);
        assert_eq!((q.rv, q.len), (CKR_OK, 0), "{name}");
        assert_eq!(call_final(C_EncryptFinal, s, Out::Cap(16)).rv, CKR_OK);
        assert_eq!(
            call_final(C_EncryptFinal, s, Out::Cap(16)).rv,
            CKR_OPERATION_NOT_INITIALIZED
        );
    }
}

#[test]
fn cipher_errors_end_the_operation() {
    let f = Fixture::new();
    let s = f.s;
    for (name, mech) in ciphers() {
        let k = aes(s, Tmpl::new());
        let pt = random(BLOCKS * 16);
        assert_eq!(init(C_EncryptInit, s, &mut mech(), k), CKR_OK);
        let ct = ok(call(C_Encrypt, s, &pt, Out::Cap(1024)), name);
        // EncryptErrors: each error ends the operation, so the next
        // C_EncryptInit succeeds (v3.0 §5.8 C_Encrypt).
        for (enc, init_fn, single, update) in [
            (
                true,
                C_EncryptInit as InitFn,
                C_Encrypt as OutFn,
                C_EncryptUpdate as OutFn,
            ),
            (false, C_DecryptInit, C_Decrypt, C_DecryptUpdate),
        ] {
            let input = if enc { &pt } else { &ct };
            let what = format!("{name} {}", if enc { "encrypt" } else { "decrypt" });
            for f in [single, update] {
                assert_eq!(init(init_fn, s, &mut mech(), k), CKR_OK, "{what}");
                let mut inp = input.clone();
                // SAFETY: NULL output and NULL length must be refused.
                let rv = unsafe { f(s, inp.as_mut_ptr(), 64, null_mut(), null_mut()) };
                assert_eq!(rv, CKR_ARGUMENTS_BAD, "{what}");
                assert_eq!(
                    init(init_fn, s, &mut mech(), k),
                    CKR_OK,
                    "{what}: ended by ARGUMENTS_BAD"
                );
                // An invalid session touches nothing of this one.
                assert_eq!(
                    call(f, BAD_SESSION, input, Out::Cap(1024)).rv,
                    CKR_SESSION_HANDLE_INVALID
                );
                let mut out = vec![0u8; 1024];
                let mut len = 1024;
                // SAFETY: NULL input with a non-zero length must be refused.
                let rv = unsafe { f(s, null_mut(), 16, out.as_mut_ptr(), &mut len) };
                assert_eq!(rv, CKR_ARGUMENTS_BAD, "{what}");
                assert_eq!(
                    call(f, s, input, Out::Cap(1024)).rv,
                    CKR_OPERATION_NOT_INITIALIZED,
                    "{what}"
                );
            }
            // A partial block in a single-part call.
            assert_eq!(init(init_fn, s, &mut mech(), k), CKR_OK);
            let rv = call(single, s, &input[..15], Out::Cap(1024)).rv;
            let want = if enc {
                CKR_DATA_LEN_RANGE
            } else {
                CKR_ENCRYPTED_DATA_LEN_RANGE
            };
            assert_eq!(rv, want, "{what}: partial block");
            assert_eq!(
                call(single, s, input, Out::Cap(1024)).rv,
                CKR_OPERATION_NOT_INITIALIZED
            );
        }
        // EncryptFinalErrors1/2: a final call with bad arguments ends the
        // operation; an invalid session does not touch it; a partial block
        // left at the end is CKR_DATA_LEN_RANGE.
        for (final_fn, init_fn, update, enc) in [
            (
                C_EncryptFinal as FinalFn,
                C_EncryptInit as InitFn,
                C_EncryptUpdate as OutFn,
                true,
            ),
            (C_DecryptFinal, C_DecryptInit, C_DecryptUpdate, false),
        ] {
            let input = if enc { &pt } else { &ct };
            assert_eq!(init(init_fn, s, &mut mech(), k), CKR_OK);
            assert_eq!(call(update, s, input, Out::Cap(1024)).rv, CKR_OK);
            assert_eq!(call_final(final_fn, s, Out::NoLen).rv, CKR_ARGUMENTS_BAD);
            assert_eq!(
                call_final(final_fn, s, Out::Cap(1024)).rv,
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_eq!(init(init_fn, s, &mut mech(), k), CKR_OK);
            assert_eq!(call(update, s, input, Out::Cap(1024)).rv, CKR_OK);
            assert_eq!(
                call_final(final_fn, BAD_SESSION, Out::Cap(1024)).rv,
                CKR_SESSION_HANDLE_INVALID
            );
            assert_eq!(call(update, s, &input[..15], Out::Cap(1024)).rv, CKR_OK);
            let want = if enc {
                CKR_DATA_LEN_RANGE
            } else {
                CKR_ENCRYPTED_DATA_LEN_RANGE
            };
            assert_eq!(
                call_final(final_fn, s, Out::Cap(1024)).rv,
                want,
                "{name}: partial block at the end"
            );
            assert_eq!(
                call_final(final_fn, s, Out::Cap(1024)).rv,
                CKR_OPERATION_NOT_INITIALIZED
            );
        }
    }
}

#[test]
fn single_and_multi_part_do_not_mix() {
    let f = Fixture::new();
    let s = f.s;
    let k = aes(s, Tmpl::new());
    let pt = random(64);
    let mut ecb = Mech::plain(CKM_AES_ECB);
    // EncryptModePolicing1: C_Encrypt during a multi-part operation is
    // refused and does not end it ("C_Encrypt cannot be used to terminate a
    // multi-part operation", v3.0 §5.8).
    assert_eq!(init(C_EncryptInit, s, &mut ecb, k), CKR_OK);
    let first = ok(
        call(C_EncryptUpdate, s, &pt, Out::Cap(1024)),
        "C_EncryptUpdate",
    );
    assert_eq!(
        call(C_Encrypt, s, &pt, Out::Cap(1024)).rv,
        CKR_OPERATION_ACTIVE
    );
    let fin = call_final(C_EncryptFinal, s, Out::Cap(1024));
    assert_eq!((fin.rv, fin.len), (CKR_OK, 0));
    // EncryptModePolicing2: after a single-part length query, C_EncryptUpdate
    // is refused; as an update error it ends the operation.
    assert_eq!(init(C_EncryptInit, s, &mut ecb, k), CKR_OK);
    assert_eq!(call(C_Encrypt, s, &pt, Out::Query).rv, CKR_OK);
    assert_eq!(
        call(C_EncryptUpdate, s, &pt, Out::Cap(1024)).rv,
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call(C_Encrypt, s, &pt, Out::Cap(1024)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // ...and so is the final call (it always ends the operation).
    assert_eq!(init(C_EncryptInit, s, &mut ecb, k), CKR_OK);
    assert_eq!(
        call(C_Encrypt, s, &pt, Out::Cap(8)).rv,
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        call_final(C_EncryptFinal, s, Out::Cap(1024)).rv,
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call(C_Encrypt, s, &pt, Out::Cap(1024)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // The same for decryption.
    assert_eq!(init(C_DecryptInit, s, &mut ecb, k), CKR_OK);
    assert_eq!(
        ok(
            call(C_DecryptUpdate, s, &first, Out::Cap(1024)),
            "C_DecryptUpdate"
        ),
        pt
    );
    assert_eq!(
        call(C_Decrypt, s, &first, Out::Cap(1024)).rv,
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(call_final(C_DecryptFinal, s, Out::Cap(1024)).rv, CKR_OK);
    assert_eq!(init(C_DecryptInit, s, &mut ecb, k), CKR_OK);
    assert_eq!(call(C_Decrypt, s, &first, Out::Query).rv, CKR_OK);
    assert_eq!(
        call_final(C_DecryptFinal, s, Out::Cap(1024)).rv,
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call(C_Decrypt, s, &first, Out::Cap(1024)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn init_errors_leave_state_alone() {
    let f = Fixture::new();
    let s = f.s;
    let k = aes(s, Tmpl::new());
    let pt = random(64);
    let iv = random(16);
    for (init_fn, single) in [
        (C_EncryptInit as InitFn, C_Encrypt as OutFn),
        (C_DecryptInit, C_Decrypt),
    ] {
        // EncryptDecryptInitInvalid.
        assert_eq!(
            init(init_fn, s, &mut Mech::plain(999), k),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(
            init(init_fn, BAD_SESSION, &mut Mech::plain(CKM_AES_ECB), k),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            init(init_fn, s, &mut Mech::plain(CKM_AES_ECB), BAD_OBJECT),
            CKR_KEY_HANDLE_INVALID
        );
        // No operation to cancel: a NULL mechanism is a bad argument.
        assert_eq!(init_null(init_fn, s, k), CKR_ARGUMENTS_BAD);
        // Can't do RSA with a symmetric key.
        assert_eq!(
            init(init_fn, s, &mut Mech::plain(CKM_RSA_PKCS), k),
            CKR_KEY_TYPE_INCONSISTENT
        );
        // EncryptInvalidIV / DecryptInvalidIV.
        assert_eq!(
            init(init_fn, s, &mut Mech::bytes(CKM_AES_CBC, &iv[..15]), k),
            CKR_MECHANISM_PARAM_INVALID
        );
        // None of these started an operation.
        assert_eq!(
            call(single, s, &pt, Out::Cap(1024)).rv,
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Init twice: refused, the first operation is untouched.
        assert_eq!(init(init_fn, s, &mut Mech::plain(CKM_AES_ECB), k), CKR_OK);
        assert_eq!(
            init(init_fn, s, &mut Mech::plain(CKM_AES_ECB), k),
            CKR_OPERATION_ACTIVE
        );
        assert_eq!(call(single, s, &pt, Out::Cap(1024)).rv, CKR_OK);
    }
}

#[test]
fn null_mechanism_cancels_an_active_operation() {
    // v3.0 §5.8-§5.12: C_*Init with pMechanism NULL_PTR terminates an active
    // operation of that kind.
    let f = Fixture::new();
    let s = f.s;
    let k = aes(s, Tmpl::new());
    let h = hmac_key(s, &random(32));
    let data = random(32);
    for (init_fn, key, mech, single) in [
        (C_EncryptInit as InitFn, k, CKM_AES_ECB, C_Encrypt as OutFn),
        (C_DecryptInit, k, CKM_AES_ECB, C_Decrypt),
        (C_SignInit, h, CKM_SHA256_HMAC, C_Sign),
    ] {
        assert_eq!(init(init_fn, s, &mut Mech::plain(mech), key), CKR_OK);
        assert_eq!(init_null(init_fn, s, key), CKR_OK);
        assert_eq!(
            call(single, s, &data, Out::Cap(1024)).rv,
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(init(init_fn, s, &mut Mech::plain(mech), key), CKR_OK);
        assert_eq!(call(single, s, &data, Out::Cap(1024)).rv, CKR_OK);
    }
    assert_eq!(
        init(C_VerifyInit, s, &mut Mech::plain(CKM_SHA256_HMAC), h),
        CKR_OK
    );
    assert_eq!(part(C_VerifyUpdate, s, &data), CKR_OK);
    assert_eq!(init_null(C_VerifyInit, s, h), CKR_OK);
    assert_eq!(verify_final(s, &[0; 32]), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(init_null(C_VerifyInit, s, h), CKR_ARGUMENTS_BAD);
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    // SAFETY: a NULL mechanism cancels.
    assert_eq!(unsafe { C_DigestInit(s, null_mut()) }, CKR_OK);
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // SAFETY: as above; nothing to cancel now.
    assert_eq!(unsafe { C_DigestInit(s, null_mut()) }, CKR_ARGUMENTS_BAD);
}

// ----- sign / verify (sign.cc, hmac.cc) -----------------------------------------------------

#[test]
fn rsa_sign_and_verify() {
    let f = Fixture::new();
    let s = f.s;
    let (public, private) = rsa(
        s,
        2048,
        Tmpl::new().bool(CKA_VERIFY, true),
        Tmpl::new().bool(CKA_SIGN, true),
    );
    for (ty, max) in [
        (CKM_RSA_PKCS, 245),
        (CKM_SHA1_RSA_PKCS, 1024),
        (CKM_SHA256_RSA_PKCS, 1024),
        (CKM_SHA384_RSA_PKCS, 1024),
        (CKM_SHA512_RSA_PKCS, 1024),
    ] {
        let data = random(max / 2);
        let mut m = Mech::plain(ty);
        // SignVerify.
        assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK, "{ty:#x}");
        let sig = ok(call(C_Sign, s, &data, Out::Cap(1024)), "C_Sign");
        assert_eq!(sig.len(), 256);
        assert_eq!(init(C_VerifyInit, s, &mut m, public), CKR_OK);
        assert_eq!(verify(s, &data, &sig), CKR_OK, "{ty:#x}");
        // SignFailVerifyWrong.
        let mut bad = sig.clone();
        bad[0] = bad[0].wrapping_add(1);
        assert_eq!(init(C_VerifyInit, s, &mut m, public), CKR_OK);
        assert_eq!(verify(s, &data, &bad), CKR_SIGNATURE_INVALID, "{ty:#x}");
        // SignFailVerifyShort.
        assert_eq!(init(C_VerifyInit, s, &mut m, public), CKR_OK);
        assert_eq!(
            verify(s, &data, &sig[..4]),
            CKR_SIGNATURE_LEN_RANGE,
            "{ty:#x}"
        );
    }
    // Recovery is not offered (SignVerifyRecover skips on this code).
    // SAFETY: the mechanism outlives the call.
    assert_eq!(
        unsafe { C_SignRecoverInit(s, Mech::plain(CKM_RSA_PKCS).ptr(), private) },
        CKR_FUNCTION_NOT_SUPPORTED
    );
}

#[test]
fn hmac_sign_and_verify() {
    let f = Fixture::new();
    let s = f.s;
    for (ty, len) in [
        (CKM_SHA_1_HMAC, 20),
        (CKM_SHA256_HMAC, 32),
        (CKM_SHA384_HMAC, 48),
        (CKM_SHA512_HMAC, 64),
    ] {
        let k = hmac_key(s, &random(64 + (len % 64)));
        let data = random(500);
        let mut m = Mech::plain(ty);
        assert_eq!(init(C_SignInit, s, &mut m, k), CKR_OK);
        let mac = ok(call(C_Sign, s, &data, Out::Cap(1024)), "C_Sign(HMAC)");
        assert_eq!(mac.len(), len);
        assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
        assert_eq!(verify(s, &data, &mac), CKR_OK);
        let mut bad = mac.clone();
        bad[0] = bad[0].wrapping_add(1);
        assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
        assert_eq!(verify(s, &data, &bad), CKR_SIGNATURE_INVALID);
    }
    // HmacTestVectors: RFC 4231 test case 2.
    let k = hmac_key(s, b"Jefe");
    assert_eq!(
        init(C_SignInit, s, &mut Mech::plain(CKM_SHA256_HMAC), k),
        CKR_OK
    );
    assert_eq!(
        hex::encode(ok(
            call(C_Sign, s, b"what do ya want for nothing?", Out::Cap(64)),
            "C_Sign"
        )),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn sign_two_call_convention_and_termination() {
    let f = Fixture::new();
    let s = f.s;
    let (public, private) = p256(s);
    let mut m = Mech::plain(CKM_ECDSA_SHA256);
    let data = random(100);
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
    let q = call(C_Sign, s, &data, Out::Query);
    assert_eq!((q.rv, q.len), (CKR_OK, 64));
    let small = call(C_Sign, s, &data, Out::Cap(1));
    assert_eq!((small.rv, small.len), (CKR_BUFFER_TOO_SMALL, 64));
    let sig = ok(call(C_Sign, s, &data, Out::Cap(64)), "C_Sign");
    assert_eq!(
        call(C_Sign, s, &data, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(init(C_VerifyInit, s, &mut m, public), CKR_OK);
    assert_eq!(verify(s, &data, &sig), CKR_OK);
    // Bad arguments end a signing operation (v3.0 §5.11 C_Sign).
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
    assert_eq!(call(C_Sign, s, &data, Out::NoLen).rv, CKR_ARGUMENTS_BAD);
    assert_eq!(
        call(C_Sign, s, &data, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Multi-part: C_Sign is refused and the operation goes on.
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
    assert_eq!(part(C_SignUpdate, s, &data[..40]), CKR_OK);
    assert_eq!(
        call(C_Sign, s, &data, Out::Cap(64)).rv,
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(part(C_SignUpdate, s, &data[40..]), CKR_OK);
    let q = call_final(C_SignFinal, s, Out::Query);
    assert_eq!((q.rv, q.len), (CKR_OK, 64));
    assert_eq!(
        call_final(C_SignFinal, s, Out::Cap(10)).rv,
        CKR_BUFFER_TOO_SMALL
    );
    let sig = ok(call_final(C_SignFinal, s, Out::Cap(64)), "C_SignFinal");
    assert_eq!(
        call_final(C_SignFinal, s, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(init(C_VerifyInit, s, &mut m, public), CKR_OK);
    assert_eq!(verify(s, &data, &sig), CKR_OK);
    // After a single-part length query, update and final are refused and end it.
    for multi in [true, false] {
        assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
        assert_eq!(call(C_Sign, s, &data, Out::Query).rv, CKR_OK);
        let rv = if multi {
            part(C_SignUpdate, s, &data)
        } else {
            call_final(C_SignFinal, s, Out::Cap(64)).rv
        };
        assert_eq!(rv, CKR_OPERATION_ACTIVE);
        assert_eq!(
            call(C_Sign, s, &data, Out::Cap(64)).rv,
            CKR_OPERATION_NOT_INITIALIZED
        );
    }
    // A final call with bad arguments and an update with bad arguments end it.
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
    assert_eq!(call_final(C_SignFinal, s, Out::NoLen).rv, CKR_ARGUMENTS_BAD);
    assert_eq!(
        call_final(C_SignFinal, s, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
    // SAFETY: NULL with a non-zero length must be refused.
    assert_eq!(unsafe { C_SignUpdate(s, null_mut(), 3) }, CKR_ARGUMENTS_BAD);
    assert_eq!(part(C_SignUpdate, s, &data), CKR_OPERATION_NOT_INITIALIZED);
    // Init twice.
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OK);
    assert_eq!(init(C_SignInit, s, &mut m, private), CKR_OPERATION_ACTIVE);
    assert_eq!(call(C_Sign, s, &data, Out::Cap(64)).rv, CKR_OK);
}

#[test]
fn verify_always_ends_the_operation() {
    let f = Fixture::new();
    let s = f.s;
    let k = hmac_key(s, &random(32));
    let mut m = Mech::plain(CKM_SHA256_HMAC);
    let data = random(64);
    assert_eq!(init(C_SignInit, s, &mut m, k), CKR_OK);
    let mac = ok(call(C_Sign, s, &data, Out::Cap(32)), "C_Sign");
    let mut bad = mac.clone();
    bad[5] ^= 0x40;
    // v3.0 §5.12: "A call to C_Verify always terminates the active
    // verification operation" - whatever the outcome.
    for (sig, want) in [
        (&mac[..], CKR_OK),
        (&bad[..], CKR_SIGNATURE_INVALID),
        (&mac[..4], CKR_SIGNATURE_LEN_RANGE),
    ] {
        assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
        assert_eq!(verify(s, &data, sig), want);
        assert_eq!(verify(s, &data, &mac), CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
        assert_eq!(part(C_VerifyUpdate, s, &data), CKR_OK);
        assert_eq!(verify_final(s, sig), want);
        assert_eq!(verify_final(s, &mac), CKR_OPERATION_NOT_INITIALIZED);
    }
    // ...bad arguments included.
    assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
    let mut sig = mac.clone();
    // SAFETY: NULL data with a non-zero length must be refused.
    assert_eq!(
        unsafe { C_Verify(s, null_mut(), 5, sig.as_mut_ptr(), 32) },
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(verify(s, &data, &mac), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
    assert_eq!(part(C_VerifyUpdate, s, &data), CKR_OK);
    // SAFETY: NULL signature with a non-zero length must be refused.
    assert_eq!(
        unsafe { C_VerifyFinal(s, null_mut(), 32) },
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(verify_final(s, &mac), CKR_OPERATION_NOT_INITIALIZED);
    // C_Verify "cannot be used to terminate a multi-part operation".
    assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
    assert_eq!(part(C_VerifyUpdate, s, &data[..10]), CKR_OK);
    assert_eq!(verify(s, &data, &mac), CKR_OPERATION_ACTIVE);
    assert_eq!(part(C_VerifyUpdate, s, &data[10..]), CKR_OK);
    assert_eq!(verify_final(s, &mac), CKR_OK);
    // An update error ends it.
    assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
    // SAFETY: NULL with a non-zero length must be refused.
    assert_eq!(
        unsafe { C_VerifyUpdate(s, null_mut(), 3) },
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        part(C_VerifyUpdate, s, &data),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Init twice.
    assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OK);
    assert_eq!(init(C_VerifyInit, s, &mut m, k), CKR_OPERATION_ACTIVE);
    assert_eq!(verify(s, &data, &mac), CKR_OK);
}

#[test]
fn keys_of_the_wrong_type_are_refused_at_init() {
    // Seeded call sequences crashed SoftHSM in C_Sign after C_SignInit took an
    // AES key for an RSA mechanism. v3.0 §5.11-§5.12: CKR_KEY_TYPE_INCONSISTENT
    // at init, and no operation afterwards.
    let f = Fixture::new();
    let s = f.s;
    let aes_key = aes(
        s,
        Tmpl::new()
            .bool(CKA_SIGN, true)
            .bool(CKA_VERIFY, true)
            .bool(CKA_WRAP, true),
    );
    let generic = hmac_key(s, &random(32));
    let (rsa_pub, rsa_priv) = rsa(
        s,
        2048,
        Tmpl::new().bool(CKA_VERIFY, true).bool(CKA_ENCRYPT, true),
        Tmpl::new().bool(CKA_SIGN, true).bool(CKA_DECRYPT, true),
    );
    let (ec_pub, ec_priv) = p256(s);
    for (init_fn, single, key, mech) in [
        (
            C_SignInit as InitFn,
            C_Sign as OutFn,
            aes_key,
            CKM_SHA256_RSA_PKCS,
        ),
        (C_SignInit, C_Sign, aes_key, CKM_RSA_PKCS_PSS),
        (C_SignInit, C_Sign, aes_key, CKM_ECDSA),
        (C_SignInit, C_Sign, aes_key, CKM_SHA256_HMAC),
        (C_SignInit, C_Sign, generic, CKM_AES_CMAC),
        (C_SignInit, C_Sign, generic, CKM_ECDSA_SHA256),
        (C_SignInit, C_Sign, rsa_priv, CKM_ECDSA),
        (C_SignInit, C_Sign, rsa_priv, CKM_SHA256_HMAC),
        (C_SignInit, C_Sign, rsa_priv, CKM_EDDSA),
        (C_SignInit, C_Sign, ec_priv, CKM_SHA256_RSA_PKCS),
        (C_SignInit, C_Sign, ec_priv, CKM_AES_CMAC),
        (C_EncryptInit, C_Encrypt, aes_key, CKM_RSA_PKCS),
        (C_EncryptInit, C_Encrypt, aes_key, CKM_RSA_PKCS_OAEP),
        (C_EncryptInit, C_Encrypt, rsa_pub, CKM_AES_ECB),
        (C_EncryptInit, C_Encrypt, rsa_pub, CKM_AES_GCM),
        (C_EncryptInit, C_Encrypt, generic, CKM_AES_CBC_PAD),
    ] {
        let mut m = match mech {
            CKM_AES_CBC_PAD => Mech::bytes(mech, &[0; 16]),
            CKM_RSA_PKCS_PSS => Mech::with(
                mech,
                &CK_RSA_PKCS_PSS_PARAMS {
                    hashAlg: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    sLen: 32,
                },
                Vec::new(),
            ),
            CKM_RSA_PKCS_OAEP => Mech::with(
                mech,
                &CK_RSA_PKCS_OAEP_PARAMS {
                    hashAlg: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    source: CKZ_DATA_SPECIFIED,
                    pSourceData: null_mut(),
                    ulSourceDataLen: 0,
                },
                Vec::new(),
            ),
            CKM_AES_GCM => gcm(&[0; 12], &[], 128),
            _ => Mech::plain(mech),
        };
        assert_eq!(
            init(init_fn, s, &mut m, key),
            CKR_KEY_TYPE_INCONSISTENT,
            "key {key} with mechanism {mech:#x}"
        );
        assert_eq!(
            call(single, s, &[0u8; 32], Out::Cap(1024)).rv,
            CKR_OPERATION_NOT_INITIALIZED,
            "key {key} with mechanism {mech:#x}"
        );
    }
    // A public key cannot sign and a private key cannot verify: the key
    // class is not the right type of key for the usage.
    assert_eq!(
        init(
            C_SignInit,
            s,
            &mut Mech::plain(CKM_SHA256_RSA_PKCS),
            rsa_pub
        ),
        CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        init(C_VerifyInit, s, &mut Mech::plain(CKM_ECDSA), ec_priv),
        CKR_KEY_TYPE_INCONSISTENT
    );
    // A key of the right type without the usage attribute (v3.0 §5.11
    // C_SignInit: CKA_SIGN "MUST be CK_TRUE").
    let no_sign = aes(s, Tmpl::new().bool(CKA_SIGN, false));
    assert_eq!(
        init(C_SignInit, s, &mut Mech::plain(CKM_AES_CMAC), no_sign),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(
        call(C_Sign, s, &[0u8; 32], Out::Cap(1024)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    let _ = ec_pub;
}

// ----- random numbers (rng.cc) ---------------------------------------------------------------

#[test]
fn random_numbers() {
    let _f = token();
    let s = must_open(RO);
    let mut seed = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let mut a = [0u8; 1024];
    let mut b = [0u8; 100];
    // SAFETY: every buffer holds its stated length; NULLs are the point.
    unsafe {
        // v3.0 §5.16: the OS generator takes no seed from applications.
        assert_eq!(
            C_SeedRandom(s, seed.as_mut_ptr(), 8),
            CKR_RANDOM_SEED_NOT_SUPPORTED
        );
        assert_eq!(C_SeedRandom(s, null_mut(), 1), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_SeedRandom(BAD_SESSION, seed.as_mut_ptr(), 8),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(C_GenerateRandom(s, a.as_mut_ptr(), 1024), CKR_OK);
        assert_eq!(C_GenerateRandom(s, a.as_mut_ptr(), 10), CKR_OK);
        assert_eq!(C_GenerateRandom(s, a.as_mut_ptr(), 100), CKR_OK);
        assert_eq!(C_GenerateRandom(s, b.as_mut_ptr(), 100), CKR_OK);
        assert_ne!(a[..100], b[..]);
        assert_eq!(C_GenerateRandom(s, null_mut(), 1), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GenerateRandom(s, a.as_mut_ptr(), 0), CKR_OK);
        assert_eq!(
            C_GenerateRandom(BAD_SESSION, a.as_mut_ptr(), 16),
            CKR_SESSION_HANDLE_INVALID
        );
    }
    assert_ne!(token_info().flags & CKF_RNG, 0);
}

// ----- what is not offered, and the states of every operation kind ----------------------------

#[test]
fn unsupported_functions() {
    let f = Fixture::new();
    let s = f.s;
    let mut buf = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let mut slot: CK_SLOT_ID = 0;
    // SAFETY: every buffer holds its stated length.
    unsafe {
        // GetSetOperationState skips on FUNCTION_NOT_SUPPORTED; the session
        // handle is checked first.
        assert_eq!(
            C_GetOperationState(s, null_mut(), &mut len),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            C_GetOperationState(BAD_SESSION, null_mut(), &mut len),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            C_SetOperationState(BAD_SESSION, buf.as_mut_ptr(), 64, 0, 0),
            CKR_SESSION_HANDLE_INVALID
        );
        // Dual-function calls (dual.cc skips without CKF_DUAL_CRYPTO_OPERATIONS).
        for f in [
            C_DigestEncryptUpdate as OutFn,
            C_DecryptDigestUpdate,
            C_SignEncryptUpdate,
            C_DecryptVerifyUpdate,
        ] {
            assert_eq!(
                f(s, buf.as_mut_ptr(), 16, buf.as_mut_ptr(), &mut len),
                CKR_FUNCTION_NOT_SUPPORTED
            );
        }
        let rv = C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut());
        assert!(
            rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_NO_EVENT,
            "{rv:#x}"
        );
    }
}

#[test]
fn every_operation_call_needs_its_init() {
    let f = Fixture::new();
    let s = f.s;
    let data = [0u8; 16];
    for (name, single, update, final_fn) in [
        (
            "encrypt",
            C_Encrypt as OutFn,
            C_EncryptUpdate as OutFn,
            C_EncryptFinal as FinalFn,
        ),
        ("decrypt", C_Decrypt, C_DecryptUpdate, C_DecryptFinal),
    ] {
        assert_eq!(
            call(single, s, &data, Out::Cap(64)).rv,
            CKR_OPERATION_NOT_INITIALIZED,
            "{name}"
        );
        assert_eq!(
            call(single, s, &data, Out::Query).rv,
            CKR_OPERATION_NOT_INITIALIZED,
            "{name}"
        );
        assert_eq!(
            call(update, s, &data, Out::Cap(64)).rv,
            CKR_OPERATION_NOT_INITIALIZED,
            "{name}"
        );
        assert_eq!(
            call_final(final_fn, s, Out::Cap(64)).rv,
            CKR_OPERATION_NOT_INITIALIZED,
            "{name}"
        );
    }
    assert_eq!(
        call(C_Digest, s, &data, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        part(C_DigestUpdate, s, &data),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // SAFETY: plain value arguments.
    assert_eq!(
        unsafe { C_DigestKey(s, BAD_OBJECT) },
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call_final(C_DigestFinal, s, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call(C_Sign, s, &data, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(part(C_SignUpdate, s, &data), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(
        call_final(C_SignFinal, s, Out::Cap(64)).rv,
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(verify(s, &data, &data), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(
        part(C_VerifyUpdate, s, &data),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(verify_final(s, &data), CKR_OPERATION_NOT_INITIALIZED);
    // Operations of different kinds run side by side in one session.
    let k = aes(s, Tmpl::new());
    let h = hmac_key(s, &random(32));
    assert_eq!(
        init(C_EncryptInit, s, &mut Mech::plain(CKM_AES_ECB), k),
        CKR_OK
    );
    assert_eq!(
        init(C_DecryptInit, s, &mut Mech::plain(CKM_AES_ECB), k),
        CKR_OK
    );
    assert_eq!(digest_init(s, CKM_SHA256), CKR_OK);
    assert_eq!(
        init(C_SignInit, s, &mut Mech::plain(CKM_SHA256_HMAC), h),
        CKR_OK
    );
    assert_eq!(
        init(C_VerifyInit, s, &mut Mech::plain(CKM_SHA256_HMAC), h),
        CKR_OK
    );
    let ct = ok(call(C_Encrypt, s, &data, Out::Cap(64)), "C_Encrypt");
    assert_eq!(ok(call(C_Decrypt, s, &ct, Out::Cap(64)), "C_Decrypt"), data);
    assert_eq!(call(C_Digest, s, &data, Out::Cap(64)).rv, CKR_OK);
    let mac = ok(call(C_Sign, s, &data, Out::Cap(64)), "C_Sign");
    assert_eq!(verify(s, &data, &mac), CKR_OK);
}
