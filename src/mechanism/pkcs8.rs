//! Private keys as unencrypted PKCS#8 `PrivateKeyInfo` DER (RFC 5208, RFC 5958), the form
//! C_WrapKey encrypts a private key in and C_UnwrapKey expects back:
//!
//! * RSA: `rsaEncryption` (1.2.840.113549.1.1.1) with NULL parameters, the key an
//!   `RSAPrivateKey` (RFC 8017 A.1.2, two primes, all CRT values);
//! * EC: `id-ecPublicKey` (1.2.840.10045.2.1) with the named-curve OID as parameters, the key
//!   an `ECPrivateKey` (RFC 5915, version 1, optional `[1]` public key);
//! * Ed25519: `id-Ed25519` (1.3.101.112) without parameters, the key a `CurvePrivateKey`
//!   OCTET STRING (RFC 8410).
//!
//! The reader is strict DER: definite minimal lengths, minimal non-negative INTEGERs, known
//! versions, no trailing bytes at any level. Every decoding failure is
//! `CKR_WRAPPED_KEY_INVALID`. The writer allocates every buffer that holds secrets at its final
//! size, so no reallocation leaves copies behind, and returns [`Zeroizing`] buffers.

use crate::crypto::{Curve, RsaPrivateParts};
use crate::error::{Error, Result};
use std::fmt;
use zeroize::Zeroizing;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
/// `[0] IMPLICIT Attributes` of PrivateKeyInfo; `[0] EXPLICIT` parameters of ECPrivateKey.
const CTX0_CONSTRUCTED: u8 = 0xA0;
/// `[1] EXPLICIT BIT STRING` public key of ECPrivateKey.
const CTX1_CONSTRUCTED: u8 = 0xA1;
/// `[1] IMPLICIT BIT STRING` public key of OneAsymmetricKey (RFC 5958, version 2).
const CTX1_PRIMITIVE: u8 = 0x81;

/// 1.2.840.113549.1.1.1 (value bytes only).
const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1.
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// 1.3.101.112.
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];

/// A private key as PKCS#8 carries it.
pub enum PrivateKey {
    /// All RSA components (big-endian, any leading zeros).
    Rsa(RsaPrivateParts),
    /// An EC key: the scalar (exactly `field_len` bytes after decoding) and the uncompressed
    /// public point when the encoding carried one.
    Ec {
        curve: Curve,
        scalar: Zeroizing<Vec<u8>>,
        public: Option<Vec<u8>>,
    },
    /// An Ed25519 key: the 32-byte seed, and the public key when the encoding carried one.
    Ed25519 {
        seed: Zeroizing<Vec<u8>>,
        public: Option<Vec<u8>>,
    },
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            PrivateKey::Rsa(_) => "Rsa",
            PrivateKey::Ec { .. } => "Ec",
            PrivateKey::Ed25519 { .. } => "Ed25519",
        };
        f.debug_struct("PrivateKey")
            .field("kind", &kind)
            .field("secret", &"<redacted>")
            .finish()
    }
}

// ----- writer -----

fn len_len(n: usize) -> usize {
    match n {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 5,
    }
}

/// Encoded size of a TLV with `n` content bytes.
fn tlv_len(n: usize) -> usize {
    1 + len_len(n) + n
}

fn push_header(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    let l = len_len(n);
    if l == 1 {
        out.push(n as u8);
    } else {
        out.push(0x80 | (l - 1) as u8);
        for i in (0..l - 1).rev() {
            out.push((n >> (8 * i)) as u8);
        }
    }
}

/// One TLV whose content is the concatenation of `parts`, allocated at its final size.
fn tlv(tag: u8, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(tlv_len(n)));
    push_header(&mut out, tag, n);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// A DER INTEGER of an unsigned big-endian value (leading zeros removed, a zero byte added
/// when the high bit is set; the empty value is 0).
fn uint(be: &[u8]) -> Zeroizing<Vec<u8>> {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let v = &be[start..];
    if v.is_empty() {
        tlv(INTEGER, &[&[0]])
    } else if v[0] & 0x80 != 0 {
        tlv(INTEGER, &[&[0], v])
    } else {
        tlv(INTEGER, &[v])
    }
}

