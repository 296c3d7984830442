//! The one error type of the module and its exhaustive mapping to `CK_RV`.
//!
//! Every fallible function below the FFI layer returns [`Result`]. The export
//! macro in `src/ffi/` logs the internal cause (never a secret) and hands the
//! application only the `CK_RV` from [`Error::rv`]. The match in `rv` has no
//! wildcard arm, so a new variant does not compile until it is mapped.

use cryptoki_sys::*;
use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, named by the PKCS#11 return value it maps to
/// (PKCS#11 v3.0 §5.1), plus internal causes that map to a generic code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // --- library state ---
    NotInitialized,
    AlreadyInitialized,
    CantLock,
    FunctionNotSupported,
    FunctionNotParallel,
    ArgumentsBad(&'static str),
    HostMemory,
    /// Internal fault that the application cannot fix (logged with the cause).
    General(String),
    // --- slots, tokens ---
    SlotIdInvalid,
    TokenNotPresent,
    TokenNotRecognized,
    TokenWriteProtected,
    /// The store could not be read or written (I/O, database, corruption).
    Device(String),
    /// A sealed record failed authentication: tampered or damaged.
    Tampered(String),
    DeviceMemory,
    // --- sessions ---
    SessionHandleInvalid,
    SessionClosed,
    SessionCount,
    SessionExists,
    SessionParallelNotSupported,
    SessionReadOnly,
    SessionReadOnlyExists,
    SessionReadWriteSoExists,
    OperationActive,
    OperationNotInitialized,
    // --- users and PINs ---
    UserAlreadyLoggedIn,
    UserAnotherAlreadyLoggedIn,
    UserNotLoggedIn,
    UserPinNotInitialized,
    UserTypeInvalid,
    UserTooManyTypes,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PinExpired,
    // --- objects and attributes ---
    ObjectHandleInvalid,
    AttributeReadOnly,
    AttributeSensitive,
    AttributeTypeInvalid,
    AttributeValueInvalid,
    TemplateIncomplete,
    TemplateInconsistent,
    ActionProhibited,
    // --- keys and mechanisms ---
    KeyHandleInvalid,
    KeySizeRange,
    KeyTypeInconsistent,
    KeyNotNeeded,
    KeyChanged,
    KeyNeeded,
    KeyIndigestible,
    KeyFunctionNotPermitted,
    KeyNotWrappable,
    KeyUnextractable,
    MechanismInvalid,
    MechanismParamInvalid,
    WrappingKeyHandleInvalid,
    WrappingKeySizeRange,
    WrappingKeyTypeInconsistent,
    UnwrappingKeyHandleInvalid,
    UnwrappingKeySizeRange,
    UnwrappingKeyTypeInconsistent,
    WrappedKeyInvalid,
    WrappedKeyLenRange,
    // --- data ---
    DataInvalid,
    DataLenRange,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    SignatureInvalid,
    SignatureLenRange,
    RandomNoRng,
    RandomSeedNotSupported,
    CurveNotSupported,
    DomainParamsInvalid,
    /// The output buffer is too small; `needed` bytes are required (§5.2).
    BufferTooSmall {
        needed: usize,
    },
}

impl Error {
    /// The `CK_RV` the application sees for this error.
    pub fn rv(&self) -> CK_RV {
        use Error::*;
        match self {
            NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            CantLock => CKR_CANT_LOCK,
            FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
            HostMemory => CKR_HOST_MEMORY,
            General(_) => CKR_GENERAL_ERROR,
            SlotIdInvalid => CKR_SLOT_ID_INVALID,
            TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
            TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
            TokenWriteProtected => CKR_TOKEN_WRITE_PROTECTED,
            Device(_) => CKR_DEVICE_ERROR,
            Tampered(_) => CKR_DEVICE_ERROR,
            DeviceMemory => CKR_DEVICE_MEMORY,
            SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            SessionClosed => CKR_SESSION_CLOSED,
            SessionCount => CKR_SESSION_COUNT,
            SessionExists => CKR_SESSION_EXISTS,
            SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            SessionReadOnly => CKR_SESSION_READ_ONLY,
            SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            OperationActive => CKR_OPERATION_ACTIVE,
            OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
            UserTypeInvalid => CKR_USER_TYPE_INVALID,
            UserTooManyTypes => CKR_USER_TOO_MANY_TYPES,
            PinIncorrect => CKR_PIN_INCORRECT,
            PinInvalid => CKR_PIN_INVALID,
            PinLenRange => CKR_PIN_LEN_RANGE,
            PinLocked => CKR_PIN_LOCKED,
            PinExpired => CKR_PIN_EXPIRED,
            ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
            TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
            ActionProhibited => CKR_ACTION_PROHIBITED,
            KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            KeySizeRange => CKR_KEY_SIZE_RANGE,
            KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            KeyNotNeeded => CKR_KEY_NOT_NEEDED,
            KeyChanged => CKR_KEY_CHANGED,
            KeyNeeded => CKR_KEY_NEEDED,
            KeyIndigestible => CKR_KEY_INDIGESTIBLE,
            KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            KeyNotWrappable => CKR_KEY_NOT_WRAPPABLE,
            KeyUnextractable => CKR_KEY_UNEXTRACTABLE,
            MechanismInvalid => CKR_MECHANISM_INVALID,
            MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
            WrappingKeySizeRange => CKR_WRAPPING_KEY_SIZE_RANGE,
            WrappingKeyTypeInconsistent => CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            UnwrappingKeySizeRange => CKR_UNWRAPPING_KEY_SIZE_RANGE,
            UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
            WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
            DataInvalid => CKR_DATA_INVALID,
            DataLenRange => CKR_DATA_LEN_RANGE,
            EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
            EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
            SignatureInvalid => CKR_SIGNATURE_INVALID,
            SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            RandomNoRng => CKR_RANDOM_NO_RNG,
            RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
            CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            DomainParamsInvalid => CKR_DOMAIN_PARAMS_INVALID,
            BufferTooSmall { .. } => CKR_BUFFER_TOO_SMALL,
        }
    }

    /// Shorthand for an internal fault with a cause for the log.
    pub fn general(cause: impl fmt::Display) -> Self {
        Error::General(cause.to_string())
    }

    /// Shorthand for a store fault with a cause for the log.
    pub fn device(cause: impl fmt::Display) -> Self {
        Error::Device(cause.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ArgumentsBad(why) => write!(f, "bad arguments: {why}"),
            Error::General(why) => write!(f, "internal error: {why}"),
            Error::Device(why) => write!(f, "store error: {why}"),
            Error::Tampered(why) => write!(f, "record failed authentication: {why}"),
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small, {needed} bytes needed")
            }
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Device(format!("sqlite: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Device(format!("io: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_too_small_maps_to_its_code() {
        assert_eq!(
            Error::BufferTooSmall { needed: 3 }.rv(),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(Error::Tampered("x".into()).rv(), CKR_DEVICE_ERROR);
        assert_eq!(Error::ArgumentsBad("p").rv(), CKR_ARGUMENTS_BAD);
    }
}
