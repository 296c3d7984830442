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
#   README mechanisms ...... every CKM_ of README.md's mechanism table listed by -M
#   ECDSA matrix ........... CKM_ECDSA, CKM_ECDSA_SHA1/224/256/384/512 on P-256 and P-384
#   RSA signature matrix ... CKM_RSA_PKCS, CKM_SHA1/224/256/384/512_RSA_PKCS, CKM_RSA_PKCS_PSS,
#                            CKM_SHA1/224/256/384/512_RSA_PKCS_PSS, CKM_RSA_X_509
#   AES known key .......... C_CreateObject of an AES key (CKA_VALUE), CKM_AES_ECB/CBC/CBC_PAD
#   RSA decrypt ............ CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA256)
#   wrap/unwrap ............ CKM_AES_KEY_WRAP, 0x210A, 0x210B, CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP
#   HMAC ................... CKM_GENERIC_SECRET_KEY_GEN, CKM_SHA256_HMAC
#   ECDH ................... CKM_ECDH1_DERIVE (CKD_NULL) on P-256 and P-384
# Client limits of pkcs11-tool 0.23 the steps work around (not module bugs):
#   - --read-object --type pubkey of a P-384 key fails in the client ("cannot create
#     EVP_PKEY", SoftHSM too): the PEM is built from CKA_EC_POINT instead;
#   - --write-object --type secrkey knows only AES/DES keys ("Unknown key type: 0x10"):
#     the HMAC key is generated non-sensitive and read back instead;
#   - RSA-PKCS-OAEP: no way to pass a label (source is 0, no data); --wrap/--unwrap pass
#     pParameter=NULL (checked through pkcs11-spy; the module must then say
#     CKR_MECHANISM_PARAM_INVALID, and a newer client must round-trip);
#   - --encrypt uses secret keys only: RSA encryption is done by openssl.
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