/// `v` left-padded with zeros to `len` bytes; `None` if it has more significant bytes.
fn left_pad(v: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    let v = &v[start..];
    if v.len() > len {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    out[len - v.len()..].copy_from_slice(v);
    Some(out)
}

/// Serialises a private key as PKCS#8 `PrivateKeyInfo` (version 0, no attributes).
/// Missing RSA components or a malformed EC scalar are `CKR_KEY_NOT_WRAPPABLE`.
pub fn encode(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let (alg, inner) = match key {
        PrivateKey::Rsa(parts) => {
            let ints = [
                &parts.n[..],
                &parts.e[..],
                &parts.d[..],
                &parts.p[..],
                &parts.q[..],
                &parts.dp[..],
                &parts.dq[..],
                &parts.qinv[..],
            ];
            if ints.iter().any(|v| v.iter().all(|b| *b == 0)) {
                return Err(Error::KeyNotWrappable);
            }
            let encoded: Vec<Zeroizing<Vec<u8>>> =
                std::iter::once(&[][..]).chain(ints).map(uint).collect();
            let refs: Vec<&[u8]> = encoded.iter().map(|v| &v[..]).collect();
            let alg = tlv(SEQUENCE, &[&tlv(OID, &[OID_RSA]), &[NULL, 0]]);
            (alg, tlv(SEQUENCE, &refs))
        }
        PrivateKey::Ec {
            curve,
            scalar,
            public,
        } => {
            let d = left_pad(scalar, curve.field_len()).ok_or(Error::KeyNotWrappable)?;
            let mut parts: Vec<Zeroizing<Vec<u8>>> = vec![uint(&[1]), tlv(OCTET_STRING, &[&d])];
            if let Some(pt) = public {
                let bits = tlv(BIT_STRING, &[&[0], pt]);
                parts.push(tlv(CTX1_CONSTRUCTED, &[&bits]));
            }
            let refs: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
            let alg = tlv(SEQUENCE, &[&tlv(OID, &[OID_EC]), curve.oid_der()]);
            (alg, tlv(SEQUENCE, &refs))
        }
        PrivateKey::Ed25519 { seed, .. } => {
            if seed.len() != 32 {
                return Err(Error::KeyNotWrappable);
            }
            let alg = tlv(SEQUENCE, &[&tlv(OID, &[OID_ED25519])]);
            (alg, tlv(OCTET_STRING, &[seed]))
        }
    };
    Ok(tlv(
        SEQUENCE,
        &[&uint(&[]), &alg, &tlv(OCTET_STRING, &[&inner])],
    ))
}

// ----- reader -----

fn bad<T>() -> Result<T> {
    Err(Error::WrappedKeyInvalid)
}

/// A strict DER reader over a byte string.
struct Der<'a> {
    buf: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Der { buf }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The content of the next TLV, which must have tag `tag`.
    fn read(&mut self, tag: u8) -> Result<&'a [u8]> {
        let [t, first, rest @ ..] = self.buf else {
            return bad();
        };
        if *t != tag {
            return bad();
        }
        let (len, rest) = if *first < 0x80 {
            (usize::from(*first), rest)
        } else {
            let n = usize::from(first & 0x7F);
            // 0x80 is the BER indefinite form; more than 4 length bytes is absurd here.
            if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
                return bad();
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return bad(); // Not minimal: the short form was required.
            }
            (len, &rest[n..])
        };
        if len > rest.len() {
            return bad();
        }
        let (content, tail) = rest.split_at(len);
        self.buf = tail;
        Ok(content)
    }

    /// A non-negative INTEGER in minimal encoding; returns its magnitude without a sign byte.
    fn uint(&mut self) -> Result<&'a [u8]> {
        let c = self.read(INTEGER)?;
        match c {
            [] => bad(),
            [b, ..] if b & 0x80 != 0 => bad(),
            [0, next, ..] if next & 0x80 == 0 => bad(),
            [0, rest @ ..] if !rest.is_empty() => Ok(rest),
            _ => Ok(c),
        }
    }

    /// A small non-negative INTEGER (a version).
    fn version(&mut self) -> Result<u64> {
        let v = self.uint()?;
        if v.len() > 1 {
            return bad();
        }
        Ok(v.first().map_or(0, |b| u64::from(*b)))
    }

    /// A BIT STRING without unused bits.
    fn octet_aligned_bits(&mut self) -> Result<&'a [u8]> {
        match self.read(BIT_STRING)? {
            [0, rest @ ..] => Ok(rest),
            _ => bad(),
        }
    }

    /// Nothing may follow.
    fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            bad()
        }
    }
}

