/* The trust a gateway holds (ferry_trust.h) and the metadata it serves its
 * nodes: the chain of root documents it accepted and the newest timestamp
 * per product, persisted in --state-dir.
 *
 * Model. Initial trust is --trust (a root document or a keyring: root
 * version 0). Root documents arrive retained on ferry/v1/<fleet>/root/<v>,
 * in whatever order the broker keeps them, and are taken only by the chain
 * rule; one that does not chain yet (an older one may still be on its way)
 * is kept aside, at most GW_META_MAX_PENDING, and tried again after every
 * root taken. Timestamps arrive retained on ferry/v1/<fleet>/timestamp/<p>;
 * one that the root held cannot check (no timestamp role yet, or keys a
 * newer root brings) is kept aside too, the last one per product, at most
 * GW_META_MAX_PENDING products, and tried again after every root taken: a
 * retained message is not sent again. Nothing is served before it
 * verified.
 *
 * On disk (STATE/meta/), each written with ferry_write_atomic():
 *   root-<version>.json         every root taken, as received: nodes that
 *                               hold an older root need each one after it
 *   timestamps/<product>.json   the newest timestamp of each product
 * At open the stored roots are chained again from --trust, in version order
 * (a file that does not chain is logged and skipped), and the timestamps
 * are restored without their time checks (ferry_trust.h), so a restart
 * never lets an older timestamp back in.
 *
 * Serving. gw_meta_bundle() gives a node the roots above the version it
 * holds (as many as fit, oldest first: a node far behind catches up over
 * several rounds) and the product's timestamp (ferry_meta.h). So the
 * gateway can serve every root a node may hold, start it with the oldest
 * root (or the keyring) any of its nodes was given.
 *
 * Not thread-safe: the event loop owns it. */
#ifndef FERRY_GW_META_H
#define FERRY_GW_META_H

#include "ferry_err.h"
#include "ferry_trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_META_MAX_ROOTS    64 /* roots kept for serving */
#define GW_META_MAX_PENDING  8  /* roots waiting for an earlier one */
#define GW_META_MAX_PRODUCTS 64 /* timestamps held */

struct gw_meta_opts {
    const char *state_dir;  /* STATE; meta/ is created in it */
    const char *trust_path; /* --trust */
    int64_t clock_skew;     /* seconds of tolerance on a timestamp's issued_at */
};

struct gw_meta;

/* Loads --trust and what STATE/meta holds (see above). Errors: --trust
 * unreadable or neither a root nor a keyring, the folder unusable, no
 * memory; a stored file that fails is logged and skipped. */
enum ferry_err gw_meta_open(const struct gw_meta_opts *o, struct gw_meta **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_meta_free(struct gw_meta *m); /* NULL is fine */

/* The trust, for verifying releases and for verdicts. Stays valid for the
 * object's life; its content follows what is taken. */
const struct ferry_trust *gw_meta_trust(const struct gw_meta *m);

/* A root document from topic level `level` (its version in decimal), at
 * time now (for the timestamps kept aside). On FERRY_OK, *roots_taken
 * counts the roots that became current (this one and any kept aside that
 * chain after it): 0 when it was held already or was kept aside to wait for
 * an earlier one (FERRY_OK too, logged). Errors: the
 * document does not verify, or names another version than its topic
 * (FERRY_E_PROTOCOL), FERRY_E_STALE for an old one, FERRY_E_IO/NOSPACE when
 * it cannot be stored (then it is not taken either). */
enum ferry_err gw_meta_root(struct gw_meta *m, const char *level, const uint8_t *buf, size_t len,
                            int64_t now, size_t *roots_taken,
                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* A timestamp document from the topic of `product`. *changed says whether
 * it became the product's timestamp. Errors: those of
 * ferry_trust_update_timestamp(), FERRY_E_PROTOCOL for another product than
 * the topic's, FERRY_E_IO/NOSPACE when it cannot be stored. */
enum ferry_err gw_meta_timestamp(struct gw_meta *m, const char *product, const uint8_t *buf,
                                 size_t len, int64_t now, bool *changed,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* The bundle for a node of `product` that holds root version `have`. The
 * caller frees *out. */
enum ferry_err gw_meta_bundle(const struct gw_meta *m, const char *product, uint64_t have,
                              uint8_t **out, size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
