//! Key material: checks and completion for imported keys, the encodings of
//! EC points and parameters, and keys prepared once for the provider.

use super::pkcs8;
use crate::crypto::{
    self, Curve, EcPrivateKey, EcPublicKey, RsaPrivateKey, RsaPrivateParts, RsaPublicKey,
};
use crate::error::{Error, Result};
use crate::object::attr::{Attribute, Value};
use crate::object::rules::{self, Actor, Origin};
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

/// CKA_EC_PARAMS of Ed25519 as the DER OID id-Ed25519 (1.3.101.112, RFC 8410).
pub const ED25519_OID_DER: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
/// CKA_EC_PARAMS of Ed25519 as the DER PrintableString "edwards25519" (v3.0 §6.3.5).
pub const ED25519_NAME_DER: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];

/// Checks CKA_EC_PARAMS of an Edwards key: Ed25519 by OID or by name, else
/// `CKR_CURVE_NOT_SUPPORTED`.
pub fn edwards_curve_of(params: &[u8]) -> Result<()> {
    if params == ED25519_OID_DER || params == ED25519_NAME_DER {
        Ok(())
    } else {
        Err(Error::CurveNotSupported)
    }
}

/// The raw 32-byte Ed25519 public key inside CKA_EC_POINT (`04 20 || key`, or bare).
pub fn ed_point_raw(der: &[u8]) -> Result<&[u8]> {
    let raw = ec_point_raw(der, &[32]);
    if raw.len() == 32 {
        Ok(raw)
    } else {
        Err(Error::AttributeValueInvalid)
    }
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

/// The raw point inside CKA_EC_POINT (a DER OCTET STRING); a bare point is
/// accepted too. `raw_lens` are the lengths a bare point of this curve can
/// have: a value of exactly such a length is taken as bare, because a bare
/// uncompressed point also starts with 0x04 and its second byte can equal
/// the remaining length (for P-256 when X starts with 0x3f), so the DER
/// reading is tried only for other lengths.
pub fn ec_point_raw<'a>(der: &'a [u8], raw_lens: &[usize]) -> &'a [u8] {
    if raw_lens.contains(&der.len()) {
        return der;
    }
    match der {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => der,
    }
}

/// Lengths of a bare point on `curve`: uncompressed and compressed.
pub fn ec_raw_lens(curve: Curve) -> [usize; 2] {
    [curve.point_len(), curve.field_len() + 1]
}

/// AES CKA_CHECK_VALUE: the first 3 bytes of ECB(key, 0^128) (v3.0 §6.8.1).
pub fn aes_check_value(key: &[u8]) -> Result<Vec<u8>> {
    let out = crypto::provider()
        .aes_oneshot(crypto::AesMode::Ecb, key, true, &[0u8; 16])
        .map_err(|_| Error::AttributeValueInvalid)?;
    Ok(out[..3].to_vec())
}

