//! Every exported `C_*` function. Each body converts pointers with the
//! helpers of [`super`] and calls the safe layer ([`crate::module`]).

use super::mechanism::{mechanism_in, mechanism_type_in, GcmMessageParams};
use super::{
    attributes_out, bytes_in, export, out_bytes, out_bytes_direct, out_list, read_in, template_in,
    to_usize, types_in, write_out,
};
use crate::error::{Error, Result};
use crate::module::{self, InitArgs};
use cryptoki_sys::*;
use std::ffi::c_void;

/// Reads a PIN; NULL is `CKR_ARGUMENTS_BAD` (no protected authentication path).
unsafe fn pin_in<'a>(p: *const CK_UTF8CHAR, len: CK_ULONG) -> Result<&'a [u8]> {
    if p.is_null() {
        return Err(Error::ArgumentsBad(
            "NULL PIN: this token has no protected authentication path",
        ));
    }
    // SAFETY: `p` holds `len` bytes per the PKCS#11 contract of the caller.
    unsafe { bytes_in(p, len) }
}

export! {
    /// C_Initialize (v3.0 §5.4).
    fn C_Initialize(pInitArgs: *mut c_void) {
        let mut args = InitArgs::default();
        if !pInitArgs.is_null() {
            // SAFETY: a non-NULL argument points to CK_C_INITIALIZE_ARGS.
            let a: CK_C_INITIALIZE_ARGS = unsafe { read_in(pInitArgs as *const CK_C_INITIALIZE_ARGS)? };
            if !a.pReserved.is_null() {
                return Err(Error::ArgumentsBad("pReserved must be NULL"));
            }
            args.os_locking_ok = a.flags & CKF_OS_LOCKING_OK != 0;
            args.mutex_callbacks = [a.CreateMutex.is_some(), a.DestroyMutex.is_some(), a.LockMutex.is_some(), a.UnlockMutex.is_some()]
                .iter()
                .map(|b| u8::from(*b))
                .sum();
        }
        module::initialize(args)
    }

    /// C_Finalize (v3.0 §5.4).
    fn C_Finalize(pReserved: *mut c_void) {
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad("pReserved must be NULL"));
        }
        module::finalize()
    }

    fn C_GetInfo(pInfo: *mut CK_INFO) {
        module::get()?;
        // SAFETY: out-pointer from the application.
        unsafe { write_out(pInfo, module::info()) }
    }

    fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) {
        // SAFETY: out-pointer from the application.
        unsafe { write_out(ppFunctionList, super::tables::function_list_v2()) }
    }

    fn C_GetInterfaceList(pInterfacesList: *mut CK_INTERFACE, pulCount: *mut CK_ULONG) {
        let list = super::tables::interfaces();
        // SAFETY: out-pointers from the application (§5.2 list convention).
        unsafe { out_list(pInterfacesList, pulCount, &list) }
    }

    fn C_GetInterface(pInterfaceName: *mut CK_UTF8CHAR, pVersion: *mut CK_VERSION, ppInterface: *mut *mut CK_INTERFACE, flags: CK_FLAGS) {
        let name = if pInterfaceName.is_null() {
            None
        } else {
            // SAFETY: a non-NULL name is a NUL-terminated string.
            Some(unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) }.to_bytes().to_vec())
        };
        let version = if pVersion.is_null() {
            None
        } else {
            // SAFETY: a non-NULL version points to a CK_VERSION.
            Some(unsafe { read_in(pVersion)? })
        };
        let found = super::tables::find_interface(name.as_deref(), version, flags)?;
        // SAFETY: out-pointer from the application.
        unsafe { write_out(ppInterface, found) }
    }

    fn C_GetSlotList(tokenPresent: CK_BBOOL, pSlotList: *mut CK_SLOT_ID, pulCount: *mut CK_ULONG) {
        let _ = tokenPresent; // every slot shows a token (initialised or not)
        let list = module::get()?.slot_list()?;
        // SAFETY: out-pointers from the application.
        unsafe { out_list(pSlotList, pulCount, &list) }
    }

    fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) {
        let info = module::get()?.slot_info(slotID)?;
        // SAFETY: out-pointer from the application.
        unsafe { write_out(pInfo, info) }
    }

    fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) {
        let info = module::get()?.token_info(slotID)?;
        // SAFETY: out-pointer from the application.
        unsafe { write_out(pInfo, info) }
    }

    fn C_GetMechanismList(slotID: CK_SLOT_ID, pMechanismList: *mut CK_MECHANISM_TYPE, pulCount: *mut CK_ULONG) {
        let list = module::get()?.mechanism_list(slotID)?;
        // SAFETY: out-pointers from the application.
        unsafe { out_list(pMechanismList, pulCount, &list) }
    }

    fn C_GetMechanismInfo(slotID: CK_SLOT_ID, type_: CK_MECHANISM_TYPE, pInfo: *mut CK_MECHANISM_INFO) {
        let info = module::get()?.mechanism_info(slotID, type_)?;
        // SAFETY: out-pointer from the application.
        unsafe { write_out(pInfo, info) }
    }

    fn C_InitToken(slotID: CK_SLOT_ID, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG, pLabel: *mut CK_UTF8CHAR) {
        let m = module::get()?;
        // SAFETY: PIN pointer and length from the application.
        let pin = unsafe { pin_in(pPin, ulPinLen)? };
        // SAFETY: the label is a 32-byte blank-padded field (v3.0 §5.5).
        let label: [u8; 32] = unsafe { read_in(pLabel as *const [u8; 32])? };
        m.init_token(slotID, pin, &label)
    }

    fn C_InitPIN(hSession: CK_SESSION_HANDLE, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG) {
        let m = module::get()?;
        // SAFETY: PIN pointer and length from the application.
        let pin = unsafe { pin_in(pPin, ulPinLen)? };
        m.init_pin(hSession, pin)
    }

    fn C_SetPIN(hSession: CK_SESSION_HANDLE, pOldPin: *mut CK_UTF8CHAR, ulOldLen: CK_ULONG, pNewPin: *mut CK_UTF8CHAR, ulNewLen: CK_ULONG) {
        let m = module::get()?;
        // SAFETY: PIN pointers and lengths from the application.
        let (old, new) = unsafe { (pin_in(pOldPin, ulOldLen)?, pin_in(pNewPin, ulNewLen)?) };
        m.set_pin(hSession, old, new)
    }

    fn C_OpenSession(slotID: CK_SLOT_ID, flags: CK_FLAGS, pApplication: *mut c_void, Notify: CK_NOTIFY, phSession: *mut CK_SESSION_HANDLE) {
        let _ = (pApplication, Notify); // no callbacks are ever made
        let m = module::get()?;
        if phSession.is_null() {
            return Err(Error::ArgumentsBad("NULL session handle pointer"));
        }
        let h = m.open_session(slotID, flags)?;
        // SAFETY: checked non-NULL; out-pointer from the application.
        unsafe { write_out(phSession, h) }
    }

    fn C_CloseSession(hSession: CK_SESSION_HANDLE) {
        module::get()?.close_session(hSession)
    }

    fn C_CloseAllSessions(slotID: CK_SLOT_ID) {
        module::get()?.close_all_sessions(slotID)
    }

    fn C_GetSessionInfo(hSession: CK_SESSION_HANDLE, pInfo: *mut CK_SESSION_INFO) {
        let info = module::get()?.session(hSession)?.info();
        // SAFETY: out-pointer from the application.
        unsafe { write_out(pInfo, info) }
    }

    fn C_GetOperationState(hSession: CK_SESSION_HANDLE, pOperationState: *mut CK_BYTE, pulOperationStateLen: *mut CK_ULONG) {
        let _ = (pOperationState, pulOperationStateLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SetOperationState(hSession: CK_SESSION_HANDLE, pOperationState: *mut CK_BYTE, ulOperationStateLen: CK_ULONG, hEncryptionKey: CK_OBJECT_HANDLE, hAuthenticationKey: CK_OBJECT_HANDLE) {
        let _ = (pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_Login(hSession: CK_SESSION_HANDLE, userType: CK_USER_TYPE, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: PIN pointer and length from the application.
        let pin = unsafe { pin_in(pPin, ulPinLen)? };
        m.login(hSession, userType, pin, None)
    }

    fn C_LoginUser(hSession: CK_SESSION_HANDLE, userType: CK_USER_TYPE, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG, pUsername: *mut CK_UTF8CHAR, ulUsernameLen: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: pointers and lengths from the application.
        let (pin, user) = unsafe { (pin_in(pPin, ulPinLen)?, bytes_in(pUsername, ulUsernameLen)?) };
        m.login(hSession, userType, pin, Some(user))
    }

    fn C_Logout(hSession: CK_SESSION_HANDLE) {
        module::get()?.logout(hSession)
    }

    fn C_CreateObject(hSession: CK_SESSION_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG, phObject: *mut CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if phObject.is_null() {
            return Err(Error::ArgumentsBad("NULL object handle pointer"));
        }
        // SAFETY: template from the application.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        let h = m.create_object(hSession, &t)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(phObject, h) }
    }

    fn C_CopyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG, phNewObject: *mut CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if phNewObject.is_null() {
            return Err(Error::ArgumentsBad("NULL object handle pointer"));
        }
        // SAFETY: template from the application.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        let h = m.copy_object(hSession, hObject, &t)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(phNewObject, h) }
    }

    fn C_DestroyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE) {
        module::get()?.destroy_object(hSession, hObject)
    }

    fn C_GetObjectSize(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pulSize: *mut CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        if pulSize.is_null() {
            return Err(Error::ArgumentsBad("NULL size pointer"));
        }
        let n = m.object_size(hSession, hObject)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(pulSize, super::to_ulong(n)?) }
    }

    fn C_GetAttributeValue(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: template from the application.
        let types = unsafe { types_in(pTemplate, ulCount)? };
        let results = m.get_attributes(hSession, hObject, &types)?;
        // SAFETY: the same template, now written.
        unsafe { attributes_out(pTemplate, results) }
    }

    fn C_SetAttributeValue(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: template from the application.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        m.set_attributes(hSession, hObject, &t)
    }

    fn C_FindObjectsInit(hSession: CK_SESSION_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: template from the application.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        m.find_init(hSession, &t)
    }

    fn C_FindObjects(hSession: CK_SESSION_HANDLE, phObject: *mut CK_OBJECT_HANDLE, ulMaxObjectCount: CK_ULONG, pulObjectCount: *mut CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount > 0) {
            return Err(Error::ArgumentsBad("NULL handle array or count pointer"));
        }
        let found = m.find_next(hSession, to_usize(ulMaxObjectCount)?)?;
        for (i, h) in found.iter().enumerate() {
            // SAFETY: the array holds ulMaxObjectCount >= found.len() handles.
            unsafe { phObject.add(i).write_unaligned(*h) };
        }
        // SAFETY: checked non-NULL.
        unsafe { write_out(pulObjectCount, super::to_ulong(found.len())?) }
    }

    fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) {
        module::get()?.find_final(hSession)
    }

    fn C_EncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if pMechanism.is_null() {
            // v3.0 §5.8-§5.12: a NULL mechanism cancels.
            return m.cancel(hSession, crate::mechanism::run::Slot::Encrypt);
        }
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_in(pMechanism)? };
        m.crypt_init(hSession, true, &mech, hKey)
    }

    fn C_Encrypt(hSession: CK_SESSION_HANDLE, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pEncryptedData: *mut CK_BYTE, pulEncryptedDataLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input and output buffers from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Encrypt, || unsafe { bytes_in(pData, ulDataLen) }.and_then(|data| unsafe {
            out_bytes_direct(pEncryptedData, pulEncryptedDataLen, Some(data), |cap, direct| m.crypt(&s, true, data, cap, direct))
        }))
    }

    fn C_EncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG, pEncryptedPart: *mut CK_BYTE, pulEncryptedPartLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input and output buffers from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Encrypt, || unsafe { bytes_in(pPart, ulPartLen) }.and_then(|data| unsafe {
            out_bytes(pEncryptedPart, pulEncryptedPartLen, |cap| m.crypt_update(&s, true, data, cap))
        }))
    }

    fn C_EncryptFinal(hSession: CK_SESSION_HANDLE, pLastEncryptedPart: *mut CK_BYTE, pulLastEncryptedPartLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: output buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Encrypt, || unsafe { out_bytes(pLastEncryptedPart, pulLastEncryptedPartLen, |cap| m.crypt_final(&s, true, cap)) })
    }

    fn C_DecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if pMechanism.is_null() {
            // v3.0 §5.8-§5.12: a NULL mechanism cancels.
            return m.cancel(hSession, crate::mechanism::run::Slot::Decrypt);
        }
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_in(pMechanism)? };
        m.crypt_init(hSession, false, &mech, hKey)
    }

    fn C_Decrypt(hSession: CK_SESSION_HANDLE, pEncryptedData: *mut CK_BYTE, ulEncryptedDataLen: CK_ULONG, pData: *mut CK_BYTE, pulDataLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input and output buffers from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Decrypt, || unsafe { bytes_in(pEncryptedData, ulEncryptedDataLen) }.and_then(|data| unsafe {
            out_bytes(pData, pulDataLen, |cap| m.crypt(&s, false, data, cap, None))
        }))
    }

    fn C_DecryptUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: *mut CK_BYTE, ulEncryptedPartLen: CK_ULONG, pPart: *mut CK_BYTE, pulPartLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input and output buffers from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Decrypt, || unsafe { bytes_in(pEncryptedPart, ulEncryptedPartLen) }.and_then(|data| unsafe {
            out_bytes(pPart, pulPartLen, |cap| m.crypt_update(&s, false, data, cap))
        }))
    }

    fn C_DecryptFinal(hSession: CK_SESSION_HANDLE, pLastPart: *mut CK_BYTE, pulLastPartLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: output buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Decrypt, || unsafe { out_bytes(pLastPart, pulLastPartLen, |cap| m.crypt_final(&s, false, cap)) })
    }

    fn C_DigestInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM) {
        let m = module::get()?;
        m.session(hSession)?;
        if pMechanism.is_null() {
            // v3.0 §5.10: a NULL mechanism cancels.
            return m.cancel(hSession, crate::mechanism::run::Slot::Digest);
        }
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_in(pMechanism)? };
        m.digest_init(hSession, &mech)
    }

    fn C_Digest(hSession: CK_SESSION_HANDLE, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pDigest: *mut CK_BYTE, pulDigestLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input and output buffers from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Digest, || unsafe { bytes_in(pData, ulDataLen) }.and_then(|data| unsafe {
            out_bytes(pDigest, pulDigestLen, |cap| m.digest(&s, data, cap))
        }))
    }

    fn C_DigestUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Digest, || unsafe { bytes_in(pPart, ulPartLen) }.and_then(|data| m.digest_update(&s, data)))
    }

    fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        m.end_on_error(&s, crate::mechanism::run::Slot::Digest, || m.digest_key(&s, hKey))
    }

    fn C_DigestFinal(hSession: CK_SESSION_HANDLE, pDigest: *mut CK_BYTE, pulDigestLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: output buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Digest, || unsafe { out_bytes(pDigest, pulDigestLen, |cap| m.digest_final(&s, cap)) })
    }

    fn C_SignInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if pMechanism.is_null() {
            // v3.0 §5.8-§5.12: a NULL mechanism cancels.
            return m.cancel(hSession, crate::mechanism::run::Slot::Sign);
        }
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_in(pMechanism)? };
        m.sign_init(hSession, &mech, hKey)
    }

    fn C_Sign(hSession: CK_SESSION_HANDLE, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input and output buffers from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Sign, || unsafe { bytes_in(pData, ulDataLen) }.and_then(|data| unsafe {
            out_bytes(pSignature, pulSignatureLen, |cap| m.sign(&s, data, cap))
        }))
    }

    fn C_SignUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Sign, || unsafe { bytes_in(pPart, ulPartLen) }.and_then(|data| m.sign_update(&s, data)))
    }

    fn C_SignFinal(hSession: CK_SESSION_HANDLE, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: output buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Sign, || unsafe { out_bytes(pSignature, pulSignatureLen, |cap| m.sign_final(&s, cap)) })
    }

    fn C_SignRecoverInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let _ = (pMechanism, hKey);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SignRecover(hSession: CK_SESSION_HANDLE, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG) {
        let _ = (pData, ulDataLen, pSignature, pulSignatureLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_VerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if pMechanism.is_null() {
            // v3.0 §5.8-§5.12: a NULL mechanism cancels.
            return m.cancel(hSession, crate::mechanism::run::Slot::Verify);
        }
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_in(pMechanism)? };
        m.verify_init(hSession, &mech, hKey)
    }

    fn C_Verify(hSession: CK_SESSION_HANDLE, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input buffers from the application.
        m.end_always(&s, crate::mechanism::run::Slot::Verify, || unsafe { bytes_in(pData, ulDataLen).and_then(|d| Ok((d, bytes_in(pSignature, ulSignatureLen)?))) }
            .and_then(|(data, sig)| m.verify(&s, data, sig)))
    }

    fn C_VerifyUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input buffer from the application.
        m.end_on_error(&s, crate::mechanism::run::Slot::Verify, || unsafe { bytes_in(pPart, ulPartLen) }.and_then(|data| m.verify_update(&s, data)))
    }

    fn C_VerifyFinal(hSession: CK_SESSION_HANDLE, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: input buffer from the application.
        m.end_always(&s, crate::mechanism::run::Slot::Verify, || unsafe { bytes_in(pSignature, ulSignatureLen) }.and_then(|sig| m.verify_final(&s, sig)))
    }

    fn C_VerifyRecoverInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let _ = (pMechanism, hKey);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_VerifyRecover(hSession: CK_SESSION_HANDLE, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG, pData: *mut CK_BYTE, pulDataLen: *mut CK_ULONG) {
        let _ = (pSignature, ulSignatureLen, pData, pulDataLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_DigestEncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG, pEncryptedPart: *mut CK_BYTE, pulEncryptedPartLen: *mut CK_ULONG) {
        let _ = (pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_DecryptDigestUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: *mut CK_BYTE, ulEncryptedPartLen: CK_ULONG, pPart: *mut CK_BYTE, pulPartLen: *mut CK_ULONG) {
        let _ = (pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SignEncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG, pEncryptedPart: *mut CK_BYTE, pulEncryptedPartLen: *mut CK_ULONG) {
        let _ = (pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_DecryptVerifyUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: *mut CK_BYTE, ulEncryptedPartLen: CK_ULONG, pPart: *mut CK_BYTE, pulPartLen: *mut CK_ULONG) {
        let _ = (pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_GenerateKey(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG, phKey: *mut CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad("NULL key handle pointer"));
        }
        // SAFETY: mechanism and template from the application.
        let (mech, t) = unsafe { (mechanism_in(pMechanism)?, template_in(pTemplate, ulCount)?) };
        let h = m.generate_key(hSession, &mech, &t)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(phKey, h) }
    }

    fn C_GenerateKeyPair(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, pPublicKeyTemplate: *mut CK_ATTRIBUTE, ulPublicKeyAttributeCount: CK_ULONG, pPrivateKeyTemplate: *mut CK_ATTRIBUTE, ulPrivateKeyAttributeCount: CK_ULONG, phPublicKey: *mut CK_OBJECT_HANDLE, phPrivateKey: *mut CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(Error::ArgumentsBad("NULL key handle pointer"));
        }
        // SAFETY: mechanism and templates from the application.
        let (mech, pt, st) = unsafe {
            (mechanism_in(pMechanism)?, template_in(pPublicKeyTemplate, ulPublicKeyAttributeCount)?, template_in(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?)
        };
        let (hp, hs) = m.generate_key_pair(hSession, &mech, &pt, &st)?;
        // SAFETY: checked non-NULL.
        unsafe {
            write_out(phPublicKey, hp)?;
            write_out(phPrivateKey, hs)
        }
    }

    fn C_WrapKey(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hWrappingKey: CK_OBJECT_HANDLE, hKey: CK_OBJECT_HANDLE, pWrappedKey: *mut CK_BYTE, pulWrappedKeyLen: *mut CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_in(pMechanism)? };
        // SAFETY: output buffer from the application.
        unsafe { out_bytes(pWrappedKey, pulWrappedKeyLen, |cap| m.wrap_key(hSession, &mech, hWrappingKey, hKey, cap)) }
    }

    fn C_UnwrapKey(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hUnwrappingKey: CK_OBJECT_HANDLE, pWrappedKey: *mut CK_BYTE, ulWrappedKeyLen: CK_ULONG, pTemplate: *mut CK_ATTRIBUTE, ulAttributeCount: CK_ULONG, phKey: *mut CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad("NULL key handle pointer"));
        }
        // SAFETY: mechanism, wrapped key and template from the application.
        let (mech, wrapped, t) = unsafe {
            (mechanism_in(pMechanism)?, bytes_in(pWrappedKey, ulWrappedKeyLen)?, template_in(pTemplate, ulAttributeCount)?)
        };
        let h = m.unwrap_key(hSession, &mech, hUnwrappingKey, wrapped, &t)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(phKey, h) }
    }

    fn C_DeriveKey(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hBaseKey: CK_OBJECT_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulAttributeCount: CK_ULONG, phKey: *mut CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: mechanism and template from the application.
        let (mech, t) = unsafe { (mechanism_in(pMechanism)?, template_in(pTemplate, ulAttributeCount)?) };
        let h = m.derive_key(hSession, &mech, hBaseKey, &t)?;
        if let Some(h) = h {
            // SAFETY: out-pointer from the application.
            unsafe { write_out(phKey, h)? };
        }
        Ok(())
    }

    fn C_SeedRandom(hSession: CK_SESSION_HANDLE, pSeed: *mut CK_BYTE, ulSeedLen: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: input buffer from the application.
        let _seed = unsafe { bytes_in(pSeed, ulSeedLen)? };
        // The OS CSPRNG cannot be seeded from here (v3.0 §5.16).
        Err(Error::RandomSeedNotSupported)
    }

    fn C_GenerateRandom(hSession: CK_SESSION_HANDLE, RandomData: *mut CK_BYTE, ulRandomLen: CK_ULONG) {
        let m = module::get()?;
        m.session(hSession)?;
        let n = to_usize(ulRandomLen)?;
        if n == 0 {
            return Ok(());
        }
        if RandomData.is_null() {
            return Err(Error::ArgumentsBad("NULL random buffer"));
        }
        // SAFETY: the buffer holds ulRandomLen writable bytes (caller).
        let buf = unsafe { std::slice::from_raw_parts_mut(RandomData, n) };
        getrandom::fill(buf).map_err(|e| Error::general(format!("getrandom: {e}")))
    }

    fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) {
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotParallel)
    }

    fn C_CancelFunction(hSession: CK_SESSION_HANDLE) {
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotParallel)
    }

    fn C_WaitForSlotEvent(flags: CK_FLAGS, pSlot: *mut CK_SLOT_ID, pRserved: *mut c_void) {
        let _ = (flags, pSlot, pRserved);
        module::get()?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) {
        module::get()?.session_cancel(hSession, flags)
    }

    fn C_MessageEncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_type_in(pMechanism)? };
        m.message_init(hSession, true, &mech, hKey)
    }

    fn C_EncryptMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG, pPlaintext: *mut CK_BYTE, ulPlaintextLen: CK_ULONG, pCiphertext: *mut CK_BYTE, pulCiphertextLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: parameter, inputs and output buffer from the application.
        unsafe {
            let params = GcmMessageParams::read(pParameter, ulParameterLen)?;
            let aad = bytes_in(pAssociatedData, ulAssociatedDataLen)?;
            let pt = bytes_in(pPlaintext, ulPlaintextLen)?;
            let mut written: Option<(Option<Vec<u8>>, Vec<u8>)> = None;
            out_bytes(pCiphertext, pulCiphertextLen, |cap| {
                let (out, iv, tag) = m.encrypt_message(&s, params.to_param()?, aad, pt, cap)?;
                if let Some(tag) = tag {
                    written = Some((iv, tag));
                }
                Ok(out)
            })?;
            if let Some((iv, tag)) = written {
                params.write_back(iv.as_deref(), Some(&tag))?;
            }
            Ok(())
        }
    }

    fn C_EncryptMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: parameter and associated data from the application.
        unsafe {
            let params = GcmMessageParams::read(pParameter, ulParameterLen)?;
            let aad = bytes_in(pAssociatedData, ulAssociatedDataLen)?;
            if let Some(iv) = m.message_begin(&s, true, params.to_param()?, aad)? {
                params.write_back(Some(&iv), None)?;
            }
            Ok(())
        }
    }

    fn C_EncryptMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pPlaintextPart: *mut CK_BYTE, ulPlaintextPartLen: CK_ULONG, pCiphertextPart: *mut CK_BYTE, pulCiphertextPartLen: *mut CK_ULONG, flags: CK_FLAGS) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        let end = flags & CKF_END_OF_MESSAGE != 0;
        // SAFETY: parameter, input and output buffers from the application.
        unsafe {
            let params = GcmMessageParams::read(pParameter, ulParameterLen)?;
            let part = bytes_in(pPlaintextPart, ulPlaintextPartLen)?;
            let mut tag_out = None;
            out_bytes(pCiphertextPart, pulCiphertextPartLen, |cap| {
                let (out, tag) = m.message_next(&s, true, part, &[], end, cap)?;
                tag_out = tag;
                Ok(out)
            })?;
            if let Some(tag) = tag_out {
                params.write_back(None, Some(&tag))?;
            }
            Ok(())
        }
    }

    fn C_MessageEncryptFinal(hSession: CK_SESSION_HANDLE) {
        module::get()?.message_final(hSession, true)
    }

    fn C_MessageDecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let m = module::get()?;
        m.session(hSession)?;
        // SAFETY: mechanism from the application.
        let mech = unsafe { mechanism_type_in(pMechanism)? };
        m.message_init(hSession, false, &mech, hKey)
    }

    fn C_DecryptMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG, pCiphertext: *mut CK_BYTE, ulCiphertextLen: CK_ULONG, pPlaintext: *mut CK_BYTE, pulPlaintextLen: *mut CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: parameter, inputs and output buffer from the application.
        unsafe {
            let params = GcmMessageParams::read(pParameter, ulParameterLen)?;
            let aad = bytes_in(pAssociatedData, ulAssociatedDataLen)?;
            let ct = bytes_in(pCiphertext, ulCiphertextLen)?;
            let tag = params.tag_in()?;
            out_bytes(pPlaintext, pulPlaintextLen, |cap| m.decrypt_message(&s, params.to_param()?, &tag, aad, ct, cap))
        }
    }

    fn C_DecryptMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        // SAFETY: parameter and associated data from the application.
        unsafe {
            let params = GcmMessageParams::read(pParameter, ulParameterLen)?;
            let aad = bytes_in(pAssociatedData, ulAssociatedDataLen)?;
            m.message_begin(&s, false, params.to_param()?, aad).map(|_| ())
        }
    }

    fn C_DecryptMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pCiphertextPart: *mut CK_BYTE, ulCiphertextPartLen: CK_ULONG, pPlaintextPart: *mut CK_BYTE, pulPlaintextPartLen: *mut CK_ULONG, flags: CK_FLAGS) {
        let m = module::get()?;
        let s = m.session(hSession)?;
        let end = flags & CKF_END_OF_MESSAGE != 0;
        // SAFETY: parameter, input and output buffers from the application.
        unsafe {
            let params = GcmMessageParams::read(pParameter, ulParameterLen)?;
            let part = bytes_in(pCiphertextPart, ulCiphertextPartLen)?;
            let tag = if end { params.tag_in()? } else { Vec::new() };
            out_bytes(pPlaintextPart, pulPlaintextPartLen, |cap| {
                m.message_next(&s, false, part, &tag, end, cap).map(|(out, _)| out)
            })
        }
    }

    fn C_MessageDecryptFinal(hSession: CK_SESSION_HANDLE) {
        module::get()?.message_final(hSession, false)
    }

    fn C_MessageSignInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let _ = (pMechanism, hKey);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SignMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG) {
        let _ = (pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SignMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG) {
        let _ = (pParameter, ulParameterLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_SignMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG) {
        let _ = (pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_MessageSignFinal(hSession: CK_SESSION_HANDLE) {
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_MessageVerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let _ = (pMechanism, hKey);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_VerifyMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG) {
        let _ = (pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_VerifyMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG) {
        let _ = (pParameter, ulParameterLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_VerifyMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG) {
        let _ = (pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen);
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }

    fn C_MessageVerifyFinal(hSession: CK_SESSION_HANDLE) {
        module::get()?.session(hSession)?;
        Err(Error::FunctionNotSupported)
    }
}
