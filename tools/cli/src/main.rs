//! `strongroom`: the admin command line of the Strongroom PKCS#11 module.
//!
//! It talks to the module only through PKCS#11 (the `cryptoki` crate), like
//! any other client, so what it shows is what clients see.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod keys;

const MODULE_FILE: &str = "libstrongroom_pkcs11.so";
const DEMO_LABEL: &str = "strongroom-demo";
const PINS_FILE: &str = "demo-pins.txt";
const LABEL_PRIVATE: &str = "strongroom-demo-private";
const LABEL_PUBLIC: &str = "strongroom-demo-public";
const LABEL_AES: &str = "strongroom-demo-aes";

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "Admin tool for the Strongroom PKCS#11 soft HSM",
    after_help = "The store is chosen like the module chooses it: STRONGROOM_STORE, else \
                  [store] path in the file named by STRONGROOM_CONF, else \
                  $XDG_DATA_HOME/strongroom, else ~/.local/share/strongroom.\n\
                  Secrets come from the environment, never the command line: \
                  STRONGROOM_SO_PIN, STRONGROOM_USER_PASSWORD (user add|passwd|unlock), \
                  STRONGROOM_USER_PIN (keys, key: `name:password` for a crypto user), \
                  STRONGROOM_BACKUP_PASSPHRASE.\n\
                  Exit codes: 0 success, 1 runtime error, 2 usage error."
)]
struct Cli {
    /// Path of the PKCS#11 module [default: libstrongroom_pkcs11.so next to
    /// this program, else target/release/libstrongroom_pkcs11.so]
    #[arg(long, global = true, value_name = "PATH")]
    module: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Initialise a demo token if needed (printing the PINs it chose), store
    /// a private and a public data object and an AES key, find them again,
    /// and check that no plaintext reached the store files
    Demo,
    /// Initialise a new token in the free slot (SO PIN from STRONGROOM_SO_PIN;
    /// the default user's PIN from STRONGROOM_USER_PIN, if set)
    Init {
        /// Token label (up to 32 bytes)
        #[arg(long)]
        label: String,
    },
    /// Show the library, its slots and tokens (users, objects visible
    /// without login), and the store path and size
    Status,
    /// List objects a user sees (logs in with STRONGROOM_USER_PIN)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Share a key with other crypto users, as its owner
    /// (logs in with STRONGROOM_USER_PIN)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage crypto users (the SO PIN comes from STRONGROOM_SO_PIN)
    #[command(subcommand)]
    User(UserCommand),
    /// Verify or export the tamper-evident audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write the whole store (tokens, keys, users, audit log) to one file,
    /// encrypted under STRONGROOM_BACKUP_PASSPHRASE (Argon2id + AES-256-GCM)
    Backup {
        /// The backup file to create (never overwritten)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a backup into an empty store (STRONGROOM_STORE); a tampered,
    /// truncated or wrongly keyed file is refused and nothing is written
    Restore {
        /// The backup file
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// List every PIN slot: SO, default user, crypto users, failure counts
    List,
    /// Create a crypto user (password from STRONGROOM_USER_PASSWORD)
    Add {
        name: String,
        #[arg(long, default_value_t = 0)]
        slot: u64,
    },
    /// Set a crypto user's password, which also unlocks it
    /// (password from STRONGROOM_USER_PASSWORD)
    Passwd {
        name: String,
        #[arg(long, default_value_t = 0)]
        slot: u64,
    },
    /// Unlock a crypto user by setting a new password
    /// (password from STRONGROOM_USER_PASSWORD)
    Unlock {
        name: String,
        #[arg(long, default_value_t = 0)]
        slot: u64,
    },
    /// Delete a crypto user; objects it owns stay for those it shared them with
    Delete {
        name: String,
        #[arg(long, default_value_t = 0)]
        slot: u64,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List every object the user of STRONGROOM_USER_PIN can see: handle,
    /// class, key type, label, id, owner, users it is shared with, flags
    /// (never values)
    #[command(
        after_help = "STRONGROOM_USER_PIN is `name:password` for a crypto user, \
                            else the default user's PIN. OWNER (default) is the default \
                            user; - means the object has no owner (made without a login)."
    )]
    List {
        /// The slot of the token
        #[arg(long, default_value_t = 0, value_name = "N")]
        slot: u64,
    },
}

#[derive(Args)]
struct ShareArgs {
    /// The CKA_LABEL of the object
    label: String,
    /// The crypto user to share with (or stop sharing with)
    #[arg(long, value_name = "USER", value_parser = keys::parse_user_name)]
    with: String,
    /// Pick the object by CKA_ID too (hex), when several share the label
    #[arg(long, value_name = "HEX", value_parser = keys::parse_hex)]
    id: Option<keys::HexId>,
    /// The slot of the token
    #[arg(long, default_value_t = 0, value_name = "N")]
    slot: u64,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Let USER use the object labelled LABEL (not destroy, modify, export or
    /// re-share it); only its owner may do this
    #[command(
        after_help = "Logs in with STRONGROOM_USER_PIN (`name:password` of the owner), \
                            adds USER to CKA_SR_SHARED_WITH and writes it back with \
                            C_SetAttributeValue."
    )]
    Share(ShareArgs),
    /// Stop sharing the object labelled LABEL with USER; only its owner may
    /// do this
    #[command(
        after_help = "Logs in with STRONGROOM_USER_PIN (`name:password` of the owner), \
                            removes USER from CKA_SR_SHARED_WITH and writes it back with \
                            C_SetAttributeValue."
    )]
    Unshare(ShareArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the MAC chain of the audit log; exit code 1 names the first bad entry
    Verify,
    /// Print the verified log as JSON lines (refuses a broken chain)
    Export,
    /// Delete entries up to and including SEQ (export them first); the rest
    /// of the chain stays verifiable from the kept anchor
    Rotate {
        /// The last sequence number to delete
        #[arg(long)]
        through: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with code 2
    let result = match cli.command {
        Command::Demo => demo(cli.module.as_deref()),
        Command::Status => status(cli.module.as_deref()),
        Command::Init { label } => init(cli.module.as_deref(), &label),
        Command::Keys(KeysCommand::List { slot }) => keys::list(cli.module.as_deref(), slot),
        Command::Key(KeyCommand::Share(a)) => keys::share(
            cli.module.as_deref(),
            a.slot,
            &a.label,
            a.id.as_ref().map(|h| h.0.as_slice()),
            &a.with,
            true,
        ),
        Command::Key(KeyCommand::Unshare(a)) => keys::share(
            cli.module.as_deref(),
            a.slot,
            &a.label,
            a.id.as_ref().map(|h| h.0.as_slice()),
            &a.with,
            false,
        ),
        Command::User(u) => user(cli.module.as_deref(), u),
        Command::Audit(a) => audit(a),
        Command::Backup { out } => backup(&out),
        Command::Restore { file } => restore(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strongroom: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

// ----- module and store location -----

fn module_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("--module {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(MODULE_FILE);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    let p = PathBuf::from("target/release").join(MODULE_FILE);
    if p.is_file() {
        return Ok(p);
    }
    tried.push(p);
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "cannot find {MODULE_FILE} (looked at {}): build it with `cargo build --release` or pass --module PATH",
        tried.join(", ")
    )
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The store directory, by the module's rules (src/config.rs).
fn store_dir() -> Result<PathBuf> {
    if let Some(d) = env("STRONGROOM_STORE") {
        return Ok(PathBuf::from(d));
    }
    if let Some(conf) = env("STRONGROOM_CONF") {
        let text = fs::read_to_string(&conf).with_context(|| format!("STRONGROOM_CONF={conf}"))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("STRONGROOM_CONF={conf}"))?;
        if let Some(p) = table
            .get("store")
            .and_then(|s| s.get("path"))
            .and_then(|p| p.as_str())
        {
            return Ok(PathBuf::from(p));
        }
    }
    if let Some(x) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(x).join("strongroom"));
    }
    match env("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/strongroom")),
        None => {
            bail!("no store location: set STRONGROOM_STORE, STRONGROOM_CONF, XDG_DATA_HOME or HOME")
        }
    }
}

