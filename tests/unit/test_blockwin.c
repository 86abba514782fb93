/* The download window (ferry_blockwin.h) on a simulated link: requests and
 * answers travel as timed events with delay, jitter, loss, duplication and
 * reordering drawn from a seeded PRNG, and a gateway that answers every
 * request it receives (or none). Time is simulated, so hours of a silent
 * gateway take microseconds. */
#include "cunit_main.h"

#include "ferry_blockwin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 8192
#define MAX_STEPS  10000000

enum ev_kind { EV_AT_GATEWAY, EV_AT_NODE };

struct ev {
    uint64_t at;
    enum ev_kind kind;
    uint32_t req;
    uint64_t block;
};

struct link {
    unsigned loss_up, loss_down, dup, reorder; /* percent */
    uint64_t delay_ms, jitter_ms;              /* one way */
    bool silent;                               /* the gateway never answers */
    uint64_t drop_block; /* answers for this block are lost; UINT64_MAX: none */
};

struct sim {
    struct ferry_blockwin w;
    struct link l;
    uint64_t now;
    uint64_t rng;
    struct ev q[MAX_EVENTS];
    size_t nq;
    uint64_t nblocks;
    unsigned *sends;  /* per block */
    unsigned *losses; /* per block: datagrams of its exchanges lost */
    uint64_t answers, stale;
    unsigned max_inflight;
    uint64_t max_block_ahead; /* highest block asked minus base at that time */
};

static uint64_t sim_rnd(struct sim *s)
{
    uint64_t z = (s->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static bool chance(struct sim *s, unsigned pct)
{
    return pct && sim_rnd(s) % 100 < pct;
}

static void sim_init(struct sim *s, uint64_t nblocks, const struct link *l, unsigned max_window,
                     uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->l = *l;
    s->rng = seed;
    s->now = 1000000;
    s->nblocks = nblocks;
    s->sends = calloc(nblocks, sizeof(unsigned));
    s->losses = calloc(nblocks, sizeof(unsigned));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->sends);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->losses);
    ferry_blockwin_init(&s->w, max_window, seed * 7 + 1);
    ferry_blockwin_begin(&s->w, nblocks, 0, NULL);
}

static void sim_free(struct sim *s)
{
    free(s->sends);
    free(s->losses);
}

static void push(struct sim *s, enum ev_kind kind, uint32_t req, uint64_t block, uint64_t extra)
{
    CU_ASSERT_FATAL(s->nq < MAX_EVENTS);
    /* As ferry-udp-proxy does it: a reordered datagram waits past the
     * longest ordinary delay, so later ones overtake it. */
    uint64_t jitter = s->l.jitter_ms ? sim_rnd(s) % (s->l.jitter_ms + 1) : 0;
    if (chance(s, s->l.reorder))
        jitter = s->l.jitter_ms + 10 + sim_rnd(s) % 11;
    s->q[s->nq++] = (struct ev){s->now + s->l.delay_ms + jitter + extra, kind, req, block};
}

/* One datagram into the link: lost, or delivered once or twice. */
static void send_dgram(struct sim *s, enum ev_kind kind, uint32_t req, uint64_t block)
{
    if (chance(s, kind == EV_AT_GATEWAY ? s->l.loss_up : s->l.loss_down)) {
        s->losses[block]++;
        return;
    }
    push(s, kind, req, block, 0);
    if (chance(s, s->l.dup))
        push(s, kind, req, block, 0);
}

/* Index of the earliest event (answers first on a tie), or nq. */
static size_t earliest(const struct sim *s)
{
    size_t best = s->nq;
    for (size_t i = 0; i < s->nq; i++) {
        if (best == s->nq || s->q[i].at < s->q[best].at ||
            (s->q[i].at == s->q[best].at && s->q[i].kind == EV_AT_NODE))
            best = i;
    }
    return best;
}

static void send_all(struct sim *s)
{
    struct ferry_blockwin_send snd;
    while (ferry_blockwin_next(&s->w, s->now, &snd)) {
        CU_ASSERT_FATAL(snd.block < s->nblocks);
        CU_ASSERT(snd.req != 0);
        s->sends[snd.block]++;
        uint64_t ahead = snd.block - ferry_blockwin_base(&s->w);
        if (ahead > s->max_block_ahead)
            s->max_block_ahead = ahead;
        send_dgram(s, EV_AT_GATEWAY, snd.req, snd.block);
    }
    if (ferry_blockwin_inflight(&s->w) > s->max_inflight)
        s->max_inflight = ferry_blockwin_inflight(&s->w);
    CU_ASSERT(ferry_blockwin_inflight(&s->w) <= FERRY_BLOCKWIN_MAX);
}

