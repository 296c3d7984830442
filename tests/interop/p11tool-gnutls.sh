#!/usr/bin/env bash
# GnuTLS p11tool against the module (loaded directly with --provider; p11-kit
# module registration is not tested here): token URIs (RFC 7512), an EC key
# pair generated through GnuTLS, and GnuTLS's own sign/verify self-test.
# Mechanisms: CKM_EC_KEY_PAIR_GEN, CKM_ECDSA (with the key-pair steps).
# Usage: MODULE=path/to/lib.so bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"

# gt ARGS: p11tool with output in $OUT; must exit 0.
gt() {
    local rc=0
    OUT=$(GNUTLS_PIN=$PIN GNUTLS_SO_PIN=$SO_PIN p11tool --provider "$MODULE" "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq 0 ]] || fail "p11tool $* exited $rc"
}

step "set up token 'gnutls' with pkcs11-tool"
p11 --init-token --slot 0 --label gnutls --so-pin $SO_PIN
p11 --slot 0 --init-pin --so-pin $SO_PIN --pin $PIN
p11 -L
SERIAL=$(sed -n 's/^ *serial num *: *//p' <<<"$OUT" | head -1)

step "--list-tokens gives an RFC 7512 URI with manufacturer, model, serial and label"
gt --list-tokens
expect "URL: pkcs11:model=Strongroom%20soft;manufacturer=Strongroom;serial=$SERIAL;token=gnutls\$"
expect 'Flags: .*RNG.*Requires login'

step "--generate-privkey ecdsa secp256r1 on the token"
gt --login --generate-privkey ecdsa --curve secp256r1 --label gk "pkcs11:token=gnutls"
expect 'BEGIN PUBLIC KEY'

step "--list-all shows the public and the private key with one id"
gt --login --list-all "pkcs11:token=gnutls"
expect 'object=gk;type=public'
expect 'object=gk;type=private'
expect 'Type: Private key \(EC/ECDSA-SECP256R1\)'

step "--list-all without login shows the public key only"
gt --list-all "pkcs11:token=gnutls"
expect 'object=gk;type=public'
expect_not 'type=private'

step "--test-sign signs with the private key and verifies with the public key"
gt --login --test-sign "pkcs11:token=gnutls;object=gk;type=private"
expect_not 'fail|error' "test-sign"
expect '^Signing using ECDSA-SHA256\.\.\. ok$'
expect '^Verifying against public key in the token\.\.\. ok$'

finish