fn required(obj: &Object, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
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
            let point = ec_point_raw(required(&obj, CKA_EC_POINT)?, &ec_raw_lens(curve)).to_vec();
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
        (CKO_PUBLIC_KEY, Some(CKK_EC_EDWARDS)) => {
            edwards_curve_of(required(&obj, CKA_EC_PARAMS)?)?;
            let point = ed_point_raw(required(&obj, CKA_EC_POINT)?)?.to_vec();
            crypto::provider()
                .ed25519_check_public(&point)
                .map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(Attribute::new(
                CKA_EC_POINT,
                Value::bytes(ec_point_der(&point)),
            ));
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC_EDWARDS)) => {
            edwards_curve_of(required(&obj, CKA_EC_PARAMS)?)?;
            let public = crypto::provider()
                .ed25519_public_from_seed(required(&obj, CKA_VALUE)?)
                .map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(Attribute::new(
                CKA_EC_POINT,
                Value::bytes(ec_point_der(&public)),
            ));
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

fn strip_zeros(v: &[u8]) -> &[u8] {
    &v[v.iter().position(|b| *b != 0).unwrap_or(v.len())..]
}

/// A private key object as PKCS#8 `PrivateKeyInfo` DER, for C_WrapKey. RSA CRT values are
/// recomputed from n, e, d (and the primes) so the encoding is always complete and
/// consistent; anything the token cannot encode is `CKR_KEY_NOT_WRAPPABLE`.
pub fn private_key_info(obj: &Object) -> Result<Zeroizing<Vec<u8>>> {
    let p = crypto::provider();
    let no = |_| Error::KeyNotWrappable;
    let key = match (obj.class(), obj.key_type()) {
        (CKO_PRIVATE_KEY, Some(CKK_RSA)) => {
            let parts = rsa_parts(obj).map_err(no)?;
            let full = p
                .rsa_private(&parts)
                .and_then(|k| k.private_parts())
                .map_err(|_| Error::KeyNotWrappable)?;
            pkcs8::PrivateKey::Rsa(full)
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC)) => {
            let curve = curve_of(required(obj, CKA_EC_PARAMS).map_err(no)?).map_err(no)?;
            let scalar = Zeroizing::new(required(obj, CKA_VALUE).map_err(no)?.to_vec());
            let public = p
                .ec_public_from_private(curve, &scalar)
                .map_err(|_| Error::KeyNotWrappable)?;
            pkcs8::PrivateKey::Ec {
                curve,
                scalar,
                public: Some(public),
            }
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC_EDWARDS)) => {
            edwards_curve_of(required(obj, CKA_EC_PARAMS).map_err(no)?).map_err(no)?;
            let seed = Zeroizing::new(required(obj, CKA_VALUE).map_err(no)?.to_vec());
            if seed.len() != 32 {
                return Err(Error::KeyNotWrappable);
            }
            pkcs8::PrivateKey::Ed25519 { seed, public: None }
        }
        _ => return Err(Error::KeyNotWrappable),
    };
    pkcs8::encode(&key)
}

fn material_ulong(ty: CK_ATTRIBUTE_TYPE, v: u64) -> Attribute {
    Attribute::new(ty, Value::Ulong(v))
}

