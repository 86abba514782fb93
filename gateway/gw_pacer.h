/* Download pacing for the gateway's CoAP server: which artifact transfers may
 * run at once. Pure: no I/O, no clock, no randomness of its own; the caller
 * passes the time (one monotonic clock in milliseconds) and random numbers,
 * so every decision can be replayed in a unit test.
 *
 * Model. A transfer is one CoAP session downloading one artifact, named by
 * a struct gw_pacer_key; the server asks about every block request, since it
 * serves every block itself. At most `max_transfers` are admitted at once.
 *   - gw_pacer_admit(): a transfer starts on its first block request, whatever
 *     the block (a node resuming at block N is a transfer like any other),
 *     while there is room; beyond the cap it is refused with FERRY_E_BUSY
 *     (the server answers 5.03 with a Max-Age from gw_pacer_jitter()). An
 *     admitted transfer is admitted again on every request: a node is never
 *     cut off in the middle of a file.
 *   - gw_pacer_finish(): the last block has been served; the slot is free at
 *     once.
 *   - A finished transfer is remembered for grace_ms: its requests are served
 *     without counting against the cap, because the node's acknowledgement of
 *     the last block may be lost and its retransmitted request must not get a
 *     5.03. A node starting the same artifact again within the grace is
 *     therefore served uncounted until the grace ends, and counted (or
 *     refused) after that. At most max_transfers finished keys are
 *     remembered; beyond that the oldest is forgotten early.
 *   - A transfer ends when idle_ms pass without a request (gw_pacer_expire()):
 *     a node that gave up does not keep its slot.
 *   - gw_pacer_end_session(): every transfer of a session that is gone ends.
 *
 * Not thread-safe; one event loop owns it. */
#ifndef FERRY_GW_PACER_H
#define FERRY_GW_PACER_H

#include "ferry_err.h"
#include "ferry_sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_PACER_MAX_TRANSFERS   1024
#define GW_PACER_DEFAULT_IDLE_MS 30000
/* Covers a CoAP client's first two retransmissions (2-3 s, then twice that). */
#define GW_PACER_DEFAULT_GRACE_MS 10000
/* gw_pacer_next_expiry() when nothing can expire. */
#define GW_PACER_NO_EXPIRY UINT64_MAX

struct gw_pacer_opts {
    uint32_t max_transfers; /* 1..GW_PACER_MAX_TRANSFERS */
    uint64_t idle_ms;       /* 0: GW_PACER_DEFAULT_IDLE_MS */
    uint64_t grace_ms;      /* 0: GW_PACER_DEFAULT_GRACE_MS */
};

/* One transfer: an opaque session identity (the server numbers libcoap's
 * sessions, never reusing a number) and the artifact's SHA-256. */
struct gw_pacer_key {
    uint64_t session;
    uint8_t sha256[FERRY_SHA256_LEN];
};

/* How gw_pacer_admit() let a request through. */
enum gw_pacer_admission {
    GW_PACER_STARTED,   /* a new transfer, counted from now on */
    GW_PACER_CONTINUED, /* a transfer already admitted */
    GW_PACER_GRACE,     /* finished within grace_ms: served, not counted */
};

struct gw_pacer;

/* FERRY_E_INVALID_ARG naming the field when an option is out of range,
 * FERRY_E_NOMEM. Free with gw_pacer_free(). */
enum ferry_err gw_pacer_new(const struct gw_pacer_opts *o, struct gw_pacer **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_pacer_free(struct gw_pacer *p); /* NULL is fine */

/* One block request of transfer `k` at now_ms (see Model). On FERRY_OK the
 * request may be served, *how (if how is not NULL) says why, and an admitted
 * transfer's idle clock restarts at now_ms. FERRY_E_BUSY when it is new, not
 * within its grace, and max_transfers are already admitted; nothing changes
 * then. */
enum ferry_err gw_pacer_admit(struct gw_pacer *p, const struct gw_pacer_key *k, uint64_t now_ms,
                              enum gw_pacer_admission *how) FERRY_MUST_CHECK;

/* The last block of `k` was served at now_ms: the transfer ends and its grace
 * starts. A key that is not admitted (already finished, expired, or its
 * session ended) is ignored, so a re-served last block does not prolong the
 * grace. */
void gw_pacer_finish(struct gw_pacer *p, const struct gw_pacer_key *k, uint64_t now_ms);

/* Ends every transfer of `session` and forgets its finished ones. */
void gw_pacer_end_session(struct gw_pacer *p, uint64_t session);

/* Ends the transfers whose last request is idle_ms or more before now_ms
 * (and forgets finished ones past their grace). Returns how many ended. */
size_t gw_pacer_expire(struct gw_pacer *p, uint64_t now_ms);

/* When the next admitted transfer could expire (the earliest last request
 * plus idle_ms), or GW_PACER_NO_EXPIRY when none is admitted. */
uint64_t gw_pacer_next_expiry(const struct gw_pacer *p);

/* Transfers admitted now (finished ones in their grace do not count). */
size_t gw_pacer_active(const struct gw_pacer *p);

/* A retry delay in seconds for a 5.03's Max-Age: base_s moved by up to a
 * quarter either way according to `rnd` (any 32-bit random number), so nodes
 * refused together do not come back together. Always >= 1. */
uint32_t gw_pacer_jitter(uint32_t base_s, uint32_t rnd);

#endif