step "--list-mechanisms lists every mechanism of README.md's mechanism table, and no other"
# readme_mechs: the CKM_ names of the table under "## Mechanisms", one a line, with the
# shorthand expanded ("CKM_SHA1/224/256_RSA_PKCS"; "... and _GENERAL" applies to every
# name of its row).
readme_mechs() {
    local row item general prefix first rest suffix alt
    sed -n '/^## Mechanisms/,/^## [^M]/p' "$REPO_ROOT/README.md" | grep '^| *CKM_' | cut -d'|' -f2 |
        sed -E 's/\([^)]*\)//g' | while read -r row; do
            general=0
            if [[ $row == *" and _GENERAL" ]]; then
                general=1
                row=${row% and _GENERAL}
            fi
            tr ',' '\n' <<<"$row" | sed -E 's/^ +//; s/ +$//' | grep . | while read -r item; do
                if [[ $item =~ ^(CKM_[A-Z0-9_]*[A-Z_])([0-9]+)((/[0-9]+)+)([A-Z0-9_]*)$ ]]; then
                    prefix=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} rest=${BASH_REMATCH[3]} suffix=${BASH_REMATCH[5]}
                    for alt in $first ${rest//\// }; do
                        echo "$prefix$alt$suffix"
                        if [[ $general == 1 ]]; then echo "$prefix$alt${suffix}_GENERAL"; fi
                    done
                elif [[ $item =~ ^CKM_[A-Z0-9_]+$ ]]; then
                    echo "$item"
                    if [[ $general == 1 ]]; then echo "${item}_GENERAL"; fi
                else
                    echo "UNPARSED:$item"
                fi
            done
        done
}
# p11tool_names CKM_NAME: what pkcs11-tool 0.23 may print for it (regex alternatives):
# its own name (CKM_ dropped, _ as -) or mechtype-0x<code> for codes it does not know.
p11tool_names() {
    local code=""
    case $1 in
        CKM_EC_KEY_PAIR_GEN) echo 'ECDSA-KEY-PAIR-GEN|EC-KEY-PAIR-GEN'; return ;;
        CKM_AES_KEY_WRAP_PAD) code=210A ;;
        CKM_AES_KEY_WRAP_KWP) code=210B ;;
        CKM_AES_KEY_WRAP_PKCS7) code=210C ;;
        CKM_AES_CMAC_GENERAL) code=108B ;;
        CKM_SHA_1_HMAC_GENERAL) code=222 ;;
        CKM_SHA224_HMAC_GENERAL) code=257 ;;
        CKM_SHA256_HMAC_GENERAL) code=252 ;;
        CKM_SHA384_HMAC_GENERAL) code=262 ;;
        CKM_SHA512_HMAC_GENERAL) code=272 ;;
        CKM_HKDF_DERIVE) code=402A ;;
        CKM_HKDF_DATA) code=402B ;;
    esac
    local name=${1#CKM_}
    name=${name//_/-}
    echo "$name${code:+|mechtype-0x$code}"
}
MECHS=$(readme_mechs)
printf 'README mechanisms: %s\n' "$(tr '\n' ' ' <<<"$MECHS")"
grep -q '^UNPARSED:' <<<"$MECHS" && fail "cannot parse README entries: $(grep '^UNPARSED:' <<<"$MECHS" | tr '\n' ' ')"
[[ $(wc -l <<<"$MECHS") -ge 50 ]] || fail "only $(wc -l <<<"$MECHS") mechanisms parsed from README.md"
p11 --token-label $TOKEN --list-mechanisms
missing=()
for m in $MECHS; do
    grep -Eiq "^ +($(p11tool_names "$m"))([,: ]|\$)" <<<"$OUT" || missing+=("$m")
done
[[ ${#missing[@]} -eq 0 ]] || fail "README mechanisms not listed by C_GetMechanismList: ${missing[*]}"
listed=$(sed -n '/^Supported mechanisms:/,$p' <<<"$OUT" | grep -Ec '^  [^ ]')
readme_count=$(sort -u <<<"$MECHS" | wc -l)
[[ $listed -eq $readme_count ]] || fail "the token lists $listed mechanisms, README.md's table has $readme_count"

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

# ===== mechanism coverage: every signature, cipher, wrap, MAC and derive pkcs11-tool can name =====

# tamper IN OUT: OUT is IN with one bit of its middle byte flipped.
tamper() {
    local n off b
    n=$(stat -c %s "$1")
    off=$((n / 2))
    b=$(od -An -tx1 -j "$off" -N1 "$1" | tr -d ' \n')
    cp "$1" "$2"
    printf "\\x$(printf %02x $((0x$b ^ 1)))" | dd of="$2" bs=1 seek="$off" conv=notrunc status=none
}
# hex FILE: lower-case hex of FILE, one line.
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
# unhex HEX: the bytes.
unhex() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")"; }
# u_may_fail ARGS: as u, but the exit code is not checked (output in $OUT).
u_may_fail() {
    OUT=$(pkcs11-tool --module "$MODULE" --token-label $TOKEN --login --pin $PIN "$@" 2>&1) || true
    printf '%s\n' "$OUT"
}
# token_verifies MECH ID DATA SIG [ARGS]: --verify on the token says the signature is
# valid, and that a tampered copy is invalid (pkcs11-tool exits 0 either way).
token_verifies() {
    local mech=$1 id=$2 data=$3 sig=$4
    shift 4
    u --verify -m "$mech" --id "$id" --input-file "$data" --signature-file "$sig" "$@"
    expect 'Signature is valid' "token --verify -m $mech of its own signature"
    tamper "$sig" "$sig.bad"
    u_may_fail --verify -m "$mech" --id "$id" --input-file "$data" --signature-file "$sig.bad" "$@"
    expect_not 'Signature is valid' "token --verify -m $mech of a tampered signature"
    expect 'Invalid signature|CKR_SIGNATURE_INVALID' "token --verify -m $mech of a tampered signature"
}
# openssl_verifies WHAT SIG CMD...: CMD (an openssl verification reading the signature
# from SIG) prints "Verified OK"/"Verified Successfully"; with a tampered SIG it does not.
openssl_verifies() {
    local what=$1 sig=$2 cmd=() a
    shift 2
    OUT=$("$@" 2>&1) || true
    printf '%s\n' "$OUT"
    expect '^(Verified OK|Signature Verified Successfully)$' "openssl verifying $what"
    tamper "$sig" "$sig.obad"
    for a in "$@"; do
        if [[ $a == "$sig" ]]; then cmd+=("$sig.obad"); else cmd+=("$a"); fi
    done
    OUT=$("${cmd[@]}" 2>&1) || true
    expect_not '^(Verified OK|Signature Verified Successfully)$' "openssl must reject a tampered $what"
}
# ec_pub_pem ID CURVE OUT: OUT is the PEM of the EC public key ID, built from its
# CKA_EC_POINT (pkcs11-tool 0.23 cannot export P-384 public keys itself).
ec_pub_pem() {
    local id=$1 curve=$2 out=$3 point spki
    # -O ignores --id in pkcs11-tool 0.23: pick the object whose ID line matches.
    p11 --token-label $TOKEN --list-objects --type pubkey
    point=$(awk -v id="$id" '/Object;/ { pt = "" } $1 == "EC_POINT:" { pt = $2 } $1 == "ID:" && $2 == id { print pt; exit }' <<<"$OUT")
    case $curve in
        P-256) [[ $point =~ ^0441(04[0-9a-fA-F]{128})$ ]] || fail "P-256 EC_POINT is not a DER OCTET STRING of 65 bytes: $point"
               spki=3059301306072a8648ce3d020106082a8648ce3d030107034200${BASH_REMATCH[1]} ;;
        P-384) [[ $point =~ ^0461(04[0-9a-fA-F]{192})$ ]] || fail "P-384 EC_POINT is not a DER OCTET STRING of 97 bytes: $point"
               spki=3076301006072a8648ce3d020106052b81040022036200${BASH_REMATCH[1]} ;;
    esac
    unhex "$spki" >"$out.der"
    openssl pkey -pubin -inform DER -in "$out.der" -out "$out" || fail "openssl cannot read the $curve public key $id"
    OUT=$(openssl pkey -pubin -in "$out" -noout -text)
    expect "NIST CURVE: $curve" "public key $id is on $curve"
}
# spy_p11 LOG ARGS: pkcs11-tool on the crypto token through OpenSC's pkcs11-spy,
# which logs every call to LOG; exit code not checked (output in $OUT).
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
spy_p11() {
    local log=$1
    shift
    OUT=$(PKCS11SPY="$MODULE" PKCS11SPY_OUTPUT="$log" pkcs11-tool --module "$SPY" --token-label $TOKEN \
        --login --pin $PIN "$@" 2>&1) || true
    printf '%s\n' "$OUT"
}

step "key pairs for the matrix: RSA-2048 (id 0a), EC P-256 (id 0b), EC P-384 (id 0c)"
u --keypairgen --key-type rsa:2048 --label rsa-m --id 0a --usage-sign --usage-decrypt --usage-wrap
u --keypairgen --key-type EC:prime256v1 --label ec256-m --id 0b --usage-sign --usage-derive
u --keypairgen --key-type EC:secp384r1 --label ec384-m --id 0c --usage-sign --usage-derive
expect 'EC_PARAMS: +06052b81040022'
p11 --token-label $TOKEN --read-object --type pubkey --id 0a --output-file "$WORKDIR/rsa-m.pub.der"
openssl pkey -pubin -inform DER -in "$WORKDIR/rsa-m.pub.der" -out "$WORKDIR/rsa-m.pub.pem"
ec_pub_pem 0b P-256 "$WORKDIR/ec256-m.pub.pem"
ec_pub_pem 0c P-384 "$WORKDIR/ec384-m.pub.pem"

MSG=$WORKDIR/msg.bin
for curve in 256 384; do
    id=0b
    [[ $curve == 384 ]] && id=0c
    pem=$WORKDIR/ec$curve-m.pub.pem
    for h in sha1 sha224 sha256 sha384 sha512; do
        H=${h^^}
        step "ECDSA-$H on P-$curve: openssl verifies the DER form, the token the r||s form, tampered ones fail"
        u --sign -m ECDSA-$H --id $id --signature-format openssl --input-file "$MSG" --output-file "$WORKDIR/ecdsa.$curve.$h.der"
        openssl_verifies "ECDSA-$H P-$curve" "$WORKDIR/ecdsa.$curve.$h.der" \
            openssl dgst -$h -verify "$pem" -signature "$WORKDIR/ecdsa.$curve.$h.der" "$MSG"
        u --sign -m ECDSA-$H --id $id --input-file "$MSG" --output-file "$WORKDIR/ecdsa.$curve.$h.rs"
        [[ $(stat -c %s "$WORKDIR/ecdsa.$curve.$h.rs") -eq $((curve / 4)) ]] || fail "P-$curve r||s is not $((curve / 4)) bytes"
        token_verifies ECDSA-$H $id "$MSG" "$WORKDIR/ecdsa.$curve.$h.rs"
    done
    step "ECDSA (raw) on P-$curve over a SHA-256 and a SHA-384 digest: openssl pkeyutl verifies"
    for h in sha256 sha384; do
        openssl dgst -$h -binary -out "$WORKDIR/msg.$h" "$MSG"
        u --sign -m ECDSA --id $id --signature-format openssl --input-file "$WORKDIR/msg.$h" \
            --output-file "$WORKDIR/ecdsa.$curve.raw.$h.der"
        openssl_verifies "ECDSA P-$curve over a $h digest" "$WORKDIR/ecdsa.$curve.raw.$h.der" \
            openssl pkeyutl -verify -pubin -inkey "$pem" -pkeyopt digest:$h -in "$WORKDIR/msg.$h" \
            -sigfile "$WORKDIR/ecdsa.$curve.raw.$h.der"
        u --sign -m ECDSA --id $id --input-file "$WORKDIR/msg.$h" --output-file "$WORKDIR/ecdsa.$curve.raw.$h.rs"
        token_verifies ECDSA $id "$WORKDIR/msg.$h" "$WORKDIR/ecdsa.$curve.raw.$h.rs"
    done
done

RSAPEM=$WORKDIR/rsa-m.pub.pem
for h in sha1 sha224 sha256 sha384 sha512; do
    H=${h^^}
    step "$H-RSA-PKCS: openssl verifies, the token accepts it and rejects a tampered one"
    u --sign -m $H-RSA-PKCS --id 0a --input-file "$MSG" --output-file "$WORKDIR/rsa.$h.sig"
    openssl_verifies "$H-RSA-PKCS" "$WORKDIR/rsa.$h.sig" \
        openssl dgst -$h -verify "$RSAPEM" -signature "$WORKDIR/rsa.$h.sig" "$MSG"
    token_verifies $H-RSA-PKCS 0a "$MSG" "$WORKDIR/rsa.$h.sig"

    for salt in 0 $(openssl dgst -$h -binary "$MSG" | wc -c) -2; do
        step "$H-RSA-PKCS-PSS (MGF1-$H, --salt-len $salt): openssl verifies, the token too"
        sig=$WORKDIR/pss.$h.$salt.sig
        u --sign -m $H-RSA-PKCS-PSS --mgf MGF1-$H --salt-len $salt --id 0a --input-file "$MSG" --output-file "$sig"
        # -2 is "as long as possible": emLen - hLen - 2 for RSA-2048.
        osalt=$salt
        [[ $salt == -2 ]] && osalt=$((256 - $(openssl dgst -$h -binary "$MSG" | wc -c) - 2))
        expect "salt_len=$osalt B" "pkcs11-tool's PSS salt length"
        openssl dgst -$h -binary -out "$WORKDIR/msg.$h" "$MSG"
        openssl_verifies "$H-RSA-PKCS-PSS salt $osalt" "$sig" \
            openssl pkeyutl -verify -pubin -inkey "$RSAPEM" -pkeyopt rsa_padding_mode:pss \
            -pkeyopt rsa_pss_saltlen:$osalt -pkeyopt digest:$h -pkeyopt rsa_mgf1_md:$h \
            -in "$WORKDIR/msg.$h" -sigfile "$sig"
        # (--verify --salt-len -2 would ask for salt recovery, an OpenSC-module-only feature.)
        token_verifies $H-RSA-PKCS-PSS 0a "$MSG" "$sig" --mgf MGF1-$H --salt-len $osalt
    done

    HA=$H # pkcs11-tool's --hash-algorithm names SHA-1 "SHA-1"
    if [[ $h == sha1 ]]; then HA=SHA-1; fi
    step "RSA-PKCS-PSS (raw, --hash-algorithm $HA) over a $H digest: openssl verifies, the token too"
    sig=$WORKDIR/pss.raw.$h.sig
    openssl dgst -$h -binary -out "$WORKDIR/msg.$h" "$MSG"
    hlen=$(stat -c %s "$WORKDIR/msg.$h")
    u --sign -m RSA-PKCS-PSS --hash-algorithm $HA --mgf MGF1-$H --salt-len $hlen --id 0a \
        --input-file "$WORKDIR/msg.$h" --output-file "$sig"
    openssl_verifies "RSA-PKCS-PSS over $h" "$sig" \
        openssl pkeyutl -verify -pubin -inkey "$RSAPEM" -pkeyopt rsa_padding_mode:pss \
        -pkeyopt rsa_pss_saltlen:$hlen -pkeyopt digest:$h -pkeyopt rsa_mgf1_md:$h \
        -in "$WORKDIR/msg.$h" -sigfile "$sig"
    token_verifies RSA-PKCS-PSS 0a "$WORKDIR/msg.$h" "$sig" --hash-algorithm $HA --mgf MGF1-$H --salt-len $hlen
done

step "RSA-PKCS (raw) over a SHA-256 DigestInfo: openssl verifies and recovers it, the token verifies"
# DigestInfo for SHA-256 (RFC 8017 9.2 note 1) || hash: what TLS stacks hand to CKM_RSA_PKCS.
{ unhex 3031300d060960864801650304020105000420; cat "$WORKDIR/msg.sha256"; } >"$WORKDIR/msg.di"
u --sign -m RSA-PKCS --id 0a --input-file "$WORKDIR/msg.di" --output-file "$WORKDIR/rsa.raw.sig"
openssl_verifies "RSA-PKCS over a DigestInfo" "$WORKDIR/rsa.raw.sig" \
    openssl dgst -sha256 -verify "$RSAPEM" -signature "$WORKDIR/rsa.raw.sig" "$MSG"
openssl pkeyutl -verifyrecover -pubin -inkey "$RSAPEM" -in "$WORKDIR/rsa.raw.sig" -out "$WORKDIR/rsa.raw.rec"
cmp -s "$WORKDIR/rsa.raw.rec" "$WORKDIR/msg.di" || fail "openssl does not recover the signed DigestInfo"
token_verifies RSA-PKCS 0a "$WORKDIR/msg.di" "$WORKDIR/rsa.raw.sig"

step "RSA-X-509 over a 256-byte block: openssl recovers it unpadded, the token verifies"
{ printf '\x00'; head -c 255 /dev/urandom; } >"$WORKDIR/block.bin"
u --sign -m RSA-X-509 --id 0a --input-file "$WORKDIR/block.bin" --output-file "$WORKDIR/x509.sig"
openssl pkeyutl -verifyrecover -pubin -inkey "$RSAPEM" -pkeyopt rsa_padding_mode:none \
    -in "$WORKDIR/x509.sig" -out "$WORKDIR/x509.rec"
cmp -s "$WORKDIR/x509.rec" "$WORKDIR/block.bin" || fail "openssl does not recover the RSA-X-509 block"
token_verifies RSA-X-509 0a "$WORKDIR/block.bin" "$WORKDIR/x509.sig"

step "AES key of a known value (--write-object --type secrkey --key-type AES:32, id 20)"
openssl rand -out "$WORKDIR/aes.key" 32
AESHEX=$(hex "$WORKDIR/aes.key")
u --write-object "$WORKDIR/aes.key" --type secrkey --key-type AES:32 --label aes-known --id 20 --extractable
expect 'Secret Key Object; AES length 32'
IV2=0f0e0d0c0b0a09080706050403020100
head -c 1024 /dev/urandom >"$WORKDIR/p1024.bin"
for m in AES-ECB AES-CBC AES-CBC-PAD; do
    step "$m with the known key equals openssl enc both ways"
    in=$WORKDIR/p1024.bin
    case $m in
        AES-ECB) ossl=(-aes-256-ecb -nopad) ;;
        AES-CBC) ossl=(-aes-256-cbc -iv $IV2 -nopad) ;;
        AES-CBC-PAD)
            ossl=(-aes-256-cbc -iv $IV2)
            in=$WORKDIR/plain.bin
            ;;
    esac
    u --encrypt -m $m --id 20 --iv $IV2 --input-file "$in" --output-file "$WORKDIR/$m.tok"
    openssl enc "${ossl[@]}" -K "$AESHEX" -in "$in" -out "$WORKDIR/$m.ossl"
    cmp -s "$WORKDIR/$m.tok" "$WORKDIR/$m.ossl" || fail "$m: the token's ciphertext differs from openssl's"
    u --decrypt -m $m --id 20 --iv $IV2 --input-file "$WORKDIR/$m.ossl" --output-file "$WORKDIR/$m.dec"
    cmp -s "$WORKDIR/$m.dec" "$in" || fail "$m: the token does not decrypt openssl's ciphertext"
