/* The releases a gateway holds: for each product, the current release (the
 * one nodes are offered) and the one before it (kept so its artifact stays
 * cached as a rollback target), persisted in --state-dir.
 *
 * A release enters only through gw_releases_accept(), with the signed
 * envelope received on the product's release topic, and only after
 * ferry_envelope_verify() (no hardware check: a gateway relays for every
 * model) with min_seq set to the newest seq held for the product. A
 * rejection changes nothing: the previous release stays current. Releases
 * are never removed, only superseded.
 *
 * On disk, each written with ferry_write_atomic():
 *   STATE/releases/<product>.env           the current envelope, exact bytes
 *   STATE/releases/previous/<product>.env  the previous one
 * (two folders, so that no product name, "P.prev" included, can name another
 * product's file). A "<X>.prev.env" beside the current files that holds a
 * release of product X is X's previous release from an older gateway: it is
 * read as such and moved to previous/.
 * On open every file is verified again against the keyring (a key revoked
 * since, a flipped bit, a file edited by hand); what fails is logged and
 * skipped, never served. A current release that has merely expired is not
 * served either, but its seq still bars older releases of the product.
 *
 * Not thread-safe: the event loop owns it. */
#ifndef FERRY_GW_RELEASES_H
#define FERRY_GW_RELEASES_H

#include "ferry_err.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"

#include <stddef.h>
#include <stdint.h>

#define GW_RELEASES_MAX_PRODUCTS 64
/* Digests gw_releases_refs() can return: current + previous per product. */
#define GW_RELEASES_MAX_REFS (2 * GW_RELEASES_MAX_PRODUCTS)

/* Limits on the releases taken (ferry_envelope.h): a manifest valid for
 * longer than max_lifetime is refused (lifetime-too-long), and so is one
 * whose seq is more than max_seq_step above the newest one held for its
 * product (seq-jump; the first release of a product is bounded by the
 * nodes alone). 0: no limit. */
struct gw_releases_limits {
    int64_t max_lifetime;
    uint64_t max_seq_step;
};

struct gw_releases_opts {
    const struct gw_releases_limits *limits; /* NULL: none; see gw_releases_set_limits() */
    const char *state_dir;                   /* STATE; releases/ is created in it */
    const struct ferry_keyring *keyring;     /* borrowed; must outlive the object; its content
                                                may change (gw_releases_recheck()) */
    uint64_t max_artifact_size;              /* 0: only FERRY_ARTIFACT_MAX_SIZE */
    int64_t clock_skew;                      /* seconds of tolerance on issued_at */
};

/* One held release. Owned by the gw_releases object. */
struct gw_release {
    struct ferry_manifest manifest; /* as verified */
    uint8_t *envelope;              /* the exact bytes received, to serve unchanged */
    size_t envelope_len;
    uint8_t manifest_digest[FERRY_SHA256_LEN]; /* SHA-256 of the signed manifest bytes */
};

enum gw_release_outcome {
    GW_RELEASE_ACCEPTED,     /* new current release for its product, persisted */
    GW_RELEASE_ALREADY_HELD, /* the same bytes as the current release: nothing to do */
};

struct gw_releases;

/* Creates STATE/releases if needed and loads what is there, verified at
 * `now` (unix seconds). Files that fail are logged and skipped; only an
 * unreadable folder or a failed allocation fails the call. Free with
 * gw_releases_free(). */
enum ferry_err gw_releases_open(const struct gw_releases_opts *o, int64_t now,
                                struct gw_releases **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_releases_free(struct gw_releases *r); /* NULL is fine */

/* Takes an envelope received on the release topic of `product` (the topic's
 * last level). Returns the typed error of the first failed check, with a
 * message naming the product, and changes nothing:
 *   FERRY_E_INVALID_ARG     product is not a valid identifier;
 *   anything ferry_envelope_verify() returns (bad signature, unknown or
 *                           revoked key, expired, artifact too large, ...);
 *   FERRY_E_DOWNGRADE       seq below the one held, or equal to it with
 *                           different bytes (a replay or a conflicting
 *                           release: never silently replaced);
 *   FERRY_E_PROTOCOL        the manifest names another product than the topic;
 *   FERRY_E_TOO_LARGE       a new product beyond GW_RELEASES_MAX_PRODUCTS;
 *   FERRY_E_IO, FERRY_E_NOSPACE  it could not be persisted.
 * On FERRY_OK, *outcome says whether it is new. The current release becomes
 * the previous one. Persisting writes the previous file first, then the
 * current one, so a crash between the two leaves both naming the old release,
 * never losing it. */
enum ferry_err gw_releases_accept(struct gw_releases *r, const char *product, const uint8_t *env,
                                  size_t env_len, int64_t now, enum gw_release_outcome *outcome,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Replaces the limits (they follow the root's policy, ferry_trust.h). */
void gw_releases_set_limits(struct gw_releases *r, const struct gw_releases_limits *l);

/* Verifies every held release again with the keyring as it is now (after
 * a new root revoked or removed keys) and drops, in memory, those that no
 * longer verify; their seq still bars older releases. Returns how many were
 * dropped. Their files stay, and are skipped at the next open. */
size_t gw_releases_recheck(struct gw_releases *r, int64_t now);

/* Pointers returned below stay valid until the next gw_releases_accept(),
 * gw_releases_recheck() or gw_releases_free(). */

/* The current (or previous) release of a product, or NULL. */
const struct gw_release *gw_releases_current(const struct gw_releases *r, const char *product);
const struct gw_release *gw_releases_previous(const struct gw_releases *r, const char *product);

/* The current releases, for iteration: i in 0..gw_releases_count()-1, in no
 * particular order. */
size_t gw_releases_count(const struct gw_releases *r);
const struct gw_release *gw_releases_at(const struct gw_releases *r, size_t i);

/* The digests the cache must keep (struct gw_cache_refs): the artifacts of
 * every current and previous release, each once. Writes up to cap digests
 * to out and the count held to *n; FERRY_E_TOO_LARGE (and nothing written)
 * if cap is too small, which GW_RELEASES_MAX_REFS never is. */
enum ferry_err gw_releases_refs(const struct gw_releases *r, uint8_t (*out)[FERRY_SHA256_LEN],
                                size_t cap, size_t *n) FERRY_MUST_CHECK;

#endif
