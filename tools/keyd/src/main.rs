//! `strongroom-keyd`: key service for database TDE (HashiCorp Vault KV v2
//! subset for MariaDB, KMS-style JSON API) backed by a PKCS#11 token.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use strongroom_keyd::config::{Config, FileConfig};
use strongroom_keyd::service::{ApiError, Service};
use strongroom_keyd::{http, store, token::Token};

#[derive(Parser)]
#[command(
    name = "strongroom-keyd",
    version,
    about = "Key service for database TDE backed by a PKCS#11 token",
    after_help = "The user PIN is read from --pin-file / `pin_file`, else from STRONGROOM_KEYD_PIN.\n\
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
    /// File whose first line is the token's user PIN
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Listen address: 127.0.0.1:8200 (loopback only) or unix:/path
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
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
    /// Create key id ID with version 1 (a fresh data key wrapped in the token)
    CreateKey { id: String },
    /// Add a new data-key version to key id ID
    RotateKey { id: String },
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
        /// Key ids the client may read, comma separated (`*` = all)
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
    let flags = FileConfig {
        module: o.module.clone(),
        token_label: o.token_label.clone(),
        pin_file: o.pin_file.clone(),
        listen: o.listen.clone(),
        database: o.database.clone(),
        mount: o.mount.clone(),
        cache_seconds: o.cache_seconds,
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
    let svc = service(&cfg)?;
    match cli.command {
        Command::Serve => serve(cfg, svc),
        Command::Admin(a) => admin(&svc, a),
    }
}

fn serve(cfg: Config, svc: Service) -> Result<()> {
    let server = if let Some(path) = cfg.listen.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        let _ = std::fs::remove_file(&path);
        tiny_http::Server::http_unix(&path)
            .map_err(|e| anyhow!("listening on {}: {e}", path.display()))?
    } else {
        let addr: SocketAddr = cfg.listen.parse().with_context(|| {
            format!(
                "listen address {:?} (want host:port or unix:/path)",
                cfg.listen
            )
        })?;
        if !addr.ip().is_loopback() {
            bail!(
                "listen address {addr} is not loopback: TLS is not implemented yet, so the service \
                 only listens on loopback or a unix socket"
            );
        }
        tiny_http::Server::http(addr).map_err(|e| anyhow!("listening on {addr}: {e}"))?
    };
    let svc = Arc::new(svc);
    match svc.health() {
        Ok(()) => eprintln!("strongroom-keyd: token \"{}\" logged in", cfg.token_label),
        Err(e) => eprintln!(
            "strongroom-keyd: warning: {} (requests get 503 until it is back)",
            e.message()
        ),
    }
    let shown = match server.server_addr() {
        tiny_http::ListenAddr::IP(a) => a.to_string(),
        other => format!("{other:?}"),
    };
    eprintln!(
        "strongroom-keyd: listening on {shown} (Vault KV v2 mount \"{}\", KMS API under /kms/)",
        cfg.mount
    );
    let workers = http::spawn_workers(svc, Arc::new(server), cfg.threads);
    for w in workers {
        let _ = w.join();
    }
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
        Admin::CreateKey { id } => {
            let r = svc.create_key(&id);
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
                println!(
                    "{}\tversions {:?}\tlatest {}\t{}\tmaster {}",
                    k.key_id,
                    k.versions,
                    k.latest,
                    if k.enabled { "enabled" } else { "disabled" },
                    k.master_label
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
