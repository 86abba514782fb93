#include "cunit_main.h"

#include "gw_pacer.h"

#include <stdio.h>
#include <string.h>

#define IDLE  5000
#define GRACE 2000
#define TURN  20000
#define WAIT  8000
#define SIZE  (10 * 1024) /* ten blocks of 1 KiB */

static struct gw_pacer *make_with(uint32_t cap, uint32_t grace_requests, uint32_t requesters)
{
    struct gw_pacer *p = NULL;
    struct gw_pacer_opts o = {.max_transfers = cap,
                              .idle_ms = IDLE,
                              .grace_ms = GRACE,
                              .grace_requests = grace_requests,
                              .turn_ms = TURN,
                              .wait_ms = WAIT,
                              .max_requesters = requesters};
    CU_ASSERT_FATAL(gw_pacer_new(&o, &p, NULL) == FERRY_OK);
    return p;
}

static struct gw_pacer *make(uint32_t cap)
{
    return make_with(cap, 4, 0);
}

static void sha_of(uint8_t artifact, uint8_t sha[FERRY_SHA256_LEN])
{
    memset(sha, artifact, FERRY_SHA256_LEN);
}

static const char *node(unsigned n)
{
    static char names[8][16];
    static unsigned next;
    char *s = names[next++ % 8];
    snprintf(s, 16, "node-%u", n);
    return s;
}

/* gw_pacer_admit() of `who` for artifact `artifact` (SIZE bytes) as one
 * value: -1 for FERRY_E_BUSY, else how. */
static int admit(struct gw_pacer *p, unsigned who, uint8_t artifact, uint64_t now)
{
    uint8_t sha[FERRY_SHA256_LEN];
    sha_of(artifact, sha);
    enum gw_pacer_admission how = GW_PACER_STARTED;
    enum ferry_err err = gw_pacer_admit(p, node(who), sha, SIZE, now, &how);
    CU_ASSERT(err == FERRY_OK || err == FERRY_E_BUSY);
    return err == FERRY_OK ? (int)how : -1;
}

/* One 1 KiB block served. */
static bool served(struct gw_pacer *p, unsigned who, uint8_t artifact, uint64_t now)
{
    uint8_t sha[FERRY_SHA256_LEN];
    sha_of(artifact, sha);
    return gw_pacer_served(p, node(who), sha, 1024, now);
}

/* Admits and serves one block; the admission. */
static int fetch(struct gw_pacer *p, unsigned who, uint8_t artifact, uint64_t now)
{
    int how = admit(p, who, artifact, now);
    if (how != -1)
        served(p, who, artifact, now);
    return how;
}

/* Blocks until the transfer ends (at most ten); true when it did. */
static bool fetch_all(struct gw_pacer *p, unsigned who, uint8_t artifact, uint64_t now)
{
    bool done = false;
    for (int b = 0; b < 10 && !done; b++) {
        CU_ASSERT(admit(p, who, artifact, now) >= 0);
        done = served(p, who, artifact, now);
    }
    return done;
}

static void cap_two_admits_two_and_queues_the_rest(void)
{
    struct gw_pacer *p = make(2);
    for (unsigned s = 1; s <= 6; s++)
        CU_ASSERT_EQUAL(admit(p, s, 0xaa, 100 * s), s <= 2 ? GW_PACER_STARTED : -1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 4);
    /* The two admitted go on, block after block; the others wait. */
    for (uint64_t t = 1000; t < 1100; t += 10) {
        CU_ASSERT_EQUAL(admit(p, 1, 0xaa, t), GW_PACER_CONTINUED);
        CU_ASSERT_EQUAL(admit(p, 2, 0xaa, t + 5), GW_PACER_CONTINUED);
        CU_ASSERT_EQUAL(admit(p, 3 + t % 4, 0xaa, t + 5), -1);
    }
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 4);
    gw_pacer_free(p);
}

