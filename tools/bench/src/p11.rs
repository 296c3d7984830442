//! The measuring child: everything done through PKCS#11 against one module.

use crate::common::*;
use anyhow::{anyhow, bail, Context as _, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::io::BufRead;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

pub const TOKEN_LABEL: &str = "strongroom-bench";
const SO_PIN: &str = "bench-so-pin-2468";
const USER_PIN: &str = "bench-user-pin-1357";
/// DER OID of P-256 (CKA_EC_PARAMS).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

fn pin(s: &str) -> AuthPin {
    AuthPin::from(s.to_string())
}

/// Loads and initialises a module.
pub fn load(module: &Path) -> Result<Pkcs11> {
    let ctx = Pkcs11::new(module).with_context(|| format!("loading {}", module.display()))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .context("C_Initialize")?;
    Ok(ctx)
}

/// The slot holding the token labelled `label`.
pub fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot> {
    for slot in ctx.get_slots_with_initialized_token()? {
        if ctx.get_token_info(slot)?.label().trim() == label {
            return Ok(slot);
        }
    }
    bail!("no token labelled {label:?}")
}

/// C_InitToken on the first slot, C_InitPIN; returns the token's slot (re-listed by label:
/// SoftHSM gives the initialised token a new slot id).
pub fn setup_token(ctx: &Pkcs11) -> Result<Slot> {
    let slot0 = *ctx
        .get_slots_with_token()?
        .first()
        .ok_or_else(|| anyhow!("module lists no slot with a token"))?;
    ctx.init_token(slot0, &pin(SO_PIN), TOKEN_LABEL)
        .context("C_InitToken")?;
    let slot = find_slot(ctx, TOKEN_LABEL)?;
    let s = ctx.open_rw_session(slot)?;
    s.login(UserType::So, Some(&pin(SO_PIN)))
        .context("SO login")?;
    s.init_pin(&pin(USER_PIN)).context("C_InitPIN")?;
    s.logout()?;
    s.close()?;
    Ok(slot)
}

fn user_session(ctx: &Pkcs11, slot: Slot) -> Result<Session> {
    let s = ctx.open_rw_session(slot)?;
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .context("user login")?;
    Ok(s)
}

// ----- keys -----

struct Keys {
    ec: Result<(ObjectHandle, ObjectHandle), String>,
    rsa: Result<(ObjectHandle, ObjectHandle), String>,
    kek: Result<ObjectHandle, String>,
    target: Result<ObjectHandle, String>,
    hmac: Result<ObjectHandle, String>,
    gcm: Result<ObjectHandle, String>,
    cmac: Result<ObjectHandle, String>,
}

fn keep<T>(module: &str, what: &str, r: Result<T>) -> Result<T, String> {
    r.map_err(|e| {
        eprintln!("[{module}] creating {what}: FAILED: {}", long_err(&e));
        format!("error: {}", short_err(&e))
    })
}

fn aes_session_key(s: &Session, usage: &[Attribute]) -> Result<ObjectHandle> {
    let mut t = vec![
        Attribute::Token(false),
        Attribute::ValueLen(32.into()),
        Attribute::Label(b"bench-aes".to_vec()),
    ];
    t.extend_from_slice(usage);
    Ok(s.generate_key(&Mechanism::AesKeyGen, &t)?)
}

fn make_keys(module: &str, s: &Session) -> Keys {
    let ec = keep(
        module,
        "EC P-256 session key pair",
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
            ],
        )
        .map_err(Into::into),
    );
    let rsa = keep(
        module,
        "RSA-2048 session key pair",
        s.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
                Attribute::Encrypt(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
                Attribute::Decrypt(true),
            ],
        )
        .map_err(Into::into),
    );
    let kek = keep(
        module,
        "AES KEK",
        aes_session_key(s, &[Attribute::Wrap(true), Attribute::Unwrap(true)]),
    );
    let target = keep(
        module,
        "AES key to wrap",
        aes_session_key(s, &[Attribute::Extractable(true), Attribute::Encrypt(true)]),
    );
    let hmac = keep(
        module,
        "HMAC key",
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Value(vec![0x5a; 32]),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ])
        .map_err(Into::into),
    );
    let gcm = keep(
        module,
        "AES-GCM key",
        aes_session_key(s, &[Attribute::Encrypt(true), Attribute::Decrypt(true)]),
    );
    let cmac = keep(
        module,
        "AES-CMAC key",
        aes_session_key(s, &[Attribute::Sign(true), Attribute::Verify(true)]),
    );
    Keys {
        ec,
        rsa,
        kek,
        target,
        hmac,
        gcm,
        cmac,
    }
}

