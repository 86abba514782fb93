/* The signed envelope: ES256 over the exact manifest bytes as published, so
 * there is no canonicalisation step to get wrong (as in JWS and SUIT).
 *
 *   {"format": 1, "alg": "ES256", "kid": "<16 hex>",
 *    "manifest": "<base64 of the manifest bytes>",
 *    "sig": "<base64 of r || s, 64 bytes>"}
 *
 * ferry_envelope_verify() is the one gate every consumer (gateway, edge,
 * `ferry-cloud verify`) passes a release through. It checks, in this order,
 * and returns the first failure as a typed error with a message in d:
 *   FERRY_E_TOO_LARGE / FERRY_E_MALFORMED   envelope shape
 *   FERRY_E_UNKNOWN_KEY, FERRY_E_REVOKED_KEY the envelope's kid
 *   FERRY_E_BAD_SIGNATURE                    signature over the bytes
 *   FERRY_E_MALFORMED                        manifest shape, or its key_id
 *                                            differs from the envelope's kid
 *   FERRY_E_NOT_YET_VALID, FERRY_E_EXPIRED   issued_at / expires_at vs now
 *   FERRY_E_LIFETIME                         expires_at - issued_at above policy
 *                                            max_lifetime
 *   FERRY_E_WRONG_PRODUCT                    policy product
 *   FERRY_E_INCOMPATIBLE_HW                  policy hw_model / hw_revision
 *   FERRY_E_DOWNGRADE                        seq below policy min_seq
 *   FERRY_E_SEQ_JUMP                         seq above seq_base + max_seq_step
 *   FERRY_E_ARTIFACT_TOO_LARGE               size above policy max_artifact_size
 * Nothing in the manifest is looked at before the signature holds. */
#ifndef FERRY_ENVELOPE_H
#define FERRY_ENVELOPE_H

#include "ferry_err.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_ENVELOPE_FORMAT    1
#define FERRY_ENVELOPE_MAX_BYTES 16384

struct ferry_verify_policy {
    int64_t now;                /* unix seconds */
    int64_t clock_skew;         /* seconds of tolerance on issued_at */
    const char *product;        /* NULL: any product line (a gateway) */
    const char *hw_model;       /* NULL: no hardware check (a gateway) */
    const char *hw_revision;    /* NULL: the device has no revision */
    uint64_t min_seq;           /* reject seq < min_seq (edge: installed + 1) */
    uint64_t max_artifact_size; /* 0: only FERRY_ARTIFACT_MAX_SIZE applies */
    int64_t max_lifetime;       /* > 0: reject expires_at - issued_at above it (a
                                   manifest cannot stay replayable for longer) */
    uint64_t max_seq_step;      /* > 0: reject seq > seq_base + max_seq_step, so
                                   one release (a leaked key's, say) cannot move
                                   the anti-rollback counter arbitrarily far */
    uint64_t seq_base;          /* what the step counts from (edge: installed seq) */
};

/* A parsed but not yet verified envelope. Owns a copy of the manifest bytes. */
struct ferry_envelope {
    char kid[FERRY_KID_LEN + 1];
    uint8_t sig[FERRY_ES256_SIG_LEN];
    uint8_t *manifest; /* exact bytes, malloc'd */
    size_t manifest_len;
};

/* Parses the envelope's JSON shape only (no crypto). Free with
 * ferry_envelope_free(). */
enum ferry_err ferry_envelope_parse(const uint8_t *buf, size_t len, struct ferry_envelope **out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_envelope_free(struct ferry_envelope *env); /* NULL is fine */

/* Builds envelope JSON from manifest bytes, the signer's kid and a raw r || s
 * signature. The caller frees *out with free(); it is NUL-terminated. */
enum ferry_err ferry_envelope_encode(const uint8_t *manifest, size_t manifest_len, const char *kid,
                                     const uint8_t sig[FERRY_ES256_SIG_LEN], char **out,
                                     size_t *out_len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Full verification as described above. On FERRY_OK, *out holds the manifest
 * (out may be NULL when only the verdict matters). */
enum ferry_err ferry_envelope_verify(const uint8_t *buf, size_t len, const struct ferry_keyring *kr,
                                     const struct ferry_verify_policy *pol,
                                     struct ferry_manifest *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
