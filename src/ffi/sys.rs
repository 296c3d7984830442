//! Small OS facilities that need `unsafe`: the shared change counter (a
//! memory-mapped file every process of an installation maps), the process id
//! and fork detection.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, Result};

const MAP_LEN: usize = 4096;

/// A `u64` counter shared by every process that maps the same file. Writers
/// bump it after each commit; readers compare it with the value they last saw
/// to learn, with one atomic load, whether another process changed the store.
pub struct SharedCounter {
    ptr: *mut libc::c_void,
}

// SAFETY: the mapping is only ever accessed through an `AtomicU64`, which is
// safe to share between threads; the pointer itself is never written.
unsafe impl Send for SharedCounter {}
// SAFETY: as above, all access goes through atomic operations.
unsafe impl Sync for SharedCounter {}

impl SharedCounter {
    /// Maps (creating if needed, mode 0600) the counter file at `path`.
    pub fn open(path: &Path) -> Result<SharedCounter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        if file.metadata()?.len() < MAP_LEN as u64 {
            file.set_len(MAP_LEN as u64)?;
        }
        // SAFETY: we map MAP_LEN bytes of a file we just sized to at least
        // MAP_LEN; the fd stays valid for the call and the mapping outlives it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::device(format!(
                "mmap {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(SharedCounter { ptr })
    }

    fn atomic(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page aligned (so 8-byte aligned), at least 8
        // bytes long, lives as long as `self`, and is only accessed atomically.
        unsafe { &*(self.ptr as *const AtomicU64) }
    }

    pub fn load(&self) -> u64 {
        self.atomic().load(Ordering::Acquire)
    }

    pub fn bump(&self) {
        self.atomic().fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from a successful mmap of MAP_LEN bytes and no
        // reference to it outlives `self`.
        unsafe {
            libc::munmap(self.ptr, MAP_LEN);
        }
    }
}

fn coarse_clock_ms(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
}

/// Milliseconds of a monotonic clock, at tick resolution (1-4 ms): a few
/// nanoseconds a read, for checks on every call that need no precision.
pub fn coarse_monotonic_ms() -> u64 {
    coarse_clock_ms(libc::CLOCK_MONOTONIC_COARSE)
}

/// Milliseconds since the Unix epoch, at tick resolution (1-4 ms).
pub fn coarse_unix_ms() -> u64 {
    coarse_clock_ms(libc::CLOCK_REALTIME_COARSE)
}

/// This process's id, cached (glibc makes `getpid` a system call); 0 means
/// not read yet, and the fork handler resets it in the child.
static PID: AtomicU32 = AtomicU32::new(0);

/// The calling process's id.
pub fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::SeqCst);
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Increases in a child after every `fork()`; state made under another
/// generation belongs to the parent.
pub fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::SeqCst)
}

extern "C" fn at_exit() {
    // Never unwind into libc's exit path.
    let _ = std::panic::catch_unwind(crate::audit::flush_now);
}

/// Installs the fork handler and the exit-time audit flush once per process.
pub fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering a handler that only touches an atomic is
        // async-signal-safe, as pthread_atfork child handlers must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
        // SAFETY: `at_exit` is a plain extern "C" fn with no arguments that
        // catches every panic; libc calls it once at normal process exit.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}
