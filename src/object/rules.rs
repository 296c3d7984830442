//! Attribute rules as data: one table per object class and key type, taken
//! from PKCS#11 v3.0 §4 (the footnotes of Table 10 are quoted by number), and
//! the single engine that applies them for create, generate, unwrap, derive,
//! copy and set.

use super::attr::{AttrType, Attribute, Value};
use super::Object;
use crate::error::{Error, Result};
use cryptoki_sys::*;

/// Must be present when the object is created from a template (footnote 1).
pub const REQUIRED: u16 = 1 << 0;
/// Set by the token only; an application may never give it (footnotes 2, 4, 6).
pub const COMPUTED: u16 = 1 << 1;
/// Never revealed while the key is sensitive or unextractable (footnote 7).
pub const SENSITIVE: u16 = 1 << 2;
/// May be changed after creation by C_SetAttributeValue or C_CopyObject (footnote 8).
pub const MODIFIABLE: u16 = 1 << 3;
/// May only be changed to CK_TRUE (footnote 11).
pub const ONLY_TO_TRUE: u16 = 1 << 4;
/// May only be changed to CK_FALSE (footnote 12).
pub const ONLY_TO_FALSE: u16 = 1 << 5;
/// Only the security officer may set it to CK_TRUE (footnote 10).
pub const SO_ONLY: u16 = 1 << 6;
/// Changeable in C_CopyObject only, never by C_SetAttributeValue.
pub const COPY_ONLY: u16 = 1 << 7;
/// Must not be given when the key is generated or unwrapped: the token makes
/// the key material (footnotes 3/4/6).
pub const MATERIAL: u16 = 1 << 8;
/// Must be given when a key is generated (footnote 3), e.g. CKA_VALUE_LEN.
pub const GEN_PARAM: u16 = 1 << 9;

/// One row of a rule table.
#[derive(Clone, Copy)]
pub struct Rule {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub flags: u16,
}

const fn r(ty: CK_ATTRIBUTE_TYPE, flags: u16) -> Rule {
    Rule { ty, flags }
}

/// §4.4 Storage objects (every object).
const STORAGE: &[Rule] = &[
    r(CKA_CLASS, REQUIRED),
    r(CKA_TOKEN, COPY_ONLY),
    r(CKA_PRIVATE, COPY_ONLY),
    r(CKA_MODIFIABLE, COPY_ONLY | ONLY_TO_FALSE),
    r(CKA_LABEL, MODIFIABLE),
    r(CKA_COPYABLE, MODIFIABLE | ONLY_TO_FALSE),
    r(CKA_DESTROYABLE, MODIFIABLE | ONLY_TO_FALSE),
    r(CKA_UNIQUE_ID, COMPUTED),
    // Vendor-defined (include/strongroom.h): owner and sharing of an object.
    r(crate::token::ownership::CKA_SR_OWNER, COMPUTED),
    r(crate::token::ownership::CKA_SR_SHARED_WITH, MODIFIABLE),
];

/// §4.5 Data objects.
const DATA: &[Rule] = &[
    r(CKA_APPLICATION, MODIFIABLE),
    r(CKA_OBJECT_ID, MODIFIABLE),
    r(CKA_VALUE, MODIFIABLE),
];

/// §4.6 Certificate objects, with §4.6.3 X.509 public key certificates.
const CERTIFICATE: &[Rule] = &[
    r(CKA_CERTIFICATE_TYPE, REQUIRED),
    r(CKA_TRUSTED, MODIFIABLE | SO_ONLY),
    r(CKA_CERTIFICATE_CATEGORY, 0),
    r(CKA_CHECK_VALUE, 0),
    r(CKA_START_DATE, MODIFIABLE),
    r(CKA_END_DATE, MODIFIABLE),
    r(CKA_PUBLIC_KEY_INFO, 0),
    r(CKA_SUBJECT, REQUIRED),
    r(CKA_ID, MODIFIABLE),
    r(CKA_ISSUER, MODIFIABLE),
    r(CKA_SERIAL_NUMBER, MODIFIABLE),
    r(CKA_VALUE, REQUIRED),
    r(CKA_URL, 0),
    r(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, 0),
    r(CKA_HASH_OF_ISSUER_PUBLIC_KEY, 0),
    r(CKA_JAVA_MIDP_SECURITY_DOMAIN, 0),
    r(CKA_NAME_HASH_ALGORITHM, 0),
];

