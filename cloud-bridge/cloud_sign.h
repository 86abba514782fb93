/* Turning an artifact and a description of a release into a signed envelope
 * file, the unit the cloud publishes and every gateway and node verifies.
 *
 * The artifact is hashed by streaming, so its size is bounded only by
 * FERRY_ARTIFACT_MAX_SIZE. Every error names the flag-level input at fault
 * ("--hw-model", "--version", the artifact path). */
#ifndef FERRY_CLOUD_SIGN_H
#define FERRY_CLOUD_SIGN_H

#include "cloud_keys.h"
#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_names.h"
#include "ferry_opts.h"
#include "cloud_subcmd.h"

#include <stddef.h>
#include <stdint.h>

#define CLOUD_DEFAULT_COMPONENT  "main"
#define CLOUD_DEFAULT_MEDIA_TYPE "application/octet-stream"

/* The flags that describe a release, shared by `sign` and `publish` so both
 * read them alike. cfgtype must have the fields named below; req is
 * FERRY_OPT_REQUIRED for the ones a signature cannot do without, or 0 where
 * another flag (publish --manifest) can stand in for them. */
#define CLOUD_OPT_RELEASE(cfgtype, req)                                                            \
    CLOUD_OPT(cfgtype, "key", FERRY_OPT_STR, key, "KEY", "release-signing private key (PEM)",      \
              req),                                                                                \
        CLOUD_OPT(cfgtype, "version", FERRY_OPT_STR, version, "SEMVER",                            \
                  "release version, e.g. 1.4.0", req),                                             \
        CLOUD_OPT(cfgtype, "seq", FERRY_OPT_U64, seq, "N",                                         \
                  "anti-rollback sequence, higher than every earlier release", req),               \
        CLOUD_OPT(cfgtype, "hw-model", FERRY_OPT_STRLIST, hw_models, "MODEL",                      \
                  "hardware model the release is for", req),                                       \
        CLOUD_OPT(cfgtype, "hw-revision", FERRY_OPT_STRLIST, hw_revisions, "REV",                  \
                  "restrict every model to these revisions (default: all)", 0),                    \
        CLOUD_OPT(cfgtype, "product", FERRY_OPT_STR, product, "NAME",                              \
                  "product line (default " FERRY_DEFAULT_PRODUCT ")", 0),                          \
        CLOUD_OPT(cfgtype, "component", FERRY_OPT_STR, component, "NAME",                          \
                  "component (default " CLOUD_DEFAULT_COMPONENT ")", 0),                           \
        CLOUD_OPT(cfgtype, "media-type", FERRY_OPT_STR, media_type, "TYPE",                        \
                  "artifact media type (default " CLOUD_DEFAULT_MEDIA_TYPE                         \
                  "; " FERRY_MODULE_MEDIA_PREFIX "NAME: for update module NAME)",                  \
                  0),                                                                              \
        CLOUD_OPT(cfgtype, "module-arg", FERRY_OPT_STRLIST, module_args, "KEY=VALUE",              \
                  "a parameter of the update module, e.g. path=/etc/app.conf (repeatable)", 0),    \
        CLOUD_OPT(cfgtype, "node", FERRY_OPT_STRLIST, nodes, "NODE",                               \
                  "only this node installs the release (repeatable; default: every node)", 0),     \
        CLOUD_OPT(cfgtype, "expires", FERRY_OPT_DURATION, expires, "DURATION",                     \
                  "validity from now, e.g. 12h or 7d (default 30d, the longest devices take "      \
                  "unless told otherwise)",                                                        \
                  0),                                                                              \
        CLOUD_OPT(cfgtype, "must-be-idle", FERRY_OPT_BOOL, must_be_idle, NULL,                     \
                  "never install while a device reports busy", 0),                                 \
        CLOUD_OPT(cfgtype, "window-start", FERRY_OPT_U64, window_start, "UNIX",                    \
                  "earliest install time, unix seconds", 0),                                       \
        CLOUD_OPT(cfgtype, "window-end", FERRY_OPT_U64, window_end, "UNIX",                        \
                  "latest install time, unix seconds", 0),                                         \
        CLOUD_OPT(cfgtype, "max-deferral", FERRY_OPT_DURATION, max_deferral, "DURATION",           \
                  "how long a busy device may defer (default unlimited)", 0),                      \
        CLOUD_OPT(cfgtype, "release", FERRY_OPT_STR, release, "ID",                                \
                  "release id (default <product>-<version>-<seq>)", 0)

/* What to release. Borrowed strings; NULL optional fields take the defaults
 * above, and a NULL release_id is derived by cloud_default_release_id(). */
struct cloud_release {
    const char *artifact; /* path of the artifact file */
    const char *version;  /* semver */
    uint64_t seq;
    const struct ferry_strlist *hw_models;    /* at least one */
    const struct ferry_strlist *hw_revisions; /* may be NULL or empty; applies to every model */
    const char *product;
    const char *component;
    const char *media_type;
    const struct ferry_strlist *module_args; /* KEY=VALUE; may be NULL */
    const struct ferry_strlist *nodes;       /* targets; NULL or empty: every node */
    const char *release_id;
    int64_t issued_at; /* unix seconds */
    int64_t lifetime;  /* seconds from issued_at to expires_at, > 0 */
    struct ferry_constraints constraints;
};

/* "<product>-<version>-<seq>" with every character outside [A-Za-z0-9._-]
 * replaced by '-', the "<product>-<version>" part shortened if needed so the
 * whole fits FERRY_NAME_MAX and the sequence number survives. product must
 * be a valid identifier (ferry_id_valid()). */
void cloud_default_release_id(const char *product, const char *version, uint64_t seq,
                              char out[FERRY_NAME_MAX + 1]);

/* Fills *out from rel: checks every field, hashes the artifact, and sets
 * key_id to kid. Does not sign. */
enum ferry_err cloud_manifest_build(const struct cloud_release *rel, const char *kid,
                                    struct ferry_manifest *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Encodes m (whose key_id must be k's kid), signs the exact bytes with k and
 * wraps them in an envelope. The caller frees *out with free(). */
enum ferry_err cloud_envelope_sign(const struct ferry_manifest *m, const struct cloud_key *k,
                                   char **out, size_t *out_len,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Builds, signs, checks that the envelope verifies with k's public key (a
 * release nobody can install must not leave the building), and writes it
 * atomically to out_path with mode 0644. *m_out (may be NULL) receives the
 * manifest. */
enum ferry_err cloud_sign_release(const struct cloud_release *rel, const struct cloud_key *k,
                                  const char *out_path, struct ferry_manifest *m_out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
