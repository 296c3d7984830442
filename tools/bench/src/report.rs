//! The markdown report and the two hand-written SVG plots.

use crate::common::*;
use std::fmt::Write as _;

/// One multi-process measurement.
#[derive(Debug, Clone)]
pub struct MpPoint {
    pub module: String,
    pub procs: usize,
    pub m: Measure,
    pub note: Option<String>,
}

pub struct Env {
    pub date: String,
    pub uname: String,
    pub cpu: String,
    pub cmdline: String,
    pub threads: usize,
    pub quick: bool,
}

pub struct Results {
    pub strongroom: ChildReport,
    /// `Err(reason)` when SoftHSM was not run.
    pub softhsm: Result<ChildReport, String>,
    pub bare: Vec<(String, Measure)>,
    pub mp: Vec<MpPoint>,
    pub env: Env,
}

/// Human-friendly number: thousands separators for large values, 3-4 significant digits else.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v >= 1000.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else if v >= 0.01 {
        format!("{v:.3}")
    } else if v >= 0.0001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// Integer with thousands separators.
pub fn fmt_int(v: usize) -> String {
    if v >= 1000 {
        fmt_num(v as f64)
    } else {
        v.to_string()
    }
}

/// A main-table row: id, label, Strongroom, SoftHSM, bare.
type Line<'a> = (
    String,
    String,
    Option<&'a Measure>,
    Option<&'a Measure>,
    Option<&'a Measure>,
);

fn find_row<'a>(rows: &'a [(String, Measure)], id: &str) -> Option<&'a Measure> {
    rows.iter().find(|(k, _)| k == id).map(|(_, m)| m)
}

/// Extra unit shown after the rate for some rows.
fn extra(id: &str, ops: f64) -> String {
    match id {
        "gcm_1m" => format!(" ({} MB/s)", fmt_num(ops * 1_048_576.0 / 1e6)),
        "login_cycle" => format!(" ({} ms/op)", fmt_num(1000.0 / ops)),
        _ => String::new(),
    }
}

fn cell(m: Option<&Measure>, id: &str, missing: &str) -> String {
    match m {
        None => missing.to_string(),
        Some(m) => {
            if let Some(v) = m.ops_per_s {
                format!("{}{}", fmt_num(v), extra(id, v))
            } else if let Some(e) = &m.error {
                e.clone()
            } else if let Some(s) = &m.skipped {
                s.clone()
            } else {
                missing.to_string()
            }
        }
    }
}