/// §4.7 Key objects (common to all keys).
const KEY: &[Rule] = &[
    r(CKA_KEY_TYPE, REQUIRED),
    r(CKA_ID, MODIFIABLE),
    r(CKA_START_DATE, MODIFIABLE),
    r(CKA_END_DATE, MODIFIABLE),
    r(CKA_DERIVE, MODIFIABLE),
    r(CKA_LOCAL, COMPUTED),
    r(CKA_KEY_GEN_MECHANISM, COMPUTED),
    r(CKA_ALLOWED_MECHANISMS, 0),
];

/// §4.8 Public key objects.
const PUBLIC_KEY: &[Rule] = &[
    r(CKA_SUBJECT, MODIFIABLE),
    r(CKA_ENCRYPT, MODIFIABLE),
    r(CKA_VERIFY, MODIFIABLE),
    r(CKA_VERIFY_RECOVER, MODIFIABLE),
    r(CKA_WRAP, MODIFIABLE),
    r(CKA_TRUSTED, MODIFIABLE | SO_ONLY),
    r(CKA_WRAP_TEMPLATE, 0),
    r(CKA_PUBLIC_KEY_INFO, 0),
];

/// §4.9 Private key objects.
const PRIVATE_KEY: &[Rule] = &[
    r(CKA_SUBJECT, MODIFIABLE),
    r(CKA_SENSITIVE, MODIFIABLE | ONLY_TO_TRUE),
    r(CKA_DECRYPT, MODIFIABLE),
    r(CKA_SIGN, MODIFIABLE),
    r(CKA_SIGN_RECOVER, MODIFIABLE),
    r(CKA_UNWRAP, MODIFIABLE),
    r(CKA_EXTRACTABLE, MODIFIABLE | ONLY_TO_FALSE),
    r(CKA_ALWAYS_SENSITIVE, COMPUTED),
    r(CKA_NEVER_EXTRACTABLE, COMPUTED),
    r(CKA_WRAP_WITH_TRUSTED, MODIFIABLE | ONLY_TO_TRUE),
    r(CKA_UNWRAP_TEMPLATE, 0),
    r(CKA_DERIVE_TEMPLATE, 0),
    r(CKA_ALWAYS_AUTHENTICATE, 0),
    r(CKA_PUBLIC_KEY_INFO, 0),
];

/// §4.10 Secret key objects.
const SECRET_KEY: &[Rule] = &[
    r(CKA_SENSITIVE, MODIFIABLE | ONLY_TO_TRUE),
    r(CKA_ENCRYPT, MODIFIABLE),
    r(CKA_DECRYPT, MODIFIABLE),
    r(CKA_SIGN, MODIFIABLE),
    r(CKA_VERIFY, MODIFIABLE),
    r(CKA_WRAP, MODIFIABLE),
    r(CKA_UNWRAP, MODIFIABLE),
    r(CKA_EXTRACTABLE, MODIFIABLE | ONLY_TO_FALSE),
    r(CKA_ALWAYS_SENSITIVE, COMPUTED),
    r(CKA_NEVER_EXTRACTABLE, COMPUTED),
    r(CKA_CHECK_VALUE, COMPUTED),
    r(CKA_WRAP_WITH_TRUSTED, MODIFIABLE | ONLY_TO_TRUE),
    r(CKA_TRUSTED, MODIFIABLE | SO_ONLY),
    r(CKA_WRAP_TEMPLATE, 0),
    r(CKA_UNWRAP_TEMPLATE, 0),
    r(CKA_DERIVE_TEMPLATE, 0),
];

