#!/usr/bin/env bash
# OpenSSH with keys on the token: ssh-keygen -D lists the public keys (no
# login), and ssh (PKCS11Provider, PIN through SSH_ASKPASS) logs in to a private
# sshd on 127.0.0.1 once with the RSA-2048 key and once with the EC P-256 key.
# Mechanisms: CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN, CKM_RSA_PKCS
# (ssh signs rsa-sha2-256/512 as a DigestInfo), CKM_ECDSA.
# Needs root (sshd with privilege separation) and openssh-client/-server.
# Usage: MODULE=path/to/lib.so bash this-file   (STRONGROOM_MODULE also accepted)
if [[ -z "${MODULE:-}" && -n "${STRONGROOM_MODULE:-}" ]]; then
    MODULE=$STRONGROOM_MODULE
fi
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
TOKEN=ssh
SSHD=/usr/sbin/sshd
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"
command -v ssh >/dev/null || fail "ssh missing (apt-get install openssh-client)"
[[ -x $SSHD ]] || fail "$SSHD missing (apt-get install openssh-server)"
[[ $(id -u) -eq 0 ]] || fail "must run as root (private sshd, login as root)"
unset SSH_AUTH_SOCK SSH_AGENT_PID

W=$WORKDIR
chmod 700 "$W"

step "set up token '$TOKEN' with an RSA-2048 key (id 01) and an EC P-256 key (id 02)"
p11 --init-token --slot 0 --label $TOKEN --so-pin $SO_PIN
p11 --slot 0 --init-pin --so-pin $SO_PIN --pin $PIN
p11 --login --pin $PIN --keypairgen --key-type rsa:2048 --label rsakey --id 01
p11 --login --pin $PIN --keypairgen --key-type EC:prime256v1 --label eckey --id 02

step "ssh-keygen -D lists both public keys without a PIN"
rc=0
OUT=$(timeout 60 ssh-keygen -D "$MODULE" 2>"$W/keygen.err" </dev/null) || rc=$?
printf '%s\n' "$OUT"
cat "$W/keygen.err"
[[ $rc -eq 0 ]] || fail "ssh-keygen -D exited $rc"
[[ $(grep -c . <<<"$OUT") -eq 2 ]] || fail "expected 2 keys from ssh-keygen -D, got $(grep -c . <<<"$OUT")"
[[ $(count '^ssh-rsa AAAA') -eq 1 ]] || fail "expected one ssh-rsa key"
[[ $(count '^ecdsa-sha2-nistp256 AAAA') -eq 1 ]] || fail "expected one ecdsa-sha2-nistp256 key"
grep '^ssh-rsa ' <<<"$OUT" >"$W/rsa.pub"
grep '^ecdsa-sha2-nistp256 ' <<<"$OUT" >"$W/ec.pub"
printf '%s\n' "$OUT" >"$W/all.pub"

step "the listed keys are the token's public keys"
for k in rsa ec; do
    id=$([[ $k == rsa ]] && echo 01 || echo 02)
    p11 --read-object --type pubkey --id $id -o "$W/$k-tok.der"
    openssl pkey -pubin -inform DER -in "$W/$k-tok.der" -out "$W/$k-tok.pem"
    ssh-keygen -i -m PKCS8 -f "$W/$k-tok.pem" >"$W/$k-tok.pub"
    [[ "$(cut -d' ' -f1,2 "$W/$k-tok.pub")" == "$(cut -d' ' -f1,2 "$W/$k.pub")" ]] ||
        fail "ssh-keygen -D's $k key is not the token's public key (id $id)"
done
FP_RSA=$(ssh-keygen -lf "$W/rsa.pub" | awk '{print $2}')
FP_EC=$(ssh-keygen -lf "$W/ec.pub" | awk '{print $2}')
echo "fingerprints: RSA $FP_RSA, ECDSA $FP_EC"

step "start a private sshd on 127.0.0.1"
mkdir -p /run/sshd
chmod 755 /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey" -C strongroom-test-host
PORT=$(free_port)
cat >"$W/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/hostkey
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
UseDNS no
LogLevel VERBOSE
EOF
$SSHD -t -f "$W/sshd_config" || fail "sshd -t rejects the configuration"
: >"$W/authorized_keys"
bg_start "$W/sshd.log" $SSHD -D -e -f "$W/sshd_config"
SSHD_PID=$BG_PID
wait_port "$PORT" "$SSHD_PID"

cat >"$W/askpass" <<EOF
#!/bin/sh
echo "\$*" >>"$W/askpass.log"
echo '$PIN'
EOF
chmod 700 "$W/askpass"

# ssh_run OPTS...: ssh to the private sshd (PIN via askpass, no terminal);
# output in $OUT, exit code in $RC.
ssh_run() {
    RC=0
    OUT=$(SSH_ASKPASS="$W/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        timeout 60 setsid -w ssh -F /dev/null -o BatchMode=no -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o PreferredAuthentications=publickey \
        -o ConnectTimeout=20 "$@" \
        -p "$PORT" root@127.0.0.1 echo OK 2>&1 </dev/null) || RC=$?
    printf '%s\n' "$OUT"
}

for k in rsa ec; do
    if [[ $k == rsa ]]; then fp=$FP_RSA type=RSA; else fp=$FP_EC type=ECDSA; fi

    step "[$k] ssh logs in with the token's $type key (PKCS11Provider, PIN via askpass)"
    cp "$W/$k.pub" "$W/authorized_keys"
    : >"$W/askpass.log"
    ssh_run -o IdentitiesOnly=yes -i "$W/$k.pub" -o PKCS11Provider="$MODULE"
    [[ $RC -eq 0 ]] || { tail -20 "$W/sshd.log"; fail "ssh with the $type key exited $RC"; }
    [[ "$(tail -1 <<<"$OUT")" == OK ]] || fail "ssh did not print OK"
    grep -q 'PIN' "$W/askpass.log" || fail "ssh did not ask for the PIN through askpass"
    grep -q "Accepted publickey for root from 127.0.0.1 port [0-9]* ssh2: $type $fp" "$W/sshd.log" ||
        { tail -20 "$W/sshd.log"; fail "sshd did not log an accepted $type $fp login"; }
    grep "Accepted publickey" "$W/sshd.log" | tail -1

    step "[$k] without the provider the same login is refused"
    ssh_run -o IdentitiesOnly=yes -i "$W/$k.pub" -o PKCS11Provider=none
    [[ $RC -ne 0 ]] || fail "ssh without the token succeeded"
    expect 'Permission denied'
done

step "the other key is refused when only one key is authorized"
cp "$W/ec.pub" "$W/authorized_keys"
ssh_run -o IdentitiesOnly=yes -i "$W/rsa.pub" -o PKCS11Provider="$MODULE"
[[ $RC -ne 0 ]] || fail "ssh with the RSA key logged in although only the EC key is authorized"
expect 'Permission denied'

step "both keys authorized: ssh offers the token's keys and logs in"
cp "$W/all.pub" "$W/authorized_keys"
ssh_run -o IdentitiesOnly=yes -i "$W/rsa.pub" -i "$W/ec.pub" -o PKCS11Provider="$MODULE"
[[ $RC -eq 0 && "$(tail -1 <<<"$OUT")" == OK ]] || fail "ssh with both keys authorized failed (exit $RC)"

step "stop sshd"
bg_stop "$SSHD_PID"
if kill -0 "$SSHD_PID" 2>/dev/null; then fail "sshd $SSHD_PID still runs"; fi

finish