done
u --encrypt -m AES-CBC --id 20 --iv $IV2 --input-file "$WORKDIR/p1024.bin" --output-file "$WORKDIR/ref.ct"

step "RSA-PKCS: openssl encrypts to the public key, the token decrypts"
head -c 100 /dev/urandom >"$WORKDIR/short.bin"
openssl pkeyutl -encrypt -pubin -inkey "$RSAPEM" -in "$WORKDIR/short.bin" -out "$WORKDIR/short.pkcs1"
u --decrypt -m RSA-PKCS --id 0a --input-file "$WORKDIR/short.pkcs1" --output-file "$WORKDIR/short.pkcs1.dec"
cmp -s "$WORKDIR/short.pkcs1.dec" "$WORKDIR/short.bin" || fail "RSA-PKCS decryption differs from the plaintext"

step "RSA-PKCS-OAEP SHA-256/MGF1-SHA256: openssl encrypts, the token decrypts; a labelled one is refused"
openssl pkeyutl -encrypt -pubin -inkey "$RSAPEM" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
    -pkeyopt rsa_mgf1_md:sha256 -in "$WORKDIR/short.bin" -out "$WORKDIR/short.oaep"
u --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a \
    --input-file "$WORKDIR/short.oaep" --output-file "$WORKDIR/short.oaep.dec"
