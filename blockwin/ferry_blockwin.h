/* A download's window of block requests and their timers: which blocks to
 * ask for, when to ask again and how many may be out at once. Pure: no
 * sockets, no clock (every call gets the monotonic time in ms), randomness
 * from a PRNG seeded by the caller. Two programs own one: ferry-edge's
 * install state machine (edge_fsm.h) turns its decisions into GET_BLOCK and
 * TIMER actions, and a child gateway fetching an artifact from its parent
 * (gw_upstream_coap.h) sends them itself; this module only hears "that
 * request got its block", "ask again later" and "the gateway says wait".
 *
 * Blocks. An artifact is `nblocks` blocks of one size. What has arrived is
 * every block before `base` (the first missing one) and a bitmap of the
 * FERRY_BLOCKWIN_SPAN blocks from base on. No request ever goes past
 * base + FERRY_BLOCKWIN_SPAN, so the state is the same few hundred bytes for
 * any image size: at 1 KiB blocks the bitmap reaches 256 KiB past the first
 * hole, far more than a window of FERRY_BLOCKWIN_MAX requests needs. The
 * checkpoint of a download stores base and that bitmap (32 bytes), so a
 * restart resumes at the first missing block and asks for no block that
 * was durable.
 *
 * Requests. A table of at most FERRY_BLOCKWIN_MAX requests, one per block, each
 * either in flight (sent, with a deadline) or waiting to be sent again.
 * Each has an id (`req`, carried in the CoAP token) that stays the same
 * when it is sent again, so a late answer to the first transmission still
 * counts. A block is asked for again only for a reason: its deadline
 * passed (ferry_blockwin_expire()), its answer was not the block
 * (ferry_blockwin_retry()), the gateway asked to wait (ferry_blockwin_hold()),
 * or a new download range dropped it (ferry_blockwin_begin(),
 * ferry_blockwin_split()). New blocks go out in order, lowest first, the
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
 * 7252's ACK_TIMEOUT) and stays within [FERRY_BLOCKWIN_MIN_RTO_MS,
 * FERRY_BLOCKWIN_MAX_RTO_MS]. The estimates belong to the link, not to one
 * download: ferry_blockwin_begin() keeps them.
 *
 * Window: additive increase, multiplicative decrease on loss. It starts at
 * FERRY_BLOCKWIN_INITIAL requests, grows by one per block received up to a
 * threshold (slow start: doubling per round trip), then by one per window's
 * worth of blocks; a request whose deadline passes halves it (at most once
 * per round trip: losses among requests sent before the last decrease do
 * not count again), never below FERRY_BLOCKWIN_FLOOR requests (one when the
 * maximum is one: lockstep). So a clean link fills up to the configured
 * maximum, and a bad one falls back to two requests out with CoCoA's timer,
 * never slower than lockstep with CoAP's fixed 2 s timeout: the second
 * request keeps the path's liveness known, so that one lost request does
 * not leave the link idle for a backed-off timeout (a lone request's
 * back-off made the slowest tenth of small downloads at 20 % loss take
 * several times the median, in test_blockwin's simulation). A wait asked
 * for by the gateway (5.03 Max-Age, 4.04, 5.xx) is no loss and leaves the
 * window as it is.
 *
 * Calling protocol: ferry_blockwin_init() once, ferry_blockwin_begin() per
 * download (or restart of one), then after every event
 *   while (ferry_blockwin_next(w, now, &s)) send s;   (the caller may stop early)
 *   arm a timer for ferry_blockwin_due(w, now);
 * and when it fires, ferry_blockwin_expire(w, now) and the same again. The
 * struct is a plain value without pointers: embed it, no free. */
#ifndef FERRY_FERRY_BLOCKWIN_H
#define FERRY_FERRY_BLOCKWIN_H

#include "ferry_random.h"

#include <stdbool.h>
#include <stdint.h>

#define FERRY_BLOCKWIN_SPAN           256 /* blocks tracked from the first missing one */
#define FERRY_BLOCKWIN_BITMAP_BYTES   (FERRY_BLOCKWIN_SPAN / 8)
#define FERRY_BLOCKWIN_MAX            32 /* requests in flight or waiting, at most */
#define FERRY_BLOCKWIN_INITIAL        2
#define FERRY_BLOCKWIN_FLOOR          2 /* the least the window shrinks to (max_window if less) */
#define FERRY_BLOCKWIN_INITIAL_RTO_MS 2000
#define FERRY_BLOCKWIN_MIN_RTO_MS     100
#define FERRY_BLOCKWIN_MAX_RTO_MS     60000
#define FERRY_BLOCKWIN_NEVER          UINT64_MAX /* ferry_blockwin_due(): nothing to wait for */

/* One request to send now. */
struct ferry_blockwin_send {
    uint64_t block;
    uint32_t req;   /* never 0 */
    unsigned tries; /* 1: first transmission */
};

/* ---- private: the fields are here so the struct can be embedded ---------- */
struct ferry_blockwin_est {
    bool valid;
    uint32_t srtt16, rttvar16; /* ms * 16 */
};

