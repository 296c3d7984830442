//! Key material: checks and completion for imported keys, the encodings of
//! EC points and parameters, and keys prepared once for the provider.

use crate::crypto::{
    self, Curve, EcPrivateKey, EcPublicKey, RsaPrivateKey, RsaPrivateParts, RsaPublicKey,
};
use crate::error::{Error, Result};
use crate::object::attr::{Attribute, Value};
use crate::object::Object;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// Bit length of a big-endian unsigned integer.
pub fn modulus_bits(n: &[u8]) -> u64 {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() as u64 - 1) * 8 + u64::from(8 - n[0].leading_zeros())
}

/// The named curve of CKA_EC_PARAMS (a DER OID), or `CKR_CURVE_NOT_SUPPORTED`.
pub fn curve_of(params: &[u8]) -> Result<Curve> {
    Curve::from_oid_der(params).ok_or(Error::CurveNotSupported)
}

/// CKA_EC_POINT: the uncompressed point as a DER OCTET STRING (v3.0 §6.3.3).
pub fn ec_point_der(point: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(point.len() + 3);
    out.push(0x04);
    if point.len() < 0x80 {
        out.push(point.len() as u8);
    } else {
        out.push(0x81);
        out.push(point.len() as u8);
    }
    out.extend_from_slice(point);
    out
}

/// The raw point inside CKA_EC_POINT; a bare point is accepted too.
pub fn ec_point_raw(der: &[u8]) -> &[u8] {
    match der {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => der,
    }
}

/// AES CKA_CHECK_VALUE: the first 3 bytes of ECB(key, 0^128) (v3.0 §6.8.1).
pub fn aes_check_value(key: &[u8]) -> Result<Vec<u8>> {
    let out = crypto::provider()
        .aes_oneshot(crypto::AesMode::Ecb, key, true, &[0u8; 16])
        .map_err(|_| Error::AttributeValueInvalid)?;
    Ok(out[..3].to_vec())
}

fn required<'a>(obj: &'a Object, ty: CK_ATTRIBUTE_TYPE) -> Result<&'a [u8]> {
    obj.bytes(ty).ok_or(Error::TemplateIncomplete)
}

/// Validates key material given by the application and adds the attributes
/// the token computes (CKA_VALUE_LEN, CKA_MODULUS_BITS, the EC point of a
/// private key, CKA_CHECK_VALUE).
pub fn complete_imported(mut obj: Object) -> Result<Object> {
    match (obj.class(), obj.key_type()) {
        (CKO_SECRET_KEY, Some(kt)) => {
            let value = required(&obj, CKA_VALUE)?.to_vec();
            if kt == CKK_AES {
                if !matches!(value.len(), 16 | 24 | 32) {
                    return Err(Error::AttributeValueInvalid);
                }
                obj.set(Attribute::new(
                    CKA_CHECK_VALUE,
                    Value::bytes(aes_check_value(&value)?),
                ));
            } else if value.is_empty() {
                return Err(Error::AttributeValueInvalid);
            }
            obj.set(Attribute::new(
                CKA_VALUE_LEN,
                Value::Ulong(value.len() as u64),
            ));
        }
        (CKO_PUBLIC_KEY, Some(CKK_RSA)) => {
            let n = required(&obj, CKA_MODULUS)?;
            let e = required(&obj, CKA_PUBLIC_EXPONENT)?;
            let key = crypto::provider()
                .rsa_public(n, e)
                .map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(Attribute::new(
                CKA_MODULUS_BITS,
                Value::Ulong(key.modulus_bits() as u64),
            ));
        }
        (CKO_PRIVATE_KEY, Some(CKK_RSA)) => {
            let parts = rsa_parts(&obj)?;
            crypto::provider()
                .rsa_private(&parts)
                .map_err(|_| Error::AttributeValueInvalid)?;
            if obj.bytes(CKA_PUBLIC_EXPONENT).is_none() {
                return Err(Error::TemplateIncomplete);
            }
        }
        (CKO_PUBLIC_KEY, Some(CKK_EC)) => {
            let curve = curve_of(required(&obj, CKA_EC_PARAMS)?)?;
            let point = ec_point_raw(required(&obj, CKA_EC_POINT)?).to_vec();
            crypto::provider()
                .ec_public(curve, &point)
                .map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(Attribute::new(
                CKA_EC_POINT,
                Value::bytes(ec_point_der(&point)),
            ));
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC)) => {
            let curve = curve_of(required(&obj, CKA_EC_PARAMS)?)?;
            let key = crypto::provider()
                .ec_private(curve, required(&obj, CKA_VALUE)?)
                .map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(Attribute::new(
                CKA_EC_POINT,
                Value::bytes(ec_point_der(&key.public_point())),
            ));
        }
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_EC_EDWARDS)) => {
            return Err(Error::AttributeValueInvalid)
        }
        _ => {}
    }
    Ok(obj)
}