fn ratio(a: Option<&Measure>, b: Option<&Measure>) -> String {
    match (a.and_then(|m| m.ops_per_s), b.and_then(|m| m.ops_per_s)) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

/// What a module's cell says when there is no row for it.
fn missing_text(rep: Option<&ChildReport>, skipped: Option<&str>) -> String {
    if let Some(s) = skipped {
        return s.to_string();
    }
    match rep.and_then(|r| r.fatal.clone()) {
        Some(f) => f,
        None => "–".into(),
    }
}

impl Results {
    fn sh(&self) -> Option<&ChildReport> {
        self.softhsm.as_ref().ok()
    }
    fn sh_missing(&self) -> String {
        match &self.softhsm {
            Ok(r) => missing_text(Some(r), None),
            Err(why) => why.clone(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let sr = &self.strongroom;
        let sr_missing = missing_text(Some(sr), None);
        let sh_missing = self.sh_missing();
        let e = &self.env;
        let _ = writeln!(o, "# Strongroom benchmark results\n");
        let _ = writeln!(o, "- Date: {}", e.date);
        let _ = writeln!(o, "- System: `{}`", e.uname);
        let _ = writeln!(o, "- CPU: {}", e.cpu);
        let _ = writeln!(o, "- Command: `{}`", e.cmdline);
        let _ = writeln!(
            o,
            "- Mode: {} (each rate is a time-bounded loop of ≥{} s after one warm-up call); thread counts up to {}",
            if e.quick { "--quick" } else { "full" },
            Cfg::new(e.quick).secs,
            e.threads
        );
        if let Some(l) = &sr.library {
            let _ = writeln!(o, "- Strongroom: {l} (default Argon2id PIN KDF cost)");
        }
        match &self.softhsm {
            Ok(r) => {
                if let Some(l) = &r.library {
                    let _ = writeln!(o, "- SoftHSM: {l} (file object store)");
                }
            }
            Err(why) => {
                let _ = writeln!(o, "- SoftHSM: {why}");
            }
        }
        let _ = writeln!(
            o,
            "- Bare crate: the same primitive through `strongroom_pkcs11::crypto::provider()` in-process, single thread, keys parsed once, no PKCS#11 (key generation: no persistence); each bare figure is measured in the Strongroom child process right after the matching Strongroom figure, so both see the same machine load."
        );
        let _ = writeln!(o, "\nAll figures are operations per second (higher is better) unless stated. Every PKCS#11 call goes through the `cryptoki` crate, which asks for the output length before each C_Sign/C_Encrypt/C_Decrypt/C_WrapKey (two calls per operation), as most applications do.\n");

        let _ = writeln!(o, "## Operations\n");
        let _ = writeln!(
            o,
            "| Operation | Strongroom | SoftHSM | bare crate | Strongroom÷SoftHSM | Strongroom÷bare |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
        let mut lines: Vec<Line> = Vec::new();
        for op in OPS {
            let a = find_row(&sr.rows, op.id);
            let b = self.sh().and_then(|r| find_row(&r.rows, op.id));
            let c = find_row(&self.bare, op.id);
            lines.push((op.id.into(), op.label.into(), a, b, c));
        }
        for (i, p) in sr.find.iter().enumerate() {
            let q = self
                .sh()
                .and_then(|r| r.find.iter().find(|q| q.size == p.size));
            let _ = i;
            lines.push((
                format!("find_one_{}", p.size),
                format!("find-one by CKA_LABEL, {} token objects", fmt_int(p.size)),
                Some(&p.find_one),
                q.map(|q| &q.find_one),
                None,
            ));
            lines.push((
                format!("find_all_{}", p.size),
                format!("find-all (count), {} token objects", fmt_int(p.size)),
                Some(&p.find_all),
                q.map(|q| &q.find_all),
                None,
            ));
        }
        for (id, label, a, b, c) in &lines {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                label,
                cell(*a, id, &sr_missing),
                cell(*b, id, &sh_missing),
                cell(*c, id, "–"),
                ratio(*a, *b),
                ratio(*a, *c)
            );
        }

        let mut notes = Vec::new();
        if let Some(m) = self
            .sh()
            .and_then(|r| find_row(&r.rows, "rsa_decrypt_oaep"))
        {
            if m.error.as_deref() == Some("error: CKR_ARGUMENTS_BAD") {
                notes.push("SoftHSM 2.6 accepts only SHA-1 (hash and MGF1) for CKM_RSA_PKCS_OAEP, so OAEP-SHA256 fails in C_EncryptInit with CKR_ARGUMENTS_BAD.");
            }
        }
        notes.push(
            "AES key unwrap creates a session object per operation; destroying it is not counted.",
        );
        notes.push("Bare key generation has no persistence (AES: 32 random bytes; EC: ec_generate), so Strongroom÷bare there measures the cost of the object store.");
        notes.push("The open-session/login row includes Strongroom's Argon2id PIN stretching (deliberately slow; target below 0.5 s per login).");
        let _ = writeln!(o);
        for n in notes {
            let _ = writeln!(o, "- {n}");
        }

        // Threads.
        let _ = writeln!(o, "\n## Threads (each thread with its own session)\n");
        let _ = writeln!(
            o,
            "| Operation | Threads | Strongroom ops/s | SoftHSM ops/s | Strongroom vs 1 thread | SoftHSM vs 1 thread |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
        for op in THREAD_OPS {
            let pts = |r: Option<&ChildReport>| -> Vec<ThreadPoint> {
                r.map(|r| {
                    r.threads
                        .iter()
                        .filter(|t| t.op == op.id)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
            };
            let a = pts(Some(sr));
            let b = pts(self.sh());
            let one = |v: &[ThreadPoint]| v.iter().find(|t| t.threads == 1).map(|t| t.m.clone());
            let (a1, b1) = (one(&a), one(&b));
            let mut counts: Vec<usize> = a.iter().chain(b.iter()).map(|t| t.threads).collect();
            counts.sort();
            counts.dedup();
            if counts.is_empty() {
                counts.push(1);
            }
            for n in counts {
                let am = a.iter().find(|t| t.threads == n).map(|t| &t.m);
                let bm = b.iter().find(|t| t.threads == n).map(|t| &t.m);
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} |",
                    op.label,
                    n,
                    cell(am, op.id, &sr_missing),
                    cell(bm, op.id, &sh_missing),
                    ratio(am, a1.as_ref()),
                    ratio(bm, b1.as_ref())
                );
            }
        }

        // Find scaling.
        let _ = writeln!(
            o,
            "\n## Find scaling (milliseconds per find; lower is better)\n"
        );
        let _ = writeln!(
            o,
            "| Token objects | Strongroom find-one ms | SoftHSM find-one ms | Strongroom find-all ms | SoftHSM find-all ms | Objects counted by find-all (Strongroom / SoftHSM) | Strongroom bulk create (objects/s) | SoftHSM bulk create (objects/s) |"
        );
        let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut sizes: Vec<usize> = sr.find.iter().map(|p| p.size).collect();
        if let Some(r) = self.sh() {
            sizes.extend(r.find.iter().map(|p| p.size));
        }
        sizes.sort();
        sizes.dedup();
        let prev_size = |rep: &ChildReport, size: usize| -> usize {
            rep.find
                .iter()
                .map(|p| p.size)
                .filter(|&s| s < size)
                .max()
                .unwrap_or(0)
        };
        for size in sizes {
            let p = sr.find.iter().find(|p| p.size == size);
            let q = self
                .sh()
                .and_then(|r| r.find.iter().find(|p| p.size == size));
            let ms = |m: Option<&Measure>, miss: &str| -> String {
                match m {
                    Some(Measure {
                        ops_per_s: Some(v), ..
                    }) => fmt_num(1000.0 / v),
                    other => cell(other, "", miss),
                }
            };
            let rate = |rep: Option<&ChildReport>, pt: Option<&FindPoint>| -> String {
                match (rep, pt) {
                    (Some(rep), Some(pt)) if pt.found_all.is_some() => {
                        let n = size - prev_size(rep, size);
                        match pt.create_secs {
                            Some(s) if s > 0.0 => fmt_num(n as f64 / s),
                            _ => "–".into(),
                        }
                    }
                    _ => "–".into(),
                }
            };
            let count = |pt: Option<&FindPoint>| -> String {
                pt.and_then(|pt| pt.found_all)
                    .map(fmt_int)
                    .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} / {} | {} | {} |",
                fmt_int(size),
                ms(p.map(|p| &p.find_one), &sr_missing),
                ms(q.map(|p| &p.find_one), &sh_missing),
                ms(p.map(|p| &p.find_all), &sr_missing),
                ms(q.map(|p| &p.find_all), &sh_missing),
                count(p),
                count(q),
                rate(Some(sr), p),
                rate(self.sh(), q),
            );
        }

        // Multi-process.
        let _ = writeln!(
            o,
            "\n## Multi-process (processes sharing one store, each generating persisted AES-256 token keys)\n"
        );
        let _ = writeln!(o, "| Processes | Strongroom keys/s | SoftHSM keys/s |");
        let _ = writeln!(o, "|---:|---:|---:|");
        let mut procs: Vec<usize> = self.mp.iter().map(|p| p.procs).collect();
        procs.sort();
        procs.dedup();
        for n in procs {
            let c = |module: &str, miss: &str| -> String {
                match self.mp.iter().find(|p| p.procs == n && p.module == module) {
                    Some(p) => {
                        let mut s = cell(Some(&p.m), "", miss);
                        if let Some(note) = &p.note {
                            let _ = write!(s, " ({note})");
                        }
                        s
                    }
                    None => miss.to_string(),
                }
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                n,
                c("strongroom", "–"),
                c("softhsm", &sh_missing)
            );
        }
        let _ = writeln!(
            o,
            "\nPlots: `find-scaling.svg` (find-one time vs object count) and `threads.svg` (ops/s vs threads), next to this file."
        );
        o
    }

    pub fn find_svg(&self) -> String {
        let mut series = Vec::new();
        let mut add = |name: &str, color: &'static str, rep: Option<&ChildReport>| {
            if let Some(rep) = rep {
                let pts: Vec<(f64, f64)> = rep
                    .find
                    .iter()
                    .filter_map(|p| p.find_one.ops_per_s.map(|v| (p.size as f64, 1000.0 / v)))
                    .collect();
                series.push(Series {
                    name: name.into(),
                    color,
                    dashed: false,
                    points: pts,
                });
            }
        };
        add("Strongroom", SR_COLOR, Some(&self.strongroom));
        add("SoftHSM", SH_COLOR, self.sh());
        let mut xs: Vec<f64> = self.strongroom.find.iter().map(|p| p.size as f64).collect();
        if let Some(r) = self.sh() {
            xs.extend(r.find.iter().map(|p| p.size as f64));
        }
        let (w, h) = (720.0, 440.0);
        let mut s = svg_open(w, h);
        s.push_str(&chart(&Chart {
            x: 0.0,
            y: 0.0,
            w,
            h,
            title: "Find one token object by CKA_LABEL",
            xlabel: "token objects (log scale)",
            ylabel: "ms per find (log scale)",
            xlog: true,
            ylog: true,
            xticks: xs,
            series: &series,
        }));
        s.push_str("</svg>\n");
        s
    }

    pub fn threads_svg(&self) -> String {
        let cols = 2.0;
        let (cw, chh) = (420.0, 300.0);
        let rows = (THREAD_OPS.len() as f64 / cols).ceil();
        let mut s = svg_open(cw * cols, chh * rows);
        for (i, op) in THREAD_OPS.iter().enumerate() {
            let pts = |r: Option<&ChildReport>| -> Vec<(f64, f64)> {
                r.map(|r| {
                    r.threads
                        .iter()
                        .filter(|t| t.op == op.id)
                        .filter_map(|t| t.m.ops_per_s.map(|v| (t.threads as f64, v)))
                        .collect()
                })
                .unwrap_or_default()
            };
            let a = pts(Some(&self.strongroom));
            let mut series = Vec::new();
            if let Some(&(1.0, one)) = a.first() {
                let ideal = a.iter().map(|&(n, _)| (n, one * n)).collect();
                series.push(Series {
                    name: "Strongroom ideal (linear)".into(),
                    color: "#999999",
                    dashed: true,
                    points: ideal,
                });
            }
            series.push(Series {
                name: "Strongroom".into(),
                color: SR_COLOR,
                dashed: false,
                points: a,
            });
            if self.sh().is_some() {
                series.push(Series {
                    name: "SoftHSM".into(),
                    color: SH_COLOR,
                    dashed: false,
                    points: pts(self.sh()),
                });
            }
            let mut xs: Vec<f64> = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0))
                .collect();
            if xs.is_empty() {
                xs.push(1.0);
            }
            let title = format!("{} (ops/s vs threads)", op.label);
            s.push_str(&chart(&Chart {
                x: (i as f64 % cols) * cw,
                y: (i as f64 / cols).floor() * chh,
                w: cw,
                h: chh,
                title: &title,
                xlabel: "threads",
                ylabel: "ops/s",
                xlog: false,
                ylog: false,
                xticks: xs,
                series: &series,
            }));
        }
        s.push_str("</svg>\n");
        s
    }
}