fn need<T: Copy>(k: &Result<T, String>) -> Result<T> {
    k.clone().map_err(|e| anyhow!("key setup failed ({e})"))
}

// ----- the operations, as closures usable from any session -----

const HASH32: [u8; 32] = [0x42; 32];

fn pss() -> Mechanism<'static> {
    Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    })
}

fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

fn gcm_encrypt(s: &Session, key: ObjectHandle, counter: u64, data: &[u8]) -> Result<()> {
    let mut iv = [0u8; 12];
    iv[4..].copy_from_slice(&counter.to_be_bytes());
    let params = GcmParams::new(&mut iv, &[], 128.into())?;
    let out = s.encrypt(&Mechanism::AesGcm(params), key, data)?;
    if out.len() != data.len() + 16 {
        bail!(
            "GCM output is {} bytes, expected {}",
            out.len(),
            data.len() + 16
        );
    }
    Ok(())
}

/// A thread-scalable operation: run once on the given session.
/// One operation runnable from any session (the u64 makes IVs unique).
type SessionOp = Box<dyn Fn(&Session, u64) -> Result<()> + Sync>;

fn thread_op(id: &str, keys: &Keys) -> Result<SessionOp> {
    let big = vec![0xa5u8; 1 << 20];
    let kib = vec![0x3cu8; 1024];
    Ok(match id {
        "ecdsa_sign" => {
            let (_, k) = need(&keys.ec)?;
            Box::new(move |s, _| {
                s.sign(&Mechanism::Ecdsa, k, &HASH32)?;
                Ok(())
            })
        }
        "hmac_1k" => {
            let k = need(&keys.hmac)?;
            Box::new(move |s, _| {
                s.sign(&Mechanism::Sha256Hmac, k, &kib)?;
                Ok(())
            })
        }
        "gcm_1m" => {
            let k = need(&keys.gcm)?;
            Box::new(move |s, i| gcm_encrypt(s, k, i, &big))
        }
        "aes_wrap" => {
            let kek = need(&keys.kek)?;
            let t = need(&keys.target)?;
            Box::new(move |s, _| {
                let w = s.wrap_key(&Mechanism::AesKeyWrap, kek, t)?;
                if w.len() != 40 {
                    bail!("wrapped key is {} bytes, expected 40", w.len());
                }
                Ok(())
            })
        }
        other => bail!("unknown thread op {other}"),
    })
}

/// Runs `op` on `n` threads, each with its own session, for `cfg.secs`; total ops/s.
fn threaded(
    ctx: &Pkcs11,
    slot: Slot,
    cfg: &Cfg,
    n: usize,
    op: &(dyn Fn(&Session, u64) -> Result<()> + Sync),
) -> Result<f64> {
    let barrier = Barrier::new(n);
    let results: Vec<Result<(u64, f64)>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let barrier = &barrier;
                sc.spawn(move || -> Result<(u64, f64)> {
                    let base = (t as u64) << 40;
                    // Open the session and warm up before the barrier; always reach it.
                    let ready = ctx
                        .open_rw_session(slot)
                        .map_err(anyhow::Error::from)
                        .and_then(|s| op(&s, base).map(|()| s));
                    barrier.wait();
                    let s = ready?;
                    let start = Instant::now();
                    let mut c: u64 = 0;
                    loop {
                        c += 1;
                        op(&s, base + c)?;
                        let el = start.elapsed().as_secs_f64();
                        if el >= cfg.secs && c >= cfg.min_iters {
                            return Ok((c, el));
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("thread panicked"))))
            .collect()
    });
    let mut total = 0.0;
    for r in results {
        let (c, el) = r?;
        total += c as f64 / el;
    }
    Ok(total)
}

// ----- the whole run of one module -----

