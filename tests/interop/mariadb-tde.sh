#!/usr/bin/env bash
# MariaDB 10.11 transparent data encryption with its keys in the token:
# mariadbd's hashicorp_key_management plugin fetches keys over the Vault KV v2
# API of strongroom-keyd, which keeps every data key only wrapped under a
# master key generated in the token (through the PKCS#11 module under test).
#
#   mariadbd --plugin-load-add=hashicorp_key_management --hashicorp-key-management-vault-url=
#     https://127.0.0.1:PORT/v1/secret  -->  strongroom-keyd (SQLite: KWP-wrapped data keys)
#     -->  PKCS#11 (MODULE), logged in as crypto user "keyd"
#     -->  Strongroom token "keyd" (master keys keyd-master-<n>, owned by keyd)
#
# The token is made with the admin CLI (strongroom init, strongroom user add
# keyd); the key service logs in as the crypto user keyd (PIN
# "keyd:<password>"), so the token's default user does not even see its keys.
# MariaDB reaches the service over TLS (a private CA made with openssl,
# --hashicorp-key-management-vault-ca), as it would from another host.
#
# Steps: tables, redo log and temp files encrypted; a known marker is in no
# file of the data directory, the key service's database or the token store;
# key id 1 rotated through the KMS API and InnoDB re-encrypts to it (rotate key
# age 1) with every row readable; master key rotated, key service and
# mariadbd restarted, rows readable; with the key service down mariadbd
# refuses the encrypted tables, and gets every row back once it is up; a wrong
# client token is refused and audited; envelope encryption of a file through
# the KMS API.
#
# Needs: mariadb-server mariadb-plugin-hashicorp-key-management (installed with
# apt-get when missing), curl, jq, openssl, pkcs11-tool, and the release
# binaries strongroom-keyd and strongroom next to MODULE (tools/test-all.sh's
# cargo build --release builds them: default members of the workspace).
# Usage: MODULE=path/to/libstrongroom_pkcs11.so [STRONGROOM_CLI=path/to/strongroom] bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1
source "$(dirname "$0")/lib/keyd.sh" || exit 1

SO_PIN=12345678
DEFAULT_PIN=default-user-pin
KEYD_PASSWORD=keyd-password-$RANDOM$RANDOM
TOKEN_LABEL=keyd
KEYD=$(dirname "$MODULE")/strongroom-keyd
CLI="${STRONGROOM_CLI:-$(dirname "$MODULE")/strongroom}"
MARKER="StrongroomTDE-marker-$(date +%s)-$RANDOM"
# Written to a table created ENCRYPTED=NO: it must be found on disk, which
# shows that the search below would see a plaintext marker.
CONTROL="StrongroomTDE-control-$(date +%s)-$RANDOM"
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE, keyd $KEYD"

step "install mariadb-server and the hashicorp key management plugin"
need_packages mariadb-server mariadb-plugin-hashicorp-key-management curl jq openssl
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[[ -x "$MARIADBD" ]] || fail "mariadbd not found"
INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db) || fail "no mariadb-install-db"
PLUGIN_DIR=$("$MARIADBD" --no-defaults --verbose --help 2>/dev/null | awk '$1 == "plugin-dir" {print $2}')
[[ -f "${PLUGIN_DIR:-/usr/lib/mysql/plugin}/hashicorp_key_management.so" ]] ||
    fail "hashicorp_key_management.so is not in ${PLUGIN_DIR:-/usr/lib/mysql/plugin}"
[[ -x "$KEYD" ]] || fail "$KEYD is missing (cargo build --release builds it)"
[[ -x "$CLI" ]] || fail "$CLI is missing (cargo build --release builds it)"

# ----- key service -----

keyd_setup 'mount = "secret"
cache_seconds = 0'

