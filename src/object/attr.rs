//! Attribute values: their kinds, typed values and the two encodings they have
//! (the PKCS#11 byte form an application sees, and the portable form the store
//! seals).

use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// Attribute type, widened to 64 bits so it is the same on every platform.
pub type AttrType = u64;

/// How an attribute's value is laid out (PKCS#11 v3.0 §4.1-4.2 data types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `CK_BBOOL`: one byte.
    Bool,
    /// `CK_ULONG` (and the types defined as it: class, key type, mechanism...).
    Ulong,
    /// A byte array (strings, big integers, DER, dates as 8 ASCII digits).
    Bytes,
    /// `CK_ATTRIBUTE_PTR`: a nested template (wrap/unwrap/derive templates).
    Template,
    /// `CK_MECHANISM_TYPE_PTR`: an array of mechanism types.
    Mechanisms,
}

/// The kind of every attribute type this token knows; unknown types are byte
/// arrays (and rejected by the per-class rules when they do not belong).
pub fn kind_of(t: AttrType) -> Kind {
    let t = t as CK_ATTRIBUTE_TYPE;
    match t {
        CKA_TOKEN
        | CKA_PRIVATE
        | CKA_MODIFIABLE
        | CKA_COPYABLE
        | CKA_DESTROYABLE
        | CKA_TRUSTED
        | CKA_SENSITIVE
        | CKA_ENCRYPT
        | CKA_DECRYPT
        | CKA_WRAP
        | CKA_UNWRAP
        | CKA_SIGN
        | CKA_SIGN_RECOVER
        | CKA_VERIFY
        | CKA_VERIFY_RECOVER
        | CKA_DERIVE
        | CKA_EXTRACTABLE
        | CKA_LOCAL
        | CKA_NEVER_EXTRACTABLE
        | CKA_ALWAYS_SENSITIVE
        | CKA_WRAP_WITH_TRUSTED
        | CKA_ALWAYS_AUTHENTICATE
        | CKA_RESET_ON_INIT
        | CKA_HAS_RESET => Kind::Bool,
        CKA_CLASS
        | CKA_KEY_TYPE
        | CKA_CERTIFICATE_TYPE
        | CKA_CERTIFICATE_CATEGORY
        | CKA_VALUE_LEN
        | CKA_MODULUS_BITS
        | CKA_KEY_GEN_MECHANISM
        | CKA_JAVA_MIDP_SECURITY_DOMAIN
        | CKA_NAME_HASH_ALGORITHM
        | CKA_HW_FEATURE_TYPE
        | CKA_PRIME_BITS
        | CKA_SUBPRIME_BITS
        | CKA_VALUE_BITS
        | CKA_MECHANISM_TYPE
        | CKA_PROFILE_ID => Kind::Ulong,
        CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE => Kind::Template,
        CKA_ALLOWED_MECHANISMS => Kind::Mechanisms,
        _ => Kind::Bytes,
    }
}

/// A typed attribute value. Byte values are wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Ulong(u64),
    Bytes(Zeroizing<Vec<u8>>),
    Template(Vec<Attribute>),
    Mechanisms(Vec<u64>),
}

impl std::fmt::Debug for Value {
    /// Never prints byte contents: they may be key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ulong(u) => write!(f, "{u:#x}"),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::Template(t) => write!(f, "<template of {}>", t.len()),
            Value::Mechanisms(m) => write!(f, "{m:x?}"),
        }
    }
}

impl Value {
    pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(Zeroizing::new(b.into()))
    }
}

/// One attribute: type and typed value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Attribute {
    pub ty: AttrType,
    pub value: Value,
}

impl Attribute {
    pub fn new(ty: CK_ATTRIBUTE_TYPE, value: Value) -> Self {
        Attribute {
            ty: ty as AttrType,
            value,
        }
    }
}

/// An attribute as it arrives from the application: type and raw bytes in the
/// platform's PKCS#11 layout (or a nested template, already copied in).
#[derive(Clone)]
pub enum RawValue {
    Bytes(Zeroizing<Vec<u8>>),
    Template(Vec<RawAttribute>),
}

/// See [`RawValue`].
#[derive(Clone)]
pub struct RawAttribute {
    pub ty: AttrType,
    pub value: RawValue,
}

const ULONG_LEN: usize = std::mem::size_of::<CK_ULONG>();

fn ulong_from_ne(b: &[u8]) -> Option<u64> {
    let arr: [u8; ULONG_LEN] = b.try_into().ok()?;
    Some(u64::from(CK_ULONG::from_ne_bytes(arr)))
}

