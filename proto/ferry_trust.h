/* What a verifier (a gateway or a node) trusts, and how that changes: the
 * root document it holds (ferry_root.h), the newest timestamp document per
 * product (ferry_timestamp.h), and the verdicts that follow from them. Pure:
 * no files, no clock (time is an argument); callers persist the documents
 * (ferry_trust_root_doc(), ferry_trust_timestamp()) and load them back.
 *
 * Initial trust is what the device ships with (--trust): a signed root
 * document, or a keyring file (a PEM key or a JSON keyring,
 * ferry_keyring.h). A keyring acts as root version 0: its keys that are not
 * revoked are both its release keys and its root keys, threshold 1, and
 * there is no timestamp role. So a fleet of keyring-only devices moves to
 * root documents over the air: its first root is signed by one of the
 * keyring's release keys (besides its own root keys).
 *
 * Rules (PROTOCOL.md, "Trust metadata"):
 * - A root document replaces the current one only if a threshold of the
 *   current root's root keys and a threshold of its own root keys sign it
 *   and its version is higher (the chain rule; TUF 5.3.4). The same bytes
 *   again change nothing; a lower version, or the same version with other
 *   bytes, is FERRY_E_STALE. When the new root changes the timestamp role,
 *   the timestamps held are dropped (TUF's recovery from a fast-forward
 *   attack by a leaked timestamp key).
 * - A timestamp document is taken only with a timestamp role in the root,
 *   a threshold of its keys, a version not below the one held for its
 *   product (equal only with the same bytes), issued at most `skew` seconds
 *   in the future and not expired. Restoring one from the verifier's own
 *   storage skips the two time checks, so a restart keeps the newest
 *   version seen even once it expired: an old but valid timestamp can never
 *   come back.
 * - A release's verdict (ferry_trust_verdict()), after its manifest
 *   verified: without a timestamp role, FERRY_OK. With one: FERRY_E_WITHDRAWN
 *   if the product's timestamp withdraws its release id (expired or not: a
 *   withdrawal stands); FERRY_E_STALE if there is no timestamp for the
 *   product, it expired, or its current list does not name the release (by
 *   the digest of its signed manifest bytes).
 *
 * Not thread-safe; one owner. */
#ifndef FERRY_TRUST_H
#define FERRY_TRUST_H

#include "ferry_err.h"
#include "ferry_keyring.h"
#include "ferry_root.h"
#include "ferry_sha256.h"
#include "ferry_timestamp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The devices' own limits when neither flags nor the root's policy set
 * them: a million releases past the installed one (a leaked key cannot
 * move the counter near 2^53 in fewer than 9 billion installs), and the
 * validity `ferry-cloud sign` gives a manifest by default. */
#define FERRY_TRUST_DEFAULT_MAX_SEQ_STEP UINT64_C(1000000)
#define FERRY_TRUST_DEFAULT_MAX_LIFETIME (30 * 86400)

/* Limits on releases, from the root's policy or else the device's own. */
struct ferry_trust_limits {
    uint64_t max_seq_step;         /* 0: no cap */
    int64_t max_manifest_lifetime; /* seconds; 0: no cap */
};

struct ferry_trust;

/* Creates trust from the bytes of a --trust file (signed root document or
 * keyring), keeping timestamps for up to max_products products (>= 1).
 * FERRY_E_MALFORMED (and the parsers' errors) for a file that is neither;
 * a root document must carry a threshold of its own root keys
 * (FERRY_E_THRESHOLD). Free with ferry_trust_free(). */
enum ferry_err ferry_trust_new(const uint8_t *buf, size_t len, size_t max_products,
                               struct ferry_trust **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_trust_free(struct ferry_trust *t); /* NULL is fine */

/* The root's version; 0 while the initial trust is a keyring. */
uint64_t ferry_trust_version(const struct ferry_trust *t);

/* The current root and the exact signed document it came in (as received),
 * or NULL for a keyring. Valid until the next update. */
const struct ferry_root *ferry_trust_root(const struct ferry_trust *t);
const uint8_t *ferry_trust_root_doc(const struct ferry_trust *t, size_t *len);

/* True when the root has a timestamp role: releases then need one. */
bool ferry_trust_has_timestamp_role(const struct ferry_trust *t);

/* The keys releases may be signed by (revoked ones marked). The object stays
 * the same for the trust's life; its content follows the root. */
const struct ferry_keyring *ferry_trust_release_keys(const struct ferry_trust *t);

/* The limits that apply: the root's policy where it sets one, else local. */
void ferry_trust_limits(const struct ferry_trust *t, const struct ferry_trust_limits *local,
                        struct ferry_trust_limits *out);

/* A root document from the network (the chain rule above). *changed says
 * whether it became the current root. */
enum ferry_err ferry_trust_update_root(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                       bool *changed, struct ferry_diag *d) FERRY_MUST_CHECK;

/* A root document the verifier stored itself after accepting it: taken if
 * its version is not below the current one and its own root keys sign it
 * (it was chained when first accepted). */
enum ferry_err ferry_trust_restore_root(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;

/* A timestamp document (rules above); restore skips the time checks.
 * *changed says whether it became the product's timestamp. */
enum ferry_err ferry_trust_update_timestamp(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                            int64_t now, int64_t skew, bool restore, bool *changed,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* The timestamp held for product and its signed document, or NULL. */
const struct ferry_timestamp *ferry_trust_timestamp(const struct ferry_trust *t,
                                                    const char *product, const uint8_t **doc,
                                                    size_t *doc_len);

/* Products with a timestamp, for iteration: i in 0..count-1. */
size_t ferry_trust_timestamp_count(const struct ferry_trust *t);
const struct ferry_timestamp *ferry_trust_timestamp_at(const struct ferry_trust *t, size_t i,
                                                       const uint8_t **doc, size_t *doc_len);

/* The verdict on a verified release of product (rules above): digest is
 * the SHA-256 of its signed manifest bytes. */
enum ferry_err ferry_trust_verdict(const struct ferry_trust *t, const char *product,
                                   const char *release_id, const uint8_t digest[FERRY_SHA256_LEN],
                                   int64_t now, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