fn material_bytes(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Attribute {
    Attribute::new(ty, Value::bytes(v.to_vec()))
}

/// The key type a PKCS#8 key becomes.
pub fn pkcs8_key_type(key: &pkcs8::PrivateKey) -> CK_KEY_TYPE {
    match key {
        pkcs8::PrivateKey::Rsa(_) => CKK_RSA,
        pkcs8::PrivateKey::Ec { .. } => CKK_EC,
        pkcs8::PrivateKey::Ed25519 { .. } => CKK_EC_EDWARDS,
    }
}

/// Checks an unwrapped PKCS#8 key and returns the attributes a private key object of it
/// holds, the same set C_GenerateKeyPair stores (RSA: all components, EC/Edwards:
/// CKA_EC_PARAMS, CKA_VALUE, CKA_EC_POINT). Inconsistent material (a public key or CRT value
/// that does not belong to the private key, an invalid scalar) is `CKR_WRAPPED_KEY_INVALID`.
/// `ed_params` is the application's CKA_EC_PARAMS for an Edwards key (OID or name form);
/// the OID form is used when it gives none.
pub fn unwrapped_private_material(
    key: &pkcs8::PrivateKey,
    ed_params: Option<&[u8]>,
) -> Result<Vec<Attribute>> {
    let p = crypto::provider();
    let invalid = |_| Error::WrappedKeyInvalid;
    let mut m = vec![
        material_ulong(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
        material_ulong(CKA_KEY_TYPE, u64::from(pkcs8_key_type(key))),
    ];
    match key {
        pkcs8::PrivateKey::Rsa(parts) => {
            let full = p
                .rsa_private(parts)
                .and_then(|k| k.private_parts())
                .map_err(invalid)?;
            let given = [&parts.p, &parts.q, &parts.dp, &parts.dq, &parts.qinv];
            let computed = [&full.p, &full.q, &full.dp, &full.dq, &full.qinv];
            if given
                .iter()
                .zip(computed)
                .any(|(g, c)| !crypto::ct_eq(strip_zeros(g), strip_zeros(c)))
            {
                return Err(Error::WrappedKeyInvalid);
            }
            m.extend([
                material_bytes(CKA_MODULUS, &full.n),
                material_bytes(CKA_PUBLIC_EXPONENT, &full.e),
                material_bytes(CKA_PRIVATE_EXPONENT, &full.d),
                material_bytes(CKA_PRIME_1, &full.p),
                material_bytes(CKA_PRIME_2, &full.q),
                material_bytes(CKA_EXPONENT_1, &full.dp),
                material_bytes(CKA_EXPONENT_2, &full.dq),
                material_bytes(CKA_COEFFICIENT, &full.qinv),
            ]);
        }
        pkcs8::PrivateKey::Ec {
            curve,
            scalar,
            public,
        } => {
            let point = p
                .ec_private(*curve, scalar)
                .map_err(invalid)?
                .public_point();
            if public.as_ref().is_some_and(|given| given != &point) {
                return Err(Error::WrappedKeyInvalid);
            }
            m.extend([
                material_bytes(CKA_EC_PARAMS, curve.oid_der()),
                material_bytes(CKA_VALUE, scalar),
                material_bytes(CKA_EC_POINT, &ec_point_der(&point)),
            ]);
        }
        pkcs8::PrivateKey::Ed25519 { seed, public } => {
            let point = p.ed25519_public_from_seed(seed).map_err(invalid)?;
            if public.as_ref().is_some_and(|given| given != &point) {
                return Err(Error::WrappedKeyInvalid);
            }
            let params = match ed_params {
                Some(given) if edwards_curve_of(given).is_ok() => given,
                _ => ED25519_OID_DER,
            };
            m.extend([
                material_bytes(CKA_EC_PARAMS, params),
                material_bytes(CKA_VALUE, seed),
                material_bytes(CKA_EC_POINT, &ec_point_der(&point)),
            ]);
        }
    }
    Ok(m)
}

/// C_UnwrapKey of a private key: parses the PKCS#8 DER, checks the template's
/// CKA_KEY_TYPE (optional) against it (`CKR_TEMPLATE_INCONSISTENT`) and builds
/// the object as unwrapped (never ALWAYS_SENSITIVE nor NEVER_EXTRACTABLE).
pub fn unwrap_private_key(der: &[u8], template: &[Attribute], actor: Actor) -> Result<Object> {
    let key = pkcs8::decode(der)?;
    let key_type = pkcs8_key_type(&key);
    let find = |ty: CK_ATTRIBUTE_TYPE| template.iter().find(|a| a.ty == u64::from(ty));
    match find(CKA_KEY_TYPE).map(|a| &a.value) {
        None => {}
        Some(Value::Ulong(t)) if *t == u64::from(key_type) => {}
        Some(_) => return Err(Error::TemplateInconsistent),
    }
    let ed_params = match find(CKA_EC_PARAMS).map(|a| &a.value) {
        Some(Value::Bytes(b)) => Some(&b[..]),
        _ => None,
    };
    let material = unwrapped_private_material(&key, ed_params)?;
    rules::build(template, &material, Origin::Unwrap, actor)
}

/// A key parsed once for the provider and kept per object handle.
pub enum Prepared {
    Secret(SecretKey),
    RsaPrivate(Box<dyn RsaPrivateKey>),
    RsaPublic(Box<dyn RsaPublicKey>),
    EcPrivate(Box<dyn EcPrivateKey>),
    EcPublic(Box<dyn EcPublicKey>),
    /// Ed25519 private key: the 32-byte seed (checked) and its public key.
    EdPrivate {
        seed: Zeroizing<Vec<u8>>,
        public: Vec<u8>,
    },
    /// Ed25519 public key: 32 bytes, a valid point encoding.
    EdPublic(Vec<u8>),
}

/// Which keyed MAC state a secret key keeps ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacAlg {
    Hmac(crypto::HashAlg),
    Cmac,
}

impl MacAlg {
    fn slot(self) -> usize {
        use crypto::HashAlg::*;
        match self {
            MacAlg::Hmac(Sha1) => 0,
            MacAlg::Hmac(Sha224) => 1,
            MacAlg::Hmac(Sha256) => 2,
            MacAlg::Hmac(Sha384) => 3,
            MacAlg::Hmac(Sha512) => 4,
            MacAlg::Cmac => 5,
        }
    }
}

/// A secret key's value, and the MAC states keyed with it, each made on its
/// first use: an HMAC then starts from a copy of the state that has already
/// absorbed the key pads (two hash blocks saved per MAC), a CMAC from its
/// expanded key and subkeys. The states are as secret as the key and are
/// wiped when dropped (the crates' `zeroize` feature).
pub struct SecretKey {
    value: Zeroizing<Vec<u8>>,
    macs: [std::sync::OnceLock<Box<dyn crypto::MacCtx>>; 6],
}

impl SecretKey {
    pub fn new(value: Zeroizing<Vec<u8>>) -> SecretKey {
        SecretKey {
            value,
            macs: Default::default(),
        }
    }

    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// A fresh MAC state keyed with this key.
    pub fn mac(&self, alg: MacAlg) -> Result<Box<dyn crypto::MacCtx>> {
        let slot = &self.macs[alg.slot()];
        if let Some(ready) = slot.get() {
            return Ok(ready.box_clone());
        }
        let p = crypto::provider();
        let keyed = match alg {
            MacAlg::Hmac(h) => p.hmac(h, &self.value)?,
            MacAlg::Cmac => p.cmac_aes(&self.value)?,
        };
        let fresh = keyed.box_clone();
        // Another thread may have set it first: either state is the same.
        let _ = slot.set(keyed);
        Ok(fresh)
    }
}

/// Parses an object's key material. Errors mean the stored key is unusable.
pub fn prepare(obj: &Object) -> Result<Prepared> {
    let p = crypto::provider();
    let bad = |_| Error::general("stored key material is invalid");
    Ok(match (obj.class(), obj.key_type()) {
        (CKO_SECRET_KEY, _) => Prepared::Secret(SecretKey::new(Zeroizing::new(
            required(obj, CKA_VALUE)?.to_vec(),
        ))),
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
                p.ec_public(
                    curve,
                    ec_point_raw(required(obj, CKA_EC_POINT)?, &ec_raw_lens(curve)),
                )
                .map_err(bad)?,
            )
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC_EDWARDS)) => {
            edwards_curve_of(required(obj, CKA_EC_PARAMS)?)?;
            let seed = Zeroizing::new(required(obj, CKA_VALUE)?.to_vec());
            let public = p.ed25519_public_from_seed(&seed).map_err(bad)?;
            Prepared::EdPrivate { seed, public }
        }
        (CKO_PUBLIC_KEY, Some(CKK_EC_EDWARDS)) => {
            edwards_curve_of(required(obj, CKA_EC_PARAMS)?)?;
            let public = ed_point_raw(required(obj, CKA_EC_POINT)?)
                .map_err(|_| Error::general("stored key material is invalid"))?
                .to_vec();
            p.ed25519_check_public(&public).map_err(bad)?;
            Prepared::EdPublic(public)
        }
        _ => return Err(Error::KeyTypeInconsistent),
    })
}

