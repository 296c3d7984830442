//! `strongroom keys list` and `strongroom key share|unshare`: what a user
//! sees, and custody (CKA_SR_OWNER / CKA_SR_SHARED_WITH), through PKCS#11.

use anyhow::{anyhow, bail, Context as _, Result};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use std::path::Path;

/// CKA_VENDOR_DEFINED | "SR" | 1 (include/strongroom.h): the owning user.
pub const CKA_SR_OWNER: u64 = 0x8000_0000 | 0x5352_0001;
/// CKA_VENDOR_DEFINED | "SR" | 2: comma-separated users it is shared with.
pub const CKA_SR_SHARED_WITH: u64 = 0x8000_0000 | 0x5352_0002;

pub const PIN_ENV: &str = "STRONGROOM_USER_PIN";

/// The user a PIN logs in as: "name:password" is crypto user `name`, anything
/// else the default user (the module's rule, src/token.rs split_user_pin).
fn pin_user(pin: &str) -> Option<&str> {
    pin.split_once(':')
        .map(|(n, _)| n)
        .filter(|n| !n.is_empty())
}

fn who(pin: &str) -> String {
    match pin_user(pin) {
        Some(n) => format!("user {n}"),
        None => "the default user".to_string(),
    }
}

/// Crypto user names, as the module accepts them: 1-32 of [A-Za-z0-9._-].
pub fn parse_user_name(s: &str) -> std::result::Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err("user names are 1-32 characters of A-Z a-z 0-9 . _ -".to_string())
    }
}

/// A CKA_ID given in hex on the command line.
#[derive(Clone, Debug)]
pub struct HexId(pub Vec<u8>);

pub fn parse_hex(s: &str) -> std::result::Result<HexId, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected an even number of hex digits, e.g. 01 or a1b2".to_string());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect::<std::result::Result<Vec<u8>, String>>()
        .map(HexId)
}

/// The slot with this id, which must hold a token.
pub fn find_slot(ctx: &Pkcs11, slot_id: u64) -> Result<Slot> {
    let slot = ctx
        .get_all_slots()
        .context("C_GetSlotList")?
        .into_iter()
        .find(|s| s.id() == slot_id)
        .ok_or_else(|| anyhow!("no slot {slot_id} (see `strongroom status`)"))?;
    let t = ctx
        .get_token_info(slot)
        .with_context(|| format!("C_GetTokenInfo slot {slot_id}"))?;
    if !t.token_initialized() {
        bail!("slot {slot_id} holds no token (see `strongroom status`; pass --slot N)");
    }
    Ok(slot)
}

/// Opens a session on `slot_id` and logs in with STRONGROOM_USER_PIN.
/// Returns the session and the PIN (to name the user in messages).
fn login(ctx: &Pkcs11, slot_id: u64, rw: bool) -> Result<(Session, String)> {
    let pin = crate::secret_env(
        PIN_ENV,
        "PIN to log in with (`name:password` for a crypto user, else the default user's PIN)",
    )?;
    let slot = find_slot(ctx, slot_id)?;
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .with_context(|| format!("C_OpenSession slot {slot_id}"))?;
    let user = who(&pin);
    session
        .login(UserType::User, Some(&crate::pin(&pin)))
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::PinIncorrect, _) => {
                anyhow!("login as {user} failed: wrong password in {PIN_ENV} (CKR_PIN_INCORRECT)")
            }
            CkError::Pkcs11(RvError::PinLocked, _) => anyhow!(
                "{user} is locked after too many failed logins (CKR_PIN_LOCKED): \
                 the SO unlocks it with `strongroom user unlock NAME`"
            ),
            CkError::Pkcs11(RvError::UserPinNotInitialized, _) => anyhow!(
                "the token in slot {slot_id} has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED)"
            ),
            e => anyhow::Error::new(e).context(format!("C_Login as {user}")),
        })?;
    Ok((session, pin))
}

