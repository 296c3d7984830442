//! Ring 3: black-box tests through the built `libstrongroom_pkcs11.so`, loaded
//! with the `cryptoki` crate as an application would.
//!
//! `Pkcs11::initialize` sets process-global module state, so every test that
//! touches the module runs it in child processes: the test binary re-executes
//! itself with `<test name> --exact` and a role in `SR_ROLE`. Without a role a
//! test is the orchestrator: it makes the store, starts the children, checks
//! the files on disk and asserts on the children's exit status and output.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

const ROLE: &str = "SR_ROLE";
const SO_PIN: &str = "so-pin-blackbox";
const USER_PIN: &str = "user-pin-blackbox";

// ----- process plumbing ---------------------------------------------------------

/// The cdylib cargo built next to this test binary (`target/<profile>/deps`).
fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let name = "libstrongroom_pkcs11.so";
    [
        deps.join(name),
        deps.parent().expect("profile dir").join(name),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("{name} not found next to {}", exe.display()))
}

/// The role this process plays, when it is a child.
fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A fresh store location: nested, and not yet existing.
fn new_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("nested").join("dirs").join("store");
    assert!(!store.exists());
    (tmp, store)
}

/// A child re-running `test` of this binary in `role` on `store`.
fn child(test: &str, role: &str, store: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("STRONGROOM_STORE", store)
        .env("STRONGROOM_KDF_MEMORY_KIB", "64")
        .env("STRONGROOM_KDF_ITERATIONS", "1")
        .env_remove("STRONGROOM_CONF")
        .stdin(Stdio::null());
    c
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that the child exited 0 having run exactly one test (a wrong
/// test name would otherwise run nothing and "pass").
fn check_child(out: &Output) -> String {
    assert!(out.status.success(), "child failed: {}", describe(out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ran_one(&stdout);
    stdout
}

fn assert_ran_one(stdout: &str) {
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child ran no test:\n{stdout}"
    );
}

/// Runs a child to completion and asserts it passed; returns its stdout.
fn run_ok(cmd: &mut Command) -> String {
    check_child(&cmd.output().expect("spawn child"))
}

fn wait_ok(child: Child) -> String {
    check_child(&child.wait_with_output().expect("wait child"))
}

/// Waits for a child whose stdout is being read through `out`.
fn wait_rest(mut child: Child, mut out: BufReader<ChildStdout>) {
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read child stdout");
    let status = child.wait().expect("wait child");
    assert!(status.success(), "child failed: {status:?}\n{rest}");
    assert_ran_one(&rest);
}

/// Reads the child's stdout until a line containing `prefix`; returns the
/// rest of that line.
fn wait_line(r: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "child closed stdout before printing {prefix:?}");
        // libtest prints "test <name> ... " without a newline before the
        // test's own output, so the marker may be mid-line.
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].trim().to_string();
        }
    }
}

/// The value after `key` on a line of a child's stdout.
fn reported(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.find(key).map(|at| l[at + key.len()..].trim().to_string()))
        .unwrap_or_else(|| panic!("child did not report {key:?}:\n{stdout}"))
}

/// Waits for a line on stdin (a go-ahead from the orchestrator).
fn wait_stdin() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read stdin");
}

// ----- module helpers (children only) -------------------------------------------

fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

fn module() -> Pkcs11 {
    let p = Pkcs11::new(lib_path()).expect("load module");
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p
}

/// Initialises a token in the free slot with SO and user PINs.
fn setup_token(p: &Pkcs11) -> Slot {
    let slots = p.get_all_slots().expect("slots");
    assert_eq!(slots.len(), 1, "a new store has exactly one (free) slot");
    let slot = slots[0];
    p.init_token(slot, &pin(SO_PIN), "blackbox")
        .expect("C_InitToken");
    let s = p.open_rw_session(slot).expect("session");
    s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    s.close().expect("close");
    slot
}

