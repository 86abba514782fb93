/* A document signed by one or more keys: the carrier of Ferry's trust
 * metadata (root and timestamp documents, ferry_root.h and
 * ferry_timestamp.h), as TUF's "signed"/"signatures" pair and DSSE do:
 *
 *   {"format": 1, "signed": "<base64 of the document's exact bytes>",
 *    "signatures": [{"kid": "<16 hex>", "sig": "<base64 of r || s>"}, ...]}
 *
 * Every signature is ES256 over the exact document bytes, so, as for the
 * release envelope, no canonical form is needed. A threshold of distinct
 * keys of one role must sign (ferry_signed_check()). Parsing is strict: no
 * unknown keys, canonical base64, 1..FERRY_SIGNED_MAX_SIGS signatures, each
 * key id at most once (so one key cannot count twice towards a threshold).
 * Nothing in the document is read before the signatures hold; callers
 * parse the bytes only after ferry_signed_check(). */
#ifndef FERRY_SIGNED_H
#define FERRY_SIGNED_H

#include "ferry_err.h"
#include "ferry_keyring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_SIGNED_FORMAT    1
#define FERRY_SIGNED_MAX_BYTES 16384
#define FERRY_SIGNED_MAX_SIGS  8

struct ferry_signature {
    char kid[FERRY_KID_LEN + 1];
    uint8_t sig[FERRY_ES256_SIG_LEN];
};

/* A parsed, not yet verified document. Owns a copy of the signed bytes. */
struct ferry_signed {
    uint8_t *body; /* the exact signed bytes, malloc'd */
    size_t body_len;
    size_t nsigs;
    struct ferry_signature sigs[FERRY_SIGNED_MAX_SIGS];
};

/* Parses the carrier (no crypto); the signed bytes may hold at most
 * max_body bytes (FERRY_E_TOO_LARGE). `what` ("root") prefixes messages.
 * Free with ferry_signed_free(). */
enum ferry_err ferry_signed_parse(const uint8_t *buf, size_t len, size_t max_body, const char *what,
                                  struct ferry_signed **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_signed_free(struct ferry_signed *s); /* NULL is fine */

/* Encodes body and its signatures (1..FERRY_SIGNED_MAX_SIGS, distinct key
 * ids). The caller frees *out (NUL-terminated) with free(). */
enum ferry_err ferry_signed_encode(const uint8_t *body, size_t body_len,
                                   const struct ferry_signature *sigs, size_t nsigs, char **out,
                                   size_t *out_len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Counts the signatures that verify with a trusted (not revoked) key of kr
 * and succeeds when there are at least `threshold` (>= 1). Otherwise
 * FERRY_E_THRESHOLD, with d saying how many of how many held and why the
 * first other one failed (unknown, revoked, bad signature). */
enum ferry_err ferry_signed_check(const struct ferry_signed *s, const struct ferry_keyring *kr,
                                  unsigned threshold, const char *what,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* True if one of the signatures is by key id kid (verified or not). */
bool ferry_signed_has_kid(const struct ferry_signed *s, const char *kid);

#endif