fn load(explicit: Option<&Path>) -> Result<(Pkcs11, PathBuf)> {
    let path = module_path(explicit)?;
    let ctx = Pkcs11::new(&path).with_context(|| format!("cannot load {}", path.display()))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .with_context(|| {
            format!(
                "C_Initialize failed for {} (the module printed the reason above; \
                 check STRONGROOM_STORE / STRONGROOM_CONF)",
                path.display()
            )
        })?;
    Ok((ctx, path))
}

// ----- helpers -----

fn urandom(buf: &mut [u8]) -> Result<()> {
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("reading /dev/urandom")
}

/// A uniformly random 8-digit PIN.
fn random_pin() -> Result<String> {
    loop {
        let mut b = [0u8; 4];
        urandom(&mut b)?;
        let n = u32::from_le_bytes(b);
        // 4_200_000_000 is the largest multiple of 10^8 below 2^32.
        if n < 4_200_000_000 {
            return Ok(format!("{:08}", n % 100_000_000));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pin(s: &str) -> AuthPin {
    AuthPin::from(s.to_string())
}

fn flag_names(t: &TokenInfo) -> Vec<&'static str> {
    let flags = [
        (t.token_initialized(), "token initialized"),
        (t.user_pin_initialized(), "user PIN initialized"),
        (t.login_required(), "login required"),
        (t.rng(), "rng"),
        (t.write_protected(), "write protected"),
        (t.user_pin_count_low(), "user PIN count low"),
        (t.user_pin_final_try(), "user PIN final try"),
        (t.user_pin_locked(), "user PIN locked"),
        (t.user_pin_to_be_changed(), "user PIN to be changed"),
        (t.so_pin_count_low(), "SO PIN count low"),
        (t.so_pin_final_try(), "SO PIN final try"),
        (t.so_pin_locked(), "SO PIN locked"),
        (t.so_pin_to_be_changed(), "SO PIN to be changed"),
    ];
    flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect()
}

fn by_label(session: &Session, label: &str) -> Result<Vec<ObjectHandle>> {
    session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .with_context(|| format!("C_FindObjects label={label}"))
}

// ----- status -----

fn status(module: Option<&Path>) -> Result<()> {
    let (ctx, path) = load(module)?;
    let info = ctx.get_library_info().context("C_GetInfo")?;
    println!("module:  {}", path.display());
    println!(
        "library: {} {} (Cryptoki {})",
        info.manufacturer_id(),
        info.library_version(),
        info.cryptoki_version()
    );
    let dir = store_dir()?;
    println!("store:   {}", dir.display());
    let (bytes, files) = disk_usage(&dir)?;
    println!(
        "  size:    {} in {files} file{} ({bytes} bytes)",
        human_size(bytes),
        if files == 1 { "" } else { "s" }
    );
    let store = strongroom_pkcs11::admin::open_store()
        .map_err(|e| anyhow!("cannot open the store {}: {e}", dir.display()))?;
    let users = strongroom_pkcs11::admin::list_users(&store)
        .map_err(|e| anyhow!("cannot list the users of {}: {e}", dir.display()))?;
    drop(store);
    for slot in ctx.get_all_slots().context("C_GetSlotList")? {
        print_slot(&ctx, slot, &users)?;
    }
    Ok(())
}

/// Apparent size and number of the regular files under `dir`.
fn disk_usage(dir: &Path) -> Result<(u64, u64)> {
    let (mut bytes, mut files) = (0, 0);
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            let (b, f) = disk_usage(&path)?;
            bytes += b;
            files += f;
        } else if meta.is_file() {
            bytes += meta.len();
            files += 1;
        }
    }
    Ok((bytes, files))
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn print_slot(
    ctx: &Pkcs11,
    slot: Slot,
    users: &[strongroom_pkcs11::admin::UserInfo],
) -> Result<()> {
    let t = ctx
        .get_token_info(slot)
        .with_context(|| format!("C_GetTokenInfo slot {}", slot.id()))?;
    if !t.token_initialized() {
        println!(
            "slot {}: free (no token initialised; C_InitToken creates one here)",
            slot.id()
        );
        return Ok(());
    }
    println!("slot {}: token \"{}\"", slot.id(), t.label());
    println!("  serial:  {}", t.serial_number());
    println!("  flags:   {}", flag_names(&t).join(", "));
    let session = ctx
        .open_ro_session(slot)
        .with_context(|| format!("C_OpenSession slot {}", slot.id()))?;
    let n = session.find_objects(&[]).context("C_FindObjects")?.len();
    println!("  objects: {n} visible without login");
    let mine: Vec<String> = users
        .iter()
        .filter(|u| u.slot >= 0 && u.slot as u64 == slot.id())
        .map(|u| {
            let locked = if u.failures >= u.limit {
                ", locked"
            } else {
                ""
            };
            format!("{} ({}/{} failures{locked})", u.name, u.failures, u.limit)
        })
        .collect();
    println!(
        "  users:   {}",
        if mine.is_empty() {
            "none".to_string()
        } else {
            mine.join(", ")
        }
    );
    Ok(())
}

// ----- demo -----

struct Pins {
    so: String,
    user: String,
}

fn read_pins(file: &Path) -> Result<Pins> {
    let text = fs::read_to_string(file).with_context(|| {
        format!(
            "token \"{DEMO_LABEL}\" exists but its PINs file {} cannot be read; \
             remove the store to start over",
            file.display()
        )
    })?;
    let field = |name: &str| -> Result<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| anyhow!("{}: no `{name}=` line", file.display()))
    };
    Ok(Pins {
        so: field("so_pin")?,
        user: field("user_pin")?,
    })
}

