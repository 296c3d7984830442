#!/usr/bin/env bash
# The admin CLI `strongroom` (tools/cli): demo twice on a fresh store, status,
# exit codes. Needs no crypto mechanism (the AES key is made by C_CreateObject).
# Usage: MODULE=path/to/lib.so [STRONGROOM_CLI=path/to/strongroom] bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1

CLI="${STRONGROOM_CLI:-$(dirname "$MODULE")/strongroom}"
[[ -x "$CLI" ]] || fail "$CLI does not exist (cargo build --release)"
echo "[$INTEROP_NAME] cli $CLI, module $MODULE, store $STRONGROOM_STORE"

# cli ARGS: the CLI with output in $OUT; must exit 0.
cli() {
    local rc=0
    OUT=$("$CLI" --module "$MODULE" "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq 0 ]] || fail "strongroom $* exited $rc"
}
# cli_rc WANT ARGS: the CLI must exit WANT.
cli_rc() {
    local want=$1 rc=0
    shift
    OUT=$("$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq $want ]] || fail "$* exited $rc, want $want"
}

step "demo on an empty store initialises a token and prints its PINs"
cli demo
expect 'initialised "strongroom-demo" in slot 0'
expect '^  SO PIN: +[0-9]{8}$'
expect '^  user PIN: +[0-9]{8}$'
expect 'strongroom-demo-private: data, private, value read back intact'
expect 'strongroom-demo-public: data, public, value read back intact'
expect 'strongroom-demo-aes: AES-256 secret key, private, CKA_VALUE sensitive'
expect 'without login: 1 public object visible, 0 private objects visible'
expect '^no plaintext found in .*strongroom'
USER_PIN=$(sed -n 's/^  user PIN: *//p' <<<"$OUT")
PINS="$STRONGROOM_STORE/demo-pins.txt"
[[ -f "$PINS" ]] || fail "$PINS was not written"
[[ $(stat -c %a "$PINS") == 600 ]] || fail "$PINS has mode $(stat -c %a "$PINS"), want 600"
grep -qx "user_pin=$USER_PIN" "$PINS" || fail "$PINS does not hold the printed user PIN"

step "the demo token works for pkcs11-tool with the printed user PIN"
p11 --token-label strongroom-demo --login --pin "$USER_PIN" -O
expect "label: +'strongroom-demo-private'"
expect 'label: +strongroom-demo-aes'

step "a second demo run reuses the token and replaces its objects"
cli demo
expect '"strongroom-demo" in slot 0 .*PINs from'
expect 'removed: 3 objects of a previous demo run'
expect '^no plaintext found in '
p11 -L
[[ $(count 'token label +: strongroom-demo$') -eq 1 ]] || fail "expected exactly one demo token"

step "status lists the token, its serial and flags, public objects and the store"
cli status
expect '^library: Strongroom .*Cryptoki 3\.0'
expect "^store: +$STRONGROOM_STORE\$"
expect '^slot 0: token "strongroom-demo"'
expect '^  serial: +[0-9a-f]{16}$'
expect '^  flags: .*token initialized.*user PIN initialized'
expect '^  objects: 1 visible without login'
expect '^slot 1: free'

step "status follows XDG_DATA_HOME when STRONGROOM_STORE is unset"
OUT=$(env -u STRONGROOM_STORE XDG_DATA_HOME="$WORKDIR/xdg" "$CLI" --module "$MODULE" status 2>&1) ||
    fail "status with XDG_DATA_HOME failed: $OUT"
printf '%s\n' "$OUT"
expect "^store: +$WORKDIR/xdg/strongroom\$"
[[ -d "$WORKDIR/xdg/strongroom" ]] || fail "the module did not create \$XDG_DATA_HOME/strongroom"

step "exit codes: usage errors 2, runtime errors 1, --help 0"
cli_rc 2 "$CLI" no-such-command
cli_rc 2 "$CLI"
cli_rc 0 "$CLI" --help
expect 'demo'
expect 'status'
cli_rc 0 "$CLI" demo --help
cli_rc 1 "$CLI" --module "$WORKDIR/missing.so" status
expect 'no such file'
printf 'so_pin=00000000\nuser_pin=00000000\n' >"$PINS"
cli_rc 1 "$CLI" --module "$MODULE" demo
expect 'user PIN in .*demo-pins.txt is wrong'

finish
