//! The object model: an object is a set of typed attributes (PKCS#11 v3.0
//! §4). Policy lives in [`rules`]; encodings in [`attr`].

pub mod attr;
pub mod rules;

use attr::{AttrType, Attribute, Encoded, Value};
use cryptoki_sys::*;
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A PKCS#11 object: attributes keyed by type.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Object {
    attrs: BTreeMap<AttrType, Value>,
}

impl Object {
    pub fn from_attributes(list: Vec<Attribute>) -> Object {
        let mut o = Object::default();
        for a in list {
            o.set(a);
        }
        o
    }

    pub fn attributes(&self) -> Vec<Attribute> {
        self.attrs
            .iter()
            .map(|(ty, value)| Attribute {
                ty: *ty,
                value: value.clone(),
            })
            .collect()
    }

    pub fn set(&mut self, a: Attribute) {
        self.attrs.insert(a.ty, a.value);
    }

    pub fn get(&self, ty: AttrType) -> Option<&Value> {
        self.attrs.get(&ty)
    }

    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<u64> {
        match self.attrs.get(&u64::from(ty)) {
            Some(Value::Ulong(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn bool_or(&self, ty: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
        match self.attrs.get(&u64::from(ty)) {
            Some(Value::Bool(v)) => *v,
            _ => default,
        }
    }

    pub fn bool(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.bool_or(ty, false)
    }

    pub fn bytes(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        match self.attrs.get(&u64::from(ty)) {
            Some(Value::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        }
    }

    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.ulong(CKA_CLASS)
            .and_then(|c| CK_OBJECT_CLASS::try_from(c).ok())
            .unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.ulong(CKA_KEY_TYPE)
            .and_then(|k| CK_KEY_TYPE::try_from(k).ok())
    }

    pub fn is_token(&self) -> bool {
        self.bool(CKA_TOKEN)
    }

    pub fn is_private(&self) -> bool {
        self.bool(CKA_PRIVATE)
    }

    pub fn label(&self) -> &[u8] {
        self.bytes(CKA_LABEL).unwrap_or_default()
    }

    /// True when every attribute of `template` is present with an equal
    /// value (C_FindObjectsInit matching, v3.0 §5.7).
    pub fn matches(&self, template: &[Attribute]) -> bool {
        template
            .iter()
            .all(|a| self.attrs.get(&a.ty) == Some(&a.value))
    }

    /// Reads one attribute for C_GetAttributeValue: sensitive values are
    /// `CKR_ATTRIBUTE_SENSITIVE`, absent ones `CKR_ATTRIBUTE_TYPE_INVALID`.
    pub fn read(&self, ty: AttrType) -> Result<Encoded> {
        let value = self.attrs.get(&ty).ok_or(Error::AttributeTypeInvalid)?;
        if !rules::readable(self, ty) {
            return Err(Error::AttributeSensitive);
        }
        value.encode()
    }

    /// Rough size in bytes of the object's attribute data (C_GetObjectSize).
    pub fn size(&self) -> usize {
        self.attrs
            .values()
            .map(|v| {
                16 + match v {
                    Value::Bytes(b) => b.len(),
                    Value::Template(t) => t.len() * 24,
                    Value::Mechanisms(m) => m.len() * 8,
                    _ => 8,
                }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::attr::Value;
    use super::rules::{build, modify, Actor, Origin};
    use super::*;

    fn ul(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attribute {
        Attribute::new(ty, Value::Ulong(u64::from(v)))
    }
    fn b(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Attribute {
        Attribute::new(ty, Value::Bool(v))
    }
    fn by(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Attribute {
        Attribute::new(ty, Value::bytes(v.to_vec()))
    }

    fn aes_template() -> Vec<Attribute> {
        vec![
            ul(CKA_CLASS, CKO_SECRET_KEY),
            ul(CKA_KEY_TYPE, CKK_AES),
            by(CKA_VALUE, &[7u8; 16]),
            by(CKA_LABEL, b"k"),
        ]
    }

    #[test]
    fn create_fills_defaults_and_computed_attributes() {
        let o = build(&aes_template(), &[], Origin::Create, Actor::default()).unwrap();
        assert!(o.bool(CKA_SENSITIVE));
        assert!(o.bool(CKA_PRIVATE));
        assert!(!o.bool(CKA_TOKEN));
        assert!(!o.bool(CKA_LOCAL));
        assert!(!o.bool(CKA_ALWAYS_SENSITIVE));
        assert!(!o.bool(CKA_NEVER_EXTRACTABLE));
        assert!(o.bool(CKA_ENCRYPT));
        assert_eq!(
            o.read(u64::from(CKA_VALUE)).err(),
            Some(Error::AttributeSensitive)
        );
        assert_eq!(
            o.read(u64::from(CKA_MODULUS)).err(),
            Some(Error::AttributeTypeInvalid)
        );
    }

    #[test]
    fn create_rejects_what_the_spec_forbids() {
        let mut t = aes_template();
        t.push(b(CKA_LOCAL, true));
        assert_eq!(
            build(&t, &[], Origin::Create, Actor::default()).unwrap_err(),
            Error::AttributeReadOnly
        );
        let mut t = aes_template();
        t.push(by(CKA_MODULUS, b"x"));
        assert_eq!(
            build(&t, &[], Origin::Create, Actor::default()).unwrap_err(),
            Error::AttributeTypeInvalid
        );
        let mut t = aes_template();
        t.push(b(CKA_TRUSTED, true));
        assert_eq!(
            build(&t, &[], Origin::Create, Actor::default()).unwrap_err(),
            Error::AttributeReadOnly
        );
        assert!(build(&t, &[], Origin::Create, Actor { is_so: true }).is_ok());
        let t = vec![ul(CKA_CLASS, CKO_SECRET_KEY), ul(CKA_KEY_TYPE, CKK_AES)];
        assert_eq!(
            build(&t, &[], Origin::Create, Actor::default()).unwrap_err(),
            Error::TemplateIncomplete
        );
        let mut t = aes_template();
        t.push(b(CKA_TOKEN, true));
        t.push(b(CKA_TOKEN, false));
        assert_eq!(
            build(&t, &[], Origin::Create, Actor::default()).unwrap_err(),
            Error::TemplateInconsistent
        );
    }

    #[test]
    fn generated_key_records_its_history() {
        let t = vec![
            ul(CKA_CLASS, CKO_SECRET_KEY),
            ul(CKA_KEY_TYPE, CKK_AES),
            b(CKA_EXTRACTABLE, false),
        ];
        let material = vec![by(CKA_VALUE, &[1; 32]), ul(CKA_VALUE_LEN, 32)];
        let o = build(
            &t,
            &material,
            Origin::Generate {
                mechanism: CKM_AES_KEY_GEN,
            },
            Actor::default(),
        )
        .unwrap();
        assert!(o.bool(CKA_LOCAL));
        assert!(o.bool(CKA_ALWAYS_SENSITIVE));
        assert!(o.bool(CKA_NEVER_EXTRACTABLE));
        assert_eq!(
            o.ulong(CKA_KEY_GEN_MECHANISM),
            Some(u64::from(CKM_AES_KEY_GEN))
        );
        // The template may not carry key material for a generated key.
        let mut t2 = t.clone();
        t2.push(by(CKA_VALUE, &[1; 32]));
        assert!(build(
            &t2,
            &material,
            Origin::Generate {
                mechanism: CKM_AES_KEY_GEN
            },
            Actor::default()
        )
        .is_err());
    }

    #[test]
    fn sensitive_and_extractable_move_one_way_only() {
        let mut t = aes_template();
        t.push(b(CKA_SENSITIVE, false));
        let o = build(&t, &[], Origin::Create, Actor::default()).unwrap();
        assert!(o.read(u64::from(CKA_VALUE)).is_ok());
        let o2 = modify(&o, &[b(CKA_SENSITIVE, true)], false, Actor::default()).unwrap();
        assert_eq!(
            modify(&o2, &[b(CKA_SENSITIVE, false)], false, Actor::default()).unwrap_err(),
            Error::AttributeReadOnly
        );
        let o3 = modify(&o2, &[b(CKA_EXTRACTABLE, false)], false, Actor::default()).unwrap();
        assert_eq!(
            modify(&o3, &[b(CKA_EXTRACTABLE, true)], false, Actor::default()).unwrap_err(),
            Error::AttributeReadOnly
        );
        assert_eq!(
            modify(
                &o3,
                &[ul(CKA_KEY_TYPE, CKK_GENERIC_SECRET)],
                false,
                Actor::default()
            )
            .unwrap_err(),
            Error::AttributeReadOnly
        );
        assert_eq!(
            modify(&o3, &[b(CKA_TOKEN, true)], false, Actor::default()).unwrap_err(),
            Error::AttributeReadOnly
        );
        assert!(modify(&o3, &[b(CKA_TOKEN, true)], true, Actor::default()).is_ok());
    }

    #[test]
    fn unmodifiable_and_uncopyable_objects_refuse() {
        let mut t = aes_template();
        t.push(b(CKA_MODIFIABLE, false));
        t.push(b(CKA_COPYABLE, false));
        let o = build(&t, &[], Origin::Create, Actor::default()).unwrap();
        assert_eq!(
            modify(&o, &[by(CKA_LABEL, b"x")], false, Actor::default()).unwrap_err(),
            Error::ActionProhibited
        );
        assert_eq!(
            modify(&o, &[], true, Actor::default()).unwrap_err(),
            Error::ActionProhibited
        );
    }
}
