/* The release manifest: what a release is, for which hardware, and under
 * which constraints it may be installed. It travels as UTF-8 JSON, inside a
 * signed envelope (ferry_envelope.h) that carries its exact bytes.
 *
 * Parsing is strict (see PROTOCOL.md, "Manifest"): every field is checked
 * for type, range and length, duplicate keys and invalid UTF-8 are refused,
 * unknown keys are refused except those starting with "x-" (extensions a node
 * may ignore), and every error names the field and what was expected.
 *
 * struct ferry_manifest is a fixed-size value with no heap behind it, so a
 * node can hold one on its stack and copy it freely. */
#ifndef FERRY_MANIFEST_H
#define FERRY_MANIFEST_H

#include "ferry_err.h"
#include "ferry_module.h"
#include "ferry_sha256.h"
#include "ferry_targets.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_MANIFEST_FORMAT    1
#define FERRY_MANIFEST_MAX_BYTES 8192
#define FERRY_NAME_MAX           64 /* release id, product, component, model, key id */
#define FERRY_VERSION_MAX        64 /* semantic version text */
#define FERRY_REVISION_MAX       16 /* one hardware revision */
#define FERRY_MEDIA_TYPE_MAX     127
#define FERRY_MAX_HW             8 /* hardware entries per manifest */
#define FERRY_MAX_REVISIONS      8 /* revisions per hardware entry */
/* Largest artifact any manifest may declare: 2^40 bytes (1 TiB). Devices set
 * their own, smaller cap in the verification policy. */
#define FERRY_ARTIFACT_MAX_SIZE (UINT64_C(1) << 40)

struct ferry_semver {
    uint64_t major, minor, patch;
    char prerelease[FERRY_VERSION_MAX + 1]; /* "" when absent */
};

struct ferry_hw {
    char model[FERRY_NAME_MAX + 1];
    char revisions[FERRY_MAX_REVISIONS][FERRY_REVISION_MAX + 1];
    size_t nrevisions; /* 0 means every revision of the model */
};

struct ferry_constraints {
    bool must_be_idle;    /* never install while the device reports busy */
    int64_t window_start; /* unix seconds; 0 = no earliest install time */
    int64_t window_end;   /* unix seconds; 0 = no latest install time */
    int64_t max_deferral; /* seconds a busy device may defer; 0 = unlimited */
};

struct ferry_manifest {
    int format;
    char release_id[FERRY_NAME_MAX + 1];
    char product[FERRY_NAME_MAX + 1];
    char component[FERRY_NAME_MAX + 1];
    char version[FERRY_VERSION_MAX + 1];
    struct ferry_semver semver;
    uint64_t seq; /* anti-rollback counter, strictly increasing per product */
    struct ferry_hw hw[FERRY_MAX_HW];
    size_t nhw;
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t size; /* exact artifact length in bytes, >= 1 */
    char media_type[FERRY_MEDIA_TYPE_MAX + 1];
    int64_t issued_at;  /* unix seconds */
    int64_t expires_at; /* unix seconds, > issued_at */
    struct ferry_constraints constraints;
    struct ferry_module_args module; /* present only for a module's release */
    struct ferry_targets nodes;      /* n 0: every node of the product line */
    char key_id[FERRY_NAME_MAX + 1];
};

/* Parses and validates manifest bytes. *out is written only on FERRY_OK;
 * FERRY_E_TOO_LARGE above FERRY_MANIFEST_MAX_BYTES, FERRY_E_MALFORMED for
 * everything else, with the field named in d. */
enum ferry_err ferry_manifest_parse(const uint8_t *buf, size_t len, struct ferry_manifest *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Serialises a manifest (validated first, as parse would) to compact JSON.
 * The caller frees *out with free(); *out is NUL-terminated, *len excludes it. */
enum ferry_err ferry_manifest_encode(const struct ferry_manifest *m, char **out, size_t *len,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Parses "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]" (semver 2.0.0). */
enum ferry_err ferry_semver_parse(const char *s, struct ferry_semver *out) FERRY_MUST_CHECK;

/* <0, 0, >0 as semver precedence orders a and b (build metadata ignored). */
int ferry_semver_cmp(const struct ferry_semver *a, const struct ferry_semver *b);

/* True if the manifest lists `model` and, when the entry names revisions,
 * `revision` among them (revision NULL matches only entries naming none). */
bool ferry_manifest_matches_hw(const struct ferry_manifest *m, const char *model,
                               const char *revision);

/* True if every byte is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
bool ferry_utf8_valid(const uint8_t *buf, size_t len);

#endif
