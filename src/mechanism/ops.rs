//! Operation state kept in a session between C_*Init and the final call.

/// An active encryption or decryption.
pub struct CipherOp {}
/// An active digest.
pub struct DigestOp {}
/// An active signature or MAC.
pub struct SignOp {}
/// An active verification.
pub struct VerifyOp {}
/// An active message-based (v3.0 §5.13) encryption or decryption.
pub struct MessageOp {}