/// §6.1.2/§6.1.3 RSA public and private keys.
const RSA_PUBLIC: &[Rule] = &[
    r(CKA_MODULUS, REQUIRED | MATERIAL),
    r(CKA_MODULUS_BITS, GEN_PARAM | COMPUTED),
    r(CKA_PUBLIC_EXPONENT, REQUIRED),
];
const RSA_PRIVATE: &[Rule] = &[
    r(CKA_MODULUS, REQUIRED | MATERIAL),
    r(CKA_PUBLIC_EXPONENT, MATERIAL),
    r(CKA_PRIVATE_EXPONENT, REQUIRED | MATERIAL | SENSITIVE),
    r(CKA_PRIME_1, MATERIAL | SENSITIVE),
    r(CKA_PRIME_2, MATERIAL | SENSITIVE),
    r(CKA_EXPONENT_1, MATERIAL | SENSITIVE),
    r(CKA_EXPONENT_2, MATERIAL | SENSITIVE),
    r(CKA_COEFFICIENT, MATERIAL | SENSITIVE),
];

/// §6.3.3/§6.3.4 EC public and private keys (and Edwards keys, §6.3.5).
/// CKA_EC_POINT on the private key is this token's addition (computed), read
/// by OpenSSL's engine.
const EC_PUBLIC: &[Rule] = &[
    r(CKA_EC_PARAMS, REQUIRED),
    r(CKA_EC_POINT, REQUIRED | MATERIAL),
];
const EC_PRIVATE: &[Rule] = &[
    r(CKA_EC_PARAMS, REQUIRED),
    r(CKA_VALUE, REQUIRED | MATERIAL | SENSITIVE),
    r(CKA_EC_POINT, COMPUTED),
];

/// §6.7 (AES) and §6.5 (generic secret) key values.
const SECRET_VALUE: &[Rule] = &[
    r(CKA_VALUE, REQUIRED | MATERIAL | SENSITIVE),
    r(CKA_VALUE_LEN, GEN_PARAM | COMPUTED),
];

/// The HMAC key types of v2.40 (§2.20-§2.25 list them beside generic secret
/// keys): a secret value like a generic secret, usable only with the HMAC of
/// their own hash ([`crate::mechanism::authorize`]).
pub const HMAC_KEY_TYPES: [CK_KEY_TYPE; 5] = [
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
];

/// Key types this token stores, per class.
pub fn key_type_supported(class: CK_OBJECT_CLASS, key_type: CK_KEY_TYPE) -> bool {
    match class {
        CKO_SECRET_KEY => {
            matches!(key_type, CKK_AES | CKK_GENERIC_SECRET) || HMAC_KEY_TYPES.contains(&key_type)
        }
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY => {
            matches!(key_type, CKK_RSA | CKK_EC | CKK_EC_EDWARDS)
        }
        _ => false,
    }
}

/// The rule tables that apply to an object of this class and key type.
pub fn tables(class: CK_OBJECT_CLASS, key_type: Option<CK_KEY_TYPE>) -> Vec<&'static [Rule]> {
    let mut t: Vec<&'static [Rule]> = vec![STORAGE];
    match class {
        CKO_DATA => t.push(DATA),
        CKO_CERTIFICATE => t.push(CERTIFICATE),
        CKO_PUBLIC_KEY => {
            t.extend([KEY, PUBLIC_KEY]);
            match key_type {
                Some(CKK_RSA) => t.push(RSA_PUBLIC),
                Some(CKK_EC | CKK_EC_EDWARDS) => t.push(EC_PUBLIC),
                _ => {}
            }
        }
        CKO_PRIVATE_KEY => {
            t.extend([KEY, PRIVATE_KEY]);
            match key_type {
                Some(CKK_RSA) => t.push(RSA_PRIVATE),
                Some(CKK_EC | CKK_EC_EDWARDS) => t.push(EC_PRIVATE),
                _ => {}
            }
        }
        CKO_SECRET_KEY => {
            t.extend([KEY, SECRET_KEY]);
            if key_type.is_some() {
                t.push(SECRET_VALUE);
            }
        }
        _ => {}
    }
    t
}

