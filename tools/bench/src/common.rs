//! Shared types: the operations measured, results, timing loops, error naming.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One row of the main table.
pub struct OpDef {
    /// Stable id used in the child's JSON.
    pub id: &'static str,
    /// What the row shows.
    pub label: &'static str,
}

/// Every per-operation row measured by each module, in table order. Find rows are added per
/// object count by the find-scaling phase (`find_one_<n>` / `find_all_<n>`).
pub const OPS: &[OpDef] = &[
    OpDef {
        id: "ecdsa_sign",
        label: "ECDSA P-256 sign (CKM_ECDSA, 32-byte hash)",
    },
    OpDef {
        id: "ecdsa_verify",
        label: "ECDSA P-256 verify (CKM_ECDSA)",
    },
    OpDef {
        id: "rsa_sign_pkcs1",
        label: "RSA-2048 sign PKCS#1 v1.5 (CKM_SHA256_RSA_PKCS)",
    },
    OpDef {
        id: "rsa_sign_pss",
        label: "RSA-2048 sign PSS (CKM_SHA256_RSA_PKCS_PSS, salt 32)",
    },
    OpDef {
        id: "rsa_verify_pkcs1",
        label: "RSA-2048 verify PKCS#1 v1.5 (CKM_SHA256_RSA_PKCS)",
    },
    OpDef {
        id: "rsa_decrypt_oaep",
        label: "RSA-2048 decrypt OAEP-SHA256",
    },
    OpDef {
        id: "aes_wrap",
        label: "AES-256 key wrap of a 32-byte key (CKM_AES_KEY_WRAP)",
    },
    OpDef {
        id: "aes_unwrap",
        label: "AES-256 key unwrap of a 32-byte key (CKM_AES_KEY_WRAP)",
    },
    OpDef {
        id: "hmac_1k",
        label: "HMAC-SHA256, 1 KiB (C_SignInit+C_Sign)",
    },
    OpDef {
        id: "hmac_64k",
        label: "HMAC-SHA256, 64 KiB (C_SignInit+C_Sign)",
    },
    OpDef {
        id: "gcm_1m",
        label: "AES-256-GCM encrypt, 1 MiB",
    },
    OpDef {
        id: "cmac_1k",
        label: "AES-256 CMAC, 1 KiB",
    },
    OpDef {
        id: "keygen_aes",
        label: "AES-256 token key generation (CKA_TOKEN=TRUE)",
    },
    OpDef {
        id: "keygen_ec",
        label: "EC P-256 token key pair generation (CKA_TOKEN=TRUE)",
    },
    OpDef {
        id: "create_data",
        label: "C_CreateObject, token data object",
    },
    OpDef {
        id: "login_cycle",
        label: "C_OpenSession + C_Login + C_Logout + C_CloseSession",
    },
];

/// Operations measured with 1 and N threads.
pub const THREAD_OPS: &[OpDef] = &[
    OpDef {
        id: "ecdsa_sign",
        label: "ECDSA P-256 sign",
    },
    OpDef {
        id: "hmac_1k",
        label: "HMAC-SHA256 1 KiB",
    },
    OpDef {
        id: "gcm_1m",
        label: "AES-256-GCM 1 MiB",
    },
    OpDef {
        id: "aes_wrap",
        label: "AES-256 key wrap",
    },
];

/// Result of one measurement: a rate, an error, or a reason it was not measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measure {
    pub ops_per_s: Option<f64>,
    pub error: Option<String>,
    pub skipped: Option<String>,
}

impl Measure {
    pub fn ok(v: f64) -> Measure {
        Measure {
            ops_per_s: Some(v),
            ..Default::default()
        }
    }
    pub fn err(e: impl Into<String>) -> Measure {
        Measure {
            error: Some(e.into()),
            ..Default::default()
        }
    }
    pub fn skipped(why: impl Into<String>) -> Measure {
        Measure {
            skipped: Some(why.into()),
            ..Default::default()
        }
    }
}

/// One thread-scaling measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadPoint {
    pub op: String,
    pub threads: usize,
    pub m: Measure,
}

/// One object count of the find-scaling phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindPoint {
    pub size: usize,
    /// Seconds spent creating the objects that brought the store to `size`.
    pub create_secs: Option<f64>,
    /// Objects the find-all returned.
    pub found_all: Option<usize>,
    pub find_one: Measure,
    pub find_all: Measure,
}

