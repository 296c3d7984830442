//! One operation in a loop through the built module, for a profiler:
//!
//! ```sh
//! cargo build --release --workspace --examples
//! perf record -g target/release/examples/hot hmac_1k 5
//! ```
//!
//! Operations: `hmac_1k`, `cmac_1k`, `wrap`, `unwrap`, `gcm_1m`, `ecdsa_sign`, and
//! `bare_hmac_1k`, `bare_cmac_1k`, `bare_wrap` (the provider called directly, no PKCS#11). The
//! second argument is seconds, or an operation count with an `x` suffix (`20000x`): with a count,
//! `valgrind --tool=callgrind` gives repeatable instruction counts to compare per operation, on a
//! machine too loaded for timings. The module is `libstrongroom_pkcs11.so` next to the example's
//! directory, or `STRONGROOM_MODULE`; the store is a fresh temporary directory. Prints operations
//! per second (not a benchmark: use `strongroom-bench` for figures).

use anyhow::{bail, Context as _, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::time::Instant;

const P256_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

fn aes_key(s: &Session, usage: &[Attribute]) -> Result<ObjectHandle> {
    let mut t = vec![Attribute::Token(false), Attribute::ValueLen(32.into())];
    t.extend_from_slice(usage);
    Ok(s.generate_key(&Mechanism::AesKeyGen, &t)?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("hmac_1k");
    let limit = args.get(2).map(String::as_str).unwrap_or("3");
    let (secs, count): (f64, u64) = match limit.strip_suffix('x') {
        Some(n) => (f64::INFINITY, n.parse()?),
        None => (limit.parse()?, u64::MAX),
    };
    if let Some(bare) = op.strip_prefix("bare_") {
        return run_bare(bare, secs, count);
    }
    let module = match std::env::var_os("STRONGROOM_MODULE") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?
            .parent()
            .and_then(|d| d.parent())
            .context("example directory")?
            .join("libstrongroom_pkcs11.so"),
    };
    let store = tempfile::tempdir()?;
    std::env::set_var("STRONGROOM_STORE", store.path().join("store"));
    std::env::set_var("STRONGROOM_KDF_MEMORY_KIB", "64");
    std::env::set_var("STRONGROOM_KDF_ITERATIONS", "1");
    let ctx = Pkcs11::new(&module).with_context(|| module.display().to_string())?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = ctx.get_slots_with_token()?[0];
    let so = AuthPin::from("hot-so-pin".to_string());
    let user = AuthPin::from("hot-user-pin".to_string());
    ctx.init_token(slot, &so, "hot")?;
    let s = ctx.open_rw_session(slot)?;
    s.login(UserType::So, Some(&so))?;
    s.init_pin(&user)?;
    s.logout()?;
    s.login(UserType::User, Some(&user))?;

    let kib = vec![0x3cu8; 1024];
    let big = vec![0xa5u8; 1 << 20];
    let mut step: Box<dyn FnMut(u64) -> Result<()>> = match op {
        "hmac_1k" => {
            let k = s.create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(false),
                Attribute::Value(vec![0x5a; 32]),
                Attribute::Sign(true),
            ])?;
            Box::new(move |_| {
                s.sign(&Mechanism::Sha256Hmac, k, &kib)?;
                Ok(())
            })
        }
        "cmac_1k" => {
            let k = aes_key(&s, &[Attribute::Sign(true)])?;
            Box::new(move |_| {
                s.sign(&Mechanism::AesCMac, k, &kib)?;
                Ok(())
            })
        }
        "wrap" | "unwrap" => {
            let kek = aes_key(&s, &[Attribute::Wrap(true), Attribute::Unwrap(true)])?;
            let t = aes_key(&s, &[Attribute::Extractable(true)])?;
            let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, t)?;
            if op == "wrap" {
                Box::new(move |_| {
                    s.wrap_key(&Mechanism::AesKeyWrap, kek, t)?;
                    Ok(())
                })
            } else {
                let tmpl = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                ];
                Box::new(move |_| {
                    let h = s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &tmpl)?;
                    s.destroy_object(h)?;
                    Ok(())
                })
            }
        }
        "gcm_1m" => {
            let k = aes_key(&s, &[Attribute::Encrypt(true)])?;
            Box::new(move |i| {
                let mut iv = [0u8; 12];
                iv[4..].copy_from_slice(&i.to_be_bytes());
                let params = GcmParams::new(&mut iv, &[], 128.into())?;
                s.encrypt(&Mechanism::AesGcm(params), k, &big)?;
                Ok(())
            })
        }
        "ecdsa_sign" => {
            let (_, k) = s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::EcParams(P256_OID.to_vec()),
                ],
                &[Attribute::Token(false), Attribute::Sign(true)],
            )?;
            Box::new(move |_| {
                s.sign(&Mechanism::Ecdsa, k, &[0x42; 32])?;
                Ok(())
            })
        }
        other => bail!("unknown operation {other}"),
    };
    run_loop(op, secs, count, &mut step)
}

fn run_loop(
    op: &str,
    secs: f64,
    count: u64,
    step: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<()> {
    let start = Instant::now();
    let mut n: u64 = 0;
    while n < count && start.elapsed().as_secs_f64() < secs {
        n += 1;
        step(n)?;
    }
    println!(
        "{op}: {n} operations, {:.0} ops/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The same work through the crypto provider, as strongroom-bench's bare figures.
fn run_bare(op: &str, secs: f64, count: u64) -> Result<()> {
    use strongroom_pkcs11::crypto::{provider, HashAlg};
    let p = provider();
    let e = |e: strongroom_pkcs11::crypto::CryptoError| anyhow::anyhow!("{e}");
    let kib = vec![0x3cu8; 1024];
    let key = [0x5au8; 32];
    let mut step: Box<dyn FnMut(u64) -> Result<()>> = match op {
        "hmac_1k" => Box::new(|_| {
            let mut m = p.hmac(HashAlg::Sha256, &key).map_err(e)?;
            m.update(&kib);
            m.finalize();
            Ok(())
        }),
        "cmac_1k" => Box::new(|_| {
            let mut m = p.cmac_aes(&key).map_err(e)?;
            m.update(&kib);
            m.finalize();
            Ok(())
        }),
        "wrap" => Box::new(|_| {
            p.aes_kw_wrap(&key, &[0x37; 32]).map_err(e)?;
            Ok(())
        }),
        other => bail!("unknown bare operation {other}"),
    };
    run_loop(op, secs, count, &mut step)
}
