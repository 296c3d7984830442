#!/usr/bin/env bash
# OpenSSL 3 through the libp11 engine (libengine-pkcs11-openssl 0.4.12) with
# keys on the token named by RFC 7512 URIs: CSRs, self-signed certificates
# (imported back to the token), TLS 1.3 and 1.2 servers (openssl s_server) with
# an RSA-2048 and an EC P-256 key, pkeyutl sign and RSA decrypt.
# Mechanisms: CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN, CKM_RSA_PKCS
# (sign over a DigestInfo, decrypt), CKM_RSA_PKCS_PSS (TLS 1.3, salt = digest
# length and maximal), CKM_RSA_PKCS_OAEP (SHA-256/MGF1-SHA256), CKM_ECDSA.
# Usage: MODULE=path/to/lib.so bash this-file   (STRONGROOM_MODULE also accepted)
if [[ -z "${MODULE:-}" && -n "${STRONGROOM_MODULE:-}" ]]; then
    MODULE=$STRONGROOM_MODULE
fi
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
TOKEN=tls
ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"
[[ -f "$ENGINE_SO" ]] || fail "$ENGINE_SO missing (apt-get install libengine-pkcs11-openssl)"
command -v openssl >/dev/null || fail "openssl missing"

W=$WORKDIR
export OPENSSL_CONF=$W/openssl.cnf
cat >"$OPENSSL_CONF" <<EOF
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $MODULE
init = 0

[req]
distinguished_name = req_dn
x509_extensions = v3_self
prompt = no

[req_dn]
CN = unused

[v3_self]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
EOF