fn write_pins(file: &Path, pins: &Pins) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    // `mode` applies only on creation: make an old file private too.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    writeln!(
        f,
        "# PINs of the Strongroom demo token \"{DEMO_LABEL}\" (written by `strongroom demo`)\n\
         so_pin={}\nuser_pin={}",
        pins.so, pins.user
    )?;
    f.sync_all()?;
    Ok(())
}

/// Finds the demo token, or initialises one in the first free slot.
fn demo_token(ctx: &Pkcs11, store: &Path) -> Result<(Slot, Pins)> {
    let pins_file = store.join(PINS_FILE);
    let slots = ctx.get_all_slots().context("C_GetSlotList")?;
    let mut free = None;
    for &slot in &slots {
        let t = ctx.get_token_info(slot).context("C_GetTokenInfo")?;
        if t.token_initialized() && t.label() == DEMO_LABEL {
            println!(
                "token:   \"{DEMO_LABEL}\" in slot {} (serial {}), PINs from {}",
                slot.id(),
                t.serial_number(),
                pins_file.display()
            );
            return Ok((slot, read_pins(&pins_file)?));
        }
        if !t.token_initialized() && free.is_none() {
            free = Some(slot);
        }
    }
    let slot = free.ok_or_else(|| anyhow!("no free slot to initialise a token in"))?;
    let pins = Pins {
        so: random_pin()?,
        user: random_pin()?,
    };
    // Save the PINs before the token exists, so they cannot be lost.
    write_pins(&pins_file, &pins)?;
    ctx.init_token(slot, &pin(&pins.so), DEMO_LABEL)
        .with_context(|| format!("C_InitToken slot {}", slot.id()))?;
    {
        let s = ctx.open_rw_session(slot).context("C_OpenSession")?;
        s.login(UserType::So, Some(&pin(&pins.so)))
            .context("C_Login as SO")?;
        s.init_pin(&pin(&pins.user)).context("C_InitPIN")?;
        s.logout().context("C_Logout")?;
    }
    let t = ctx.get_token_info(slot)?;
    println!(
        "token:   initialised \"{DEMO_LABEL}\" in slot {} (serial {})",
        slot.id(),
        t.serial_number()
    );
    println!("  SO PIN:   {}", pins.so);
    println!("  user PIN: {}", pins.user);
    println!("  (saved to {}, mode 0600)", pins_file.display());
    Ok((slot, pins))
}

