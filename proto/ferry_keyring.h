/* The trust keyring: the public keys a verifier accepts release signatures
 * from, each named by its key id, some possibly revoked so keys can rotate.
 *
 * A key id is the first 8 bytes of SHA-256 over the uncompressed P-256 point
 * (0x04 || X || Y), as 16 lower-case hex digits: a fingerprint, not a label,
 * so a keyring cannot file one key under another key's name.
 *
 * On disk a keyring is either one PEM public key (SubjectPublicKeyInfo) or a
 * JSON file (PROTOCOL.md, "Keyring"):
 *   {"keys": [{"kid": "…", "public_key": "-----BEGIN PUBLIC KEY-----…",
 *              "revoked": false}]}
 */
#ifndef FERRY_KEYRING_H
#define FERRY_KEYRING_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_KID_LEN           16 /* hex digits */
#define FERRY_KEYRING_MAX_KEYS  32
#define FERRY_KEYRING_MAX_BYTES 65536
#define FERRY_P256_POINT_LEN    65 /* uncompressed */
#define FERRY_ES256_SIG_LEN     64 /* r || s, 32 bytes each */

struct ferry_keyring;

/* Creates an empty keyring. NULL on allocation failure. */
struct ferry_keyring *ferry_keyring_new(void);
void ferry_keyring_free(struct ferry_keyring *kr); /* NULL is fine */

/* Loads a PEM public key or a JSON keyring from path into a new keyring. */
enum ferry_err ferry_keyring_load(const char *path, struct ferry_keyring **out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Parses the same two formats from memory. */
enum ferry_err ferry_keyring_parse(const uint8_t *buf, size_t len, struct ferry_keyring **out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds a key given as an uncompressed point. FERRY_E_INVALID_ARG if the point
 * is not on the curve, FERRY_E_TOO_LARGE when the keyring is full. */
enum ferry_err ferry_keyring_add(struct ferry_keyring *kr,
                                 const uint8_t point[FERRY_P256_POINT_LEN], bool revoked,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds key id kid as revoked without its public key (a root document lists
 * revoked keys by id), or marks a key already held revoked. A signature by
 * it is then FERRY_E_REVOKED_KEY. FERRY_E_INVALID_ARG for a malformed id,
 * FERRY_E_TOO_LARGE when the keyring is full. */
enum ferry_err ferry_keyring_revoke_id(struct ferry_keyring *kr, const char *kid,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* Empties kr, or makes dst a copy of src; the object itself stays, so
 * pointers to it stay valid. */
void ferry_keyring_clear(struct ferry_keyring *kr);
void ferry_keyring_copy(struct ferry_keyring *dst, const struct ferry_keyring *src);

size_t ferry_keyring_count(const struct ferry_keyring *kr);

/* What the keyring says about key id kid: FERRY_OK (trusted),
 * FERRY_E_UNKNOWN_KEY or FERRY_E_REVOKED_KEY. */
enum ferry_err ferry_keyring_lookup(const struct ferry_keyring *kr,
                                    const char *kid) FERRY_MUST_CHECK;

/* True if kid is FERRY_KID_LEN lower-case hex digits. */
bool ferry_kid_valid(const char *kid);

/* Reads exactly one PEM SubjectPublicKeyInfo holding a P-256 key (what
 * `ferry-cloud keygen` writes) into an uncompressed point. `what` names the
 * key in messages. FERRY_E_MALFORMED for anything else. */
enum ferry_err ferry_pem_to_point(const uint8_t *pem, size_t len, const char *what,
                                  uint8_t point[FERRY_P256_POINT_LEN],
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Computes the key id of an uncompressed point into kid (17 bytes with NUL). */
void ferry_kid_of_point(const uint8_t point[FERRY_P256_POINT_LEN], char kid[FERRY_KID_LEN + 1]);

/* Verifies an ES256 signature (raw r || s) over msg with the key named kid.
 * FERRY_E_UNKNOWN_KEY, FERRY_E_REVOKED_KEY, FERRY_E_BAD_SIGNATURE or FERRY_OK. */
enum ferry_err ferry_keyring_verify(const struct ferry_keyring *kr, const char *kid,
                                    const uint8_t *msg, size_t msg_len,
                                    const uint8_t sig[FERRY_ES256_SIG_LEN]) FERRY_MUST_CHECK;

/* Verifies a raw r || s ES256 signature against one uncompressed point.
 * Rejects r or s outside [1, n-1]. FERRY_E_INVALID_ARG for a bad point. */
enum ferry_err ferry_es256_verify(const uint8_t point[FERRY_P256_POINT_LEN], const uint8_t *msg,
                                  size_t msg_len,
                                  const uint8_t sig[FERRY_ES256_SIG_LEN]) FERRY_MUST_CHECK;

#endif
