/*
 * strongroom.h - constants specific to the Strongroom PKCS#11 module.
 *
 * Strongroom implements the standard PKCS#11 v2.40 and v3.0 interfaces; use
 * the OASIS pkcs11.h (or cryptoki-sys) for every standard type and constant.
 * This header only names what is Strongroom's own.
 */
#ifndef STRONGROOM_H
#define STRONGROOM_H

/* Vendor-defined values of Strongroom start at CKA/CKM/CKR_VENDOR_DEFINED |
 * STRONGROOM_VENDOR_TAG. None are assigned yet: every mechanism, attribute and
 * return value the module uses is a standard one. */
#define STRONGROOM_VENDOR_TAG 0x53520000UL /* "SR" */

/* Mechanism codes whose meaning differs between PKCS#11 versions, and what
 * Strongroom does with them (docs/mechanisms.md):
 *
 *   CKM_AES_KEY_WRAP_PAD   0x210A  wrap: RFC 5649 (as SoftHSMv2 and nShield);
 *                                  unwrap: RFC 5649, else PKCS#7 + RFC 3394
 *                                  (the v3.0 text). Prefer the two below.
 *   CKM_AES_KEY_WRAP_KWP   0x210B  RFC 5649.
 *   CKM_AES_KEY_WRAP_PKCS7 0x210C  PKCS#7 padding to 8 bytes, then RFC 3394.
 */
#define STRONGROOM_CKM_AES_KEY_WRAP_PAD 0x0000210AUL
#define STRONGROOM_CKM_AES_KEY_WRAP_KWP 0x0000210BUL
#define STRONGROOM_CKM_AES_KEY_WRAP_PKCS7 0x0000210CUL

/* Environment variables read at C_Initialize (see README.md). */
#define STRONGROOM_ENV_CONF "STRONGROOM_CONF"
#define STRONGROOM_ENV_STORE "STRONGROOM_STORE"
#define STRONGROOM_ENV_LOG "STRONGROOM_LOG"
#define STRONGROOM_ENV_KDF_MEMORY_KIB "STRONGROOM_KDF_MEMORY_KIB"
#define STRONGROOM_ENV_KDF_ITERATIONS "STRONGROOM_KDF_ITERATIONS"
#define STRONGROOM_ENV_MAX_PIN_FAILURES "STRONGROOM_MAX_PIN_FAILURES"

#endif /* STRONGROOM_H */
