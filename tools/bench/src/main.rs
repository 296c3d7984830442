//! `strongroom-bench`: measured speed of the Strongroom PKCS#11 module, next to SoftHSMv2 and
//! next to the bare crypto crates it is built on.
//!
//! `cargo run --release -p strongroom-bench -- [--quick] [--threads N] [--out bench/results.md]`
//!
//! Each module is measured in a child process (this program re-executed with the hidden
//! `--child` argument) with a fresh store in a temporary directory; the child prints its
//! results as one JSON line and the parent writes the report. Nothing is asserted on timing.

mod bare;
mod common;
mod p11;
mod report;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use common::*;
use report::{Env, MpPoint, Results};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MODULE_FILE: &str = "libstrongroom_pkcs11.so";
const SOFTHSM_DEFAULT: &str = "/usr/lib/softhsm/libsofthsm2.so";
const RESULT_PREFIX: &str = "STRONGROOM-BENCH-RESULT ";

#[derive(Parser, Debug)]
#[command(
    name = "strongroom-bench",
    about = "Measure Strongroom against SoftHSMv2 and the bare crypto crates; writes a markdown report and two SVG plots",
    after_help = "Results go to --out (default bench/results.md) plus find-scaling.svg and threads.svg next to it.\n\
                  Exit codes: 0 done (failed measurements are recorded in the table), 1 runtime error, \
                  2 usage error or SoftHSM missing."
)]
struct Args {
    /// Short run (~0.2 s per operation, 100 and 1,000 objects) to check the benchmark works
    #[arg(long)]
    quick: bool,
    /// Thread count for the threads table [default: number of CPUs]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Markdown report path (the SVGs go to the same directory)
    #[arg(long, value_name = "FILE", default_value = "bench/results.md")]
    out: PathBuf,
    /// Strongroom module [default: libstrongroom_pkcs11.so next to this program]
    #[arg(long, value_name = "PATH")]
    strongroom: Option<PathBuf>,
    /// SoftHSMv2 module
    #[arg(long, value_name = "PATH", default_value = SOFTHSM_DEFAULT)]
    softhsm: PathBuf,
    /// Do not measure SoftHSMv2
    #[arg(long)]
    skip_softhsm: bool,

    // ----- internal: child processes -----
    #[arg(long, hide = true)]
    child: Option<String>,
    #[arg(long, hide = true, default_value = "measure")]
    task: String,
    #[arg(long, hide = true)]
    module: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 0)]
    worker: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.child.is_some() {
        return child_main(&args);
    }
    match parent_main(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strongroom-bench: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn threads_of(args: &Args) -> usize {
    args.threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1)
}

// ----- child side -----

fn child_main(args: &Args) -> ExitCode {
    let name = args.child.clone().unwrap_or_default();
    let Some(module) = args.module.clone() else {
        eprintln!("--child needs --module");
        return ExitCode::from(2);
    };
    let cfg = Cfg::new(args.quick);
    let json = match args.task.as_str() {
        "measure" => serde_json::to_string(&p11::run_child(&name, &module, &cfg, threads_of(args))),
        "setup" => {
            if let Err(e) = p11::run_setup(&module) {
                eprintln!("[{name}] setup FAILED: {}", long_err(&e));
                return ExitCode::from(1);
            }
            return ExitCode::SUCCESS;
        }
        "worker" => serde_json::to_string(&p11::run_worker(&module, cfg.mp_secs(), args.worker)),
        other => {
            eprintln!("unknown --task {other}");
            return ExitCode::from(2);
        }
    };
    match json {
        Ok(j) => {
            println!("{RESULT_PREFIX}{j}");
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serialising results: {e}");
            ExitCode::from(1)
        }
    }
}

// ----- parent side -----

