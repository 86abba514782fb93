/* The node's trust (ferry_trust.h) and where it keeps it: its initial
 * --trust (a root document or a keyring, root version 0), plus the newest
 * root and the newest timestamp of its product line learned from the
 * gateway, in STATE/trust/:
 *   root.json        the newest root taken, as received
 *   timestamp.json   the newest timestamp of the node's product, as received
 * each written with ferry_write_atomic() once taken.
 *
 * At open, a stored root is taken if it is newer than --trust and its own
 * root keys sign it (it was chained when it was first taken); a stored
 * timestamp is restored without its time checks, so an older timestamp can
 * never come back after a restart. A file that fails is logged and left.
 *
 * edge_meta_apply() takes a bundle from the gateway (ferry_meta.h): its
 * roots in order, by the chain rule, then its timestamp, which must be of
 * the node's product. The gateway is not trusted: whatever does not verify
 * is logged and changes nothing.
 *
 * Not thread-safe: the loop thread owns it. */
#ifndef FERRY_EDGE_META_H
#define FERRY_EDGE_META_H

#include "ferry_err.h"
#include "ferry_trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_META_DIR "trust"

struct edge_meta;

/* Loads --trust (errors name it) and what STATE/trust holds. clock_skew is
 * the tolerance on a timestamp's issued_at. */
enum ferry_err edge_meta_open(const char *state_dir, const char *trust_path, const char *product,
                              int64_t clock_skew, struct edge_meta **out,
                              struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_meta_free(struct edge_meta *m); /* NULL is fine */

/* The trust; stays valid for the object's life, its content follows what
 * is taken. */
const struct ferry_trust *edge_meta_trust(const struct edge_meta *m);

/* Takes what verifies in a bundle at time now; *changed says whether the
 * root or the timestamp changed (then the files were written, best effort:
 * a failed write is logged). FERRY_E_MALFORMED/TOO_LARGE for a bundle that
 * does not parse; the documents' own errors are logged, not returned. */
enum ferry_err edge_meta_apply(struct edge_meta *m, const uint8_t *buf, size_t len, int64_t now,
                               bool *changed, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
