/* Download admission for the gateway's CoAP server: which nodes may download
 * an artifact now. Pure: no I/O, no clock, no randomness of its own; the
 * caller passes the time (one monotonic clock in milliseconds) and random
 * numbers, so every decision can be replayed in a unit test.
 *
 * Model. A requester is named by its identity (gw_coap.h, "Who is asking":
 * a node id, or an anonymous client's address:port), never by its session,
 * so a node with several sessions, or with a window of requests in flight,
 * is one requester. At most `max_transfers` requesters hold a slot at once;
 * a requester holds at most one, whatever it downloads, and all its requests
 * share it. The server asks
 * about every block request (gw_pacer_admit()) and reports every block it
 * served (gw_pacer_served()).
 *   - Start: a requester without a slot gets one on any block request while
 *     a slot is free and nobody is waiting ahead of it.
 *   - Queue: a requester refused (FERRY_E_BUSY, the server answers 5.03 with
 *     a Max-Age from gw_pacer_jitter()) takes a place at the end of a FIFO
 *     queue and keeps it while it comes back at least every wait_ms. A freed
 *     slot goes to the head of the queue: a newcomer, or a requester that
 *     asks more often, cannot overtake those refused before it.
 *   - Done: a transfer ends, freeing its slot at once, when the bytes served
 *     to it reach the artifact's size. Blocks may come in any order and any
 *     number of times: asking for the last block first ends nothing.
 *   - Grace: after that, up to grace_requests requests of the same requester
 *     for the same artifact within grace_ms are served without a slot
 *     (retransmissions of the last window, whose answers were lost). Beyond
 *     either bound, asking again is a new download like any other, and the
 *     bytes its grace served count for it.
 *   - Turns: a holder keeps its slot while nobody waits for one. While more
 *     requesters wait than slots are free, a holder whose turn (turn_ms since
 *     it got the slot) is over gives it up: at its next request, which is
 *     refused and puts it at the end of the queue, or at gw_pacer_expire().
 *     So no requester holds a slot for more than its share while others
 *     wait, and one whose turn ended resumes where it was once it is at the
 *     head again.
 *   - Idle: a holder silent for idle_ms loses its slot (gw_pacer_expire()); a
 *     waiter silent for wait_ms loses its place.
 *
 * Bounded: at most max_requesters identities are remembered at once (slot
 * holders, waiters and graces together). When a new one finds the table full
 * the oldest grace, else the waiter asked least recently, is forgotten; if
 * every entry holds a slot the newcomer is refused without a place.
 *
 * Cost: gw_pacer_admit(), gw_pacer_served() and gw_pacer_next_expiry() take
 * a hash lookup and O(1) list moves (admit also walks at most as many queue
 * entries as there are free slots); gw_pacer_expire() costs what it removes.
 *
 * Not thread-safe; one event loop owns it. */
#ifndef FERRY_GW_PACER_H
#define FERRY_GW_PACER_H

#include "ferry_err.h"
#include "ferry_sha256.h"
#include "gw_idmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_PACER_MAX_TRANSFERS   1024
#define GW_PACER_DEFAULT_IDLE_MS 30000
/* Covers a CoAP client's first two retransmissions (2-3 s, then twice that). */
#define GW_PACER_DEFAULT_GRACE_MS 10000
/* Covers the retransmissions of a window of block requests. */
#define GW_PACER_DEFAULT_GRACE_REQUESTS 64
/* 0 for turn_ms: this many idle_ms. */
#define GW_PACER_DEFAULT_TURN_IDLES 4
/* 0 for wait_ms: long enough for a node told 5.03 to come back. */
#define GW_PACER_DEFAULT_WAIT_MS    30000
#define GW_PACER_DEFAULT_REQUESTERS 4096
#define GW_PACER_MAX_REQUESTERS     (1u << 20)
/* A requester's identity, at most this many bytes (gw_coap.h). */
#define GW_PACER_ID_MAX GW_IDMAP_ID_MAX
/* gw_pacer_next_expiry() when nothing can expire. */
#define GW_PACER_NO_EXPIRY UINT64_MAX

