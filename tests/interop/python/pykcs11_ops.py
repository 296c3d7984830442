#!/usr/bin/python3
"""PyKCS11 (Debian python3-pykcs11) against the module, as its users write it.

Usage: pykcs11_ops.py MODULE TOKEN_LABEL PIN

Keys are created WITHOUT usage attributes (no CKA_ENCRYPT, CKA_SIGN, CKA_WRAP,
...): the token's defaults must make them usable (shared docs CLIENTS.md).
Checks: C_SeedRandom, AES key generation, single- and multi-part AES-CBC,
CKM_AES_KEY_WRAP wrap/unwrap (the unwrapped key encrypts like the original),
EC P-256 and RSA-2048 key pairs with sign/verify (and a rejected bad signature),
lookup by label and by class, CKA_VALUE of a sensitive key -> CKR_ATTRIBUTE_SENSITIVE.
Any unexpected exception makes the script exit non-zero. Prints "OK pykcs11" at the end.
"""
import sys

import PyKCS11
from PyKCS11 import LowLevel
from PyKCS11.LowLevel import (
    CKA_CLASS, CKA_EC_PARAMS, CKA_ID, CKA_KEY_TYPE, CKA_LABEL, CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT, CKA_SENSITIVE, CKA_TOKEN, CKA_VALUE, CKA_VALUE_LEN,
    CKF_RW_SESSION, CKF_SERIAL_SESSION, CKK_AES, CKK_EC, CKK_RSA,
    CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP, CKM_ECDSA_SHA256,
    CKM_SHA256_RSA_PKCS, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY,
    CKR_ATTRIBUTE_SENSITIVE, CKR_OK, CKR_RANDOM_SEED_NOT_SUPPORTED,
    CKR_SIGNATURE_INVALID,
)

P256_PARAMS = bytes.fromhex("06082A8648CE3D030107")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("  ok:", what)


