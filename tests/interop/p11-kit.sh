#!/usr/bin/env bash
# The module registered with p11-kit (tools/strongroom.module, the file the
# project ships) and used through p11-kit by its clients:
#  - p11-kit list-modules shows the module (library description "Strongroom")
#    and its token;
#  - GnuTLS p11tool (which loads modules through p11-kit, no --provider):
#    --list-tokens, --login --list-all, --generate-privkey ECDSA, --export of a
#    certificate written earlier with pkcs11-tool, --test-sign;
#  - fork: PyKCS11 on p11-kit-proxy.so initialises, forks, and the child calls
#    C_Initialize again and works (tests/interop/python/p11kit_fork.py);
#  - p11-kit server --provider <module> "pkcs11:token=..." reached through
#    p11-kit-client.so by pkcs11-tool and p11tool (a remote token).
#
# p11-kit ignores the user configuration directory when run as root, so when
# this runs as root everything p11-kit related runs as a non-root user
# (created with useradd -m if missing; name in $P11KIT_TEST_USER, default
# strongroom-p11) whose HOME is a directory inside the work directory: the
# module file goes to $HOME/.config/pkcs11/modules/strongroom.module there, and
# the user owns the store. Nothing is written to a real home directory.
#
# Known limit of p11-kit 0.24 (not of the module): its RPC layer (server and
# client) refuses mechanisms it cannot marshal before they reach the module,
# e.g. C_SignInit(CKM_ECDSA_SHA256) -> CKR_MECHANISM_INVALID from
# p11-kit-client.so; the remote sign step therefore uses CKM_ECDSA.
# Usage: MODULE=path/to/lib.so bash this-file   (STRONGROOM_MODULE is accepted too)
: "${MODULE:=${STRONGROOM_MODULE:-}}"
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
TOKEN=p11kit
PKCS11_DIR=/usr/lib/x86_64-linux-gnu/pkcs11
[[ -d $PKCS11_DIR ]] || PKCS11_DIR=$(dirname "$(dpkg -L p11-kit-modules 2>/dev/null | grep -m1 '/pkcs11/p11-kit-client.so$')")
CLIENT_SO=$PKCS11_DIR/p11-kit-client.so
PROXY_SO=$(dirname "$PKCS11_DIR")/p11-kit-proxy.so
MODULE_TEMPLATE="$REPO_ROOT/tools/strongroom.module"
echo "[$INTEROP_NAME] module $MODULE"

step "tools: p11-kit, p11tool, pkcs11-tool, PyKCS11, openssl"
need_packages p11-kit p11-kit-modules gnutls-bin opensc python3-pykcs11 openssl
[[ -f $CLIENT_SO && -f $PROXY_SO ]] || fail "p11-kit-client.so / p11-kit-proxy.so not found ($CLIENT_SO, $PROXY_SO)"
[[ -f $MODULE_TEMPLATE ]] || fail "$MODULE_TEMPLATE is missing"
grep -q '^module: @STRONGROOM_MODULE_PATH@$' "$MODULE_TEMPLATE" || fail "tools/strongroom.module lacks the module: placeholder line"

step "a non-root user with its own HOME and store inside the work directory"
U_DIR="$WORKDIR/u"
U_HOME="$U_DIR/home"
U_STORE="$U_DIR/store"
mkdir -p "$U_HOME/.config/pkcs11/modules" "$U_STORE" "$U_DIR/run"
if [[ $(id -u) -eq 0 ]]; then
    TEST_USER=${P11KIT_TEST_USER:-strongroom-p11}
    if ! id "$TEST_USER" >/dev/null 2>&1; then
        useradd -m -s /bin/sh "$TEST_USER" || fail "useradd $TEST_USER failed"
    fi
    chmod 711 "$WORKDIR"
    chown -R "$TEST_USER": "$U_DIR"
    AS_USER=(runuser -u "$TEST_USER" --)
else
    TEST_USER=$(id -un)
    AS_USER=()
fi
chmod 700 "$U_STORE" "$U_DIR/run"
echo "user $TEST_USER, HOME $U_HOME, store $U_STORE"
# The module under test must be loadable by that user; if its directory is not
# readable (e.g. a checkout under /root), use a copy.
U_MODULE=$MODULE
if ! "${AS_USER[@]}" test -r "$MODULE"; then
    U_MODULE="$U_DIR/libstrongroom_pkcs11.so"
    cp "$MODULE" "$U_MODULE"
    chmod 755 "$U_MODULE"
    echo "module not readable by $TEST_USER: using a copy at $U_MODULE"
