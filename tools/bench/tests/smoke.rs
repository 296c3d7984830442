//! The benchmark runs end to end (`--quick --skip-softhsm`) and writes a table with a positive
//! Strongroom figure for every operation. Nothing here looks at how fast anything is.

use std::process::Command;

/// Row labels of the main table (must match `OPS` in src/common.rs) plus the find rows.
const ROWS: &[&str] = &[
    "ECDSA P-256 sign (CKM_ECDSA, 32-byte hash)",
    "ECDSA P-256 verify (CKM_ECDSA)",
    "RSA-2048 sign PKCS#1 v1.5 (CKM_SHA256_RSA_PKCS)",
    "RSA-2048 sign PSS (CKM_SHA256_RSA_PKCS_PSS, salt 32)",
    "RSA-2048 verify PKCS#1 v1.5 (CKM_SHA256_RSA_PKCS)",
    "RSA-2048 decrypt OAEP-SHA256",
    "AES-256 key wrap of a 32-byte key (CKM_AES_KEY_WRAP)",
    "AES-256 key unwrap of a 32-byte key (CKM_AES_KEY_WRAP)",
    "HMAC-SHA256, 1 KiB (C_SignInit+C_Sign)",
    "HMAC-SHA256, 64 KiB (C_SignInit+C_Sign)",
    "AES-256-GCM encrypt, 1 MiB",
    "AES-256 CMAC, 1 KiB",
    "AES-256 token key generation (CKA_TOKEN=TRUE)",
    "EC P-256 token key pair generation (CKA_TOKEN=TRUE)",
    "C_CreateObject, token data object",
    "C_OpenSession + C_Login + C_Logout + C_CloseSession",
    "find-one by CKA_LABEL, 100 token objects",
    "find-all (count), 100 token objects",
    "find-one by CKA_LABEL, 1,000 token objects",
    "find-all (count), 1,000 token objects",
];

/// First number in a table cell ("1,234.5 (…)" -> 1234.5).
fn leading_number(cell: &str) -> Option<f64> {
    let tok: String = cell
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',' || *c == 'e' || *c == '-')
        .filter(|c| *c != ',')
        .collect();
    tok.parse().ok()
}

#[test]
fn quick_run_writes_a_complete_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.md");
    let run = Command::new(env!("CARGO_BIN_EXE_strongroom-bench"))
        .args(["--quick", "--skip-softhsm", "--out"])
        .arg(&out)
        .output()
        .expect("run strongroom-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "strongroom-bench failed: {}\n{stderr}",
        run.status
    );
    let md = std::fs::read_to_string(&out).expect("results file written");

    let mut problems = Vec::new();
    for label in ROWS {
        let prefix = format!("| {label} |");
        match md.lines().find(|l| l.starts_with(&prefix)) {
            None => problems.push(format!("no row {label:?}")),
            Some(line) => {
                // | label | Strongroom | SoftHSM | bare | ratio | ratio |
                let cells: Vec<&str> = line.split('|').collect();
                let sr = cells.get(2).copied().unwrap_or("");
                match leading_number(sr) {
                    Some(v) if v > 0.0 => {}
                    _ => problems.push(format!(
                        "row {label:?}: Strongroom cell {sr:?} is not a positive number"
                    )),
                }
                if !cells.get(3).is_some_and(|c| c.contains("skipped")) {
                    problems.push(format!("row {label:?}: SoftHSM cell should say skipped"));
                }
            }
        }
    }
    for section in ["## Threads", "## Find scaling", "## Multi-process"] {
        if !md.contains(section) {
            problems.push(format!("no section {section:?}"));
        }
    }
    for svg in ["find-scaling.svg", "threads.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap_or_default();
        if !text.starts_with("<svg") || !text.trim_end().ends_with("</svg>") {
            problems.push(format!("{svg} missing or not an SVG document"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\n{md}\n\nstderr:\n{stderr}",
        problems.join("\n")
    );
}