def main():
    module, token_label, pin = sys.argv[1:4]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    info = lib.getInfo()
    check(info.libraryDescription.strip().startswith("Strongroom"), "C_GetInfo library description is Strongroom")

    slot = None
    for s in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(s).label.strip() == token_label:
            slot = s
    check(slot is not None, "a slot holds token %r" % token_label)
    session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    session.login(pin)

    # C_SeedRandom: CKR_OK or CKR_RANDOM_SEED_NOT_SUPPORTED, nothing else.
    try:
        session.seedRandom(b"strongroom interop seed material")
        seed_rv = CKR_OK
    except PyKCS11.PyKCS11Error as e:
        seed_rv = e.value
    check(seed_rv in (CKR_OK, CKR_RANDOM_SEED_NOT_SUPPORTED),
          "C_SeedRandom returns CKR_OK or CKR_RANDOM_SEED_NOT_SUPPORTED (got 0x%X)" % seed_rv)
    rnd = bytes(session.generateRandom(32))
    check(len(rnd) == 32, "C_GenerateRandom 32 bytes")

    # AES keys, no usage attributes in the template.
    def aes_template(label, token=True):
        return [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
                (CKA_LABEL, label), (CKA_TOKEN, token)]

    aes = session.generateKey(aes_template("pyk-aes"))
    kek = session.generateKey(aes_template("pyk-kek"))
    check(True, "C_GenerateKey(CKM_AES_KEY_GEN) x2 without usage attributes")

    # Single-part AES-CBC-PAD round trip.
    iv = bytes(range(16))
    msg = b"The quick brown fox jumps over the lazy dog, 50 bytes"
    ct = bytes(session.encrypt(aes, msg, PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv)))
    check(len(ct) == 64, "AES-CBC-PAD single-part: 53 bytes -> 64")
    pt = bytes(session.decrypt(aes, ct, PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv)))
    check(pt == msg, "AES-CBC-PAD decrypt gives the message back")

    # Multi-part AES-CBC through the low-level API (PyKCS11 has no high-level wrapper).
    parts = [bytes([i]) * 16 for i in range(5)]
    # keep the Mechanism object alive: its native struct points into it (the IV)
    cbc = PyKCS11.Mechanism(CKM_AES_CBC, iv)
    m = cbc.to_native()
    rv = session.lib.C_EncryptInit(session.session, m, aes)
    check(rv == CKR_OK, "C_EncryptInit(CKM_AES_CBC) rv=0x%X" % rv)
    multi = b""
    for part in parts:
        out = LowLevel.ckbytelist(len(part))
        rv = session.lib.C_EncryptUpdate(session.session, PyKCS11.ckbytelist(part), out)
        if rv != CKR_OK:
            raise PyKCS11.PyKCS11Error(rv, "C_EncryptUpdate")
        multi += bytes(out)
    out = LowLevel.ckbytelist(16)
    rv = session.lib.C_EncryptFinal(session.session, out)
    if rv != CKR_OK:
        raise PyKCS11.PyKCS11Error(rv, "C_EncryptFinal")
    multi += bytes(out)
    single = bytes(session.encrypt(aes, b"".join(parts), PyKCS11.Mechanism(CKM_AES_CBC, iv)))
    check(len(multi) == 80 and multi == single,
          "multi-part C_EncryptUpdate x5 + C_EncryptFinal equals single-part C_Encrypt")
    rv = session.lib.C_DecryptInit(session.session, m, aes)
    check(rv == CKR_OK, "C_DecryptInit(CKM_AES_CBC)")
    dec = b""
    for i in range(0, len(multi), 32):
        out = LowLevel.ckbytelist(32)
        rv = session.lib.C_DecryptUpdate(session.session, PyKCS11.ckbytelist(multi[i:i + 32]), out)
        if rv != CKR_OK:
            raise PyKCS11.PyKCS11Error(rv, "C_DecryptUpdate")
        dec += bytes(out)
    out = LowLevel.ckbytelist(16)
    rv = session.lib.C_DecryptFinal(session.session, out)
    if rv != CKR_OK:
        raise PyKCS11.PyKCS11Error(rv, "C_DecryptFinal")
    dec += bytes(out)
    check(dec == b"".join(parts), "multi-part decrypt gives the plaintext back")

    # CKM_AES_KEY_WRAP (RFC 3394) wrap and unwrap.
    wrapped = bytes(session.wrapKey(kek, aes, PyKCS11.Mechanism(CKM_AES_KEY_WRAP)))
    check(len(wrapped) == 40, "C_WrapKey(CKM_AES_KEY_WRAP) of a 32-byte key gives 40 bytes")
    unwrapped = session.unwrapKey(kek, wrapped,
                                  [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                                   (CKA_LABEL, "pyk-aes-unwrapped"), (CKA_TOKEN, False)],
                                  PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
    ct2 = bytes(session.encrypt(unwrapped, msg, PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv)))
    check(ct2 == ct, "the unwrapped key encrypts exactly like the original")
    vlen = session.getAttributeValue(unwrapped, [CKA_VALUE_LEN])[0]
    check(vlen == 32, "unwrapped key CKA_VALUE_LEN = 32")

    # EC P-256 key pair, no usage attributes.
    ec_pub, ec_priv = session.generateKeyPair(
        [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_EC), (CKA_TOKEN, True),
         (CKA_EC_PARAMS, P256_PARAMS), (CKA_LABEL, "pyk-ec"), (CKA_ID, b"\x0e\xc1")],
        [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_EC), (CKA_TOKEN, True),
         (CKA_LABEL, "pyk-ec"), (CKA_ID, b"\x0e\xc1")],
        PyKCS11.MechanismECGENERATEKEYPAIR)
    data = b"data to be signed by PyKCS11"
    sig = bytes(session.sign(ec_priv, data, PyKCS11.Mechanism(CKM_ECDSA_SHA256)))
    check(len(sig) == 64, "CKM_ECDSA_SHA256 signature is r||s, 64 bytes")
    check(session.verify(ec_pub, data, sig, PyKCS11.Mechanism(CKM_ECDSA_SHA256)),
          "ECDSA signature verifies")
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    try:
        ok = session.verify(ec_pub, data, bad, PyKCS11.Mechanism(CKM_ECDSA_SHA256))
        rejected = not ok
    except PyKCS11.PyKCS11Error as e:
        rejected = e.value == CKR_SIGNATURE_INVALID
    check(rejected, "a modified ECDSA signature is rejected")

    # RSA-2048 key pair, no usage attributes.
    rsa_pub, rsa_priv = session.generateKeyPair(
        [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_RSA), (CKA_TOKEN, True),
         (CKA_MODULUS_BITS, 2048), (CKA_PUBLIC_EXPONENT, b"\x01\x00\x01"),
         (CKA_LABEL, "pyk-rsa"), (CKA_ID, b"\x0a\x01")],
        [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_RSA), (CKA_TOKEN, True),
         (CKA_LABEL, "pyk-rsa"), (CKA_ID, b"\x0a\x01")],
        PyKCS11.MechanismRSAGENERATEKEYPAIR)
    sig = bytes(session.sign(rsa_priv, data, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS)))
    check(len(sig) == 256, "CKM_SHA256_RSA_PKCS signature is 256 bytes")
    check(session.verify(rsa_pub, data, sig, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS)),
          "RSA signature verifies")

    # Find by label and by class.
    found = session.findObjects([(CKA_LABEL, "pyk-aes")])
    check([h.value() for h in found] == [aes.value()], "find by CKA_LABEL 'pyk-aes' gives the generated key")
    found = session.findObjects([(CKA_LABEL, "pyk-ec")])
    check(len(found) == 2, "find by CKA_LABEL 'pyk-ec' gives the public and the private key")
    found = session.findObjects([(CKA_CLASS, CKO_SECRET_KEY), (CKA_TOKEN, True)])
    check(len(found) == 2, "find token secret keys by class gives 2 (aes, kek)")
    found = session.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, "pyk-rsa")])
    check([h.value() for h in found] == [rsa_priv.value()], "find private key by class+label")

    # CKA_VALUE of a sensitive key.
    check(session.getAttributeValue(aes, [CKA_SENSITIVE])[0] is True, "AES key is CKA_SENSITIVE by default")
    tmpl = LowLevel.ckattrlist(1)
    tmpl[0].SetType(CKA_VALUE)
    rv = session.lib.C_GetAttributeValue(session.session, aes, tmpl)
    try:
        if rv != CKR_OK:
            raise PyKCS11.PyKCS11Error(rv)
        raise AssertionError("C_GetAttributeValue(CKA_VALUE) of a sensitive key returned CKR_OK")
    except PyKCS11.PyKCS11Error as e:
        check(e.value == CKR_ATTRIBUTE_SENSITIVE,
              "CKA_VALUE of the sensitive AES key -> PyKCS11Error CKR_ATTRIBUTE_SENSITIVE (%s)" % e)
    check(session.getAttributeValue(aes, [CKA_VALUE])[0] is None,
          "high-level getAttributeValue gives None for the sensitive value")

    session.logout()
    session.closeSession()
    print("OK pykcs11")


if __name__ == "__main__":
    main()