/// The Strongroom module: next to this program (the newest of `<dir>/` and `<dir>/deps/`,
/// since `cargo run -p strongroom-bench` builds the cdylib as a dependency under deps/).
fn strongroom_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("--strongroom {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating this program")?;
    let dir = exe.parent().context("program has no directory")?;
    let mut dirs = vec![dir.to_path_buf(), dir.join("deps")];
    // Test binaries live in <target>/<profile>/deps.
    if dir.file_name().is_some_and(|n| n == "deps") {
        if let Some(up) = dir.parent() {
            dirs.insert(0, up.to_path_buf());
        }
    }
    let best = dirs
        .iter()
        .map(|d| d.join(MODULE_FILE))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    match best {
        Some(p) => Ok(p),
        None => bail!(
            "cannot find {MODULE_FILE} next to {} (looked in {}): build it with `cargo build --release` or pass --strongroom PATH",
            exe.display(),
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn env_info(args: &Args, threads: usize) -> Env {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let ncpu = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmdline = if std::env::var_os("CARGO").is_some() {
        let mut s = "cargo run --release -p strongroom-bench".to_string();
        if !argv.is_empty() {
            s.push_str(" -- ");
            s.push_str(&argv.join(" "));
        }
        s
    } else {
        let mut s = "strongroom-bench".to_string();
        for a in &argv {
            s.push(' ');
            s.push_str(a);
        }
        s
    };
    Env {
        date: sh("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]),
        uname: sh("uname", &["-sm"]),
        cpu: format!("{model} ({ncpu} logical CPUs)"),
        cmdline,
        threads,
        quick: args.quick,
    }
}

/// The module's store directory and the environment its children need.
struct ModuleSetup {
    name: &'static str,
    path: PathBuf,
}

impl ModuleSetup {
    fn prepare_store(&self, dir: &Path) -> Result<Vec<(String, String)>> {
        std::fs::create_dir_all(dir)?;
        Ok(match self.name {
            "strongroom" => vec![("STRONGROOM_STORE".into(), dir.display().to_string())],
            _ => {
                let tokens = dir.join("tokens");
                std::fs::create_dir_all(&tokens)?;
                let conf = dir.join("softhsm2.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                        tokens.display()
                    ),
                )?;
                vec![("SOFTHSM2_CONF".into(), conf.display().to_string())]
            }
        })
    }
}

fn child_command(args: &Args, m: &ModuleSetup, env: &[(String, String)], task: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut c = Command::new(exe);
    c.arg("--child")
        .arg(m.name)
        .arg("--task")
        .arg(task)
        .arg("--module")
        .arg(&m.path);
    c.arg("--threads").arg(threads_of(args).to_string());
    if args.quick {
        c.arg("--quick");
    }
    // Default KDF cost and no stray configuration: login time must be the real one.
    for v in [
        "STRONGROOM_CONF",
        "STRONGROOM_STORE",
        "STRONGROOM_KDF_MEMORY_KIB",
        "STRONGROOM_KDF_ITERATIONS",
        "SOFTHSM2_CONF",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Reads a child's stdout on a thread; returns a receiver of its lines.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Waits for the child (killing it after `timeout`) and returns its result line.
fn finish(mut child: Child, rx: mpsc::Receiver<String>, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut result = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(j) = line.strip_prefix(RESULT_PREFIX) {
                    result = Some(j.to_string());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s (killed)", timeout.as_secs());
        }
    }
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s (killed)", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match result {
        Some(r) => Ok(r),
        None => bail!("exited with {status} without results"),
    }
}

fn measure_module(args: &Args, m: &ModuleSetup, base: &Path) -> ChildReport {
    let res = (|| -> Result<ChildReport> {
        let env = m.prepare_store(&base.join(m.name))?;
        eprintln!("== measuring {} ({})", m.name, m.path.display());
        let mut child = child_command(args, m, &env, "measure")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the child process")?;
        let rx = line_reader(&mut child);
        let timeout = Duration::from_secs(if args.quick { 900 } else { 5400 });
        let line = finish(child, rx, timeout)?;
        Ok(serde_json::from_str(&line)?)
    })();
    res.unwrap_or_else(|e| {
        eprintln!("[{}] child FAILED: {e:#}", m.name);
        ChildReport {
            module: m.name.to_string(),
            fatal: Some(format!("error: child process: {e}")),
            ..Default::default()
        }
    })
}

/// 1, 2 and 4 processes generating persisted AES keys in one shared store.
fn multi_process(args: &Args, m: &ModuleSetup, base: &Path) -> Vec<MpPoint> {
    let mut out = Vec::new();
    let dir = base.join(format!("{}-mp", m.name));
    let env = match m.prepare_store(&dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("[{}] multi-process store: {e:#}", m.name);
            return out;
        }
    };
    eprintln!("== multi-process: {}", m.name);
    let setup = child_command(args, m, &env, "setup")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    if !matches!(setup, Ok(s) if s.success()) {
        for procs in [1, 2, 4] {
            out.push(MpPoint {
                module: m.name.into(),
                procs,
                m: Measure::err("error: token setup failed"),
                note: None,
            });
        }
        return out;
    }
    for procs in [1usize, 2, 4] {
        let r = mp_round(args, m, &env, procs);
        let point = match r {
            Ok((rate, errors, first)) => {
                eprintln!(
                    "[{}] {procs} processes: {} keys/s{}",
                    m.name,
                    report::fmt_num(rate),
                    if errors > 0 {
                        format!(", {errors} failed calls")
                    } else {
                        String::new()
                    }
                );
                let note = (errors > 0).then(|| {
                    format!(
                        "{errors} failed C_GenerateKey: {}",
                        first.unwrap_or_default()
                    )
                });
                let meas = if rate > 0.0 {
                    Measure::ok(rate)
                } else {
                    Measure::err(format!("error: no key generated ({errors} failures)"))
                };
                MpPoint {
                    module: m.name.into(),
                    procs,
                    m: meas,
                    note,
                }
            }
            Err(e) => {
                eprintln!("[{}] {procs} processes: FAILED: {e:#}", m.name);
                MpPoint {
                    module: m.name.into(),
                    procs,
                    m: Measure::err(format!("error: {e}")),
                    note: None,
                }
            }
        };
        out.push(point);
    }
    out
}

fn mp_round(
    args: &Args,
    m: &ModuleSetup,
    env: &[(String, String)],
    procs: usize,
) -> Result<(f64, u64, Option<String>)> {
    let mut kids = Vec::new();
    for w in 0..procs {
        let mut c = child_command(args, m, env, "worker");
        c.arg("--worker").arg(w.to_string());
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a worker")?;
        let rx = line_reader(&mut child);
        kids.push((child, rx));
    }
    // Wait until every worker has logged in, then start them together.
    for (_, rx) in &kids {
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l.trim() == "ready" => break,
                Ok(_) => continue,
                Err(_) => break, // dead or stuck worker: its result (or error) says so
            }
        }
    }
    for (child, _) in kids.iter_mut() {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
    }
    let timeout = Duration::from_secs_f64(Cfg::new(args.quick).mp_secs() + 120.0);
    let (mut rate, mut errors, mut first) = (0.0, 0u64, None);
    let mut failures = Vec::new();
    for (i, (child, rx)) in kids.into_iter().enumerate() {
        match finish(child, rx, timeout)
            .and_then(|l| serde_json::from_str::<WorkerReport>(&l).map_err(Into::into))
        {
            Ok(w) => {
                if w.secs > 0.0 {
                    rate += w.count as f64 / w.secs;
                }
                errors += w.errors;
                if first.is_none() {
                    first = w.first_error;
                }
            }
            Err(e) => failures.push(format!("worker {i}: {e}")),
        }
    }
    if !failures.is_empty() && rate == 0.0 {
        bail!("{}", failures.join("; "));
    }
    if !failures.is_empty() {
        errors += failures.len() as u64;
        first = first.or_else(|| Some(failures.join("; ")));
    }
    Ok((rate, errors, first))
}