# ossl ARGS: openssl with output in $OUT (echoed); must exit 0.
ossl() {
    local rc=0
    OUT=$(timeout 60 openssl "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -eq 0 ]] || fail "openssl $* exited $rc"
}
# ossl_fails ARGS: as ossl, but must fail.
ossl_fails() {
    local rc=0
    OUT=$(timeout 60 openssl "$@" 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    [[ $rc -ne 0 ]] || fail "openssl $* succeeded but should have failed"
}
ENG=(-engine pkcs11)
uri() { echo "pkcs11:token=$TOKEN;object=$1;type=private?pin-value=$PIN"; }

step "set up token '$TOKEN' with an RSA-2048 key (id 01) and an EC P-256 key (id 02)"
p11 --init-token --slot 0 --label $TOKEN --so-pin $SO_PIN
p11 --slot 0 --init-pin --so-pin $SO_PIN --pin $PIN
p11 --login --pin $PIN --keypairgen --key-type rsa:2048 --label rsakey --id 01
p11 --login --pin $PIN --keypairgen --key-type EC:prime256v1 --label eckey --id 02
p11 --login --pin $PIN -O
expect 'Private Key Object; RSA'
expect 'Private Key Object; EC'

step "the engine loads the module and the URIs name the keys"
ossl engine -t -c pkcs11
expect '\[ available \]'

head -c 3000 /dev/urandom >"$W/data.bin"
openssl dgst -sha256 -binary -out "$W/data.sha256" "$W/data.bin"

for k in rsa ec; do
    label=${k}key
    id=$([[ $k == rsa ]] && echo 01 || echo 02)
    URI=$(uri $label)

    step "[$k] public key from the token (pkcs11-tool --read-object --type pubkey)"
    p11 --read-object --type pubkey --id $id -o "$W/$k-tokpub.der"
    ossl pkey -pubin -inform DER -in "$W/$k-tokpub.der" -out "$W/$k-tokpub.pem"

    step "[$k] openssl req -new with the engine key gives a CSR that verifies"
    ossl req "${ENG[@]}" -keyform engine -key "$URI" -new -subj "/CN=strongroom $k csr" -sha256 -out "$W/$k.csr"
    ossl req -in "$W/$k.csr" -noout -verify
    expect 'verify OK'
    ossl req -in "$W/$k.csr" -noout -pubkey
    [[ "$OUT" == "$(cat "$W/$k-tokpub.pem")" ]] || fail "the CSR's public key is not the token's public key"

    if [[ $k == rsa ]]; then
        # saltlen "auto" (-2): libp11 asks the token for the maximal salt, sLen = 222
        step "[rsa] CSR signed with RSA-PSS, maximal salt (CKM_RSA_PKCS_PSS, sLen 222)"
        ossl req "${ENG[@]}" -keyform engine -key "$URI" -new -subj "/CN=strongroom rsa pss" -sha256 \
            -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto -out "$W/rsa-pss.csr"
        ossl req -in "$W/rsa-pss.csr" -noout -text
        expect 'Signature Algorithm: rsassaPss'
        ossl req -in "$W/rsa-pss.csr" -noout -verify
        expect 'verify OK'
    fi

    step "[$k] self-signed certificate (openssl req -x509) reads and verifies against its own key"
    ossl req "${ENG[@]}" -keyform engine -key "$URI" -new -x509 -days 2 -subj "/CN=127.0.0.1" -sha256 \
        -out "$W/$k-cert.pem"
    ossl x509 -in "$W/$k-cert.pem" -noout -text
    expect 'Subject: CN *= *127.0.0.1'
    if [[ $k == rsa ]]; then expect 'Public-Key: \(2048 bit\)'; else expect 'NIST CURVE: P-256'; fi
    ossl x509 -in "$W/$k-cert.pem" -noout -pubkey
    [[ "$OUT" == "$(cat "$W/$k-tokpub.pem")" ]] || fail "the certificate's public key is not the token's public key"
    ossl verify -CAfile "$W/$k-cert.pem" "$W/$k-cert.pem"
    expect ': OK$'

    step "[$k] certificate imported to the token with id $id and label $label"
    ossl x509 -in "$W/$k-cert.pem" -outform DER -out "$W/$k-cert.der"
    p11 --login --pin $PIN --write-object "$W/$k-cert.der" --type cert --id $id --label $label
    p11 -O
    expect 'Certificate Object; type = X\.509 cert'
    # the certificate object with this label, up to the next object
    OUT=$(awk -v L="$label" '/^[^ ]/ { c = /^Certificate Object/ ; keep = 0 }
        c && $1 == "label:" && $2 == L { keep = 1 } c && keep' <<<"$OUT")
    expect "label: *$label\$" "a certificate labelled $label"
    expect "ID: *$id\$" "certificate $label has id $id"
    p11 --read-object --type cert --id $id -o "$W/$k-cert-back.der"
    cmp "$W/$k-cert.der" "$W/$k-cert-back.der" || fail "the certificate read back from the token differs"

    step "[$k] pkeyutl -sign through the engine over a SHA-256 digest, verified with the certificate's key"
    ossl x509 -in "$W/$k-cert.pem" -noout -pubkey -out "$W/$k-pub.pem"
    ossl pkeyutl "${ENG[@]}" -keyform engine -sign -inkey "$URI" -pkeyopt digest:sha256 \
        -in "$W/data.sha256" -out "$W/$k.sig"
    ossl pkeyutl -verify -pubin -inkey "$W/$k-pub.pem" -pkeyopt digest:sha256 \
        -in "$W/data.sha256" -sigfile "$W/$k.sig"
    expect 'Signature Verified Successfully'
    ossl dgst -sha256 -verify "$W/$k-pub.pem" -signature "$W/$k.sig" "$W/data.bin"
    expect 'Verified OK'
    # a signature over another digest must not verify
    printf 'other' | openssl dgst -sha256 -binary -out "$W/other.sha256"
    ossl_fails pkeyutl -verify -pubin -inkey "$W/$k-pub.pem" -pkeyopt digest:sha256 \
        -in "$W/other.sha256" -sigfile "$W/$k.sig"
    if [[ $k == ec ]]; then
        ossl asn1parse -inform DER -in "$W/$k.sig"
        [[ $(count 'prim: INTEGER') -eq 2 ]] || fail "the ECDSA signature is not a DER SEQUENCE of two INTEGERs"
    fi
done

# digest: sLen 32; auto: libp11 computes the maximum (222); 222 and 0 given explicitly
step "[rsa] pkeyutl -sign with RSA-PSS (salt length = digest, maximal, 0) through the engine"
for salt in digest auto 222 0; do
    ossl pkeyutl "${ENG[@]}" -keyform engine -sign -inkey "$(uri rsakey)" -pkeyopt digest:sha256 \
        -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:$salt -in "$W/data.sha256" -out "$W/rsa-pss-$salt.sig"
    ossl pkeyutl -verify -pubin -inkey "$W/rsa-pub.pem" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
        -pkeyopt rsa_pss_saltlen:$salt -in "$W/data.sha256" -sigfile "$W/rsa-pss-$salt.sig"
    expect 'Signature Verified Successfully'
done

head -c 32 /dev/urandom >"$W/secret.bin"
step "[rsa] PKCS#1 v1.5 decrypt through the engine (CKM_RSA_PKCS)"
ossl pkeyutl -encrypt -pubin -inkey "$W/rsa-pub.pem" -in "$W/secret.bin" -out "$W/ct-pkcs1.bin"
ossl pkeyutl "${ENG[@]}" -keyform engine -decrypt -inkey "$(uri rsakey)" -in "$W/ct-pkcs1.bin" -out "$W/pt-pkcs1.bin"
cmp "$W/secret.bin" "$W/pt-pkcs1.bin" || fail "PKCS#1 v1.5 decrypt: plaintext differs"

step "[rsa] OAEP SHA-256 decrypt through the engine (CKM_RSA_PKCS_OAEP)"
OAEP=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256)
ossl pkeyutl -encrypt -pubin -inkey "$W/rsa-pub.pem" "${OAEP[@]}" -in "$W/secret.bin" -out "$W/ct-oaep.bin"
ossl pkeyutl "${ENG[@]}" -keyform engine -decrypt -inkey "$(uri rsakey)" "${OAEP[@]}" \
    -in "$W/ct-oaep.bin" -out "$W/pt-oaep.bin"
cmp "$W/secret.bin" "$W/pt-oaep.bin" || fail "OAEP decrypt: plaintext differs"

# tls_check KEY VERSION [CIPHER]: s_server with the engine key, s_client handshake.
tls_check() {
    local k=$1 ver=$2 cipher=${3:-} port pid
    local sargs=() cargs=()
    port=$(free_port)
    if [[ -n "$cipher" ]]; then
        sargs=(-cipher "$cipher")
        cargs=(-cipher "$cipher")
    fi
    bg_start "$W/s_server-$k-$ver.log" openssl s_server "${ENG[@]}" -keyform engine -key "$(uri ${k}key)" \
        -cert "$W/$k-cert.pem" -accept "127.0.0.1:$port" -www "${sargs[@]}"
    pid=$BG_PID
    wait_port "$port" "$pid"
    local rc=0
    OUT=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 60 openssl s_client -connect "127.0.0.1:$port" \
        -CAfile "$W/$k-cert.pem" -verify_return_error "-$ver" "${cargs[@]}" -ign_eof 2>&1) || rc=$?
    printf '%s\n' "$OUT"
    bg_stop "$pid"
    if [[ $rc -ne 0 ]]; then
        echo "--- s_server log:"
        cat "$W/s_server-$k-$ver.log"
        fail "s_client ($k, $ver${cipher:+, $cipher}) exited $rc"
    fi
    expect 'Verify return code: 0 \(ok\)'
    expect '^HTTP/1\.0 200 ok'
    case $ver in
    tls1_3) expect 'New, TLSv1\.3, Cipher is TLS_' ;;
    tls1_2) expect 'New, TLSv1\.2, Cipher is ' ;;
    esac
    [[ -z "$cipher" ]] || expect "Cipher is $cipher\$"
    if [[ $k == rsa && $ver == tls1_3 ]]; then
        expect 'Peer signature type: RSA-PSS'
    fi
    if [[ $k == ec ]]; then
        expect 'Peer signature type: ECDSA'
    fi
}

