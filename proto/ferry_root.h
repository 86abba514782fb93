/* The root document: which keys a fleet trusts for what (TUF's root role is
 * the model). It travels as a signed document (ferry_signed.h):
 *
 *   {"format": 1, "type": "root", "version": 2, "issued_at": 1795780800,
 *    "keys": [{"kid": "<16 hex>", "public_key": "-----BEGIN PUBLIC KEY-----..."}],
 *    "roles": {"root":      {"kids": ["..."], "threshold": 2},
 *              "release":   {"kids": ["..."], "threshold": 1},
 *              "timestamp": {"kids": ["..."], "threshold": 1}},
 *    "revoked": ["<16 hex>"],
 *    "policy": {"max_seq_step": 1000000, "max_manifest_lifetime": 2592000}}
 *
 * - root: the keys that sign root documents. A new root is trusted only when
 *   a threshold of the current root's root keys and a threshold of its own
 *   sign it, and its version is higher (ferry_trust.h): so keys rotate and
 *   are revoked by a new root, and a root cannot be rolled back.
 * - release: the keys that sign release manifests (one signature each: the
 *   release envelope carries one, so the threshold is 1).
 * - timestamp: optional; the keys that sign timestamp documents
 *   (ferry_timestamp.h). With it, a node installs only what a fresh
 *   timestamp names as current; without it, freshness rests on the
 *   manifest's lifetime alone.
 * - revoked: key ids refused with `revoked-key` (none may appear in a role).
 * - policy: optional fleet-wide limits that override the devices' own
 *   defaults: how far one release may move the anti-rollback counter, and
 *   how long a manifest may be valid.
 *
 * Parsing is strict (as for manifests): caps, exact integers, every key id a
 * fingerprint of its key, role members among the keys, unknown keys refused
 * except those starting with "x-". struct ferry_root is a fixed-size value. */
#ifndef FERRY_ROOT_H
#define FERRY_ROOT_H

#include "ferry_err.h"
#include "ferry_keyring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_ROOT_FORMAT    1
#define FERRY_ROOT_MAX_BYTES 8192 /* the signed bytes */
#define FERRY_ROOT_MAX_KEYS  16
#define FERRY_ROLE_MAX_KEYS  8

enum ferry_role { FERRY_ROLE_ROOT, FERRY_ROLE_RELEASE, FERRY_ROLE_TIMESTAMP, FERRY_ROLE__COUNT };

const char *ferry_role_name(enum ferry_role role); /* "root", static */

struct ferry_root_key {
    char kid[FERRY_KID_LEN + 1];
    uint8_t point[FERRY_P256_POINT_LEN];
};

struct ferry_root_role {
    bool present; /* root and release always are */
    unsigned threshold;
    size_t nkids;
    char kids[FERRY_ROLE_MAX_KEYS][FERRY_KID_LEN + 1];
};

struct ferry_root {
    uint64_t version; /* 1..2^53 */
    int64_t issued_at;
    size_t nkeys;
    struct ferry_root_key keys[FERRY_ROOT_MAX_KEYS];
    struct ferry_root_role roles[FERRY_ROLE__COUNT];
    size_t nrevoked;
    char revoked[FERRY_ROOT_MAX_KEYS][FERRY_KID_LEN + 1];
    uint64_t max_seq_step;         /* 0: not set */
    int64_t max_manifest_lifetime; /* seconds; 0: not set */
};

/* Parses and validates the signed bytes of a root document. *out is
 * written only on FERRY_OK; FERRY_E_TOO_LARGE above FERRY_ROOT_MAX_BYTES,
 * FERRY_E_MALFORMED otherwise, naming the field. */
enum ferry_err ferry_root_parse(const uint8_t *buf, size_t len, struct ferry_root *out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Validates r as parse would and encodes it compactly. The caller frees
 * *out (NUL-terminated) with free(). */
enum ferry_err ferry_root_encode(const struct ferry_root *r, char **out, size_t *len,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Fills kr (emptied first) with the keys of one role, plus every revoked
 * key id as revoked. A role that is not present leaves kr with the revoked
 * ids only. */
enum ferry_err ferry_root_role_keyring(const struct ferry_root *r, enum ferry_role role,
                                       struct ferry_keyring *kr,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* True if the two roles list the same key ids with the same threshold. */
bool ferry_root_role_equal(const struct ferry_root_role *a, const struct ferry_root_role *b);

#endif
