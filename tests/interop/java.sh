#!/usr/bin/env bash
# Java 17 SunPKCS11 against the module, as Java users do it:
#  - a provider config (name = Strongroom, library = <module>, slotListIndex = 0);
#  - keytool -genkeypair through SunPKCS11 creates an RSA key pair and a
#    self-signed certificate on the token (session key pair, C_CopyObject to the
#    token, certificate with the same CKA_ID/CKA_LABEL), and an EC one too;
#  - a key pair made by pkcs11-tool plus a certificate written with pkcs11-tool
#    under the same CKA_ID and label (issued by a throwaway openssl CA for the
#    token's public key) is paired by SunPKCS11 into a PrivateKeyEntry;
#  - keytool -list -keystore NONE -storetype PKCS11 lists each alias as a
#    PrivateKeyEntry; jarsigner signs a jar with each key through the token and
#    jarsigner -verify accepts the result (and rejects a modified jar).
# Uses the JDK 17 tools (jarsigner is in openjdk-17-jdk-headless, not the JRE);
# JAVA17_HOME overrides /usr/lib/jvm/java-17-openjdk-amd64.
# Usage: MODULE=path/to/lib.so bash this-file   (STRONGROOM_MODULE is accepted too)
: "${MODULE:=${STRONGROOM_MODULE:-}}"
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"