cmp -s "$WORKDIR/short.oaep.dec" "$WORKDIR/short.bin" || fail "RSA-PKCS-OAEP decryption differs from the plaintext"
# pkcs11-tool 0.23 cannot pass an OAEP label (it sends an empty one): a ciphertext made
# with a label must not decrypt. Its C_Decrypt says CKR_ENCRYPTED_DATA_INVALID; the
# client then retries with C_DecryptUpdate, which is what it reports.
openssl pkeyutl -encrypt -pubin -inkey "$RSAPEM" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
    -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_oaep_label:0102030405 -in "$WORKDIR/short.bin" -out "$WORKDIR/short.oaepl"
rm -f "$WORKDIR/short.oaepl.dec"
spy_p11 "$WORKDIR/spy-oaep-label.log" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a \
    --input-file "$WORKDIR/short.oaepl" --output-file "$WORKDIR/short.oaepl.dec"
if [[ -f "$WORKDIR/short.oaepl.dec" ]] && cmp -s "$WORKDIR/short.oaepl.dec" "$WORKDIR/short.bin"; then
    fail "a ciphertext with an OAEP label decrypted without that label"
fi
rv=$(sed -n '/^[0-9]*: C_Decrypt$/,/^Returned/p' "$WORKDIR/spy-oaep-label.log" | grep '^Returned' | head -1)
[[ $rv == *CKR_ENCRYPTED_DATA_INVALID* ]] ||
    fail "C_Decrypt of an OAEP ciphertext made with another label: expected CKR_ENCRYPTED_DATA_INVALID, got '$rv'"