static void deliver(struct sim *s, const struct ev *e)
{
    if (e->kind == EV_AT_GATEWAY) {
        if (!s->l.silent && e->block != s->l.drop_block)
            send_dgram(s, EV_AT_NODE, e->req, e->block);
        return;
    }
    uint64_t block;
    if (!ferry_blockwin_lookup(&s->w, e->req, &block)) {
        s->stale++; /* a duplicate, or the answer to a request already done */
        return;
    }
    CU_ASSERT_EQUAL(block, e->block);
    s->answers++;
    ferry_blockwin_got(&s->w, e->req, s->now);
}

/* Runs until the download is complete or `until` (simulated ms). Fails the
 * test if the window ever has nothing to wait for before it is done. */
static void run(struct sim *s, uint64_t until)
{
    for (long step = 0; step < MAX_STEPS && !ferry_blockwin_done(&s->w); step++) {
        send_all(s);
        uint64_t due = ferry_blockwin_due(&s->w, s->now);
        size_t i = earliest(s);
        if (due == FERRY_BLOCKWIN_NEVER && i == s->nq) {
            CU_FAIL("the window stalled: nothing in flight, nothing due");
            return;
        }
        uint64_t t = i < s->nq && s->q[i].at <= due ? s->q[i].at : due;
        if (t > until)
            return;
        if (t > s->now)
            s->now = t;
        if (i < s->nq && s->q[i].at <= due) {
            struct ev e = s->q[i];
            s->q[i] = s->q[--s->nq];
            deliver(s, &e);
        } else {
            ferry_blockwin_expire(&s->w, s->now);
        }
    }
}

static unsigned total_sends(const struct sim *s)
{
    unsigned n = 0;
    for (uint64_t b = 0; b < s->nblocks; b++)
        n += s->sends[b];
    return n;
}

/* Lockstep as CoAP does it by default (NSTART 1, ACK_TIMEOUT 2 s times a
 * random 1..1.5, doubling), over the same kind of link: the time it needs. */
static uint64_t lockstep_ms(uint64_t nblocks, const struct link *l, uint64_t seed)
{
    struct sim s;
    memset(&s, 0, sizeof(s));
    s.rng = seed;
    uint64_t t = 0;
    for (uint64_t b = 0; b < nblocks; b++) {
        uint64_t timeout = 2000 + sim_rnd(&s) % 1001;
        for (;;) {
            bool lost = chance(&s, l->loss_up) || chance(&s, l->loss_down);
            if (!lost) {
                t += 2 * l->delay_ms;
                break;
            }
            t += timeout;
            timeout *= 2;
        }
    }
    return t;
}

static const struct link clean_200ms = {.delay_ms = 100, .drop_block = UINT64_MAX};

/* ---- tests ------------------------------------------------------------------ */

static void clean_link_asks_each_block_once_and_fills_the_window(void)
{
    struct sim s;
    sim_init(&s, 1024, &clean_200ms, FERRY_BLOCKWIN_MAX, 1);
    uint64_t t0 = s.now;
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    CU_ASSERT_EQUAL(total_sends(&s), 1024);
    CU_ASSERT_EQUAL(ferry_blockwin_received(&s.w), 1024);
    CU_ASSERT_EQUAL(s.max_inflight, FERRY_BLOCKWIN_MAX);
    CU_ASSERT_EQUAL(ferry_blockwin_cwnd(&s.w), FERRY_BLOCKWIN_MAX);
    uint64_t took = s.now - t0;
    /* Lockstep needs 1024 round trips of 200 ms. */
    CU_ASSERT(took * 8 < 1024 * 200);
    /* The strong estimator learned the 200 ms round trip. */
    CU_ASSERT(ferry_blockwin_rto_ms(&s.w) >= 200 && ferry_blockwin_rto_ms(&s.w) < 400);
    sim_free(&s);
}

static void window_starts_small_and_doubles_per_round_trip(void)
{
    struct sim s;
    sim_init(&s, 4096, &clean_200ms, FERRY_BLOCKWIN_MAX, 2);
    send_all(&s);
    CU_ASSERT_EQUAL(ferry_blockwin_inflight(&s.w), FERRY_BLOCKWIN_INITIAL);
    run(&s, s.now + 200);
    send_all(&s);
    CU_ASSERT_EQUAL(ferry_blockwin_inflight(&s.w), 2 * FERRY_BLOCKWIN_INITIAL);
    run(&s, s.now + 200);
    send_all(&s);
    CU_ASSERT_EQUAL(ferry_blockwin_inflight(&s.w), 4 * FERRY_BLOCKWIN_INITIAL);
    sim_free(&s);
}

