/* Download pacing for the gateway's CoAP server: which artifact transfers may
 * run at once. Pure: no I/O, no clock, no randomness of its own; the caller
 * passes the time (one monotonic clock in milliseconds) and random numbers,
 * so every decision can be replayed in a unit test.
 *
 * Model. A transfer is one CoAP session downloading one artifact, named by
 * a struct gw_pacer_key. At most `max_transfers` are admitted at once.
 *   - gw_pacer_admit() is called for every request that reaches the
 *     server's handler. A transfer already admitted is always admitted again
 *     (a node is never cut off in the middle of a file); a new one is
 *     admitted while there is room, else refused with FERRY_E_BUSY (the
 *     server answers 5.03 with a Max-Age from gw_pacer_jitter()).
 *   - A held transfer (admitted with hold = true: libcoap keeps a large body
 *     for it and serves the blocks itself) never ends by idleness: libcoap
 *     drops its bodies on its own timeouts and then releases them
 *     (gw_pacer_release()). When the last hold is released the transfer
 *     ends if the body was sent in full, and is kept (as below) if libcoap
 *     gave up on it half-way: libcoap 4.3.1 drops a body 93 s after it
 *     started, whatever the progress, and the node goes on asking.
 *   - A transfer with no hold is one whose blocks each come through the
 *     handler (libcoap serves a request for block N > 0 of a body it no
 *     longer holds by calling the handler again). It stays admitted until
 *     idle_ms pass without a request (gw_pacer_expire()), so a node
 *     fetching block after block keeps its slot.
 *   - gw_pacer_end_session() drops every transfer of a session that is gone.
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
/* gw_pacer_next_expiry() when nothing can expire. */
#define GW_PACER_NO_EXPIRY UINT64_MAX

struct gw_pacer_opts {
    uint32_t max_transfers; /* 1..GW_PACER_MAX_TRANSFERS */
    uint64_t idle_ms;       /* 0: GW_PACER_DEFAULT_IDLE_MS */
};

/* One transfer: an opaque session identity (the server numbers libcoap's
 * sessions, never reusing a number) and the artifact's SHA-256. */
struct gw_pacer_key {
    uint64_t session;
    uint8_t sha256[FERRY_SHA256_LEN];
};

struct gw_pacer;

/* FERRY_E_INVALID_ARG naming the field when an option is out of range,
 * FERRY_E_NOMEM. Free with gw_pacer_free(). */
enum ferry_err gw_pacer_new(const struct gw_pacer_opts *o, struct gw_pacer **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_pacer_free(struct gw_pacer *p); /* NULL is fine */

/* Admits the transfer `k` (see Model) and restarts its idle clock at now_ms.
 * With hold, one more hold is counted on success. FERRY_E_BUSY when it is
 * new and max_transfers are already admitted; nothing changes then. */
enum ferry_err gw_pacer_admit(struct gw_pacer *p, const struct gw_pacer_key *k, bool hold,
                              uint64_t now_ms) FERRY_MUST_CHECK;

/* Releases one hold of `k`. When none is left the transfer ends, unless
 * `keep` (the body was not sent in full): then it stays admitted without a
 * hold, its idle clock restarted at now_ms. A key that is not admitted, or
 * has no hold, is ignored (its session may have ended first). */
void gw_pacer_release(struct gw_pacer *p, const struct gw_pacer_key *k, bool keep, uint64_t now_ms);

/* Ends every transfer of `session`, holds or not. */
void gw_pacer_end_session(struct gw_pacer *p, uint64_t session);

/* Ends the transfers without holds whose last admission is idle_ms or more
 * before now_ms. Returns how many ended. */
size_t gw_pacer_expire(struct gw_pacer *p, uint64_t now_ms);

/* When the next transfer could expire (the earliest last admission plus
 * idle_ms among those without holds), or GW_PACER_NO_EXPIRY. */
uint64_t gw_pacer_next_expiry(const struct gw_pacer *p);

/* Transfers admitted now. */
size_t gw_pacer_active(const struct gw_pacer *p);

/* A retry delay in seconds for a 5.03's Max-Age: base_s moved by up to a
 * quarter either way according to `rnd` (any 32-bit random number), so nodes
 * refused together do not come back together. Always >= 1. */
uint32_t gw_pacer_jitter(uint32_t base_s, uint32_t rnd);

#endif
