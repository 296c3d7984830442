#!/usr/bin/python3
"""Worker and checker for tests/interop/many-processes.sh (PyKCS11).

  many_keys.py create MODULE TOKEN PIN PREFIX COUNT
      one session: creates COUNT token AES-256 keys labelled PREFIX-0..COUNT-1
      (no usage attributes), then encrypts and decrypts with each one
      (AES-CBC-PAD, single-part, plus a multi-part AES-CBC round).
  many_keys.py check MODULE TOKEN PIN COUNT PREFIX-LIST-FILE KEYS-PER-PREFIX
      a new process: exactly COUNT token secret keys by class, and every label
      PREFIX-i (each prefix from the file, i < KEYS-PER-PREFIX) found exactly once.

Any PKCS#11 error raises (non-zero exit) with the failing call in the message.
"""
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel
from PyKCS11.LowLevel import (
    CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL, CKA_TOKEN, CKA_VALUE_LEN, CKF_RW_SESSION,
    CKF_SERIAL_SESSION, CKK_AES, CKM_AES_CBC, CKM_AES_CBC_PAD, CKO_SECRET_KEY, CKR_OK,
)


def open_session(module, token, pin):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == token:
            session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            session.login(pin)
            return lib, session
    raise RuntimeError("no token %r" % token)


def step(what, fn, *args):
    try:
        return fn(*args)
    except PyKCS11.PyKCS11Error as e:
        raise RuntimeError("%s: %s" % (what, e)) from e


def create(module, token, pin, prefix, count):
    t0 = time.monotonic()
    lib, s = open_session(module, token, pin)
    keys = []
    for i in range(count):
        label = "%s-%d" % (prefix, i)
        keys.append(step("C_GenerateKey %s" % label, s.generateKey,
                         [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
                          (CKA_TOKEN, True), (CKA_LABEL, label)]))
    t1 = time.monotonic()
    iv = bytes(16)
    pad = PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv)
    cbc = PyKCS11.Mechanism(CKM_AES_CBC, iv)
    for i, key in enumerate(keys):
        msg = ("%s-%d plaintext" % (prefix, i)).encode()
        ct = bytes(step("C_Encrypt key %d" % i, s.encrypt, key, msg, pad))
        pt = bytes(step("C_Decrypt key %d" % i, s.decrypt, key, ct, pad))
        if pt != msg:
            raise AssertionError("key %s-%d: decrypt gave other bytes" % (prefix, i))
        # multi-part: two C_EncryptUpdate calls and C_EncryptFinal
        rv = s.lib.C_EncryptInit(s.session, cbc.to_native(), key)
        if rv != CKR_OK:
            raise RuntimeError("C_EncryptInit key %d: %s" % (i, PyKCS11.PyKCS11Error(rv)))
        multi = b""
        for part in (bytes(16), bytes(32)):
            out = LowLevel.ckbytelist(len(part))
            rv = s.lib.C_EncryptUpdate(s.session, PyKCS11.ckbytelist(part), out)
            if rv != CKR_OK:
                raise RuntimeError("C_EncryptUpdate key %d: %s" % (i, PyKCS11.PyKCS11Error(rv)))
            multi += bytes(out)
        out = LowLevel.ckbytelist(16)
        rv = s.lib.C_EncryptFinal(s.session, out)
        if rv != CKR_OK:
            raise RuntimeError("C_EncryptFinal key %d: %s" % (i, PyKCS11.PyKCS11Error(rv)))
        multi += bytes(out)
        single = bytes(step("C_Encrypt CBC key %d" % i, s.encrypt, key, bytes(48), cbc))
        if multi != single:
            raise AssertionError("key %s-%d: multi-part CBC differs from single-part" % (prefix, i))
    s.logout()
    s.closeSession()
    print("%s: created %d keys in %.2fs, used them in %.2fs" % (prefix, count, t1 - t0, time.monotonic() - t1))


def check(module, token, pin, total, prefix_file, per_prefix):
    t0 = time.monotonic()
    lib, s = open_session(module, token, pin)
    found = step("find by class", s.findObjects, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_TOKEN, True)])
    if len(found) != total:
        raise AssertionError("found %d token secret keys by class, expected %d" % (len(found), total))
    print("by class: %d token secret keys (expected %d)" % (len(found), total))
    prefixes = [line.strip() for line in open(prefix_file) if line.strip()]
    n = 0
    for prefix in prefixes:
        for i in range(per_prefix):
            label = "%s-%d" % (prefix, i)
            hits = step("find %s" % label, s.findObjects, [(CKA_LABEL, label)])
            if len(hits) != 1:
                raise AssertionError("label %s: %d objects, expected 1" % (label, len(hits)))
            n += 1
    if n != total:
        raise AssertionError("checked %d labels, expected %d" % (n, total))
    print("by label: each of the %d labels found exactly once (%.1fs)" % (n, time.monotonic() - t0))
    print("OK check")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "create":
        module, token, pin, prefix, count = sys.argv[2:7]
        create(module, token, pin, prefix, int(count))
    elif cmd == "check":
        module, token, pin, total, prefix_file, per_prefix = sys.argv[2:8]
        check(module, token, pin, int(total), prefix_file, int(per_prefix))
    else:
        raise SystemExit("usage: see the docstring")
