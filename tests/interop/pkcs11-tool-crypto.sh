#!/usr/bin/env bash
# pkcs11-tool (OpenSC 0.23) crypto against the module, checked with openssl.
#
# Mechanisms each step needs (the step fails until the module has them):
#   mechanism list ......... CKM_AES_KEY_WRAP (0x2109), CKM_AES_KEY_WRAP_PAD (0x210A),
#                            CKM_AES_KEY_WRAP_KWP (0x210B) listed by C_GetMechanismList
#   AES keygen ............. CKM_AES_KEY_GEN
#   AES encrypt/decrypt .... CKM_AES_CBC_PAD
#   AES wrap/unwrap ........ CKM_AES_KEY_WRAP (unwrap template carries CKA_VALUE_LEN), CKM_AES_CBC_PAD
#   EC keypairgen .......... CKM_EC_KEY_PAIR_GEN (P-256; templates ask for CKA_DERIVE)
#   ECDSA sign/verify ...... CKM_ECDSA_SHA256 (r||s out), CKM_ECDSA (openssl verifies)
#   RSA keypairgen ......... CKM_RSA_PKCS_KEY_PAIR_GEN (2048)
#   RSA sign/verify ........ CKM_SHA256_RSA_PKCS (openssl verifies)
#   --test ................. CKM_RSA_PKCS, CKM_RSA_X_509, CKM_SHA1_RSA_PKCS, CKM_MD5_RSA_PKCS
#                            (if listed), CKM_RSA_PKCS_OAEP (label, MGF1-SHA256), digests,
#                            C_GenerateRandom
#   --test-ec .............. CKM_EC_KEY_PAIR_GEN, CKM_ECDSA_SHA1, CKM_ECDSA
# Usage: MODULE=path/to/lib.so bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
TOKEN=crypto
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"

# u ARGS: pkcs11-tool on the crypto token, logged in as the user.
u() { p11 --token-label $TOKEN --login --pin $PIN "$@"; }
# no_failures WHAT: no "failed"/"error" line in $OUT, except pkcs11-tool's
# "warning: ... failed" notes about optional attributes.
no_failures() {
    local bad
    bad=$(grep -Ei 'fail|error' <<<"$OUT" | grep -Ev '^warning:|^No errors$' || true)
    [[ -z "$bad" ]] || fail "$1 reported: $bad"
}

step "set up token '$TOKEN' with a user PIN"
p11 --init-token --slot-index 0 --label $TOKEN --so-pin $SO_PIN
p11 --token-label $TOKEN --init-pin --so-pin $SO_PIN --pin $PIN

step "--list-mechanisms lists AES-KEY-WRAP, 0x210A and 0x210B"
p11 --token-label $TOKEN --list-mechanisms
expect '^ *AES-KEY-WRAP[,: ]' "CKM_AES_KEY_WRAP"
grep -Eiq '^ *(mechtype-0x210A|AES-KEY-WRAP-PAD)[,: ]' <<<"$OUT" || fail "CKM_AES_KEY_WRAP_PAD (0x210A) not listed"
grep -Eiq '^ *(mechtype-0x210B|AES-KEY-WRAP-KWP)[,: ]' <<<"$OUT" || fail "CKM_AES_KEY_WRAP_KWP (0x210B) not listed"

step "--keygen --key-type AES:32 --label aes1"
u --keygen --key-type AES:32 --label aes1 --id 10
expect 'Secret Key Object; AES length 32'
expect 'label: +aes1$'
u -O --type secrkey
expect 'label: +aes1$'

step "AES-CBC-PAD encrypt then decrypt with aes1 round-trips"
IV=000102030405060708090a0b0c0d0e0f
head -c 1000 /dev/urandom >"$WORKDIR/plain.bin"
u --encrypt -m AES-CBC-PAD --id 10 --iv $IV --input-file "$WORKDIR/plain.bin" --output-file "$WORKDIR/aes1.ct"
[[ $(stat -c %s "$WORKDIR/aes1.ct") -eq 1008 ]] || fail "CBC-PAD ciphertext of 1000 bytes is not 1008 bytes"
u --decrypt -m AES-CBC-PAD --id 10 --iv $IV --input-file "$WORKDIR/aes1.ct" --output-file "$WORKDIR/aes1.pt"
cmp -s "$WORKDIR/plain.bin" "$WORKDIR/aes1.pt" || fail "decrypt(encrypt(x)) != x"

step "AES-KEY-WRAP an extractable key under aes1, unwrap it, same key"
u --keygen --key-type AES:32 --label aes2 --id 11 --extractable
u --wrap -m AES-KEY-WRAP --id 10 --application-id 11 --output-file "$WORKDIR/aes2.wrapped"
[[ $(stat -c %s "$WORKDIR/aes2.wrapped") -eq 40 ]] || fail "wrapped AES-256 key is not 40 bytes"
u --unwrap -m AES-KEY-WRAP --id 10 --input-file "$WORKDIR/aes2.wrapped" --key-type AES:32 \
    --application-id 12 --application-label aes2-unwrapped
u --encrypt -m AES-CBC-PAD --id 11 --iv $IV --input-file "$WORKDIR/plain.bin" --output-file "$WORKDIR/aes2.ct"
u --encrypt -m AES-CBC-PAD --id 12 --iv $IV --input-file "$WORKDIR/plain.bin" --output-file "$WORKDIR/aes2u.ct"
cmp -s "$WORKDIR/aes2.ct" "$WORKDIR/aes2u.ct" || fail "the unwrapped key encrypts differently from the original"