/// Files under `dir` (recursively) containing any of `needles`.
fn scan(
    dir: &Path,
    needles: &[(&str, &[u8])],
    files: &mut Vec<PathBuf>,
    hits: &mut Vec<String>,
) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            scan(&path, needles, files, hits)?;
        } else if meta.is_file() {
            if path.file_name().is_some_and(|n| n == PINS_FILE) {
                continue; // holds PINs on purpose, never object data
            }
            let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            for (what, needle) in needles {
                if data.windows(needle.len()).any(|w| w == *needle) {
                    hits.push(format!("{what} in {}", path.display()));
                }
            }
            files.push(path);
        }
    }
    Ok(())
}

fn demo(module: Option<&Path>) -> Result<()> {
    let store = store_dir()?;
    let (ctx, path) = load(module)?;
    println!("module:  {}", path.display());
    println!("store:   {}", store.display());
    let (slot, pins) = demo_token(&ctx, &store)?;

    let mut r = [0u8; 8];
    urandom(&mut r)?;
    let private_marker = format!("strongroom-demo-private-marker-{}", hex(&r));
    let public_marker = format!("strongroom-demo-public-marker-{}", hex(&r));
    let mut aes_value = vec![0u8; 32];
    urandom(&mut aes_value)?;

    let session = ctx.open_rw_session(slot).context("C_OpenSession")?;
    session
        .login(UserType::User, Some(&pin(&pins.user)))
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::PinIncorrect, _) => anyhow!(
                "C_Login: the user PIN in {} is wrong (was the token re-initialised?)",
                store.join(PINS_FILE).display()
            ),
            e => anyhow::Error::new(e).context("C_Login as user"),
        })?;

    // A rerun replaces the objects of the previous run.
    let mut removed = 0;
    for label in [LABEL_PRIVATE, LABEL_PUBLIC, LABEL_AES] {
        for h in by_label(&session, label)? {
            session.destroy_object(h).context("C_DestroyObject")?;
            removed += 1;
        }
    }
    if removed > 0 {
        println!("removed: {removed} objects of a previous demo run");
    }

    let data = |label: &str, private: bool, value: &str| {
        vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(b"strongroom demo".to_vec()),
            Attribute::Value(value.as_bytes().to_vec()),
        ]
    };
    session
        .create_object(&data(LABEL_PRIVATE, true, &private_marker))
        .context("C_CreateObject (private data object)")?;
    session
        .create_object(&data(LABEL_PUBLIC, false, &public_marker))
        .context("C_CreateObject (public data object)")?;
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(LABEL_AES.as_bytes().to_vec()),
            Attribute::Value(aes_value.clone()),
        ])
        .context("C_CreateObject (AES-256 secret key)")?;

    println!("objects (found again by label, logged in):");
    for (label, expect) in [
        (LABEL_PRIVATE, Some(&private_marker)),
        (LABEL_PUBLIC, Some(&public_marker)),
    ] {
        let found = by_label(&session, label)?;
        if found.len() != 1 {
            bail!("expected 1 object labelled {label}, found {}", found.len());
        }
        let attrs = session
            .get_attributes(found[0], &[AttributeType::Private, AttributeType::Value])
            .context("C_GetAttributeValue")?;
        let private = attrs.iter().any(|a| matches!(a, Attribute::Private(true)));
        let value = attrs.iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v.clone()),
            _ => None,
        });
        if value.as_deref() != expect.map(|m| m.as_bytes()) {
            bail!("object {label}: CKA_VALUE read back differs from what was stored");
        }
        println!(
            "  {label}: data, {}, value read back intact ({} bytes)",
            if private { "private" } else { "public" },
            value.map_or(0, |v| v.len())
        );
    }
    let keys = by_label(&session, LABEL_AES)?;
    if keys.len() != 1 {
        bail!(
            "expected 1 object labelled {LABEL_AES}, found {}",
            keys.len()
        );
    }
    let info = session
        .get_attribute_info(keys[0], &[AttributeType::Value])
        .context("C_GetAttributeValue")?;
    let value_state = match info.first() {
        Some(AttributeInfo::Sensitive) => "CKA_VALUE sensitive (not readable)".to_string(),
        Some(AttributeInfo::Available(n)) => {
            bail!("{LABEL_AES}: CKA_VALUE of a sensitive key is readable ({n} bytes)")
        }
        Some(other) => format!("CKA_VALUE {other:?}"),
        None => "CKA_VALUE ?".to_string(),
    };
    println!("  {LABEL_AES}: AES-256 secret key, private, {value_state}");
    session.logout().context("C_Logout")?;

    // Without login: the public object only.
    let ro = ctx.open_ro_session(slot).context("C_OpenSession")?;
    let public = by_label(&ro, LABEL_PUBLIC)?.len();
    let private = by_label(&ro, LABEL_PRIVATE)?.len() + by_label(&ro, LABEL_AES)?.len();
    println!("  without login: {public} public object visible, {private} private objects visible");
    if public != 1 || private != 0 {
        bail!("visibility without login is wrong: expected 1 public and 0 private objects");
    }
    drop(ro);
    drop(session);

    let needles: [(&str, &[u8]); 3] = [
        ("private data object value", private_marker.as_bytes()),
        ("public data object value", public_marker.as_bytes()),
        ("AES key value", &aes_value),
    ];
    let (mut files, mut hits) = (Vec::new(), Vec::new());
    scan(&store, &needles, &mut files, &mut hits)?;
    // Again after C_Finalize, once the store is closed and checkpointed.
    ctx.finalize().context("C_Finalize")?;
    let mut files_after = Vec::new();
    scan(&store, &needles, &mut files_after, &mut hits)?;
    for f in files_after {
        if !files.contains(&f) {
            files.push(f);
        }
    }
    hits.sort();
    hits.dedup();
    if !hits.is_empty() {
        bail!("plaintext found in the store: {}", hits.join("; "));
    }
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&store).unwrap_or(f).display().to_string())
        .collect();
    println!(
        "no plaintext found in {} (under {})",
        names.join(", "),
        store.display()
    );
    Ok(())
}

