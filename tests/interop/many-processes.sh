#!/usr/bin/env bash
# Many processes on one token at once: each round starts PROCS PyKCS11
# processes together; each opens one session, creates KEYS token AES keys with
# unique labels (no usage attributes) and then encrypts/decrypts with every one
# (single- and multi-part). ROUNDS rounds. Every call in every process must
# succeed. Afterwards a new process must find exactly PROCS*KEYS*ROUNDS token
# secret keys by class and every label exactly once; pkcs11-tool, another
# client, must count the same.
# Defaults 8 processes x 50 keys x 20 rounds (8000 keys); takes about 30-60 s
# (see the time printed at the end).
# Usage: MODULE=path/to/lib.so [PROCS=8 KEYS=50 ROUNDS=20] bash this-file
: "${MODULE:=${STRONGROOM_MODULE:-}}"
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
PROCS=${PROCS:-8}
KEYS=${KEYS:-50}
ROUNDS=${ROUNDS:-20}
TOTAL=$((PROCS * KEYS * ROUNDS))
WORKER="$(cd "$(dirname "$0")/python" && pwd)/many_keys.py"
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE; $PROCS processes x $KEYS keys x $ROUNDS rounds"

step "tools and token 'many'"
need_packages python3-pykcs11 opensc
"$SYS_PYTHON" -c 'import PyKCS11' || fail "PyKCS11 does not import in $SYS_PYTHON"
init_token many $SO_PIN $PIN

PREFIXES="$WORKDIR/prefixes"
: >"$PREFIXES"
T_START=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
    step "round $r/$ROUNDS: $PROCS processes at once, each creating and using $KEYS keys"
    pids=()
    for ((p = 1; p <= PROCS; p++)); do
        prefix="mp-r$r-p$p"
        echo "$prefix" >>"$PREFIXES"
        "$SYS_PYTHON" "$WORKER" create "$MODULE" many $PIN "$prefix" "$KEYS" >"$WORKDIR/$prefix.log" 2>&1 &
        pids+=($!)
    done
    bad=0
    for ((p = 1; p <= PROCS; p++)); do
        rc=0
        wait "${pids[$((p - 1))]}" || rc=$?
        log="$WORKDIR/mp-r$r-p$p.log"
        if [[ $rc -ne 0 ]]; then
            bad=$((bad + 1))
            echo "process mp-r$r-p$p exited $rc:" >&2
            tail -n 15 "$log" | sed 's/^/    | /' >&2
        else
            cat "$log"
        fi
    done
    [[ $bad -eq 0 ]] || fail "$bad of $PROCS processes failed in round $r"
done
T_CREATE=$((SECONDS - T_START))
echo "[$INTEROP_NAME] $ROUNDS rounds took ${T_CREATE}s"

step "a new process finds exactly $TOTAL keys by class and each of them by label"
t0=$SECONDS
run_ok "$SYS_PYTHON" "$WORKER" check "$MODULE" many $PIN "$TOTAL" "$PREFIXES" "$KEYS"
expect '^OK check$'
echo "check took $((SECONDS - t0))s"

step "pkcs11-tool counts $TOTAL secret keys too"
# stdout only: pkcs11-tool warns on stderr about every sensitive CKA_VALUE it
# tries to read (CKR_ATTRIBUTE_SENSITIVE, expected) and the streams interleave.
pkcs11-tool --module "$MODULE" --login --pin $PIN --list-objects --type secrkey \
    >"$WORKDIR/list.out" 2>"$WORKDIR/list.err" || fail "pkcs11-tool --list-objects failed: $(tail -3 "$WORKDIR/list.err")"
n=$(grep -c '^Secret Key Object' "$WORKDIR/list.out" || true)
[[ $n -eq $TOTAL ]] || fail "pkcs11-tool lists $n secret keys, expected $TOTAL"
echo "pkcs11-tool: $n secret keys"

echo "[$INTEROP_NAME] total ${SECONDS}s (rounds ${T_CREATE}s)"
finish
