#!/usr/bin/env bash
# The test command of Strongroom: `bash tools/test-all.sh` (CI runs exactly this).
#
#  1. installs the client programs the interop tests drive, when missing
#     (Debian: opensc p11-kit gnutls-bin libengine-pkcs11-openssl openssl softhsm2 sqlite3
#     openssh-client openssh-server)
#  2. cargo fmt --check, clippy -D warnings, build --release, test --release (whole workspace)
#  3. every tests/interop/*.sh against the release module, each with a fresh store
#
# Stops at the first failing cargo step; runs every interop script and ends with
# "N passed, M failed" counting them. Exit code 0 only when everything passed.
# Honours CARGO_TARGET_DIR. INTEROP_ONLY=1 skips step 2 (reuses the last build);
# KEEP_GOING=1 runs every step even after a failing one, and lists the failures.
set -euo pipefail
cd "$(dirname "$0")/.."

STEP="(start)"
START=$(date +%s)
on_exit() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        echo >&2
        echo "test-all: FAILED at step: $STEP (exit code $rc)" >&2
    fi
}
trap on_exit EXIT

step() {
    STEP="$*"
    echo
    echo "==> [$(($(date +%s) - START))s] $STEP"
}

# ----- 1. tools -----

step "install test tools"
PACKAGES=(opensc p11-kit gnutls-bin libengine-pkcs11-openssl openssl softhsm2 sqlite3 openssh-client openssh-server)
missing=()
for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
for b in pkcs11-tool p11-kit p11tool openssl softhsm2-util sqlite3 ssh sshd; do
    command -v "$b" >/dev/null || missing+=("(binary $b)")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "missing: ${missing[*]}; installing with apt-get"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "not root and no sudo: install ${PACKAGES[*]} first" >&2; exit 1; }
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y "${PACKAGES[@]}"
    for b in pkcs11-tool p11-kit p11tool openssl softhsm2-util sqlite3 ssh sshd; do
        command -v "$b" >/dev/null || { echo "$b still missing after apt-get install" >&2; exit 1; }
    done
else
    echo "all present: ${PACKAGES[*]}"
fi
P11_HELP=$(pkcs11-tool --help 2>&1 || true)
grep -q -- '--test-fork' <<<"$P11_HELP" || { echo "pkcs11-tool lacks --test-fork (need OpenSC >= 0.23)" >&2; exit 1; }
for c in fmt clippy; do
    cargo "$c" --version >/dev/null 2>&1 || { echo "cargo $c is missing: rustup component add ${c/fmt/rustfmt}" >&2; exit 1; }
done

# ----- 2. cargo -----

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[[ -n "$TARGET_DIR" ]] || { echo "cannot find the cargo target directory" >&2; exit 1; }
MODULE="$TARGET_DIR/release/libstrongroom_pkcs11.so"
CLI="$TARGET_DIR/release/strongroom"

# cargo_step CMD...: runs one cargo step; a failure stops the run, or with
# KEEP_GOING=1 is remembered and reported at the end.
failed_steps=()
cargo_step() {
    step "$*"
    local rc=0
    "$@" || rc=$?
    if [[ $rc -ne 0 ]]; then
        if [[ "${KEEP_GOING:-0}" == 1 ]]; then
            echo "test-all: step failed (KEEP_GOING=1, going on): $* (exit code $rc)" >&2
            failed_steps+=("$*")
        else
            exit "$rc"
        fi
    fi
}

if [[ "${INTEROP_ONLY:-0}" != 1 ]]; then
    cargo_step cargo fmt --all -- --check
    cargo_step cargo clippy --workspace --all-targets -- -D warnings
    cargo_step cargo build --release --workspace
    if [[ " ${failed_steps[*]} " == *"cargo build --release"* ]]; then
        echo "test-all: the release build failed: interop scripts not run (they would test an old build)" >&2
        STEP=$(printf '%s; ' "${failed_steps[@]}")
        STEP=${STEP%; }
        exit 1
    fi
    cargo_step cargo test --release --workspace --no-fail-fast
    # The pure-Rust provider stays a supported build: its known-answer tests too.
    cargo_step cargo test --release -p strongroom --lib --no-default-features
fi

# ----- 3. interop -----

step "interop scripts against $MODULE"
[[ -f "$MODULE" ]] || { echo "$MODULE is missing" >&2; exit 1; }
[[ -x "$CLI" ]] || { echo "$CLI is missing" >&2; exit 1; }
passed=0
failed=0
failed_names=()
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-interop-logs.XXXXXX")
for script in tests/interop/*.sh; do
    name=$(basename "$script" .sh)
    store_parent=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-store.XXXXXX")
    t0=$(date +%s)
    rc=0
    env -u STRONGROOM_CONF -u STRONGROOM_MAX_PIN_FAILURES -u STRONGROOM_LOG \
        MODULE="$MODULE" STRONGROOM_CLI="$CLI" STRONGROOM_STORE="$store_parent/store" \
        STRONGROOM_KDF_MEMORY_KIB=64 STRONGROOM_KDF_ITERATIONS=1 \
        timeout --kill-after=10 900 bash "$script" </dev/null >"$LOGDIR/$name.log" 2>&1 || rc=$?
    rm -rf "$store_parent"
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "PASS $name ($(($(date +%s) - t0))s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "FAIL $name (exit code $rc$([[ $rc -eq 124 ]] && echo ', timed out'), $(($(date +%s) - t0))s); last lines of its log:"
        tail -n 40 "$LOGDIR/$name.log" | sed 's/^/    | /'
    fi
done
echo "interop logs: $LOGDIR"
if [[ $failed -gt 0 ]]; then
    failed_steps+=("interop: ${failed_names[*]}")
fi
if [[ ${#failed_steps[@]} -gt 0 ]]; then
    STEP=$(printf '%s; ' "${failed_steps[@]}")
    STEP=${STEP%; }
fi
echo "total time $(($(date +%s) - START))s"
echo "$passed passed, $failed failed"
[[ ${#failed_steps[@]} -eq 0 ]]