// ----- users and audit -----

fn secret_env(name: &str, what: &str) -> Result<String> {
    env(name).ok_or_else(|| anyhow!("set {name} to the {what} (it is not read from the command line, where other users could see it)"))
}

/// Sets a crypto user's password the PKCS#11 way: C_InitPIN("name:password")
/// in an SO session (creates the user, or resets and unlocks it).
fn init_user(module: Option<&Path>, slot_id: u64, name: &str) -> Result<()> {
    let so_pin = secret_env("STRONGROOM_SO_PIN", "security officer PIN")?;
    let password = secret_env("STRONGROOM_USER_PASSWORD", "new password of the user")?;
    let (ctx, _) = load(module)?;
    let slot = ctx
        .get_all_slots()?
        .into_iter()
        .find(|s| s.id() == slot_id)
        .ok_or_else(|| anyhow!("no slot {slot_id} (see `strongroom status`)"))?;
    let session = ctx.open_rw_session(slot).context("C_OpenSession")?;
    session
        .login(UserType::So, Some(&pin(&so_pin)))
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::PinIncorrect, _) => {
                anyhow!("SO login failed: wrong STRONGROOM_SO_PIN (CKR_PIN_INCORRECT)")
            }
            CkError::Pkcs11(RvError::PinLocked, _) => {
                anyhow!("SO login failed: the SO PIN is locked (CKR_PIN_LOCKED)")
            }
            e => anyhow!("SO login failed: {e}"),
        })?;
    session
        .init_pin(&pin(&format!("{name}:{password}")))
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::PinLenRange, _) => {
                let t = ctx.get_token_info(slot).ok();
                let (min, max) = t.map_or((4, 255), |t| (t.min_pin_length(), t.max_pin_length()));
                anyhow!(
                    "the password in STRONGROOM_USER_PASSWORD must be {min}-{max} bytes \
                     (CKR_PIN_LEN_RANGE)"
                )
            }
            CkError::Pkcs11(RvError::ArgumentsBad, _) => anyhow!(
                "C_InitPIN for {name} refused (CKR_ARGUMENTS_BAD): user names are 1-32 \
                 characters of A-Z a-z 0-9 . _ -"
            ),
            e => anyhow!("C_InitPIN for {name} failed: {e}"),
        })?;
    Ok(())
}

