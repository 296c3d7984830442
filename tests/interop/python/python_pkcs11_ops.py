"""python-pkcs11 (PyPI, >= 0.10) against the module, as its users write it.

Usage: python_pkcs11_ops.py MODULE TOKEN_LABEL PIN   (run with a venv holding python-pkcs11)

python-pkcs11 normally puts usage attributes (CKA_ENCRYPT, CKA_SIGN, ...) derived
from its "capabilities" into every template. Here they are removed (the library's
DEFAULT sentinel drops a template entry), so the keys are created without usage
attributes and the token's defaults must make them usable (shared docs CLIENTS.md).
Checks: C_SeedRandom, AES key generation, single-part and multi-part (iterator
input: C_EncryptUpdate/C_EncryptFinal) AES-CBC-PAD, AES-GCM with AAD,
CKM_AES_KEY_WRAP wrap/unwrap, EC P-256 and RSA-2048 sign/verify, lookup by label,
reading CKA_VALUE of a sensitive key -> pkcs11.exceptions.AttributeSensitive.
Prints "OK python-pkcs11" at the end; any unexpected exception exits non-zero.
"""
import sys

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.constants import DEFAULT
from pkcs11.mechanisms import GCMParams
from pkcs11.exceptions import AttributeSensitive, NoSuchKey, RandomSeedNotSupported
from pkcs11.util.ec import encode_named_curve_parameters

NO_USAGE = {a: DEFAULT for a in (Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.WRAP,
                                 Attribute.UNWRAP, Attribute.SIGN, Attribute.VERIFY,
                                 Attribute.DERIVE)}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("  ok:", what)