/// Parses a PKCS#8 `PrivateKeyInfo` (version 0) or `OneAsymmetricKey` (version 1, RFC 5958)
/// holding an RSA, EC P-256/P-384 or Ed25519 key. Anything else is `CKR_WRAPPED_KEY_INVALID`.
pub fn decode(der: &[u8]) -> Result<PrivateKey> {
    let mut outer = Der::new(der);
    let mut info = Der::new(outer.read(SEQUENCE)?);
    outer.finish()?;
    let version = info.version()?;
    if version > 1 {
        return bad();
    }
    let mut alg = Der::new(info.read(SEQUENCE)?);
    let oid = alg.read(OID)?;
    let private = info.read(OCTET_STRING)?;
    if info.peek() == Some(CTX0_CONSTRUCTED) {
        info.read(CTX0_CONSTRUCTED)?; // Attributes: allowed, ignored.
    }
    let mut outer_public = None;
    if version == 1 && info.peek() == Some(CTX1_PRIMITIVE) {
        outer_public = Some(match info.read(CTX1_PRIMITIVE)? {
            [0, rest @ ..] => rest.to_vec(),
            _ => return bad(),
        });
    }
    info.finish()?;

    match oid {
        OID_RSA => {
            alg.read(NULL)
                .and_then(|c| if c.is_empty() { Ok(()) } else { bad() })?;
            alg.finish()?;
            if outer_public.is_some() {
                return bad();
            }
            decode_rsa(private).map(PrivateKey::Rsa)
        }
        OID_EC => {
            let named = alg.read(OID)?;
            alg.finish()?;
            let curve = [Curve::P256, Curve::P384]
                .into_iter()
                .find(|c| &c.oid_der()[2..] == named && usize::from(c.oid_der()[1]) == named.len())
                .ok_or(Error::WrappedKeyInvalid)?;
            let (scalar, inner_public) = decode_ec(private, curve)?;
            let public = match (inner_public, outer_public) {
                (Some(a), Some(b)) if a != b => return bad(),
                (a, b) => a.or(b),
            };
            if public
                .as_ref()
                .is_some_and(|p| p.len() != curve.point_len())
            {
                return bad();
            }
            Ok(PrivateKey::Ec {
                curve,
                scalar,
                public,
            })
        }
        OID_ED25519 => {
            alg.finish()?; // RFC 8410 §3: parameters MUST be absent.
            let mut curve_key = Der::new(private);
            let seed = curve_key.read(OCTET_STRING)?;
            curve_key.finish()?;
            if seed.len() != 32 || outer_public.as_ref().is_some_and(|p| p.len() != 32) {
                return bad();
            }
            Ok(PrivateKey::Ed25519 {
                seed: Zeroizing::new(seed.to_vec()),
                public: outer_public,
            })
        }
        _ => bad(),
    }
}

fn decode_rsa(der: &[u8]) -> Result<RsaPrivateParts> {
    let mut outer = Der::new(der);
    let mut k = Der::new(outer.read(SEQUENCE)?);
    outer.finish()?;
    // Version 0: two primes. Version 1 (multi-prime) is not supported.
    if k.version()? != 0 {
        return bad();
    }
    let mut next = || -> Result<Zeroizing<Vec<u8>>> {
        let v = k.uint()?;
        if v.is_empty() {
            return bad(); // Zero is no valid RSA component.
        }
        Ok(Zeroizing::new(v.to_vec()))
    };
    let parts = RsaPrivateParts {
        n: next()?.to_vec(),
        e: next()?.to_vec(),
        d: next()?,
        p: next()?,
        q: next()?,
        dp: next()?,
        dq: next()?,
        qinv: next()?,
    };
    k.finish()?;
    Ok(parts)
}

