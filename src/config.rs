//! Configuration: a TOML file named by `STRONGROOM_CONF`, then environment
//! overrides. With neither, the store lives in `$XDG_DATA_HOME/strongroom`
//! (or `~/.local/share/strongroom`).
//!
//! ```toml
//! [store]
//! path = "/var/lib/strongroom"   # STRONGROOM_STORE overrides
//! [pin]
//! max_failures = 10              # failed logins that lock a PIN
//! kdf_memory_kib = 65536         # Argon2id memory (STRONGROOM_KDF_MEMORY_KIB)
//! kdf_iterations = 2             # Argon2id passes (STRONGROOM_KDF_ITERATIONS)
//! kdf_parallelism = 1
//! [log]
//! level = "warn"                 # STRONGROOM_LOG overrides (tracing filter syntax)
//! file = "/var/log/strongroom.log"
//! ```

use crate::error::{Error, Result};
use crate::store::seal::KdfParams;
use crate::store::StoreConfig;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    pin: PinSection,
    #[serde(default)]
    log: LogSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinSection {
    max_failures: Option<u32>,
    crypto_user_max_failures: Option<u32>,
    kdf_memory_kib: Option<u32>,
    kdf_iterations: Option<u32>,
    kdf_parallelism: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    level: Option<String>,
    file: Option<PathBuf>,
}

/// The effective configuration of this process.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub log_level: String,
    pub log_file: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_u32(name: &str) -> Result<Option<u32>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Error::general(format!("{name}={v:?} is not a whole number"))),
    }
}

/// Where the store lives when nothing says otherwise.
pub fn default_store_dir() -> Result<PathBuf> {
    if let Some(x) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(x).join("strongroom"));
    }
    match env("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/strongroom")),
        None => Err(Error::general(
            "no store location: set STRONGROOM_STORE, STRONGROOM_CONF, XDG_DATA_HOME or HOME",
        )),
    }
}

impl Config {
    /// Reads the configuration; a bad file or value is an error with a
    /// message saying what to fix.
    pub fn load() -> Result<Config> {
        let file: FileConfig = match env("STRONGROOM_CONF") {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Error::general(format!("STRONGROOM_CONF={path}: {e}")))?;
                toml::from_str(&text)
                    .map_err(|e| Error::general(format!("STRONGROOM_CONF={path}: {e}")))?
            }
        };
        let dir = match env("STRONGROOM_STORE") {
            Some(d) => PathBuf::from(d),
            None => match file.store.path {
                Some(p) => p,
                None => default_store_dir()?,
            },
        };
        let defaults = KdfParams::default();
        let kdf = KdfParams {
            memory_kib: env_u32("STRONGROOM_KDF_MEMORY_KIB")?
                .or(file.pin.kdf_memory_kib)
                .unwrap_or(defaults.memory_kib),
            iterations: env_u32("STRONGROOM_KDF_ITERATIONS")?
                .or(file.pin.kdf_iterations)
                .unwrap_or(defaults.iterations),
            parallelism: file.pin.kdf_parallelism.unwrap_or(defaults.parallelism),
        };
        if argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32)).is_err() {
            return Err(Error::general(format!("invalid Argon2id cost {kdf:?}")));
        }
        let max_failures = env_u32("STRONGROOM_MAX_PIN_FAILURES")?
            .or(file.pin.max_failures)
            .unwrap_or(10);
        if max_failures == 0 {
            return Err(Error::general("pin.max_failures must be at least 1"));
        }
        let crypto_user_max_failures = file.pin.crypto_user_max_failures.unwrap_or(5).max(1);
        Ok(Config {
            store: StoreConfig {
                dir,
                kdf,
                max_failures,
                crypto_user_max_failures,
            },
            log_level: env("STRONGROOM_LOG")
                .or(file.log.level)
                .unwrap_or_else(|| "warn".into()),
            log_file: file.log.file,
        })
    }
}
