//! Seeded random C-ABI call sequences on four threads, each with its own
//! session (the harness that crashed SoftHSM in C_Sign after C_SignInit took
//! an AES key for an RSA mechanism, and deadlocked Kryoptic when C_Login and
//! C_Logout on one thread met key generation and object calls on another).
//!
//! Thread 0 also logs the user in and out (and now and then closes every
//! session of the token); every thread generates keys and key pairs, creates,
//! copies, finds, reads, changes and destroys objects, and starts and drives
//! sign, verify, encrypt, decrypt, digest, wrap and unwrap operations with
//! random - often mismatched - keys, mechanisms and parameters, random input,
//! NULL and too-small output buffers and NULL length pointers.
//!
//! What must hold:
//! - no call returns CKR_GENERAL_ERROR (what a caught panic becomes) or
//!   another code that means the module broke ([`BROKEN`]);
//! - the run ends in bounded time (no deadlock): the threads report over a
//!   channel and the test fails after [`DEADLINE`];
//! - a signature or MAC a successful C_Sign made verifies, and a successful
//!   C_Encrypt decrypts back to its input, unless a logout in between ended
//!   the operation or closed the session.
//!
//! Every thread has a fixed seed: a failure names thread, seed and step, and
//! the same sequence runs again (up to the interleaving of the threads).

mod common;

use common::*;
use cryptoki_sys::*;
use std::collections::BTreeMap;
use std::ptr::null_mut;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use strongroom_pkcs11::ffi::exports::*;

const SEEDS: [u64; 4] = [
    0x5EED_0000_0000_0001,
    0x5EED_0000_0000_0002,
    0x5EED_0000_0000_0003,
    0x5EED_0000_0000_0004,
];
const STEPS: usize = 4000;
const DEADLINE: Duration = Duration::from_secs(120);

/// Codes no call may return: a panic caught at the boundary, or a module
/// that lost track of its own state or store.
const BROKEN: &[CK_RV] = &[
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_HOST_MEMORY,
    CKR_CRYPTOKI_NOT_INITIALIZED,
];

/// A small, fixed PRNG (splitmix64): the sequences must not change with a
/// dependency's version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `pct` times in a hundred.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn out(&mut self) -> Out {
        match self.below(8) {
            0 => Out::Query,
            1 => Out::NoLen,
            2 | 3 => Out::Cap(self.below(80)),
            _ => Out::Cap(4096),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Aes,
    Generic,
    EcPublic,
    EcPrivate,
    RsaPublic,
    RsaPrivate,
}

#[derive(Clone, Copy, Debug)]
struct Key {
    h: CK_OBJECT_HANDLE,
    kind: Kind,
    /// The other half of a key pair.
    partner: Option<CK_OBJECT_HANDLE>,
}

const SIGN_MECHS: &[CK_MECHANISM_TYPE] = &[
    CKM_SHA256_HMAC,
    CKM_SHA_1_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_RSA_X_509,
    CKM_EDDSA,
    CKM_AES_ECB,
    CKM_SHA256,
    999,
];

const CIPHER_MECHS: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_ECB,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CTR,
    CKM_AES_GCM,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_X_509,
    CKM_SHA256_HMAC,
    999,
];

const DIGEST_MECHS: &[CK_MECHANISM_TYPE] = &[
    CKM_SHA_1,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_AES_ECB,
    999,
];

const ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_MODULUS,
    CKA_PRIVATE_EXPONENT,
    CKA_EC_POINT,
    CKA_EC_PARAMS,
    CKA_WRAP_TEMPLATE,
    CKA_ALLOWED_MECHANISMS,
    CKA_CERTIFICATE_TYPE,
    0x8000_1234,
];

