/* The release-signing key: an ECDSA P-256 private key held by the cloud.
 *
 * A key is named by its key id (ferry_kid_of_point() of the uncompressed
 * public point), the same fingerprint every verifier's keyring files it
 * under, so the id printed by `ferry-cloud keygen` is the id a keyring entry
 * must carry. On disk the private key is a PEM file readable only by its
 * owner and the public key a PEM SubjectPublicKeyInfo, which
 * ferry_keyring_load() accepts as a one-key keyring. */
#ifndef FERRY_CLOUD_KEYS_H
#define FERRY_CLOUD_KEYS_H

#include "ferry_err.h"
#include "ferry_keyring.h"

#include <stddef.h>
#include <stdint.h>

/* Private key PEM files above this are refused unread. */
#define CLOUD_KEY_MAX_BYTES 16384

struct cloud_key;

/* Generates a fresh key pair from the system's entropy. Free with
 * cloud_key_free(). FERRY_E_CRYPTO if the entropy source or mbedTLS fails. */
enum ferry_err cloud_key_generate(struct cloud_key **out, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Loads a PEM (SEC1 or PKCS#8, unencrypted) private key from path. Refuses a
 * file above CLOUD_KEY_MAX_BYTES, anything that is not a private key, and any
 * curve other than P-256, each with a message naming path. Warns in the log
 * when the file is readable by group or others. */
enum ferry_err cloud_key_load(const char *path, struct cloud_key **out,
                              struct ferry_diag *d) FERRY_MUST_CHECK;

void cloud_key_free(struct cloud_key *k); /* NULL is fine; wipes the secret */

/* The key id, 16 lower-case hex digits; owned by k. */
const char *cloud_key_kid(const struct cloud_key *k);

/* The public key as an uncompressed point, for ferry_keyring_add(). */
void cloud_key_point(const struct cloud_key *k, uint8_t point[FERRY_P256_POINT_LEN]);

/* Writes DIR/release-<kid>.pub (mode 0644) and then DIR/release-<kid>.key
 * (mode 0600), each atomically, creating DIR (mode 0700) if needed. The public
 * half goes first so that a failure never leaves a private key whose public
 * half is missing. FERRY_E_INVALID_ARG if either file already exists. */
enum ferry_err cloud_key_save(const struct cloud_key *k, const char *dir,
                              struct ferry_diag *d) FERRY_MUST_CHECK;

/* The same as DIR/<role>-<kid>.pub and .key, role being "release", "root"
 * or "timestamp" (what the key will sign; the key itself is the same kind).
 * FERRY_E_INVALID_ARG for another role. */
enum ferry_err cloud_key_save_as(const struct cloud_key *k, const char *dir, const char *role,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* ES256 over msg (SHA-256, then deterministic ECDSA as in RFC 6979), written
 * as raw r || s, the form ferry_envelope_encode() and ferry_keyring_verify()
 * take. */
enum ferry_err cloud_key_sign(const struct cloud_key *k, const uint8_t *msg, size_t len,
                              uint8_t sig[FERRY_ES256_SIG_LEN],
                              struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
