#!/usr/bin/env bash
# The two Python PKCS#11 libraries against the module: PyKCS11 (Debian
# python3-pykcs11) and python-pkcs11 (PyPI, in a venv made on first use, see
# python_pkcs11_venv in lib/common.sh). Each script (tests/interop/python/)
# creates keys WITHOUT usage attributes and relies on the token defaults, then:
# C_SeedRandom, AES keygen, single- and multi-part AES, CKM_AES_KEY_WRAP
# wrap/unwrap, EC P-256 and RSA-2048 sign/verify, find by label and class, and
# CKA_VALUE of a sensitive key -> CKR_ATTRIBUTE_SENSITIVE. python-pkcs11 also
# does AES-GCM and RSA-PSS. Each library gets its own token.
# Usage: MODULE=path/to/lib.so bash this-file   (STRONGROOM_MODULE is accepted too)
: "${MODULE:=${STRONGROOM_MODULE:-}}"
source "$(dirname "$0")/lib/common.sh" || exit 1

SO_PIN=12345678
PIN=1234
PYDIR=$(cd "$(dirname "$0")/python" && pwd)
echo "[$INTEROP_NAME] module $MODULE, store $STRONGROOM_STORE"

step "tools: python3-pykcs11, python3-venv, python-pkcs11 venv"
need_packages python3-pykcs11 python3-venv opensc
python_pkcs11_venv
echo "venv python: $PY_VENV_PYTHON"

step "two tokens: 'pykcs11' in slot 0, 'pypkcs11' in slot 1"
init_token pykcs11 $SO_PIN $PIN 0
init_token pypkcs11 $SO_PIN $PIN 1
p11 -L
expect 'token label +: pykcs11$'
expect 'token label +: pypkcs11$'

step "PyKCS11: keygen without usage attributes, seed, AES single/multi-part, AES-KW, EC/RSA sign, find, sensitive"
t0=$SECONDS
run_ok "$SYS_PYTHON" "$PYDIR/pykcs11_ops.py" "$MODULE" pykcs11 $PIN
expect '^OK pykcs11$'
echo "PyKCS11 script: $((SECONDS - t0))s"

step "python-pkcs11: the same plus AES-GCM and RSA-PSS"
t0=$SECONDS
run_ok "$PY_VENV_PYTHON" "$PYDIR/python_pkcs11_ops.py" "$MODULE" pypkcs11 $PIN
expect '^OK python-pkcs11$'
echo "python-pkcs11 script: $((SECONDS - t0))s"

step "pkcs11-tool sees what each library left on its token"
p11 --slot 0 --login --pin $PIN -O
expect "label: +pyk-aes$"
expect "label: +pyk-kek$"
expect "label: +pyk-ec$"
expect "label: +pyk-rsa$"
expect_not "pyk-aes-unwrapped"
p11 --slot 1 --login --pin $PIN -O
expect "label: +pp-aes$"
expect "label: +pp-rsa$"
expect_not "pp-aes-unwrapped"

finish