step "--keypairgen --key-type EC:prime256v1 --label ec1 --id 02"
u --keypairgen --key-type EC:prime256v1 --label ec1 --id 02
expect 'Private Key Object; EC'
expect 'Public Key Object; EC +EC_POINT 256 bits'
expect 'EC_PARAMS: +06082a8648ce3d030107'

step "export the EC public key (--read-object --type pubkey) as an openssl key"
p11 --token-label $TOKEN --read-object --type pubkey --id 02 --output-file "$WORKDIR/ec1.pub.der"
openssl pkey -pubin -inform DER -in "$WORKDIR/ec1.pub.der" -out "$WORKDIR/ec1.pub.pem" ||
    fail "openssl cannot read the exported EC public key"
OUT=$(openssl pkey -pubin -in "$WORKDIR/ec1.pub.pem" -noout -text)
expect 'prime256v1' "exported key is on P-256"

step "--sign -m ECDSA-SHA256: raw r||s is 64 bytes, the openssl format verifies with openssl"
head -c 5000 /dev/urandom >"$WORKDIR/msg.bin"
u --sign -m ECDSA-SHA256 --id 02 --input-file "$WORKDIR/msg.bin" --output-file "$WORKDIR/ec1.rs"
[[ $(stat -c %s "$WORKDIR/ec1.rs") -eq 64 ]] || fail "ECDSA P-256 signature (r||s) is not 64 bytes"
u --sign -m ECDSA-SHA256 --id 02 --signature-format openssl --input-file "$WORKDIR/msg.bin" \
    --output-file "$WORKDIR/ec1.sig"
OUT=$(openssl dgst -sha256 -verify "$WORKDIR/ec1.pub.pem" -signature "$WORKDIR/ec1.sig" "$WORKDIR/msg.bin" 2>&1) || true
expect '^Verified OK$' "openssl verifying the token's ECDSA signature"
cp "$WORKDIR/msg.bin" "$WORKDIR/msg.bad" && printf 'x' >>"$WORKDIR/msg.bad"
OUT=$(openssl dgst -sha256 -verify "$WORKDIR/ec1.pub.pem" -signature "$WORKDIR/ec1.sig" "$WORKDIR/msg.bad" 2>&1) || true
expect_not '^Verified OK$' "openssl must reject a signature over other data"

step "--sign -m ECDSA over a SHA-256 hash (what the OpenSSL engine does) verifies with openssl"
openssl dgst -sha256 -binary -out "$WORKDIR/msg.sha256" "$WORKDIR/msg.bin"
u --sign -m ECDSA --id 02 --signature-format openssl --input-file "$WORKDIR/msg.sha256" \
    --output-file "$WORKDIR/ec1.hash.sig"
OUT=$(openssl dgst -sha256 -verify "$WORKDIR/ec1.pub.pem" -signature "$WORKDIR/ec1.hash.sig" "$WORKDIR/msg.bin" 2>&1) || true
expect '^Verified OK$' "openssl verifying the token's CKM_ECDSA signature"

step "ECDSA-SHA256 --verify on the token accepts a good and rejects a bad signature"
# pkcs11-tool --verify exits 0 either way: read its words.
u --verify -m ECDSA-SHA256 --id 02 --input-file "$WORKDIR/msg.bin" --signature-file "$WORKDIR/ec1.rs"
expect 'Signature is valid'
OUT=$(pkcs11-tool --module "$MODULE" --token-label $TOKEN --login --pin $PIN --verify -m ECDSA-SHA256 --id 02 \
    --input-file "$WORKDIR/msg.bad" --signature-file "$WORKDIR/ec1.rs" 2>&1) || true
printf '%s\n' "$OUT"
expect_not 'Signature is valid'
expect 'Invalid signature|CKR_SIGNATURE_INVALID'

step "--keypairgen --key-type rsa:2048 --label rsa1 --id 03"
u --keypairgen --key-type rsa:2048 --label rsa1 --id 03
expect 'Private Key Object; RSA'
expect 'Public Key Object; RSA 2048 bits'

step "--sign -m SHA256-RSA-PKCS verifies with openssl"
p11 --token-label $TOKEN --read-object --type pubkey --id 03 --output-file "$WORKDIR/rsa1.pub.der"
openssl pkey -pubin -inform DER -in "$WORKDIR/rsa1.pub.der" -out "$WORKDIR/rsa1.pub.pem" ||
    fail "openssl cannot read the exported RSA public key"
u --sign -m SHA256-RSA-PKCS --id 03 --input-file "$WORKDIR/msg.bin" --output-file "$WORKDIR/rsa1.sig"
[[ $(stat -c %s "$WORKDIR/rsa1.sig") -eq 256 ]] || fail "RSA-2048 signature is not 256 bytes"
OUT=$(openssl dgst -sha256 -verify "$WORKDIR/rsa1.pub.pem" -signature "$WORKDIR/rsa1.sig" "$WORKDIR/msg.bin" 2>&1) || true
expect '^Verified OK$' "openssl verifying the token's RSA signature"
OUT=$(openssl dgst -sha256 -verify "$WORKDIR/rsa1.pub.pem" -signature "$WORKDIR/rsa1.sig" "$WORKDIR/msg.bad" 2>&1) || true
expect_not '^Verified OK$' "openssl must reject a signature over other data"

step "-O lists the generated keys with their labels and ids"
u -O
expect 'label: +ec1$'
expect 'label: +rsa1$'
expect 'label: +aes1$'
[[ $(count '^Private Key Object') -eq 2 ]] || fail "expected two private keys"

step "--test exits 0 with no failed line"
u --test
no_failures "pkcs11-tool --test"
expect 'No errors'

step "--test-ec exits 0 with no failed line"
u --session-rw --test-ec --id 04 --key-type EC:prime256v1
no_failures "pkcs11-tool --test-ec"

finish