/// What `keys list` shows of one object (never its value).
struct Row {
    handle: ObjectHandle,
    class: String,
    key_type: String,
    label: String,
    id: String,
    owner: Option<String>,
    shared: Vec<String>,
    flags: Vec<&'static str>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn shared_list(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn strip(s: String, prefix: &str) -> String {
    s.strip_prefix(prefix).map(str::to_string).unwrap_or(s)
}

const ROW_ATTRS: [AttributeType; 12] = [
    AttributeType::Class,
    AttributeType::KeyType,
    AttributeType::Label,
    AttributeType::Id,
    AttributeType::VendorDefined(CKA_SR_OWNER),
    AttributeType::VendorDefined(CKA_SR_SHARED_WITH),
    AttributeType::Token,
    AttributeType::Private,
    AttributeType::Sensitive,
    AttributeType::Extractable,
    AttributeType::Local,
    AttributeType::Modifiable,
];

fn read_row(session: &Session, handle: ObjectHandle) -> Result<Row> {
    // Attributes an object does not have (a data object's CKA_KEY_TYPE) are
    // left out by get_attributes.
    let attrs = session
        .get_attributes(handle, &ROW_ATTRS)
        .with_context(|| format!("C_GetAttributeValue handle {handle}"))?;
    let mut row = Row {
        handle,
        class: "?".into(),
        key_type: "-".into(),
        label: String::new(),
        id: String::new(),
        owner: None,
        shared: Vec::new(),
        flags: Vec::new(),
    };
    for a in attrs {
        match a {
            Attribute::Class(c) => row.class = strip(c.to_string(), "CKO_"),
            Attribute::KeyType(k) => row.key_type = strip(k.to_string(), "CKK_"),
            Attribute::Label(l) => row.label = text(&l),
            Attribute::Id(i) => row.id = crate::hex(&i),
            Attribute::VendorDefined((AttributeType::VendorDefined(t), v)) if t == CKA_SR_OWNER => {
                row.owner = Some(text(&v))
            }
            Attribute::VendorDefined((AttributeType::VendorDefined(t), v))
                if t == CKA_SR_SHARED_WITH =>
            {
                row.shared = shared_list(&v)
            }
            Attribute::Token(true) => row.flags.push("token"),
            Attribute::Private(true) => row.flags.push("private"),
            Attribute::Sensitive(true) => row.flags.push("sensitive"),
            Attribute::Extractable(true) => row.flags.push("extractable"),
            Attribute::Local(true) => row.flags.push("local"),
            Attribute::Modifiable(true) => row.flags.push("modifiable"),
            _ => {}
        }
    }
    Ok(row)
}

fn owner_text(o: &Option<String>) -> String {
    match o.as_deref() {
        None => "-".into(),
        Some("") => "(default)".into(),
        Some(o) => o.into(),
    }
}

fn or_dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