#[allow(clippy::type_complexity)]
fn decode_ec(der: &[u8], curve: Curve) -> Result<(Zeroizing<Vec<u8>>, Option<Vec<u8>>)> {
    let mut outer = Der::new(der);
    let mut k = Der::new(outer.read(SEQUENCE)?);
    outer.finish()?;
    if k.version()? != 1 {
        return bad();
    }
    let d = k.read(OCTET_STRING)?;
    // RFC 5915 wants exactly the order's length; shorter (leading zeros dropped, as some old
    // encoders did) is accepted and padded.
    if d.is_empty() || d.len() > curve.field_len() {
        return bad();
    }
    let scalar = left_pad(d, curve.field_len()).ok_or(Error::WrappedKeyInvalid)?;
    if k.peek() == Some(CTX0_CONSTRUCTED) && k.read(CTX0_CONSTRUCTED)? != curve.oid_der() {
        return bad();
    }
    let mut public = None;
    if k.peek() == Some(CTX1_CONSTRUCTED) {
        let mut wrapper = Der::new(k.read(CTX1_CONSTRUCTED)?);
        public = Some(wrapper.octet_aligned_bits()?.to_vec());
        wrapper.finish()?;
    }
    k.finish()?;
    Ok((scalar, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(clean).expect("hex")
    }

    #[test]
    fn lengths_and_integers_encode_minimally() {
        assert_eq!(&uint(&[])[..], &[0x02, 0x01, 0x00]);
        assert_eq!(&uint(&[0, 0, 0x7F])[..], &[0x02, 0x01, 0x7F]);
        assert_eq!(&uint(&[0x80])[..], &[0x02, 0x02, 0x00, 0x80]);
        let long = tlv(OCTET_STRING, &[&[7u8; 200]]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(OCTET_STRING, &[&[7u8; 300]]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(longer.len(), tlv_len(300));
    }

    #[test]
    fn reader_is_strict() {
        // Non-minimal long form, indefinite length, overlong, truncated.
        assert!(Der::new(&[0x04, 0x81, 0x01, 0x00])
            .read(OCTET_STRING)
            .is_err());
        assert!(Der::new(&[0x30, 0x80, 0x00, 0x00]).read(SEQUENCE).is_err());
        assert!(Der::new(&[0x04, 0x82, 0x00, 0x90])
            .read(OCTET_STRING)
            .is_err());
        assert!(Der::new(&[0x04, 0x03, 0x00]).read(OCTET_STRING).is_err());
        assert!(Der::new(&[0x04, 0x01, 0x00]).read(INTEGER).is_err());
        // Integers: non-minimal, negative, empty.
        assert!(Der::new(&[0x02, 0x02, 0x00, 0x01]).uint().is_err());
        assert!(Der::new(&[0x02, 0x01, 0x80]).uint().is_err());
        assert!(Der::new(&[0x02, 0x00]).uint().is_err());
        assert_eq!(Der::new(&[0x02, 0x02, 0x00, 0x80]).uint().unwrap(), &[0x80]);
        assert_eq!(Der::new(&[0x02, 0x01, 0x00]).uint().unwrap(), &[0x00]);
    }

    fn round_trip(key: &PrivateKey) -> PrivateKey {
        let der = encode(key).unwrap();
        let back = decode(&der).unwrap();
        assert_eq!(&encode(&back).unwrap()[..], &der[..]);
        // Trailing garbage, a cut and a changed version are refused.
        let mut long = der.to_vec();
        long.push(0);
        assert!(matches!(decode(&long), Err(Error::WrappedKeyInvalid)));
        assert!(matches!(
            decode(&der[..der.len() - 1]),
            Err(Error::WrappedKeyInvalid)
        ));
        let mut v2 = der.to_vec();
        let at = if der[1] < 0x80 {
            2
        } else {
            2 + usize::from(der[1] & 0x7F)
        };
        assert_eq!(&der[at..at + 3], &[INTEGER, 1, 0]);
        v2[at + 2] = 2;
        assert!(matches!(decode(&v2), Err(Error::WrappedKeyInvalid)));
        back
    }

    #[test]
    fn ed25519_round_trip_matches_rfc8410_layout() {
        let seed = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = PrivateKey::Ed25519 {
            seed: Zeroizing::new(seed.clone()),
            public: None,
        };
        let der = encode(&key).unwrap();
        // RFC 8410 §10.3 layout: 30 2e 02 01 00 30 05 06 03 2b 65 70 04 22 04 20 || seed.
        let mut want = h("302e020100300506032b657004220420");
        want.extend_from_slice(&seed);
        assert_eq!(&der[..], &want[..]);
        match round_trip(&key) {
            PrivateKey::Ed25519 { seed: s, public } => {
                assert_eq!(&s[..], &seed[..]);
                assert!(public.is_none());
            }
            other => panic!("wrong kind {other:?}"),
        }
        // Parameters present (RFC 8410 forbids them) are refused.
        let with_null = h("3030020100300706032b6570050004220420");
        let mut bad_der = with_null;
        bad_der.extend_from_slice(&seed);
        assert!(decode(&bad_der).is_err());
    }

    #[test]
    fn ed25519_one_asymmetric_key_v2_with_public_key() {
        // RFC 8410 §10.3 example (version 1 with [1] public key), minus the attributes.
        let seed = h("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842");
        let public = h("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1");
        let mut der = h("3051020101300506032b657004220420");
        der.extend_from_slice(&seed);
        der.extend_from_slice(&h("812100"));
        der.extend_from_slice(&public);
        match decode(&der).unwrap() {
            PrivateKey::Ed25519 { seed: s, public: p } => {
                assert_eq!(&s[..], &seed[..]);
                assert_eq!(p.as_deref(), Some(&public[..]));
            }
            other => panic!("wrong kind {other:?}"),
        }
    }

    #[test]
    fn ec_round_trip_both_curves() {
        for curve in [Curve::P256, Curve::P384] {
            let (scalar, point) = crate::crypto::provider().ec_generate(curve).unwrap();
            let key = PrivateKey::Ec {
                curve,
                scalar: scalar.clone(),
                public: Some(point.clone()),
            };
            match round_trip(&key) {
                PrivateKey::Ec {
                    curve: c,
                    scalar: s,
                    public,
                } => {
                    assert_eq!(c, curve);
                    assert_eq!(&s[..], &scalar[..]);
                    assert_eq!(public, Some(point));
                }
                other => panic!("wrong kind {other:?}"),
            }
            // Without the public key too.
            let bare = PrivateKey::Ec {
                curve,
                scalar: scalar.clone(),
                public: None,
            };
            assert!(matches!(
                round_trip(&bare),
                PrivateKey::Ec { public: None, .. }
            ));
        }
    }

    #[test]
    fn rsa_round_trip() {
        let parts = crate::crypto::provider()
            .rsa_generate(2048, &[1, 0, 1])
            .unwrap();
        match round_trip(&PrivateKey::Rsa(parts.clone())) {
            PrivateKey::Rsa(back) => {
                assert_eq!(back.n, parts.n);
                assert_eq!(&back.d[..], &parts.d[..]);
                assert_eq!(&back.qinv[..], &parts.qinv[..]);
            }
            other => panic!("wrong kind {other:?}"),
        }
        let missing = RsaPrivateParts {
            p: Zeroizing::new(Vec::new()),
            ..parts
        };
        assert!(matches!(
            encode(&PrivateKey::Rsa(missing)),
            Err(Error::KeyNotWrappable)
        ));
    }

    /// tests/vectors/openssl-genpkey-ec-p256.sec1.der is the output of OpenSSL 3.0.19
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER`, which is
    /// a SEC1 `ECPrivateKey`, not PKCS#8; tests/vectors/openssl-genpkey-ec-p256.pkcs8.der is the
    /// same key after `openssl pkcs8 -topk8 -nocrypt -inform DER -outform DER`.
    #[test]
    fn openssl_p256_fixture_parses() {
        let sec1 = include_bytes!("../../tests/vectors/openssl-genpkey-ec-p256.sec1.der");
        assert!(matches!(decode(sec1), Err(Error::WrappedKeyInvalid)));
        let der = include_bytes!("../../tests/vectors/openssl-genpkey-ec-p256.pkcs8.der");
        let PrivateKey::Ec {
            curve,
            scalar,
            public,
        } = decode(der).unwrap()
        else {
            panic!("not an EC key");
        };
        assert_eq!(curve, Curve::P256);
        let point = crate::crypto::provider()
            .ec_public_from_private(curve, &scalar)
            .unwrap();
        assert_eq!(public, Some(point));
        // Our encoding of the same key is byte-identical to OpenSSL's.
        let ours = encode(&PrivateKey::Ec {
            curve,
            scalar,
            public,
        })
        .unwrap();
        assert_eq!(&ours[..], &der[..]);
        let mut trailing = der.to_vec();
        trailing.extend_from_slice(&[0x05, 0x00]);
        assert!(matches!(decode(&trailing), Err(Error::WrappedKeyInvalid)));
    }

    #[test]
    fn garbage_is_wrapped_key_invalid() {
        for g in [
            &[][..],
            &[0x30, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x00],
            &[0x04, 0x00],
        ] {
            assert!(matches!(decode(g), Err(Error::WrappedKeyInvalid)));
        }
    }
}
