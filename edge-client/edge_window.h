/* The download's window of block requests and their timers: which blocks to
 * ask for, when to ask again and how many may be out at once. Pure: no
 * sockets, no clock (every call gets the monotonic time in ms), randomness
 * from a PRNG seeded by the caller. The install state machine (edge_fsm.h)
 * owns one, turns its decisions into GET_BLOCK and TIMER actions and judges
 * the answers; this module only hears "that request got its block", "ask
 * again later" and "the gateway says wait".
 *
 * Blocks. An artifact is `nblocks` blocks of one size. What has arrived is
 * every block before `base` (the first missing one) and a bitmap of the
 * EDGE_WINDOW_SPAN blocks from base on. No request ever goes past
 * base + EDGE_WINDOW_SPAN, so the state is the same few hundred bytes for
 * any image size: at 1 KiB blocks the bitmap reaches 256 KiB past the first
 * hole, far more than a window of EDGE_WINDOW_MAX requests needs. The
 * checkpoint of a download stores base and that bitmap (32 bytes), so a
 * restart resumes at the first missing block and asks for no block that
 * was durable.
 *
 * Requests. A table of at most EDGE_WINDOW_MAX requests, one per block, each
 * either in flight (sent, with a deadline) or waiting to be sent again.
 * Each has an id (`req`, carried in the CoAP token) that stays the same
 * when it is sent again, so a late answer to the first transmission still
 * counts. A block is asked for again only for a reason: its deadline
 * passed (edge_window_expire()), its answer was not the block
 * (edge_window_retry()), the gateway asked to wait (edge_window_hold()),
 * or a new download range dropped it (edge_window_begin(),
 * edge_window_split()). New blocks go out in order, lowest first, the
 * artifact's last block only with the final window (a server that counts a
 * download as finished when its last block is served sees at most a
 * window's worth of requests after it); retransmissions go before new
 * blocks.
 *
 * Timer: CoCoA (draft-ietf-core-cocoa-03). RTT samples from requests
 * answered at the first transmission feed the strong estimator (RFC 6298
 * with K = 4 and a 10 ms floor under K * RTTVAR); those answered after one
 * or two retransmissions feed the weak one (K = 1) with the time since the
 * first transmission, less any time the request waited for room in the
 * window. Each sample moves the overall RTO halfway (strong) or a quarter
 * of the way (weak) to that estimator's value. The first transmission of a
 * request waits the RTO times a random factor in [1, 1.5]; a
 * retransmission multiplies the previous timeout by CoCoA's variable
 * back-off factor (3 below 1 s, 1.5 above 3 s, 2 in between) while the
 * path looks silent (nothing answered since the previous transmission nor
 * within the last two RTOs), and starts afresh from the RTO otherwise:
 * backing off is for a silent path, and the window already shrank for the
 * loss. RTO aging: an
 * RTO below 1 s not updated for 16 RTOs doubles (up to 1 s), one above 3 s
 * not updated for 4 RTOs moves halfway to 2 s. The RTO starts at 2 s (RFC
 * 7252's ACK_TIMEOUT) and stays within [EDGE_WINDOW_MIN_RTO_MS,
 * EDGE_WINDOW_MAX_RTO_MS]. The estimates belong to the link, not to one
 * download: edge_window_begin() keeps them.
 *
 * Window: additive increase, multiplicative decrease on loss. It starts at
 * EDGE_WINDOW_INITIAL requests, grows by one per block received up to a
 * threshold (slow start: doubling per round trip), then by one per window's
 * worth of blocks; a request whose deadline passes halves it (at most once
 * per round trip: losses among requests sent before the last decrease do
 * not count again), never below EDGE_WINDOW_FLOOR requests (one when the
 * maximum is one: lockstep). So a clean link fills up to the configured
 * maximum, and a bad one falls back to two requests out with CoCoA's timer,
 * never slower than lockstep with CoAP's fixed 2 s timeout: the second
 * request keeps the path's liveness known, so that one lost request does
 * not leave the link idle for a backed-off timeout (a lone request's
 * back-off made the slowest tenth of small downloads at 20 % loss take
 * several times the median, in test_edge_window's simulation). A wait asked
 * for by the gateway (5.03 Max-Age, 4.04, 5.xx) is no loss and leaves the
 * window as it is.
 *
 * Calling protocol: edge_window_init() once, edge_window_begin() per
 * download (or restart of one), then after every event
 *   while (edge_window_next(w, now, &s)) send s;   (the caller may stop early)
 *   arm a timer for edge_window_due(w, now);
 * and when it fires, edge_window_expire(w, now) and the same again. The
 * struct is a plain value without pointers: embed it, no free. */
#ifndef FERRY_EDGE_WINDOW_H
#define FERRY_EDGE_WINDOW_H

#include "ferry_random.h"

#include <stdbool.h>
#include <stdint.h>

#define EDGE_WINDOW_SPAN           256 /* blocks tracked from the first missing one */
#define EDGE_WINDOW_BITMAP_BYTES   (EDGE_WINDOW_SPAN / 8)
#define EDGE_WINDOW_MAX            32 /* requests in flight or waiting, at most */
#define EDGE_WINDOW_INITIAL        2
#define EDGE_WINDOW_FLOOR          2 /* the least the window shrinks to (max_window if less) */
#define EDGE_WINDOW_INITIAL_RTO_MS 2000
#define EDGE_WINDOW_MIN_RTO_MS     100
#define EDGE_WINDOW_MAX_RTO_MS     60000
#define EDGE_WINDOW_NEVER          UINT64_MAX /* edge_window_due(): nothing to wait for */

/* One request to send now. */
struct edge_window_send {
    uint64_t block;
    uint32_t req;   /* never 0 */
    unsigned tries; /* 1: first transmission */
};

