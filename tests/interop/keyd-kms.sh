#!/usr/bin/env bash
# The KMS-style API of strongroom-keyd from a script (curl + jq + openssl),
# over TLS, with the service logged in as its own crypto user:
#
#  1. set-up as in the README: token and crypto user keyd (strongroom CLI),
#     a certificate from a private CA; a non-loopback address without TLS is
#     refused at start; plain HTTP on the TLS port gets no answer;
#  2. envelope encryption of a file: GenerateDataKey, the file encrypted with
#     the plaintext data key (openssl), only the wrapped key kept beside it;
#     later (service restarted, master key rotated) Decrypt gives the data key
#     back and the file decrypts;
#  3. GenerateMac / VerifyMac with an HMAC key generated in the token;
#  4. grants: a client without a policy for a key gets a grant (admin CLI and
#     KMS API), uses it, is refused once it expires or is revoked;
#  5. scheduled rotation: a key with a 2-second period gets new versions from
#     the service's scheduler;
#  6. the token's default user does not see the crypto user's keys; the audit
#     log has every request and no key value.
#
# Needs: curl, jq, openssl, pkcs11-tool, and the release binaries
# strongroom-keyd and strongroom next to MODULE.
# Usage: MODULE=path/to/libstrongroom_pkcs11.so [STRONGROOM_CLI=path/to/strongroom] bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1
source "$(dirname "$0")/lib/keyd.sh" || exit 1

SO_PIN=12345678
DEFAULT_PIN=default-user-pin
KEYD_PASSWORD=keyd-password-$RANDOM$RANDOM
TOKEN_LABEL=keyd
KEYD=$(dirname "$MODULE")/strongroom-keyd
CLI="${STRONGROOM_CLI:-$(dirname "$MODULE")/strongroom}"
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE, keyd $KEYD"

step "tools"
need_packages curl jq openssl
[[ -x "$KEYD" ]] || fail "$KEYD is missing (cargo build --release builds it)"
[[ -x "$CLI" ]] || fail "$CLI is missing (cargo build --release builds it)"

step "1) token '$TOKEN_LABEL', crypto user keyd, TLS certificate from a private CA"
run_ok env STRONGROOM_SO_PIN=$SO_PIN STRONGROOM_USER_PIN=$DEFAULT_PIN "$CLI" --module "$MODULE" init --label "$TOKEN_LABEL"
run_ok env STRONGROOM_SO_PIN=$SO_PIN STRONGROOM_USER_PASSWORD=$KEYD_PASSWORD "$CLI" --module "$MODULE" user add keyd
keyd_setup "rotation_check_seconds = 1"
# hex_of_b64: stdin base64 -> lower-case hex on stdout.
hex_of_b64() { base64 -d | od -An -tx1 | tr -d ' \n'; }

rc=0
OUT=$(timeout 20 "$KEYD" --module "$MODULE" --token-label "$TOKEN_LABEL" --user keyd \
    --password-file "$KEYD_DIR/password" --database "$KEYD_DIR/keyd.db" --listen "0.0.0.0:$PORT" serve 2>&1) || rc=$?
printf '%s\n' "$OUT"
[[ $rc -eq 1 ]] || fail "serve on 0.0.0.0 without TLS exited $rc, want 1"
expect 'is not loopback' "a clear refusal"
expect 'tls_cert' "the message says what to set"

run_ok keyd admin create-key 1
run_ok keyd admin create-key mac1 --spec HMAC_256
APP=$(keyd admin create-client app --keys 1) || fail "create-client app"
OTHER=$(keyd admin create-client other --keys '') || fail "create-client other"
ADMIN=$(keyd admin create-client ops --keys '*' --admin) || fail "create-client ops"
keyd_start
keyd_log_has 'logged in as crypto user keyd' || fail "not logged in as keyd: $(cat "$WORKDIR/keyd.log")"
keyd_log_has "listening on https://127.0.0.1:$PORT" || fail "not listening with TLS: $(cat "$WORKDIR/keyd.log")"
api "$APP" /v1/sys/health
[[ $CODE == 200 ]] || fail "health over TLS: HTTP $CODE $OUT"
rc=0
curl -sS -o /dev/null "http://127.0.0.1:$PORT/v1/sys/health" 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] || fail "plain HTTP was answered on the TLS port"
rc=0
curl -sS -o /dev/null "https://127.0.0.1:$PORT/v1/sys/health" 2>/dev/null || rc=$?
[[ $rc -eq 60 ]] || fail "curl without the CA: exit $rc, want 60 (certificate not trusted)"