/// What a measuring child prints (as one JSON line) for its module.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    pub module: String,
    pub library: Option<String>,
    pub fatal: Option<String>,
    pub rows: Vec<(String, Measure)>,
    /// Bare-crate figures measured in the same child right after each row (Strongroom only).
    #[serde(default)]
    pub bare: Vec<(String, Measure)>,
    pub threads: Vec<ThreadPoint>,
    pub find: Vec<FindPoint>,
}

/// What a multi-process worker prints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    pub count: u64,
    pub secs: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Timing parameters.
#[derive(Debug, Clone, Copy)]
pub struct Cfg {
    /// Minimum seconds per measured operation.
    pub secs: f64,
    /// Minimum iterations per measured operation.
    pub min_iters: u64,
    pub quick: bool,
}

impl Cfg {
    pub fn new(quick: bool) -> Cfg {
        if quick {
            Cfg {
                secs: 0.2,
                min_iters: 2,
                quick,
            }
        } else {
            Cfg {
                secs: 1.5,
                min_iters: 5,
                quick,
            }
        }
    }
    /// Object counts of the find-scaling phase.
    pub fn find_sizes(&self) -> Vec<usize> {
        if self.quick {
            vec![100, 1_000]
        } else {
            vec![1_000, 10_000, 100_000]
        }
    }
    /// Seconds each multi-process worker generates keys.
    pub fn mp_secs(&self) -> f64 {
        if self.quick {
            0.3
        } else {
            3.0
        }
    }
}

/// Runs `f` once as a warm-up, then repeatedly until both `cfg.secs` and `cfg.min_iters`
/// are reached; returns operations per second. `f` gets the iteration number and returns
/// time spent in it that must not be counted (e.g. cleanup).
pub fn timed_excl(
    cfg: &Cfg,
    mut f: impl FnMut(u64) -> anyhow::Result<Duration>,
) -> anyhow::Result<f64> {
    f(0)?;
    let start = Instant::now();
    let mut excluded = Duration::ZERO;
    let mut n: u64 = 0;
    loop {
        n += 1;
        excluded += f(n)?;
        let el = start.elapsed();
        if el.as_secs_f64() >= cfg.secs && n >= cfg.min_iters {
            let counted = el.saturating_sub(excluded).as_secs_f64().max(1e-9);
            return Ok(n as f64 / counted);
        }
    }
}

/// [`timed_excl`] without excluded time.
pub fn timed(cfg: &Cfg, mut f: impl FnMut(u64) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    timed_excl(cfg, |i| f(i).map(|()| Duration::ZERO))
}

/// `KeyHandleInvalid` -> `CKR_KEY_HANDLE_INVALID`.
fn ckr_name(debug_name: &str) -> String {
    let mut out = String::from("CKR_");
    for (i, c) in debug_name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Short table text for an error: `CKR_...` for PKCS#11 failures, else the message.
pub fn short_err(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(cryptoki::error::Error::Pkcs11(rv, _)) =
            cause.downcast_ref::<cryptoki::error::Error>()
        {
            return ckr_name(&format!("{rv:?}"));
        }
    }
    let s = e.to_string();
    let first = s.lines().next().unwrap_or("").to_string();
    if first.len() > 60 {
        format!(
            "{}...",
            &first[..first.char_indices().nth(57).map(|x| x.0).unwrap_or(57)]
        )
    } else {
        first
    }
}

/// Full one-line description of an error for the log (includes the failing C_ function).
pub fn long_err(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        if let Some(cryptoki::error::Error::Pkcs11(rv, func)) =
            cause.downcast_ref::<cryptoki::error::Error>()
        {
            parts.push(format!("{} in C_{func:?}", ckr_name(&format!("{rv:?}"))));
        } else {
            parts.push(cause.to_string());
        }
    }
    parts.join(": ")
}

/// Turns a measurement result into a [`Measure`], logging failures to stderr.
pub fn record(module: &str, op: &str, r: anyhow::Result<f64>) -> Measure {
    match r {
        Ok(v) => {
            eprintln!("[{module}] {op}: {}", crate::report::fmt_num(v));
            Measure::ok(v)
        }
        Err(e) => {
            eprintln!("[{module}] {op}: FAILED: {}", long_err(&e));
            Measure::err(format!("error: {}", short_err(&e)))
        }
    }
}

/// A small deterministic pseudo-random sequence (xorshift), for picking labels to find.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n.max(1) as u64) as usize
    }
}
