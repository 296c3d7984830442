# Shared helpers for tests/interop/*.sh. Source it; it is not a test itself.
#
# Inputs (environment):
#   MODULE            the PKCS#11 module under test
#                     (default: target/release/libstrongroom_pkcs11.so of this checkout)
#   STRONGROOM_STORE  a store directory; when unset a fresh temporary one is made
#   KEEP_WORKDIR=1    keep the temporary directory (its path is printed)
# Low Argon2id cost is set unless the caller set one.

set -Eeuo pipefail

INTEROP_NAME=$(basename "$0" .sh)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

if [[ -z "${MODULE:-}" ]]; then
    MODULE="$REPO_ROOT/target/release/libstrongroom_pkcs11.so"
    if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
        MODULE="$CARGO_TARGET_DIR/release/libstrongroom_pkcs11.so"
    fi
fi
[[ -f "$MODULE" ]] || { echo "FAIL [$INTEROP_NAME]: module $MODULE does not exist (cargo build --release)" >&2; exit 1; }
MODULE=$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")
export MODULE

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-$INTEROP_NAME.XXXXXX")
cleanup_workdir() {
    if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then
        echo "[$INTEROP_NAME] work directory kept: $WORKDIR" >&2
    else
        rm -rf "$WORKDIR"
    fi
}
trap cleanup_workdir EXIT

export STRONGROOM_STORE="${STRONGROOM_STORE:-$WORKDIR/store}"
export STRONGROOM_KDF_MEMORY_KIB="${STRONGROOM_KDF_MEMORY_KIB:-64}"
export STRONGROOM_KDF_ITERATIONS="${STRONGROOM_KDF_ITERATIONS:-1}"

STEP="(setup)"
STEPS_DONE=0
# step NAME: announces the next checked step; failures name it.
step() {
    STEP="$*"
    STEPS_DONE=$((STEPS_DONE + 1))
    echo "--- [$INTEROP_NAME] $STEP"
}
fail() {
    echo "FAIL [$INTEROP_NAME] step \"$STEP\": $*" >&2
    exit 1
}
on_error() {
    local rc=$? line=$1
    echo "FAIL [$INTEROP_NAME] step \"$STEP\": command at line $line exited $rc" >&2
    exit "$rc"
}
trap 'on_error $LINENO' ERR

# p11 ARGS...: pkcs11-tool against the module; output (stdout+stderr) in $OUT
# and echoed; the exit code must be 0.
p11() {
    local rc=0
    OUT=$(pkcs11-tool --module "$MODULE" "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq 0 ]] || fail "pkcs11-tool $* exited $rc"
}
# p11_fails ARGS...: as p11, but the command must fail (output in $OUT).
p11_fails() {
    local rc=0
    OUT=$(pkcs11-tool --module "$MODULE" "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -ne 0 ]] || fail "pkcs11-tool $* succeeded but should have failed"
}
# expect REGEX [WHAT]: $OUT must match the (grep -E) regex.
expect() {
    grep -Eq -- "$1" <<<"$OUT" || fail "expected /$1/ in the output${2:+ ($2)}"
}
# expect_not REGEX [WHAT]: $OUT must not match.
expect_not() {
    if grep -Eq -- "$1" <<<"$OUT"; then
        fail "unexpected /$1/ in the output${2:+ ($2)}: $(grep -E -- "$1" <<<"$OUT" | head -3)"
    fi
}
# count REGEX: number of lines of $OUT matching.
count() {
    grep -Ec -- "$1" <<<"$OUT" || true
}

# Call at the end of a script.
finish() {
    echo "PASS [$INTEROP_NAME] $STEPS_DONE steps"
}

# ----- background processes and ports (used by openssl-engine.sh, openssh.sh) -----
# The module may also be given as STRONGROOM_MODULE: scripts that accept it set
# MODULE from it before sourcing this file.

BG_PIDS=()
# bg_start LOG CMD...: runs CMD in the background, stdout+stderr to LOG; its pid
# is in $BG_PID. Every process started this way is killed (TERM, then KILL) at
# exit, before the work directory is removed.
bg_start() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 </dev/null &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
    if [[ ${#BG_PIDS[@]} -eq 1 ]]; then
        trap 'bg_stop_all; cleanup_workdir' EXIT
    fi
}
# bg_stop PID: stops one process started by bg_start and waits for it.
bg_stop() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
bg_stop_all() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        bg_stop "$pid"
    done
    BG_PIDS=()
}
# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    local p i
    for i in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]]; then
            echo "$p"
            return 0
        fi
    done
    fail "no free TCP port found"
}
# wait_port PORT PID [SECONDS]: waits until something listens on 127.0.0.1:PORT;
# fails when PID exits first or after SECONDS (default 20).
wait_port() {
    local port=$1 pid=$2 secs=${3:-20} i
    for i in $(seq $((secs * 10))); do
        if [[ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]]; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "process $pid exited before listening on port $port"
        sleep 0.1
    done
    fail "nothing listens on port $port after ${secs}s"
}

# ----- helpers for p11-kit.sh, java.sh, python.sh, many-processes.sh -----

# Debian's python3 (PyKCS11 comes from the python3-pykcs11 package, which a
# pyenv or other python3 earlier in PATH would not see).
SYS_PYTHON=/usr/bin/python3

# need_packages PKG...: installs the missing Debian packages with apt-get (as
# root, or through sudo); fails the step when that is impossible.
need_packages() {
    local p missing=()
    for p in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$p")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "[$INTEROP_NAME] installing missing packages: ${missing[*]}"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || fail "missing packages ${missing[*]} and not root"
        sudo=(sudo)
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null ||
        { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update >/dev/null &&
          DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; } ||
        fail "apt-get install ${missing[*]} failed"
}

# init_token LABEL SO_PIN PIN [SLOT]: pkcs11-tool initialises the token in SLOT
# (default 0) with LABEL and sets the user PIN.
init_token() {
    local slot=${4:-0}
    p11 --init-token --slot "$slot" --label "$1" --so-pin "$2" >/dev/null
    p11 --slot "$slot" --init-pin --so-pin "$2" --pin "$3" >/dev/null
}

# python_pkcs11_venv: sets PY_VENV_PYTHON to the python of a venv that holds
# python-pkcs11 from PyPI (and sees Debian's PyKCS11 through system site
# packages). The venv is made once, in $STRONGROOM_PY_VENV (default
# ${XDG_CACHE_HOME:-~/.cache}/strongroom-interop/venv), and reused.
python_pkcs11_venv() {
    local venv=${STRONGROOM_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/strongroom-interop/venv}
    if ! "$venv/bin/python" -c 'import pkcs11, PyKCS11' 2>/dev/null; then
        echo "[$INTEROP_NAME] making the python-pkcs11 venv $venv"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        "$SYS_PYTHON" -m venv --system-site-packages "$venv" || fail "python3 -m venv $venv failed (python3-venv)"
        "$venv/bin/pip" install -q python-pkcs11 || fail "pip install python-pkcs11 failed"
        "$venv/bin/python" -c 'import pkcs11, PyKCS11' || fail "the venv cannot import pkcs11 and PyKCS11"
    fi
    PY_VENV_PYTHON=$venv/bin/python
}

# run_ok CMD...: runs CMD with its output (stdout+stderr) in $OUT, echoed; must exit 0.
run_ok() {
    local rc=0
    OUT=$("$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq 0 ]] || fail "$* exited $rc"
}