static void lockstep_window_of_one_never_has_two_out(void)
{
    struct link l = clean_200ms;
    l.loss_up = l.loss_down = 10;
    struct sim s;
    sim_init(&s, 200, &l, 1, 3);
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    CU_ASSERT_EQUAL(s.max_inflight, 1);
    sim_free(&s);
}

static void reordering_and_duplicates_cost_no_request(void)
{
    struct link l = {
        .delay_ms = 20, .jitter_ms = 10, .dup = 10, .reorder = 10, .drop_block = UINT64_MAX};
    struct sim s;
    sim_init(&s, 2048, &l, FERRY_BLOCKWIN_MAX, 4);
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    CU_ASSERT_EQUAL(s.answers, 2048);
    CU_ASSERT(s.stale > 0); /* the duplicates were recognised and ignored */
    unsigned twice = 0;
    for (uint64_t b = 0; b < s.nblocks; b++)
        twice += s.sends[b] > 1;
    /* Reordering holds an answer up to 30 ms past the 40..60 ms round trip;
     * the timer must have learned that. */
    CU_ASSERT_EQUAL(twice, 0);
    sim_free(&s);
}

/* Every block asked for again had a datagram of its exchange lost: the
 * window retransmits for a reason only. */
static void check_losses_explain_retransmissions(const struct sim *s)
{
    unsigned unexplained = 0;
    for (uint64_t b = 0; b < s->nblocks; b++)
        unexplained += s->sends[b] - 1 > s->losses[b];
    CU_ASSERT_EQUAL(unexplained, 0);
}

static void loss_patterns_complete_and_beat_lockstep(void)
{
    static const unsigned loss[] = {5, 10, 20, 30};
    for (size_t i = 0; i < sizeof(loss) / sizeof(loss[0]); i++) {
        struct link l = clean_200ms;
        l.loss_up = l.loss_down = loss[i];
        struct sim s;
        sim_init(&s, 512, &l, FERRY_BLOCKWIN_MAX, 10 + i);
        uint64_t t0 = s.now;
        run(&s, UINT64_MAX);
        CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
        check_losses_explain_retransmissions(&s);
        uint64_t took = s.now - t0, base = lockstep_ms(512, &l, 10 + i);
        printf("\n    loss %u%% each way: %llu ms against %llu ms lockstep, window %u, rto %u ms",
               loss[i], (unsigned long long)took, (unsigned long long)base,
               ferry_blockwin_cwnd(&s.w), ferry_blockwin_rto_ms(&s.w));
        CU_ASSERT(took * 2 < base);
        sim_free(&s);
    }
}

static void burst_loss_halves_the_window_once(void)
{
    struct sim s;
    sim_init(&s, 4096, &clean_200ms, FERRY_BLOCKWIN_MAX, 5);
    run(&s, s.now + 3000); /* grown to the maximum */
    CU_ASSERT_EQUAL_FATAL(ferry_blockwin_cwnd(&s.w), FERRY_BLOCKWIN_MAX);
    /* Everything in the link now is lost: one loss event. */
    s.nq = 0;
    uint64_t out = ferry_blockwin_inflight(&s.w);
    CU_ASSERT(out > 1);
    s.now += 60000;
    CU_ASSERT_EQUAL(ferry_blockwin_expire(&s.w, s.now), out);
    CU_ASSERT_EQUAL(ferry_blockwin_cwnd(&s.w), FERRY_BLOCKWIN_MAX / 2);
    /* The next loss, of a request sent after the decrease, halves again. */
    struct ferry_blockwin_send snd;
    CU_ASSERT_TRUE(ferry_blockwin_next(&s.w, s.now, &snd));
    s.now += 60000;
    CU_ASSERT(ferry_blockwin_expire(&s.w, s.now) >= 1);
    CU_ASSERT_EQUAL(ferry_blockwin_cwnd(&s.w), FERRY_BLOCKWIN_MAX / 4);
    sim_free(&s);
}

