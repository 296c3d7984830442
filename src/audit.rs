//! The audit log: every management event and every key use, appended to the
//! store as JSON lines chained by MACs (docs/audit.md).
//!
//! The export macro calls [`finish_call`] after each audited function with
//! its return value (which functions are audited, and how, is decided at
//! compile time by [`class_of`]); the safe layer adds what it knows about the
//! call (key handle and label, mechanism, user) through [`note_key`],
//! [`note_mechanism`] and [`note_actor`]. Entries are queued in memory and
//! written in batches (256 entries or one second, and at C_Finalize), so
//! appending never puts a durable write on the path of every signature; the
//! batch goes to the store in one transaction that chains it to the newest
//! entry of any process. Identical key uses within a batch (same function,
//! result, user, key and mechanism) become one entry with a count, so a
//! thread signing 200,000 times a second writes a few lines, not 200,000.

use crate::error::Result;
use crate::handle_map::Padded;
use crate::store::Store;
use parking_lot::Mutex;
use serde::Serialize;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How an exported function is audited; decided at compile time from its
/// name by [`class_of`], so a call that is not audited pays nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    /// Not audited (C_Sign, C_GetAttributeValue, C_FindObjects, ...).
    None,
    /// Identity and token management: written at once.
    Urgent,
    /// Key and object life cycle: one entry per call, batched.
    LifeCycle,
    /// A key use: batched, and identical uses within one batch are counted
    /// in one entry (`count`, `time_ms` of the first, `last_ms` of the last).
    KeyUse,
}

/// Identity and token management: written at once.
const URGENT: &[&str] = &[
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_Login",
    "C_LoginUser",
    "C_Logout",
];

/// Key and object life cycle.
const LIFE_CYCLE: &[&str] = &[
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_SetAttributeValue",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_UnwrapKey",
    "C_DeriveKey",
];

/// Key uses: recorded at the start of each operation (C_*Init) and at each
/// C_WrapKey.
const KEY_USE: &[&str] = &[
    "C_WrapKey",
    "C_EncryptInit",
    "C_DecryptInit",
    "C_SignInit",
    "C_VerifyInit",
    "C_DigestKey",
    "C_MessageEncryptInit",
    "C_MessageDecryptInit",
];

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn listed(name: &str, list: &[&str]) -> bool {
    let mut i = 0;
    while i < list.len() {
        if same(name, list[i]) {
            return true;
        }
        i += 1;
    }
    false
}

/// The audit class of an exported function (evaluated in a `const` by the
/// export macro).
pub const fn class_of(function: &str) -> Class {
    if listed(function, URGENT) {
        Class::Urgent
    } else if listed(function, LIFE_CYCLE) {
        Class::LifeCycle
    } else if listed(function, KEY_USE) {
        Class::KeyUse
    } else {
        Class::None
    }
}

/// A batch is written when it holds this many entries (distinct key uses
/// count once) or is this old.
const BATCH: usize = 256;
const MAX_DELAY_MS: u64 = 1000;
/// Key-use counters are kept in this many shards, so threads do not meet on
/// one lock.
const SHARDS: usize = 8;
/// How many of a shard's newest entries a key use is compared with.
const RECENT_USES: usize = 16;

/// One audit record. Never holds a secret: no PIN, no key value, no data.
#[derive(Serialize, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Milliseconds since the Unix epoch (of the first use, for a counted
    /// key use).
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
    /// How many identical key uses this entry stands for (absent = 1).
    #[serde(skip_serializing_if = "is_one")]
    pub count: u64,
    /// Time of the last of them (absent when `count` is 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<u64>,
}

fn is_one(n: &u64) -> bool {
    *n <= 1
}