/// The flags of `ty` for this object kind, or `None` when it does not belong.
pub fn rule(tables: &[&'static [Rule]], ty: AttrType) -> Option<u16> {
    let mut found: Option<u16> = None;
    for table in tables {
        for rule in table.iter() {
            if u64::from(rule.ty) == ty {
                // A later, more specific table refines an earlier row.
                found = Some(rule.flags);
            }
        }
    }
    found
}

/// Token defaults (the spec leaves these "token-specific"): keys are private
/// and sensitive, extractable (as AWS CloudHSM), and every usage the key type
/// supports is on unless the template says otherwise, because PyKCS11 and
/// python-pkcs11 create keys without usage attributes (../shared/docs/CLIENTS.md).
pub fn default_value(
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
    ty: CK_ATTRIBUTE_TYPE,
) -> Option<Value> {
    let is_key = matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY);
    let b = |v| Some(Value::Bool(v));
    match ty {
        CKA_TOKEN => b(false),
        CKA_PRIVATE => b(is_key),
        CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE => b(true),
        CKA_LABEL => Some(Value::bytes(Vec::new())),
        CKA_SENSITIVE => b(true),
        CKA_EXTRACTABLE => b(true),
        CKA_WRAP_WITH_TRUSTED | CKA_TRUSTED | CKA_ALWAYS_AUTHENTICATE => b(false),
        CKA_SIGN_RECOVER | CKA_VERIFY_RECOVER => b(false),
        CKA_ID
        | CKA_SUBJECT
        | CKA_START_DATE
        | CKA_END_DATE
        | CKA_APPLICATION
        | CKA_OBJECT_ID
        | CKA_ISSUER
        | CKA_SERIAL_NUMBER
        | CKA_URL
        | CKA_HASH_OF_SUBJECT_PUBLIC_KEY
        | CKA_HASH_OF_ISSUER_PUBLIC_KEY => Some(Value::bytes(Vec::new())),
        CKA_VALUE if class == CKO_DATA => Some(Value::bytes(Vec::new())),
        CKA_CERTIFICATE_CATEGORY => Some(Value::Ulong(0)),
        CKA_JAVA_MIDP_SECURITY_DOMAIN => Some(Value::Ulong(0)),
        CKA_NAME_HASH_ALGORITHM => Some(Value::Ulong(u64::from(CKM_SHA_1))),
        CKA_ENCRYPT | CKA_DECRYPT => b(matches!(key_type, Some(CKK_AES | CKK_RSA))),
        CKA_WRAP | CKA_UNWRAP => b(matches!(key_type, Some(CKK_AES | CKK_RSA))),
        CKA_SIGN | CKA_VERIFY => b(true),
        CKA_DERIVE => b(matches!(
            (class, key_type),
            (CKO_PRIVATE_KEY, Some(CKK_EC)) | (CKO_SECRET_KEY, Some(CKK_GENERIC_SECRET))
        )),
        _ => None,
    }
}

/// Who is acting, as far as attribute policy cares.
#[derive(Clone, Copy, Debug, Default)]
pub struct Actor {
    /// The security officer is logged in (may set CKA_TRUSTED).
    pub is_so: bool,
}

/// How a new object comes into being; decides CKA_LOCAL and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// C_CreateObject: the application supplies the material.
    Create,
    /// C_GenerateKey(Pair): the token made the key (`mechanism` recorded).
    Generate { mechanism: CK_MECHANISM_TYPE },
    /// C_UnwrapKey: material came in wrapped.
    Unwrap,
    /// C_DeriveKey: material derived from a base key.
    Derive {
        base_always_sensitive: bool,
        base_never_extractable: bool,
    },
}

fn check_template_consistent(template: &[Attribute]) -> Result<()> {
    for (i, a) in template.iter().enumerate() {
        if template[..i]
            .iter()
            .any(|b| b.ty == a.ty && b.value != a.value)
        {
            return Err(Error::TemplateInconsistent);
        }
    }
    Ok(())
}

fn ulong_of(template: &[Attribute], ty: CK_ATTRIBUTE_TYPE) -> Option<u64> {
    template
        .iter()
        .find_map(|a| match (&a.value, a.ty == u64::from(ty)) {
            (Value::Ulong(v), true) => Some(*v),
            _ => None,
        })
}

fn as_ck(v: u64) -> Result<CK_ULONG> {
    CK_ULONG::try_from(v).map_err(|_| Error::AttributeValueInvalid)
}