fn user(module: Option<&Path>, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::List => {
            let store = strongroom_pkcs11::admin::open_store().map_err(|e| anyhow!("{e}"))?;
            println!(
                "{:<5} {:<24} {:<24} {:>8}",
                "SLOT", "TOKEN", "USER", "FAILURES"
            );
            for u in strongroom_pkcs11::admin::list_users(&store).map_err(|e| anyhow!("{e}"))? {
                let state = if u.failures >= u.limit {
                    " (locked)"
                } else {
                    ""
                };
                println!(
                    "{:<5} {:<24} {:<24} {:>5}/{}{state}",
                    u.slot, u.token_label, u.name, u.failures, u.limit
                );
            }
            Ok(())
        }
        UserCommand::Add { name, slot }
        | UserCommand::Passwd { name, slot }
        | UserCommand::Unlock { name, slot } => {
            init_user(module, slot, &name)?;
            println!("user {name}: password set");
            Ok(())
        }
        UserCommand::Delete { name, slot } => {
            let so_pin = secret_env("STRONGROOM_SO_PIN", "security officer PIN")?;
            let store = std::sync::Arc::new(
                strongroom_pkcs11::admin::open_store().map_err(|e| anyhow!("{e}"))?,
            );
            strongroom_pkcs11::admin::delete_user(store, slot as i64, so_pin.as_bytes(), &name)
                .map_err(|e| anyhow!("cannot delete {name}: {e}"))?;
            println!("user {name}: deleted");
            Ok(())
        }
    }
}