/// The key size the mechanism table speaks of: bytes for secrets, bits for
/// RSA, EC and Edwards keys.
pub fn key_size(obj: &Object) -> Option<u64> {
    match (obj.class(), obj.key_type()) {
        (CKO_SECRET_KEY, _) => obj.bytes(CKA_VALUE).map(|v| v.len() as u64),
        (_, Some(CKK_RSA)) => obj.bytes(CKA_MODULUS).map(modulus_bits),
        (_, Some(CKK_EC)) => obj
            .bytes(CKA_EC_PARAMS)
            .and_then(Curve::from_oid_der)
            .map(|c| c.field_len() as u64 * 8),
        // Ed25519: 255 bits, as the mechanism table reports it.
        (_, Some(CKK_EC_EDWARDS)) => obj
            .bytes(CKA_EC_PARAMS)
            .filter(|p| edwards_curve_of(p).is_ok())
            .map(|_| u64::from(super::table::ED25519_BITS)),
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
        assert_eq!(ec_point_raw(&der, &[65, 33]), &p[..]);
        assert_eq!(ec_point_raw(&p, &[65, 33]), &p[..]);
        // A bare point whose second byte equals the rest's length (X starts
        // with 0x3f) is still a bare point (Wycheproof ECDH P-384 tcId 471).
        let mut tricky = vec![0x04u8, 63];
        tricky.extend(std::iter::repeat_n(7u8, 63));
        assert_eq!(ec_point_raw(&tricky, &[65, 33]), &tricky[..]);
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
