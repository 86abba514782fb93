#include "ferry_blockwin.h"

#include <string.h>

#define FP             256 /* window fixed point: 1/256 of a request */
#define K_STRONG       4
#define K_WEAK         1
#define WEAK_MAX       3      /* transmissions a weak RTT sample may have taken */
#define SAMPLE_CAP     240000 /* ms; longer samples count as this (no overflow) */
#define SMALL_RTO      1000   /* CoCoA's thresholds for back-off and aging */
#define LARGE_RTO      3000
#define AGED_RTO       2000
#define BAD_SHIFT_CAP  10
#define GRANULARITY_MS 10 /* RFC 6298's G: the variance term never vanishes */

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rnd(struct ferry_blockwin *w)
{
    return ferry_prng_next(&w->rng);
}

static uint32_t clamp_rto(uint64_t ms)
{
    if (ms < FERRY_BLOCKWIN_MIN_RTO_MS)
        return FERRY_BLOCKWIN_MIN_RTO_MS;
    if (ms > FERRY_BLOCKWIN_MAX_RTO_MS)
        return FERRY_BLOCKWIN_MAX_RTO_MS;
    return (uint32_t)ms;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static bool bit(const struct ferry_blockwin *w, uint64_t i)
{
    return (w->bits[i / 64] >> (i % 64)) & 1;
}

static void set_bit(struct ferry_blockwin *w, uint64_t i)
{
    w->bits[i / 64] |= UINT64_C(1) << (i % 64);
}

/* Drops the first k bits: bit i becomes bit i - k. */
static void shift_bits(struct ferry_blockwin *w, unsigned k)
{
    const unsigned nw = FERRY_BLOCKWIN_SPAN / 64;
    if (k >= FERRY_BLOCKWIN_SPAN) {
        memset(w->bits, 0, sizeof(w->bits));
        return;
    }
    unsigned words = k / 64, rest = k % 64;
    for (unsigned i = 0; i < nw; i++) {
        uint64_t lo = i + words < nw ? w->bits[i + words] : 0;
        uint64_t hi = i + words + 1 < nw ? w->bits[i + words + 1] : 0;
        w->bits[i] = rest ? (lo >> rest) | (hi << (64 - rest)) : lo;
    }
}

static unsigned popcount(const struct ferry_blockwin *w)
{
    unsigned n = 0;
    for (unsigned i = 0; i < FERRY_BLOCKWIN_SPAN / 64; i++)
        n += (unsigned)__builtin_popcountll(w->bits[i]);
    return n;
}

/* Moves base past the blocks that are in. */
static void advance_base(struct ferry_blockwin *w)
{
    unsigned k = 0;
    while (k < FERRY_BLOCKWIN_SPAN && w->base + k < w->nblocks && bit(w, k))
        k++;
    if (k) {
        shift_bits(w, k);
        w->base += k;
    }
}

static struct ferry_blockwin_entry *entry_of(struct ferry_blockwin *w, uint32_t req)
{
    for (unsigned i = 0; i < w->n; i++) {
        if (w->e[i].req == req)
            return &w->e[i];
    }
    return NULL;
}

/* A request id never used in this window's life (0 is never one). */
static uint32_t new_req(struct ferry_blockwin *w)
{
    uint32_t req = w->next_req++;
    if (w->next_req == 0)
        w->next_req = 1;
    return req;
}

static bool in_table(const struct ferry_blockwin *w, uint64_t block)
{
    for (unsigned i = 0; i < w->n; i++) {
        if (w->e[i].block == block)
            return true;
    }
    return false;
}

static void drop_entry(struct ferry_blockwin *w, struct ferry_blockwin_entry *e)
{
    if (e->inflight)
        w->inflight--;
    *e = w->e[--w->n];
}

static unsigned cwnd_whole(const struct ferry_blockwin *w)
{
    unsigned c = w->cwnd / FP;
    return c ? c : 1;
}

/* The next new block to ask for, or false: the lowest block from next_new
 * on that is neither in nor asked for, within the span; the last block
 * only with the final window (no more blocks missing than may be out). */
static bool candidate(const struct ferry_blockwin *w, uint64_t *out)
{
    uint64_t limit = min_u64(w->nblocks, w->base + FERRY_BLOCKWIN_SPAN);
    uint64_t b = max_u64(w->next_new, w->base);
    while (b < limit && (ferry_blockwin_has(w, b) || in_table(w, b)))
        b++;
    if (b >= limit)
        return false;
    if (b == w->nblocks - 1 && w->nblocks - w->received > cwnd_whole(w))
        return false;
    *out = b;
    return true;
}

/* ---- CoCoA ------------------------------------------------------------------ */

/* RFC 6298's estimator on one sample; returns SRTT + k * RTTVAR in ms. */
static uint64_t estimate(struct ferry_blockwin_est *e, uint64_t sample_ms, unsigned k)
{
    uint32_t r16 = (uint32_t)(min_u64(sample_ms, SAMPLE_CAP) * 16);
    if (!e->valid) {
        e->valid = true;
        e->srtt16 = r16;
        e->rttvar16 = r16 / 2;
    } else {
        uint32_t diff = e->srtt16 > r16 ? e->srtt16 - r16 : r16 - e->srtt16;
        e->rttvar16 = e->rttvar16 - e->rttvar16 / 4 + diff / 4;
        e->srtt16 = e->srtt16 - e->srtt16 / 8 + r16 / 8;
    }
    uint64_t var = (uint64_t)k * e->rttvar16 / 16;
    return e->srtt16 / 16 + (var > GRANULARITY_MS ? var : GRANULARITY_MS);
}

static void measured(struct ferry_blockwin *w, uint64_t sample_ms, bool strong, uint64_t now)
{
    if (strong) {
        uint64_t x = estimate(&w->strong, sample_ms, K_STRONG);
        w->rto_ms = clamp_rto(w->rto_ms / 2 + x / 2);
    } else {
        uint64_t x = estimate(&w->weak, sample_ms, K_WEAK);
        w->rto_ms = clamp_rto(((uint64_t)w->rto_ms * 3 + x) / 4);
    }
    w->rto_updated_ms = now;
}

/* An estimate nobody refreshed drifts back towards CoAP's default. */
static void age(struct ferry_blockwin *w, uint64_t now)
{
    uint64_t idle = now > w->rto_updated_ms ? now - w->rto_updated_ms : 0;
    if (w->rto_ms < SMALL_RTO && idle >= 16 * (uint64_t)w->rto_ms) {
        w->rto_ms = clamp_rto(min_u64(2 * (uint64_t)w->rto_ms, SMALL_RTO));
        w->rto_updated_ms = now;
    } else if (w->rto_ms > LARGE_RTO && idle >= 4 * (uint64_t)w->rto_ms) {
        w->rto_ms = clamp_rto((AGED_RTO + (uint64_t)w->rto_ms) / 2);
        w->rto_updated_ms = now;
    }
}

/* CoCoA's variable back-off factor. */
static uint32_t backed_off(uint32_t t)
{
    uint64_t next = t < SMALL_RTO ? (uint64_t)t * 3 : t > LARGE_RTO ? (uint64_t)t * 3 / 2 : 2 * t;
    return clamp_rto(next);
}

static void transmit(struct ferry_blockwin *w, struct ferry_blockwin_entry *e, uint64_t now)
{
    age(w, now);
    uint32_t t;
    if (e->timeout_ms == 0) {
        t = clamp_rto(w->rto_ms + rnd(w) % (w->rto_ms / 2 + 1));
        e->first_ms = now;
        e->queued_ms = 0;
        e->tries = 0;
    } else {
        /* Waiting for room in a shrunken window is no part of the round
         * trip a weak sample measures. */
        bool alive = e->answers_at != w->answers ||
                     (w->answers && now - w->last_answer_ms < 2 * (uint64_t)w->rto_ms);
        t = alive ? clamp_rto(w->rto_ms + rnd(w) % (w->rto_ms / 2 + 1)) : backed_off(e->timeout_ms);
        e->queued_ms += now > e->at_ms ? now - e->at_ms : 0;
    }
    e->timeout_ms = t;
    if (e->tries < UINT16_MAX)
        e->tries++;
    e->tx = w->next_tx++;
    e->answers_at = w->answers;
    e->inflight = true;
    e->at_ms = now + t;
    w->inflight++;
}

/* ---- the interface ------------------------------------------------------------ */

void ferry_blockwin_init(struct ferry_blockwin *w, unsigned max_window, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    if (max_window < 1)
        max_window = 1;
    if (max_window > FERRY_BLOCKWIN_MAX)
        max_window = FERRY_BLOCKWIN_MAX;
    w->max_window = max_window;
    w->floor = (max_window < FERRY_BLOCKWIN_FLOOR ? max_window : FERRY_BLOCKWIN_FLOOR) * FP;
    w->cwnd = (max_window < FERRY_BLOCKWIN_INITIAL ? max_window : FERRY_BLOCKWIN_INITIAL) * FP;
    w->ssthresh = max_window * FP;
    w->rto_ms = FERRY_BLOCKWIN_INITIAL_RTO_MS;
    w->next_req = 1;
    w->next_tx = 1;
    ferry_prng_seed(&w->rng, seed);
}

void ferry_blockwin_begin(struct ferry_blockwin *w, uint64_t nblocks, uint64_t base,
                          const uint8_t have[FERRY_BLOCKWIN_BITMAP_BYTES])
{
    w->nblocks = nblocks;
    w->base = min_u64(base, nblocks);
    memset(w->bits, 0, sizeof(w->bits));
    for (unsigned i = 0; have && i < FERRY_BLOCKWIN_SPAN && w->base + i < nblocks; i++) {
        if ((have[i / 8] >> (i % 8)) & 1)
            set_bit(w, i);
    }
    w->received = w->base + popcount(w);
    advance_base(w);
    w->next_new = w->base;
    w->n = 0;
    w->inflight = 0;
    w->hold_until = 0;
    w->hold_is_backoff = false;
}

bool ferry_blockwin_next(struct ferry_blockwin *w, uint64_t now, struct ferry_blockwin_send *out)
{
    if (w->nblocks == 0 || now < w->hold_until || w->inflight >= cwnd_whole(w))
        return false;
    struct ferry_blockwin_entry *e = NULL;
    for (unsigned i = 0; i < w->n; i++) {
        struct ferry_blockwin_entry *c = &w->e[i];
        if (!c->inflight && c->at_ms <= now && (!e || c->block < e->block))
            e = c;
    }
    if (!e) {
        uint64_t b;
        if (w->n >= FERRY_BLOCKWIN_MAX || !candidate(w, &b))
            return false;
        e = &w->e[w->n++];
        memset(e, 0, sizeof(*e));
        e->block = b;
        e->req = new_req(w);
        w->next_new = b + 1;
    }
    transmit(w, e, now);
    out->block = e->block;
    out->req = e->req;
    out->tries = e->tries;
    return true;
}

uint64_t ferry_blockwin_due(const struct ferry_blockwin *w, uint64_t now)
{
    if (w->nblocks == 0)
        return FERRY_BLOCKWIN_NEVER;
    uint64_t due = FERRY_BLOCKWIN_NEVER;
    for (unsigned i = 0; i < w->n; i++) {
        if (w->e[i].inflight)
            due = min_u64(due, w->e[i].at_ms);
    }
    if (w->inflight >= cwnd_whole(w))
        return due;
    for (unsigned i = 0; i < w->n; i++) {
        if (!w->e[i].inflight)
            due = min_u64(due, max_u64(w->e[i].at_ms, w->hold_until));
    }
    uint64_t b;
    if (w->n < FERRY_BLOCKWIN_MAX && candidate(w, &b))
        due = min_u64(due, max_u64(now, w->hold_until));
    return due;
}

unsigned ferry_blockwin_expire(struct ferry_blockwin *w, uint64_t now)
{
    unsigned lost = 0;
    for (unsigned i = 0; i < w->n; i++) {
        struct ferry_blockwin_entry *e = &w->e[i];
        if (!e->inflight || e->at_ms > now)
            continue;
        e->inflight = false;
        e->at_ms = now;
        w->inflight--;
        lost++;
        if (e->tx >= w->recover_tx) {
            /* One decrease per round trip: requests sent before it were
             * sent into the same congestion. */
            w->ssthresh = w->cwnd / 2 > w->floor ? w->cwnd / 2 : w->floor;
            w->cwnd = w->ssthresh;
            w->recover_tx = w->next_tx;
        }
    }
    return lost;
}

bool ferry_blockwin_lookup(const struct ferry_blockwin *w, uint32_t req, uint64_t *block)
{
    for (unsigned i = 0; i < w->n; i++) {
        if (w->e[i].req == req) {
            *block = w->e[i].block;
            return true;
        }
    }
    return false;
}

void ferry_blockwin_got(struct ferry_blockwin *w, uint32_t req, uint64_t now)
{
    struct ferry_blockwin_entry *e = entry_of(w, req);
    if (!e)
        return;
    uint64_t since = now > e->first_ms ? now - e->first_ms : 0;
    uint64_t rtt = since > e->queued_ms ? since - e->queued_ms : 0;
    if (e->tries == 1)
        measured(w, rtt, true, now);
    else if (e->tries <= WEAK_MAX)
        measured(w, rtt, false, now);
    uint64_t b = e->block;
    drop_entry(w, e);
    w->answers++;
    w->last_answer_ms = now;
    if (b >= w->base && b - w->base < FERRY_BLOCKWIN_SPAN && !bit(w, b - w->base)) {
        set_bit(w, b - w->base);
        w->received++;
        advance_base(w);
    }
    uint32_t step = FP;
    if (w->cwnd >= w->ssthresh)
        step = FP * FP / w->cwnd ? FP * FP / w->cwnd : 1; /* one per window */
    w->cwnd += step;
    if (w->cwnd > w->max_window * FP)
        w->cwnd = w->max_window * FP;
}

unsigned ferry_blockwin_retry(struct ferry_blockwin *w, uint32_t req, uint64_t now)
{
    struct ferry_blockwin_entry *e = entry_of(w, req);
    if (!e)
        return 0;
    if (e->inflight) {
        e->inflight = false;
        w->inflight--;
    }
    if (e->bad < UINT16_MAX)
        e->bad++;
    unsigned shift = e->bad < BAD_SHIFT_CAP ? e->bad : BAD_SHIFT_CAP;
    e->timeout_ms = 0;
    e->tries = 0; /* a late answer to it measures nothing */
    e->at_ms = now + clamp_rto((uint64_t)w->rto_ms << shift);
    return e->bad;
}

void ferry_blockwin_hold(struct ferry_blockwin *w, uint32_t req, uint64_t now, uint64_t until,
                         bool backoff)
{
    struct ferry_blockwin_entry *e = entry_of(w, req);
    if (e) {
        if (e->inflight) {
            e->inflight = false;
            w->inflight--;
        }
        e->timeout_ms = 0;
        e->tries = 0;
        e->at_ms = 0;
    }
    if (until > w->hold_until) {
        /* A backoff that extends a Max-Age still may not be cut short. */
        w->hold_is_backoff = backoff && (w->hold_until <= now || w->hold_is_backoff);
        w->hold_until = until;
    }
}

bool ferry_blockwin_holding(const struct ferry_blockwin *w, uint64_t now)
{
    return now < w->hold_until;
}

void ferry_blockwin_kick(struct ferry_blockwin *w, uint64_t now)
{
    if (w->hold_is_backoff && w->hold_until > now)
        w->hold_until = now;
    for (unsigned i = 0; i < w->n; i++) {
        if (!w->e[i].inflight && w->e[i].at_ms > now)
            w->e[i].at_ms = now;
    }
}

unsigned ferry_blockwin_new_path(struct ferry_blockwin *w, uint64_t now)
{
    if (w->hold_is_backoff && w->hold_until > now)
        w->hold_until = now;
    for (unsigned i = 0; i < w->n; i++) {
        struct ferry_blockwin_entry *e = &w->e[i];
        if (e->inflight) {
            e->inflight = false;
            w->inflight--;
        }
        e->req = new_req(w);
        e->timeout_ms = 0;
        e->tries = 0;
        e->at_ms = now;
    }
    return w->n;
}

void ferry_blockwin_split(struct ferry_blockwin *w, unsigned shift, uint64_t new_nblocks)
{
    if (shift == 0 || shift >= 32)
        return;
    uint64_t old[FERRY_BLOCKWIN_SPAN / 64];
    memcpy(old, w->bits, sizeof(old));
    memset(w->bits, 0, sizeof(w->bits));
    for (unsigned j = 0; j < FERRY_BLOCKWIN_SPAN; j++) {
        unsigned i = j >> shift;
        if ((old[i / 64] >> (i % 64)) & 1)
            set_bit(w, j);
    }
    w->nblocks = new_nblocks;
    w->base = min_u64(w->base << shift, new_nblocks);
    for (unsigned i = 0; i < w->n; i++)
        w->e[i].block <<= shift;
    w->received = w->base + popcount(w);
    advance_base(w);
    w->next_new = w->base;
}

bool ferry_blockwin_has(const struct ferry_blockwin *w, uint64_t block)
{
    if (block < w->base)
        return true;
    if (block - w->base >= FERRY_BLOCKWIN_SPAN)
        return false;
    return bit(w, block - w->base);
}

bool ferry_blockwin_done(const struct ferry_blockwin *w)
{
    return w->nblocks > 0 && w->base >= w->nblocks;
}

uint64_t ferry_blockwin_base(const struct ferry_blockwin *w)
{
    return w->base;
}

uint64_t ferry_blockwin_received(const struct ferry_blockwin *w)
{
    return w->received;
}

void ferry_blockwin_bitmap(const struct ferry_blockwin *w, uint8_t out[FERRY_BLOCKWIN_BITMAP_BYTES])
{
    memset(out, 0, FERRY_BLOCKWIN_BITMAP_BYTES);
    for (unsigned i = 0; i < FERRY_BLOCKWIN_SPAN; i++) {
        if (bit(w, i))
            out[i / 8] |= (uint8_t)(1u << (i % 8));
    }
}

uint32_t ferry_blockwin_rto_ms(const struct ferry_blockwin *w)
{
    return w->rto_ms;
}

unsigned ferry_blockwin_cwnd(const struct ferry_blockwin *w)
{
    return cwnd_whole(w);
}

unsigned ferry_blockwin_inflight(const struct ferry_blockwin *w)
{
    return w->inflight;
}