static void silent_gateway_backs_off_to_the_floor(void)
{
    struct link l = clean_200ms;
    l.silent = true;
    struct sim s;
    sim_init(&s, 64, &l, FERRY_BLOCKWIN_MAX, 6);
    uint64_t t0 = s.now;
    run(&s, t0 + 3600 * 1000); /* an hour */
    CU_ASSERT_FALSE(ferry_blockwin_done(&s.w));
    CU_ASSERT_EQUAL(ferry_blockwin_cwnd(&s.w), FERRY_BLOCKWIN_FLOOR);
    CU_ASSERT_EQUAL(ferry_blockwin_inflight(&s.w), FERRY_BLOCKWIN_FLOOR);
    /* Backed off to the cap: about one request a minute each, never none. */
    unsigned n = total_sends(&s);
    CU_ASSERT(n > 60 * FERRY_BLOCKWIN_FLOOR && n < 120 * FERRY_BLOCKWIN_FLOOR);
    uint64_t due = ferry_blockwin_due(&s.w, s.now);
    CU_ASSERT(due != FERRY_BLOCKWIN_NEVER && due - s.now <= FERRY_BLOCKWIN_MAX_RTO_MS);
    /* The gateway comes back: the download completes. */
    s.l.silent = false;
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    sim_free(&s);
}

static void requests_stay_within_the_span_of_a_hole(void)
{
    struct link l = clean_200ms;
    l.drop_block = 3; /* its answers never arrive */
    struct sim s;
    sim_init(&s, 4096, &l, FERRY_BLOCKWIN_MAX, 7);
    run(&s, s.now + 600 * 1000);
    CU_ASSERT_EQUAL(ferry_blockwin_base(&s.w), 3);
    CU_ASSERT_EQUAL(ferry_blockwin_received(&s.w), FERRY_BLOCKWIN_SPAN - 1 + 3);
    CU_ASSERT(s.max_block_ahead < FERRY_BLOCKWIN_SPAN);
    CU_ASSERT_FALSE(ferry_blockwin_has(&s.w, 3 + FERRY_BLOCKWIN_SPAN));
    /* Only block 3 is still asked for. */
    CU_ASSERT_EQUAL(ferry_blockwin_inflight(&s.w), 1);
    s.l.drop_block = UINT64_MAX;
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    sim_free(&s);
}

static void last_block_goes_with_the_final_window(void)
{
    struct sim s;
    sim_init(&s, 100, &clean_200ms, FERRY_BLOCKWIN_MAX, 8);
    struct ferry_blockwin_send snd;
    /* Answer everything at once; when the last block goes out, no more
     * blocks may be missing than the window holds. */
    for (int round = 0; round < 1000 && !ferry_blockwin_done(&s.w); round++) {
        uint32_t reqs[FERRY_BLOCKWIN_MAX];
        unsigned n = 0;
        while (ferry_blockwin_next(&s.w, s.now, &snd)) {
            if (snd.block == 99)
                CU_ASSERT(100 - ferry_blockwin_received(&s.w) <= ferry_blockwin_cwnd(&s.w));
            reqs[n++] = snd.req;
        }
        s.now += 100;
        for (unsigned i = 0; i < n; i++)
            ferry_blockwin_got(&s.w, reqs[i], s.now);
    }
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    sim_free(&s);
}

static void a_single_block_artifact_is_asked_for(void)
{
    struct sim s;
    sim_init(&s, 1, &clean_200ms, FERRY_BLOCKWIN_MAX, 9);
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    CU_ASSERT_EQUAL(total_sends(&s), 1);
    sim_free(&s);
}

static void resume_skips_the_blocks_already_in(void)
{
    uint8_t have[FERRY_BLOCKWIN_BITMAP_BYTES] = {0};
    have[0] = 0x0a; /* base + 1 and base + 3 */
    have[2] = 0x01; /* base + 16 */
    struct sim s;
    sim_init(&s, 64, &clean_200ms, FERRY_BLOCKWIN_MAX, 11);
    ferry_blockwin_begin(&s.w, 64, 20, have);
    CU_ASSERT_EQUAL(ferry_blockwin_base(&s.w), 20);
    CU_ASSERT_EQUAL(ferry_blockwin_received(&s.w), 23);
    CU_ASSERT_TRUE(ferry_blockwin_has(&s.w, 21));
    CU_ASSERT_TRUE(ferry_blockwin_has(&s.w, 36));
    CU_ASSERT_FALSE(ferry_blockwin_has(&s.w, 22));
    uint8_t back[FERRY_BLOCKWIN_BITMAP_BYTES];
    ferry_blockwin_bitmap(&s.w, back);
    CU_ASSERT_EQUAL(memcmp(back, have, sizeof(have)), 0);
    run(&s, UINT64_MAX);
    CU_ASSERT_TRUE(ferry_blockwin_done(&s.w));
    for (uint64_t b = 0; b < 64; b++) {
        bool had = b < 20 || b == 21 || b == 23 || b == 36;
        CU_ASSERT_EQUAL(s.sends[b], had ? 0u : 1u);
    }
    /* A bitmap whose first bit is set moves the base at once. */
    memset(have, 0, sizeof(have));
    have[0] = 0x07;
    ferry_blockwin_begin(&s.w, 64, 10, have);
    CU_ASSERT_EQUAL(ferry_blockwin_base(&s.w), 13);
    sim_free(&s);
}

