//! `strongroom-keyd`: key service for database TDE (HashiCorp Vault KV v2
//! subset for MariaDB, KMS-style JSON API) backed by a PKCS#11 token.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use strongroom_keyd::config::{Config, FileConfig};
use strongroom_keyd::server::Server;
use strongroom_keyd::service::{parse_duration, ApiError, KeySpec, Service};
use strongroom_keyd::{store, token::Token};

#[derive(Parser)]
#[command(
    name = "strongroom-keyd",
    version,
    about = "Key service for database TDE backed by a PKCS#11 token",
    after_help = "Login: --user/`user` with --password-file/`password_file` (or STRONGROOM_KEYD_PASSWORD) logs in\n\
                  as that crypto user (PIN \"user:password\"); else --pin-file/`pin_file` (or STRONGROOM_KEYD_PIN)\n\
                  is a plain user PIN.\n\
                  Exit codes: 0 success, 1 runtime error, 2 usage error."
)]
struct Cli {
    #[command(flatten)]
    opts: Opts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Opts {
    /// TOML configuration file (flags override it)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// PKCS#11 module [default: libstrongroom_pkcs11.so next to this program]
    #[arg(long, global = true, value_name = "PATH")]
    module: Option<PathBuf>,
    /// Label of the token that holds the master keys
    #[arg(long, global = true, value_name = "LABEL")]
    token_label: Option<String>,
    /// File whose first line is the token's user PIN (used as it is)
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Crypto user to log in as (PIN "user:password")
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,
    /// File whose first line is the crypto user's password
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Listen address: 127.0.0.1:8200, unix:/path, or a non-loopback ip:port (needs TLS)
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    /// TLS certificate chain (PEM)
    #[arg(long, global = true, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, global = true, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The service's SQLite database
    #[arg(long, global = true, value_name = "FILE")]
    database: Option<PathBuf>,
    /// Vault mount name [default: secret]
    #[arg(long, global = true)]
    mount: Option<String>,
    /// Seconds an unwrapped data key may stay cached in memory [default: 0]
    #[arg(long, global = true)]
    cache_seconds: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service
    Serve,
    /// Administration (works on the database and the token directly)
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Subcommand)]
enum Admin {
    /// Create key id ID with version 1 (a fresh data key wrapped in the token,
    /// or with --spec HMAC_256 an HMAC key generated in the token)
    CreateKey {
        id: String,
        /// AES_256 (data keys, what MariaDB reads) or HMAC_256
        #[arg(long, default_value = "AES_256")]
        spec: String,
    },
    /// Add a new version to key id ID
    RotateKey { id: String },
    /// Rotate key id ID automatically every PERIOD (90d, 12h, 30m, 45s), or never (off)
    SetRotation {
        id: String,
        /// Period (90d, 12h, 30m, 45s) or `off`
        #[arg(long, value_name = "PERIOD")]
        every: String,
    },
    /// Let client CLIENT use key id ID until the grant expires or is revoked
    CreateGrant {
        /// Client name (as in create-client)
        #[arg(long)]
        client: String,
        /// Key id
        #[arg(long)]
        key: String,
        /// Lifetime (1h, 7d, ...; at most 366d)
        #[arg(long, value_name = "DURATION")]
        expires_in: String,
    },
    /// List grants (all, or of one client / key id)
    ListGrants {
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        key: Option<String>,
    },
    /// Revoke a grant
    RevokeGrant { grant_id: String },
    /// New master key in the token; every data key re-wrapped under it
    RotateMaster,
    /// Refuse every read of key id ID
    DisableKey { id: String },
    /// Allow reads of key id ID again
    EnableKey { id: String },
    /// List key ids, versions and master keys
    ListKeys,
    /// Add a client; prints its token once (only its SHA-256 is stored)
    CreateClient {
        name: String,
        /// Key ids the client may read, comma separated (`*` = all, '' = none: grants only)
        #[arg(long, value_delimiter = ',', required = true)]
        keys: Vec<String>,
        /// May also create/rotate/disable keys and rotate the master key
        #[arg(long)]
        admin: bool,
    },
    /// Revoke a client's token
    RevokeClient { name: String },
    /// Print the last audit records
    Audit {
        #[arg(long, default_value_t = 50)]
        last: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strongroom-keyd: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

fn config(o: &Opts) -> Result<Config> {
    let file = match &o.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    if file.threads.is_some() {
        eprintln!(
            "strongroom-keyd: warning: `threads` is no longer used (one thread per connection, \
             up to `max_connections`)"
        );
    }
    let flags = FileConfig {
        module: o.module.clone(),
        token_label: o.token_label.clone(),
        pin_file: o.pin_file.clone(),
        user: o.user.clone(),
        password_file: o.password_file.clone(),
        tls_cert: o.tls_cert.clone(),
        tls_key: o.tls_key.clone(),
        listen: o.listen.clone(),
        database: o.database.clone(),
        mount: o.mount.clone(),
        cache_seconds: o.cache_seconds,
        max_connections: None,
        rotation_check_seconds: None,
        threads: None,
    };
    let default_module = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("libstrongroom_pkcs11.so")))
        .filter(|p| p.exists());
    file.resolve(flags, default_module)
}