/* Issue 9, 3: a node with several sessions, or several artifacts, held one
 * slot for each. Now the node is the unit, not the session. */
static void one_node_holds_one_slot_whatever_it_fetches(void)
{
    struct gw_pacer *p = make(2);
    CU_ASSERT_EQUAL(fetch(p, 1, 0xaa, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(fetch(p, 1, 0xaa, 1), GW_PACER_CONTINUED);
    /* Another artifact: the same slot, counted from zero. */
    CU_ASSERT_EQUAL(fetch(p, 1, 0xbb, 2), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(fetch(p, 2, 0xaa, 3), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 3, 0xaa, 4), -1);
    /* Bytes of the old artifact do not count for the new one. */
    for (int b = 0; b < 9; b++)
        CU_ASSERT(!served(p, 1, 0xaa, 5));
    for (int b = 0; b < 8; b++)
        CU_ASSERT(!served(p, 1, 0xbb, 5));
    CU_ASSERT(served(p, 1, 0xbb, 6)); /* 1 + 8 + 1 blocks of 0xbb */
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    gw_pacer_free(p);
}

/* Issue 9, 3: the last block first ended the transfer, and the grace served
 * the rest outside the limit. Now only every byte served ends it. */
static void the_last_block_first_ends_nothing(void)
{
    struct gw_pacer *p = make(1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT(!served(p, 1, 1, 0)); /* "the last block" */
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 1), -1);
    /* Blocks in any order, some twice: the bytes count, not which. */
    for (int b = 0; b < 8; b++) {
        CU_ASSERT_EQUAL(admit(p, 1, 1, 10 + b), GW_PACER_CONTINUED);
        CU_ASSERT(!served(p, 1, 1, 10 + b));
    }
    CU_ASSERT_EQUAL(admit(p, 1, 1, 20), GW_PACER_CONTINUED);
    CU_ASSERT(served(p, 1, 1, 20));
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    /* Free at once: the waiter's turn, no timeout. */
    CU_ASSERT_EQUAL(admit(p, 2, 1, 21), GW_PACER_STARTED);
    /* Served bytes of a node without a slot count for nothing. */
    CU_ASSERT(!served(p, 3, 1, 22));
    gw_pacer_free(p);
}

/* Issue 9, 3: the grace after a download must not be a way around the
 * limit: bounded in requests and in time, for that artifact only. */
static void the_grace_is_bounded(void)
{
    struct gw_pacer *p = make_with(1, 4, 0);
    CU_ASSERT(fetch_all(p, 1, 1, 0));
    CU_ASSERT_EQUAL(fetch(p, 2, 1, 100), GW_PACER_STARTED);
    /* Node 1's retransmissions: four are served beside node 2. */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(admit(p, 1, 1, 200 + i), GW_PACER_GRACE);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    /* The fifth is a new download: node 2 holds the one slot. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 300), -1);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 1);
    gw_pacer_free(p);

    p = make_with(1, 4, 0);
    CU_ASSERT(fetch_all(p, 1, 1, 1000));
    CU_ASSERT_EQUAL(fetch(p, 2, 1, 1001), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000 + GRACE - 1), GW_PACER_GRACE);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000 + GRACE), -1); /* too late */
    gw_pacer_free(p);

    p = make_with(1, 4, 0);
    CU_ASSERT(fetch_all(p, 1, 1, 0));
    CU_ASSERT_EQUAL(fetch(p, 2, 1, 1), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 1, 2, 2), -1); /* another artifact is no retransmission */
    gw_pacer_free(p);
}

/* A node that downloads the same artifact again right after finishing: the
 * blocks its grace served count for the new download, which ends when it
 * has been served the whole artifact once more. */