fn the_token(p: &Pkcs11) -> Slot {
    let slots = p.get_slots_with_initialized_token().expect("slots");
    assert_eq!(slots.len(), 1, "exactly one initialised token");
    slots[0]
}

fn user_session(p: &Pkcs11, slot: Slot) -> Session {
    let s = p.open_rw_session(slot).expect("session");
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("user login");
    s
}

fn data(label: &str, value: &[u8], private: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(private),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

fn aes(label: &str, value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

fn by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .expect("find")
}

fn one(s: &Session, label: &str) -> ObjectHandle {
    let found = by_label(s, label);
    assert_eq!(found.len(), 1, "objects labelled {label:?}");
    found[0]
}

fn label_of(s: &Session, o: ObjectHandle) -> Result<Vec<u8>, Error> {
    match s.get_attributes(o, &[AttributeType::Label])?.as_slice() {
        [Attribute::Label(l)] => Ok(l.clone()),
        other => panic!("unexpected attributes {other:?}"),
    }
}

fn value_of(s: &Session, o: ObjectHandle) -> Option<Vec<u8>> {
    s.get_attributes(o, &[AttributeType::Value])
        .expect("get value")
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
}

fn rv_of<T: std::fmt::Debug>(r: Result<T, Error>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

// ----- lifecycle and persistence ------------------------------------------------------

#[test]
fn lifecycle_and_persistence() {
    const TEST: &str = "lifecycle_and_persistence";
    match role().as_deref() {
        Some("create") => {
            let p = module();
            let slot = setup_token(&p);
            let info = p.get_token_info(slot).expect("token info");
            assert_eq!(info.label(), "blackbox");
            assert!(info.user_pin_initialized() && info.token_initialized());
            let s = user_session(&p, slot);
            s.create_object(&data("persist-data", b"persisted value", true))
                .expect("data");
            let mut key = aes("persist-key", &[0x5a; 32]);
            key.push(Attribute::Id(b"key-id".to_vec()));
            let k = s.create_object(&key).expect("key");
            let mut eph = data("ephemeral", b"x", false);
            eph[1] = Attribute::Token(false);
            s.create_object(&eph).expect("session object");
            let doomed = s
                .create_object(&data("doomed", b"x", false))
                .expect("doomed");
            assert_eq!(by_label(&s, "doomed"), vec![doomed]);
            s.destroy_object(doomed).expect("destroy");
            assert!(by_label(&s, "doomed").is_empty());
            // The key is sensitive: cryptoki leaves the value out.
            assert_eq!(value_of(&s, k), None);
            assert_eq!(
                value_of(&s, one(&s, "persist-data")).as_deref(),
                Some(&b"persisted value"[..])
            );
        }
        Some("verify") => {
            let p = module();
            let slot = the_token(&p);
            assert_eq!(p.get_token_info(slot).expect("info").label(), "blackbox");
            let s = p.open_ro_session(slot).expect("session");
            // Private objects stay hidden until the user logs in.
            assert!(by_label(&s, "persist-key").is_empty());
            assert!(by_label(&s, "persist-data").is_empty());
            s.login(UserType::User, Some(&pin(USER_PIN)))
                .expect("login");
            let d = one(&s, "persist-data");
            assert_eq!(value_of(&s, d).as_deref(), Some(&b"persisted value"[..]));
            let k = one(&s, "persist-key");
            let attrs = s
                .get_attributes(
                    k,
                    &[
                        AttributeType::ValueLen,
                        AttributeType::Id,
                        AttributeType::KeyType,
                    ],
                )
                .expect("key attributes");
            assert!(attrs.contains(&Attribute::ValueLen(32.into())), "{attrs:?}");
            assert!(
                attrs.contains(&Attribute::Id(b"key-id".to_vec())),
                "{attrs:?}"
            );
            assert!(
                attrs.contains(&Attribute::KeyType(KeyType::AES)),
                "{attrs:?}"
            );
            assert_eq!(value_of(&s, k), None, "still sensitive after reload");
            assert!(
                by_label(&s, "ephemeral").is_empty(),
                "session objects are not persisted"
            );
            assert!(
                by_label(&s, "doomed").is_empty(),
                "destroyed objects stay destroyed"
            );
            assert_eq!(s.find_objects(&[]).expect("find all").len(), 2);
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            run_ok(&mut child(TEST, "create", &store));
            let meta = std::fs::metadata(&store).expect("store dir was created");
            assert!(meta.is_dir());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700, "store dir mode");
            assert!(store.join("strongroom.db").exists());
            run_ok(&mut child(TEST, "verify", &store));
        }
    }
}

// ----- several processes at once ------------------------------------------------------

const WRITERS: usize = 4;
const PER_WRITER: usize = 50;

#[test]
fn concurrent_writers() {
    const TEST: &str = "concurrent_writers";
    match role().as_deref() {
        Some("init") => {
            setup_token(&module());
        }
        Some("write") => {
            let w: usize = std::env::var("SR_WRITER")
                .expect("SR_WRITER")
                .parse()
                .expect("writer number");
            let p = module();
            let s = user_session(&p, the_token(&p));
            for j in 0..PER_WRITER {
                let label = format!("w{w}-{j}");
                s.create_object(&data(&label, label.as_bytes(), j % 2 == 0))
                    .expect("create");
            }
        }
        Some("count") => {
            let p = module();
            let s = user_session(&p, the_token(&p));
            let all = s
                .find_objects(&[Attribute::Class(ObjectClass::DATA)])
                .expect("find by class");
            assert_eq!(all.len(), WRITERS * PER_WRITER);
            for w in 0..WRITERS {
                for j in 0..PER_WRITER {
                    let label = format!("w{w}-{j}");
                    let o = one(&s, &label);
                    assert_eq!(value_of(&s, o).as_deref(), Some(label.as_bytes()));
                }
            }
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            run_ok(&mut child(TEST, "init", &store));
            let writers: Vec<Child> = (0..WRITERS)
                .map(|w| {
                    child(TEST, "write", &store)
                        .env("SR_WRITER", w.to_string())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn writer")
                })
                .collect();
            for w in writers {
                wait_ok(w);
            }
            run_ok(&mut child(TEST, "count", &store));
        }
    }
}

#[test]
fn live_processes_see_each_others_changes() {
    const TEST: &str = "live_processes_see_each_others_changes";
    match role().as_deref() {
        Some("init") => {
            let p = module();
            let s = user_session(&p, setup_token(&p));
            s.create_object(&data("mutable", b"v1", false))
                .expect("mutable");
            s.create_object(&data("gone", b"v1", true)).expect("gone");
        }
        Some("reader") => {
            let p = module();
            let s = user_session(&p, the_token(&p));
            assert!(by_label(&s, "shared").is_empty());
            // Read (and so cache) the objects the writer will change.
            let m = one(&s, "mutable");
            let g = one(&s, "gone");
            assert_eq!(label_of(&s, m).expect("label"), b"mutable");
            assert_eq!(value_of(&s, g).as_deref(), Some(&b"v1"[..]));
            println!("@READY");
            wait_stdin();
            // No restart, no re-login: the writer's changes are visible.
            let k = one(&s, "shared");
            let attrs = s
                .get_attributes(k, &[AttributeType::ValueLen])
                .expect("attrs");
            assert_eq!(attrs, vec![Attribute::ValueLen(16.into())]);
            assert_eq!(label_of(&s, m).expect("label"), b"mutated");
            assert_eq!(rv_of(label_of(&s, g)), RvError::ObjectHandleInvalid);
            assert!(by_label(&s, "gone").is_empty());
            println!("@SEEN");
        }
        Some("writer") => {
            let p = module();
            let s = user_session(&p, the_token(&p));
            s.create_object(&aes("shared", &[7; 16]))
                .expect("create shared key");
            let m = one(&s, "mutable");
            s.update_attributes(m, &[Attribute::Label(b"mutated".to_vec())])
                .expect("relabel");
            s.destroy_object(one(&s, "gone")).expect("destroy");
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            run_ok(&mut child(TEST, "init", &store));
            let mut reader = child(TEST, "reader", &store)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn reader");
            let mut out = BufReader::new(reader.stdout.take().expect("stdout"));
            wait_line(&mut out, "@READY");
            // The reader is alive and initialised while the writer runs.
            run_ok(&mut child(TEST, "writer", &store));
            let mut stdin = reader.stdin.take().expect("stdin");
            stdin.write_all(b"GO\n").expect("write go");
            drop(stdin);
            wait_line(&mut out, "@SEEN");
            wait_rest(reader, out);
        }
    }
}

// ----- fork -----------------------------------------------------------------------------

/// Runs in the forked child; returns its exit code (0 = every check passed).
fn after_fork(p: &Pkcs11, parent_session: &Session) -> i32 {
    // The child inherited the parent's memory but not its initialisation.
    match parent_session.get_session_info() {
        Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
        other => {
            eprintln!("fork child: session info through the parent's handle gave {other:?}");
            return 10;
        }
    }
    match parent_session.find_objects(&[]) {
        Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
        other => {
            eprintln!("fork child: find through the parent's handle gave {other:?}");
            return 11;
        }
    }
    if let Err(e) = p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        eprintln!("fork child: C_Initialize: {e}");
        return 12;
    }
    let s = match p
        .get_slots_with_initialized_token()
        .map(|s| s[0])
        .and_then(|slot| p.open_rw_session(slot))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fork child: open session: {e}");
            return 13;
        }
    };
    if let Err(e) = s.login(UserType::User, Some(&pin(USER_PIN))) {
        eprintln!("fork child: login: {e}");
        return 14;
    }
    match s.find_objects(&[Attribute::Label(b"before-fork".to_vec())]) {
        Ok(v) if v.len() == 1 => {}
        other => {
            eprintln!("fork child: find before-fork gave {other:?}");
            return 15;
        }
    }
    if let Err(e) = s.create_object(&data("from-child", b"child", true)) {
        eprintln!("fork child: create: {e}");
        return 16;
    }
    0
}