static void wrong_answers_back_off_and_count(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 4, 12);
    ferry_blockwin_begin(&w, 10, 0, NULL);
    uint64_t now = 5000;
    struct ferry_blockwin_send a, b;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &a));
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &b));
    uint32_t rto = ferry_blockwin_rto_ms(&w);
    CU_ASSERT_EQUAL(ferry_blockwin_retry(&w, a.req, now), 1);
    /* Not again before twice the RTO; the other block goes on. */
    uint64_t due = ferry_blockwin_due(&w, now);
    struct ferry_blockwin_send c;
    CU_ASSERT_TRUE(ferry_blockwin_next(&w, now, &c)); /* a new block, window has room */
    CU_ASSERT_NOT_EQUAL(c.block, a.block);
    CU_ASSERT(due <= now + 2 * rto);
    while (ferry_blockwin_next(&w, now + 2 * rto - 1, &c))
        CU_ASSERT_NOT_EQUAL(c.block, a.block);
    uint64_t block;
    CU_ASSERT_TRUE(ferry_blockwin_lookup(&w, a.req, &block));
    CU_ASSERT_EQUAL(block, a.block);
    ferry_blockwin_expire(&w, now + 2 * rto);
    bool again = false;
    for (int i = 0; i < 8 && ferry_blockwin_next(&w, now + 2 * rto, &c); i++)
        again |= c.req == a.req && c.block == a.block;
    CU_ASSERT_TRUE(again);
    CU_ASSERT_EQUAL(ferry_blockwin_retry(&w, a.req, now + 2 * rto), 2);
    ferry_blockwin_got(&w, a.req, now + 3 * rto);
    CU_ASSERT_TRUE(ferry_blockwin_has(&w, a.block));
    CU_ASSERT_EQUAL(ferry_blockwin_retry(&w, a.req, now), 0); /* done: unknown now */
    CU_ASSERT_FALSE(ferry_blockwin_lookup(&w, a.req, &block));
}

static void holds_wait_and_only_a_backoff_is_cut_short(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 8, 13);
    ferry_blockwin_begin(&w, 10, 0, NULL);
    uint64_t now = 1000;
    struct ferry_blockwin_send a, b;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &a));
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &b));
    /* 5.03 Max-Age 10: nothing goes out for 10 s, not even on a kick. */
    ferry_blockwin_hold(&w, a.req, now, now + 10000, false);
    CU_ASSERT_EQUAL(ferry_blockwin_cwnd(&w), FERRY_BLOCKWIN_INITIAL); /* no loss */
    struct ferry_blockwin_send c;
    CU_ASSERT_FALSE(ferry_blockwin_next(&w, now + 9999, &c));
    ferry_blockwin_kick(&w, now + 5000);
    CU_ASSERT_FALSE(ferry_blockwin_next(&w, now + 9999, &c));
    CU_ASSERT_TRUE(ferry_blockwin_holding(&w, now + 9999));
    CU_ASSERT(ferry_blockwin_due(&w, now + 100) <= now + 10000);
    CU_ASSERT_TRUE(ferry_blockwin_next(&w, now + 10000, &c));
    CU_ASSERT_EQUAL(c.block, a.block);
    CU_ASSERT_EQUAL(c.req, a.req);
    CU_ASSERT_EQUAL(c.tries, 1); /* a fresh exchange: the wait is no round trip */
    /* A backoff of our own after a 5.00 ends when the release is offered again. */
    now += 20000;
    ferry_blockwin_hold(&w, c.req, now, now + 60000, true);
    CU_ASSERT_FALSE(ferry_blockwin_next(&w, now + 1, &c));
    ferry_blockwin_kick(&w, now + 1);
    CU_ASSERT_TRUE(ferry_blockwin_next(&w, now + 1, &c));
}