struct gw_pacer_opts {
    uint32_t max_transfers;  /* 1..GW_PACER_MAX_TRANSFERS */
    uint64_t idle_ms;        /* 0: GW_PACER_DEFAULT_IDLE_MS */
    uint64_t grace_ms;       /* 0: GW_PACER_DEFAULT_GRACE_MS */
    uint32_t grace_requests; /* 0: GW_PACER_DEFAULT_GRACE_REQUESTS */
    uint64_t turn_ms;        /* 0: GW_PACER_DEFAULT_TURN_IDLES x idle_ms */
    uint64_t wait_ms;        /* 0: GW_PACER_DEFAULT_WAIT_MS */
    uint32_t max_requesters; /* 0: GW_PACER_DEFAULT_REQUESTERS; at least 2 x max_transfers,
                                at most GW_PACER_MAX_REQUESTERS */
};

/* How gw_pacer_admit() let a request through. */
enum gw_pacer_admission {
    GW_PACER_STARTED,   /* a new transfer, counted from now on */
    GW_PACER_CONTINUED, /* a transfer already admitted */
    GW_PACER_GRACE,     /* done within its grace: served, not counted */
};

struct gw_pacer;

/* FERRY_E_INVALID_ARG naming the field when an option is out of range,
 * FERRY_E_NOMEM. Free with gw_pacer_free(). */
enum ferry_err gw_pacer_new(const struct gw_pacer_opts *o, struct gw_pacer **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_pacer_free(struct gw_pacer *p); /* NULL is fine */

/* One block request of requester `who` (a NUL-terminated identity of at
 * most GW_PACER_ID_MAX bytes) for artifact sha256 of `size` bytes at now_ms
 * (see Model). On FERRY_OK the request may be served and *how (if not NULL)
 * says why. FERRY_E_BUSY when it must wait (it is queued, or keeps its
 * place); FERRY_E_INVALID_ARG for an identity that is empty or too long. */
enum ferry_err gw_pacer_admit(struct gw_pacer *p, const char *who,
                              const uint8_t sha256[FERRY_SHA256_LEN], uint64_t size,
                              uint64_t now_ms, enum gw_pacer_admission *how) FERRY_MUST_CHECK;

/* `bytes` of the artifact were served to `who` at now_ms, after any
 * admission (also GW_PACER_GRACE). Ends the transfer (its grace starts) once
 * the bytes served to it reach the size; returns true then. Ignored (false)
 * for a requester neither downloading nor in its grace, or another artifact. */
bool gw_pacer_served(struct gw_pacer *p, const char *who, const uint8_t sha256[FERRY_SHA256_LEN],
                     uint64_t bytes, uint64_t now_ms);

/* Ends what is due at now_ms: idle holders, holders whose turn is over while
 * others wait, silent waiters, graces past their time. Returns how many
 * slots it freed. */
size_t gw_pacer_expire(struct gw_pacer *p, uint64_t now_ms);

/* When gw_pacer_expire() could next free or forget something, or
 * GW_PACER_NO_EXPIRY when nothing is remembered. */
uint64_t gw_pacer_next_expiry(const struct gw_pacer *p);

/* Slots held now (requesters in their grace do not count). */
size_t gw_pacer_active(const struct gw_pacer *p);

/* Requesters waiting in the queue now. */
size_t gw_pacer_waiting(const struct gw_pacer *p);

/* A retry delay in seconds for a 5.03's Max-Age: base_s moved by up to a
 * quarter either way according to `rnd` (any 32-bit random number), so nodes
 * refused together do not come back together. Always >= 1. */
uint32_t gw_pacer_jitter(uint32_t base_s, uint32_t rnd);

#endif