step "token '$TOKEN_LABEL' and crypto user keyd (strongroom CLI), key ids 1 and 2, client tokens"
run_ok env STRONGROOM_SO_PIN=$SO_PIN STRONGROOM_USER_PIN=$DEFAULT_PIN "$CLI" --module "$MODULE" init --label "$TOKEN_LABEL"
run_ok env STRONGROOM_SO_PIN=$SO_PIN STRONGROOM_USER_PASSWORD=$KEYD_PASSWORD "$CLI" --module "$MODULE" user add keyd
expect '^user keyd: password set$'
run_ok keyd admin create-key 1
run_ok keyd admin create-key 2
CLIENT_TOKEN=$(keyd admin create-client mariadb --keys 1,2) || fail "create-client mariadb"
ADMIN_TOKEN=$(keyd admin create-client ops --keys '*' --admin) || fail "create-client ops"
[[ "$CLIENT_TOKEN" == srk.* && "$ADMIN_TOKEN" == srk.* ]] || fail "unexpected client tokens"
run_ok keyd admin list-keys
expect '^1	versions \[1\]' "key 1 version 1"
expect 'master keyd-master-1'
p11 --token-label "$TOKEN_LABEL" --login --pin "keyd:$KEYD_PASSWORD" --list-objects --type secrkey
expect 'label: +keyd-master-1'
expect 'Access: +(.*never extractable|sensitive.*never extractable)'
p11 --token-label "$TOKEN_LABEL" --login --pin "$DEFAULT_PIN" --list-objects --type secrkey
expect_not 'keyd-master' "the token's default user sees the master key of crypto user keyd"

step "start strongroom-keyd on https://127.0.0.1:$PORT; Vault KV v2 answers"
keyd_start
keyd_log_has 'logged in as crypto user keyd' || fail "keyd did not log in as crypto user keyd: $(cat "$WORKDIR/keyd.log")"
rc=0
curl -sS -o /dev/null "http://127.0.0.1:$PORT/v1/sys/health" 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] || fail "plain HTTP was answered on the TLS port"
api "$CLIENT_TOKEN" /v1/sys/mounts/secret/tune
[[ $CODE == 200 ]] || fail "tune: HTTP $CODE $OUT"
[[ $(jq -r .options.version <<<"$OUT") == 2 ]] || fail "tune reply lacks options.version 2: $OUT"
api "$CLIENT_TOKEN" /v1/secret/data/1
[[ $CODE == 200 ]] || fail "key 1: HTTP $CODE"
[[ $(jq -r '.data.metadata.version | type' <<<"$OUT") == number ]] || fail "metadata.version is not a number"
KEY1_V1=$(jq -r .data.data.data <<<"$OUT")
[[ $KEY1_V1 =~ ^[0-9a-f]{64}$ ]] || fail "key 1 is not 64 hex digits"
api "$ADMIN_TOKEN" /v1/secret/data/7
[[ $CODE == 404 ]] || fail "unknown key id 7: HTTP $CODE, expected 404"
api "$ADMIN_TOKEN" "/v1/secret/data/1?version=9"
[[ $CODE == 404 ]] || fail "unknown version 9 of key 1: HTTP $CODE, expected 404"
api "$CLIENT_TOKEN" /v1/secret/data/7
[[ $CODE == 403 ]] || fail "key id 7 is outside the client's policy: HTTP $CODE, expected 403"

# ----- mariadbd -----