static void smaller_blocks_split_the_window(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 4, 14);
    ferry_blockwin_begin(&w, 10, 0, NULL); /* 10 blocks of 1024 */
    uint64_t now = 1000;
    struct ferry_blockwin_send s0, s1, s2;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s0));
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s1));
    ferry_blockwin_got(&w, s0.req, now + 10); /* block 0 in */
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now + 10, &s2));
    CU_ASSERT_EQUAL(s2.block, 2);
    /* The gateway answers 256-byte blocks: four per old one. */
    ferry_blockwin_split(&w, 2, 40);
    CU_ASSERT_EQUAL(ferry_blockwin_base(&w), 4);
    uint64_t b;
    CU_ASSERT_TRUE(ferry_blockwin_lookup(&w, s1.req, &b));
    CU_ASSERT_EQUAL(b, 4);
    CU_ASSERT_TRUE(ferry_blockwin_lookup(&w, s2.req, &b));
    CU_ASSERT_EQUAL(b, 8);
    ferry_blockwin_got(&w, s1.req, now + 20);
    /* Blocks 5..7 are asked for next, then on. */
    struct ferry_blockwin_send n;
    CU_ASSERT_TRUE(ferry_blockwin_next(&w, now + 20, &n));
    CU_ASSERT_EQUAL(n.block, 5);
    unsigned sent = 1;
    uint32_t reqs[64] = {n.req, s2.req};
    unsigned nreq = 2;
    while (!ferry_blockwin_done(&w) && sent < 200) {
        now += 10;
        for (unsigned i = 0; i < nreq; i++)
            ferry_blockwin_got(&w, reqs[i], now);
        nreq = 0;
        while (ferry_blockwin_next(&w, now, &n) && nreq < 64) {
            reqs[nreq++] = n.req;
            sent++;
        }
        if (nreq == 0)
            ferry_blockwin_expire(&w, now + 100000);
    }
    CU_ASSERT_TRUE(ferry_blockwin_done(&w));
    CU_ASSERT_EQUAL(ferry_blockwin_received(&w), 40);
}

static void cocoa_timer_learns_and_backs_off_variably(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 1, 15);
    ferry_blockwin_begin(&w, 1000, 0, NULL);
    CU_ASSERT_EQUAL(ferry_blockwin_rto_ms(&w), FERRY_BLOCKWIN_INITIAL_RTO_MS);
    uint64_t now = 100000;
    struct ferry_blockwin_send s;
    /* Strong samples of 600 ms pull the RTO towards 600 + 4 * RTTVAR. */
    for (int i = 0; i < 40; i++) {
        CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
        CU_ASSERT_EQUAL(s.tries, 1);
        now += 600;
        ferry_blockwin_got(&w, s.req, now);
    }
    uint32_t rto = ferry_blockwin_rto_ms(&w);
    CU_ASSERT(rto >= 600 && rto < 700);
    /* On a path silent for two RTOs (too short for aging), back-off below
     * 1 s is threefold; the first timeout is 1..1.5 RTO. */
    now += 2 * rto + 1;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
    uint64_t first = ferry_blockwin_due(&w, now) - now;
    CU_ASSERT(first >= rto && first <= rto + rto / 2);
    now += first;
    CU_ASSERT_EQUAL(ferry_blockwin_expire(&w, now), 1);
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
    CU_ASSERT_EQUAL(s.tries, 2);
    uint64_t second = ferry_blockwin_due(&w, now) - now;
    CU_ASSERT_EQUAL(second, first * 3);
    now += second;
    ferry_blockwin_expire(&w, now);
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
    uint64_t third = ferry_blockwin_due(&w, now) - now; /* 1..3 s: twofold */
    CU_ASSERT_EQUAL(third, second * 2);
    /* Answered after two retransmissions: a weak sample (time since the
     * first transmission, K = 1) pulls a quarter of the way. */
    now += 200;
    uint64_t sample = first + second + 200;
    ferry_blockwin_got(&w, s.req, now);
    uint64_t want = (3 * (uint64_t)rto + sample + sample / 2) / 4;
    uint32_t after = ferry_blockwin_rto_ms(&w);
    CU_ASSERT(after + 1 >= want && after <= want + 1);
    /* Retransmissions back off by 3, 2 or 1.5 by the timeout's size, up to
     * the cap. */
    now += 2 * (uint64_t)ferry_blockwin_rto_ms(&w) + 1;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
    uint64_t prev = ferry_blockwin_due(&w, now) - now;
    for (int i = 0; i < 20; i++) {
        now += prev;
        ferry_blockwin_expire(&w, now);
        CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
        uint64_t t = ferry_blockwin_due(&w, now) - now;
        uint64_t f = prev < 1000 ? prev * 3 : prev > 3000 ? prev * 3 / 2 : prev * 2;
        CU_ASSERT_EQUAL(t, f < FERRY_BLOCKWIN_MAX_RTO_MS ? f : FERRY_BLOCKWIN_MAX_RTO_MS);
        prev = t;
    }
    CU_ASSERT_EQUAL(prev, FERRY_BLOCKWIN_MAX_RTO_MS);
}