/// A well-formed mechanism of type `ty` (pointer parameters point into
/// buffers the [`Mech`] keeps), or now and then a parameter of random bytes
/// shorter than any pointer-carrying parameter structure, so the module must
/// refuse it by its size without reading it as pointers.
fn mechanism(r: &mut Rng, ty: CK_MECHANISM_TYPE) -> Mech {
    if r.chance(8) {
        let n = r.below(24);
        return Mech::bytes(ty, &r.bytes(n));
    }
    match ty {
        CKM_AES_CBC | CKM_AES_CBC_PAD => {
            let n = if r.chance(10) { 15 } else { 16 };
            Mech::bytes(ty, &r.bytes(n))
        }
        CKM_AES_CTR => {
            let mut cb = [0u8; 16];
            cb.copy_from_slice(&r.bytes(16));
            Mech::with(
                ty,
                &CK_AES_CTR_PARAMS {
                    ulCounterBits: r.pick(&[32, 64, 128, 0, 129]),
                    cb,
                },
                Vec::new(),
            )
        }
        CKM_AES_GCM => {
            let (iv_len, aad_len) = (r.pick(&[12, 16, 0, 1]), r.below(20));
            let (iv, aad) = (r.bytes(iv_len), r.bytes(aad_len));
            gcm(&iv, &aad, r.pick(&[128, 96, 7, 0]))
        }
        CKM_RSA_PKCS_OAEP => Mech::with(
            ty,
            &CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: r.pick(&[CKM_SHA256, CKM_SHA_1, 999]),
                mgf: r.pick(&[CKG_MGF1_SHA256, CKG_MGF1_SHA1]),
                source: CKZ_DATA_SPECIFIED,
                pSourceData: null_mut(),
                ulSourceDataLen: 0,
            },
            Vec::new(),
        ),
        CKM_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS => Mech::with(
            ty,
            &CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: r.pick(&[CKM_SHA256, CKM_SHA_1]),
                mgf: CKG_MGF1_SHA256,
                sLen: r.pick(&[0, 32, 1000, CK_ULONG::MAX]),
            },
            Vec::new(),
        ),
        CKM_SHA256_HMAC_GENERAL | CKM_AES_CMAC_GENERAL => {
            Mech::with(ty, &(r.below(40) as CK_ULONG), Vec::new())
        }
        _ => Mech::plain(ty),
    }
}

/// An update call: input only (sign) or input and output (encrypt).
#[derive(Clone, Copy)]
enum Update {
    In(PartFn),
    InOut(OutFn),
}

/// The calls of one kind of operation, and how its results are checked.
struct Flow {
    what: [&'static str; 4],
    init: InitFn,
    single: OutFn,
    update: Update,
    last: FinalFn,
    check: fn(&mut Worker, CK_MECHANISM_TYPE, u64, Key, &[u8], &[u8]),
}

struct Worker {
    id: usize,
    seed: u64,
    step: usize,
    r: Rng,
    s: CK_SESSION_HANDLE,
    logs_in: bool,
    keys: Vec<Key>,
    objects: Vec<CK_OBJECT_HANDLE>,
    codes: BTreeMap<CK_RV, usize>,
    calls: usize,
    /// Signatures that verified, and encryptions that decrypted back.
    checked: usize,
}

impl Worker {
    fn new(id: usize, logs_in: bool) -> Worker {
        Worker {
            id,
            seed: SEEDS[id],
            step: 0,
            r: Rng(SEEDS[id]),
            s: must_open(CKF_SERIAL_SESSION | CKF_RW_SESSION),
            logs_in,
            keys: Vec::new(),
            objects: Vec::new(),
            codes: BTreeMap::new(),
            calls: 0,
            checked: 0,
        }
    }

    /// Records and checks one return code; a session another thread closed
    /// is replaced.
    #[track_caller]
    fn rv(&mut self, what: &str, rv: CK_RV) -> CK_RV {
        self.calls += 1;
        *self.codes.entry(rv).or_default() += 1;
        assert!(
            !BROKEN.contains(&rv),
            "thread {} (seed {:#x}) step {}: {what} returned {rv:#x}",
            self.id,
            self.seed,
            self.step
        );
        if rv == CKR_SESSION_HANDLE_INVALID {
            self.s = must_open(if self.r.chance(70) {
                CKF_SERIAL_SESSION | CKF_RW_SESSION
            } else {
                CKF_SERIAL_SESSION
            });
        }
        rv
    }