fi
cp "$(dirname "$0")/python/p11kit_fork.py" "$U_DIR/"
chmod 644 "$U_DIR/p11kit_fork.py"
# u CMD...: run CMD as the test user with its environment.
u() {
    "${AS_USER[@]}" env HOME="$U_HOME" XDG_CONFIG_HOME="$U_HOME/.config" XDG_RUNTIME_DIR="$U_DIR/run" \
        STRONGROOM_STORE="$U_STORE" STRONGROOM_KDF_MEMORY_KIB="$STRONGROOM_KDF_MEMORY_KIB" \
        STRONGROOM_KDF_ITERATIONS="$STRONGROOM_KDF_ITERATIONS" GNUTLS_PIN=$PIN GNUTLS_SO_PIN=$SO_PIN "$@"
}
# uok CMD...: u CMD with output in $OUT (echoed); must exit 0.
uok() { run_ok u "$@"; }

step "set up token '$TOKEN' and write a certificate (cert1, id 4242) with pkcs11-tool, as the user"
uok pkcs11-tool --module "$U_MODULE" --init-token --slot 0 --label $TOKEN --so-pin $SO_PIN
uok pkcs11-tool --module "$U_MODULE" --slot 0 --init-pin --so-pin $SO_PIN --pin $PIN
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORKDIR/cert1.key" \
    -out "$WORKDIR/cert1.pem" -subj "/CN=Strongroom p11-kit test" -days 30 2>/dev/null
openssl x509 -in "$WORKDIR/cert1.pem" -outform DER -out "$U_DIR/cert1.der"
chmod 644 "$U_DIR/cert1.der"
uok pkcs11-tool --module "$U_MODULE" --slot 0 --login --pin $PIN --write-object "$U_DIR/cert1.der" \
    --type cert --id 4242 --label cert1
expect 'Created certificate'

step "register the module: tools/strongroom.module with the real path in the user's ~/.config/pkcs11/modules/"
sed "s|@STRONGROOM_MODULE_PATH@|$U_MODULE|" "$MODULE_TEMPLATE" >"$U_DIR/strongroom.module"
install -m 644 "$U_DIR/strongroom.module" "$U_HOME/.config/pkcs11/modules/strongroom.module"
[[ $(id -u) -ne 0 ]] || chown -R "$TEST_USER": "$U_HOME/.config"
grep -v '^#' "$U_HOME/.config/pkcs11/modules/strongroom.module" | grep .

step "p11-kit list-modules shows the module (library description Strongroom) and token '$TOKEN'"
uok p11-kit list-modules
SECTION=$(sed -n '/^strongroom: /,/^[^ ]/p' <<<"$OUT")
[[ -n "$SECTION" ]] || fail "no 'strongroom:' module in p11-kit list-modules"
grep -Eq "^strongroom: $U_MODULE\$" <<<"$SECTION" || fail "module strongroom does not point at $U_MODULE"
grep -Eq '^    library-description: Strongroom' <<<"$SECTION" || fail "library-description is not Strongroom"
grep -Eq '^    library-manufacturer: Strongroom' <<<"$SECTION" || fail "library-manufacturer is not Strongroom"
grep -Eq "^    token: $TOKEN\$" <<<"$SECTION" || fail "token $TOKEN not listed under the module"
SERIAL=$(sed -n "/^    token: $TOKEN\$/,/serial-number/s/^ *serial-number: *//p" <<<"$SECTION")
[[ -n "$SERIAL" ]] || fail "no serial number for token $TOKEN"
echo "token $TOKEN serial $SERIAL"

step "p11tool --list-tokens (through p11-kit) gives the token URI"
uok p11tool --list-tokens
expect "URL: pkcs11:model=Strongroom%20soft;manufacturer=Strongroom;serial=$SERIAL;token=$TOKEN\$"
URI="pkcs11:model=Strongroom%20soft;manufacturer=Strongroom;serial=$SERIAL;token=$TOKEN"