#[test]
fn fork_child_must_initialize_again() {
    const TEST: &str = "fork_child_must_initialize_again";
    match role().as_deref() {
        Some("fork") => {
            let p = module();
            let slot = setup_token(&p);
            let s = user_session(&p, slot);
            s.create_object(&data("before-fork", b"parent", true))
                .expect("create");
            std::io::stdout().flush().expect("flush");
            std::io::stderr().flush().expect("flush");
            // SAFETY: this process runs one test on one thread
            // (--test-threads=1); the child only calls into the module and
            // leaves with _exit, never returning into the test harness.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let code =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| after_fork(&p, &s)))
                        .unwrap_or(99);
                // SAFETY: ends the forked child without running destructors
                // that belong to the parent's state (sessions, the library).
                unsafe { libc::_exit(code) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(waited, pid);
            assert!(
                libc::WIFEXITED(status),
                "fork child did not exit normally: {status:#x}"
            );
            assert_eq!(
                libc::WEXITSTATUS(status),
                0,
                "fork child failed a check (see stderr)"
            );
            // The parent's state is untouched by the child's C_Initialize.
            assert_eq!(
                s.get_session_info().expect("parent session").slot_id(),
                slot
            );
            one(&s, "before-fork");
            assert_eq!(
                value_of(&s, one(&s, "from-child")).as_deref(),
                Some(&b"child"[..])
            );
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            run_ok(&mut child(TEST, "fork", &store));
        }
    }
}

// ----- crash and damage -------------------------------------------------------------------

#[test]
fn killed_writer_leaves_a_usable_store() {
    const TEST: &str = "killed_writer_leaves_a_usable_store";
    const BEFORE_KILL: usize = 40;
    match role().as_deref() {
        Some("init") => {
            setup_token(&module());
        }
        Some("loop") => {
            let p = module();
            let s = user_session(&p, the_token(&p));
            for j in 0.. {
                let label = format!("loop-{j}");
                if j % 2 == 0 {
                    s.create_object(&data(&label, &[j as u8; 100], true))
                        .expect("create data");
                } else {
                    s.create_object(&aes(&label, &[j as u8; 32]))
                        .expect("create key");
                }
                println!("@CREATED {j}");
            }
        }
        Some("survey") => {
            let p = module();
            let s = user_session(&p, the_token(&p));
            let all = s.find_objects(&[]).expect("find all");
            assert!(
                all.len() >= BEFORE_KILL,
                "only {} objects survived",
                all.len()
            );
            for o in &all {
                let attrs = s
                    .get_attributes(
                        *o,
                        &[
                            AttributeType::Class,
                            AttributeType::Label,
                            AttributeType::Private,
                        ],
                    )
                    .expect("every surviving object reads");
                assert_eq!(attrs.len(), 3, "{attrs:?}");
                let label = label_of(&s, *o).expect("label");
                assert!(label.starts_with(b"loop-"), "{label:?}");
            }
            // Labels are unique and contiguous from 0: no object is half-written.
            let mut labels: Vec<usize> = all
                .iter()
                .map(|o| {
                    let l = label_of(&s, *o).expect("label");
                    std::str::from_utf8(&l[5..])
                        .expect("utf8")
                        .parse()
                        .expect("number")
                })
                .collect();
            labels.sort_unstable();
            assert_eq!(labels, (0..all.len()).collect::<Vec<_>>());
            let n = s
                .create_object(&data("after-crash", b"ok", true))
                .expect("store still writable");
            assert_eq!(value_of(&s, n).as_deref(), Some(&b"ok"[..]));
            assert_eq!(s.find_objects(&[]).expect("find all").len(), all.len() + 1);
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            run_ok(&mut child(TEST, "init", &store));
            let mut writer = child(TEST, "loop", &store)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn writer");
            let mut out = BufReader::new(writer.stdout.take().expect("stdout"));
            loop {
                let j: usize = wait_line(&mut out, "@CREATED").parse().expect("number");
                if j + 1 >= BEFORE_KILL {
                    break;
                }
            }
            writer.kill().expect("SIGKILL writer");
            let status = writer.wait().expect("wait writer");
            assert_eq!(
                status.signal(),
                Some(libc::SIGKILL),
                "writer must die by SIGKILL: {status:?}"
            );
            run_ok(&mut child(TEST, "survey", &store));
        }
    }
}

#[test]
fn tampered_record_is_reported_and_isolated() {
    const TEST: &str = "tampered_record_is_reported_and_isolated";
    match role().as_deref() {
        Some("setup") => {
            let p = module();
            let s = user_session(&p, setup_token(&p));
            for i in 0..4 {
                let h = s
                    .create_object(&data(&format!("t{i}"), b"intact", i == 3))
                    .expect("create");
                println!("@HANDLE{i} {}", h.handle());
            }
        }
        Some("check") => {
            let bad: u64 = std::env::var("SR_HANDLE")
                .expect("SR_HANDLE")
                .parse()
                .expect("handle");
            let p = module();
            let s = user_session(&p, the_token(&p));
            // SAFETY: a handle this token handed out in the setup process.
            let bad = unsafe { ObjectHandle::new_from_raw(bad as _) };
            assert_eq!(
                rv_of(s.get_attributes(bad, &[AttributeType::Label])),
                RvError::DeviceError
            );
            let all = s.find_objects(&[]).expect("find still works");
            assert_eq!(all.len(), 3, "the three intact objects: {all:?}");
            assert!(!all.contains(&bad));
            let mut labels: Vec<Vec<u8>> = all
                .iter()
                .map(|o| label_of(&s, *o).expect("intact object reads"))
                .collect();
            labels.sort();
            assert_eq!(labels, vec![b"t0".to_vec(), b"t2".to_vec(), b"t3".to_vec()]);
            assert!(by_label(&s, "t1").is_empty());
            assert_eq!(value_of(&s, one(&s, "t3")).as_deref(), Some(&b"intact"[..]));
            s.create_object(&data("t4", b"new", false))
                .expect("store still writable");
            assert_eq!(s.find_objects(&[]).expect("find").len(), 4);
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            let out = run_ok(&mut child(TEST, "setup", &store));
            let handle: i64 = reported(&out, "@HANDLE1 ").parse().expect("handle");
            assert_eq!(handle % 2, 0, "a token object handle");
            let db = rusqlite::Connection::open(store.join("strongroom.db")).expect("open db");
            let mut blob: Vec<u8> = db
                .query_row(
                    "SELECT blob FROM objects WHERE obj_id = ?1",
                    [handle / 2],
                    |r| r.get(0),
                )
                .expect("the object's row");
            let i = blob.len() / 2;
            blob[i] ^= 0x01;
            let changed = db
                .execute(
                    "UPDATE objects SET blob = ?1 WHERE obj_id = ?2",
                    rusqlite::params![blob, handle / 2],
                )
                .expect("write tampered blob");
            assert_eq!(changed, 1);
            drop(db);
            run_ok(child(TEST, "check", &store).env("SR_HANDLE", handle.to_string()));
        }
    }
}

// ----- confidentiality at rest -----------------------------------------------------------

const MARKERS: [&str; 6] = [
    "SRMARK-private-label-4f1c",
    "SRMARK-private-value-4f1c",
    "SRMARK-public-label-4f1c",
    "SRMARK-public-value-4f1c",
    "SRMARK-key-material-4f1c",
    USER_PIN,
];

/// Every marker found in any file under `dir`, with the file.
fn markers_on_disk(dir: &Path) -> (Vec<String>, usize) {
    let mut hits = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).expect("read store file");
            for m in MARKERS {
                if bytes.windows(m.len()).any(|w| w == m.as_bytes()) {
                    hits.push(format!("{m} in {}", path.display()));
                }
            }
        }
    }
    (hits, files)
}