step "2) envelope encryption of a file; only the wrapped data key is kept"
head -c 200000 /dev/urandom >"$WORKDIR/report.bin"
api "$APP" /kms/GenerateDataKey '{"KeyId":"1"}'
[[ $CODE == 200 ]] || fail "GenerateDataKey: HTTP $CODE $OUT"
DK=$(jq -r .Plaintext <<<"$OUT" | hex_of_b64)
[[ ${#DK} == 64 ]] || fail "data key is not 32 bytes"
jq -r .CiphertextBlob <<<"$OUT" >"$WORKDIR/report.bin.key"
IV=$(openssl rand -hex 16)
printf '%s\n' "$IV" >"$WORKDIR/report.bin.iv"
openssl enc -aes-256-cbc -K "$DK" -iv "$IV" -in "$WORKDIR/report.bin" -out "$WORKDIR/report.bin.enc"
DK_SAVED=$DK
unset DK OUT
# What stays on disk: the ciphertext, the IV, the wrapped key. No data key.
/usr/bin/python3 - "$DK_SAVED" "$WORKDIR" "$KEYD_DIR" "$STRONGROOM_STORE" <<'EOF' || fail "the data key is on disk"
import os, sys
key = bytes.fromhex(sys.argv[1])
for top in sys.argv[2:]:
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            if f in ("resp",):
                continue
            data = open(p, "rb").read()
            if key in data or sys.argv[1].encode() in data:
                sys.exit(f"data key in {p}")
EOF
rm -f "$WORKDIR/resp"
echo "kept: report.bin.enc, report.bin.iv, report.bin.key ($(wc -c <"$WORKDIR/report.bin.key") bytes of base64)"
# Later: the service restarted and its master key rotated.
api "$ADMIN" /kms/RotateMaster '{}'
[[ $CODE == 200 ]] || fail "RotateMaster: HTTP $CODE $OUT"
keyd_stop
keyd_start
api "$APP" /kms/Decrypt "{\"CiphertextBlob\":\"$(cat "$WORKDIR/report.bin.key")\"}"
[[ $CODE == 200 && $(jq -r .KeyId <<<"$OUT") == 1 ]] || fail "Decrypt: HTTP $CODE $OUT"
DK=$(jq -r .Plaintext <<<"$OUT" | hex_of_b64)
[[ $DK == "$DK_SAVED" ]] || fail "Decrypt gave another data key"
openssl enc -d -aes-256-cbc -K "$DK" -iv "$(cat "$WORKDIR/report.bin.iv")" \
    -in "$WORKDIR/report.bin.enc" -out "$WORKDIR/report.bin.dec"
cmp -s "$WORKDIR/report.bin" "$WORKDIR/report.bin.dec" || fail "the file did not decrypt"
unset DK
echo "the file decrypts after a restart and a master key rotation"
api "$OTHER" /kms/Decrypt "{\"CiphertextBlob\":\"$(cat "$WORKDIR/report.bin.key")\"}"
[[ $CODE == 403 ]] || fail "a client without key 1 decrypted: HTTP $CODE"
api "$APP" /kms/Decrypt "{\"CiphertextBlob\":\"$(tr 'A-Za-z' 'B-ZAb-za' <"$WORKDIR/report.bin.key")\"}"
[[ $CODE == 400 ]] || fail "a tampered blob: HTTP $CODE"

step "3) GenerateMac / VerifyMac with an HMAC key in the token"
MSG=$(printf 'invoice 4711: pay 100 EUR' | base64 -w0)
api "$ADMIN" /kms/GenerateMac "{\"KeyId\":\"mac1\",\"Message\":\"$MSG\",\"MacAlgorithm\":\"HMAC_SHA_256\"}"
[[ $CODE == 200 ]] || fail "GenerateMac: HTTP $CODE $OUT"
MAC=$(jq -r .Mac <<<"$OUT")
[[ $(base64 -d <<<"$MAC" | wc -c) == 32 ]] || fail "MAC is not 32 bytes"
api "$ADMIN" /kms/VerifyMac "{\"KeyId\":\"mac1\",\"Message\":\"$MSG\",\"Mac\":\"$MAC\"}"
[[ $CODE == 200 && $(jq -r .MacValid <<<"$OUT") == true ]] || fail "VerifyMac: HTTP $CODE $OUT"
BAD=$(printf 'invoice 4711: pay 900 EUR' | base64 -w0)
api "$ADMIN" /kms/VerifyMac "{\"KeyId\":\"mac1\",\"Message\":\"$BAD\",\"Mac\":\"$MAC\"}"
[[ $CODE == 400 ]] || fail "a changed message verified: HTTP $CODE $OUT"
grep -q KMSInvalidMacException <<<"$OUT" || fail "no KMSInvalidMacException: $OUT"
p11 --token-label "$TOKEN_LABEL" --login --pin "keyd:$KEYD_PASSWORD" --list-objects --type secrkey
expect 'label: +keyd-hmac-mac1-1'
expect 'Access: +(.*never extractable|sensitive.*never extractable)'

step "4) grants: temporary, revocable; expired and revoked grants are 403"
api "$OTHER" /v1/secret/data/1
[[ $CODE == 403 ]] || fail "other read key 1 without a grant: HTTP $CODE"
run_ok keyd admin create-grant --client other --key 1 --expires-in 3s
GRANT=$(head -n1 <<<"$OUT")
[[ $GRANT == grant.* ]] || fail "no grant id: $OUT"
api "$OTHER" /v1/secret/data/1
[[ $CODE == 200 ]] || fail "the grant did not let other read key 1: HTTP $CODE $OUT"
run_ok keyd admin list-grants --client other
expect "^$GRANT	client other	key 1	expires [0-9]+	active$"
sleep 4
api "$OTHER" /v1/secret/data/1
[[ $CODE == 403 ]] || fail "an expired grant still works: HTTP $CODE"
grep -q expired <<<"$OUT" || fail "the refusal does not say the grant expired: $OUT"
api "$ADMIN" /kms/CreateGrant '{"KeyId":"mac1","GranteePrincipal":"other","ExpiresIn":"1h"}'
[[ $CODE == 200 ]] || fail "CreateGrant: HTTP $CODE $OUT"
GRANT2=$(jq -r .GrantId <<<"$OUT")
api "$OTHER" /kms/VerifyMac "{\"KeyId\":\"mac1\",\"Message\":\"$MSG\",\"Mac\":\"$MAC\"}"
[[ $CODE == 200 ]] || fail "VerifyMac under a grant: HTTP $CODE $OUT"
api "$ADMIN" /kms/ListGrants '{"GranteePrincipal":"other"}'
[[ $CODE == 200 && $(jq '[.Grants[] | select(.Active)] | length' <<<"$OUT") == 1 ]] || fail "ListGrants: $OUT"
api "$ADMIN" /kms/RevokeGrant "{\"GrantId\":\"$GRANT2\"}"
[[ $CODE == 200 ]] || fail "RevokeGrant: HTTP $CODE $OUT"
api "$OTHER" /kms/VerifyMac "{\"KeyId\":\"mac1\",\"Message\":\"$MSG\",\"Mac\":\"$MAC\"}"
[[ $CODE == 403 ]] || fail "a revoked grant still works: HTTP $CODE"

step "5) scheduled rotation: key 1 rotates every 2 s, done by the service"
api "$APP" /v1/secret/data/1
V_BEFORE=$(jq -r .data.metadata.version <<<"$OUT")
run_ok keyd admin set-rotation 1 --every 2s
expect 'rotates every 2s'
for i in $(seq 100); do
    api "$APP" /v1/secret/data/1
    [[ $(jq -r .data.metadata.version <<<"$OUT") -ge $((V_BEFORE + 2)) ]] && break
    sleep 0.2
done
V_AFTER=$(jq -r .data.metadata.version <<<"$OUT")
[[ $V_AFTER -ge $((V_BEFORE + 2)) ]] || fail "key 1 still at version $V_AFTER (was $V_BEFORE)"
run_ok keyd admin set-rotation 1 --every off
api "$APP" "/v1/secret/data/1?version=$V_BEFORE"
[[ $CODE == 200 ]] || fail "version $V_BEFORE no longer readable"
# The old envelope blob still decrypts (it names its version).
api "$APP" /kms/Decrypt "{\"CiphertextBlob\":\"$(cat "$WORKDIR/report.bin.key")\"}"
[[ $CODE == 200 ]] || fail "Decrypt after rotations: HTTP $CODE"
run_ok keyd admin list-keys
expect '^mac1	versions \[1\]	latest 1	enabled	HMAC_256	in the token$'

step "6) the default user does not see keyd's keys; audit complete, without key values"
p11 --token-label "$TOKEN_LABEL" --login --pin "$DEFAULT_PIN" --list-objects --type secrkey
expect_not 'keyd-' "the default user sees a key of crypto user keyd"
run_ok keyd admin audit --last 1000
expect 'client=app key=1 version=1 action=GenerateDataKey result=ok'
expect 'client=app key=1 version=1 action=Decrypt result=ok'
expect 'client=other key=1 version=1 action=Decrypt result=denied'
expect 'client=ops key=mac1 version=- action=VerifyMac result=invalid_mac'
expect "client=other key=1 version=1 action=VaultRead result=ok remote=127.0.0.1:[0-9]+ detail=grant $GRANT"
expect 'client=other key=1 version=- action=VaultRead result=denied'
expect "client=admin-cli key=1 version=- action=CreateGrant result=ok remote=- detail=grant $GRANT for client other"
expect "client=ops key=mac1 version=- action=RevokeGrant result=ok remote=.* detail=grant $GRANT2"
expect 'client=scheduler key=1 version=[0-9]+ action=ScheduledRotation result=ok remote=- detail=period 2s'
expect_not "$DK_SAVED" "a data key in the audit log"
expect_not "$MAC" "a MAC in the audit log"

keyd_stop
finish