pub fn run_child(module_name: &str, module: &Path, cfg: &Cfg, threads: usize) -> ChildReport {
    let mut rep = ChildReport {
        module: module_name.to_string(),
        ..Default::default()
    };
    if let Err(e) = run_child_inner(module_name, module, cfg, threads, &mut rep) {
        eprintln!("[{module_name}] FATAL: {}", long_err(&e));
        rep.fatal = Some(format!("error: {}", short_err(&e)));
    }
    rep
}

fn run_child_inner(
    m: &str,
    module: &Path,
    cfg: &Cfg,
    threads: usize,
    rep: &mut ChildReport,
) -> Result<()> {
    let ctx = load(module)?;
    if let Ok(info) = ctx.get_library_info() {
        rep.library = Some(format!(
            "{} / {} {}",
            info.manufacturer_id().trim(),
            info.library_description().trim(),
            info.library_version()
        ));
    }
    let slot = setup_token(&ctx)?;

    // Login cycle first: it needs no other session open (login state is per application).
    let r = timed(cfg, |_| {
        let s = ctx.open_rw_session(slot)?;
        s.login(UserType::User, Some(&pin(USER_PIN)))?;
        s.logout()?;
        s.close()?;
        Ok(())
    });
    rep.rows
        .push(("login_cycle".into(), record(m, "login_cycle", r)));

    let s = user_session(&ctx, slot)?;
    let keys = make_keys(m, &s);
    // Strongroom's child also measures the bare crate, each figure right after its row.
    let bare = (m == "strongroom").then(crate::bare::Bare::new);
    let push = |rep: &mut ChildReport, id: &str, r: Result<f64>| {
        rep.rows.push((id.to_string(), record(m, id, r)));
        if let Some(b) = bare.as_ref().and_then(|b| b.measure(id, cfg)) {
            rep.bare.push((id.to_string(), record("bare", id, b)));
        }
    };

    // ECDSA
    let r = need(&keys.ec).and_then(|(_, k)| {
        timed(cfg, |_| {
            s.sign(&Mechanism::Ecdsa, k, &HASH32)?;
            Ok(())
        })
    });
    push(rep, "ecdsa_sign", r);
    let r = need(&keys.ec).and_then(|(p, k)| {
        let sig = s.sign(&Mechanism::Ecdsa, k, &HASH32)?;
        timed(cfg, |_| {
            Ok(s.verify(&Mechanism::Ecdsa, p, &HASH32, &sig)?)
        })
    });
    push(rep, "ecdsa_verify", r);

    // RSA
    let msg = b"strongroom-bench message to sign";
    let r = need(&keys.rsa).and_then(|(_, k)| {
        timed(cfg, |_| {
            s.sign(&Mechanism::Sha256RsaPkcs, k, msg)?;
            Ok(())
        })
    });
    push(rep, "rsa_sign_pkcs1", r);
    let r = need(&keys.rsa).and_then(|(_, k)| {
        timed(cfg, |_| {
            s.sign(&pss(), k, msg)?;
            Ok(())
        })
    });
    push(rep, "rsa_sign_pss", r);
    let r = need(&keys.rsa).and_then(|(p, k)| {
        let sig = s.sign(&Mechanism::Sha256RsaPkcs, k, msg)?;
        timed(cfg, |_| {
            Ok(s.verify(&Mechanism::Sha256RsaPkcs, p, msg, &sig)?)
        })
    });
    push(rep, "rsa_verify_pkcs1", r);
    let r = need(&keys.rsa).and_then(|(p, k)| {
        let ct = s.encrypt(&oaep(), p, &HASH32)?;
        timed(cfg, |_| {
            let pt = s.decrypt(&oaep(), k, &ct)?;
            if pt != HASH32 {
                bail!("OAEP round trip returned different plaintext");
            }
            Ok(())
        })
    });
    push(rep, "rsa_decrypt_oaep", r);

    // AES key wrap
    let r = thread_op("aes_wrap", &keys).and_then(|op| timed(cfg, |i| op(&s, i)));
    push(rep, "aes_wrap", r);
    let r = need(&keys.kek).and_then(|kek| {
        let t = need(&keys.target)?;
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, t)?;
        let tmpl = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Encrypt(true),
        ];
        timed_excl(cfg, |_| {
            let h = s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &tmpl)?;
            let t0 = Instant::now();
            s.destroy_object(h)?;
            Ok(t0.elapsed())
        })
    });
    push(rep, "aes_unwrap", r);

    // MACs and GCM
    let r = thread_op("hmac_1k", &keys).and_then(|op| timed(cfg, |i| op(&s, i)));
    push(rep, "hmac_1k", r);
    let r = need(&keys.hmac).and_then(|k| {
        let data = vec![0x77u8; 64 * 1024];
        timed(cfg, |_| {
            s.sign(&Mechanism::Sha256Hmac, k, &data)?;
            Ok(())
        })
    });
    push(rep, "hmac_64k", r);
    let r = thread_op("gcm_1m", &keys).and_then(|op| timed(cfg, |i| op(&s, i)));
    push(rep, "gcm_1m", r);
    let r = need(&keys.cmac).and_then(|k| {
        let data = vec![0x11u8; 1024];
        timed(cfg, |_| {
            s.sign(&Mechanism::AesCMac, k, &data)?;
            Ok(())
        })
    });
    push(rep, "cmac_1k", r);

    // Persisted key generation and object creation.
    let r = timed(cfg, |i| {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(format!("bench-tokkey-aes-{i}").into_bytes()),
            ],
        )?;
        Ok(())
    });
    push(rep, "keygen_aes", r);
    let r = timed(cfg, |i| {
        let label = format!("bench-tokkey-ec-{i}").into_bytes();
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Verify(true),
                Attribute::Label(label.clone()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
                Attribute::Label(label),
            ],
        )?;
        Ok(())
    });
    push(rep, "keygen_ec", r);
    let r = timed(cfg, |i| {
        s.create_object(&data_object(&format!("bench-create-{i}")))?;
        Ok(())
    });
    push(rep, "create_data", r);

    // Threads.
    let mut counts = vec![1usize];
    let mut t = 2;
    while t < threads {
        counts.push(t);
        t *= 2;
    }
    if threads > 1 {
        counts.push(threads);
    }
    for op in THREAD_OPS {
        for &n in &counts {
            let r = thread_op(op.id, &keys).and_then(|f| threaded(&ctx, slot, cfg, n, &*f));
            let m_ = record(m, &format!("{} x{n} threads", op.id), r);
            rep.threads.push(ThreadPoint {
                op: op.id.to_string(),
                threads: n,
                m: m_,
            });
        }
    }

    // Find scaling (last: it fills the store).
    find_scaling(m, &s, cfg, rep);
    Ok(())
}