step "p11tool --login --list-all lists the certificate"
uok p11tool --login --list-all "pkcs11:token=$TOKEN"
expect "URL: $URI;id=%42%42;object=cert1;type=cert\$"
expect 'Type: X\.509 Certificate'

step "p11tool --login --generate-privkey ECDSA --label gen1, then gen1 is listed"
uok p11tool --login --generate-privkey ECDSA --label gen1 "pkcs11:token=$TOKEN"
expect 'BEGIN PUBLIC KEY'
uok p11tool --login --list-all "pkcs11:token=$TOKEN"
expect "object=gen1;type=private\$"
expect "object=gen1;type=public\$"
expect 'Type: Private key \(EC/ECDSA-SECP256R1\)'
uok p11tool --login --test-sign "pkcs11:token=$TOKEN;object=gen1;type=private"
expect '^Verifying against public key in the token\.\.\. ok$'

step "p11tool --export of the certificate gives the bytes pkcs11-tool wrote"
uok p11tool --export "pkcs11:token=$TOKEN;object=cert1;type=cert"
expect 'BEGIN CERTIFICATE'
printf '%s\n' "$OUT" | openssl x509 -outform DER -out "$WORKDIR/cert1.exported.der"
cmp -s "$U_DIR/cert1.der" "$WORKDIR/cert1.exported.der" || fail "exported certificate differs from the one written"

step "fork through p11-kit-proxy.so: the child's C_Initialize succeeds and it works (twice)"
uok "$SYS_PYTHON" "$U_DIR/p11kit_fork.py" "$PROXY_SO" $TOKEN $PIN gen1
expect '^OK fork$'
[[ $(count 'C_Initialize -> CKR_OK') -eq 2 ]] || fail "expected two children"

step "p11-kit server --provider <module> \"pkcs11:token=$TOKEN\" serves the token"
SOCK="$U_DIR/run/strongroom.sock"
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap 'stop_server; cleanup_workdir' EXIT
u timeout 300 p11-kit server -f -s -n "$SOCK" --provider "$U_MODULE" "pkcs11:token=$TOKEN" \
    >"$WORKDIR/server.out" 2>"$WORKDIR/server.err" &
for _ in $(seq 50); do
    [[ -S "$SOCK" ]] && grep -q P11_KIT_SERVER_PID "$WORKDIR/server.out" && break
    sleep 0.1
done
[[ -S "$SOCK" ]] || fail "p11-kit server did not create $SOCK: $(cat "$WORKDIR/server.err")"
SERVER_PID=$(sed -n 's/^P11_KIT_SERVER_PID=\([0-9]*\);.*/\1/p' "$WORKDIR/server.out")
[[ -n "$SERVER_PID" ]] || fail "no P11_KIT_SERVER_PID in: $(cat "$WORKDIR/server.out")"
echo "server pid $SERVER_PID, socket $SOCK"
uc() { run_ok u env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" "$@"; }
uc pkcs11-tool --module "$CLIENT_SO" -L
expect "token label +: $TOKEN\$"
expect "serial num +: $SERIAL\$"

step "through p11-kit-client.so: login, list objects, sign with gen1 (CKM_ECDSA), make an AES key"
uc pkcs11-tool --module "$CLIENT_SO" --login --pin $PIN -O
expect "label: +gen1$"
expect "label: +cert1$"
head -c 32 /dev/urandom >"$U_DIR/digest.bin"
chmod 644 "$U_DIR/digest.bin"
uc pkcs11-tool --module "$CLIENT_SO" --login --pin $PIN --sign -m ECDSA --label gen1 \
    -i "$U_DIR/digest.bin" -o "$U_DIR/remote.sig"
[[ $(stat -c %s "$U_DIR/remote.sig") -eq 64 ]] || fail "remote ECDSA signature is not 64 bytes"
uc pkcs11-tool --module "$CLIENT_SO" --login --pin $PIN --keygen --key-type AES:32 --label remote-aes
expect 'Key generated'
uc p11tool --provider "$CLIENT_SO" --login --test-sign "pkcs11:token=$TOKEN;object=gen1;type=private"
expect '^Verifying against public key in the token\.\.\. ok$'

step "the key made through the server is on the token (direct access)"
uok pkcs11-tool --module "$U_MODULE" --login --pin $PIN -O --type secrkey
expect "label: +remote-aes$"
stop_server

echo "[$INTEROP_NAME] ${SECONDS}s"
finish
