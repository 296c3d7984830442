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