fn data_object(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Application(b"strongroom-bench".to_vec()),
        Attribute::Value(vec![0xd5; 32]),
    ]
}

fn find_label(i: usize) -> String {
    format!("bench-find-{i:06}")
}

fn find_scaling(m: &str, s: &Session, cfg: &Cfg, rep: &mut ChildReport) {
    let softhsm = m == "softhsm";
    // SoftHSM: nothing above 10,000 objects; stop creating after this long at one size.
    let create_limit = if softhsm { 120.0 } else { 1200.0 };
    let mut created = 0usize;
    let mut too_slow: Option<String> = None;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Start from a token without the keys and data objects earlier rows persisted, so the
    // store holds the stated number of objects (plus this session's few session keys).
    let t0 = Instant::now();
    match s.find_objects(&[Attribute::Token(true)]) {
        Ok(handles) => {
            let n = handles.len();
            for h in handles {
                if let Err(e) = s.destroy_object(h) {
                    eprintln!(
                        "[{m}] removing earlier token objects: FAILED: {}",
                        long_err(&e.into())
                    );
                    break;
                }
            }
            eprintln!(
                "[{m}] removed {n} token objects left by earlier rows ({:.1} s)",
                t0.elapsed().as_secs_f64()
            );
        }
        Err(e) => eprintln!(
            "[{m}] listing earlier token objects: FAILED: {}",
            long_err(&e.into())
        ),
    }
    for size in cfg.find_sizes() {
        if too_slow.is_none() && softhsm && size > 10_000 {
            too_slow = Some("not measured (too slow)".into());
        }
        if let Some(why) = &too_slow {
            eprintln!("[{m}] find @ {size}: {why}");
            rep.find.push(FindPoint {
                size,
                create_secs: None,
                found_all: None,
                find_one: Measure::skipped(why.clone()),
                find_all: Measure::skipped(why.clone()),
            });
            continue;
        }
        // Create up to `size` find objects.
        let start = Instant::now();
        let mut failed: Option<anyhow::Error> = None;
        while created < size {
            if let Err(e) = s.create_object(&data_object(&find_label(created))) {
                failed = Some(e.into());
                break;
            }
            created += 1;
            if created % 1000 == 0 {
                let el = start.elapsed().as_secs_f64();
                eprintln!("[{m}]   created {created} objects ({el:.1} s at this size)");
                if el > create_limit && created < size {
                    break;
                }
            }
        }
        let create_secs = start.elapsed().as_secs_f64();
        if let Some(e) = failed {
            eprintln!("[{m}] creating find objects: FAILED: {}", long_err(&e));
            let msg = format!("error: {}", short_err(&e));
            rep.find.push(FindPoint {
                size,
                create_secs: Some(create_secs),
                found_all: None,
                find_one: Measure::err(msg.clone()),
                find_all: Measure::err(msg.clone()),
            });
            too_slow = Some(msg);
            continue;
        }
        if created < size {
            let why = format!("not measured (too slow: {created} objects in {create_secs:.0} s)");
            eprintln!("[{m}] find @ {size}: {why}");
            rep.find.push(FindPoint {
                size,
                create_secs: Some(create_secs),
                found_all: None,
                find_one: Measure::skipped("not measured (too slow)"),
                find_all: Measure::skipped("not measured (too slow)"),
            });
            too_slow = Some("not measured (too slow)".into());
            continue;
        }
        eprintln!("[{m}] store at {size} find objects (created in {create_secs:.1} s)");
        let one = timed(cfg, |_| {
            let label = find_label(rng.next_below(size));
            let found = s.find_objects(&[Attribute::Label(label.clone().into_bytes())])?;
            if found.len() != 1 {
                bail!("find {label} returned {} objects", found.len());
            }
            Ok(())
        });
        let one = record(m, &format!("find_one @ {size}"), one);
        let mut found_all = None;
        let all = timed(cfg, |_| {
            let n = s
                .iter_objects_with_cache_size(&[], NonZeroUsize::new(1024).unwrap())?
                .count();
            found_all = Some(n);
            if n < size {
                bail!("find-all returned {n} objects, expected at least {size}");
            }
            Ok(())
        });
        let all = record(m, &format!("find_all @ {size}"), all);
        if softhsm && create_secs > 120.0 {
            too_slow = Some("not measured (too slow)".into());
        }
        rep.find.push(FindPoint {
            size,
            create_secs: Some(create_secs),
            found_all,
            find_one: one,
            find_all: all,
        });
    }
}

