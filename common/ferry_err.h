/* The one error vocabulary of Ferry.
 *
 * Every fallible function returns `enum ferry_err` (FERRY_OK is 0) and is
 * marked FERRY_MUST_CHECK. Where a caller needs to know *what* was wrong,
 * the function also takes a `struct ferry_diag *` (may be NULL) into which it
 * writes one line that names the thing at fault, for example
 *   "manifest: field 'version' must be semver, got '1.x'".
 * Out-parameters are written only when FERRY_OK is returned.
 */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define FERRY_MUST_CHECK   __attribute__((warn_unused_result))
#define FERRY_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum ferry_err {
    FERRY_OK = 0,
    FERRY_E_NOMEM,              /* allocation failed */
    FERRY_E_IO,                 /* a read, write, fsync or rename failed */
    FERRY_E_NOSPACE,            /* the disk or a quota is full */
    FERRY_E_INVALID_ARG,        /* a caller or user passed a bad value */
    FERRY_E_NOT_FOUND,          /* no such file, key, node or entry */
    FERRY_E_MALFORMED,          /* input does not parse or breaks the schema */
    FERRY_E_TOO_LARGE,          /* input exceeds a cap */
    FERRY_E_UNKNOWN_KEY,        /* signature names a key the keyring lacks */
    FERRY_E_REVOKED_KEY,        /* signature names a revoked key */
    FERRY_E_BAD_SIGNATURE,      /* signature does not verify */
    FERRY_E_EXPIRED,            /* manifest past its expires-at */
    FERRY_E_NOT_YET_VALID,      /* manifest issued in the future */
    FERRY_E_INCOMPATIBLE_HW,    /* manifest not meant for this hardware */
    FERRY_E_DOWNGRADE,          /* sequence not above the installed one */
    FERRY_E_ARTIFACT_TOO_LARGE, /* declared artifact above the device's cap */
    FERRY_E_HASH_MISMATCH,      /* artifact bytes do not hash to the manifest */
    FERRY_E_SIZE_MISMATCH,      /* artifact length differs from the manifest */
    FERRY_E_CRYPTO,             /* the crypto library failed (not a bad signature) */
    FERRY_E_BUSY,               /* try again later */
    FERRY_E_PROTOCOL,           /* a peer broke the protocol */
    FERRY_E_CORRUPT,            /* stored state failed its CRC or hash */
    FERRY_E_WRONG_PRODUCT,      /* manifest of a product line the device does not run */
    FERRY_E_CONFLICT,           /* another status record holds this (node, seq) */
    FERRY_E_WRONG_GATEWAY,      /* status of a node bound to another gateway */
    FERRY_E_SEQ_RANGE,          /* status seq beyond the node's sequence window */
    FERRY_E_WITHDRAWN,          /* the release was withdrawn by a signed timestamp */
    FERRY_E_STALE,              /* trust metadata missing, expired or older than held */
    FERRY_E_THRESHOLD,          /* fewer valid signatures than the role's threshold */
    FERRY_E_SEQ_JUMP,           /* seq further above the installed one than allowed */
    FERRY_E_LIFETIME,           /* manifest valid for longer than allowed */
    FERRY_E__COUNT
};

/* Static, never NULL; "unknown error" for values out of range. */
const char *ferry_strerror(enum ferry_err err);

/* Stable lower-case token for an error ("bad-signature"), used on the wire
 * in status records. Static, never NULL. */
const char *ferry_err_name(enum ferry_err err);

/* Inverse of ferry_err_name(); FERRY_E_INVALID_ARG if the name is unknown. */
enum ferry_err ferry_err_from_name(const char *name, enum ferry_err *out) FERRY_MUST_CHECK;

#define FERRY_DIAG_MAX 256

/* One line describing what went wrong; caller-owned, usually on the stack. */
struct ferry_diag {
    char msg[FERRY_DIAG_MAX];
};

/* Writes a message into d (if d is not NULL) and returns err, so a failing
 * path reads `return ferry_fail(d, FERRY_E_MALFORMED, "...", ...);`. */
enum ferry_err ferry_fail(struct ferry_diag *d, enum ferry_err err, const char *fmt, ...)
    FERRY_PRINTF(3, 4);

/* Prepends "prefix: " to an existing message (if d is not NULL). */
void ferry_diag_prefix(struct ferry_diag *d, const char *prefix);

/* The message if one was set, else ferry_strerror(err). */
const char *ferry_diag_str(const struct ferry_diag *d, enum ferry_err err);

#endif
