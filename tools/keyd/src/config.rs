//! Configuration: a TOML file (`--config`), overridden by command-line flags.
//!
//! Logging in: with `user` set, the service logs in as that crypto user
//! (`C_Login(CKU_USER, "user:password")`, the CloudHSM/Strongroom form) with
//! the password from `password_file` or `STRONGROOM_KEYD_PASSWORD`. Without
//! `user`, the PIN is used as it is (any PKCS#11 token), from `pin_file` or
//! `STRONGROOM_KEYD_PIN`. Secrets are read into zeroizing buffers and never
//! logged.

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8200";
pub const DEFAULT_MOUNT: &str = "secret";
pub const PIN_ENV: &str = "STRONGROOM_KEYD_PIN";
pub const PASSWORD_ENV: &str = "STRONGROOM_KEYD_PASSWORD";
/// Seconds between two checks of the rotation schedule.
pub const DEFAULT_ROTATION_CHECK: u64 = 60;

/// The TOML file. Every key is optional here; what is required is checked
/// after the flags are applied.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Path of the PKCS#11 module.
    pub module: Option<PathBuf>,
    /// Label of the token holding the master keys.
    pub token_label: Option<String>,
    /// File holding the user PIN (first line), used as it is.
    pub pin_file: Option<PathBuf>,
    /// Crypto user to log in as (`C_Login(CKU_USER, "user:password")`).
    pub user: Option<String>,
    /// File holding the crypto user's password (first line).
    pub password_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); required with `tls_key` to listen on a
    /// non-loopback address.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// `host:port` (loopback only) or `unix:/path/to/socket`.
    pub listen: Option<String>,
    /// The service's SQLite database.
    pub database: Option<PathBuf>,
    /// Vault mount name MariaDB is pointed at (`.../v1/<mount>`).
    pub mount: Option<String>,
    /// Seconds an unwrapped data key may stay cached in memory (0 = none).
    pub cache_seconds: Option<u64>,
    /// Connections served at once (one thread each).
    pub max_connections: Option<usize>,
    /// Seconds between two checks of the per-key rotation schedule.
    pub rotation_check_seconds: Option<u64>,
    /// No longer used (connections get a thread each, up to
    /// `max_connections`); accepted so that older files still load.
    pub threads: Option<usize>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub module: PathBuf,
    pub token_label: String,
    pub pin_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub tls: Option<crate::server::TlsFiles>,
    pub listen: String,
    pub database: PathBuf,
    pub mount: String,
    pub cache_seconds: u64,
    pub max_connections: usize,
    pub rotation_check_seconds: u64,
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
        let user = over.user.or(self.user);
        if let Some(u) = &user {
            if u.is_empty() || u.contains(':') || u.len() > 64 {
                bail!("user {u:?}: a crypto user name, without ':'");
            }
        }
        let pin_file = over.pin_file.or(self.pin_file);
        let password_file = over.password_file.or(self.password_file);
        if user.is_some() && pin_file.is_some() {
            bail!("set either `user` with `password_file` (a crypto user) or `pin_file` (a plain PIN), not both");
        }
        if user.is_none() && password_file.is_some() {
            bail!("`password_file` is the password of a crypto user: set `user` too (or use `pin_file` for a plain PIN)");
        }
        let tls = match (
            over.tls_cert.or(self.tls_cert),
            over.tls_key.or(self.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(crate::server::TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("TLS needs both `tls_cert` and `tls_key`"),
        };
        let rotation_check_seconds = over
            .rotation_check_seconds
            .or(self.rotation_check_seconds)
            .unwrap_or(DEFAULT_ROTATION_CHECK);
        if rotation_check_seconds == 0 {
            bail!("rotation_check_seconds must be at least 1");
        }
        Ok(Config {
            module,
            token_label,
            pin_file,
            user,
            password_file,
            tls,
            max_connections: over
                .max_connections
                .or(self.max_connections)
                .unwrap_or(64)
                .max(1),
            rotation_check_seconds,
            listen: over
                .listen
                .or(self.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database,
            mount,
            cache_seconds: over.cache_seconds.or(self.cache_seconds).unwrap_or(0),
        })
    }
}

/// The first line of a secret file.
fn first_line(f: &Path, what: &str) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(f)
            .with_context(|| format!("reading the {what} file {}", f.display()))?,
    );
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
    if line.is_empty() {
        bail!("the {what} file {} is empty", f.display());
    }
    Ok(line)
}

fn env_secret(name: &str) -> Option<Zeroizing<String>> {
    std::env::var(name)
        .ok()
        .map(Zeroizing::new)
        .filter(|p| !p.is_empty())
}

impl Config {
    /// What goes to `C_Login(CKU_USER)`: `user:password` for a crypto user,
    /// else the plain PIN (`pin_file`, else `STRONGROOM_KEYD_PIN`).
    pub fn pin(&self) -> Result<Zeroizing<String>> {
        if let Some(user) = &self.user {
            let password = match &self.password_file {
                Some(f) => first_line(f, "password")?,
                None => env_secret(PASSWORD_ENV).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no password for crypto user {user}: set `password_file` in the config file, \
                         pass --password-file, or set {PASSWORD_ENV}"
                    )
                })?,
            };
            let mut pin = Zeroizing::new(String::with_capacity(user.len() + 1 + password.len()));
            pin.push_str(user);
            pin.push(':');
            pin.push_str(&password);
            return Ok(pin);
        }
        if let Some(f) = &self.pin_file {
            return first_line(f, "PIN");
        }
        env_secret(PIN_ENV).ok_or_else(|| {
            anyhow::anyhow!(
                "no login: set `user` and `password_file` (a crypto user; recommended) or `pin_file` \
                 in the config file, or set {PASSWORD_ENV} with --user, or {PIN_ENV}"
            )
        })
    }

    /// Who the service logs in as, for messages (never the secret).
    pub fn login_name(&self) -> String {
        match &self.user {
            Some(u) => format!("crypto user {u}"),
            None => "the token's user PIN".into(),
        }
    }
}