// ----- minimal SVG line charts -----

const SR_COLOR: &str = "#1f77b4";
const SH_COLOR: &str = "#d62728";

struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

struct Chart<'a> {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    title: &'a str,
    xlabel: &'a str,
    ylabel: &'a str,
    xlog: bool,
    ylog: bool,
    xticks: Vec<f64>,
    series: &'a [Series],
}

fn svg_open(w: f64, h: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_tick(v: f64) -> String {
    if v >= 1.0 && v.fract() == 0.0 && v < 1e15 {
        fmt_int(v as usize)
    } else {
        fmt_num(v)
    }
}

fn nice_step(range: f64) -> f64 {
    let raw = range / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn chart(c: &Chart) -> String {
    let mut o = String::new();
    let (ml, mr, mt, mb) = (70.0, 20.0, 40.0, 50.0);
    let (px, py) = (c.x + ml, c.y + mt);
    let (pw, ph) = (c.w - ml - mr, c.h - mt - mb);
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        c.x + c.w / 2.0,
        c.y + 22.0,
        esc(c.title)
    );
    let all: Vec<(f64, f64)> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    // X range.
    let tx = |v: f64| if c.xlog { v.max(1e-12).log10() } else { v };
    let mut xs: Vec<f64> = c.xticks.clone();
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs.dedup();
    let (mut x0, mut x1) = (
        xs.first().copied().map(tx).unwrap_or(0.0),
        xs.last().copied().map(tx).unwrap_or(1.0),
    );
    if c.xlog {
        x0 -= 0.15;
        x1 += 0.15;
    } else {
        x0 = x0.min(0.0);
        x1 += (x1 - x0) * 0.08;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    // Y range.
    let ty = |v: f64| if c.ylog { v.max(1e-12).log10() } else { v };
    let ymax_raw = all.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let ymin_raw = all
        .iter()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let (y0, y1, yticks): (f64, f64, Vec<f64>) = if c.ylog {
        let lo = if ymin_raw.is_finite() {
            ymin_raw.log10().floor()
        } else {
            -1.0
        };
        let hi = if ymax_raw > 0.0 {
            ymax_raw.log10().ceil()
        } else {
            1.0
        };
        let hi = if hi <= lo { lo + 1.0 } else { hi };
        let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
        (lo, hi, ticks)
    } else {
        let top = if ymax_raw > 0.0 { ymax_raw * 1.1 } else { 1.0 };
        let step = nice_step(top);
        let n = (top / step).ceil() as i32;
        let ticks = (0..=n).map(|i| i as f64 * step).collect();
        (0.0, n as f64 * step, ticks)
    };
    let sx = |v: f64| px + (tx(v) - x0) / (x1 - x0) * pw;
    let sy = |v: f64| py + ph - (ty(v) - y0) / (y1 - y0) * ph;
    // Axes and grid.
    let _ = writeln!(
        o,
        "<rect x=\"{px}\" y=\"{py}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>"
    );
    for &t in &yticks {
        let y = sy(t);
        let _ = writeln!(
            o,
            "<line x1=\"{px}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px + pw,
            px - 6.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    for &t in &xs {
        let x = sx(t);
        let _ = writeln!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{py}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            py + ph,
            py + ph + 16.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        px + pw / 2.0,
        py + ph + 36.0,
        esc(c.xlabel)
    );
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">{}</text>",
        c.x + 16.0,
        py + ph / 2.0,
        c.x + 16.0,
        py + ph / 2.0,
        esc(c.ylabel)
    );
    // Lines.
    for s in c.series {
        if s.points.is_empty() {
            continue;
        }
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if s.dashed {
            " stroke-dasharray=\"5,4\""
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
            path.join(" "),
            s.color
        );
        if !s.dashed {
            for &(x, y) in &s.points {
                let _ = writeln!(
                    o,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{}: {} → {}</title></circle>",
                    sx(x),
                    sy(y),
                    s.color,
                    esc(&s.name),
                    fmt_tick(x),
                    fmt_num(y)
                );
            }
        }
    }
    // Legend.
    for (i, s) in c.series.iter().enumerate() {
        let ly = py + 14.0 + i as f64 * 16.0;
        let lx = px + 10.0;
        let dash = if s.dashed {
            " stroke-dasharray=\"5,4\""
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            lx + 22.0,
            s.color,
            lx + 28.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o
}