step "AES key of a known value as KEK (id 30)"
openssl rand -out "$WORKDIR/kek.key" 32
KEKHEX=$(hex "$WORKDIR/kek.key")
u --write-object "$WORKDIR/kek.key" --type secrkey --key-type AES:32 --label kek-known --id 30

n=40
for m in AES-KEY-WRAP 0x210B 0x210A; do
    n=$((n + 1))
    step "--wrap -m $m of the known key equals openssl's, --unwrap gives a key that encrypts the same"
    u --wrap -m $m --id 30 --application-id 20 --output-file "$WORKDIR/wrap.$m"
    case $m in
        AES-KEY-WRAP) openssl enc -id-aes256-wrap -K "$KEKHEX" -iv A6A6A6A6A6A6A6A6 -in "$WORKDIR/aes.key" -out "$WORKDIR/wrap.$m.ossl" ;;
        # RFC 5649; 0x210A is RFC 5649 too (docs/mechanisms.md).
        *) openssl enc -id-aes256-wrap-pad -K "$KEKHEX" -iv A65959A6 -in "$WORKDIR/aes.key" -out "$WORKDIR/wrap.$m.ossl" ;;
    esac
    cmp -s "$WORKDIR/wrap.$m" "$WORKDIR/wrap.$m.ossl" || fail "$m: the wrapped key differs from openssl's"
    u --unwrap -m $m --id 30 --input-file "$WORKDIR/wrap.$m.ossl" --key-type AES:32 \
        --application-id $n --application-label unwrapped-$n
    u --encrypt -m AES-CBC --id $n --iv $IV2 --input-file "$WORKDIR/p1024.bin" --output-file "$WORKDIR/u$n.ct"
    cmp -s "$WORKDIR/u$n.ct" "$WORKDIR/ref.ct" || fail "$m: the unwrapped key encrypts differently from the original"
    tamper "$WORKDIR/wrap.$m.ossl" "$WORKDIR/wrap.$m.bad"
    p11_fails --token-label $TOKEN --login --pin $PIN --unwrap -m $m --id 30 --input-file "$WORKDIR/wrap.$m.bad" \
        --key-type AES:32 --application-id 49
    expect 'CKR_WRAPPED_KEY_INVALID' "$m unwrap of a tampered blob"