    /// Mostly a key of the kind `ty` takes (so that operations start and
    /// results get checked), otherwise any key.
    fn key_for(&mut self, ty: CK_MECHANISM_TYPE) -> Option<Key> {
        let kinds: &[Kind] = match ty {
            CKM_SHA256_HMAC | CKM_SHA_1_HMAC | CKM_SHA256_HMAC_GENERAL => &[Kind::Generic],
            CKM_AES_CMAC | CKM_AES_CMAC_GENERAL | CKM_AES_ECB | CKM_AES_CBC | CKM_AES_CBC_PAD
            | CKM_AES_CTR | CKM_AES_GCM | CKM_AES_KEY_WRAP | CKM_AES_KEY_WRAP_PAD => &[Kind::Aes],
            CKM_ECDSA | CKM_ECDSA_SHA256 | CKM_EDDSA => &[Kind::EcPrivate],
            _ => &[Kind::RsaPrivate, Kind::RsaPublic],
        };
        let fitting: Vec<Key> = self
            .keys
            .iter()
            .copied()
            .filter(|k| kinds.contains(&k.kind))
            .collect();
        if fitting.is_empty() || self.r.chance(30) {
            self.key()
        } else {
            Some(fitting[self.r.below(fitting.len())])
        }
    }

    fn key(&mut self) -> Option<Key> {
        if self.keys.is_empty() {
            None
        } else {
            let i = self.r.below(self.keys.len());
            Some(self.keys[i])
        }
    }

    /// A key handle: mostly one of ours, sometimes one that names nothing.
    fn key_handle(&mut self) -> CK_OBJECT_HANDLE {
        match self.key() {
            Some(k) if !self.r.chance(5) => k.h,
            _ => self.r.pick(&[0, 1, 77777, CK_OBJECT_HANDLE::MAX]),
        }
    }

    fn data(&mut self) -> Vec<u8> {
        let n = self.r.pick(&[0, 1, 15, 16, 32, 64, 100, 200]);
        self.r.bytes(n)
    }

    fn key_template(&mut self) -> Tmpl {
        let r = &mut self.r;
        let mut t = Tmpl::new()
            .bool(CKA_TOKEN, r.chance(3))
            .bool(CKA_PRIVATE, r.chance(30))
            .bytes(CKA_LABEL, b"stress");
        for a in [CKA_SENSITIVE, CKA_EXTRACTABLE] {
            if r.chance(30) {
                t = t.bool(a, r.chance(50));
            }
        }
        t
    }

    fn usages(&mut self, t: Tmpl, attrs: &[CK_ATTRIBUTE_TYPE]) -> Tmpl {
        let mut t = t;
        for &a in attrs {
            t = t.bool(a, !self.r.chance(15));
        }
        t
    }

    fn run(mut self) -> Worker {
        for step in 0..STEPS {
            self.step = step;
            let action = self.r.below(if self.logs_in { 22 } else { 20 });
            match action {
                0 | 1 => self.gen_aes(),
                2 => self.gen_ec(),
                3 if self.r.chance(4) => self.gen_rsa(),
                3 | 4 => self.create_objects(),
                5 => self.destroy_one(),
                6 => self.find(),
                7 => self.attributes(),
                8 => self.copy_or_set(),
                9 | 10 => self.sign_flow(),
                11 => self.verify_flow(),
                12 | 13 => self.encrypt_flow(),
                14 => self.decrypt_flow(),
                15 => self.digest_flow(),
                16 => self.wrap_flow(),
                17 => self.misc(),
                18 => self.cancel(),
                19 => self.reopen(),
                _ => self.login_logout(),
            }
        }
        self
    }

    fn gen_aes(&mut self) {
        let t = self.key_template();
        let t = self.usages(
            t,
            &[
                CKA_ENCRYPT,
                CKA_DECRYPT,
                CKA_SIGN,
                CKA_VERIFY,
                CKA_WRAP,
                CKA_UNWRAP,
            ],
        );
        let len = self.r.pick(&[16, 16, 32, 24, 7]);
        let rv = match generate(self.s, CKM_AES_KEY_GEN, t.ulong(CKA_VALUE_LEN, len)) {
            Ok(h) => {
                self.keys.push(Key {
                    h,
                    kind: Kind::Aes,
                    partner: None,
                });
                CKR_OK
            }
            Err(rv) => rv,
        };
        self.rv("C_GenerateKey(AES)", rv);
    }

    fn push_pair(
        &mut self,
        (p, q): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
        public: Kind,
        private: Kind,
    ) {
        self.keys.push(Key {
            h: p,
            kind: public,
            partner: Some(q),
        });
        self.keys.push(Key {
            h: q,
            kind: private,
            partner: Some(p),
        });
    }