pub fn list(module: Option<&Path>, slot_id: u64) -> Result<()> {
    let (ctx, _) = crate::load(module)?;
    let (session, pin) = login(&ctx, slot_id, false)?;
    let handles = session.find_objects(&[]).context("C_FindObjects")?;
    let mut rows = Vec::with_capacity(handles.len());
    for h in handles {
        rows.push(read_row(&session, h)?);
    }
    let header = [
        "HANDLE",
        "CLASS",
        "KEY TYPE",
        "LABEL",
        "ID",
        "OWNER",
        "SHARED WITH",
        "FLAGS",
    ];
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.handle.to_string(),
                r.class.clone(),
                r.key_type.clone(),
                or_dash(r.label.clone()),
                or_dash(r.id.clone()),
                owner_text(&r.owner),
                or_dash(r.shared.join(",")),
                or_dash(r.flags.join(",")),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &table {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(&header.map(String::from));
    for r in &table {
        line(r);
    }
    println!(
        "{} object{} visible to {} in slot {slot_id}",
        table.len(),
        if table.len() == 1 { "" } else { "s" },
        who(&pin)
    );
    let _ = session.logout();
    Ok(())
}

/// `key share` (add = true) and `key unshare` (add = false).
pub fn share(
    module: Option<&Path>,
    slot_id: u64,
    label: &str,
    id: Option<&[u8]>,
    with: &str,
    add: bool,
) -> Result<()> {
    if add {
        check_user_exists(slot_id, with)?;
    }
    let (ctx, _) = crate::load(module)?;
    let (session, pin) = login(&ctx, slot_id, true)?;
    let mut template = vec![Attribute::Label(label.as_bytes().to_vec())];
    if let Some(id) = id {
        template.push(Attribute::Id(id.to_vec()));
    }
    let found = session.find_objects(&template).context("C_FindObjects")?;
    let what = match id {
        Some(id) => format!("labelled \"{label}\" with id {}", crate::hex(id)),
        None => format!("labelled \"{label}\""),
    };
    let handle = match found.as_slice() {
        [] => bail!(
            "no object {what} is visible to {} in slot {slot_id} (see `strongroom keys list`)",
            who(&pin)
        ),
        [h] => *h,
        many => {
            let mut ids = Vec::new();
            for h in many {
                let r = read_row(&session, *h)?;
                ids.push(format!("handle {} id {}", h, or_dash(r.id)));
            }
            bail!(
                "{} objects are {what} ({}): pass --id HEX to pick one",
                many.len(),
                ids.join(", ")
            )
        }
    };
    let row = read_row(&session, handle)?;
    let owner = owner_text(&row.owner);
    if row.owner.as_deref() == Some(with) {
        bail!("{with} owns \"{label}\": there is nothing to share");
    }
    let mut list = row.shared.clone();
    let present = list.iter().any(|u| u == with);
    match (add, present) {
        (true, false) => list.push(with.to_string()),
        (false, true) => list.retain(|u| u != with),
        // Nothing to change, but still written: the module, not this tool,
        // decides whether the caller may share (a non-owner must fail).
        _ => {}
    }
    let value = list.join(",").into_bytes();
    session
        .update_attributes(
            handle,
            &[Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_SR_SHARED_WITH),
                value,
            ))],
        )
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::ActionProhibited, _) => anyhow!(
                "only the owner can share a key: \"{label}\" is owned by {owner}, \
                 you are logged in as {} (CKR_ACTION_PROHIBITED)",
                who(&pin)
            ),
            e => anyhow::Error::new(e).context(format!(
                "C_SetAttributeValue CKA_SR_SHARED_WITH of \"{label}\" (handle {handle})"
            )),
        })?;
    // Read it back: what the module stored is what counts.
    let after = read_row(&session, handle)?;
    let ok = after.shared.iter().any(|u| u == with) == add;
    if !ok {
        bail!(
            "the module accepted the change but CKA_SR_SHARED_WITH of \"{label}\" reads back as \"{}\"",
            after.shared.join(",")
        );
    }
    let change = match (add, present) {
        (true, true) => "was already shared with",
        (true, false) => "now shared with",
        (false, true) => "no longer shared with",
        (false, false) => "was not shared with",
    };
    println!(
        "\"{label}\" (handle {handle}, owner {owner}) {change} {with}; shared with: {}",
        or_dash(after.shared.join(","))
    );
    let _ = session.logout();
    Ok(())
}

/// Refuses to share with a name that is no user of the token: a typo would
/// otherwise grant a future user of that name access.
fn check_user_exists(slot_id: u64, name: &str) -> Result<()> {
    let store = strongroom_pkcs11::admin::open_store().map_err(|e| anyhow!("{e}"))?;
    let users = strongroom_pkcs11::admin::list_users(&store).map_err(|e| anyhow!("{e}"))?;
    let exists = users
        .iter()
        .any(|u| u.slot as u64 == slot_id && u.name == name && u.name != "so" && u.name != "user");
    if !exists {
        bail!(
            "the token in slot {slot_id} has no crypto user {name} \
             (see `strongroom user list`; create it with `strongroom user add {name}`)"
        );
    }
    Ok(())
}