def main():
    module, token_label, pin = sys.argv[1:4]
    lib = pkcs11.lib(module)
    check(lib.library_description.strip().startswith("Strongroom"), "library description is Strongroom")
    token = lib.get_token(token_label=token_label)

    with token.open(rw=True, user_pin=pin) as s:
        try:
            s.seed_random(b"strongroom interop seed material")
            print("  ok: C_SeedRandom -> CKR_OK")
        except RandomSeedNotSupported:
            print("  ok: C_SeedRandom -> CKR_RANDOM_SEED_NOT_SUPPORTED")
        check(len(s.generate_random(256)) == 32, "C_GenerateRandom 32 bytes")

        aes = s.generate_key(KeyType.AES, 256, label="pp-aes", store=True, template=NO_USAGE)
        kek = s.generate_key(KeyType.AES, 256, label="pp-kek", store=True, template=NO_USAGE)
        check(aes[Attribute.ENCRYPT] and aes[Attribute.DECRYPT] and kek[Attribute.WRAP]
              and kek[Attribute.UNWRAP],
              "AES keys made without usage attributes default to ENCRYPT/DECRYPT/WRAP/UNWRAP = TRUE")

        iv = s.generate_random(128)
        msg = b"python-pkcs11 says hello " * 7
        ct = aes.encrypt(msg, mechanism_param=iv)  # CKM_AES_CBC_PAD
        check(aes.decrypt(ct, mechanism_param=iv) == msg, "AES-CBC-PAD single-part round trip")

        # Multi-part: an iterable input makes python-pkcs11 use C_EncryptUpdate/C_EncryptFinal.
        chunks = [bytes([i]) * (10 + 7 * i) for i in range(8)]
        ct_multi = b"".join(aes.encrypt(iter(chunks), mechanism_param=iv))
        check(ct_multi == aes.encrypt(b"".join(chunks), mechanism_param=iv),
              "multi-part AES-CBC-PAD (8 uneven chunks) equals single-part")
        pt_multi = b"".join(aes.decrypt(iter([ct_multi[i:i + 13] for i in range(0, len(ct_multi), 13)]),
                                        mechanism_param=iv))
        check(pt_multi == b"".join(chunks), "multi-part decrypt (13-byte chunks) gives the plaintext back")

        # AES-GCM with AAD.
        gcm_iv = s.generate_random(96)
        gcm = aes.encrypt(msg, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(gcm_iv, b"aad", 128))
        check(len(gcm) == len(msg) + 16, "AES-GCM ciphertext has a 16-byte tag")
        check(aes.decrypt(gcm, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(gcm_iv, b"aad", 128)) == msg,
              "AES-GCM decrypt with the right AAD")
        try:
            aes.decrypt(gcm, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(gcm_iv, b"AAD", 128))
            raise AssertionError("AES-GCM decrypt with a wrong AAD succeeded")
        except pkcs11.exceptions.PKCS11Error as e:
            print("  ok: AES-GCM decrypt with a wrong AAD fails:", type(e).__name__)

        # CKM_AES_KEY_WRAP.
        wrapped = kek.wrap_key(aes, mechanism=Mechanism.AES_KEY_WRAP)
        check(len(wrapped) == 40, "C_WrapKey(CKM_AES_KEY_WRAP) gives 40 bytes")
        unwrapped = kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped,
                                   mechanism=Mechanism.AES_KEY_WRAP, label="pp-aes-unwrapped",
                                   store=False, template=NO_USAGE)
        check(unwrapped.encrypt(msg, mechanism_param=iv) == ct, "the unwrapped key encrypts like the original")

        # EC P-256.
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        ec_pub, ec_priv = params.generate_keypair(store=True, label="pp-ec", id=b"\x0e\xc2",
                                                  public_template=NO_USAGE, private_template=NO_USAGE)
        data = b"signed by python-pkcs11"
        sig = ec_priv.sign(data, mechanism=Mechanism.ECDSA_SHA256)
        check(len(sig) == 64, "ECDSA-SHA256 signature is 64 bytes r||s")
        check(ec_pub.verify(data, sig, mechanism=Mechanism.ECDSA_SHA256), "ECDSA signature verifies")
        check(not ec_pub.verify(data + b"!", sig, mechanism=Mechanism.ECDSA_SHA256),
              "ECDSA signature over other data does not verify")

        # RSA-2048.
        rsa_pub, rsa_priv = s.generate_keypair(KeyType.RSA, 2048, store=True, label="pp-rsa", id=b"\x0a\x02",
                                               public_template=NO_USAGE, private_template=NO_USAGE)
        sig = rsa_priv.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        check(len(sig) == 256 and rsa_pub.verify(data, sig, mechanism=Mechanism.SHA256_RSA_PKCS),
              "RSA SHA256-PKCS signature verifies")
        sig = rsa_priv.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS_PSS,
                            mechanism_param=(Mechanism.SHA256, pkcs11.MGF.SHA256, 32))
        check(rsa_pub.verify(data, sig, mechanism=Mechanism.SHA256_RSA_PKCS_PSS,
                             mechanism_param=(Mechanism.SHA256, pkcs11.MGF.SHA256, 32)),
              "RSA SHA256-PSS signature verifies")

        # Lookup by label.
        check(s.get_key(label="pp-aes") == aes, "get_key(label='pp-aes') finds the key")
        check(s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="pp-rsa") == rsa_priv,
              "get_key(PRIVATE_KEY, label='pp-rsa')")
        check(len(list(s.get_objects({Attribute.LABEL: "pp-ec"}))) == 2, "two objects labelled pp-ec")
        try:
            s.get_key(label="no-such-label")
            raise AssertionError("get_key found a key that does not exist")
        except NoSuchKey:
            print("  ok: get_key of an unknown label raises NoSuchKey")
        secrets = list(s.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.TOKEN: True}))
        check(len(secrets) == 2, "two token secret keys (pp-aes, pp-kek)")

        # Sensitive value.
        check(aes[Attribute.SENSITIVE] is True, "AES key is sensitive by default")
        try:
            value = aes[Attribute.VALUE]
            raise AssertionError("CKA_VALUE of a sensitive key was returned: %d bytes" % len(value))
        except AttributeSensitive:
            print("  ok: CKA_VALUE of the sensitive key raises AttributeSensitive")
        try:
            value = ec_priv[Attribute.VALUE]
            raise AssertionError("CKA_VALUE of a sensitive EC private key was returned")
        except AttributeSensitive:
            print("  ok: CKA_VALUE of the sensitive EC private key raises AttributeSensitive")

    print("OK python-pkcs11")


if __name__ == "__main__":
    main()
