//! Configuration: a TOML file (`--config`), overridden by command-line flags.
//! The user PIN comes from `pin_file` (or `--pin-file`) or the environment
//! variable `STRONGROOM_KEYD_PIN`; it is never logged.

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8200";
pub const DEFAULT_MOUNT: &str = "secret";
pub const PIN_ENV: &str = "STRONGROOM_KEYD_PIN";

/// The TOML file. Every key is optional here; what is required is checked
/// after the flags are applied.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Path of the PKCS#11 module.
    pub module: Option<PathBuf>,
    /// Label of the token holding the master keys.
    pub token_label: Option<String>,
    /// File holding the user PIN (first line).
    pub pin_file: Option<PathBuf>,
    /// `host:port` (loopback only) or `unix:/path/to/socket`.
    pub listen: Option<String>,
    /// The service's SQLite database.
    pub database: Option<PathBuf>,
    /// Vault mount name MariaDB is pointed at (`.../v1/<mount>`).
    pub mount: Option<String>,
    /// Seconds an unwrapped data key may stay cached in memory (0 = none).
    pub cache_seconds: Option<u64>,
    /// HTTP worker threads.
    pub threads: Option<usize>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub module: PathBuf,
    pub token_label: String,
    pub pin_file: Option<PathBuf>,
    pub listen: String,
    pub database: PathBuf,
    pub mount: String,
    pub cache_seconds: u64,
    pub threads: usize,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Applies `over` (flags) on top of self (file) and fills defaults.
    pub fn resolve(self, over: FileConfig, default_module: Option<PathBuf>) -> Result<Config> {
        let module = over.module.or(self.module).or(default_module);
        let Some(module) = module else {
            bail!("no PKCS#11 module: set `module` in the config file or pass --module");
        };
        let Some(token_label) = over.token_label.or(self.token_label) else {
            bail!("no token label: set `token_label` in the config file or pass --token-label");
        };
        let Some(database) = over.database.or(self.database) else {
            bail!("no database path: set `database` in the config file or pass --database");
        };
        let mount = over
            .mount
            .or(self.mount)
            .unwrap_or_else(|| DEFAULT_MOUNT.into());
        if mount.is_empty()
            || !mount
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("mount {mount:?}: letters, digits, '-' and '_' only");
        }
        Ok(Config {
            module,
            token_label,
            pin_file: over.pin_file.or(self.pin_file),
            listen: over
                .listen
                .or(self.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database,
            mount,
            cache_seconds: over.cache_seconds.or(self.cache_seconds).unwrap_or(0),
            threads: over.threads.or(self.threads).unwrap_or(4),
        })
    }
}

impl Config {
    /// The user PIN: `pin_file` when set, else `STRONGROOM_KEYD_PIN`.
    pub fn pin(&self) -> Result<Zeroizing<String>> {
        if let Some(f) = &self.pin_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading the PIN file {}", f.display()))?,
            );
            let pin = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
            if pin.is_empty() {
                bail!("the PIN file {} is empty", f.display());
            }
            return Ok(pin);
        }
        match std::env::var(PIN_ENV) {
            Ok(p) if !p.is_empty() => Ok(Zeroizing::new(p)),
            _ => bail!(
                "no user PIN: set `pin_file` in the config file, pass --pin-file, or set {PIN_ENV}"
            ),
        }
    }
}
