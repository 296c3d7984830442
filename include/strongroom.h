/*
 * strongroom.h - constants specific to the Strongroom PKCS#11 module.
 *
 * Strongroom implements the standard PKCS#11 v2.40 and v3.0 interfaces; use
 * the OASIS pkcs11.h (or cryptoki-sys) for every standard type and constant.
 * This header only names what is Strongroom's own.
 */
#ifndef STRONGROOM_H
#define STRONGROOM_H

/* Vendor-defined values of Strongroom are CKA/CKM/CKR_VENDOR_DEFINED |
 * STRONGROOM_VENDOR_TAG | n. */
#define STRONGROOM_VENDOR_TAG 0x53520000UL /* "SR" */

/* Crypto users (AWS CloudHSM model, README "Users"): the SO creates a user
 * with C_InitPIN("name:password"); the user logs in with
 * C_Login(CKU_USER, "name:password") or C_LoginUser(CKU_USER, "password",
 * "name"). A PIN without a known "name:" prefix is the default user's.
 *
 * CKA_SR_OWNER (byte string, read-only): the user that created the object.
 * CKA_SR_SHARED_WITH (byte string, comma-separated user names): set by the
 *   owner with C_SetAttributeValue; those users may use the object but not
 *   destroy, modify, copy, wrap, read its key material or re-share it. */
#define CKA_SR_OWNER (0x80000000UL | STRONGROOM_VENDOR_TAG | 0x0001UL)
#define CKA_SR_SHARED_WITH (0x80000000UL | STRONGROOM_VENDOR_TAG | 0x0002UL)

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