fn secret(obj: &Object, ty: CK_ATTRIBUTE_TYPE) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(obj.bytes(ty).unwrap_or_default().to_vec())
}

/// RSA private parts from an object (missing CRT parts stay empty).
pub fn rsa_parts(obj: &Object) -> Result<RsaPrivateParts> {
    Ok(RsaPrivateParts {
        n: required(obj, CKA_MODULUS)?.to_vec(),
        e: obj
            .bytes(CKA_PUBLIC_EXPONENT)
            .unwrap_or(&[1, 0, 1])
            .to_vec(),
        d: Zeroizing::new(required(obj, CKA_PRIVATE_EXPONENT)?.to_vec()),
        p: secret(obj, CKA_PRIME_1),
        q: secret(obj, CKA_PRIME_2),
        dp: secret(obj, CKA_EXPONENT_1),
        dq: secret(obj, CKA_EXPONENT_2),
        qinv: secret(obj, CKA_COEFFICIENT),
    })
}

/// A key parsed once for the provider and kept per object handle.
pub enum Prepared {
    Secret(Zeroizing<Vec<u8>>),
    RsaPrivate(Box<dyn RsaPrivateKey>),
    RsaPublic(Box<dyn RsaPublicKey>),
    EcPrivate(Box<dyn EcPrivateKey>),
    EcPublic(Box<dyn EcPublicKey>),
}

/// Parses an object's key material. Errors mean the stored key is unusable.
pub fn prepare(obj: &Object) -> Result<Prepared> {
    let p = crypto::provider();
    let bad = |_| Error::general("stored key material is invalid");
    Ok(match (obj.class(), obj.key_type()) {
        (CKO_SECRET_KEY, _) => Prepared::Secret(Zeroizing::new(required(obj, CKA_VALUE)?.to_vec())),
        (CKO_PRIVATE_KEY, Some(CKK_RSA)) => {
            Prepared::RsaPrivate(p.rsa_private(&rsa_parts(obj)?).map_err(bad)?)
        }
        (CKO_PUBLIC_KEY, Some(CKK_RSA)) => Prepared::RsaPublic(
            p.rsa_public(
                required(obj, CKA_MODULUS)?,
                required(obj, CKA_PUBLIC_EXPONENT)?,
            )
            .map_err(bad)?,
        ),
        (CKO_PRIVATE_KEY, Some(CKK_EC)) => {
            let curve = curve_of(required(obj, CKA_EC_PARAMS)?)?;
            Prepared::EcPrivate(
                p.ec_private(curve, required(obj, CKA_VALUE)?)
                    .map_err(bad)?,
            )
        }
        (CKO_PUBLIC_KEY, Some(CKK_EC)) => {
            let curve = curve_of(required(obj, CKA_EC_PARAMS)?)?;
            Prepared::EcPublic(
                p.ec_public(curve, ec_point_raw(required(obj, CKA_EC_POINT)?))
                    .map_err(bad)?,
            )
        }
        _ => return Err(Error::KeyTypeInconsistent),
    })
}

/// The key size the mechanism table speaks of: bytes for secrets, bits for
/// RSA and EC.
pub fn key_size(obj: &Object) -> Option<u64> {
    match (obj.class(), obj.key_type()) {
        (CKO_SECRET_KEY, _) => obj.bytes(CKA_VALUE).map(|v| v.len() as u64),
        (_, Some(CKK_RSA)) => obj.bytes(CKA_MODULUS).map(modulus_bits),
        (_, Some(CKK_EC)) => obj
            .bytes(CKA_EC_PARAMS)
            .and_then(Curve::from_oid_der)
            .map(|c| c.field_len() as u64 * 8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_der_round_trip_and_lengths() {
        let p = vec![4u8; 65];
        let der = ec_point_der(&p);
        assert_eq!(&der[..2], &[0x04, 65]);
        assert_eq!(der.len(), 67);
        assert_eq!(ec_point_raw(&der), &p[..]);
        assert_eq!(ec_point_raw(&p), &p[..]);
    }

    #[test]
    fn modulus_bits_counts_leading_bits() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }

    #[test]
    fn aes_check_value_matches_fips197_vector() {
        // FIPS-197 C.1: AES-128 key 000102..0f, but on the zero block; the
        // known value for key 00..00 is 66e94bd4ef8a2c3b884cfa59ca342b2e.
        assert_eq!(aes_check_value(&[0u8; 16]).unwrap(), vec![0x66, 0xe9, 0x4b]);
    }
}