/// Converts a `u64` to `CK_ULONG` without truncation (32-bit platforms).
pub fn to_ck_ulong(v: u64) -> Result<CK_ULONG> {
    CK_ULONG::try_from(v).map_err(|_| Error::general("value does not fit CK_ULONG"))
}

impl RawAttribute {
    /// Parses application bytes into a typed value; a wrong size is
    /// `CKR_ATTRIBUTE_VALUE_INVALID` (v3.0 §5.7 C_CreateObject).
    pub fn parse(&self) -> Result<Attribute> {
        let value = match (kind_of(self.ty), &self.value) {
            (Kind::Bool, RawValue::Bytes(b)) => match b.as_slice() {
                [0] => Value::Bool(false),
                [_] => Value::Bool(true),
                _ => return Err(Error::AttributeValueInvalid),
            },
            (Kind::Ulong, RawValue::Bytes(b)) => {
                Value::Ulong(ulong_from_ne(b).ok_or(Error::AttributeValueInvalid)?)
            }
            (Kind::Bytes, RawValue::Bytes(b)) => Value::Bytes(b.clone()),
            (Kind::Mechanisms, RawValue::Bytes(b)) => {
                if b.len() % ULONG_LEN != 0 {
                    return Err(Error::AttributeValueInvalid);
                }
                Value::Mechanisms(
                    b.chunks(ULONG_LEN)
                        .map(|c| ulong_from_ne(c).ok_or(Error::AttributeValueInvalid))
                        .collect::<Result<_>>()?,
                )
            }
            (Kind::Template, RawValue::Template(t)) => {
                Value::Template(t.iter().map(|a| a.parse()).collect::<Result<_>>()?)
            }
            _ => return Err(Error::AttributeValueInvalid),
        };
        Ok(Attribute { ty: self.ty, value })
    }
}

/// The value as an application reads it with C_GetAttributeValue.
pub enum Encoded {
    Bytes(Zeroizing<Vec<u8>>),
    Template(Vec<(AttrType, Encoded)>),
}

