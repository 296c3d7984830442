#!/usr/bin/python3
"""Fork through p11-kit: initialise, fork, C_Initialize again in the child.

Usage: p11kit_fork.py PROXY_SO TOKEN_LABEL PIN KEY_LABEL

PROXY_SO is p11-kit-proxy.so: the module under test must be registered with
p11-kit (a *.module file). What p11-kit does on fork (shared docs CLIENTS.md):
in the child it calls the module's real C_Initialize again and skips
C_Finalize. The module must notice the fork, drop the parent's sessions and
login state and work normally in the child.

Parent: C_Initialize (PyKCS11 load), open a session on the token, log in,
find the objects, sign with KEY_LABEL (EC private key, CKM_ECDSA).
Child (two of them, one after the other): C_Initialize -> CKR_OK, then
C_GetSlotList, C_OpenSession, C_Login (must not be CKR_USER_ALREADY_LOGGED_IN:
the parent's login is not inherited), the same objects, a signature that
verifies, a session AES key that encrypts; then C_Finalize and exit.
Parent again: its session still works (find, sign, verify).
Prints "OK fork" at the end.
"""
import os
import sys

import PyKCS11
from PyKCS11.LowLevel import (
    CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL, CKA_TOKEN, CKA_VALUE_LEN, CKF_RW_SESSION,
    CKF_SERIAL_SESSION, CKK_AES, CKM_AES_CBC_PAD, CKM_ECDSA, CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKR_OK,
)


def log(who, msg):
    print("  [%s %d] %s" % (who, os.getpid(), msg), flush=True)


def find_slot(lib, token):
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == token:
            return slot
    raise RuntimeError("token %r not found through p11-kit" % token)


def work(who, lib, session, key_label):
    objs = session.findObjects()
    labels = sorted(set(session.getAttributeValue(o, [CKA_LABEL])[0] for o in objs))
    priv = session.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, key_label)])
    pub = session.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_LABEL, key_label)])
    if len(priv) != 1 or len(pub) != 1:
        raise AssertionError("%s: key %r: %d private, %d public" % (who, key_label, len(priv), len(pub)))
    digest = bytes(range(32))
    sig = bytes(session.sign(priv[0], digest, PyKCS11.Mechanism(CKM_ECDSA)))
    if not session.verify(pub[0], digest, sig, PyKCS11.Mechanism(CKM_ECDSA)):
        raise AssertionError("%s: signature does not verify" % who)
    log(who, "%d objects (%s), CKM_ECDSA sign+verify with %r ok" % (len(objs), ", ".join(labels), key_label))
    return len(objs)


def child(lib, token, pin, key_label, n_parent):
    who = "child"
    rv = lib.lib.C_Initialize()
    if rv != CKR_OK:
        raise AssertionError("C_Initialize in the child returned %s" % PyKCS11.PyKCS11Error(rv))
    log(who, "C_Initialize -> CKR_OK")
    slot = find_slot(lib, token)
    session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    session.login(pin)  # raises on CKR_USER_ALREADY_LOGGED_IN or anything else
    log(who, "C_OpenSession + C_Login ok")
    n = work(who, lib, session, key_label)
    if n != n_parent:
        raise AssertionError("child sees %d objects, the parent %d" % (n, n_parent))
    aes = session.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16),
                               (CKA_TOKEN, False), (CKA_LABEL, "fork-session-key")])
    mech = PyKCS11.Mechanism(CKM_AES_CBC_PAD, bytes(16))
    ct = bytes(session.encrypt(aes, b"in the child", mech))
    if bytes(session.decrypt(aes, ct, mech)) != b"in the child":
        raise AssertionError("child: AES round trip failed")
    log(who, "session AES key generate + encrypt/decrypt ok")
    session.logout()
    session.closeSession()
    rv = lib.lib.C_Finalize()
    if rv != CKR_OK:
        raise AssertionError("C_Finalize in the child returned %s" % PyKCS11.PyKCS11Error(rv))


def main():
    proxy, token, pin, key_label = sys.argv[1:5]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(proxy)
    slot = find_slot(lib, token)
    session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    session.login(pin)
    n = work("parent", lib, session, key_label)

    for i in range(2):
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(lib, token, pin, key_label, n)
            except Exception as e:  # report and fail, whatever it is
                print("  [child %d] FAILED: %s: %s" % (os.getpid(), type(e).__name__, e), flush=True)
                code = 1
            sys.stdout.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            raise AssertionError("child %d of fork #%d ended with status 0x%x" % (pid, i + 1, status))
        log("parent", "fork #%d: child %d exited 0" % (i + 1, pid))
        n2 = work("parent", lib, session, key_label)
        if n2 != n:
            raise AssertionError("parent sees %d objects after the fork, %d before" % (n2, n))
    session.logout()
    session.closeSession()
    print("OK fork")


if __name__ == "__main__":
    main()