struct ferry_blockwin_entry {
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

struct ferry_blockwin {
    /* The link, kept across downloads. */
    uint32_t max_window;
    uint32_t cwnd, ssthresh, floor; /* in 1/256 of a request */
    uint32_t rto_ms;
    uint64_t rto_updated_ms;
    struct ferry_blockwin_est strong, weak;
    uint32_t next_req, next_tx, recover_tx;
    uint64_t answers; /* blocks received over the link's life */
    uint64_t last_answer_ms;
    struct ferry_prng rng;
    /* The download. */
    uint64_t nblocks, base, next_new, received;
    uint64_t bits[FERRY_BLOCKWIN_SPAN / 64]; /* bit i: block base + i is in */
    struct ferry_blockwin_entry e[FERRY_BLOCKWIN_MAX];
    unsigned n, inflight;
    uint64_t hold_until;
    bool hold_is_backoff; /* ferry_blockwin_kick() may end it */
};

/* max_window: 1..FERRY_BLOCKWIN_MAX (clamped); seed: any value. No download
 * yet: ferry_blockwin_next() sends nothing until ferry_blockwin_begin(). */
void ferry_blockwin_init(struct ferry_blockwin *w, unsigned max_window, uint64_t seed);

/* A download of nblocks blocks (>= 1) in which every block before base and
 * block base + i for every bit i set in have (LSB first in each byte; NULL:
 * none) are already there. Forgets the requests of an earlier download:
 * their answers are no longer recognised (ferry_blockwin_lookup() fails). */
void ferry_blockwin_begin(struct ferry_blockwin *w, uint64_t nblocks, uint64_t base,
                          const uint8_t have[FERRY_BLOCKWIN_BITMAP_BYTES]);

/* The next request to send at now: a retransmission that is due, or else a
 * new block, while fewer than the window are in flight and no hold is on.
 * It counts as sent (in flight, deadline set) when this returns true. */
bool ferry_blockwin_next(struct ferry_blockwin *w, uint64_t now, struct ferry_blockwin_send *out);

/* When something is next due: the earliest deadline in flight, a waiting
 * retransmission or new block the window has room for (now when one can go
 * right away), or the end of a hold. FERRY_BLOCKWIN_NEVER when nothing is out
 * or wanted (the download is complete, or none has begun). */
uint64_t ferry_blockwin_due(const struct ferry_blockwin *w, uint64_t now);

/* Requests whose deadline has passed by now count as lost and wait to be
 * sent again; the window shrinks (see the model). Returns how many. */
unsigned ferry_blockwin_expire(struct ferry_blockwin *w, uint64_t now);

/* The block request req is for; false when req is not outstanding (an
 * answer already taken, or of an earlier download): ignore that answer. */
bool ferry_blockwin_lookup(const struct ferry_blockwin *w, uint32_t req, uint64_t *block);

/* req's answer delivered its block: the block is in, the request done, the
 * RTT measured, the window grows. Unknown req: nothing happens. */
void ferry_blockwin_got(struct ferry_blockwin *w, uint32_t req, uint64_t now);

/* req's answer was not its block: ask again after a backed-off pause (the
 * RTO doubled for each such answer in a row, within the RTO bounds). The
 * window is unchanged. Returns how many such answers req got in a row (0
 * for an unknown req). */
unsigned ferry_blockwin_retry(struct ferry_blockwin *w, uint32_t req, uint64_t now);

/* The gateway asked to wait (req's answer at now): req waits to be sent
 * again, and nothing is sent before until (a later hold extends it).
 * backoff: Ferry's own backoff after an error (ferry_blockwin_kick() may cut it
 * short), not a Max-Age the gateway set. Unknown req: only the hold. */
void ferry_blockwin_hold(struct ferry_blockwin *w, uint32_t req, uint64_t now, uint64_t until,
                         bool backoff);
/* True while a hold is on at now. */
bool ferry_blockwin_holding(const struct ferry_blockwin *w, uint64_t now);

/* Something says the gateway may answer now (the release was offered
 * again): a backoff hold ends and waiting retransmissions are due now.
 * Requests in flight and a Max-Age hold are left alone. */
void ferry_blockwin_kick(struct ferry_blockwin *w, uint64_t now);

/* The path the requests went over is gone (ferry-edge gave its session up
 * and opened a new one: a new source port, a new DTLS handshake), and the
 * new one is up at now. Every request out, in flight or waiting, gets a new
 * id (answers to the old ones are no longer recognised:
 * ferry_blockwin_lookup() fails, so a late copy counts for nothing) and is
 * due now, lowest block first as ever, as far as the window lets it; its
 * timer starts afresh: no back-off carried over from the dead path, and the
 * next answer is a first-try RTT sample. A backoff hold ends (as
 * ferry_blockwin_kick()); a Max-Age hold the gateway set stays. Not a loss:
 * the window and the RTO estimates are kept (the gateway and the route to
 * it are the same; only the mapping changed). Returns how many requests
 * are due again. */
unsigned ferry_blockwin_new_path(struct ferry_blockwin *w, uint64_t now);

/* The gateway serves blocks 2^shift times smaller than asked: every index
 * is multiplied by 2^shift, nblocks becomes new_nblocks. Blocks known to be
 * in stay in (as far as the bitmap reaches); requests in flight now stand
 * for the first small block of their old block, which the answers to them
 * carry. */
void ferry_blockwin_split(struct ferry_blockwin *w, unsigned shift, uint64_t new_nblocks);

bool ferry_blockwin_has(const struct ferry_blockwin *w, uint64_t block);
bool ferry_blockwin_done(const struct ferry_blockwin *w);
uint64_t ferry_blockwin_base(const struct ferry_blockwin *w);     /* first missing block */
uint64_t ferry_blockwin_received(const struct ferry_blockwin *w); /* blocks in */
/* The bitmap of the blocks after base that are in, for a checkpoint. */
void ferry_blockwin_bitmap(const struct ferry_blockwin *w,
                           uint8_t out[FERRY_BLOCKWIN_BITMAP_BYTES]);

/* For tests, logs and benchmarks. */
uint32_t ferry_blockwin_rto_ms(const struct ferry_blockwin *w);
unsigned ferry_blockwin_cwnd(const struct ferry_blockwin *w); /* whole requests, >= 1 */
unsigned ferry_blockwin_inflight(const struct ferry_blockwin *w);

#endif