fn service(cfg: &Config) -> Result<Service> {
    let pin = cfg.pin()?;
    let token = Token::open(&cfg.module, &cfg.token_label, pin)?;
    let db = store::open(&cfg.database)?;
    Ok(Service::new(token, db, &cfg.mount, cfg.cache_seconds))
}

fn api<T>(r: Result<T, ApiError>) -> Result<T> {
    r.map_err(|e| match e {
        ApiError::NotFound => anyhow!("no such key or client"),
        e => anyhow!("{}", e.message()),
    })
}

fn run(cli: Cli) -> Result<()> {
    let cfg = config(&cli.opts)?;
    match cli.command {
        Command::Serve => {
            // Bind first: a listen/TLS mistake is reported before the token
            // is touched.
            let server = Server::bind(&cfg.listen, cfg.tls.as_ref())?;
            let svc = service(&cfg)?;
            serve(cfg, svc, server)
        }
        Command::Admin(a) => admin(&service(&cfg)?, a),
    }
}

fn serve(cfg: Config, svc: Service, mut server: Server) -> Result<()> {
    let svc = Arc::new(svc);
    match svc.health() {
        Ok(()) => eprintln!(
            "strongroom-keyd: token \"{}\" logged in as {}",
            cfg.token_label,
            cfg.login_name()
        ),
        Err(e) => eprintln!(
            "strongroom-keyd: warning: {} (requests get 503 until it is back)",
            e.message()
        ),
    }
    eprintln!(
        "strongroom-keyd: listening on {} (Vault KV v2 mount \"{}\", KMS API under /kms/)",
        server.describe(),
        cfg.mount
    );
    server.max_connections = cfg.max_connections;
    // Scheduled rotation: one pass at start, then every rotation_check_seconds.
    svc.spawn_rotation_scheduler(Duration::from_secs(cfg.rotation_check_seconds))
        .map_err(|e| anyhow!("starting the rotation scheduler: {e}"))?;
    server.run(svc);
    Ok(())
}

