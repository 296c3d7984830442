//! Mechanism-layer tests below `Module`: objects built by the attribute rules as key
//! generation, import and unwrap build them, then authorised, prepared and used.

use super::keys::{self, Prepared};
use super::ops::{KwKind, SignKind, SignOp};
use super::{authorize, Mechanism, Param, Usage};
use crate::crypto::{self, Curve};
use crate::error::Error;
use crate::object::attr::{Attribute, Value};
use crate::object::rules::{self, Actor, Origin};
use crate::object::Object;
use cryptoki_sys::*;
use std::sync::Arc;

fn ul(ty: CK_ATTRIBUTE_TYPE, v: u64) -> Attribute {
    Attribute::new(ty, Value::Ulong(v))
}

fn by(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Attribute {
    Attribute::new(ty, Value::bytes(v.to_vec()))
}

fn bo(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Attribute {
    Attribute::new(ty, Value::Bool(v))
}

/// An Ed25519 pair as C_GenerateKeyPair builds it (run.rs `generate_key_pair`).
fn ed25519_pair(params: &[u8]) -> (Object, Object) {
    keys::edwards_curve_of(params).unwrap();
    let (seed, public) = crypto::provider().ed25519_generate().unwrap();
    let point = keys::ec_point_der(&public);
    let kt = u64::from(CKK_EC_EDWARDS);
    let origin = Origin::Generate {
        mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN,
    };
    let public = rules::build(
        &[by(CKA_EC_PARAMS, params), bo(CKA_VERIFY, true)],
        &[
            ul(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
            ul(CKA_KEY_TYPE, kt),
            by(CKA_EC_POINT, &point),
        ],
        origin,
        Actor::default(),
    )
    .unwrap();
    let private = rules::build(
        &[bo(CKA_SIGN, true)],
        &[
            ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            ul(CKA_KEY_TYPE, kt),
            by(CKA_EC_PARAMS, params),
            by(CKA_VALUE, &seed),
            by(CKA_EC_POINT, &point),
        ],
        origin,
        Actor::default(),
    )
    .unwrap();
    (public, private)
}

fn eddsa_op(key: &Object) -> SignOp {
    SignOp::new(SignKind::Eddsa {
        key: Arc::new(keys::prepare(key).unwrap()),
    })
}

#[test]
fn ed25519_generate_sign_verify_through_the_mechanism_layer() {
    for params in [keys::ED25519_OID_DER, keys::ED25519_NAME_DER] {
        let (public, private) = ed25519_pair(params);
        let eddsa = Mechanism::plain(CKM_EDDSA);
        authorize(&private, &eddsa, Usage::Sign).unwrap();
        authorize(&public, &eddsa, Usage::Verify).unwrap();
        assert_eq!(keys::key_size(&private), Some(255));
        assert!(matches!(
            authorize(&public, &eddsa, Usage::Sign),
            Err(Error::KeyTypeInconsistent)
        ));
        assert!(matches!(
            authorize(&private, &Mechanism::plain(CKM_ECDSA), Usage::Sign),
            Err(Error::KeyTypeInconsistent)
        ));
        assert!(matches!(
            authorize(&private, &eddsa, Usage::Encrypt),
            Err(Error::MechanismInvalid)
        ));

        // Single-part and multi-part (buffered) give the same deterministic signature.
        let mut one = eddsa_op(&private);
        assert_eq!(one.sig_len(), 64);
        one.update(b"hello, edwards").unwrap();
        let sig = one.sign().unwrap();
        let mut multi = eddsa_op(&private);
        multi.update(b"hello, ").unwrap();
        multi.update(b"edwards").unwrap();
        assert_eq!(&multi.sign().unwrap()[..], &sig[..]);

        let mut v = eddsa_op(&public);
        v.update(b"hello, edwards").unwrap();
        v.verify(&sig).unwrap();

        let mut tampered = sig.to_vec();
        tampered[40] ^= 0x20;
        let mut v = eddsa_op(&public);
        v.update(b"hello, edwards").unwrap();
        assert!(matches!(v.verify(&tampered), Err(Error::SignatureInvalid)));

        let mut v = eddsa_op(&public);
        v.update(b"hello, edwards!").unwrap();
        assert!(matches!(v.verify(&sig), Err(Error::SignatureInvalid)));

        let mut v = eddsa_op(&public);
        v.update(b"hello, edwards").unwrap();
        assert!(matches!(
            v.verify(&sig[..63]),
            Err(Error::SignatureLenRange)
        ));

        // A private key cannot verify, a public key cannot sign.
        let mut wrong = eddsa_op(&private);
        assert!(matches!(
            wrong.verify(&sig),
            Err(Error::KeyTypeInconsistent)
        ));
        let mut wrong = eddsa_op(&public);
        assert!(matches!(wrong.sign(), Err(Error::KeyTypeInconsistent)));
    }
}

#[test]
fn eddsa_param_variants_are_in_the_table() {
    let row = super::table::row_of(CKM_EDDSA).unwrap();
    assert_eq!((row.min, row.max), (255, 255));
    assert_ne!(row.flags & CKF_SIGN, 0);
    let gen = super::table::row_of(CKM_EC_EDWARDS_KEY_PAIR_GEN).unwrap();
    assert_ne!(gen.flags & CKF_GENERATE_KEY_PAIR, 0);
    // Parameters are checked in run.rs `sign_kind`; the variants parse as below.
    let _ = Param::Eddsa {
        prehash: false,
        context: Vec::new(),
    };
}

#[test]
fn edwards_params_and_import() {
    assert!(matches!(
        keys::edwards_curve_of(Curve::P256.oid_der()),
        Err(Error::CurveNotSupported)
    ));
    // Ed448's OID is not supported.
    assert!(matches!(
        keys::edwards_curve_of(&[0x06, 0x03, 0x2B, 0x65, 0x71]),
        Err(Error::CurveNotSupported)
    ));

    let (seed, public) = crypto::provider().ed25519_generate().unwrap();
    let kt = u64::from(CKK_EC_EDWARDS);
    // Public key: a bare 32-byte value is accepted and stored as an OCTET STRING.
    let obj = rules::build(
        &[
            ul(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
            ul(CKA_KEY_TYPE, kt),
            by(CKA_EC_PARAMS, keys::ED25519_NAME_DER),
            by(CKA_EC_POINT, &public),
        ],
        &[],
        Origin::Create,
        Actor::default(),
    )
    .unwrap();
    let obj = keys::complete_imported(obj).unwrap();
    assert_eq!(
        obj.bytes(CKA_EC_POINT),
        Some(&keys::ec_point_der(&public)[..])
    );
    assert!(matches!(
        keys::prepare(&obj).unwrap(),
        Prepared::EdPublic(_)
    ));

    // Private key: CKA_EC_POINT is computed.
    let obj = rules::build(
        &[
            ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            ul(CKA_KEY_TYPE, kt),
            by(CKA_EC_PARAMS, keys::ED25519_OID_DER),
            by(CKA_VALUE, &seed),
        ],
        &[],
        Origin::Create,
        Actor::default(),
    )
    .unwrap();
    let obj = keys::complete_imported(obj).unwrap();
    assert_eq!(
        obj.bytes(CKA_EC_POINT),
        Some(&keys::ec_point_der(&public)[..])
    );

    // Wrong curve, wrong lengths.
    let import = |params: &[u8], class: CK_OBJECT_CLASS, value: &[u8]| {
        let attr = if class == CKO_PUBLIC_KEY {
            CKA_EC_POINT
        } else {
            CKA_VALUE
        };
        let obj = rules::build(
            &[
                ul(CKA_CLASS, u64::from(class)),
                ul(CKA_KEY_TYPE, kt),
                by(CKA_EC_PARAMS, params),
                by(attr, value),
            ],
            &[],
            Origin::Create,
            Actor::default(),
        )
        .unwrap();
        keys::complete_imported(obj)
    };
    assert!(matches!(
        import(Curve::P256.oid_der(), CKO_PUBLIC_KEY, &public),
        Err(Error::CurveNotSupported)
    ));
    assert!(matches!(
        import(keys::ED25519_OID_DER, CKO_PUBLIC_KEY, &public[..31]),
        Err(Error::AttributeValueInvalid)
    ));
    assert!(matches!(
        import(keys::ED25519_OID_DER, CKO_PRIVATE_KEY, &seed[..31]),
        Err(Error::AttributeValueInvalid)
    ));
}

/// A private key object as generation stores it, for each supported type.
fn private_keys() -> Vec<Object> {
    let p = crypto::provider();
    let mut out = vec![ed25519_pair(keys::ED25519_NAME_DER).1];
    for curve in [Curve::P256, Curve::P384] {
        let (scalar, point) = p.ec_generate(curve).unwrap();
        out.push(
            rules::build(
                &[],
                &[
                    ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
                    ul(CKA_KEY_TYPE, u64::from(CKK_EC)),
                    by(CKA_EC_PARAMS, curve.oid_der()),
                    by(CKA_VALUE, &scalar),
                    by(CKA_EC_POINT, &keys::ec_point_der(&point)),
                ],
                Origin::Generate {
                    mechanism: CKM_EC_KEY_PAIR_GEN,
                },
                Actor::default(),
            )
            .unwrap(),
        );
    }
    let parts = p.rsa_generate(2048, &[1, 0, 1]).unwrap();
    out.push(
        rules::build(
            &[],
            &[
                ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
                ul(CKA_KEY_TYPE, u64::from(CKK_RSA)),
                by(CKA_MODULUS, &parts.n),
                by(CKA_PUBLIC_EXPONENT, &parts.e),
                by(CKA_PRIVATE_EXPONENT, &parts.d),
                by(CKA_PRIME_1, &parts.p),
                by(CKA_PRIME_2, &parts.q),
                by(CKA_EXPONENT_1, &parts.dp),
                by(CKA_EXPONENT_2, &parts.dq),
                by(CKA_COEFFICIENT, &parts.qinv),
            ],
            Origin::Generate {
                mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
            },
            Actor::default(),
        )
        .unwrap(),
    );
    out
}

const MATERIAL: [CK_ATTRIBUTE_TYPE; 11] = [
    CKA_KEY_TYPE,
    CKA_EC_PARAMS,
    CKA_VALUE,
    CKA_EC_POINT,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_COEFFICIENT,
];

#[test]
fn private_keys_wrap_and_unwrap_as_pkcs8() {
    let kek = [0x42u8; 32];
    for key in private_keys() {
        let der = keys::private_key_info(&key).unwrap();
        for kind in [KwKind::Kwp, KwKind::Pad, KwKind::Pkcs7] {
            let wrapped = kind.wrap(&kek, &der).unwrap();
            assert_eq!(wrapped.len(), kind.wrapped_len(der.len()));
            let back = kind.unwrap(&kek, &wrapped).unwrap();
            assert_eq!(&back[..], &der[..]);
        }
        let template = [
            ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            bo(CKA_SENSITIVE, true),
            bo(CKA_EXTRACTABLE, false),
        ];
        let obj = keys::unwrap_private_key(&der, &template, Actor::default()).unwrap();
        for ty in MATERIAL {
            if ty == CKA_EC_PARAMS && key.key_type() == Some(CKK_EC_EDWARDS) {
                // The DER names no form; without a template value the OID is stored.
                assert_eq!(obj.bytes(ty), Some(keys::ED25519_OID_DER));
                continue;
            }
            assert_eq!(
                obj.get(u64::from(ty)),
                key.get(u64::from(ty)),
                "attr {ty:#x}"
            );
        }
        assert!(!obj.bool(CKA_ALWAYS_SENSITIVE));
        assert!(!obj.bool(CKA_NEVER_EXTRACTABLE));
        assert!(!obj.bool(CKA_LOCAL));
        // The unwrapped key is usable.
        keys::prepare(&obj).unwrap();

        // CKA_KEY_TYPE given and matching is fine; a different one is inconsistent.
        let kt = key.key_type().unwrap();
        let mut with_type = template.to_vec();
        with_type.push(ul(CKA_KEY_TYPE, u64::from(kt)));
        keys::unwrap_private_key(&der, &with_type, Actor::default()).unwrap();
        let other = if kt == CKK_RSA { CKK_EC } else { CKK_RSA };
        with_type.pop();
        with_type.push(ul(CKA_KEY_TYPE, u64::from(other)));
        assert!(matches!(
            keys::unwrap_private_key(&der, &with_type, Actor::default()),
            Err(Error::TemplateInconsistent)
        ));

        // Bad DER.
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert!(matches!(
            keys::unwrap_private_key(&trailing, &template, Actor::default()),
            Err(Error::WrappedKeyInvalid)
        ));
    }
}

#[test]
fn unwrapped_edwards_key_keeps_the_template_curve_name() {
    let (_, private) = ed25519_pair(keys::ED25519_OID_DER);
    let der = keys::private_key_info(&private).unwrap();
    // RFC 8410 layout, 48 bytes: plain RFC 3394 can wrap it too.
    assert_eq!(der.len(), 48);
    let template = [
        ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
        by(CKA_EC_PARAMS, keys::ED25519_NAME_DER),
    ];
    let obj = keys::unwrap_private_key(&der, &template, Actor::default()).unwrap();
    assert_eq!(obj.bytes(CKA_EC_PARAMS), Some(keys::ED25519_NAME_DER));
    assert_eq!(obj.key_type(), Some(CKK_EC_EDWARDS));
    // An EC curve named for an Edwards key is inconsistent with the DER.
    let template = [
        ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
        by(CKA_EC_PARAMS, Curve::P256.oid_der()),
    ];
    assert!(matches!(
        keys::unwrap_private_key(&der, &template, Actor::default()),
        Err(Error::TemplateInconsistent)
    ));
}

#[test]
fn unwrap_rejects_inconsistent_material() {
    let p = crypto::provider();
    // An EC key whose [1] public key belongs to another key.
    let (scalar, _) = p.ec_generate(Curve::P256).unwrap();
    let (_, other_point) = p.ec_generate(Curve::P256).unwrap();
    let der = super::pkcs8::encode(&super::pkcs8::PrivateKey::Ec {
        curve: Curve::P256,
        scalar,
        public: Some(other_point),
    })
    .unwrap();
    let template = [ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY))];
    assert!(matches!(
        keys::unwrap_private_key(&der, &template, Actor::default()),
        Err(Error::WrappedKeyInvalid)
    ));
    // An RSA key with a wrong CRT coefficient.
    let mut parts = p.rsa_generate(2048, &[1, 0, 1]).unwrap();
    let last = parts.qinv.len() - 1;
    parts.qinv[last] ^= 1;
    let der = super::pkcs8::encode(&super::pkcs8::PrivateKey::Rsa(parts)).unwrap();
    assert!(matches!(
        keys::unwrap_private_key(&der, &template, Actor::default()),
        Err(Error::WrappedKeyInvalid)
    ));
}

#[test]
fn rsa_key_without_crt_values_wraps_complete() {
    let p = crypto::provider();
    let parts = p.rsa_generate(2048, &[1, 0, 1]).unwrap();
    let obj = rules::build(
        &[
            ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            ul(CKA_KEY_TYPE, u64::from(CKK_RSA)),
            by(CKA_MODULUS, &parts.n),
            by(CKA_PUBLIC_EXPONENT, &parts.e),
            by(CKA_PRIVATE_EXPONENT, &parts.d),
        ],
        &[],
        Origin::Create,
        Actor::default(),
    )
    .unwrap();
    let der = keys::private_key_info(&obj).unwrap();
    let template = [ul(CKA_CLASS, u64::from(CKO_PRIVATE_KEY))];
    let back = keys::unwrap_private_key(&der, &template, Actor::default()).unwrap();
    assert_eq!(back.bytes(CKA_MODULUS), Some(&parts.n[..]));
    for ty in [
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        assert!(!back.bytes(ty).unwrap_or_default().is_empty());
    }
}

#[test]
fn secret_and_public_keys_are_not_pkcs8() {
    let (public, _) = ed25519_pair(keys::ED25519_OID_DER);
    assert!(matches!(
        keys::private_key_info(&public),
        Err(Error::KeyNotWrappable)
    ));
}
