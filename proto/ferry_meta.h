/* The trust metadata bundle a gateway serves its nodes on
 * ferry/meta/<product> (PROTOCOL.md, "Trust metadata"): the root documents
 * a node may need to catch up, oldest first, and the product's current
 * timestamp document, each as the signed document it is (ferry_signed.h):
 *
 *   {"format": 1, "roots": [<signed root>, ...], "timestamp": <signed timestamp>}
 *
 * Both members are optional. The bundle is only a carrier: the gateway is
 * not trusted, and a node verifies every document in it (ferry_trust.h).
 * Cap FERRY_META_MAX_BYTES, at most FERRY_META_MAX_ROOTS roots. */
#ifndef FERRY_META_H
#define FERRY_META_H

#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

#define FERRY_META_FORMAT    1
#define FERRY_META_MAX_BYTES 16384
#define FERRY_META_MAX_ROOTS 8

/* One document of a bundle: JSON bytes of a signed document, malloc'd. */
struct ferry_meta_doc {
    uint8_t *buf;
    size_t len;
};

struct ferry_meta {
    size_t nroots;
    struct ferry_meta_doc roots[FERRY_META_MAX_ROOTS];
    struct ferry_meta_doc timestamp; /* buf NULL when absent */
};

/* Parses a bundle's shape: each document comes out as JSON text of its own
 * (not yet parsed or verified). Free with ferry_meta_free(). */
enum ferry_err ferry_meta_parse(const uint8_t *buf, size_t len, struct ferry_meta **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_meta_free(struct ferry_meta *m); /* NULL is fine */

/* Builds a bundle from signed documents given as JSON text (each one
 * object, as received and verified). timestamp may be NULL. Roots that do
 * not fit under FERRY_META_MAX_BYTES are left out from the newest end, and
 * *nroots_out says how many went in, so a node far behind catches up over
 * several rounds. The caller frees *out. */
enum ferry_err ferry_meta_encode(const struct ferry_meta_doc *roots, size_t nroots,
                                 const struct ferry_meta_doc *timestamp, uint8_t **out,
                                 size_t *out_len, size_t *nroots_out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