static void the_grace_counts_for_a_download_again(void)
{
    struct gw_pacer *p = make_with(1, 4, 0);
    CU_ASSERT(fetch_all(p, 1, 1, 0));
    for (int b = 0; b < 4; b++)
        CU_ASSERT_EQUAL(fetch(p, 1, 1, 10), GW_PACER_GRACE);
    CU_ASSERT_EQUAL(fetch(p, 1, 1, 20), GW_PACER_STARTED);
    for (int b = 0; b < 4; b++)
        CU_ASSERT_EQUAL(fetch(p, 1, 1, 30), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 40), GW_PACER_CONTINUED);
    CU_ASSERT(served(p, 1, 1, 40)); /* 4 in grace + 1 + 4 + 1 */
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    gw_pacer_free(p);
}

static void the_queue_is_first_come_first_served(void)
{
    struct gw_pacer *p = make(1);
    CU_ASSERT_EQUAL(fetch(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 10), -1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 20), -1);
    CU_ASSERT_EQUAL(admit(p, 4, 1, 30), -1);
    for (int b = 1; b < 10; b++)
        fetch(p, 1, 1, 40);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    /* The slot is node 2's: node 4 asking a hundred times, or a newcomer,
     * do not get it first. */
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(admit(p, 4, 1, 50 + i), -1);
    CU_ASSERT_EQUAL(admit(p, 9, 1, 150), -1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 160), GW_PACER_STARTED);
    CU_ASSERT(fetch_all(p, 2, 1, 170));
    CU_ASSERT_EQUAL(admit(p, 4, 1, 180), -1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 190), GW_PACER_STARTED);
    gw_pacer_free(p);
}

static void a_waiter_that_stops_asking_loses_its_place(void)
{
    struct gw_pacer *p = make(1);
    CU_ASSERT_EQUAL(fetch(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 10), -1); /* then silent */
    CU_ASSERT_EQUAL(admit(p, 3, 1, 20), -1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 20 + WAIT - 1), -1); /* keeps asking */
    CU_ASSERT(fetch_all(p, 1, 1, 30));
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 30 + GRACE); /* node 1's grace */
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 30 + GRACE), 0);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 2);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 10 + WAIT);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 10 + WAIT), 0);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 10 + WAIT), GW_PACER_STARTED);
    /* Node 2 is new again, behind nobody, but the slot is taken. */
    CU_ASSERT_EQUAL(admit(p, 2, 1, 11 + WAIT), -1);
    gw_pacer_free(p);
}

/* Issue 9, 3: one host kept every slot for as long as it kept asking. */
static void a_holder_yields_when_its_turn_is_over_and_others_wait(void)
{
    struct gw_pacer *p = make(2);
    CU_ASSERT_EQUAL(fetch(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(fetch(p, 2, 1, 1000), GW_PACER_STARTED);
    /* Nobody waits: a long download keeps its slot past its turn. */
    for (uint64_t t = 1000; t <= 2 * TURN; t += 1000) {
        CU_ASSERT_EQUAL(admit(p, 1, 1, t), GW_PACER_CONTINUED);
        CU_ASSERT_EQUAL(admit(p, 2, 1, t + 500), GW_PACER_CONTINUED);
    }
    /* Node 3 waits: the oldest turn ends at the holder's next request. */
    uint64_t t = 2 * TURN + 1000;
    CU_ASSERT_EQUAL(admit(p, 3, 1, t), -1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, t + 1), -1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, t + 2), GW_PACER_STARTED);
    /* Node 1 is behind node 3 now; node 2 yields to it in turn. */
    CU_ASSERT_EQUAL(admit(p, 2, 1, t + 3), -1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, t + 4), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    /* Node 3's turn is new: it is not preempted for node 2 at once. */
    CU_ASSERT_EQUAL(admit(p, 3, 1, t + 5), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, t + 6), -1);
    gw_pacer_free(p);
}