    fn gen_ec(&mut self) {
        let pt = self.key_template();
        let pt = self.usages(pt, &[CKA_VERIFY]);
        let st = self.key_template();
        let st = self.usages(st, &[CKA_SIGN]);
        let params: &[u8] = if self.r.chance(90) {
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        } else {
            &[0x06, 0x03, 0x2b, 0x65, 0x70]
        };
        let rv = match key_pair(
            self.s,
            CKM_EC_KEY_PAIR_GEN,
            pt.bytes(CKA_EC_PARAMS, params),
            st,
        ) {
            Ok(pair) => {
                self.push_pair(pair, Kind::EcPublic, Kind::EcPrivate);
                CKR_OK
            }
            Err(rv) => rv,
        };
        self.rv("C_GenerateKeyPair(EC)", rv);
    }

    fn gen_rsa(&mut self) {
        let pt = self.key_template();
        let pt = self.usages(pt, &[CKA_VERIFY, CKA_ENCRYPT, CKA_WRAP]);
        let st = self.key_template();
        let st = self.usages(st, &[CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP]);
        let bits = if self.r.chance(90) { 2048 } else { 1024 };
        let pt = pt
            .ulong(CKA_MODULUS_BITS, bits)
            .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]);
        let rv = match key_pair(self.s, CKM_RSA_PKCS_KEY_PAIR_GEN, pt, st) {
            Ok(pair) => {
                self.push_pair(pair, Kind::RsaPublic, Kind::RsaPrivate);
                CKR_OK
            }
            Err(rv) => rv,
        };
        self.rv("C_GenerateKeyPair(RSA)", rv);
    }

    fn create_objects(&mut self) {
        let t = self.key_template();
        let (what, t, kind) = if self.r.chance(60) {
            let n = self.r.pick(&[16, 32, 64, 0]);
            let v = self.r.bytes(n);
            let t = self.usages(t, &[CKA_SIGN, CKA_VERIFY, CKA_DERIVE]);
            (
                "C_CreateObject(generic secret)",
                t.ulong(CKA_CLASS, CKO_SECRET_KEY)
                    .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
                    .bytes(CKA_VALUE, &v),
                Some(Kind::Generic),
            )
        } else {
            let v = self.data();
            (
                "C_CreateObject(data)",
                Tmpl::new()
                    .ulong(CKA_CLASS, CKO_DATA)
                    .bool(CKA_TOKEN, self.r.chance(3))
                    .bool(CKA_PRIVATE, self.r.chance(30))
                    .bytes(CKA_VALUE, &v),
                None,
            )
        };
        let rv = match create(self.s, t) {
            Ok(h) => {
                match kind {
                    Some(kind) => self.keys.push(Key {
                        h,
                        kind,
                        partner: None,
                    }),
                    None => self.objects.push(h),
                }
                CKR_OK
            }
            Err(rv) => rv,
        };
        self.rv(what, rv);
    }

    fn destroy_one(&mut self) {
        let h = if !self.objects.is_empty() && self.r.chance(50) {
            let i = self.r.below(self.objects.len());
            self.objects.swap_remove(i)
        } else if !self.keys.is_empty() {
            let i = self.r.below(self.keys.len());
            self.keys.swap_remove(i).h
        } else {
            return;
        };
        let rv = destroy(self.s, h);
        self.rv("C_DestroyObject", rv);
    }

    fn find(&mut self) {
        let mut t = match self.r.below(3) {
            0 => Tmpl::new(),
            1 => Tmpl::new().bytes(CKA_LABEL, b"stress"),
            _ => Tmpl::new().ulong(
                CKA_CLASS,
                self.r.pick(&[CKO_SECRET_KEY, CKO_DATA, CKO_PRIVATE_KEY]),
            ),
        };
        let (p, n) = t.ptr();
        // SAFETY: the template outlives the call.
        let rv = unsafe { C_FindObjectsInit(self.s, p, n) };
        self.rv("C_FindObjectsInit", rv);
        for _ in 0..self.r.below(4) {
            let max = self.r.pick(&[0, 1, 3, 50]);
            let mut buf = vec![0 as CK_OBJECT_HANDLE; max.max(1)];
            let mut count: CK_ULONG = 0;
            let pbuf = if self.r.chance(5) {
                null_mut()
            } else {
                buf.as_mut_ptr()
            };
            // SAFETY: `buf` holds at least `max` handles (or the pointer is NULL).
            let rv = unsafe { C_FindObjects(self.s, pbuf, max as CK_ULONG, &mut count) };
            self.rv("C_FindObjects", rv);
            if rv == CKR_OK {
                assert!(
                    count as usize <= max,
                    "C_FindObjects returned more than asked"
                );
            }
        }
        if self.r.chance(80) {
            // SAFETY: plain value argument.
            let rv = unsafe { C_FindObjectsFinal(self.s) };
            self.rv("C_FindObjectsFinal", rv);
        }
    }

    fn attributes(&mut self) {
        let h = if !self.objects.is_empty() && self.r.chance(30) {
            self.objects[self.r.below(self.objects.len())]
        } else {
            self.key_handle()
        };
        let n = 1 + self.r.below(3);
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        let mut attrs: Vec<CK_ATTRIBUTE> = Vec::new();
        for _ in 0..n {
            let ty = self.r.pick(ATTRS);
            let cap = self.r.pick(&[0, 1, 8, 4096]);
            bufs.push(vec![0u8; cap.max(1)]);
            let null = self.r.chance(30);
            let b = bufs.last_mut().expect("just pushed");
            attrs.push(CK_ATTRIBUTE {
                type_: ty,
                pValue: if null {
                    null_mut()
                } else {
                    b.as_mut_ptr() as *mut std::ffi::c_void
                },
                ulValueLen: cap as CK_ULONG,
            });
        }
        // SAFETY: every non-NULL value buffer holds its stated length. A
        // template attribute (CKA_WRAP_TEMPLATE) with a buffer is filled as an
        // array of CK_ATTRIBUTE: it gets a buffer of 0 or 1 bytes or 8 or
        // 4096 - too small for any entry, or large enough and zeroed (NULL
        // inner pointers).
        let rv = unsafe { C_GetAttributeValue(self.s, h, attrs.as_mut_ptr(), n as CK_ULONG) };
        self.rv("C_GetAttributeValue", rv);
    }

    fn copy_or_set(&mut self) {
        let h = self.key_handle();
        let t = match self.r.below(4) {
            0 => Tmpl::new().bytes(CKA_LABEL, b"changed"),
            1 => Tmpl::new().bool(CKA_SENSITIVE, self.r.chance(50)),
            2 => Tmpl::new().bool(CKA_EXTRACTABLE, self.r.chance(50)),
            _ => Tmpl::new().ulong(CKA_CLASS, CKO_DATA),
        };
        if self.r.chance(50) {
            let rv = set(self.s, h, t);
            self.rv("C_SetAttributeValue", rv);
        } else {
            let rv = match copy(self.s, h, t) {
                Ok(n) => {
                    self.objects.push(n);
                    CKR_OK
                }
                Err(rv) => rv,
            };
            self.rv("C_CopyObject", rv);
        }
    }

    /// Random sign calls; a successful one-shot signature is verified.
    fn sign_flow(&mut self) {
        let ty = self.r.pick(SIGN_MECHS);
        self.op_flow(
            ty,
            Flow {
                what: ["C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal"],
                init: C_SignInit,
                single: C_Sign,
                update: Update::In(C_SignUpdate),
                last: C_SignFinal,
                check: Self::check_signature,
            },
        );
    }

    /// Random encrypt calls; a successful one-shot encryption is decrypted.
    fn encrypt_flow(&mut self) {
        let ty = self.r.pick(CIPHER_MECHS);
        self.op_flow(
            ty,
            Flow {
                what: [
                    "C_EncryptInit",
                    "C_Encrypt",
                    "C_EncryptUpdate",
                    "C_EncryptFinal",
                ],
                init: C_EncryptInit,
                single: C_Encrypt,
                update: Update::InOut(C_EncryptUpdate),
                last: C_EncryptFinal,
                check: Self::check_decryption,
            },
        );
    }

    /// Init with mechanism `ty` and a key mostly of its kind, then one to
    /// three random single-part, update and final calls.
    fn op_flow(&mut self, ty: CK_MECHANISM_TYPE, f: Flow) {
        let key = self.key_for(ty);
        let h = match key {
            Some(k) if !self.r.chance(5) => k.h,
            _ => self.key_handle(),
        };
        let seed = self.r.next();
        let mut m = mechanism(&mut Rng(seed), ty);
        let rv = init(f.init, self.s, &mut m, h);
        // Only an operation this flow started is checked (a failed init
        // leaves an earlier one in place), and only with the data of the
        // flow's first single-part call (after CKR_BUFFER_TOO_SMALL the next
        // call is to pass the same data again, v3.0 §5.2).
        let started = self.rv(f.what[0], rv) == CKR_OK;
        let single = self.data();
        for _ in 0..1 + self.r.below(3) {
            let data = self.data();
            let out = self.r.out();
            match self.r.below(4) {
                0 | 1 => {
                    let g = call(f.single, self.s, &single, out);
                    self.rv(f.what[1], g.rv);
                    if started && g.rv == CKR_OK && matches!(out, Out::Cap(_)) {
                        if let Some(k) = key.filter(|k| k.h == h) {
                            (f.check)(self, ty, seed, k, &single, &g.buf);
                        }
                    }
                }
                2 => {
                    let rv = match f.update {
                        Update::In(u) => part(u, self.s, &data),
                        Update::InOut(u) => call(u, self.s, &data, out).rv,
                    };
                    self.rv(f.what[2], rv);
                }
                _ => {
                    let g = call_final(f.last, self.s, out);
                    self.rv(f.what[3], g.rv);
                }
            }
        }
    }

    fn check_signature(
        &mut self,
        ty: CK_MECHANISM_TYPE,
        _seed: u64,
        k: Key,
        data: &[u8],
        sig: &[u8],
    ) {
        let vk = match k.kind {
            Kind::EcPrivate | Kind::RsaPrivate => match k.partner {
                Some(p) => p,
                None => return,
            },
            _ => k.h,
        };
        // Drop a verification an earlier flow left active.
        let _ = init_null(C_VerifyInit, self.s, vk);
        // The same mechanism again: parameters are rebuilt identically only
        // for parameterless mechanisms, so check those.
        if !matches!(
            ty,
            CKM_SHA256_HMAC
                | CKM_SHA_1_HMAC
                | CKM_AES_CMAC
                | CKM_ECDSA
                | CKM_ECDSA_SHA256
                | CKM_RSA_PKCS
                | CKM_SHA256_RSA_PKCS
                | CKM_RSA_X_509
                | CKM_EDDSA
        ) {
            return;
        }
        let rv = init(C_VerifyInit, self.s, &mut Mech::plain(ty), vk);
        self.rv("C_VerifyInit (check)", rv);
        if rv != CKR_OK {
            return;
        }
        let rv = verify(self.s, data, sig);
        self.rv("C_Verify (check)", rv);
        assert!(
            matches!(
                rv,
                CKR_OK | CKR_OPERATION_NOT_INITIALIZED | CKR_SESSION_HANDLE_INVALID
            ),
            "thread {} (seed {:#x}) step {}: a signature C_Sign made with mechanism {ty:#x} \
             does not verify: {rv:#x}",
            self.id,
            self.seed,
            self.step
        );
        if rv == CKR_OK {
            self.checked += 1;
        }
    }

    fn verify_flow(&mut self) {
        let ty = self.r.pick(SIGN_MECHS);
        let h = self.key_handle();
        let mut m = mechanism(&mut self.r, ty);
        let rv = init(C_VerifyInit, self.s, &mut m, h);
        self.rv("C_VerifyInit", rv);
        for _ in 0..1 + self.r.below(3) {
            let data = self.data();
            let n = self.r.pick(&[0, 4, 32, 64, 256]);
            let sig = self.r.bytes(n);
            let rv = match self.r.below(3) {
                0 => verify(self.s, &data, &sig),
                1 => part(C_VerifyUpdate, self.s, &data),
                _ => verify_final(self.s, &sig),
            };
            self.rv("C_Verify*", rv);
        }
    }

    fn check_decryption(&mut self, ty: CK_MECHANISM_TYPE, seed: u64, k: Key, pt: &[u8], ct: &[u8]) {
        let dk = match k.kind {
            Kind::RsaPublic => match k.partner {
                Some(p) => p,
                None => return,
            },
            _ => k.h,
        };
        let _ = init_null(C_DecryptInit, self.s, dk);
        // The same parameters (IV, AAD, tag size...) from the same seed.
        let mut m = mechanism(&mut Rng(seed), ty);
        let rv = init(C_DecryptInit, self.s, &mut m, dk);
        self.rv("C_DecryptInit (check)", rv);
        if rv != CKR_OK {
            return;
        }
        let g = call(C_Decrypt, self.s, ct, Out::Cap(4096));
        self.rv("C_Decrypt (check)", g.rv);
        let fine = match g.rv {
            CKR_OK => ty == CKM_RSA_X_509 || g.buf == pt,
            rv => matches!(
                rv,
                CKR_OPERATION_NOT_INITIALIZED | CKR_SESSION_HANDLE_INVALID
            ),
        };
        assert!(
            fine,
            "thread {} (seed {:#x}) step {}: what C_Encrypt made with mechanism {ty:#x} \
             does not decrypt back ({} bytes in, {} out): {:#x}",
            self.id,
            self.seed,
            self.step,
            pt.len(),
            ct.len(),
            g.rv
        );
        if g.rv == CKR_OK {
            self.checked += 1;
        }
    }

    fn decrypt_flow(&mut self) {
        let ty = self.r.pick(CIPHER_MECHS);
        let h = self.key_handle();
        let mut m = mechanism(&mut self.r, ty);
        let rv = init(C_DecryptInit, self.s, &mut m, h);
        self.rv("C_DecryptInit", rv);
        for _ in 0..1 + self.r.below(3) {
            let data = self.data();
            let out = self.r.out();
            let g = match self.r.below(3) {
                0 => call(C_Decrypt, self.s, &data, out),
                1 => call(C_DecryptUpdate, self.s, &data, out),
                _ => call_final(C_DecryptFinal, self.s, out),
            };
            self.rv("C_Decrypt*", g.rv);
        }
    }

    fn digest_flow(&mut self) {
        let ty = self.r.pick(DIGEST_MECHS);
        let rv = digest_init(self.s, ty);
        self.rv("C_DigestInit", rv);
        for _ in 0..1 + self.r.below(3) {
            let data = self.data();
            let rv = match self.r.below(4) {
                0 => call(C_Digest, self.s, &data, self.r.out()).rv,
                1 => part(C_DigestUpdate, self.s, &data),
                2 => {
                    let h = self.key_handle();
                    // SAFETY: plain value arguments.
                    unsafe { C_DigestKey(self.s, h) }
                }
                _ => call_final(C_DigestFinal, self.s, self.r.out()).rv,
            };
            self.rv("C_Digest*", rv);
        }
    }

    fn wrap_flow(&mut self) {
        let ty = self.r.pick(&[
            CKM_AES_KEY_WRAP,
            CKM_AES_KEY_WRAP_PAD,
            CKM_AES_ECB,
            CKM_RSA_PKCS_OAEP,
            CKM_RSA_PKCS,
        ]);
        let (wk, k) = (self.key_handle(), self.key_handle());
        let seed = self.r.next();
        let mut m = mechanism(&mut Rng(seed), ty);
        let out = self.r.out();
        let s = self.s;
        // SAFETY: the mechanism outlives the call; the output pointers are
        // NULL or valid.
        let g = with_out(out, |p, plen| unsafe {
            C_WrapKey(s, m.ptr(), wk, k, p, plen)
        });
        self.rv("C_WrapKey", g.rv);
        let wrapped = if g.rv == CKR_OK && matches!(out, Out::Cap(_)) {
            g.buf
        } else {
            self.data()
        };
        let uk = match self.keys.iter().find(|x| x.h == wk) {
            Some(Key {
                kind: Kind::RsaPublic,
                partner: Some(p),
                ..
            }) => *p,
            _ => wk,
        };
        let mut t = Tmpl::new()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, self.r.pick(&[CKK_AES, CKK_GENERIC_SECRET]))
            .bool(CKA_TOKEN, false)
            .bool(CKA_PRIVATE, self.r.chance(30))
            .bool(CKA_ENCRYPT, true);
        let (tp, tn) = t.ptr();
        let mut w = wrapped;
        let mut m = mechanism(&mut Rng(seed), ty);
        let mut nk = 0;
        // SAFETY: mechanism, wrapped bytes, template and out-pointer outlive
        // the call.
        let rv = unsafe {
            C_UnwrapKey(
                self.s,
                m.ptr(),
                uk,
                ptr_of(&mut w),
                w.len() as CK_ULONG,
                tp,
                tn,
                &mut nk,
            )
        };
        if self.rv("C_UnwrapKey", rv) == CKR_OK {
            self.keys.push(Key {
                h: nk,
                kind: Kind::Aes,
                partner: None,
            });
        }
    }

    fn misc(&mut self) {
        match self.r.below(5) {
            0 => {
                let n = self.r.pick(&[0, 1, 32, 1000]);
                let mut buf = vec![0u8; n.max(1)];
                // SAFETY: `buf` holds at least `n` bytes.
                let rv = unsafe { C_GenerateRandom(self.s, buf.as_mut_ptr(), n as CK_ULONG) };
                self.rv("C_GenerateRandom", rv);
            }
            1 => {
                let rv = session_info(self.s).err().unwrap_or(CKR_OK);
                self.rv("C_GetSessionInfo", rv);
            }
            2 => {
                // SAFETY: plain data.
                let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
                // SAFETY: valid out-pointer.
                let rv = unsafe { C_GetTokenInfo(SLOT, &mut info) };
                self.rv("C_GetTokenInfo", rv);
            }
            3 => {
                let mut n: CK_ULONG = 0;
                // SAFETY: NULL list asks for the count.
                let rv = unsafe { C_GetMechanismList(SLOT, null_mut(), &mut n) };
                self.rv("C_GetMechanismList", rv);
            }
            _ => {
                let h = self.key_handle();
                let mut size = 0;
                // SAFETY: valid out-pointer.
                let rv = unsafe { C_GetObjectSize(self.s, h, &mut size) };
                self.rv("C_GetObjectSize", rv);
            }
        }
    }

    /// C_*Init with a NULL mechanism, and C_SessionCancel.
    fn cancel(&mut self) {
        let h = self.key_handle();
        let rv = match self.r.below(6) {
            0 => init_null(C_EncryptInit, self.s, h),
            1 => init_null(C_DecryptInit, self.s, h),
            2 => init_null(C_SignInit, self.s, h),
            3 => init_null(C_VerifyInit, self.s, h),
            // SAFETY: a NULL mechanism is a defined argument.
            4 => unsafe { C_DigestInit(self.s, null_mut()) },
            // SAFETY: plain value arguments.
            _ => unsafe { C_SessionCancel(self.s, CKF_ENCRYPT | CKF_SIGN | CKF_FIND_OBJECTS) },
        };
        self.rv("cancel", rv);
    }

    fn reopen(&mut self) {
        if self.r.chance(20) {
            let rv = close(self.s);
            self.rv("C_CloseSession", rv);
            // Session objects die with the last... no: with their session.
            self.keys.clear();
            self.objects.clear();
            self.s = must_open(CKF_SERIAL_SESSION | CKF_RW_SESSION);
        }
    }

    fn login_logout(&mut self) {
        if self.r.chance(2) {
            // SAFETY: plain value argument.
            let rv = unsafe { C_CloseAllSessions(SLOT) };
            self.rv("C_CloseAllSessions", rv);
            self.keys.clear();
            self.objects.clear();
            self.s = must_open(CKF_SERIAL_SESSION | CKF_RW_SESSION);
            return;
        }
        let rv = match state(self.s) {
            CKS_RO_PUBLIC_SESSION | CKS_RW_PUBLIC_SESSION => login(self.s, CKU_USER, USER_PIN),
            _ => logout(self.s),
        };
        self.rv("C_Login/C_Logout", rv);
    }
}

