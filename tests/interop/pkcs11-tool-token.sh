#!/usr/bin/env bash
# pkcs11-tool (OpenSC) against the module: library info, slots, token and PIN
# life cycle, data and certificate objects, PIN lockout, fork, a second token.
# Needs no crypto mechanism. Usage: MODULE=path/to/lib.so bash this-file
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"

step "--show-info names Strongroom and Cryptoki 3.0"
p11 --show-info
expect '^Cryptoki version 3\.0'
expect '^Manufacturer +Strongroom'
expect '^Library +Strongroom'

step "-L on an empty store shows one uninitialised slot 0"
p11 -L
expect '^Slot 0 \(0x0\)'
expect 'token state: +uninitialized'
[[ $(count '^Slot ') -eq 1 ]] || fail "expected exactly one slot"

step "--init-token --label test in slot 0"
p11 --init-token --slot 0 --label test --so-pin $SO_PIN
expect 'Token successfully initialized'

step "-L shows token 'test', initialised, and a new free slot 1"
p11 -L
expect 'token label +: test$'
expect 'token flags +:.*token initialized'
expect_not 'token flags +:.*PIN initialized'
expect '^Slot 1 \(0x1\)'
expect 'token state: +uninitialized'
[[ $(count '^Slot ') -eq 2 ]] || fail "expected exactly two slots"
SERIAL0=$(sed -n 's/^ *serial num *: *//p' <<<"$OUT" | head -1)
[[ -n "$SERIAL0" ]] || fail "no serial number for slot 0"

step "--init-pin as SO"
p11 --slot 0 --init-pin --so-pin $SO_PIN --pin $PIN
expect 'User PIN successfully initialized'
p11 -L
expect 'token flags +:.*PIN initialized'

step "--login -O with the user PIN (empty token)"
p11 --slot 0 --login --pin $PIN -O

step "--write-object a private data object d1, --read-object returns the same bytes"
head -c 300 /dev/urandom >"$WORKDIR/d1.bin"
p11 --slot 0 --login --pin $PIN --write-object "$WORKDIR/d1.bin" --type data --label d1 --private
expect 'Created Data Object'
p11 --slot 0 --login --pin $PIN --read-object --type data --label d1 --output-file "$WORKDIR/d1.out"
cmp -s "$WORKDIR/d1.bin" "$WORKDIR/d1.out" || fail "d1 read back differs from what was written"

step "the private data object is invisible without login"
p11_fails --slot 0 --read-object --type data --label d1 --output-file "$WORKDIR/d1.nologin"
p11 --slot 0 -O
expect_not "label: +'d1'"

step "--write-object a public data object d2, readable without login"
printf 'public bytes %s\n' "$RANDOM" >"$WORKDIR/d2.bin"
p11 --slot 0 --login --pin $PIN --write-object "$WORKDIR/d2.bin" --type data --label d2
p11 --slot 0 --read-object --type data --label d2 --output-file "$WORKDIR/d2.out"
cmp -s "$WORKDIR/d2.bin" "$WORKDIR/d2.out" || fail "d2 read back differs from what was written"

step "--write-object a self-signed certificate c1 (id 01), -O lists it"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORKDIR/c1.key" -subj "/CN=strongroom interop" -days 2 \
    -outform DER -out "$WORKDIR/c1.der" 2>/dev/null
p11 --slot 0 --login --pin $PIN --write-object "$WORKDIR/c1.der" --type cert --label c1 --id 01
p11 --slot 0 --login --pin $PIN -O
expect '^Certificate Object; type = X\.509 cert'
expect 'label: +c1$'
expect 'subject: +DN: CN ?= ?strongroom interop'
expect 'ID: +01$'
expect "label: +'d1'"
p11 --slot 0 --read-object --type cert --id 01 --output-file "$WORKDIR/c1.out"
cmp -s "$WORKDIR/c1.der" "$WORKDIR/c1.out" || fail "certificate read back differs"

step "--delete-object d1, and it is gone"
p11 --slot 0 --login --pin $PIN --delete-object --type data --label d1
p11 --slot 0 --login --pin $PIN -O
expect_not "label: +'d1'"
expect "label: +'d2'"
p11_fails --slot 0 --login --pin $PIN --read-object --type data --label d1 --output-file "$WORKDIR/d1.gone"

step "--change-pin 1234 -> 4321: the old PIN fails, the new one works"
p11 --slot 0 --change-pin --pin $PIN --new-pin 4321
p11_fails --slot 0 --login --pin $PIN -O
expect 'CKR_PIN_INCORRECT'
p11 --slot 0 --login --pin 4321 -O
expect 'label: +c1$'
PIN=4321

step "--test-fork exits 0 with no error line"
p11 --slot 0 --test-fork
expect_not '(error|failed|CKR_)' "an error line"

step "a second token in slot 1 with another label; distinct serial numbers"
p11 --slot 1 --init-token --label second --so-pin 87654321
p11 -L
expect 'token label +: test$'
expect 'token label +: second$'
expect '^Slot 2 \(0x2\)'
[[ $(count '^Slot ') -eq 3 ]] || fail "expected three slots (two tokens, one free)"
mapfile -t SERIALS < <(sed -n 's/^ *serial num *: *//p' <<<"$OUT")
[[ ${#SERIALS[@]} -eq 2 ]] || fail "expected two serial numbers, got ${#SERIALS[*]}"
[[ "${SERIALS[0]}" == "$SERIAL0" ]] || fail "slot 0 serial changed: $SERIAL0 -> ${SERIALS[0]}"
[[ "${SERIALS[0]}" != "${SERIALS[1]}" ]] || fail "both tokens have serial ${SERIALS[0]}"
p11 --slot 0 --login --pin $PIN -O
expect 'label: +c1$'
p11 --token-label second -O
expect_not 'label: +c1$'

step "with STRONGROOM_MAX_PIN_FAILURES=3 (separate store) the user PIN locks"
(
    export STRONGROOM_STORE="$WORKDIR/lockout-store" STRONGROOM_MAX_PIN_FAILURES=3
    p11 --init-token --slot 0 --label lock --so-pin $SO_PIN
    p11 --slot 0 --init-pin --so-pin $SO_PIN --pin 1111
    for i in 1 2 3; do
        p11_fails --slot 0 --login --pin 9999 -O
        expect 'CKR_PIN_INCORRECT|CKR_PIN_LOCKED' "wrong PIN try $i"
    done
    p11 -L
    expect 'token flags +:.*user PIN locked'
    p11_fails --slot 0 --login --pin 1111 -O
    expect 'CKR_PIN_LOCKED'
    # The SO can still log in and unlock by setting a new user PIN.
    p11 --slot 0 --init-pin --so-pin $SO_PIN --pin 2222
    p11 --slot 0 --login --pin 2222 -O
)

step "the default lockout is 10 failures"
(
    export STRONGROOM_STORE="$WORKDIR/lockout10-store"
    unset STRONGROOM_MAX_PIN_FAILURES
    p11 --init-token --slot 0 --label lock10 --so-pin $SO_PIN
    p11 --slot 0 --init-pin --so-pin $SO_PIN --pin 1111
    for i in $(seq 1 9); do p11_fails --slot 0 --login --pin 9999 -O; done
    p11 -L
    expect_not 'user PIN locked' "after 9 failures"
    p11_fails --slot 0 --login --pin 9999 -O
    p11_fails --slot 0 --login --pin 1111 -O
    expect 'CKR_PIN_LOCKED'
)

finish