/// Builds a new object from the application's template plus what the token
/// itself supplies (`material`: key values and computed attributes).
///
/// Checks, in the order of v3.0 §5.7: unknown or foreign attributes
/// (`CKR_ATTRIBUTE_TYPE_INVALID`), attributes the application may not give
/// (`CKR_ATTRIBUTE_READ_ONLY`), conflicting duplicates
/// (`CKR_TEMPLATE_INCONSISTENT`), missing required ones
/// (`CKR_TEMPLATE_INCOMPLETE`); then fills defaults and computed attributes.
pub fn build(
    template: &[Attribute],
    material: &[Attribute],
    origin: Origin,
    actor: Actor,
) -> Result<Object> {
    check_template_consistent(template)?;
    let class = match ulong_of(template, CKA_CLASS).or_else(|| ulong_of(material, CKA_CLASS)) {
        Some(c) => as_ck(c)?,
        None => return Err(Error::TemplateIncomplete),
    };
    if !matches!(
        class,
        CKO_DATA | CKO_CERTIFICATE | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY
    ) {
        return Err(Error::AttributeValueInvalid);
    }
    let key_type =
        match ulong_of(template, CKA_KEY_TYPE).or_else(|| ulong_of(material, CKA_KEY_TYPE)) {
            Some(k) => Some(as_ck(k)?),
            None => None,
        };
    if let (Some(t), Some(m)) = (
        ulong_of(template, CKA_KEY_TYPE),
        ulong_of(material, CKA_KEY_TYPE),
    ) {
        if t != m {
            return Err(Error::TemplateInconsistent);
        }
    }
    if matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY) {
        match key_type {
            None => return Err(Error::TemplateIncomplete),
            Some(k) if !key_type_supported(class, k) => return Err(Error::AttributeValueInvalid),
            _ => {}
        }
    }
    if class == CKO_CERTIFICATE {
        match ulong_of(template, CKA_CERTIFICATE_TYPE) {
            None => return Err(Error::TemplateIncomplete),
            Some(t) if t != u64::from(CKC_X_509) => return Err(Error::AttributeValueInvalid),
            _ => {}
        }
    }
    let tabs = tables(class, key_type);

    let mut obj = Object::default();
    for a in template {
        let flags = rule(&tabs, a.ty).ok_or(Error::AttributeTypeInvalid)?;
        let application_gives_material = origin == Origin::Create;
        if flags & COMPUTED != 0 && !(flags & GEN_PARAM != 0 && origin != Origin::Create) {
            return Err(Error::AttributeReadOnly);
        }
        if flags & MATERIAL != 0 && !application_gives_material {
            // The token makes the value; the template may not name it.
            return Err(Error::TemplateInconsistent);
        }
        if flags & SO_ONLY != 0 && a.value == Value::Bool(true) && !actor.is_so {
            return Err(Error::AttributeReadOnly);
        }
        check_kind(a)?;
        obj.set(a.clone());
    }
    for a in material {
        if let Some(existing) = obj.get(a.ty) {
            // A template value the token also computes (e.g. CKA_VALUE_LEN on
            // unwrap) must agree with it.
            if existing != &a.value {
                return Err(Error::TemplateInconsistent);
            }
        }
        obj.set(a.clone());
    }
    for table in &tabs {
        for rule in table.iter() {
            let ty = u64::from(rule.ty);
            if obj.get(ty).is_some() {
                continue;
            }
            // A required attribute is never defaulted (e.g. a certificate's
            // CKA_SUBJECT, which keys default to empty).
            if rule.flags & REQUIRED != 0 && rule.flags & COMPUTED == 0 {
                return Err(Error::TemplateIncomplete);
            }
            if let Some(v) = default_value(class, key_type, rule.ty) {
                obj.set(Attribute::new(rule.ty, v));
            }
        }
    }
    // Attributes the token computes from how the object was made (§4.7-4.10).
    if matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY) {
        let (local, mech) = match origin {
            Origin::Generate { mechanism } => (true, u64::from(mechanism)),
            _ => (false, u64::from(CK_UNAVAILABLE_INFORMATION)),
        };
        obj.set(Attribute::new(CKA_LOCAL, Value::Bool(local)));
        obj.set(Attribute::new(CKA_KEY_GEN_MECHANISM, Value::Ulong(mech)));
        if class != CKO_PUBLIC_KEY {
            let sensitive = obj.bool(CKA_SENSITIVE);
            let extractable = obj.bool(CKA_EXTRACTABLE);
            let (always_sensitive, never_extractable) = match origin {
                Origin::Generate { .. } => (sensitive, !extractable),
                Origin::Derive {
                    base_always_sensitive,
                    base_never_extractable,
                } => (
                    base_always_sensitive && sensitive,
                    base_never_extractable && !extractable,
                ),
                Origin::Create | Origin::Unwrap => (false, false),
            };
            obj.set(Attribute::new(
                CKA_ALWAYS_SENSITIVE,
                Value::Bool(always_sensitive),
            ));
            obj.set(Attribute::new(
                CKA_NEVER_EXTRACTABLE,
                Value::Bool(never_extractable),
            ));
        }
    }
    Ok(obj)
}