static void expiry_ends_the_oldest_turn_without_a_request(void)
{
    struct gw_pacer *p = make(2);
    CU_ASSERT_EQUAL(fetch(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(fetch(p, 2, 1, 100), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 200), -1);
    /* Idle expiry (holders ask every second) and the turn's end, whichever
     * is first; both holders' turns are due, one slot is needed. */
    for (uint64_t t = 1000; t < TURN; t += 1000) {
        admit(p, 1, 1, t);
        admit(p, 2, 1, t);
        admit(p, 3, 1, t);
    }
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), TURN);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, TURN - 1), 0);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, TURN + 100), 1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 2);
    CU_ASSERT_EQUAL(admit(p, 3, 1, TURN + 101), GW_PACER_STARTED);
    /* Node 2's turn is over too, and node 1 waits now: round robin. */
    CU_ASSERT_EQUAL(admit(p, 2, 1, TURN + 102), -1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, TURN + 103), GW_PACER_STARTED);
    gw_pacer_free(p);
}

/* A node with a window of requests in flight asks for several blocks at
 * once, out of order, some twice: one transfer, one slot. */
static void a_window_of_requests_is_one_transfer(void)
{
    struct gw_pacer *p = make(2);
    /* Blocks 0-9 in the order answered, 6 twice (a lost answer), 8 last. */
    const int order[] = {0, 1, 2, 3, 5, 4, 7, 6, 6, 9};
    int started = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int how = admit(p, 1, 1, 10 * i);
        CU_ASSERT(how == GW_PACER_STARTED || how == GW_PACER_CONTINUED);
        started += how == GW_PACER_STARTED;
        CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
        CU_ASSERT_EQUAL(served(p, 1, 1, 10 * i), i == 9);
    }
    CU_ASSERT_EQUAL(started, 1);
    /* The count reached the size before block 8 came: it is one of the
     * window's retransmissions the grace covers. */
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 100), GW_PACER_GRACE);
    gw_pacer_free(p);
}

static void idle_holders_expire(void)
{
    struct gw_pacer *p = make(2);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 3000), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 1000 + IDLE);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 1000 + IDLE - 1), 0);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 1000 + IDLE - 1), -1);
    /* A request restarts the idle clock: node 2 is due first now. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000 + IDLE - 1), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 3000 + IDLE);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 3000 + IDLE), 1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    /* Node 3 was waiting: its turn before node 2, which is new again. */
    CU_ASSERT_EQUAL(admit(p, 2, 1, 3000 + IDLE), -1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 3000 + IDLE), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 100 * IDLE), 2);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 0);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), GW_PACER_NO_EXPIRY);
    gw_pacer_free(p);
}

static void a_clock_that_goes_back_expires_nothing(void)
{
    struct gw_pacer *p = make(1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 100000), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 100001), -1);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 5), 0);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 6), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 1);
    gw_pacer_free(p);
}

static void the_table_is_bounded(void)
{
    /* Two slots, room for four requesters. */
    struct gw_pacer *p = make_with(2, 4, 4);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 1), -1);
    CU_ASSERT_EQUAL(admit(p, 4, 1, 2), -1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 3), -1); /* node 3 asked more recently */
    /* A thousand more requesters: each displaces the waiter heard from
     * least recently; the holders are never displaced. */
    for (unsigned n = 100; n < 1100; n++)
        CU_ASSERT_EQUAL(admit(p, n, 1, 10 + n), -1);
    CU_ASSERT_EQUAL(gw_pacer_waiting(p), 2);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 2000), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 2000), GW_PACER_CONTINUED);
    gw_pacer_free(p);
}