DATADIR=$WORKDIR/mysql
SOCK=$WORKDIR/mysqld.sock
CNF=$WORKDIR/my.cnf
mkdir -p "$WORKDIR/tmp"
# What a DBA puts in my.cnf (here with a private datadir and socket).
cat >"$CNF" <<EOF
[mysqld]
datadir = $DATADIR
socket = $SOCK
pid-file = $WORKDIR/mysqld.pid
log-error = $WORKDIR/mariadbd.err
tmpdir = $WORKDIR/tmp
skip-networking
user = root
innodb-buffer-pool-size = 64M
innodb-log-file-size = 16M
plugin-load-add = hashicorp_key_management
hashicorp-key-management-vault-url = $URL/v1/secret
hashicorp-key-management-vault-ca = $KEYD_DIR/ca.pem
hashicorp-key-management-token = $CLIENT_TOKEN
hashicorp-key-management-timeout = 5
hashicorp-key-management-max-retries = 1
hashicorp-key-management-cache-timeout = 1000
hashicorp-key-management-cache-version-timeout = 500
hashicorp-key-management-use-cache-on-timeout = OFF
innodb-encrypt-tables = ON
innodb-encrypt-log = ON
innodb-encrypt-temporary-tables = ON
encrypt-tmp-files = ON
aria-encrypt-tables = ON
innodb-encryption-threads = 1
innodb-encryption-rotate-key-age = 1
EOF
chmod 600 "$CNF"
MDB_PID=
# sql STATEMENTS: runs them with the mariadb client; output in $OUT.
sql() {
    local rc=0
    OUT=$(mariadb --no-defaults --socket="$SOCK" -uroot --batch --skip-column-names -e "$1" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || fail "SQL failed ($rc): $1: $OUT"
}
# sql_may_fail STATEMENTS: as sql; returns the client's exit code.
sql_may_fail() {
    local rc=0
    OUT=$(mariadb --no-defaults --socket="$SOCK" -uroot --batch --skip-column-names -e "$1" 2>&1) || rc=$?
    return $rc
}
# mdb_start: starts mariadbd; returns 0 once it answers, 1 if it exits or
# does not answer within 60 s (it is then stopped).
mdb_start() {
    bg_start "$WORKDIR/mariadbd.out" "$MARIADBD" --defaults-file="$CNF"
    MDB_PID=$BG_PID
    local i
    for i in $(seq 600); do
        if mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$MDB_PID" 2>/dev/null || { wait "$MDB_PID" 2>/dev/null || true; MDB_PID=; return 1; }
        sleep 0.1
    done
    mdb_stop
    return 1
}
# mdb_stop: slow (full purge and checkpoint) shutdown, by process id.
mdb_stop() {
    [[ -n "$MDB_PID" ]] || return 0
    sql_may_fail "SET GLOBAL innodb_fast_shutdown=0" || true
    kill -TERM "$MDB_PID" 2>/dev/null || true
    local i
    for i in $(seq 600); do
        kill -0 "$MDB_PID" 2>/dev/null || break
        sleep 0.1
    done
    bg_stop "$MDB_PID"
    MDB_PID=
}
mdb_log() { tail -n 30 "$WORKDIR/mariadbd.err" 2>/dev/null | sed 's/^/    mariadbd: /' >&2 || true; }
# wait_encrypted SECONDS [KEY_VERSION]: until every InnoDB tablespace is
# encrypted and none is being rotated (and tde/t has KEY_VERSION, when given).
wait_encrypted() {
    local secs=$1 want=${2:-} i
    for i in $(seq $((secs * 2))); do
        sql "SELECT COUNT(*) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE (ENCRYPTION_SCHEME = 0 AND NAME <> 'tde/control') OR ROTATING_OR_FLUSHING = 1"
        local pending=$OUT
        # MIN_KEY_VERSION: the oldest key version any page of tde/t still has.
        sql "SELECT CONCAT(CURRENT_KEY_VERSION, '/', MIN_KEY_VERSION) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME = 'tde/t'"
        local v=$OUT
        if [[ $pending == 0 && ( -z "$want" || $v == "$want/$want" ) ]]; then
            return 0
        fi
        sleep 0.5
    done
    sql "SELECT NAME, ENCRYPTION_SCHEME, CURRENT_KEY_ID, CURRENT_KEY_VERSION, MIN_KEY_VERSION, ROTATING_OR_FLUSHING FROM information_schema.INNODB_TABLESPACES_ENCRYPTION"
    fail "tablespaces not (re-)encrypted after ${secs}s${want:+ to key version $want}: $OUT"
}
# all_rows: the table has its 1000 rows, each with the marker.
all_rows() {
    sql "SELECT COUNT(*), SUM(v LIKE '%$MARKER%') FROM tde.t"
    [[ $OUT == $'1000\t1000' ]] || fail "expected 1000 rows with the marker, got: $OUT"
}
trap 'mdb_stop; bg_stop_all; cleanup_workdir' EXIT

step "initialise a private datadir with encryption from the start (mariadb-install-db)"
run_ok "$INSTALL_DB" --defaults-file="$CNF" --auth-root-authentication-method=normal --skip-test-db
mdb_start || { mdb_log; fail "mariadbd did not start"; }
sql "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'hashicorp_key_management'"
[[ $OUT == ACTIVE ]] || fail "plugin not active: $OUT"
sql "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('innodb_encrypt_log', 'innodb_encrypt_tables', 'encrypt_tmp_files', 'innodb_encrypt_temporary_tables')"
[[ $(grep -c $'\tON$' <<<"$OUT") -eq 4 ]] || fail "encryption variables not all ON: $OUT"

step "1) tables, temporary tables and temp files written with a marker; no file holds it"
sql "CREATE DATABASE tde;
     USE tde;
     CREATE TABLE tde.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;
     INSERT INTO tde.t SELECT seq, CONCAT('row ', seq, ' $MARKER') FROM seq_1_to_1000;
     CREATE TABLE tde.t2 (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB ENCRYPTION_KEY_ID=2;
     INSERT INTO tde.t2 SELECT seq, REPEAT('$MARKER ', 20) FROM seq_1_to_200;
     CREATE TABLE tde.control (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB ENCRYPTED=NO;
     INSERT INTO tde.control VALUES (1, '$CONTROL');"
# Temporary table and a sort spilling to a temporary file, in one session.
sql "USE tde;
     SET SESSION sort_buffer_size = 32768;
     CREATE TEMPORARY TABLE tmp1 (id INT, v TEXT) ENGINE=InnoDB;
     INSERT INTO tmp1 SELECT id, v FROM tde.t;
     SELECT COUNT(*) FROM (SELECT v FROM tde.t2 ORDER BY v DESC, id LIMIT 150) AS x;"
all_rows
sql "SELECT NAME, CURRENT_KEY_ID, CURRENT_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'tde/%' ORDER BY NAME"
printf '%s\n' "$OUT"
expect '^tde/t	1	1$' "tde/t encrypted with key 1 version 1"
expect '^tde/t2	2	1$' "tde/t2 encrypted with key 2 version 1"
wait_encrypted 60
mdb_stop
for dir in "$DATADIR" "$KEYD_DIR" "$STRONGROOM_STORE" "$WORKDIR/tmp"; do
    if hits=$(grep -r -a -l -F -- "$MARKER" "$dir"); then
        fail "the marker is in plaintext in: $hits"
    fi
done
grep -r -a -q -F -- "$CONTROL" "$DATADIR" || fail "control: the marker of the ENCRYPTED=NO table is not found on disk"
echo "marker found in no file of $DATADIR, $KEYD_DIR, $STRONGROOM_STORE (the unencrypted control table's marker is)"
# The data key value is in neither the key service's database nor the store.
/usr/bin/python3 - "$KEY1_V1" "$KEYD_DIR" "$STRONGROOM_STORE" <<'EOF' || fail "a plaintext data key is on disk"
import os, sys
key = bytes.fromhex(sys.argv[1])
for top in sys.argv[2:]:
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            data = open(p, "rb").read()
            if key in data or sys.argv[1].encode() in data:
                sys.exit(f"key 1 version 1 in {p}")
EOF

step "2) rotate key id 1 twice through the KMS API; InnoDB re-encrypts tde/t to version 3"
mdb_start || { mdb_log; fail "mariadbd did not restart"; }
all_rows
api "$ADMIN_TOKEN" /kms/RotateKey '{"KeyId":"1"}'
[[ $CODE == 200 && $(jq -r .Version <<<"$OUT") == 2 ]] || fail "RotateKey: HTTP $CODE $OUT"
api "$ADMIN_TOKEN" /kms/RotateKey '{"KeyId":1}'
[[ $CODE == 200 && $(jq -r .Version <<<"$OUT") == 3 ]] || fail "RotateKey: HTTP $CODE $OUT"
api "$CLIENT_TOKEN" /kms/RotateKey '{"KeyId":"1"}'
[[ $CODE == 403 ]] || fail "a non-admin client rotated a key: HTTP $CODE"
# Pages are re-encrypted when they are rotate_key_age (1) versions behind.
wait_encrypted 120 3
sql "SELECT NAME, CURRENT_KEY_ID, CURRENT_KEY_VERSION, MIN_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'tde/%' ORDER BY NAME"
printf '%s\n' "$OUT"
expect '^tde/t	1	3	3$' "every page of tde/t re-encrypted to key 1 version 3"
all_rows
api "$CLIENT_TOKEN" "/v1/secret/data/1?version=1"
[[ $CODE == 200 && $(jq -r .data.data.data <<<"$OUT") == "$KEY1_V1" ]] || fail "version 1 of key 1 no longer readable"
api "$CLIENT_TOKEN" /v1/secret/data/1
[[ $CODE == 200 && $(jq -r .data.metadata.version <<<"$OUT") == 3 ]] || fail "latest of key 1 is not version 3: $OUT"

step "3) rotate the master key; restart the key service and mariadbd; every row reads"
api "$ADMIN_TOKEN" /kms/RotateMaster '{}'
[[ $CODE == 200 && $(jq -r .MasterLabel <<<"$OUT") == keyd-master-2 ]] || fail "RotateMaster: HTTP $CODE $OUT"
[[ $(jq -r .Rewrapped <<<"$OUT") == 4 ]] || fail "RotateMaster re-wrapped $(jq -r .Rewrapped <<<"$OUT") keys, expected 4"
run_ok keyd admin list-keys
expect_not 'master keyd-master-1' "every data key is under the new master"
mdb_stop
keyd_stop
keyd_start
mdb_start || { mdb_log; fail "mariadbd did not start after the master key rotation"; }
all_rows
sql "SELECT COUNT(*) FROM tde.t2"
[[ $OUT == 200 ]] || fail "tde.t2 has $OUT rows"
api "$CLIENT_TOKEN" "/v1/secret/data/1?version=1"
[[ $CODE == 200 && $(jq -r .data.data.data <<<"$OUT") == "$KEY1_V1" ]] || fail "key 1 version 1 changed across the master rotation"

step "4) key service stopped: a restarted mariadbd refuses the encrypted tables"
mdb_stop
keyd_stop
refused=0
if mdb_start; then
    if sql_may_fail "SELECT COUNT(*) FROM tde.t"; then
        echo "unexpected: $OUT"
    else
        refused=1
        echo "mariadbd is up but refuses tde.t: $OUT"
    fi
    mdb_stop
else
    refused=1
    echo "mariadbd did not start without the key service:"
    grep -Ei 'hashicorp|encrypt|key' "$WORKDIR/mariadbd.err" | tail -n 5 || true
fi
[[ $refused == 1 ]] || fail "mariadbd read encrypted rows with the key service down"

step "   key service back: mariadbd starts and every row is there"
keyd_start
mdb_start || { mdb_log; fail "mariadbd did not start with the key service back"; }
all_rows
sql "CHECK TABLE tde.t, tde.t2"
[[ $(grep -c $'\tcheck\tstatus\tOK$' <<<"$OUT") -eq 2 ]] || fail "CHECK TABLE: $OUT"

step "5) a wrong client token is refused (403) and audited"
api "srk.0000000000000000000000000000000000000000000000000000000000000000" /v1/secret/data/1
[[ $CODE == 403 ]] || fail "a wrong token got HTTP $CODE"
api "" /v1/secret/data/1
[[ $CODE == 403 ]] || fail "no token got HTTP $CODE"
run_ok keyd admin audit --last 200
expect 'client=\(bad token\) key=1 version=- action=VaultRead result=denied'
expect 'client=mariadb key=1 version=3 action=VaultRead result=ok'
expect 'client=ops key=- version=- action=RotateMaster result=ok'
expect_not "$KEY1_V1" "a key value in the audit log"

step "KMS envelope encryption of a file: data key from GenerateDataKey, only the wrapped key kept"
head -c 100000 /dev/urandom >"$WORKDIR/file.bin"
api "$CLIENT_TOKEN" /kms/GenerateDataKey '{"KeyId":"2"}'
[[ $CODE == 200 ]] || fail "GenerateDataKey: HTTP $CODE $OUT"
DK=$(jq -r .Plaintext <<<"$OUT" | base64 -d | od -An -tx1 | tr -d ' \n')
jq -r .CiphertextBlob <<<"$OUT" >"$WORKDIR/file.key"
IV=$(openssl rand -hex 16)
openssl enc -aes-256-cbc -K "$DK" -iv "$IV" -in "$WORKDIR/file.bin" -out "$WORKDIR/file.enc"
unset DK
api "$CLIENT_TOKEN" /kms/Decrypt "{\"CiphertextBlob\":\"$(cat "$WORKDIR/file.key")\"}"
[[ $CODE == 200 && $(jq -r .KeyId <<<"$OUT") == 2 ]] || fail "Decrypt: HTTP $CODE $OUT"
DK=$(jq -r .Plaintext <<<"$OUT" | base64 -d | od -An -tx1 | tr -d ' \n')
openssl enc -d -aes-256-cbc -K "$DK" -iv "$IV" -in "$WORKDIR/file.enc" -out "$WORKDIR/file.dec"
cmp -s "$WORKDIR/file.bin" "$WORKDIR/file.dec" || fail "the file did not decrypt"
api "$CLIENT_TOKEN" /kms/Decrypt "{\"CiphertextBlob\":\"$(cat "$WORKDIR/file.key" | tr 'A-Za-z' 'B-ZAb-za')\"}"
[[ $CODE == 400 ]] || fail "a tampered blob got HTTP $CODE"

mdb_stop
keyd_stop
finish