fn parent_main(args: &Args) -> Result<ExitCode> {
    let threads = threads_of(args);
    let strongroom = ModuleSetup {
        name: "strongroom",
        path: strongroom_path(args.strongroom.as_deref())?,
    };
    let softhsm = if args.skip_softhsm {
        None
    } else if !args.softhsm.is_file() {
        eprintln!(
            "strongroom-bench: SoftHSMv2 not found at {}.\n\
             Install it (Debian/Ubuntu: `sudo apt-get install softhsm2`), pass --softhsm PATH, \
             or run with --skip-softhsm.",
            args.softhsm.display()
        );
        return Ok(ExitCode::from(2));
    } else {
        Some(ModuleSetup {
            name: "softhsm",
            path: args.softhsm.clone(),
        })
    };
    // Fail early on an unwritable output location.
    let out_dir = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let env = env_info(args, threads);
    let base = tempfile::Builder::new()
        .prefix("strongroom-bench-")
        .tempdir()?;
    let started = Instant::now();

    let sr = measure_module(args, &strongroom, base.path());
    let shr = match &softhsm {
        Some(m) => Ok(measure_module(args, m, base.path())),
        None => Err("skipped (--skip-softhsm)".to_string()),
    };
    let bare = if sr.bare.is_empty() {
        eprintln!("== bare crate (in-process)");
        bare::run(&Cfg::new(args.quick))
    } else {
        sr.bare.clone()
    };
    let mut mp = multi_process(args, &strongroom, base.path());
    if let Some(m) = &softhsm {
        mp.extend(multi_process(args, m, base.path()));
    }

    let results = Results {
        strongroom: sr,
        softhsm: shr,
        bare,
        mp,
        env,
    };
    let md = results.markdown();
    std::fs::write(&args.out, &md).with_context(|| format!("writing {}", args.out.display()))?;
    let find_svg = out_dir.join("find-scaling.svg");
    std::fs::write(&find_svg, results.find_svg())
        .with_context(|| format!("writing {}", find_svg.display()))?;
    let thr_svg = out_dir.join("threads.svg");
    std::fs::write(&thr_svg, results.threads_svg())
        .with_context(|| format!("writing {}", thr_svg.display()))?;
    println!("{md}");
    eprintln!(
        "strongroom-bench: wrote {}, {} and {} in {:.0} s",
        args.out.display(),
        find_svg.display(),
        thr_svg.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