step "tools: Java 17 (keytool, jarsigner, jar), pkcs11-tool, openssl"
need_packages default-jre-headless openjdk-17-jdk-headless opensc openssl
JAVA17_HOME=${JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
for t in java keytool jarsigner jar; do
    [[ -x "$JAVA17_HOME/bin/$t" ]] || fail "$JAVA17_HOME/bin/$t is missing"
done
export JAVA_HOME=$JAVA17_HOME
"$JAVA_HOME/bin/java" -version 2>&1 | head -1
"$JAVA_HOME/bin/java" -version 2>&1 | grep -q 'version "17\.' || fail "not Java 17"

step "token 'java' and the SunPKCS11 provider config"
init_token java $SO_PIN $PIN
CFG="$WORKDIR/strongroom-p11.cfg"
cat >"$CFG" <<EOF
name = Strongroom
library = $MODULE
slotListIndex = 0
EOF
cat "$CFG"
P11ARGS=(-providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$CFG")
# kt ARGS: keytool on the PKCS11 keystore; output in $OUT, must exit 0.
kt() { run_ok "$JAVA_HOME/bin/keytool" -keystore NONE -storetype PKCS11 "${P11ARGS[@]}" -storepass $PIN "$@"; }
# js ARGS: jarsigner with the PKCS11 keystore.
js() { run_ok "$JAVA_HOME/bin/jarsigner" -keystore NONE -storetype PKCS11 "${P11ARGS[@]}" -storepass $PIN "$@"; }

step "keytool -list on the empty token"
kt -list
expect 'Keystore provider: SunPKCS11-Strongroom'
expect 'Your keystore contains 0 entries'

step "keytool -genkeypair RSA 2048 with -providername SunPKCS11-Strongroom (generated on the token, C_CopyObject)"
t0=$SECONDS
kt -providername SunPKCS11-Strongroom -genkeypair -alias jrsa -keyalg RSA -keysize 2048 -sigalg SHA256withRSA \
    -dname "CN=Strongroom Java RSA" -validity 30
echo "took $((SECONDS - t0))s"

step "keytool -genkeypair RSA 2048 with the default provider order (made in software, C_CreateObject import)"
kt -genkeypair -alias jrsasw -keyalg RSA -keysize 2048 -sigalg SHA256withRSA \
    -dname "CN=Strongroom Java RSA software" -validity 30

step "keytool -genkeypair EC P-256"
kt -genkeypair -alias jec -keyalg EC -groupname secp256r1 -sigalg SHA256withECDSA \
    -dname "CN=Strongroom Java EC" -validity 30

step "pkcs11-tool key pair 'p11rsa' (id 0a11) + a certificate for its public key with the same id and label"
p11 --slot 0 --login --pin $PIN --keypairgen --key-type rsa:2048 --id 0a11 --label p11rsa
p11 --slot 0 --read-object --type pubkey --id 0a11 --output-file "$WORKDIR/p11rsa.pub.der"
openssl pkey -pubin -inform DER -in "$WORKDIR/p11rsa.pub.der" -out "$WORKDIR/p11rsa.pub.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORKDIR/ca.key" \
    -out "$WORKDIR/ca.pem" -subj "/CN=Strongroom test CA" -days 30 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORKDIR/dummy.key" \
    -out "$WORKDIR/p11rsa.csr" -subj "/CN=p11rsa" 2>/dev/null
openssl x509 -req -in "$WORKDIR/p11rsa.csr" -CA "$WORKDIR/ca.pem" -CAkey "$WORKDIR/ca.key" -CAcreateserial \
    -force_pubkey "$WORKDIR/p11rsa.pub.pem" -days 30 -outform DER -out "$WORKDIR/p11rsa.crt.der" 2>/dev/null
p11 --slot 0 --login --pin $PIN --write-object "$WORKDIR/p11rsa.crt.der" --type cert --id 0a11 --label p11rsa
expect 'Created certificate'

step "keytool -list shows jrsa, jrsasw, jec and p11rsa as PrivateKeyEntry"
kt -list
expect 'Your keystore contains 4 entries'
expect '^jrsa, PrivateKeyEntry,'
expect '^jrsasw, PrivateKeyEntry,'
expect '^jec, PrivateKeyEntry,'
expect '^p11rsa, PrivateKeyEntry,'
kt -list -v -alias jrsa
expect 'Entry type: PrivateKeyEntry'
expect 'Owner: CN=Strongroom Java RSA'
expect 'Subject Public Key Algorithm: 2048-bit RSA key'
kt -list -v -alias p11rsa
expect 'Owner: CN=p11rsa'
expect 'Issuer: CN=Strongroom test CA'

step "pkcs11-tool sees keytool's objects: SunPKCS11 uses CKA_ID = alias for the private key and the certificate"
p11 --slot 0 --login --pin $PIN -O
expect '^Certificate Object; type = X\.509 cert'
expect 'label: +jrsa$'
# "jrsa" = 6a727361: the private key (label empty) and the certificate (label jrsa)
[[ $(count '^ +ID: +6a727361$') -eq 2 ]] || fail "expected 2 objects with CKA_ID 'jrsa' (6a727361)"
awk '/^Private Key Object/{p=1} /^(Public|Certificate|Secret|Data)/{p=0} p&&/ID: +6a727361$/{f=1} p&&f&&/Access:/{print; exit}' <<<"$OUT" >"$WORKDIR/jrsa.access"
grep -q 'local' "$WORKDIR/jrsa.access" || fail "the token copy of the token-generated jrsa key lost CKA_LOCAL: $(cat "$WORKDIR/jrsa.access")"

step "jarsigner signs a jar with each key on the token; jarsigner -verify accepts it"
mkdir -p "$WORKDIR/jarsrc"
printf 'hello from Strongroom %s\n' "$RANDOM" >"$WORKDIR/jarsrc/hello.txt"
head -c 5000 /dev/urandom >"$WORKDIR/jarsrc/blob.bin"
(cd "$WORKDIR/jarsrc" && "$JAVA_HOME/bin/jar" cf "$WORKDIR/test.jar" hello.txt blob.bin)
for alias in jrsa jrsasw jec p11rsa; do
    cp "$WORKDIR/test.jar" "$WORKDIR/$alias.jar"
    t0=$SECONDS
    js "$WORKDIR/$alias.jar" $alias
    expect 'jar signed\.'
    run_ok "$JAVA_HOME/bin/jarsigner" -verify -verbose -certs "$WORKDIR/$alias.jar"
    expect '^jar verified\.'
    expect "^sm .* hello\.txt"
    echo "$alias: signed and verified in $((SECONDS - t0))s"
done
run_ok unzip -l "$WORKDIR/jec.jar"
expect 'META-INF/JEC\.EC'
run_ok unzip -l "$WORKDIR/jrsa.jar"
expect 'META-INF/JRSA\.RSA'

step "a modified signed jar does not verify"
mkdir -p "$WORKDIR/tamper"
(cd "$WORKDIR/tamper" && unzip -q "$WORKDIR/jrsa.jar" && echo tampered >>hello.txt &&
    "$JAVA_HOME/bin/jar" cfm "$WORKDIR/tampered.jar" META-INF/MANIFEST.MF hello.txt blob.bin META-INF/JRSA.SF META-INF/JRSA.RSA)
rc=0
OUT=$("$JAVA_HOME/bin/jarsigner" -verify "$WORKDIR/tampered.jar" 2>&1) || rc=$?
printf '%s\n' "$OUT"
expect_not '^jar verified\.'
expect 'SHA-256 digest error|SecurityException|digest error'

echo "[$INTEROP_NAME] ${SECONDS}s"
finish