static void bad_identities_are_refused(void)
{
    struct gw_pacer *p = make(1);
    uint8_t sha[FERRY_SHA256_LEN] = {0};
    char long_id[GW_PACER_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    CU_ASSERT_EQUAL(gw_pacer_admit(p, "", sha, 1, 0, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(gw_pacer_admit(p, NULL, sha, 1, 0, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(gw_pacer_admit(p, long_id, sha, 1, 0, NULL), FERRY_E_INVALID_ARG);
    long_id[GW_PACER_ID_MAX] = '\0'; /* the longest allowed */
    CU_ASSERT_EQUAL(gw_pacer_admit(p, long_id, sha, 1, 0, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    gw_pacer_free(p);
}

static void jitter_stays_within_a_quarter_and_spreads(void)
{
    const uint32_t bases[] = {0, 1, 3, 4, 10, 30, 3600, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        uint32_t base = bases[i];
        uint64_t lo = base - base / 4, hi = (uint64_t)base + base / 4;
        if (lo < 1)
            lo = 1;
        if (hi > UINT32_MAX)
            hi = UINT32_MAX;
        if (hi < 1)
            hi = 1;
        uint32_t min = UINT32_MAX, max = 0;
        uint32_t rnd = 12345;
        for (int n = 0; n < 4000; n++) {
            rnd = rnd * 1103515245u + 12345u;
            uint32_t v = gw_pacer_jitter(base, rnd);
            CU_ASSERT(v >= lo && v <= hi);
            if (v < min)
                min = v;
            if (v > max)
                max = v;
        }
        /* Both ends are reachable, so retries really spread. */
        CU_ASSERT_EQUAL(gw_pacer_jitter(base, 0), lo);
        if (base >= 4 && base < UINT32_MAX) {
            CU_ASSERT(min < base && max > base);
            CU_ASSERT_EQUAL(gw_pacer_jitter(base, 2 * (base / 4)), hi);
        }
    }
}

static void bad_options_are_refused_by_name(void)
{
    struct gw_pacer *p = NULL;
    struct ferry_diag d = {{0}};
    struct gw_pacer_opts o = {.max_transfers = 0};
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "max_transfers"));
    CU_ASSERT_PTR_NULL(p);
    o.max_transfers = GW_PACER_MAX_TRANSFERS + 1;
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(p);
    o.max_transfers = 8;
    o.max_requesters = 15;
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "max_requesters"));
    o.max_requesters = GW_PACER_MAX_REQUESTERS + 1;
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_E_INVALID_ARG);
    o.max_transfers = GW_PACER_MAX_TRANSFERS;
    o.max_requesters = 0;
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(p);
    gw_pacer_free(p);
    gw_pacer_free(NULL);
}

const struct ferry_test_case ferry_tests[] = {
    {"cap_two_admits_two_and_queues_the_rest", cap_two_admits_two_and_queues_the_rest},
    {"one_node_holds_one_slot_whatever_it_fetches", one_node_holds_one_slot_whatever_it_fetches},
    {"the_last_block_first_ends_nothing", the_last_block_first_ends_nothing},
    {"the_grace_is_bounded", the_grace_is_bounded},
    {"the_grace_counts_for_a_download_again", the_grace_counts_for_a_download_again},
    {"the_queue_is_first_come_first_served", the_queue_is_first_come_first_served},
    {"a_waiter_that_stops_asking_loses_its_place", a_waiter_that_stops_asking_loses_its_place},
    {"a_holder_yields_when_its_turn_is_over_and_others_wait",
     a_holder_yields_when_its_turn_is_over_and_others_wait},
    {"expiry_ends_the_oldest_turn_without_a_request",
     expiry_ends_the_oldest_turn_without_a_request},
    {"a_window_of_requests_is_one_transfer", a_window_of_requests_is_one_transfer},
    {"idle_holders_expire", idle_holders_expire},
    {"a_clock_that_goes_back_expires_nothing", a_clock_that_goes_back_expires_nothing},
    {"the_table_is_bounded", the_table_is_bounded},
    {"bad_identities_are_refused", bad_identities_are_refused},
    {"jitter_stays_within_a_quarter_and_spreads", jitter_stays_within_a_quarter_and_spreads},
    {"bad_options_are_refused_by_name", bad_options_are_refused_by_name},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_pacer";
