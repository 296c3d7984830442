//! The immutable function tables and the interfaces that hand them out
//! (v2.40 `C_GetFunctionList`, v3.0 `C_GetInterfaceList`/`C_GetInterface`).

use super::exports::*;
use crate::error::{Error, Result};
use cryptoki_sys::*;

macro_rules! v2_entries {
    ($version:expr; $($extra:ident),*) => {
        CK_FUNCTION_LIST_3_0 {
            version: $version,
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

/// The v3.0 table (a superset of the v2.40 layout).
static FUNCTIONS_V3: CK_FUNCTION_LIST_3_0 = v2_entries!(CK_VERSION { major: 3, minor: 0 };
    C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
    C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext, C_MessageEncryptFinal,
    C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin, C_DecryptMessageNext, C_MessageDecryptFinal,
    C_MessageSignInit, C_SignMessage, C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal,
    C_MessageVerifyInit, C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal);

/// The v2.40 table: the same functions, reporting version 2.40. Its first
/// fields are laid out exactly as `CK_FUNCTION_LIST`.
static FUNCTIONS_V2: CK_FUNCTION_LIST_3_0 = v2_entries!(CK_VERSION { major: 2, minor: 40 };
    C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
    C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext, C_MessageEncryptFinal,
    C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin, C_DecryptMessageNext, C_MessageDecryptFinal,
    C_MessageSignInit, C_SignMessage, C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal,
    C_MessageVerifyInit, C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal);

// The v2.40 layout is a prefix of the v3.0 one: check it at compile time.
const _: () = {
    assert!(
        std::mem::offset_of!(CK_FUNCTION_LIST_3_0, C_WaitForSlotEvent)
            == std::mem::offset_of!(CK_FUNCTION_LIST, C_WaitForSlotEvent)
    );
    assert!(std::mem::size_of::<CK_FUNCTION_LIST>() <= std::mem::size_of::<CK_FUNCTION_LIST_3_0>());
};

/// Pointer to the v2.40 function list (never written through).
pub(crate) fn function_list_v2() -> *mut CK_FUNCTION_LIST {
    &FUNCTIONS_V2 as *const CK_FUNCTION_LIST_3_0 as *mut CK_FUNCTION_LIST
}

static INTERFACE_NAME: &[u8; 8] = b"PKCS 11\0";

/// The interfaces offered, v3.0 first (the default).
const INTERFACE_LIST: [CK_INTERFACE; 2] = [
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_CHAR,
        pFunctionList: &FUNCTIONS_V3 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_CHAR,
        pFunctionList: &FUNCTIONS_V2 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags: 0,
    },
];

/// The structures C_GetInterface hands out. They live in writable memory
/// because some callers (OpenSC's pkcs11-spy) write their own function list
/// into the returned `CK_INTERFACE`; C_GetInterfaceList copies from the
/// constant [`INTERFACE_LIST`], so such writes never change what we offer.
struct InterfaceTable(std::cell::UnsafeCell<[CK_INTERFACE; 2]>);
// SAFETY: this module never reads or writes the cell after creation; it only
// hands out pointers into it, as PKCS#11 v3.0 §5.4 C_GetInterface requires.
unsafe impl Sync for InterfaceTable {}

static INTERFACES: InterfaceTable = InterfaceTable(std::cell::UnsafeCell::new(INTERFACE_LIST));

/// Copies of the interfaces for C_GetInterfaceList.
pub(crate) fn interfaces() -> [CK_INTERFACE; 2] {
    INTERFACE_LIST
}

/// C_GetInterface: by name (only "PKCS 11"), optional version and flags.
pub(crate) fn find_interface(
    name: Option<&[u8]>,
    version: Option<CK_VERSION>,
    flags: CK_FLAGS,
) -> Result<*mut CK_INTERFACE> {
    if let Some(n) = name {
        if n != &INTERFACE_NAME[..7] {
            return Err(Error::ArgumentsBad("unknown interface name"));
        }
    }
    if flags != 0 {
        return Err(Error::ArgumentsBad(
            "no interface offers the requested flags",
        ));
    }
    let pick = match version {
        None => 0,
        Some(CK_VERSION { major: 3, minor: 0 }) => 0,
        Some(CK_VERSION {
            major: 2,
            minor: 40,
        }) => 1,
        Some(_) => return Err(Error::ArgumentsBad("interface version not offered")),
    };
    // Pointer arithmetic only (no reference into the cell is formed).
    Ok((INTERFACES.0.get() as *mut CK_INTERFACE).wrapping_add(pick))
}
