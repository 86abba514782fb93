/* The timestamp document: a short-lived statement, signed by the root's
 * timestamp role, of what is current in one product line and what is
 * withdrawn (TUF's timestamp role is the model; here it also names the
 * current release, as TUF's snapshot and targets metadata would). It
 * travels as a signed document (ferry_signed.h):
 *
 *   {"format": 1, "type": "timestamp", "product": "firmware",
 *    "version": 1795780800, "issued_at": 1795780800, "expires_at": 1795867200,
 *    "current": {"release": "firmware-1.0.2-2", "seq": 2,
 *                "manifest_sha256": "<64 hex: SHA-256 of the signed manifest bytes>"},
 *    "withdrawn": ["firmware-1.0.1-1"]}
 *
 * - version: strictly increasing per product; a verifier keeps the highest
 *   it has seen and refuses older ones, so an old but still valid
 *   timestamp cannot be replayed to freeze a device.
 * - expires_at: after it a device installs nothing of the product until a
 *   fresh timestamp arrives (a gateway that withholds timestamps freezes
 *   nobody for longer than that).
 * - current: optional; the one release of the line a device may install,
 *   pinned by the digest of its signed manifest bytes. Absent: none.
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

#define FERRY_TIMESTAMP_FORMAT        1
#define FERRY_TIMESTAMP_MAX_BYTES     4096 /* the signed bytes */
#define FERRY_TIMESTAMP_MAX_WITHDRAWN 32

struct ferry_timestamp {
    char product[FERRY_NAME_MAX + 1];
    uint64_t version; /* 1..2^53 */
    int64_t issued_at;
    int64_t expires_at; /* > issued_at */
    bool has_current;
    char current_release[FERRY_NAME_MAX + 1];
    uint64_t current_seq;
    uint8_t current_sha256[FERRY_SHA256_LEN]; /* of the signed manifest bytes */
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

#endif