impl Encoded {
    /// Length of the value (for templates: bytes of the CK_ATTRIBUTE array).
    pub fn len(&self) -> usize {
        match self {
            Encoded::Bytes(b) => b.len(),
            Encoded::Template(t) => t.len() * std::mem::size_of::<CK_ATTRIBUTE>(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Value {
    /// The PKCS#11 byte layout of this value on this platform.
    pub fn encode(&self) -> Result<Encoded> {
        Ok(match self {
            Value::Bool(b) => Encoded::Bytes(Zeroizing::new(vec![u8::from(*b)])),
            Value::Ulong(u) => {
                Encoded::Bytes(Zeroizing::new(to_ck_ulong(*u)?.to_ne_bytes().to_vec()))
            }
            Value::Bytes(b) => Encoded::Bytes(b.clone()),
            Value::Mechanisms(m) => {
                let mut out = Vec::with_capacity(m.len() * ULONG_LEN);
                for v in m {
                    out.extend_from_slice(&to_ck_ulong(*v)?.to_ne_bytes());
                }
                Encoded::Bytes(Zeroizing::new(out))
            }
            Value::Template(t) => Encoded::Template(
                t.iter()
                    .map(|a| Ok((a.ty, a.value.encode()?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

// ---------------------------------------------------------------------------
// Portable serialisation for the store: a tag-length-value list.
//   attribute := type:u64le kind:u8 body
//   body      := Bool: u8 | Ulong: u64le | Bytes: len:u32le bytes
//              | Template: count:u32le attribute* | Mechanisms: count:u32le u64le*
// ---------------------------------------------------------------------------

const TAG_BOOL: u8 = 1;
const TAG_ULONG: u8 = 2;
const TAG_BYTES: u8 = 3;
const TAG_TEMPLATE: u8 = 4;
const TAG_MECHS: u8 = 5;

fn len_u32(n: usize) -> Result<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| Error::DataLenRange)
}

/// Exact length of what [`serialize`] writes, so the caller can allocate a
/// zeroizing buffer once (a reallocation would leave an unwiped copy).
pub fn serialized_len(attrs: &[Attribute]) -> usize {
    4 + attrs
        .iter()
        .map(|a| {
            9 + match &a.value {
                Value::Bool(_) => 1,
                Value::Ulong(_) => 8,
                Value::Bytes(b) => 4 + b.len(),
                Value::Template(t) => serialized_len(t),
                Value::Mechanisms(m) => 4 + 8 * m.len(),
            }
        })
        .sum::<usize>()
}

/// Serialises attributes into `out` (a zeroizing buffer owned by the caller).
pub fn serialize(attrs: &[Attribute], out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&len_u32(attrs.len())?);
    for a in attrs {
        out.extend_from_slice(&a.ty.to_le_bytes());
        match &a.value {
            Value::Bool(b) => {
                out.push(TAG_BOOL);
                out.push(u8::from(*b));
            }
            Value::Ulong(u) => {
                out.push(TAG_ULONG);
                out.extend_from_slice(&u.to_le_bytes());
            }
            Value::Bytes(b) => {
                out.push(TAG_BYTES);
                out.extend_from_slice(&len_u32(b.len())?);
                out.extend_from_slice(b);
            }
            Value::Template(t) => {
                out.push(TAG_TEMPLATE);
                serialize(t, out)?;
            }
            Value::Mechanisms(m) => {
                out.push(TAG_MECHS);
                out.extend_from_slice(&len_u32(m.len())?);
                for v in m {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Tampered("truncated attribute list".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<usize> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(Error::general)?;
        usize::try_from(u32::from_le_bytes(b)).map_err(Error::general)
    }
    fn u64(&mut self) -> Result<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(Error::general)?;
        Ok(u64::from_le_bytes(b))
    }
    fn list(&mut self, depth: u32) -> Result<Vec<Attribute>> {
        if depth > 4 {
            return Err(Error::Tampered(
                "attribute templates nested too deep".into(),
            ));
        }
        let n = self.u32()?;
        let mut out = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            let ty = self.u64()?;
            let value = match self.u8()? {
                TAG_BOOL => Value::Bool(self.u8()? != 0),
                TAG_ULONG => Value::Ulong(self.u64()?),
                TAG_BYTES => {
                    let len = self.u32()?;
                    Value::bytes(self.take(len)?.to_vec())
                }
                TAG_TEMPLATE => Value::Template(self.list(depth + 1)?),
                TAG_MECHS => {
                    let len = self.u32()?;
                    (0..len)
                        .map(|_| self.u64())
                        .collect::<Result<Vec<_>>>()
                        .map(Value::Mechanisms)?
                }
                _ => return Err(Error::Tampered("unknown attribute tag".into())),
            };
            out.push(Attribute { ty, value });
        }
        Ok(out)
    }
}

/// Parses what [`serialize`] wrote. Trailing bytes are an error.
pub fn deserialize(buf: &[u8]) -> Result<Vec<Attribute>> {
    let mut r = Reader { buf };
    let list = r.list(0)?;
    if !r.buf.is_empty() {
        return Err(Error::Tampered(
            "trailing bytes after attribute list".into(),
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_round_trips_every_kind() {
        let attrs = vec![
            Attribute::new(CKA_TOKEN, Value::Bool(true)),
            Attribute::new(CKA_CLASS, Value::Ulong(u64::from(CKO_SECRET_KEY))),
            Attribute::new(CKA_LABEL, Value::bytes(b"label".to_vec())),
            Attribute::new(
                CKA_WRAP_TEMPLATE,
                Value::Template(vec![Attribute::new(CKA_EXTRACTABLE, Value::Bool(false))]),
            ),
            Attribute::new(CKA_ALLOWED_MECHANISMS, Value::Mechanisms(vec![1, 0x1082])),
        ];
        let mut buf = Vec::new();
        serialize(&attrs, &mut buf).unwrap();
        assert_eq!(buf.len(), serialized_len(&attrs));
        assert_eq!(deserialize(&buf).unwrap(), attrs);
        buf.push(0);
        assert!(deserialize(&buf).is_err());
        assert!(deserialize(&buf[..buf.len() - 3]).is_err());
    }

    #[test]
    fn parse_checks_sizes() {
        let bad_bool = RawAttribute {
            ty: CKA_TOKEN as u64,
            value: RawValue::Bytes(Zeroizing::new(vec![1, 0])),
        };
        assert_eq!(bad_bool.parse().unwrap_err(), Error::AttributeValueInvalid);
        let bad_ulong = RawAttribute {
            ty: CKA_CLASS as u64,
            value: RawValue::Bytes(Zeroizing::new(vec![1, 0, 0])),
        };
        assert_eq!(bad_ulong.parse().unwrap_err(), Error::AttributeValueInvalid);
        let ok = RawAttribute {
            ty: CKA_CLASS as u64,
            value: RawValue::Bytes(Zeroizing::new(CKO_DATA.to_ne_bytes().to_vec())),
        };
        assert_eq!(ok.parse().unwrap().value, Value::Ulong(u64::from(CKO_DATA)));
    }
}