fn audit(cmd: AuditCommand) -> Result<()> {
    let store = strongroom_pkcs11::admin::open_store().map_err(|e| anyhow!("{e}"))?;
    match cmd {
        AuditCommand::Verify => {
            match strongroom_pkcs11::admin::audit_verify(&store).map_err(|e| anyhow!("{e}"))? {
                strongroom_pkcs11::admin::AuditCheck::Intact { entries } => {
                    println!("audit log intact: {entries} entries");
                    Ok(())
                }
                strongroom_pkcs11::admin::AuditCheck::Broken { at_seq } => {
                    bail!("audit log BROKEN at entry {at_seq}: it or the entry before it was changed, removed or reordered")
                }
            }
        }
        AuditCommand::Export => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match strongroom_pkcs11::admin::audit_export(&store, &mut out)
                .map_err(|e| anyhow!("{e}"))?
            {
                Ok(_) => Ok(()),
                Err(seq) => bail!("audit log BROKEN at entry {seq}: not exporting"),
            }
        }
        AuditCommand::Rotate { through } => {
            match strongroom_pkcs11::admin::audit_rotate(&store, through)
                .map_err(|e| anyhow!("{e}"))?
            {
                Ok(()) => {
                    println!(
                        "audit entries up to {through} removed; the chain continues from there"
                    );
                    Ok(())
                }
                Err(seq) => bail!("audit log BROKEN at entry {seq}: not rotating"),
            }
        }
    }
}

fn backup(out: &Path) -> Result<()> {
    let pass = secret_env("STRONGROOM_BACKUP_PASSPHRASE", "backup passphrase")?;
    eprintln!("strongroom: snapshotting the store and sealing it (Argon2id, then AES-256-GCM)...");
    let n = strongroom_pkcs11::admin::backup(out, pass.as_bytes())
        .map_err(|e| anyhow!("backup to {} failed: {e}", out.display()))?;
    println!("backup written: {} ({n} bytes)", out.display());
    Ok(())
}

fn restore(file: &Path) -> Result<()> {
    let pass = secret_env("STRONGROOM_BACKUP_PASSPHRASE", "backup passphrase")?;
    eprintln!(
        "strongroom: checking {} before writing anything...",
        file.display()
    );
    strongroom_pkcs11::admin::restore(file, pass.as_bytes())
        .map_err(|e| anyhow!("restore from {} refused: {e}", file.display()))?;
    println!(
        "restored {} into {}",
        file.display(),
        store_dir()?.display()
    );
    Ok(())
}

/// C_InitToken on the free slot (the last one listed), then C_InitPIN for the
/// default user when STRONGROOM_USER_PIN is set.
fn init(module: Option<&Path>, label: &str) -> Result<()> {
    if label.is_empty() || label.len() > 32 {
        bail!("the label must be 1 to 32 bytes");
    }
    let so_pin = secret_env(
        "STRONGROOM_SO_PIN",
        "security officer PIN for the new token",
    )?;
    let (ctx, _) = load(module)?;
    let free = ctx
        .get_all_slots()?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            anyhow!("no free slot (the module always lists one: is this Strongroom?)")
        })?;
    ctx.init_token(free, &pin(&so_pin), label)
        .map_err(|e| anyhow!("C_InitToken failed: {e}"))?;
    if let Some(user_pin) = env("STRONGROOM_USER_PIN") {
        let session = ctx.open_rw_session(free).context("C_OpenSession")?;
        session
            .login(UserType::So, Some(&pin(&so_pin)))
            .map_err(|e| anyhow!("SO login failed: {e}"))?;
        session
            .init_pin(&pin(&user_pin))
            .map_err(|e| anyhow!("C_InitPIN failed: {e}"))?;
    }
    println!("token {label:?} initialised in slot {}", free.id());
    Ok(())
}