fn check_kind(a: &Attribute) -> Result<()> {
    use super::attr::Kind;
    let ok = matches!(
        (super::attr::kind_of(a.ty), &a.value),
        (Kind::Bool, Value::Bool(_))
            | (Kind::Ulong, Value::Ulong(_))
            | (Kind::Bytes, Value::Bytes(_))
            | (Kind::Template, Value::Template(_))
            | (Kind::Mechanisms, Value::Mechanisms(_))
    );
    if ok {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

/// Applies a change template to an existing object, for C_SetAttributeValue
/// (`copy == false`) or C_CopyObject (`copy == true`), v3.0 §5.7.
pub fn modify(obj: &Object, template: &[Attribute], copy: bool, actor: Actor) -> Result<Object> {
    check_template_consistent(template)?;
    if copy && !obj.bool_or(CKA_COPYABLE, true) {
        return Err(Error::ActionProhibited);
    }
    // Sharing is custody, not content: an owner may share an object whose
    // attributes are frozen (Oracle TDE creates master keys unmodifiable).
    let only_sharing = template
        .iter()
        .all(|a| a.ty == u64::from(crate::token::ownership::CKA_SR_SHARED_WITH));
    if !copy && !only_sharing && !obj.bool_or(CKA_MODIFIABLE, true) {
        return Err(Error::ActionProhibited);
    }
    let tabs = tables(obj.class(), obj.key_type());
    let mut out = obj.clone();
    for a in template {
        let flags = rule(&tabs, a.ty).ok_or(Error::AttributeTypeInvalid)?;
        check_kind(a)?;
        let current = obj.get(a.ty);
        if current == Some(&a.value) {
            continue; // Setting a value to what it is is always allowed.
        }
        let changeable = flags & MODIFIABLE != 0 || (copy && flags & COPY_ONLY != 0);
        if !changeable {
            return Err(Error::AttributeReadOnly);
        }
        if copy && !obj.bool_or(CKA_MODIFIABLE, true) && flags & COPY_ONLY == 0 {
            // A copy of an unmodifiable object can only change storage flags.
            return Err(Error::AttributeReadOnly);
        }
        if flags & ONLY_TO_TRUE != 0 && a.value != Value::Bool(true) {
            return Err(Error::AttributeReadOnly);
        }
        if flags & ONLY_TO_FALSE != 0 && a.value != Value::Bool(false) {
            return Err(Error::AttributeReadOnly);
        }
        if flags & SO_ONLY != 0 && !actor.is_so {
            return Err(Error::AttributeReadOnly);
        }
        out.set(a.clone());
    }
    Ok(out)
}

/// Whether a user the object is only shared with may read `ty`: never the
/// key material, whatever CKA_SENSITIVE says (sharing grants use, not export).
pub fn readable_by_non_owner(obj: &Object, ty: AttrType) -> bool {
    let tabs = tables(obj.class(), obj.key_type());
    !matches!(rule(&tabs, ty), Some(flags) if flags & SENSITIVE != 0)
}

/// Whether `ty` of this object may be revealed (v3.0 §5.7 C_GetAttributeValue).
pub fn readable(obj: &Object, ty: AttrType) -> bool {
    let tabs = tables(obj.class(), obj.key_type());
    match rule(&tabs, ty) {
        Some(flags) if flags & SENSITIVE != 0 => {
            !obj.bool_or(CKA_SENSITIVE, false) && obj.bool_or(CKA_EXTRACTABLE, true)
        }
        _ => true,
    }
}