// ----- multi-process workers -----

/// Creates a fresh token in the store (for the multi-process phase).
pub fn run_setup(module: &Path) -> Result<()> {
    let ctx = load(module)?;
    setup_token(&ctx)?;
    Ok(())
}

/// Logs in, prints "ready", waits for a line on stdin, then generates persisted AES keys
/// for `secs` seconds and returns the count.
pub fn run_worker(module: &Path, secs: f64, worker: usize) -> WorkerReport {
    let mut rep = WorkerReport::default();
    let mut ready_sent = false;
    let res = (|| -> Result<()> {
        let ctx = load(module)?;
        let slot = find_slot(&ctx, TOKEN_LABEL)?;
        let s = user_session(&ctx, slot)?;
        println!("ready");
        ready_sent = true;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let start = Instant::now();
        let mut i = 0u64;
        while start.elapsed() < Duration::from_secs_f64(secs) {
            i += 1;
            let r = s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Label(format!("bench-mp-{worker}-{i}").into_bytes()),
                ],
            );
            match r {
                Ok(_) => rep.count += 1,
                Err(e) => {
                    rep.errors += 1;
                    if rep.first_error.is_none() {
                        let e = anyhow::Error::from(e);
                        eprintln!("[worker {worker}] C_GenerateKey failed: {}", long_err(&e));
                        rep.first_error = Some(short_err(&e));
                    }
                }
            }
        }
        rep.secs = start.elapsed().as_secs_f64();
        Ok(())
    })();
    if let Err(e) = res {
        eprintln!("[worker {worker}] FAILED: {}", long_err(&e));
        // Still say "ready" so the parent is not left waiting.
        if !ready_sent {
            println!("ready");
        }
        rep.first_error = Some(short_err(&e));
        rep.errors += 1;
    }
    rep
}