done

step "0x210C (PKCS#7 to 8 bytes, then RFC 3394) equals openssl's; --unwrap -m 0x210A takes that v3.0 form too"
# The module pads to the 8-byte key-wrap semiblock (src/mechanism/ops.rs, KwKind::Pkcs7).
{ cat "$WORKDIR/aes.key"; unhex 0808080808080808; } >"$WORKDIR/aes.key.pkcs7"
openssl enc -id-aes256-wrap -K "$KEKHEX" -iv A6A6A6A6A6A6A6A6 -in "$WORKDIR/aes.key.pkcs7" -out "$WORKDIR/wrap.pkcs7"
u --wrap -m 0x210C --id 30 --application-id 20 --output-file "$WORKDIR/wrap.0x210C"
cmp -s "$WORKDIR/wrap.0x210C" "$WORKDIR/wrap.pkcs7" || fail "0x210C: the wrapped key differs from PKCS#7(8) + RFC 3394 by openssl"
u --unwrap -m 0x210A --id 30 --input-file "$WORKDIR/wrap.pkcs7" --key-type AES:32 --application-id 44
u --encrypt -m AES-CBC --id 44 --iv $IV2 --input-file "$WORKDIR/p1024.bin" --output-file "$WORKDIR/u44.ct"
cmp -s "$WORKDIR/u44.ct" "$WORKDIR/ref.ct" || fail "0x210A (PKCS#7 + RFC 3394): the unwrapped key encrypts differently"