#[test]
fn random_call_sequences_on_four_threads() {
    let f = Fixture::new();
    // Every thread starts with a session of its own; the fixture's session is
    // closed (and so the user logged out) before they start.
    assert_eq!(close(f.s), CKR_OK);
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    for id in 0..SEEDS.len() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| Worker::new(id, id == 0).run());
            let report = r.map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into())
            });
            let _ = tx.send((id, report));
        });
    }
    drop(tx);
    let mut failures = Vec::new();
    let mut done = 0;
    let mut totals: BTreeMap<CK_RV, usize> = BTreeMap::new();
    while done < SEEDS.len() {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok((id, Ok(w))) => {
                done += 1;
                println!(
                    "thread {id}: {} calls, {} results checked, {} keys left",
                    w.calls,
                    w.checked,
                    w.keys.len()
                );
                assert!(w.checked > 0, "thread {id} never checked a result");
                for (rv, n) in w.codes {
                    *totals.entry(rv).or_default() += n;
                }
            }
            Ok((id, Err(msg))) => {
                done += 1;
                failures.push(format!("thread {id}: {msg}"));
            }
            Err(_) => panic!(
                "deadlock: {} of {} threads still running after {:?}",
                SEEDS.len() - done,
                SEEDS.len(),
                DEADLINE
            ),
        }
    }
    println!("{:?} in all; return codes: {totals:#x?}", start.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
