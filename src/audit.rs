//! The audit log: every management event and every key use, appended to the
//! store as JSON lines chained by MACs (docs/audit.md).
//!
//! The export macro calls [`finish_call`] after each audited function with
//! its return value; the safe layer adds what it knows about the call (key
//! handle and label, mechanism, user) through [`note_key`] and
//! [`note_mechanism`]. Entries are queued in memory and written in batches
//! (256 entries or one second, and at C_Finalize), so appending never puts a
//! durable write on the path of every signature; the batch goes to the store
//! in one transaction that chains it to the newest entry of any process.

use crate::error::Result;
use crate::store::Store;
use parking_lot::Mutex;
use serde::Serialize;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Functions whose every call is audited, successful or not.
const AUDITED: &[&str] = &[
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_Login",
    "C_LoginUser",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_SetAttributeValue",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_EncryptInit",
    "C_DecryptInit",
    "C_SignInit",
    "C_VerifyInit",
    "C_DigestKey",
    "C_MessageEncryptInit",
    "C_MessageDecryptInit",
];

/// Identity and token management: written at once. Every other audited call
/// (key use, key and object life cycle) is batched, so an audit entry never
/// adds a disk flush to a C_WrapKey or a C_SignInit.
const URGENT: &[&str] = &[
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_Login",
    "C_LoginUser",
    "C_Logout",
];

const BATCH: usize = 256;
const MAX_DELAY: Duration = Duration::from_secs(1);

/// One audit record. Never holds a secret: no PIN, no key value, no data.
#[derive(Serialize, Default, Clone)]
pub struct Entry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub pid: u32,
    pub function: &'static str,
    pub rv: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

thread_local! {
    static CONTEXT: RefCell<Entry> = RefCell::new(Entry::default());
    /// Whether the exported call running on this thread is audited: the
    /// `note_*` functions do nothing otherwise, so a C_Sign or a
    /// C_GetAttributeValue pays no allocation for the audit log.
    static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn active() -> bool {
    ACTIVE.with(|a| a.get())
}

/// Records the key a call is about (handle and label).
pub fn note_key(handle: u64, label: &[u8]) {
    if !active() {
        return;
    }
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        if c.key.is_none() {
            c.key = Some(handle);
            c.label = Some(String::from_utf8_lossy(label).into_owned());
        }
    });
}

/// Records the mechanism of a call.
pub fn note_mechanism(ty: u64) {
    if !active() {
        return;
    }
    CONTEXT.with(|c| c.borrow_mut().mechanism = Some(ty));
}

/// Records the slot and user of a call (`user` is only asked for when the
/// call is audited).
pub fn note_actor(slot: u64, user: impl FnOnce() -> Option<String>) {
    if !active() {
        return;
    }
    let user = user();
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        c.slot = Some(slot);
        if user.is_some() {
            c.user = user;
        }
    });
}

/// Starts an exported call: decides whether it is audited and clears the
/// context.
pub fn begin_call(function: &'static str) {
    let audited = AUDITED.contains(&function);
    ACTIVE.with(|a| a.set(audited));
    if audited {
        CONTEXT.with(|c| *c.borrow_mut() = Entry::default());
    }
}

/// Called by the export macro after every exported function.
pub fn finish_call(function: &'static str, rv: u64) {
    if !active() {
        return;
    }
    ACTIVE.with(|a| a.set(false));
    let Ok(m) = crate::module::get() else { return };
    let mut e = CONTEXT.with(|c| std::mem::take(&mut *c.borrow_mut()));
    e.function = function;
    e.rv = rv;
    e.pid = std::process::id();
    e.time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let urgent = URGENT.contains(&function);
    m.audit.push(e, urgent);
}

/// Writes this process's queued entries (at C_Finalize and at process exit,
/// for applications that never call C_Finalize).
pub fn flush_now() {
    if let Ok(m) = crate::module::get() {
        if let Err(e) = m.audit.flush() {
            tracing::error!("audit log write failed: {e}");
        }
    }
}

/// The queue of one process.
pub struct AuditLog {
    store: Arc<Store>,
    queue: Mutex<(Vec<Entry>, Instant)>,
    flushing: Mutex<()>,
}

impl AuditLog {
    pub fn new(store: Arc<Store>) -> AuditLog {
        AuditLog {
            store,
            queue: Mutex::new((Vec::new(), Instant::now())),
            flushing: Mutex::new(()),
        }
    }

    fn push(&self, e: Entry, urgent: bool) {
        let due = {
            let mut q = self.queue.lock();
            q.0.push(e);
            urgent || q.0.len() >= BATCH || q.1.elapsed() >= MAX_DELAY
        };
        if due {
            // One thread writes; the others go on (their entries wait for
            // the next batch rather than for the disk).
            let guard = if urgent {
                Some(self.flushing.lock())
            } else {
                self.flushing.try_lock()
            };
            if let Some(_guard) = guard {
                if let Err(e) = self.flush() {
                    tracing::error!("audit log write failed: {e}");
                }
            }
        }
    }

    /// Writes every queued entry now (also at C_Finalize).
    pub fn flush(&self) -> Result<()> {
        let batch = {
            let mut q = self.queue.lock();
            q.1 = Instant::now();
            std::mem::take(&mut q.0)
        };
        if batch.is_empty() {
            return Ok(());
        }
        let lines: Vec<Vec<u8>> = batch
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap_or_default())
            .collect();
        self.store.append_audit(&lines)
    }
}