step "--wrap/--unwrap -m RSA-PKCS: the token's and openssl's wrapping unwrap to a working key"
u --wrap -m RSA-PKCS --id 0a --application-id 20 --output-file "$WORKDIR/wrap.rsa"
[[ $(stat -c %s "$WORKDIR/wrap.rsa") -eq 256 ]] || fail "RSA-2048 wrapped key is not 256 bytes"
u --decrypt -m RSA-PKCS --id 0a --input-file "$WORKDIR/wrap.rsa" --output-file "$WORKDIR/wrap.rsa.dec"
cmp -s "$WORKDIR/wrap.rsa.dec" "$WORKDIR/aes.key" || fail "RSA-PKCS wrapping does not hold the key value"
u --unwrap -m RSA-PKCS --id 0a --input-file "$WORKDIR/wrap.rsa" --key-type AES:32 --application-id 45
openssl pkeyutl -encrypt -pubin -inkey "$RSAPEM" -in "$WORKDIR/aes.key" -out "$WORKDIR/wrap.rsa.ossl"
u --unwrap -m RSA-PKCS --id 0a --input-file "$WORKDIR/wrap.rsa.ossl" --key-type AES:32 --application-id 46
for k in 45 46; do
    u --encrypt -m AES-CBC --id $k --iv $IV2 --input-file "$WORKDIR/p1024.bin" --output-file "$WORKDIR/u$k.ct"
    cmp -s "$WORKDIR/u$k.ct" "$WORKDIR/ref.ct" || fail "RSA-PKCS: unwrapped key $k encrypts differently"
done

step "--wrap/--unwrap -m RSA-PKCS-OAEP (SHA-256): round trip, or the client sends no parameter"
# pkcs11-tool 0.23 passes pParameter=NULL for OAEP in C_WrapKey/C_UnwrapKey. The parameter
# is mandatory (CK_RSA_PKCS_OAEP_PARAMS), so the module must then refuse it with
# CKR_MECHANISM_PARAM_INVALID; a client that passes the parameter must round-trip.
openssl pkeyutl -encrypt -pubin -inkey "$RSAPEM" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
    -pkeyopt rsa_mgf1_md:sha256 -in "$WORKDIR/aes.key" -out "$WORKDIR/wrap.oaep.ossl"
rm -f "$WORKDIR/wrap.oaep"
spy_p11 "$WORKDIR/spy-oaep-wrap.log" --wrap -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a \
    --application-id 20 --output-file "$WORKDIR/wrap.oaep"
spy_p11 "$WORKDIR/spy-oaep-unwrap.log" --unwrap -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a \
    --input-file "$WORKDIR/wrap.oaep.ossl" --key-type AES:32 --application-id 47