static void retransmission_on_a_live_path_starts_afresh(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 4, 18);
    ferry_blockwin_begin(&w, 1000, 0, NULL);
    uint64_t now = 100000;
    struct ferry_blockwin_send a, b;
    for (int i = 0; i < 30; i++) { /* learn a 300 ms round trip */
        CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &a));
        now += 300;
        ferry_blockwin_got(&w, a.req, now);
    }
    uint32_t rto = ferry_blockwin_rto_ms(&w);
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &a));
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &b));
    uint64_t deadline = 0;
    for (unsigned i = 0; i < w.n; i++)
        if (w.e[i].req == a.req)
            deadline = w.e[i].at_ms;
    /* b is answered, a is lost: a goes again with a fresh timeout. */
    ferry_blockwin_got(&w, b.req, now + 300);
    now = deadline;
    CU_ASSERT_EQUAL(ferry_blockwin_expire(&w, now), 1);
    struct ferry_blockwin_send again;
    bool found = false;
    while (ferry_blockwin_next(&w, now, &again))
        found |= again.req == a.req;
    CU_ASSERT_TRUE_FATAL(found);
    uint64_t t = 0;
    for (unsigned i = 0; i < w.n; i++)
        if (w.e[i].req == a.req)
            t = w.e[i].timeout_ms;
    CU_ASSERT(t >= ferry_blockwin_rto_ms(&w) && t <= ferry_blockwin_rto_ms(&w) * 3 / 2);
    CU_ASSERT(t < 3 * rto);
}

/* The timeout of request req's latest send. */
static uint32_t timeout_of(const struct ferry_blockwin *w, uint32_t req)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->e[i].req == req)
            return w->e[i].timeout_ms;
    CU_FAIL("request not in the table");
    return 0;
}

/* The node gave a silent session up and opened a new one: what was out on
 * the old path goes again at once, under new ids, with a fresh timer, and
 * an answer to an old id (or a second answer) counts for nothing. */
static void a_new_path_resends_what_was_out_at_once(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 8, 21);
    ferry_blockwin_begin(&w, 10, 0, NULL);
    uint64_t now = 1000;
    struct ferry_blockwin_send a, b, c;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &a));
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &b));
    CU_ASSERT_FALSE(ferry_blockwin_next(&w, now, &c)); /* the initial window is full */
    /* The path goes silent: each retransmission backs off. */
    for (int i = 0; i < 6; i++) {
        now = ferry_blockwin_due(&w, now);
        ferry_blockwin_expire(&w, now);
        while (ferry_blockwin_next(&w, now, &c)) {
        }
    }
    CU_ASSERT_FATAL(timeout_of(&w, a.req) > 2 * ferry_blockwin_rto_ms(&w));
    uint64_t backed_off_due = ferry_blockwin_due(&w, now);
    /* A backoff hold of our own is on too (a 5.00 just before the cut). */
    ferry_blockwin_hold(&w, 0, now, now + 60000, true);
    unsigned cwnd = ferry_blockwin_cwnd(&w);
    uint64_t received = ferry_blockwin_received(&w);

    now += 10; /* the new session is up */
    CU_ASSERT_EQUAL(ferry_blockwin_new_path(&w, now), 2);
    CU_ASSERT_EQUAL(ferry_blockwin_due(&w, now), now);
    CU_ASSERT(backed_off_due > now);
    struct ferry_blockwin_send s[2];
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s[0]));
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s[1]));
    CU_ASSERT_FALSE(ferry_blockwin_next(&w, now, &c));
    CU_ASSERT_EQUAL(s[0].block, a.block < b.block ? a.block : b.block); /* lowest first */
    CU_ASSERT_EQUAL(s[0].block + s[1].block, a.block + b.block);
    uint32_t rto = ferry_blockwin_rto_ms(&w);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_NOT_EQUAL(s[i].req, a.req);
        CU_ASSERT_NOT_EQUAL(s[i].req, b.req);
        CU_ASSERT_EQUAL(s[i].tries, 1); /* a first transmission: no back-off */
        uint32_t t = timeout_of(&w, s[i].req);
        CU_ASSERT(t >= rto && t <= rto * 3 / 2);
    }
    CU_ASSERT_NOT_EQUAL(s[0].req, s[1].req);
    CU_ASSERT_EQUAL(ferry_blockwin_cwnd(&w), cwnd); /* no loss */
    CU_ASSERT_FALSE(ferry_blockwin_holding(&w, now));
    /* A late answer to an old id is not recognised; the new one counts once. */
    uint64_t block;
    CU_ASSERT_FALSE(ferry_blockwin_lookup(&w, a.req, &block));
    CU_ASSERT_FALSE(ferry_blockwin_lookup(&w, b.req, &block));
    ferry_blockwin_got(&w, a.req, now + 5);
    CU_ASSERT_EQUAL(ferry_blockwin_received(&w), received);
    CU_ASSERT_TRUE(ferry_blockwin_lookup(&w, s[0].req, &block));
    CU_ASSERT_EQUAL(block, s[0].block);
    ferry_blockwin_got(&w, s[0].req, now + 20);
    ferry_blockwin_got(&w, s[0].req, now + 21);
    CU_ASSERT_EQUAL(ferry_blockwin_received(&w), received + 1);
    CU_ASSERT_TRUE(ferry_blockwin_has(&w, s[0].block));
    /* A Max-Age the gateway set is not ours to cut short. */
    ferry_blockwin_hold(&w, s[1].req, now + 30, now + 10000, false);
    CU_ASSERT_EQUAL(ferry_blockwin_new_path(&w, now + 40), 1);
    CU_ASSERT_TRUE(ferry_blockwin_holding(&w, now + 40));
    CU_ASSERT_FALSE(ferry_blockwin_next(&w, now + 40, &c));
    CU_ASSERT_TRUE(ferry_blockwin_next(&w, now + 10000, &c));
}

