/* The timestamp document: a short-lived statement, signed by the root's
 * timestamp role, of what is current in one product line and what is
 * withdrawn (TUF's timestamp role is the model; here it also names the
 * current release, as TUF's snapshot and targets metadata would). It
 * travels as a signed document (ferry_signed.h):
 *
 *   {"format": 2, "type": "timestamp", "product": "firmware",
 *    "version": 1795780800, "issued_at": 1795780800, "expires_at": 1795867200,
 *    "current": [{"release": "firmware-1.0.2-2", "seq": 2,
 *                 "manifest_sha256": "<64 hex: SHA-256 of the signed manifest bytes>"},
 *                {"release": "firmware-1.1.0-3", "seq": 3, "manifest_sha256": "..."}],
 *    "withdrawn": ["firmware-1.0.1-1"]}
 *
 * - version: strictly increasing per product; a verifier keeps the highest
 *   it has seen and refuses older ones, so an old but still valid
 *   timestamp cannot be replayed to freeze a device.
 * - expires_at: after it a device installs nothing of the product until a
 *   fresh timestamp arrives (a gateway that withholds timestamps freezes
 *   nobody for longer than that).
 * - current: the releases of the line a device may install, each pinned by
 *   the digest of its signed manifest bytes: the line's current release and
 *   what a running rollout offers (its release, or its revert release once
 *   halted), 0..FERRY_TIMESTAMP_MAX_CURRENT, no release twice, none
 *   withdrawn. Which node gets which is the rollout's business (the
 *   gateway enforces it); the timestamp vouches for the set.
 * - format: 2 carries `current` as an array. Format 1 (before rollouts
 *   met timestamps) carries at most one, as an object; both parse, and the
 *   encoder writes format 1 whenever at most one release is current, so
 *   verifiers built before format 2 keep working outside rollouts (during
 *   one they refuse the new timestamp, keep the one held, and install
 *   nothing of the line until it expires or they are updated: safe, never
 *   wrong). Nodes restore the format-1 timestamps they saved.
 * - withdrawn: release ids no gateway offers and no device installs any more
 *   (0..FERRY_TIMESTAMP_MAX_WITHDRAWN).
 *
 * Parsing is strict, as for the manifest. struct ferry_timestamp is a
 * fixed-size value. */
#ifndef FERRY_TIMESTAMP_H
#define FERRY_TIMESTAMP_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_TIMESTAMP_FORMAT        2    /* several current releases */
#define FERRY_TIMESTAMP_FORMAT_ONE    1    /* at most one, as an object */
#define FERRY_TIMESTAMP_MAX_BYTES     4096 /* the signed bytes */
#define FERRY_TIMESTAMP_MAX_WITHDRAWN 32
/* The line's release, a rollout's release and its revert release make 3;
 * the rest is headroom. 8 entries and 32 withdrawn ids of 64 characters
 * still encode within FERRY_TIMESTAMP_MAX_BYTES. */
#define FERRY_TIMESTAMP_MAX_CURRENT 8

/* A release named current. */
struct ferry_ts_release {
    char release[FERRY_NAME_MAX + 1];
    uint64_t seq;                     /* 0..2^53 */
    uint8_t sha256[FERRY_SHA256_LEN]; /* of the signed manifest bytes */
};

struct ferry_timestamp {
    char product[FERRY_NAME_MAX + 1];
    uint64_t version; /* 1..2^53 */
    int64_t issued_at;
    int64_t expires_at; /* > issued_at */
    size_t ncurrent;
    struct ferry_ts_release current[FERRY_TIMESTAMP_MAX_CURRENT];
    size_t nwithdrawn;
    char withdrawn[FERRY_TIMESTAMP_MAX_WITHDRAWN][FERRY_NAME_MAX + 1];
};

enum ferry_err ferry_timestamp_parse(const uint8_t *buf, size_t len, struct ferry_timestamp *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Validates t as parse would and encodes it compactly; the caller frees *out. */
enum ferry_err ferry_timestamp_encode(const struct ferry_timestamp *t, char **out, size_t *len,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* True if release_id is in t's withdrawn list. */
bool ferry_timestamp_withdraws(const struct ferry_timestamp *t, const char *release_id);

/* The current entry whose manifest digest is digest, or NULL. */
const struct ferry_ts_release *ferry_timestamp_current(const struct ferry_timestamp *t,
                                                       const uint8_t digest[FERRY_SHA256_LEN]);

/* The current release ids, comma-separated, into buf (truncated to cap;
 * "(none)" for an empty list), for logs. Returns buf. */
const char *ferry_timestamp_current_str(const struct ferry_timestamp *t, char *buf, size_t cap);

/* Adds r to t's current list unless a release of that id or digest is
 * there already. FERRY_E_TOO_LARGE when the list is full. */
enum ferry_err ferry_timestamp_add_current(struct ferry_timestamp *t,
                                           const struct ferry_ts_release *r,
                                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- the cloud's record of what rollouts offer ------------------------------
 *
 * Kept by the rollout controller (cloud_rollout_ctl.h) for each product
 * line, read by `ferry-cloud timestamp`: the releases the product's latest
 * rollout offers now, in the timestamp's own entry format:
 *
 *   {"format": 1, "type": "offered", "product": "firmware", "rollout": 3,
 *    "state": "running", "current": [{"release": ..., "seq": ..., "manifest_sha256": ...}]}
 *
 * Cap: FERRY_TIMESTAMP_MAX_BYTES; 0..FERRY_TIMESTAMP_MAX_CURRENT entries. */
#define FERRY_OFFERED_FORMAT 1

struct ferry_offered {
    char product[FERRY_NAME_MAX + 1];
    uint64_t rollout; /* 0..2^53: the rollout the entries come from */
    char state[16];   /* its state's name (for people) */
    size_t n;
    struct ferry_ts_release r[FERRY_TIMESTAMP_MAX_CURRENT];
};

enum ferry_err ferry_offered_parse(const uint8_t *buf, size_t len, struct ferry_offered *out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
/* The caller frees *out. */
enum ferry_err ferry_offered_encode(const struct ferry_offered *o, char **out, size_t *len,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
