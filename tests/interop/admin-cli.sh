#!/usr/bin/env bash
# The admin CLI `strongroom` (tools/cli) with crypto users and key custody:
# user add/unlock/delete, keys list, key share/unshare (CKA_SR_OWNER,
# CKA_SR_SHARED_WITH), crypto-user lockout, audit verify (and a tampered
# audit entry), backup and restore (and a tampered backup), with pkcs11-tool
# as the application using the keys.
# Usage: MODULE=path/to/lib.so [STRONGROOM_CLI=path/to/strongroom] bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1

CLI="${STRONGROOM_CLI:-$(dirname "$MODULE")/strongroom}"
[[ -x "$CLI" ]] || fail "$CLI does not exist (cargo build --release)"
command -v sqlite3 >/dev/null || need_packages sqlite3
echo "[$INTEROP_NAME] cli $CLI, module $MODULE, store $STRONGROOM_STORE"

SO_PIN=12345678
PIN=1234
export STRONGROOM_SO_PIN=$SO_PIN
unset STRONGROOM_USER_PIN STRONGROOM_USER_PASSWORD STRONGROOM_BACKUP_PASSPHRASE

# cli ARGS: the CLI (current environment) with output in $OUT; must exit 0.
cli() {
    local rc=0
    OUT=$("$CLI" --module "$MODULE" "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq 0 ]] || fail "strongroom $* exited $rc"
}
# cli_rc WANT ARGS: the CLI must exit WANT (output in $OUT).
cli_rc() {
    local want=$1 rc=0
    shift
    OUT=$("$CLI" --module "$MODULE" "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq $want ]] || fail "strongroom $* exited $rc, want $want"
}
# as PIN FN ARGS: runs FN (cli, cli_rc, p11, p11_fails) with STRONGROOM_USER_PIN=PIN.
as() {
    local pin=$1 rc=0
    shift
    STRONGROOM_USER_PIN=$pin "$@" || rc=$?
    return $rc
}
# encrypt PIN OUTFILE: AES-ECB encryption of $WORKDIR/plain with key k1 as PIN.
encrypt() {
    rm -f "$2"
    p11 --login --pin "$1" --encrypt -m AES-ECB --label k1 \
        --input-file "$WORKDIR/plain" --output-file "$2"
    [[ $(stat -c %s "$2") -eq 32 ]] || fail "ciphertext $2 is $(stat -c %s "$2") bytes, want 32"
}
# row LABEL: the `keys list` line of LABEL in $OUT (HANDLE CLASS TYPE LABEL ...).
row() {
    awk -v l="$1" '$4 == l' <<<"$OUT"
}

step "token, default user and crypto users app1, app2"
init_token admin $SO_PIN $PIN
STRONGROOM_USER_PASSWORD=pw-app1 cli user add app1
expect '^user app1: password set$'
STRONGROOM_USER_PASSWORD=pw-app2 cli user add app2
cli user list
expect '^0 +admin +app1 +0/5$'
expect '^0 +admin +app2 +0/5$'

step "status shows the users, the objects visible without login and the store size"
cli status
expect "^store: +$STRONGROOM_STORE\$"
expect '^  size: +[0-9.]+ (B|KiB|MiB) in [0-9]+ files? \([0-9]+ bytes\)$'
expect '^slot 0: token "admin"'
expect '^  objects: 0 visible without login$'
expect '^  users: +so \(0/10 failures\), user \(0/10 failures\), app1 \(0/5 failures\), app2 \(0/5 failures\)$'
expect '^slot 1: free'

step "app1 generates AES key k1 with pkcs11-tool"
p11 --login --pin app1:pw-app1 --keygen --key-type AES:32 --label k1 --id 01 --private --sensitive
head -c 32 /dev/zero | tr '\0' 'A' >"$WORKDIR/plain"

step "keys list as app1 shows k1 owned by app1, shared with nobody, no value"
as app1:pw-app1 cli keys list
K1=$(row k1)
[[ -n "$K1" ]] || fail "k1 is not listed for app1"
grep -Eq '^[0-9]+ +SECRET_KEY +AES +k1 +01 +app1 +- +token,private,sensitive,' <<<"$K1" ||
    fail "unexpected k1 row: $K1"
expect '^HANDLE +CLASS +KEY TYPE +LABEL +ID +OWNER +SHARED WITH +FLAGS$'
expect '^1 object visible to user app1 in slot 0$'
expect_not 'VALUE'

step "keys list as app2 does not show k1; as the default user neither"
as app2:pw-app2 cli keys list
[[ -z "$(row k1)" ]] || fail "app2 sees k1 before it is shared"
expect '^0 objects visible to user app2 in slot 0$'
as $PIN cli keys list
[[ -z "$(row k1)" ]] || fail "the default user sees app1's k1"
p11_fails --login --pin app2:pw-app2 --encrypt -m AES-ECB --label k1 \
    --input-file "$WORKDIR/plain" --output-file "$WORKDIR/ct-none"

step "key share k1 --with app2 (as app1)"
encrypt app1:pw-app1 "$WORKDIR/ct-app1"
as app1:pw-app1 cli key share k1 --with app2
expect '"k1" \(handle [0-9]+, owner app1\) now shared with app2; shared with: app2$'
as app1:pw-app1 cli key share k1 --with app2
expect 'was already shared with app2; shared with: app2$'
as app1:pw-app1 cli keys list
grep -Eq ' k1 +01 +app1 +app2 +' <<<"$(row k1)" || fail "k1 row after sharing: $(row k1)"

step "app2 now sees k1 and encrypts with it (same ciphertext as app1)"
as app2:pw-app2 cli keys list
grep -Eq '^[0-9]+ +SECRET_KEY +AES +k1 +01 +app1 +app2 +' <<<"$(row k1)" ||
    fail "app2 does not see k1 as shared: $OUT"
encrypt app2:pw-app2 "$WORKDIR/ct-app2"
cmp -s "$WORKDIR/ct-app1" "$WORKDIR/ct-app2" || fail "app2's ciphertext differs from app1's"

step "app2 cannot delete k1, nor share it"
p11_fails --login --pin app2:pw-app2 --delete-object --type secrkey --label k1
expect '(CKR_ACTION_PROHIBITED|\(0x1b\))' "C_DestroyObject as a user k1 is only shared with"
as app2:pw-app2 cli_rc 1 key share k1 --with app2
expect 'only the owner can share a key'
as app2:pw-app2 cli_rc 1 key unshare k1 --with app2
expect 'only the owner can share a key'
as app2:pw-app2 cli keys list
[[ -n "$(row k1)" ]] || fail "k1 vanished after app2's attempts"

step "unshare and share again; errors for unknown labels, users and duplicates"
as app1:pw-app1 cli key unshare k1 --with app2
expect 'no longer shared with app2; shared with: -$'
as app2:pw-app2 cli keys list
[[ -z "$(row k1)" ]] || fail "app2 still sees k1 after unshare"
as app1:pw-app1 cli key share k1 --with app2
as app1:pw-app1 cli_rc 1 key share nosuch --with app2
expect 'no object labelled "nosuch" is visible to user app1'
as app1:pw-app1 cli_rc 1 key share k1 --with app9
expect 'no crypto user app9'
p11 --login --pin app1:pw-app1 --keygen --key-type AES:16 --label dup --id 0a --private --sensitive
p11 --login --pin app1:pw-app1 --keygen --key-type AES:16 --label dup --id 0b --private --sensitive
as app1:pw-app1 cli_rc 1 key share dup --with app2
expect '2 objects are labelled "dup" .*pass --id HEX'
as app1:pw-app1 cli key share dup --id 0b --with app2
expect '"dup" .* now shared with app2'

step "usage errors exit 2, runtime errors 1, --help 0"
cli_rc 2 key share k1
cli_rc 2 key share k1 --with 'bad name'
cli_rc 2 keys list --slot x
cli_rc 1 keys list
expect 'set STRONGROOM_USER_PIN'
as app1:wrong cli_rc 1 keys list
expect 'wrong password'
as app1:pw-app1 cli_rc 1 keys list --slot 1
expect 'slot 1 holds no token'
cli_rc 0 --help
expect 'Exit codes: 0 success, 1 runtime error, 2 usage error'
expect 'STRONGROOM_USER_PIN'
for c in "keys" "keys list" "key" "key share" "key unshare" "status" "user" "user unlock" \
    "user delete" "audit" "audit verify" "backup" "restore"; do
    # shellcheck disable=SC2086
    cli_rc 0 $c --help >/dev/null
done

step "lockout: 5 wrong logins lock app2; strongroom user unlock app2 restores it"
for i in 1 2 3 4 5; do
    p11_fails --login --pin app2:wrong -O >/dev/null
done
p11_fails --login --pin app2:pw-app2 -O
expect 'CKR_PIN_LOCKED'
as app2:pw-app2 cli_rc 1 keys list
expect 'locked'
cli user list
expect '^0 +admin +app2 +5/5 \(locked\)$'
cli status
expect 'app2 \(5/5 failures, locked\)'
STRONGROOM_USER_PASSWORD=pw-app2 cli user unlock app2
p11 --login --pin app2:pw-app2 -O
expect 'label: +k1$'
cli user list
expect '^0 +admin +app2 +0/5$'

step "strongroom user delete app1 leaves k1 usable by app2"
cli user delete app1
expect '^user app1: deleted$'
cli user list
expect_not ' app1 '
p11_fails --login --pin app1:pw-app1 -O
encrypt app2:pw-app2 "$WORKDIR/ct-app2-after-delete"
cmp -s "$WORKDIR/ct-app1" "$WORKDIR/ct-app2-after-delete" || fail "k1 changed after deleting app1"
as app2:pw-app2 cli keys list
grep -Eq ' k1 +01 +app1 +app2 +' <<<"$(row k1)" || fail "k1 row after deleting app1: $(row k1)"

step "audit verify passes; a flipped byte in one entry makes it exit 1 naming the entry"
DB="$STRONGROOM_STORE/strongroom.db"
[[ -f "$DB" ]] || fail "$DB does not exist"
cli audit verify
expect '^audit log intact: [0-9]+ entries$'
cli audit export
expect '"function":"C_SetAttributeValue"'
expect '"user":"app1"'
MAX=$(sqlite3 "$DB" 'SELECT max(seq) FROM audit')
SEQ=$((MAX / 2))
ORIG=$(sqlite3 "$DB" "SELECT hex(entry) FROM audit WHERE seq=$SEQ")
[[ -n "$ORIG" ]] || fail "no audit entry $SEQ"
FLIPPED=$(printf '%02X' $((16#${ORIG:0:2} ^ 0x01)))${ORIG:2}
sqlite3 "$DB" "UPDATE audit SET entry = X'$FLIPPED' WHERE seq=$SEQ"
cli_rc 1 audit verify
expect "BROKEN at entry $SEQ\\b"
cli_rc 1 audit export
sqlite3 "$DB" "UPDATE audit SET entry = X'$ORIG' WHERE seq=$SEQ"
cli audit verify
expect '^audit log intact: '

step "backup, restore into a new store; pkcs11-tool lists and uses the keys there"
export STRONGROOM_BACKUP_PASSPHRASE=backup-pass-1
cli backup --out "$WORKDIR/b.srbk"
expect "^backup written: $WORKDIR/b.srbk \\([0-9]+ bytes\\)$"
[[ $(stat -c %a "$WORKDIR/b.srbk") == 600 ]] || fail "backup mode $(stat -c %a "$WORKDIR/b.srbk"), want 600"
ORIG_STORE=$STRONGROOM_STORE
export STRONGROOM_STORE="$WORKDIR/store2"
cli restore "$WORKDIR/b.srbk"
expect "^restored .* into $STRONGROOM_STORE\$"
p11 --login --pin app2:pw-app2 -O
expect 'label: +k1$'
expect 'label: +dup$'
encrypt app2:pw-app2 "$WORKDIR/ct-restored"
cmp -s "$WORKDIR/ct-app1" "$WORKDIR/ct-restored" || fail "k1 encrypts differently after restore"
p11 --login --pin $PIN -O
as app2:pw-app2 cli keys list
grep -Eq ' k1 +01 +app1 +app2 +' <<<"$(row k1)" || fail "k1 row in the restored store: $(row k1)"
cli audit verify
cli user list
expect '^0 +admin +app2 +0/5$'

step "a tampered backup is refused and leaves the target empty"
cp "$WORKDIR/b.srbk" "$WORKDIR/bad.srbk"
SIZE=$(stat -c %s "$WORKDIR/bad.srbk")
OFF=$((SIZE / 2))
BYTE=$(od -An -tu1 -j "$OFF" -N1 "$WORKDIR/bad.srbk" | tr -d ' ')
printf "$(printf '\\%03o' $((BYTE ^ 0x40)))" |
    dd of="$WORKDIR/bad.srbk" bs=1 seek="$OFF" count=1 conv=notrunc status=none
cmp -s "$WORKDIR/b.srbk" "$WORKDIR/bad.srbk" && fail "the copy was not changed"
export STRONGROOM_STORE="$WORKDIR/store3"
cli_rc 1 restore "$WORKDIR/bad.srbk"
expect 'refused'
if [[ -e "$STRONGROOM_STORE" ]]; then
    LEFT=$(find "$STRONGROOM_STORE" -mindepth 1 | head -5)
    [[ -z "$LEFT" ]] || fail "the refused restore left files in $STRONGROOM_STORE: $LEFT"
fi
STRONGROOM_BACKUP_PASSPHRASE=wrong-pass cli_rc 1 restore "$WORKDIR/b.srbk"
if [[ -e "$STRONGROOM_STORE" ]]; then
    [[ -z "$(find "$STRONGROOM_STORE" -mindepth 1 | head -1)" ]] || fail "a wrong passphrase left files"
fi
export STRONGROOM_STORE=$ORIG_STORE

finish