fn admin(svc: &Service, a: Admin) -> Result<()> {
    let audit = |key: Option<&str>, version: Option<u32>, action: &str, ok: bool| {
        svc.audit(
            "admin-cli",
            key,
            version,
            action,
            if ok { "ok" } else { "error" },
            None,
        );
    };
    match a {
        Admin::CreateKey { id, spec } => {
            let spec = api(KeySpec::parse(&spec))?;
            let r = svc.create_key_spec(&id, spec);
            audit(Some(&id), r.as_ref().ok().copied(), "CreateKey", r.is_ok());
            let v = api(r)?;
            println!("key {id} version {v}");
        }
        Admin::RotateKey { id } => {
            let r = svc.rotate_key(&id);
            audit(Some(&id), r.as_ref().ok().copied(), "RotateKey", r.is_ok());
            let v = api(r)?;
            println!("key {id} version {v}");
        }
        Admin::SetRotation { id, every } => {
            let secs = match every.as_str() {
                "off" | "never" | "0" => None,
                p => Some(parse_duration(p).ok_or_else(|| {
                    anyhow!("--every {p:?}: a period like 90d, 12h, 30m, 45s, or off")
                })?),
            };
            let r = svc.set_rotation(&id, secs);
            let detail = match secs {
                Some(s) => format!("every {s}s"),
                None => "off".into(),
            };
            svc.audit_detail(
                "admin-cli",
                Some(&id),
                None,
                "SetRotation",
                if r.is_ok() { "ok" } else { "error" },
                None,
                Some(&detail),
            );
            api(r)?;
            match api(svc.rotation_status(&id))? {
                (Some(p), Some(next)) => {
                    println!("key {id} rotates every {p}s; next rotation due at {next} (Unix time)")
                }
                _ => println!("key {id}: no scheduled rotation"),
            }
        }
        Admin::CreateGrant {
            client,
            key,
            expires_in,
        } => {
            let secs = parse_duration(&expires_in)
                .ok_or_else(|| anyhow!("--expires-in {expires_in:?}: a duration like 1h or 7d"))?;
            let r = svc.create_grant(&client, &key, secs);
            let detail = r.as_ref().ok().map(|g| {
                format!(
                    "grant {} for client {client} until {}",
                    g.grant_id, g.expires_at
                )
            });
            svc.audit_detail(
                "admin-cli",
                Some(&key),
                None,
                "CreateGrant",
                if r.is_ok() { "ok" } else { "error" },
                None,
                detail.as_deref(),
            );
            let g = api(r)?;
            println!("{}", g.grant_id);
            eprintln!(
                "grant {}: client {} may use key {} until {} (Unix time)",
                g.grant_id, g.client, g.key_id, g.expires_at
            );
        }
        Admin::ListGrants { client, key } => {
            let now = store::now();
            for g in api(svc.list_grants(client.as_deref(), key.as_deref()))? {
                let state = match g.revoked_at {
                    Some(t) => format!("revoked at {t}"),
                    None if g.active(now) => "active".into(),
                    None => "expired".into(),
                };
                println!(
                    "{}\tclient {}\tkey {}\texpires {}\t{state}",
                    g.grant_id, g.client, g.key_id, g.expires_at
                );
            }
        }
        Admin::RevokeGrant { grant_id } => {
            let r = svc.revoke_grant(&grant_id, None);
            let key = r.as_ref().ok().map(|g| g.key_id.clone());
            let detail = format!("grant {grant_id}");
            svc.audit_detail(
                "admin-cli",
                key.as_deref(),
                None,
                "RevokeGrant",
                if r.is_ok() { "ok" } else { "error" },
                None,
                Some(&detail),
            );
            api(r)?;
            println!("grant {grant_id} revoked");
        }
        Admin::RotateMaster => {
            let r = svc.rotate_master();
            audit(None, None, "RotateMaster", r.is_ok());
            let (label, n) = api(r)?;
            println!("master key {label}; {n} data keys re-wrapped");
        }
        Admin::DisableKey { id } => {
            let r = svc.set_enabled(&id, false);
            audit(Some(&id), None, "DisableKey", r.is_ok());
            api(r)?;
            println!("key {id} disabled");
        }
        Admin::EnableKey { id } => {
            let r = svc.set_enabled(&id, true);
            audit(Some(&id), None, "EnableKey", r.is_ok());
            api(r)?;
            println!("key {id} enabled");
        }
        Admin::ListKeys => {
            for k in api(svc.list_keys())? {
                let holder = if k.master_label.is_empty() {
                    "in the token".to_string()
                } else {
                    format!("master {}", k.master_label)
                };
                let rotation = match k.rotation_seconds {
                    Some(p) => format!("\trotates every {p}s"),
                    None => String::new(),
                };
                println!(
                    "{}\tversions {:?}\tlatest {}\t{}\t{}\t{}{rotation}",
                    k.key_id,
                    k.versions,
                    k.latest,
                    if k.enabled { "enabled" } else { "disabled" },
                    k.spec,
                    holder
                );
            }
        }
        Admin::CreateClient { name, keys, admin } => {
            let r = svc.create_client(&name, &keys, admin);
            audit(None, None, &format!("CreateClient {name}"), r.is_ok());
            let token = api(r)?;
            println!("{token}");
        }
        Admin::RevokeClient { name } => {
            let r = svc.revoke_client(&name);
            audit(None, None, &format!("RevokeClient {name}"), r.is_ok());
            api(r)?;
            println!("client {name} revoked");
        }
        Admin::Audit { last } => {
            for line in api(svc.audit_tail(last))? {
                println!("{line}");
            }
        }
    }
    Ok(())
}