step "TLS 1.3 with the RSA key (server signs with RSA-PSS: CKM_RSA_PKCS_PSS)"
tls_check rsa tls1_3
step "TLS 1.2 with the RSA key"
tls_check rsa tls1_2
step "TLS 1.2 with the RSA key, ECDHE-RSA-AES128-GCM-SHA256"
tls_check rsa tls1_2 ECDHE-RSA-AES128-GCM-SHA256
# Not tested: static RSA key exchange (e.g. AES128-GCM-SHA256). OpenSSL 3.0
# asks engine (legacy) keys for RSA_PKCS1_WITH_TLS_PADDING, which rsa_pmeth.c
# refuses before any PKCS#11 call ("illegal or unsupported padding mode").
step "TLS 1.3 with the EC key"
tls_check ec tls1_3
step "TLS 1.2 with the EC key"
tls_check ec tls1_2

step "a wrong PIN in the URI is refused"
ossl_fails pkeyutl "${ENG[@]}" -keyform engine -sign -inkey "pkcs11:token=$TOKEN;object=eckey;type=private?pin-value=9999" \
    -in "$W/data.sha256" -out "$W/bad.sig"

# OpenSSL 3's "max" is RSA_PSS_SALTLEN_MAX (-3), which libp11 0.4.12 does not
# translate: it sends CK_RSA_PKCS_PSS_PARAMS.sLen = (CK_ULONG)-3. The token must
# refuse that (CKR_MECHANISM_PARAM_INVALID), end the operation, and not panic;
# libp11 then pads in software and signs with CKM_RSA_X_509, so the command
# succeeds with a maximal salt.
step "[rsa] pkeyutl -sign with rsa_pss_saltlen:max (libp11 sends sLen = 2^64-3): refused cleanly, fallback works"
rc=0
OUT=$(RUST_BACKTRACE=0 timeout 60 openssl pkeyutl "${ENG[@]}" -keyform engine -sign -inkey "$(uri rsakey)" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:max \
    -in "$W/data.sha256" -out "$W/rsa-pss-max.sig" 2>&1) || rc=$?
printf '%s\n' "$OUT"
expect_not 'panicked|panic caught' "the module panicked on sLen = 2^64-3"
expect_not 'Operation active' "the failed C_Sign left the signing operation active"
[[ $rc -eq 0 ]] || fail "openssl pkeyutl -sign with rsa_pss_saltlen:max exited $rc"
ossl pkeyutl -verify -pubin -inkey "$W/rsa-pub.pem" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
    -pkeyopt rsa_pss_saltlen:max -in "$W/data.sha256" -sigfile "$W/rsa-pss-max.sig"
expect 'Signature Verified Successfully'

finish