#[test]
fn no_plaintext_on_disk() {
    const TEST: &str = "no_plaintext_on_disk";
    match role().as_deref() {
        Some("secrets") => {
            let p = module();
            let s = user_session(&p, setup_token(&p));
            let private = s
                .create_object(&data(MARKERS[0], MARKERS[1].as_bytes(), true))
                .expect("private");
            let public = s
                .create_object(&data(MARKERS[2], MARKERS[3].as_bytes(), false))
                .expect("public");
            let key_value = &MARKERS[4].as_bytes()[..24];
            s.create_object(&aes("key", key_value)).expect("key");
            assert_eq!(
                value_of(&s, private).as_deref(),
                Some(MARKERS[1].as_bytes())
            );
            assert_eq!(value_of(&s, public).as_deref(), Some(MARKERS[3].as_bytes()));
            assert_eq!(one(&s, MARKERS[0]), private);
            assert_eq!(one(&s, MARKERS[2]), public);
            println!("@WRITTEN");
            // Stay alive (store open, WAL not checkpointed) while the files are scanned.
            wait_stdin();
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let (_tmp, store) = new_store();
            let mut c = child(TEST, "secrets", &store)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn");
            let mut out = BufReader::new(c.stdout.take().expect("stdout"));
            wait_line(&mut out, "@WRITTEN");
            let (hits, files) = markers_on_disk(&store);
            assert!(
                files >= 3,
                "expected the db, key and counter files, found {files}"
            );
            assert!(
                hits.is_empty(),
                "plaintext on disk while the writer is alive: {hits:?}"
            );
            let mut stdin = c.stdin.take().expect("stdin");
            stdin.write_all(b"GO\n").expect("go");
            drop(stdin);
            wait_rest(c, out);
            let (hits, _) = markers_on_disk(&store);
            assert!(hits.is_empty(), "plaintext on disk after exit: {hits:?}");
        }
    }
}
