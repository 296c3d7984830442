# Shared by the key-service interop scripts (keyd-kms.sh, mariadb-tde.sh),
# sourced after lib/common.sh.
#
# keyd_setup [EXTRA_CONFIG_LINES]: a private key-service directory with the
# crypto user's password file, a private CA and a TLS certificate for
# 127.0.0.1 (what an administrator does with the site's CA), and keyd.toml.
# Needs MODULE, TOKEN_LABEL, KEYD, KEYD_PASSWORD and WORKDIR; sets KEYD_DIR,
# PORT and URL.
keyd_setup() {
    KEYD_DIR=$WORKDIR/keyd
    mkdir -p "$KEYD_DIR"
    chmod 700 "$KEYD_DIR"
    PORT=$(free_port)
    URL=https://127.0.0.1:$PORT
    printf '%s\n' "$KEYD_PASSWORD" >"$KEYD_DIR/password"
    chmod 600 "$KEYD_DIR/password"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=keyd test CA" -keyout "$KEYD_DIR/ca.key" -out "$KEYD_DIR/ca.pem" 2>/dev/null ||
        fail "openssl: CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$KEYD_DIR/tls.key" -out "$KEYD_DIR/tls.csr" 2>/dev/null || fail "openssl: CSR"
    openssl x509 -req -in "$KEYD_DIR/tls.csr" -CA "$KEYD_DIR/ca.pem" -CAkey "$KEYD_DIR/ca.key" \
        -CAcreateserial -days 2 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') \
        -out "$KEYD_DIR/tls.pem" 2>/dev/null || fail "openssl: certificate"
    chmod 600 "$KEYD_DIR/tls.key"
    cat >"$KEYD_DIR/keyd.toml" <<CONF
module = "$MODULE"
token_label = "$TOKEN_LABEL"
user = "keyd"
password_file = "$KEYD_DIR/password"
listen = "127.0.0.1:$PORT"
tls_cert = "$KEYD_DIR/tls.pem"
tls_key = "$KEYD_DIR/tls.key"
database = "$KEYD_DIR/keyd.db"
${1:-}
CONF
}

keyd() { "$KEYD" --config "$KEYD_DIR/keyd.toml" "$@"; }

KEYD_PID=
keyd_start() {
    bg_start "$WORKDIR/keyd.log" "$KEYD" --config "$KEYD_DIR/keyd.toml" serve
    KEYD_PID=$BG_PID
    wait_port "$PORT" "$KEYD_PID" 20
}

# keyd_log_has REGEX: the key service's log shows REGEX within 10 s.
keyd_log_has() {
    local i
    for i in $(seq 100); do
        grep -Eq -- "$1" "$WORKDIR/keyd.log" && return 0
        sleep 0.1
    done
    return 1
}

keyd_stop() {
    [[ -n "$KEYD_PID" ]] && bg_stop "$KEYD_PID"
    KEYD_PID=
}

# api TOKEN PATH [JSON]: GET (no JSON) or POST to the key service over TLS;
# body in $OUT, HTTP status in $CODE.
api() {
    local tok=$1 path=$2 body=${3:-}
    local args=(-sS --cacert "$KEYD_DIR/ca.pem" -o "$WORKDIR/resp" -w '%{http_code}' -H "X-Vault-Token: $tok")
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data "$body")
    CODE=$(curl "${args[@]}" "$URL$path") || CODE=000
    OUT=$(cat "$WORKDIR/resp" 2>/dev/null || true)
}