fn same_opt(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => crate::same_str(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// What the running call has told the audit log so far. The strings keep
/// their capacity from call to call: recording a key use allocates nothing
/// once a thread has seen its longest label.
#[derive(Default)]
struct Context {
    slot: Option<u64>,
    user: String,
    has_user: bool,
    mechanism: Option<u64>,
    key: Option<u64>,
    label: String,
}

impl Context {
    fn clear(&mut self) {
        self.slot = None;
        self.user.clear();
        self.has_user = false;
        self.mechanism = None;
        self.key = None;
        self.label.clear();
    }

    fn same_use(&self, e: &Entry) -> bool {
        e.slot == self.slot
            && e.mechanism == self.mechanism
            && e.key == self.key
            && same_opt(
                e.user.as_deref(),
                self.has_user.then_some(self.user.as_str()),
            )
            && same_opt(e.label.as_deref(), self.key.map(|_| self.label.as_str()))
    }

    fn entry(&self, function: &'static str, rv: u64, time_ms: u64) -> Entry {
        Entry {
            time_ms,
            pid: crate::ffi::sys::pid(),
            function,
            rv,
            slot: self.slot,
            user: self.has_user.then(|| self.user.clone()),
            mechanism: self.mechanism,
            key: self.key,
            label: self.key.map(|_| self.label.clone()),
            count: 1,
            last_ms: None,
        }
    }
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
    /// Whether the exported call running on this thread is audited: the
    /// `note_*` functions do nothing otherwise, so a C_Sign or a
    /// C_GetAttributeValue pays no allocation for the audit log.
    static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The running call's class: the export's, unless the call changed it
    /// ([`count_as_key_use`]).
    static CLASS: std::cell::Cell<Class> = const { std::cell::Cell::new(Class::None) };
    /// This thread's key-use shard.
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
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
            c.label.clear();
            c.label.push_str(&String::from_utf8_lossy(label));
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

/// Records the slot and user of a call. `user` is only called when the call
/// is audited: it writes the user's name into the buffer it is given and
/// says whether there is one.
pub fn note_actor(slot: u64, user: impl FnOnce(&mut String) -> bool) {
    if !active() {
        return;
    }
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        c.slot = Some(slot);
        let mut name = std::mem::take(&mut c.user);
        name.clear();
        if user(&mut name) {
            c.has_user = true;
        }
        c.user = name;
    });
}

/// Marks the running call as not a key use after all (a successful
/// C_WrapKey length query exports nothing): it leaves no entry.
pub fn not_a_use() {
    ACTIVE.with(|a| a.set(false));
}

/// Records the running C_UnwrapKey as a use of the unwrapping key, counted
/// like a decryption, instead of one life-cycle entry: for unwraps whose new
/// key is a session object (it ends with its session; a key service unwraps
/// one per request). An unwrap that makes a token object stays an entry of
/// its own.
pub fn count_as_key_use() {
    if active() {
        CLASS.with(|c| {
            if c.get() == Class::LifeCycle {
                c.set(Class::KeyUse)
            }
        });
    }
}

/// Starts an exported call: clears the context of an audited call.
pub fn begin_call(class: Class) {
    let audited = class != Class::None;
    ACTIVE.with(|a| a.set(audited));
    CLASS.with(|c| c.set(class));
    if audited {
        CONTEXT.with(|c| c.borrow_mut().clear());
    }
}

/// Called by the export macro after every exported function.
pub fn finish_call(function: &'static str, class: Class, rv: u64) {
    if class == Class::None || !active() {
        return;
    }
    ACTIVE.with(|a| a.set(false));
    let class = CLASS.with(|c| c.get());
    let Ok(m) = crate::module::get() else { return };
    let now = now_ms();
    CONTEXT.with(|c| {
        let c = c.borrow();
        match class {
            Class::KeyUse => m.audit.count_use(&c, function, rv, now),
            _ => m
                .audit
                .push(c.entry(function, rv, now), class == Class::Urgent, now),
        }
    });
}

/// Entry times have the resolution of the coarse clock (1-4 ms): reading it
/// costs a few nanoseconds on every key use, the precise clock ~20.
fn now_ms() -> u64 {
    match crate::ffi::sys::coarse_unix_ms() {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        ms => ms,
    }
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
    /// Life-cycle and management entries, in call order.
    queue: Mutex<Vec<Entry>>,
    /// Counted key uses, sharded by thread, one cache line pair each (two
    /// shards on one line would make their threads take turns with it).
    uses: [Padded<Mutex<Vec<Entry>>>; SHARDS],
    /// Entries waiting in `queue` and `uses` (a hint for batching).
    pending: AtomicUsize,
    /// When the queued entries are due at the latest (ms since the epoch).
    due_ms: AtomicU64,
    flushing: Mutex<()>,
}

impl AuditLog {
    pub fn new(store: Arc<Store>) -> AuditLog {
        AuditLog {
            store,
            queue: Mutex::new(Vec::new()),
            uses: std::array::from_fn(|_| Padded(Mutex::new(Vec::new()))),
            pending: AtomicUsize::new(0),
            due_ms: AtomicU64::new(0),
            flushing: Mutex::new(()),
        }
    }

    /// Queues one entry; `urgent` writes it (and everything queued) now.
    fn push(&self, e: Entry, urgent: bool, now: u64) {
        self.queue.lock().push(e);
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.queued(urgent, now);
    }

    /// Counts a key use: an identical use already in this batch gets its
    /// count raised, otherwise the use becomes a new entry.
    fn count_use(&self, c: &Context, function: &'static str, rv: u64, now: u64) {
        let shard = SHARD.with(|s| *s);
        {
            let mut uses = self.uses[shard].0.lock();
            // Newest first, and only the last few: a hot loop finds its entry
            // at once, and a thread cycling through many keys does not scan
            // the whole batch on every call (it gets more entries instead).
            if let Some(e) = uses
                .iter_mut()
                .rev()
                .take(RECENT_USES)
                .find(|e| e.function == function && e.rv == rv && c.same_use(e))
            {
                e.count += 1;
                e.last_ms = Some(now);
                drop(uses);
                return self.queued(false, now);
            }
            uses.push(c.entry(function, rv, now));
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.queued(false, now)
    }

    /// Writes the batch when it is due. One thread writes; the others go on
    /// (their entries wait for the next batch rather than for the disk).
    fn queued(&self, urgent: bool, now: u64) {
        let due = self.due_ms.load(Ordering::Relaxed);
        if due == 0 {
            // First entry of a batch: it is due one delay from now.
            let _ = self.due_ms.compare_exchange(
                0,
                now + MAX_DELAY_MS,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        let full = self.pending.load(Ordering::Relaxed) >= BATCH;
        if !(urgent || full || (due != 0 && now >= due)) {
            return;
        }
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

    /// Writes every queued entry now (also at C_Finalize).
    pub fn flush(&self) -> Result<()> {
        self.due_ms.store(0, Ordering::Relaxed);
        self.pending.store(0, Ordering::Relaxed);
        let mut batch = std::mem::take(&mut *self.queue.lock());
        for shard in &self.uses {
            batch.append(&mut shard.0.lock());
        }
        if batch.is_empty() {
            return Ok(());
        }
        // Entries of different threads, in time order.
        batch.sort_by_key(|e| e.time_ms);
        let lines: Vec<Vec<u8>> = batch
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap_or_default())
            .collect();
        self.store.append_audit(&lines)
    }
}