UNWRAP_OUT=$OUT
for f in wrap unwrap; do
    log=$WORKDIR/spy-oaep-$f.log
    call=$(sed -n '/^[0-9]*: C_\(Wrap\|Unwrap\)Key$/,/^Returned/p' "$log")
    [[ -n "$call" ]] || fail "pkcs11-spy logged no C_${f^}Key"
    printf '%s\n' "$call" | grep -v '^    0000'
    if grep -q 'pMechanism->pParameter = NULL' <<<"$call"; then
        grep -q 'CKR_MECHANISM_PARAM_INVALID' <<<"$call" ||
            fail "C_${f^}Key(CKM_RSA_PKCS_OAEP, pParameter=NULL) did not return CKR_MECHANISM_PARAM_INVALID"
        echo "[$INTEROP_NAME] note: this pkcs11-tool sends no OAEP parameter to C_${f^}Key (OpenSC 0.23); refused as it must be"
    else
        grep -q 'Returned: *0 CKR_OK' <<<"$call" || fail "C_${f^}Key(CKM_RSA_PKCS_OAEP) with a parameter failed"
    fi
done
if [[ -f "$WORKDIR/wrap.oaep" ]]; then
    u --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a \
        --input-file "$WORKDIR/wrap.oaep" --output-file "$WORKDIR/wrap.oaep.dec"
    cmp -s "$WORKDIR/wrap.oaep.dec" "$WORKDIR/aes.key" || fail "RSA-PKCS-OAEP wrapping does not hold the key value"
fi
if grep -q 'Key unwrapped' <<<"$UNWRAP_OUT"; then
    u --encrypt -m AES-CBC --id 47 --iv $IV2 --input-file "$WORKDIR/p1024.bin" --output-file "$WORKDIR/u47.ct"
    cmp -s "$WORKDIR/u47.ct" "$WORKDIR/ref.ct" || fail "RSA-PKCS-OAEP: the unwrapped key encrypts differently"
fi
# What OAEP unwrapping amounts to, with the parameter this client can pass to C_DecryptInit.
u --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a \
    --input-file "$WORKDIR/wrap.oaep.ossl" --output-file "$WORKDIR/wrap.oaep.ossl.dec"
cmp -s "$WORKDIR/wrap.oaep.ossl.dec" "$WORKDIR/aes.key" || fail "the OAEP-wrapped key value does not decrypt"

step "SHA256-HMAC with a generic secret (keygen GENERIC:32, read back): equals openssl, --verify"
u --keygen --key-type GENERIC:32 --label hmac-m --id 60 --extractable
expect 'Generic secret length 32'
u --read-object --type secrkey --id 60 --output-file "$WORKDIR/hmac.key"
[[ $(stat -c %s "$WORKDIR/hmac.key") -eq 32 ]] || fail "the generic secret value is not 32 bytes"
u --sign -m SHA256-HMAC --id 60 --input-file "$MSG" --output-file "$WORKDIR/hmac.tok"
openssl dgst -sha256 -mac HMAC -macopt hexkey:"$(hex "$WORKDIR/hmac.key")" -binary -out "$WORKDIR/hmac.ossl" "$MSG"
cmp -s "$WORKDIR/hmac.tok" "$WORKDIR/hmac.ossl" || fail "the token's HMAC-SHA256 differs from openssl's"
token_verifies SHA256-HMAC 60 "$MSG" "$WORKDIR/hmac.ossl"

for curve in 256 384; do
    step "ECDH1-DERIVE on P-$curve with an openssl peer: same secret as openssl pkeyutl -derive"
    id=0b
    [[ $curve == 384 ]] && id=0c
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-$curve -out "$WORKDIR/peer$curve.pem"
    openssl pkey -in "$WORKDIR/peer$curve.pem" -pubout -outform DER -out "$WORKDIR/peer$curve.pub.der"
    u --derive -m ECDH1-DERIVE --id $id --input-file "$WORKDIR/peer$curve.pub.der" --output-file "$WORKDIR/ecdh$curve.tok"
    openssl pkeyutl -derive -inkey "$WORKDIR/peer$curve.pem" -peerkey "$WORKDIR/ec$curve-m.pub.pem" \
        -out "$WORKDIR/ecdh$curve.ossl"
    [[ $(stat -c %s "$WORKDIR/ecdh$curve.tok") -eq $((curve / 8)) ]] || fail "the P-$curve shared secret is not $((curve / 8)) bytes"
    cmp -s "$WORKDIR/ecdh$curve.tok" "$WORKDIR/ecdh$curve.ossl" || fail "ECDH P-$curve: the token's secret differs from openssl's"
done

finish