static void idle_rto_ages_towards_the_default(void)
{
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, 1, 16);
    ferry_blockwin_begin(&w, 1000, 0, NULL);
    uint64_t now = 100000;
    struct ferry_blockwin_send s;
    for (int i = 0; i < 60; i++) {
        CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
        now += 100;
        ferry_blockwin_got(&w, s.req, now);
    }
    uint32_t small = ferry_blockwin_rto_ms(&w);
    CU_ASSERT(small < 250);
    /* An hour later the estimate is stale: it has doubled, not more than
     * up to 1 s, by the time the next request goes out. */
    now += 3600 * 1000;
    CU_ASSERT_TRUE_FATAL(ferry_blockwin_next(&w, now, &s));
    CU_ASSERT_EQUAL(ferry_blockwin_rto_ms(&w), 2 * small);
}

static void memory_is_the_same_for_any_size(void)
{
    /* 32 MiB in 16-byte blocks is two million blocks; the window is the
     * same value as for one block, and a download of it progresses. */
    struct ferry_blockwin w;
    ferry_blockwin_init(&w, FERRY_BLOCKWIN_MAX, 17);
    ferry_blockwin_begin(&w, UINT64_C(2097152), 0, NULL);
    uint64_t now = 0;
    struct ferry_blockwin_send s;
    for (int i = 0; i < 100000; i++) {
        if (!ferry_blockwin_next(&w, now, &s)) {
            CU_FAIL("nothing to send");
            break;
        }
        ferry_blockwin_got(&w, s.req, ++now);
    }
    CU_ASSERT_EQUAL(ferry_blockwin_base(&w), 100000);
    CU_ASSERT(sizeof(w) < 4096);
}

const char *const ferry_suite_name = "blockwin";
const struct ferry_test_case ferry_tests[] = {
    {"clean link asks each block once and fills the window",
     clean_link_asks_each_block_once_and_fills_the_window},
    {"window starts small and doubles per round trip",
     window_starts_small_and_doubles_per_round_trip},
    {"lockstep window of one never has two out", lockstep_window_of_one_never_has_two_out},
    {"reordering and duplicates cost no request", reordering_and_duplicates_cost_no_request},
    {"loss patterns complete and beat lockstep", loss_patterns_complete_and_beat_lockstep},
    {"burst loss halves the window once", burst_loss_halves_the_window_once},
    {"silent gateway backs off to the floor", silent_gateway_backs_off_to_the_floor},
    {"requests stay within the span of a hole", requests_stay_within_the_span_of_a_hole},
    {"last block goes with the final window", last_block_goes_with_the_final_window},
    {"a single-block artifact is asked for", a_single_block_artifact_is_asked_for},
    {"resume skips the blocks already in", resume_skips_the_blocks_already_in},
    {"wrong answers back off and count", wrong_answers_back_off_and_count},
    {"holds wait and only a backoff is cut short", holds_wait_and_only_a_backoff_is_cut_short},
    {"smaller blocks split the window", smaller_blocks_split_the_window},
    {"CoCoA timer learns and backs off variably", cocoa_timer_learns_and_backs_off_variably},
    {"retransmission on a live path starts afresh", retransmission_on_a_live_path_starts_afresh},
    {"a new path resends what was out at once", a_new_path_resends_what_was_out_at_once},
    {"idle RTO ages towards the default", idle_rto_ages_towards_the_default},
    {"memory is the same for any size", memory_is_the_same_for_any_size},
    {NULL, NULL},
};