/* ---- private: the fields are here so the struct can be embedded ---------- */
struct edge_window_est {
    bool valid;
    uint32_t srtt16, rttvar16; /* ms * 16 */
};

struct edge_window_entry {
    uint64_t block;
    uint32_t req;
    uint32_t tx;         /* transmission number of the latest send */
    uint32_t timeout_ms; /* of the latest send; 0: the next send starts afresh */
    uint16_t tries;      /* transmissions so far */
    uint16_t bad;        /* answers that were not the block, in a row */
    bool inflight;
    uint64_t first_ms;   /* first transmission */
    uint64_t queued_ms;  /* since then, time spent waiting for room */
    uint64_t answers_at; /* the window's answer count at the latest send */
    uint64_t at_ms;      /* in flight: deadline; waiting: not before */
};

struct edge_window {
    /* The link, kept across downloads. */
    uint32_t max_window;
    uint32_t cwnd, ssthresh, floor; /* in 1/256 of a request */
    uint32_t rto_ms;
    uint64_t rto_updated_ms;
    struct edge_window_est strong, weak;
    uint32_t next_req, next_tx, recover_tx;
    uint64_t answers; /* blocks received over the link's life */
    uint64_t last_answer_ms;
    struct ferry_prng rng;
    /* The download. */
    uint64_t nblocks, base, next_new, received;
    uint64_t bits[EDGE_WINDOW_SPAN / 64]; /* bit i: block base + i is in */
    struct edge_window_entry e[EDGE_WINDOW_MAX];
    unsigned n, inflight;
    uint64_t hold_until;
    bool hold_is_backoff; /* edge_window_kick() may end it */
};

/* max_window: 1..EDGE_WINDOW_MAX (clamped); seed: any value. No download
 * yet: edge_window_next() sends nothing until edge_window_begin(). */
void edge_window_init(struct edge_window *w, unsigned max_window, uint64_t seed);

/* A download of nblocks blocks (>= 1) in which every block before base and
 * block base + i for every bit i set in have (LSB first in each byte; NULL:
 * none) are already there. Forgets the requests of an earlier download:
 * their answers are no longer recognised (edge_window_lookup() fails). */
void edge_window_begin(struct edge_window *w, uint64_t nblocks, uint64_t base,
                       const uint8_t have[EDGE_WINDOW_BITMAP_BYTES]);

/* The next request to send at now: a retransmission that is due, or else a
 * new block, while fewer than the window are in flight and no hold is on.
 * It counts as sent (in flight, deadline set) when this returns true. */
bool edge_window_next(struct edge_window *w, uint64_t now, struct edge_window_send *out);

/* When something is next due: the earliest deadline in flight, a waiting
 * retransmission or new block the window has room for (now when one can go
 * right away), or the end of a hold. EDGE_WINDOW_NEVER when nothing is out
 * or wanted (the download is complete, or none has begun). */
uint64_t edge_window_due(const struct edge_window *w, uint64_t now);

/* Requests whose deadline has passed by now count as lost and wait to be
 * sent again; the window shrinks (see the model). Returns how many. */
unsigned edge_window_expire(struct edge_window *w, uint64_t now);

/* The block request req is for; false when req is not outstanding (an
 * answer already taken, or of an earlier download): ignore that answer. */
bool edge_window_lookup(const struct edge_window *w, uint32_t req, uint64_t *block);

/* req's answer delivered its block: the block is in, the request done, the
 * RTT measured, the window grows. Unknown req: nothing happens. */
void edge_window_got(struct edge_window *w, uint32_t req, uint64_t now);

/* req's answer was not its block: ask again after a backed-off pause (the
 * RTO doubled for each such answer in a row, within the RTO bounds). The
 * window is unchanged. Returns how many such answers req got in a row (0
 * for an unknown req). */
unsigned edge_window_retry(struct edge_window *w, uint32_t req, uint64_t now);

/* The gateway asked to wait (req's answer at now): req waits to be sent
 * again, and nothing is sent before until (a later hold extends it).
 * backoff: Ferry's own backoff after an error (edge_window_kick() may cut it
 * short), not a Max-Age the gateway set. Unknown req: only the hold. */
void edge_window_hold(struct edge_window *w, uint32_t req, uint64_t now, uint64_t until,
                      bool backoff);
/* True while a hold is on at now. */
bool edge_window_holding(const struct edge_window *w, uint64_t now);

/* Something says the gateway may answer now (the release was offered
 * again): a backoff hold ends and waiting retransmissions are due now.
 * Requests in flight and a Max-Age hold are left alone. */
void edge_window_kick(struct edge_window *w, uint64_t now);

/* The gateway serves blocks 2^shift times smaller than asked: every index
 * is multiplied by 2^shift, nblocks becomes new_nblocks. Blocks known to be
 * in stay in (as far as the bitmap reaches); requests in flight now stand
 * for the first small block of their old block, which the answers to them
 * carry. */
void edge_window_split(struct edge_window *w, unsigned shift, uint64_t new_nblocks);

bool edge_window_has(const struct edge_window *w, uint64_t block);
bool edge_window_done(const struct edge_window *w);
uint64_t edge_window_base(const struct edge_window *w);     /* first missing block */
uint64_t edge_window_received(const struct edge_window *w); /* blocks in */
/* The bitmap of the blocks after base that are in, for a checkpoint. */
void edge_window_bitmap(const struct edge_window *w, uint8_t out[EDGE_WINDOW_BITMAP_BYTES]);

/* For tests, logs and benchmarks. */
uint32_t edge_window_rto_ms(const struct edge_window *w);
unsigned edge_window_cwnd(const struct edge_window *w); /* whole requests, >= 1 */
unsigned edge_window_inflight(const struct edge_window *w);

#endif
